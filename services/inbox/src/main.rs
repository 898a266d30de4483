//! `inbox`: reads configuration, starts telemetry, binds, serves until
//! SIGTERM or SIGINT, drains, flushes. `inbox migrate` only migrates.

use std::process::ExitCode;

use inbox::Config;
use kit::shutdown::Shutdown;

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_source(&kit::config::Environment) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("inbox: {err}");
            return ExitCode::from(2);
        }
    };
    let _telemetry = match kit::telemetry::init("inbox") {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("inbox: telemetry: {err}");
            return ExitCode::from(2);
        }
    };
    let result = match std::env::args().nth(1).as_deref() {
        Some("migrate") => inbox::migrate(&config).await.map(|()| {
            tracing::info!(database = %kit::db::redacted(&config.database_url), "migrations applied");
        }),
        None | Some("serve") => serve(config).await,
        Some(other) => {
            eprintln!("inbox: unknown command {other:?}; expected serve or migrate");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(%err, "inbox failed");
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: Config) -> Result<(), inbox::RunError> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| inbox::RunError::Serve(kit::server::ServeError::Bind(config.listen, err)))?;
    let shutdown = Shutdown::new();
    let draining = shutdown.draining();
    tokio::spawn(async move {
        kit::shutdown::signal().await;
        tracing::info!("signal received; draining");
        shutdown.trigger();
    });
    inbox::run(config, listener, draining).await
}
