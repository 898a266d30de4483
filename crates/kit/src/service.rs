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

/// `<binary> [serve]` serves; `<binary> migrate` only migrates. Exit code 2
/// means bad usage or settings, 1 a failure while running.
pub async fn main<S: Service>() -> ExitCode {
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
            eprintln!("{}: telemetry: {err}", S::NAME);
            return ExitCode::from(2);
        }
    };
    let outcome = match std::env::args().nth(1).as_deref() {
        Some("migrate") => S::migrate(&config).await.map(|()| {
            tracing::info!(database = %crate::db::redacted(S::database(&config)), "migrations applied");
        }),
        None | Some("serve") => {
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
        }
        Some(other) => {
            eprintln!("{}: unknown command {other:?}; expected serve or migrate", S::NAME);
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "{} failed", S::NAME);
            ExitCode::FAILURE
        }
    }
}
