//! Command line.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand};

use crate::domain::audit::verify::{verify_files, LogSet, Start, Summary, VerifyError};

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
