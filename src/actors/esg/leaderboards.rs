//! Leaderboards through the [`EsgClient`]: joining and leaving (opt-in, in a community or not),
//! each recorded activity moving its member on the boards of its month, and reading a board,
//! rebuilt from PostgreSQL when Redis lost it.

use chrono::{NaiveDate, Utc};

use super::{Answer, EsgClient};
use crate::{
    adapters::esg::{Place, Standing},
    domain::{
        esg::leaderboard::{self, Period, MONTHS_BACK},
        privacy::BlindIndex,
    },
};

/// A subject's membership of the leaderboards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// Whether they are on the leaderboards.
    pub opted_in: bool,
    /// Their community, if any.
    pub community: Option<String>,
    /// How the boards show them.
    pub pseudonym: String,
}

/// A board: its top places, and the caller's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The month.
    pub period: Period,
    /// The community, or all members.
    pub community: Option<String>,
    /// The top places, first first.
    pub places: Vec<Place>,
    /// The caller's place, when they are on this board.
    pub me: Option<Place>,
}

impl EsgClient {
    fn board_keys(&self, period: Period, community: Option<&str>) -> Vec<String> {
        let mut keys = vec![self.boards.key(period, None)];
        if let Some(c) = community {
            keys.push(self.boards.key(period, Some(c)));
        }
        keys
    }

    /// After an activity was recorded for `index`: a member's total of its month, as the
    /// recording read it, on that month's boards. A failure leaves the board behind until the
    /// member's next activity or a rebuild of the board; it is logged, and the activity stays
    /// recorded.
    pub(super) async fn rank(&self, index: &BlindIndex, standing: &Standing) {
        let keys = self.board_keys(Period(standing.month), standing.community.as_deref());
        if let Err(e) = self.boards.set(&keys, &index.hex(), standing.avoided_g).await {
            tracing::warn!(error = %e, "a leaderboard was not updated");
        }
    }

    /// The boards that show `index` as `community` in the months they were active.
    async fn boards_of(&self, index: &BlindIndex, community: Option<&str>) -> Answer<Vec<String>> {
        let since = Period::of(Utc::now().date_naive() - chrono::Months::new(MONTHS_BACK)).0;
        let mut months: Vec<NaiveDate> = self.store.months(index, since).await?.iter().map(|m| m.month).collect();
        months.dedup();
        Ok(months.into_iter().flat_map(|m| self.board_keys(Period(m), community)).collect())
    }

    /// Join the leaderboards (in `community`, if given) or leave them. The boards the change
    /// touches are dropped and rebuilt from PostgreSQL when next read.
    pub async fn set_membership(&self, subject: &str, opt_in: bool, community: Option<&str>) -> Answer<Membership> {
        let community = community.map(leaderboard::community).transpose()?;
        let index = self.index(subject);
        let before = if opt_in {
            self.store.join(&index, community.as_deref()).await?
        } else {
            self.store.leave(&index).await?
        };
        let mut stale = Vec::new();
        if let Some(old) = &before {
            stale.extend(self.boards_of(&index, old.as_deref()).await?);
        }
        if opt_in {
            stale.extend(self.boards_of(&index, community.as_deref()).await?);
        }
        stale.sort();
        stale.dedup();
        self.boards.drop_keys(&stale).await?;
        let community = if opt_in { community } else { None };
        Ok(Membership { opted_in: opt_in, community, pseudonym: leaderboard::pseudonym(&index.hex()) })
    }

    /// Drop the boards that show `subject` (before their erasure): rebuilt without them.
    pub async fn leave_boards(&self, subject: &str) -> Answer<()> {
        let index = self.index(subject);
        if let Some(community) = self.store.member(&index).await? {
            let stale = self.boards_of(&index, community.as_deref()).await?;
            self.boards.drop_keys(&stale).await?;
        }
        Ok(())
    }

    /// `subject`'s membership.
    pub async fn membership(&self, subject: &str) -> Answer<Membership> {
        let index = self.index(subject);
        let member = self.store.member(&index).await?;
        Ok(Membership {
            opted_in: member.is_some(),
            community: member.flatten(),
            pseudonym: leaderboard::pseudonym(&index.hex()),
        })
    }

    /// The top `limit` of `period`'s board (of `community`, or of all members), and `subject`'s
    /// place on it.
    pub async fn board(&self, subject: &str, period: Period, community: Option<&str>, limit: usize) -> Answer<Board> {
        let community = community.map(leaderboard::community).transpose()?;
        let key = self.boards.key(period, community.as_deref());
        let me = self.index(subject).hex();
        let read = match self.boards.read(&key, limit, Some(&me)).await? {
            Some(read) => read,
            None => {
                let standings = self.store.standings(period.0, community.as_deref()).await?;
                let entries: Vec<(String, u64)> = standings.iter().map(|(i, g)| (i.hex(), *g)).collect();
                self.boards.fill(&key, &entries).await?;
                self.boards.read(&key, limit, Some(&me)).await?.unwrap_or_default()
            }
        };
        Ok(Board { period, community, places: read.0, me: read.1 })
    }
}
