//! `ticketing`: reads configuration, starts telemetry, binds, serves until
//! SIGTERM or SIGINT, drains, flushes. `ticketing migrate` only migrates.

use std::process::ExitCode;

use kit::shutdown::Shutdown;
use ticketing::Config;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_source(&kit::config::Environment) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("ticketing: {err}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = match kit::telemetry::init("ticketing") {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("ticketing: telemetry: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match std::env::args().nth(1).as_deref() {
        Some("migrate") => ticketing::migrate(&config).await.map(|()| {
            tracing::info!(database = %kit::db::redacted(&config.database_url), "migrations applied");
        }),
        None | Some("serve") => serve(config).await,
        Some(other) => {
            eprintln!("ticketing: unknown command {other:?}; expected serve or migrate");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "ticketing failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), ticketing::RunError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| {
            ticketing::RunError::Serve(kit::server::ServeError::Bind(config.listen, err))
        })?;
    let shutdown = Shutdown::new();
    let draining = shutdown.draining();
    tokio::spawn(async move {
        kit::shutdown::signal().await;
        tracing::info!("signal received; draining");
        shutdown.trigger();
    });
    ticketing::run(config, listener, draining).await
}
