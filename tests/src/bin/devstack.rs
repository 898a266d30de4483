//! `cargo dev`: both services in one process, on SQLite files under
//! `./data/` unless configured otherwise, until Ctrl-C. For laptops only:
//! it runs in development mode, where callers name their account in
//! metadata (see docs/security.md).

use std::process::ExitCode;

use kit::shutdown::Shutdown;

#[tokio::main]
async fn main() -> ExitCode {
    let env = kit::config::Environment;
    let (ticketing_config, inbox_config) = match (
        ticketing::Config::from_source(&env),
        inbox::Config::from_source(&env),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(err), _) | (_, Err(err)) => {
            eprintln!("devstack: {err}");
            return ExitCode::from(2);
        }
    };
    // The laptop stack runs in development mode unless told otherwise.
    let (mut ticketing_config, mut inbox_config) = (ticketing_config, inbox_config);
    let development = std::env::var("AUTH_MODE").is_err();
    if development {
        ticketing_config.auth = kit::auth::AuthConfig::development();
        inbox_config.auth = kit::auth::AuthConfig::development();
    }
    let _telemetry = match kit::telemetry::init("devstack") {
        Ok(guard) => guard,
        Err(err) => {
            eprintln!("devstack: telemetry: {err}");
            return ExitCode::from(2);
        }
    };
    let bind = |addr| async move {
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|err| format!("cannot listen on {addr}: {err}"))
    };
    let (ticketing_listener, inbox_listener) = match (
        bind(ticketing_config.listen).await,
        bind(inbox_config.listen).await,
    ) {
        (Ok(t), Ok(i)) => (t, i),
        (Err(err), _) | (_, Err(err)) => {
            tracing::error!("{err}");
            return ExitCode::FAILURE;
        }
    };
    let hint = if development {
        "development mode (no tokens): name the caller in metadata, e.g.\n  grpcurl -plaintext -H 'x-account-id: <account id>' -H 'x-user-id: agent-1' …"
    } else {
        "token mode: send -H 'authorization: Bearer <jwt>' (docs/security.md)"
    };
    println!(
        "\n  ticketing  {}\n  inbox      {}\n\n  {hint}\n",
        ticketing_config.listen, inbox_config.listen
    );
    let shutdown = Shutdown::new();
    let ticketing = {
        let draining = shutdown.draining();
        tokio::spawn(async move {
            ticketing::run(ticketing_config, ticketing_listener, draining)
                .await
                .map_err(|e| e.to_string())
        })
    };
    let inbox = {
        let draining = shutdown.draining();
        tokio::spawn(async move {
            inbox::run(inbox_config, inbox_listener, draining)
                .await
                .map_err(|e| e.to_string())
        })
    };
    kit::shutdown::signal().await;
    tracing::info!("signal received; draining");
    shutdown.trigger();
    let mut code = ExitCode::SUCCESS;
    for (name, task) in [("ticketing", ticketing), ("inbox", inbox)] {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::error!(service = name, %err, "service failed");
                code = ExitCode::FAILURE;
            }
            Err(err) => {
                tracing::error!(service = name, %err, "service panicked");
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}
