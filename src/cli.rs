//! Command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use std::{sync::Arc, time::Duration};

use crate::{
    actors::{
        audit::{self as audit_writer, messages::Flush},
        runtime::{Registry, Supervision},
    },
    adapters::bus::{
        dlq::{self, Selection},
        kafka, MemoryBroker, Publisher,
    },
    config::{EventBusKind, Settings},
    domain::audit::{
        verify::{verify_files, LogSet, Start, Summary, VerifyError},
        AuditEvent, OUTCOME_FAILURE, OUTCOME_SUCCESS,
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
    /// oldest first, then `audit.log`). Exits 0 with a summary (files, records, first and last
    /// seq, last hash) when the chain is intact, 1 naming the first broken record (file, line,
    /// expected and found), 2 when a file cannot be read.
    Verify {
        /// Audit log files; each is verified with the rotated set it belongs to.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Accept a set whose first record continues an older chain (older files archived)
        /// instead of requiring it to start at seq 1.
        #[arg(long)]
        partial: bool,
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
        AuditCommand::Verify { paths, partial } => {
            verify_audit(&paths, if partial { Start::Continuing } else { Start::Genesis })
        }
    }
}

fn verify_audit(paths: &[PathBuf], start: Start) -> ExitCode {
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
    let mut code = ExitCode::SUCCESS;
    for set in &sets {
        match verify_files(&set.files, start) {
            Ok(summary) => print_summary(set, &summary),
            Err(VerifyError::Broken(broken)) => {
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

fn print_summary(set: &LogSet, summary: &Summary) {
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
    let audit = audit_writer::spawn(&supervision, &settings, registry, metrics)?;
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
