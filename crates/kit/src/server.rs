//! The one gRPC server builder both services use: health, reflection, limits
//! and the drain sequence.

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic_health::{ServingStatus, server::HealthReporter};

use crate::shutdown::Draining;

/// The largest message either service accepts or sends (4 MiB).
pub const MAX_MESSAGE_SIZE: usize = 4 * 1024 * 1024;

/// Transport limits, shared by both services.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Calls without a `grpc-timeout` get this deadline.
    pub default_timeout: Duration,
    /// In-flight calls per connection before new ones wait.
    pub concurrency_per_connection: usize,
    /// In-flight calls across all connections; more are refused at once
    /// with RESOURCE_EXHAUSTED.
    pub max_concurrent_calls: usize,
    /// Server streams (WatchEvents, WatchConversations) served at once.
    pub max_streams: usize,
    /// How long in-flight calls may take to finish once draining starts.
    pub drain_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            default_timeout: Duration::from_secs(30),
            concurrency_per_connection: 256,
            max_concurrent_calls: 512,
            max_streams: 2_000,
            drain_grace: Duration::from_secs(20),
        }
    }
}

/// Health is served before the service is ready, as NOT_SERVING, and flips
/// with [`Health::serving`] and [`Health::draining`]. Two answers: `""`
/// (the whole server: liveness) and the service's own name (readiness),
/// which is also NOT_SERVING while the database cannot be reached
/// ([`crate::readiness`]).
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    service_name: &'static str,
    /// Held while statuses are set, so concurrent changes land in order.
    state: std::sync::Arc<tokio::sync::Mutex<Lifecycle>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Lifecycle {
    started: bool,
    draining: bool,
    database_down: bool,
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}

impl Health {
    pub async fn serving(&self) {
        self.update(|s| s.started = true).await;
    }

    pub async fn draining(&self) {
        self.update(|s| s.draining = true).await;
    }

    /// Readiness follows the database; liveness does not.
    pub async fn database_reachable(&self, reachable: bool) {
        self.update(|s| s.database_down = !reachable).await;
    }

    async fn update(&self, change: impl FnOnce(&mut Lifecycle)) {
        let mut state = self.state.lock().await;
        change(&mut state);
        let live = state.started && !state.draining;
        self.reporter.set_service_status("", status(live)).await;
        self.reporter
            .set_service_status(self.service_name, status(live && !state.database_down))
            .await;
    }
}

/// Builds health and reflection; `service_name` is the fully qualified gRPC
/// service name (e.g. `ticketing.v1.TicketingService`).
pub async fn health_and_reflection(
    service_name: &'static str,
) -> Result<(Health, Routes), ServeError> {
    let (reporter, health_service) = tonic_health::server::health_reporter();
    let health = Health {
        reporter,
        service_name,
        state: Default::default(),
    };
    health.update(|_| {}).await;
    let routes = Routes::new(health_service)
        .add_service(
            reflection(service_name)
                .build_v1()
                .map_err(|err| ServeError::Reflection(err.to_string()))?,
        )
        .add_service(
            reflection(service_name)
                .build_v1alpha()
                .map_err(|err| ServeError::Reflection(err.to_string()))?,
        );
    Ok((health, routes))
}

/// Reflection for one port. The descriptor set holds both services' files
/// (the inbox's imports ticketing's), so the list is narrowed to what this
/// port answers. The `google.rpc` error-detail types are described too:
/// grpcurl decodes `grpc-status-details-bin` only for types reflection
/// knows, and prints the rest as raw bytes.
fn reflection(service_name: &'static str) -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_types::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(service_name)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_V1)
        .with_service_name(REFLECTION_V1ALPHA)
}

const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
const REFLECTION_V1: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_V1ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("reflection: {0}")]
    Reflection(String),
    #[error("transport: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// How long a client connection lives before the server asks the client
/// (GOAWAY) to open a new one.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);

/// Serves `routes` on `listener` until draining starts, then stops taking
/// calls and gives in-flight ones `limits.drain_grace` to finish. Streams
/// end themselves (with UNAVAILABLE) when they see the drain.
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    health: Health,
    limits: &Limits,
    mut draining: Draining,
) -> Result<(), ServeError> {
    let mut drain_started = draining.clone();
    let service_name = health.service_name;
    let server = tonic::transport::Server::builder()
        // Each call runs in a span that continues the caller's W3C trace.
        .trace_fn(crate::observe::server_span)
        // Every call has a deadline, even when the client sets none.
        .timeout(limits.default_timeout)
        .concurrency_limit_per_connection(limits.concurrency_per_connection)
        // Dead peers are found and their streams freed.
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(Duration::from_secs(10)))
        .max_concurrent_streams(Some(limits.concurrency_per_connection as u32))
        // Long-lived clients reconnect now and then, so replicas added
        // since (an HPA scale-out) get their share of the calls; the grace
        // lets calls in flight finish, and a stream that outlives it is
        // resumed from its cursor on a new connection.
        .max_connection_age(MAX_CONNECTION_AGE)
        .max_connection_age_grace(Duration::from_secs(30))
        .tcp_nodelay(true)
        // Outermost, so the duration and status of every call are counted,
        // refusals by the limits included.
        .layer(crate::observe::RpcMetricsLayer::new(service_name))
        // Then tonic's refusals of undecodable or oversized bodies become
        // the caller's errors (INVALID_ARGUMENT, RESOURCE_EXHAUSTED), and
        // are counted as such.
        .layer(crate::refusals::RefusalsLayer)
        // Then shed load beyond the global limit, before any work is done.
        .layer(crate::observe::AdmissionLayer::new(
            limits.max_concurrent_calls,
        ))
        .add_routes(routes)
        // Nagle's algorithm off on accepted connections (the builder's
        // `tcp_nodelay` applies only to listeners tonic binds itself): a
        // reply written in two segments would wait ~40 ms for a delayed ACK.
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                draining.wait().await;
                health.draining().await;
            },
        );
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ServeError::from),
        _ = drain_started.wait() => {}
    }
    match tokio::time::timeout(limits.drain_grace, server).await {
        Ok(result) => result.map_err(ServeError::from),
        Err(_) => {
            tracing::warn!(grace = ?limits.drain_grace, "drain grace period over; dropping remaining calls");
            Ok(())
        }
    }
}
