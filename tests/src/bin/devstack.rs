//! `cargo dev`: both services in one process, on SQLite files under
//! `./data/` unless configured otherwise, until Ctrl-C. For laptops only:
//! it runs in development mode, where callers name their account in
//! metadata (see docs/security.md).
//!
//! It fails fast: a bad setting, or a service that cannot start (say, an
//! unreachable database), stops the whole stack with one line naming the
//! cause and a non-zero exit, and the banner only prints once both serve.

use std::{net::SocketAddr, process::ExitCode, time::Duration};

use kit::shutdown::Shutdown;
type Outcome = Result<(), String>;

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
            eprintln!("devstack: {err}");
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
            eprintln!("devstack: {err}");
            return ExitCode::FAILURE;
        }
    };
    let addrs = (ticketing_config.listen, inbox_config.listen);
    let shutdown = Shutdown::new();
    let mut ticketing = {
        let draining = shutdown.draining();
        tokio::spawn(async move {
            ticketing::run(ticketing_config, ticketing_listener, draining)
                .await
                .map_err(|e| e.to_string())
        })
    };
    let mut inbox = {
        let draining = shutdown.draining();
        tokio::spawn(async move {
            inbox::run(inbox_config, inbox_listener, draining)
                .await
                .map_err(|e| e.to_string())
        })
    };
    let announce = async {
        serving(addrs.0).await;
        serving(addrs.1).await;
        banner(addrs, development);
        std::future::pending::<std::convert::Infallible>().await
    };
    // Whichever comes first: Ctrl-C, or a service that stopped on its own
    // (it failed to start, or failed while serving). Either stops both.
    let (stopped_early, still_running) = tokio::select! {
        _ = kit::shutdown::signal() => (None, vec![("ticketing", ticketing), ("inbox", inbox)]),
        outcome = &mut ticketing => (Some(("ticketing", flatten(outcome))), vec![("inbox", inbox)]),
        outcome = &mut inbox => (Some(("inbox", flatten(outcome))), vec![("ticketing", ticketing)]),
        never = announce => match never {},
    };
    shutdown.trigger();
    let mut code = ExitCode::SUCCESS;
    match stopped_early {
        None => tracing::info!("signal received; draining"),
        Some((name, outcome)) => {
            let cause = outcome.err().unwrap_or_else(|| "stopped".into());
            eprintln!("devstack: {name}: {cause}");
            code = ExitCode::FAILURE;
        }
    }
    for (name, task) in still_running {
        if let Err(err) = flatten(task.await) {
            eprintln!("devstack: {name}: {err}");
            code = ExitCode::FAILURE;
        }
    }
    code
}

fn flatten(joined: Result<Outcome, tokio::task::JoinError>) -> Outcome {
    joined.unwrap_or_else(|err| Err(format!("panicked: {err}")))
}

/// Waits until the service at `addr` answers health checks with SERVING.
async fn serving(addr: SocketAddr) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    loop {
        if let Ok(endpoint) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            && let Ok(channel) = endpoint.connect().await
            && let Ok(answer) = HealthClient::new(channel)
                .check(HealthCheckRequest::default())
                .await
            && answer.into_inner().status == ServingStatus::Serving as i32
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn banner((ticketing, inbox): (SocketAddr, SocketAddr), development: bool) {
    let hint = if development {
        "development mode (no tokens): name the caller in metadata, e.g.\n  grpcurl -plaintext -H 'x-account-id: <account id>' -H 'x-user-id: agent-1' …"
    } else {
        "token mode: send -H 'authorization: Bearer <jwt>' (docs/security.md)"
    };
    println!("\n  ticketing  {ticketing}\n  inbox      {inbox}\n\n  {hint}\n");
}
