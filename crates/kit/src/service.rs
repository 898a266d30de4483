//! The life of a service binary, shared by both: read settings, start
//! telemetry, then either migrate and exit or bind, serve until SIGTERM or
//! SIGINT, drain and flush.

use std::{future::Future, net::SocketAddr, process::ExitCode};

use crate::{
    config::{ConfigError, Source},
    shutdown::{Draining, Shutdown},
};

/// What a service binary plugs into [`main`].
pub trait Service {
    type Config;
    type Error: std::fmt::Display;
    /// The binary's name, for messages and telemetry.
    const NAME: &'static str;

    fn config(source: &dyn Source) -> Result<Self::Config, ConfigError>;
    fn listen(config: &Self::Config) -> SocketAddr;
    fn database(config: &Self::Config) -> &str;
    fn migrate(config: &Self::Config) -> impl Future<Output = Result<(), Self::Error>>;
    fn run(
        config: Self::Config,
        listener: tokio::net::TcpListener,
        draining: Draining,
    ) -> impl Future<Output = Result<(), Self::Error>>;
}

/// What a service binary is asked to do.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Migrate the database, then serve until SIGTERM or SIGINT (the default)
    Serve,
    /// Migrate the database, then exit (for Kubernetes Jobs)
    Migrate,
    /// Print a token signed with the configured HS256 key (AUTH_HS256_SECRET)
    Token(crate::token::TokenArgs),
}

#[derive(Debug, clap::Parser)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

/// `<binary> [serve]` serves; `<binary> migrate` only migrates;
/// `<binary> token …` mints a token. Exit code 2 means bad usage or
/// settings, 1 a failure while running.
pub async fn main<S: Service>() -> ExitCode {
    use clap::{CommandFactory, FromArgMatches};
    let cli = Cli::command()
        .name(S::NAME)
        .about(format!(
            "The {} service; settings come from the environment (README: Configuration)",
            S::NAME
        ))
        .get_matches();
    let command = match Cli::from_arg_matches(&cli) {
        Ok(cli) => cli.command.unwrap_or(Command::Serve),
        Err(err) => err.exit(),
    };
    let migrate_only = match command {
        Command::Serve => false,
        Command::Migrate => true,
        Command::Token(args) => return print_token(S::NAME, &args),
    };
    let config = match S::config(&crate::config::Environment) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("{}: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let _telemetry = match crate::telemetry::init(S::NAME) {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("{}: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let outcome = if migrate_only {
        S::migrate(&config).await.map(|()| {
            tracing::info!(database = %crate::db::redacted(S::database(&config)), "migrations applied");
        })
    } else {
        let addr = S::listen(&config);
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::error!(%addr, %err, "cannot listen");
                return ExitCode::FAILURE;
            }
        };
        let shutdown = Shutdown::new();
        let draining = shutdown.draining();
        tokio::spawn(async move {
            crate::shutdown::signal().await;
            tracing::info!("signal received; draining");
            shutdown.trigger();
        });
        S::run(config, listener, draining).await
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "{} failed", S::NAME);
            ExitCode::FAILURE
        }
    }
}

/// Only the token goes to stdout, so that `$(… token …)` captures it.
fn print_token(name: &str, args: &crate::token::TokenArgs) -> ExitCode {
    match crate::auth::AuthConfig::from_source(&crate::config::Environment)
        .and_then(|auth| crate::token::mint(&auth, args))
    {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{name}: {err}");
            ExitCode::from(2)
        }
    }
}
