use std::process::ExitCode;

use beryl_core_api::{
    auth::KeySet,
    cli::{self, Cli, Command, ConfigCommand, TokenCommand},
    config::{Environment, Settings, Sources},
    startup::{shutdown_signal, Application},
    telemetry,
};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command = match cli.command.unwrap_or(Command::Serve) {
        // Offline tools: they work without (valid) service settings.
        Command::Audit { action } => return cli::audit(action),
        command => command,
    };
    let settings = match Settings::load(&Sources::default()) {
        Ok(settings) => settings,
        Err(problems) => {
            eprint!("{problems}");
            return ExitCode::from(2);
        }
    };
    match command {
        Command::Audit { action } => cli::audit(action),
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
        Command::Token { action: TokenCommand::Mint { subject, scopes, ttl_secs } } => {
            mint(&settings, &subject, &scopes, ttl_secs)
        }
        Command::Migrate => migrate(&settings),
        Command::Dlq { action } => cli::dlq(settings, action),
        Command::Privacy { action } => cli::privacy(&settings, action),
        Command::Esg { action } => cli::esg(&settings, action),
        Command::Serve => serve(settings),
    }
}

fn mint(settings: &Settings, subject: &str, scopes: &[String], ttl_secs: i64) -> ExitCode {
    if settings.environment == Environment::Production {
        eprintln!("token mint is refused in production: tokens come from the identity provider");
        return ExitCode::from(2);
    }
    let max = settings.auth.max_token_lifetime_secs;
    if ttl_secs <= 0 || ttl_secs as u64 > max {
        eprintln!("--ttl-secs must be between 1 and {max} (auth.max_token_lifetime_secs)");
        return ExitCode::from(2);
    }
    let token = KeySet::from_settings(&settings.auth)
        .and_then(|keys| keys.mint(subject, scopes, chrono::Duration::seconds(ttl_secs)));
    match token {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cannot mint a token: {e:#}");
            ExitCode::FAILURE
        }
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

fn migrate(settings: &Settings) -> ExitCode {
    let config = match beryl_core_api::adapters::postgres::connect_config(&settings.database) {
        Ok(Some(config)) => config,
        Ok(None) => {
            eprintln!("migrate needs DATABASE_URL: the embedded mode has no database");
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("invalid DATABASE_URL: {e}");
            return ExitCode::from(2);
        }
    };
    let result = actix_rt::System::new().block_on(async move {
        let mut client = beryl_core_api::adapters::postgres::connect(&config).await?;
        let report = beryl_core_api::adapters::migrate::run(&mut client).await?;
        // Personal data written before the privacy module is sealed now: that needs the keys.
        let pool = beryl_core_api::adapters::postgres::build_pool(&settings.database)?;
        let vault = beryl_core_api::adapters::privacy::Vault::for_pool(pool, &settings.privacy);
        let sealed = beryl_core_api::adapters::ledger::sealing::seal_existing(&client, &vault, 500).await?;
        Ok::<_, anyhow::Error>((report, sealed))
    });
    match result {
        Ok((report, sealed)) => {
            println!("applied: {:?}; already present: {:?}", report.applied, report.present);
            println!(
                "sealed: {} wallet owners, {} references, {} idempotency keys",
                sealed.owners, sealed.references, sealed.kept
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migration failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}
