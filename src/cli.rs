//! Command line.

use clap::{Parser, Subcommand};

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
    /// Inspect the configuration.
    Config {
        /// What to do with it.
        #[command(subcommand)]
        action: ConfigCommand,
    },
}

/// `config` subcommands.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the settings and print the effective configuration with secrets redacted.
    Check,
}
