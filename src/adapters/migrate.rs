//! Versioned SQL migrations, embedded in the binary and applied in order, each in its own
//! transaction, under an advisory lock so that replicas starting together apply them once.

use sha2::{Digest, Sha256};
use tokio_postgres::Client;

use super::postgres::PostgresError;

/// One migration.
pub struct Migration {
    /// Version, increasing.
    pub version: i32,
    /// Name.
    pub name: &'static str,
    /// SQL.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "ledger", sql: include_str!("../../migrations/0001_ledger.sql") },
    Migration { version: 2, name: "outbox", sql: include_str!("../../migrations/0002_outbox.sql") },
    Migration {
        version: 3,
        name: "journal_integrity",
        sql: include_str!("../../migrations/0003_journal_integrity.sql"),
    },
    Migration {
        version: 4,
        name: "idempotency_receipts",
        sql: include_str!("../../migrations/0004_idempotency_receipts.sql"),
    },
    Migration {
        version: 6,
        name: "audit_chain_heads",
        sql: include_str!("../../migrations/0006_audit_chain_heads.sql"),
    },
    Migration { version: 7, name: "payments", sql: include_str!("../../migrations/0007_payments.sql") },
    Migration { version: 8, name: "privacy", sql: include_str!("../../migrations/0008_privacy.sql") },
    Migration { version: 9, name: "holds", sql: include_str!("../../migrations/0009_holds.sql") },
    Migration { version: 10, name: "mobility", sql: include_str!("../../migrations/0010_mobility.sql") },
    Migration { version: 11, name: "rides", sql: include_str!("../../migrations/0011_rides.sql") },
    Migration { version: 12, name: "esg", sql: include_str!("../../migrations/0012_esg.sql") },
    Migration {
        version: 13,
        name: "esg_leaderboards",
        sql: include_str!("../../migrations/0013_esg_leaderboards.sql"),
    },
    Migration { version: 14, name: "social", sql: include_str!("../../migrations/0014_social.sql") },
    Migration { version: 15, name: "social_posts", sql: include_str!("../../migrations/0015_social_posts.sql") },
    Migration { version: 16, name: "social_activity", sql: include_str!("../../migrations/0016_social_activity.sql") },
    Migration {
        version: 17,
        name: "social_moderation",
        sql: include_str!("../../migrations/0017_social_moderation.sql"),
    },
    Migration {
        version: 18,
        name: "esg_participation",
        sql: include_str!("../../migrations/0018_esg_participation.sql"),
    },
    Migration { version: 19, name: "esg_wallets", sql: include_str!("../../migrations/0019_esg_wallets.sql") },
];

/// Arbitrary key of the advisory lock held while migrating.
const LOCK_KEY: i64 = 0x0bee_7101_0000_0001;

/// What `migrate` did.
#[derive(Debug, Default)]
pub struct Report {
    /// Versions applied now.
    pub applied: Vec<i32>,
    /// Versions found already applied.
    pub present: Vec<i32>,
}

/// Why migrating failed.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database could not be reached or a statement failed.
    #[error(transparent)]
    Postgres(#[from] PostgresError),
    /// An applied migration differs from the one in this binary.
    #[error("migration {version} was applied with different contents (checksum {found}, expected {expected})")]
    Checksum {
        /// Version.
        version: i32,
        /// Stored checksum.
        found: String,
        /// This binary's checksum.
        expected: String,
    },
    /// The database has migrations this binary does not know (a newer version ran).
    #[error("the database has migration {0}, newer than this binary knows")]
    Unknown(i32),
}

fn checksum(sql: &str) -> String {
    hex::encode(Sha256::digest(sql.as_bytes()))
}

/// Apply every pending migration.
pub async fn run(client: &mut Client) -> Result<Report, MigrateError> {
    let pg = |e: tokio_postgres::Error| MigrateError::Postgres(PostgresError::Query(e));
    // A migration (or waiting for another replica's) may take longer than a statement may.
    client.batch_execute("SET statement_timeout = 0").await.map_err(pg)?;
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await.map_err(pg)?;
    let result = apply(client).await;
    let unlock = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await.map_err(pg);
    let report = result?;
    unlock?;
    Ok(report)
}

async fn apply(client: &mut Client) -> Result<Report, MigrateError> {
    let pg = |e: tokio_postgres::Error| MigrateError::Postgres(PostgresError::Query(e));
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version integer PRIMARY KEY,
                name text NOT NULL,
                checksum text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await
        .map_err(pg)?;
    let rows =
        client.query("SELECT version, checksum FROM schema_migrations ORDER BY version", &[]).await.map_err(pg)?;
    let mut report = Report::default();
    for row in &rows {
        let (version, found): (i32, String) = (row.get(0), row.get(1));
        let Some(known) = MIGRATIONS.iter().find(|m| m.version == version) else {
            return Err(MigrateError::Unknown(version));
        };
        let expected = checksum(known.sql);
        if found != expected {
            return Err(MigrateError::Checksum { version, found, expected });
        }
        report.present.push(version);
    }
    for migration in MIGRATIONS.iter().filter(|m| !report.present.contains(&m.version)) {
        let tx = client.transaction().await.map_err(pg)?;
        tx.batch_execute(migration.sql).await.map_err(pg)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&migration.version, &migration.name, &checksum(migration.sql)],
        )
        .await
        .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        tracing::info!(version = migration.version, name = migration.name, "migration applied");
        report.applied.push(migration.version);
    }
    Ok(report)
}
