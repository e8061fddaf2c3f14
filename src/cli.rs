//! Command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use std::{sync::Arc, time::Duration};

use crate::{
    actors::{
        audit::{self as audit_writer, housekeeping::log_name, messages::Flush},
        runtime::{Registry, Supervision},
    },
    adapters::{
        audit_heads::{self, RecordedHead},
        bus::{
            dlq::{self, Selection},
            kafka, MemoryBroker, Publisher,
        },
        postgres,
    },
    config::{DatabaseSettings, EventBusKind, Settings},
    domain::audit::{
        verify::{verify_files, Check, LogSet, Start, Summary, VerifyError},
        AuditEvent, AuditKeys, ChainBreak, OUTCOME_FAILURE, OUTCOME_SUCCESS,
    },
    telemetry::Metrics,
};

/// beryl-core-api: actor-based backend for wallets, rides, ESG scores and social features.
#[derive(Debug, Parser)]
#[command(name = "beryl-core-api", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply pending database migrations (DATABASE_URL) and exit.
    Migrate,
    /// Development tokens.
    Token {
        /// What to do.
        #[command(subcommand)]
        action: TokenCommand,
    },
    /// Audit trail tools; they need no service settings.
    Audit {
        /// What to do.
        #[command(subcommand)]
        action: AuditCommand,
    },
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigCommand,
    },
    /// Dead-letter topics (Kafka).
    Dlq {
        /// What to do.
        #[command(subcommand)]
        action: DlqCommand,
    },
    /// Personal data: keys (DATABASE_URL, PRIVACY_MASTER_KEY, PRIVACY_MASTER_KEY_PREVIOUS).
    Privacy {
        /// What to do.
        #[command(subcommand)]
        action: PrivacyCommand,
    },
    /// ESG projections (DATABASE_URL).
    Esg {
        /// What to do.
        #[command(subcommand)]
        action: EsgCommand,
    },
}

/// `esg` subcommands.
#[derive(Debug, Subcommand)]
pub enum EsgCommand {
    /// Recompute every subject's monthly aggregates, totals and score from the stored activities
    /// (after a change of the score method, or to repair them), one subject per transaction
    /// while the service keeps serving; prints its progress. Publishes no event.
    Rebuild {
        /// Subjects read per statement (and between two progress lines).
        #[arg(long, default_value_t = 200)]
        batch: usize,
    },
}

/// Run an `esg` subcommand.
pub fn esg(settings: &Settings, action: EsgCommand) -> ExitCode {
    let EsgCommand::Rebuild { batch } = action;
    if settings.database.url.is_none() {
        eprintln!("esg rebuild needs DATABASE_URL: the embedded mode keeps nothing to rebuild");
        return ExitCode::from(2);
    }
    let run = async {
        // The pool's reaper needs the runtime: built inside it.
        let pool = match postgres::build_pool(&settings.database) {
            Ok(Some(pool)) => pool,
            Ok(None) | Err(_) => return Err("invalid DATABASE_URL".to_owned()),
        };
        let store = crate::adapters::esg::EsgStore::Postgres(pool);
        rebuild(&store, batch).await.map_err(|e| e.to_string())
    };
    match actix_rt::System::new().block_on(run) {
        Ok((done, changed)) => {
            println!("esg rebuild: done, {done} subjects rebuilt, {changed} of them changed");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("esg rebuild failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Rebuild every subject of `store`, `batch` at a time, printing the progress: (subjects rebuilt,
/// those that changed).
async fn rebuild(
    store: &crate::adapters::esg::EsgStore,
    batch: usize,
) -> Result<(u64, u64), crate::adapters::esg::EsgStoreError> {
    let total = store.count_subjects().await?;
    let as_of = chrono::Utc::now().date_naive();
    println!("esg rebuild: {total} subjects, scores as of {as_of} by {}", crate::domain::esg::METHOD_VERSION);
    let (mut done, mut changed, mut after) = (0u64, 0u64, None);
    loop {
        let subjects = store.subjects_after(after.as_ref(), batch.max(1)).await?;
        let Some(last) = subjects.last().copied() else { break };
        for index in &subjects {
            if store.rebuild(index, as_of).await? {
                changed += 1;
            }
            done += 1;
        }
        println!("esg rebuild: {done} of {total} subjects ({changed} changed)");
        after = Some(last);
    }
    Ok((done, changed))
}

/// `privacy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Rewrap every subject key under the current master key (PRIVACY_MASTER_KEY), unwrapping
    /// those still wrapped under the previous one (PRIVACY_MASTER_KEY_PREVIOUS); once it reports
    /// none left, the previous key can be unset.
    Rewrap {
        /// Keys read per statement.
        #[arg(long, default_value_t = 500)]
        batch: usize,
    },
}

/// Run a `privacy` subcommand.
pub fn privacy(settings: &Settings, action: PrivacyCommand) -> ExitCode {
    let PrivacyCommand::Rewrap { batch } = action;
    let pool = match postgres::build_pool(&settings.database) {
        Ok(Some(pool)) => pool,
        Ok(None) => {
            eprintln!("privacy rewrap needs DATABASE_URL: the embedded mode keeps no keys");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("invalid DATABASE_URL: {e}");
            return ExitCode::from(2);
        }
    };
    let vault = crate::adapters::privacy::Vault::for_pool(Some(pool), &settings.privacy);
    let current = vault.master_keys().current.id().to_owned();
    match actix_rt::System::new().block_on(vault.rewrap_all(batch)) {
        Ok(n) => {
            println!("rewrapped {n} subject keys under master key {current}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rewrap failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `dlq` subcommands.
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Publish chosen dead letters again to the topic they came from (`dlq-original-topic`),
    /// with their original key, value and headers (`replayed-from` added). Each one replayed is
    /// recorded in the audit log. Applying is idempotent by event id: a letter that was in fact
    /// applied changes nothing the second time.
    ///
    /// Exits 0 when every chosen letter was published, 1 when one could not be, 2 when nothing
    /// was chosen or the dead-letter topic cannot be read.
    Replay {
        /// The dead-letter topic, e.g. `beryl.fintech.payments.dlq`.
        #[arg(long)]
        topic: String,
        /// A letter to replay, as `<partition>:<offset>`; repeat for several.
        #[arg(long = "offset")]
        offsets: Vec<String>,
        /// Replay the letters with this `dlq-reason` (with --offset: only those of them).
        #[arg(long)]
        reason: Option<String>,
        /// Replay every letter of the topic (with --reason: every letter of that reason).
        #[arg(long)]
        all: bool,
        /// Who replays, as the audit log records it.
        #[arg(long)]
        operator: String,
        /// List what would be replayed, publish nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Sign a token with the current JWT_SECRET_KEY (refused when ENVIRONMENT=production).
    Mint {
        /// `sub` claim.
        #[arg(long)]
        subject: String,
        /// Scope to grant; repeat for several (e.g. --scope fintech:read --scope fintech:write).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl_secs: i64,
    },
}

/// `audit` subcommands.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Verify the hash chain of an audit log: one file or a rotated set.
    ///
    /// Name the live file or any member of its rotated set (`audit.log.1`, `audit.log.2`, ...
    /// oldest first, then `audit.log`). Keyed records are checked with AUDIT_HMAC_KEY and
    /// AUDIT_HMAC_KEY_PREVIOUS; unkeyed (plain SHA-256) records written before the chain was
    /// keyed are verified and counted apart. With DATABASE_URL the end of the log is compared
    /// with the head the writer recorded in PostgreSQL. Exits 0 with a summary (files, records,
    /// first and last seq, last hash) when the chain is intact, 1 naming the first broken record
    /// (file, line, expected and found) or a log that ends before its recorded head, 2 when a
    /// file cannot be read, a record's key was not provided or the database cannot be read.
    Verify {
        /// Audit log files; each is verified with the rotated set it belongs to.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Accept a set whose first record continues an older chain (older files archived or
        /// removed after their retention) instead of requiring it to start at seq 1.
        #[arg(long)]
        partial: bool,
        /// The chain's key; set AUDIT_HMAC_KEY rather than passing it on the command line.
        #[arg(long, env = "AUDIT_HMAC_KEY", hide = true, hide_env_values = true)]
        hmac_key: Option<String>,
        /// The previous chain key (AUDIT_HMAC_KEY_PREVIOUS).
        #[arg(long, env = "AUDIT_HMAC_KEY_PREVIOUS", hide = true, hide_env_values = true)]
        hmac_key_previous: Option<String>,
        /// PostgreSQL holding the recorded chain heads (DATABASE_URL, with DATABASE_PASSWORD).
        #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
        database_url: Option<String>,
        /// Password replacing the one of the database URL (DATABASE_PASSWORD).
        #[arg(long, env = "DATABASE_PASSWORD", hide = true, hide_env_values = true)]
        database_password: Option<String>,
        /// Name the head was recorded under, when verifying a copy of a log: the writer's
        /// absolute path of its live file (default: the absolute path of the live file named).
        #[arg(long)]
        log_name: Option<String>,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings and print the effective configuration with secrets redacted.
    Check,
}

/// Run an `audit` subcommand.
pub fn audit(command: AuditCommand) -> ExitCode {
    match command {
        AuditCommand::Verify {
            paths,
            partial,
            hmac_key,
            hmac_key_previous,
            database_url,
            database_password,
            log_name,
        } => {
            let keys = AuditKeys::from_secrets(hmac_key.as_deref(), hmac_key_previous.as_deref());
            let check = Check::new(if partial { Start::Continuing } else { Start::Genesis }, keys);
            let database = database_url.filter(|u| !u.is_empty()).map(|url| DatabaseSettings {
                url: Some(url.as_str().into()),
                password: database_password.filter(|p| !p.is_empty()).map(|p| p.as_str().into()),
                ..DatabaseSettings::default()
            });
            verify_audit(&paths, check, database.as_ref(), log_name)
        }
    }
}

/// The recorded head of each set, read from PostgreSQL.
fn recorded_heads(database: &DatabaseSettings, names: &[String]) -> anyhow::Result<Vec<Option<RecordedHead>>> {
    let config = postgres::connect_config(database)?.ok_or_else(|| anyhow::anyhow!("no database URL"))?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let client = postgres::connect(&config).await?;
        let mut heads = Vec::with_capacity(names.len());
        for name in names {
            heads.push(audit_heads::recorded(&client, name).await?);
        }
        Ok(heads)
    })
}

fn verify_audit(
    paths: &[PathBuf],
    check: Check,
    database: Option<&DatabaseSettings>,
    name: Option<String>,
) -> ExitCode {
    let mut sets: Vec<LogSet> = Vec::new();
    for path in paths {
        match LogSet::of(path) {
            Ok(set) if !sets.iter().any(|s| s.live == set.live) => sets.push(set),
            Ok(_) => {}
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    let names: Vec<String> = sets.iter().map(|s| name.clone().unwrap_or_else(|| log_name(&s.live))).collect();
    let heads = match database {
        Some(database) => match recorded_heads(database, &names) {
            Ok(heads) => Some(heads),
            Err(e) => {
                eprintln!("cannot read the recorded chain heads from PostgreSQL: {e:#}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    let mut code = ExitCode::SUCCESS;
    for (i, set) in sets.iter().enumerate() {
        let recorded = heads.as_ref().and_then(|h| h[i].clone());
        let mut check = check.clone();
        check.hash_at = recorded.as_ref().map(|r| r.head.seq);
        match verify_files(&set.files, &check) {
            Ok(summary) => match compare_head(&summary, recorded.as_ref()) {
                Ok(()) => print_summary(set, &summary, heads.is_some(), recorded.as_ref(), &names[i]),
                Err(problem) => {
                    println!("audit log {}: {problem}", set.live.display());
                    if let Some(r) = &recorded {
                        println!(
                            "  recorded head: seq {} ({}), at {}",
                            r.head.seq,
                            r.head.hash,
                            r.recorded_at.to_rfc3339()
                        );
                    }
                    println!("  log: seq {} ({}), {} records", summary.last_seq, summary.last_hash, summary.records);
                    code = ExitCode::FAILURE;
                }
            },
            Err(VerifyError::Broken(broken)) => {
                if let ChainBreak::UnknownKey { .. } = broken.problem {
                    eprintln!("{}, line {}: cannot verify: {}", broken.file.display(), broken.line, broken.problem);
                    return ExitCode::from(2);
                }
                println!("audit log {}: BROKEN", set.live.display());
                println!("  file: {}", broken.file.display());
                println!("  line: {}", broken.line);
                println!("  problem: {}", broken.problem);
                if let Some((expected, found)) = broken.problem.mismatch() {
                    println!("  expected: {expected}");
                    println!("  found: {found}");
                }
                println!("  records verified before it: {}", broken.verified);
                code = ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        }
    }
    code
}

/// Whether an intact chain reaches the head recorded for it, with the same record there.
fn compare_head(summary: &Summary, recorded: Option<&RecordedHead>) -> Result<(), String> {
    let Some(recorded) = recorded else { return Ok(()) };
    if summary.last_seq < recorded.head.seq {
        return Err(format!(
            "TRUNCATED: the log ends at seq {} but seq {} was recorded; records were cut off its end",
            summary.last_seq, recorded.head.seq
        ));
    }
    match &summary.hash_at {
        Some(hash) if *hash != recorded.head.hash => Err(format!(
            "REWRITTEN: the record at seq {} is not the one recorded (hash {}, recorded {})",
            recorded.head.seq, hash, recorded.head.hash
        )),
        _ => Ok(()),
    }
}

fn print_summary(set: &LogSet, summary: &Summary, checked: bool, recorded: Option<&RecordedHead>, name: &str) {
    println!("audit log {}: OK", set.live.display());
    println!("  files: {}", summary.files.len());
    for file in &summary.files {
        println!("    {}", file.display());
    }
    println!("  records: {}", summary.records);
    match summary.first_seq {
        Some(first) => println!("  seq: {first}..={}", summary.last_seq),
        None => println!("  seq: none"),
    }
    println!("  last hash: {}", summary.last_hash);
    if summary.unkeyed > 0 {
        println!("  unkeyed records: {} (plain SHA-256, written without AUDIT_HMAC_KEY)", summary.unkeyed);
    }
    match (checked, recorded) {
        (false, _) => println!("  recorded head: not checked (no DATABASE_URL)"),
        (true, None) => println!("  recorded head: none recorded for {name}"),
        (true, Some(r)) if summary.hash_at.is_none() => {
            println!("  recorded head: seq {} is before this set's first record; not compared", r.head.seq)
        }
        (true, Some(r)) => {
            println!("  recorded head: seq {} at {}, matches", r.head.seq, r.recorded_at.to_rfc3339())
        }
    }
}

/// How long reading the dead-letter topic may take.
const DLQ_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Run a `dlq` subcommand.
pub fn dlq(settings: Settings, command: DlqCommand) -> ExitCode {
    let DlqCommand::Replay { topic, offsets, reason, all, operator, dry_run } = command;
    if settings.event_bus.effective_kind() != EventBusKind::Kafka {
        eprintln!("dlq replay needs Kafka (KAFKA_BOOTSTRAP_SERVERS): the in-process bus lives in the service");
        return ExitCode::from(2);
    }
    let offsets: Result<Vec<(i32, i64)>, String> = offsets.iter().map(|o| dlq::parse_coordinates(o)).collect();
    let selection = match offsets {
        Ok(offsets) => Selection { offsets, reason, all },
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if selection.is_empty() {
        eprintln!("choose the letters to replay: --offset <partition>:<offset>, --reason <reason> or --all");
        return ExitCode::from(2);
    }
    if operator.trim().is_empty() {
        eprintln!("--operator names who replays, for the audit log");
        return ExitCode::from(2);
    }
    let result = actix_rt::System::new().block_on(replay(settings, topic, selection, operator, dry_run));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("dlq replay failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The audit log of a command run by an operator: next to the service's own file, never the same
/// one (each file has one writer).
fn operator_audit_file(live: &std::path::Path) -> PathBuf {
    let stem = live.file_stem().and_then(|s| s.to_str()).unwrap_or("audit");
    live.with_file_name(format!("{stem}-cli.log"))
}

async fn replay(
    mut settings: Settings,
    topic: String,
    selection: Selection,
    operator: String,
    dry_run: bool,
) -> anyhow::Result<ExitCode> {
    let bus = settings.event_bus.clone();
    let reader = (bus.clone(), topic.clone());
    let letters =
        tokio::task::spawn_blocking(move || kafka::read_all(&reader.0, &reader.1, DLQ_READ_TIMEOUT)).await??;
    let chosen: Vec<_> = letters.iter().filter(|l| selection.chooses(l)).collect();
    println!("{topic}: {} dead letters, {} chosen", letters.len(), chosen.len());
    if dry_run {
        for letter in &chosen {
            let reason = letter.header("dlq-reason").unwrap_or("?");
            println!("would replay {}:{} ({reason})", letter.partition, letter.offset);
        }
        return Ok(ExitCode::SUCCESS);
    }
    settings.audit.log_file = operator_audit_file(&settings.audit.log_file);
    let metrics = Metrics::new()?;
    let registry = Arc::new(Registry::default());
    let supervision = Supervision::new(registry.clone(), settings.supervision.clone(), metrics.clone());
    let audit = audit_writer::spawn(&supervision, &settings, registry, metrics, None)?;
    if audit.is_none() {
        eprintln!("the audit log is disabled (AUDIT_ENABLED=false): this replay is not recorded");
    }
    let publisher = Publisher::from_settings(&bus, &MemoryBroker::new())?;
    let mut failed = 0;
    for letter in chosen {
        let coordinates = format!("{topic}/{}/{}", letter.partition, letter.offset);
        let sent = match dlq::original(letter) {
            Ok(record) => {
                let to = record.topic.clone();
                publisher
                    .send(record)
                    .await
                    .map(|d| format!("{to}/{}/{}", d.partition, d.offset))
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e),
        };
        let outcome = match &sent {
            Ok(at) => {
                println!("replayed {coordinates} -> {at}");
                OUTCOME_SUCCESS
            }
            Err(e) => {
                eprintln!("cannot replay {coordinates}: {e}");
                failed += 1;
                OUTCOME_FAILURE
            }
        };
        if let Some(audit) = &audit {
            audit.record(AuditEvent {
                time: chrono::Utc::now(),
                subject: Some(operator.clone()),
                action: "dlq replay".into(),
                resource: coordinates,
                outcome: outcome.into(),
                status: 0,
                request_id: None,
                client_ip: None,
                count: None,
                money: None,
                reason: None,
                subject_index: None,
            });
        }
    }
    if let Some(audit) = &audit {
        audit.writer.ask(Flush).await??;
        println!("audited in {}", settings.audit.log_file.display());
    }
    supervision.shutdown(Duration::from_secs(5)).await;
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::ChainHead;

    fn summary(last_seq: u64, hash_at: Option<&str>) -> Summary {
        Summary {
            files: Vec::new(),
            records: last_seq,
            first_seq: Some(1),
            last_seq,
            last_hash: "h".into(),
            unkeyed: 0,
            hash_at: hash_at.map(str::to_string),
        }
    }

    fn recorded(seq: u64, hash: &str) -> RecordedHead {
        RecordedHead { head: ChainHead { seq, hash: hash.into() }, recorded_at: chrono::Utc::now() }
    }

    #[test]
    fn a_log_is_compared_with_its_recorded_head() {
        assert_eq!(compare_head(&summary(20, None), None), Ok(()));
        assert_eq!(compare_head(&summary(20, Some("a")), Some(&recorded(20, "a"))), Ok(()));
        assert_eq!(compare_head(&summary(25, Some("a")), Some(&recorded(20, "a"))), Ok(()), "the log went on");
        let cut = compare_head(&summary(17, None), Some(&recorded(20, "a"))).expect_err("cut short");
        assert!(cut.starts_with("TRUNCATED") && cut.contains("seq 17") && cut.contains("seq 20"), "{cut}");
        let rewritten = compare_head(&summary(25, Some("b")), Some(&recorded(20, "a"))).expect_err("rewritten");
        assert!(rewritten.starts_with("REWRITTEN"), "{rewritten}");
    }
}
