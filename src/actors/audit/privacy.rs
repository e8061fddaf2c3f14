//! What the audit trail holds about a data subject, for the privacy module: the records of their
//! requests, found by their blind index. Erasure removes nothing here (the files are append-only
//! and chained): deleting the subject's key made the sealed subject and address unreadable.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use futures::{future::LocalBoxFuture, FutureExt};
use serde_json::{json, Value};

use crate::{
    actors::privacy::{Holder, HolderError},
    adapters::privacy::Vault,
    domain::{
        audit::{verify::rotated_files, SEALED_CLIENT_IP, SEALED_SUBJECT},
        privacy::{Personal, Place, Subject},
    },
};

/// Name of the audit trail's part of an export.
pub const NAME: &str = "audit";

/// The audit trail as a holder of personal data.
#[derive(Clone)]
pub struct AuditHolder {
    live: PathBuf,
    vault: Vault,
}

impl AuditHolder {
    /// The holder of the log whose live file is `live`, opening its fields with `vault`.
    pub fn new(live: PathBuf, vault: Vault) -> Self {
        Self { live, vault }
    }
}

fn failed(e: impl std::fmt::Display) -> HolderError {
    HolderError { holder: NAME, detail: e.to_string() }
}

/// The records of the subject whose blind index is `index`, from the rotated files (oldest first)
/// and the live file.
fn records_of(live: &Path, index: &str) -> std::io::Result<Vec<Value>> {
    let mut files: Vec<PathBuf> = rotated_files(live)?.into_iter().map(|(_, path)| path).collect();
    files.push(live.to_path_buf());
    let mut found = Vec::new();
    for file in files {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        found.extend(
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|record| record["subject_index"].as_str() == Some(index)),
        );
    }
    Ok(found)
}

impl Holder for AuditHolder {
    fn name(&self) -> &'static str {
        NAME
    }

    fn export(&self, subject: Subject) -> LocalBoxFuture<'static, Result<Value, HolderError>> {
        let holder = self.clone();
        async move {
            let (live, index) = (holder.live.clone(), subject.index.hex());
            let records = tokio::task::spawn_blocking(move || records_of(&live, &index))
                .await
                .map_err(failed)?
                .map_err(failed)?;
            let mut opened = Vec::with_capacity(records.len());
            for mut record in records {
                for (member, field) in [("subject", SEALED_SUBJECT), ("client_ip", SEALED_CLIENT_IP)] {
                    let Some(text) = record[member].as_str().map(str::to_owned) else { continue };
                    record[member] = match holder.vault.open_text(&text, Place::new(field, "")).await.map_err(failed)? {
                        Personal::Value(v) => Value::String(v),
                        Personal::Erased => Value::Null,
                    };
                }
                opened.push(record);
            }
            Ok(json!({ "records": opened }))
        }
        .boxed_local()
    }

    fn erase(&self, _: Subject) -> LocalBoxFuture<'static, Result<BTreeMap<String, u64>, HolderError>> {
        Box::pin(async { Ok(BTreeMap::new()) })
    }
}
