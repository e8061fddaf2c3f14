//! What social holds about a data subject, for the privacy module: their profile (its personal
//! fields opened) and their edges (whom they follow, who follows them, the requests waiting on
//! them, whom they block and mute, by handle), their posts, comments and reactions, and the
//! reports they filed. On erasure the profile and every edge go, and the
//! counts of the profiles at the other ends are made right.

use std::collections::BTreeMap;

use futures::{future::LocalBoxFuture, FutureExt};
use serde_json::{json, Value};

use super::{client::ProfileView, SocialClient};
use crate::{
    actors::privacy::{Holder, HolderError},
    adapters::social::Side,
    domain::privacy::Subject,
};

/// Name of social's part of an export.
pub const NAME: &str = "social";

/// Social as a holder of personal data.
#[derive(Clone)]
pub struct SocialHolder {
    client: SocialClient,
}

impl SocialHolder {
    /// The holder reached through `client`.
    pub fn new(client: SocialClient) -> Self {
        Self { client }
    }
}

fn failed(e: impl std::fmt::Display) -> HolderError {
    HolderError { holder: NAME, detail: e.to_string() }
}

fn profile_json(p: &ProfileView) -> Value {
    json!({
        "id": p.id,
        "handle": p.handle,
        "display_name": p.display_name,
        "bio": p.bio,
        "avatar_url": p.avatar_url,
        "visibility": p.visibility,
        "followers": p.followers,
        "following": p.following,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

impl Holder for SocialHolder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>> {
        let client = self.client.clone();
        async move {
            let Some(own) = client.own(&subject.id).await.map_err(failed)? else {
                return Ok(json!({ "profile": null }));
            };
            let profile = client.view(&own, None).await.map_err(failed)?;
            let mut out = json!({ "profile": profile_json(&profile) });
            for (name, side) in [
                ("following", Side::Following),
                ("followers", Side::Followers),
                ("requests", Side::Requests),
                ("blocked", Side::Blocked),
                ("muted", Side::Muted),
            ] {
                let edges = client.all_handles(&subject.id, side).await.map_err(failed)?;
                let listed = edges.into_iter().map(|(handle, since)| json!({ "handle": handle, "since": since }));
                out[name] = Value::Array(listed.collect());
            }
            let written = client.contributions_of(&subject.id).await.map_err(failed)?;
            for part in ["posts", "comments", "reactions", "reports"] {
                out[part] = written[part].clone();
            }
            Ok(out)
        }
        .boxed_local()
    }

    fn erase(&self, subject: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>> {
        let client = self.client.clone();
        async move {
            let erased = client.erase(&subject.id).await.map_err(failed)?;
            Ok(BTreeMap::from([("profiles".to_owned(), u64::from(erased.is_some()))]))
        }
        .boxed_local()
    }
}
