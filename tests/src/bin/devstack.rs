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
use tokio::net::TcpListener;
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
    let (ticketing_listener, inbox_listener) = match (
        listen(ticketing_config.listen, PORT_RELEASE).await,
        listen(inbox_config.listen, PORT_RELEASE).await,
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

/// Linux keeps a closed connection's port for 60 s (TIME_WAIT); a margin.
const PORT_RELEASE: Duration = Duration::from_secs(65);

/// Listens on `addr`, failing at once if another process listens there. A
/// port nobody listens on can still be held by a client connection closed
/// within the last minute: `cargo test` just before leaves thousands of
/// them on ports picked at random, 50051 and 50052 among them. That wait
/// ends by itself, so it is waited out, up to `patience`, and said.
async fn listen(addr: SocketAddr, patience: Duration) -> Result<TcpListener, String> {
    let deadline = tokio::time::Instant::now() + patience;
    let mut said = false;
    loop {
        let err = match TcpListener::bind(addr).await {
            Ok(listener) => return Ok(listener),
            Err(err) => err,
        };
        if err.kind() != std::io::ErrorKind::AddrInUse {
            return Err(format!("cannot listen on {addr}: {err}"));
        }
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Err(format!(
                "cannot listen on {addr}: another process listens there"
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "cannot listen on {addr}: a closed connection (TIME_WAIT) still holds the port after {} s",
                patience.as_secs()
            ));
        }
        if !said {
            eprintln!(
                "devstack: {addr} is held by a connection closed within the last minute (TIME_WAIT); waiting for the kernel to release it"
            );
            said = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_port_another_process_listens_on_fails_at_once() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = taken.local_addr().expect("addr");
        let started = std::time::Instant::now();
        let err = listen(addr, Duration::from_secs(30))
            .await
            .expect_err("the port is taken");
        assert!(err.contains("another process listens there"), "{err}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// The state `cargo test` leaves behind: the client side of a closed
    /// connection holds its port for a minute, with nobody listening.
    #[tokio::test]
    async fn a_port_held_by_a_closed_connection_is_waited_for() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let server = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let client = tokio::net::TcpSocket::new_v4().expect("socket");
        client.bind(port).expect("bind the client to the port");
        let stream = client
            .connect(server.local_addr().expect("addr"))
            .await
            .expect("connect");
        let (accepted, _) = server.accept().await.expect("accept");
        // The side that closes first keeps the port in TIME_WAIT.
        drop(stream);
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(accepted);
        tokio::time::sleep(Duration::from_millis(100)).await;

        let started = std::time::Instant::now();
        let err = listen(port, Duration::from_secs(1))
            .await
            .expect_err("TIME_WAIT holds the port for a minute");
        assert!(err.contains("TIME_WAIT"), "{err}");
        assert!(started.elapsed() >= Duration::from_secs(1));
    }

    #[tokio::test]
    async fn a_free_port_is_listened_on() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let listener = listen(port, Duration::from_secs(1)).await.expect("listen");
        assert_eq!(listener.local_addr().expect("addr"), port);
    }
}
