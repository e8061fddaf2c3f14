use std::process::ExitCode;

use beryl_core_api::{
    cli::{Cli, Command, ConfigCommand},
    config::{Settings, Sources},
    startup::{shutdown_signal, Application},
    telemetry,
};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&Sources::default()) {
        Ok(settings) => settings,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::from(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve) {
        Command::Config { action: ConfigCommand::Check } => {
            match serde_json::to_string_pretty(&settings.redacted_json()) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    eprintln!("cannot render the configuration: {e}");
                    return ExitCode::FAILURE;
                }
            }
            eprintln!("configuration is valid");
            ExitCode::SUCCESS
        }
        Command::Serve => serve(settings),
    }
}

fn serve(settings: Settings) -> ExitCode {
    let _telemetry = match telemetry::init(&settings) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("cannot start telemetry: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if settings.is_embedded() {
        tracing::warn!(
            "EMBEDDED MODE: no DATABASE_URL, REDIS_URL or Kafka configured; everything runs in memory and NOTHING IS DURABLE"
        );
    }
    let result = actix_rt::System::new().block_on(async move {
        let app = Application::build(settings).await?;
        app.run_until_stopped(shutdown_signal()).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "service stopped with an error");
            ExitCode::FAILURE
        }
    }
}
