//! Command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::{
    actors::audit::housekeeping::log_name,
    adapters::{
        audit_heads::{self, RecordedHead},
        postgres,
    },
    config::DatabaseSettings,
    domain::audit::{
        verify::{verify_files, Check, LogSet, Start, Summary, VerifyError},
        AuditKeys, ChainBreak,
    },
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
