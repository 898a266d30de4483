//! The ticketing service: tickets, pipelines and every rule linking tickets
//! and conversations, with a durable event log streamed to the inbox.

pub mod api;
pub mod app;
pub mod config;
pub mod convert;
pub mod domain;
pub mod store;
pub mod stream;

use std::sync::Arc;

use kit::shutdown::{Draining, OwnedTask};
use proto::ticketing::v1::ticketing_service_server::TicketingServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

pub const SERVICE_NAME: &str = "ticketing.v1.TicketingService";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Names the setting, so that start-up with a bad one says which.
    #[error(transparent)]
    Database(#[from] kit::pools::OpenError),
    #[error("serve: {0}")]
    Serve(#[from] kit::server::ServeError),
    #[error("{0}")]
    Auth(#[from] kit::config::ConfigError),
}

/// Runs migrations on the configured database, then exits: for Kubernetes
/// migration jobs.
pub async fn migrate(config: &Config) -> Result<(), RunError> {
    config.database.open::<store::migration::Migrator>().await?;
    Ok(())
}

/// Serves on `listener` until `draining` flips, then drains.
pub async fn run(
    config: Config,
    listener: TcpListener,
    draining: Draining,
) -> Result<(), RunError> {
    let auth = kit::auth::Authenticator::new(&config.auth)?;
    let (health, routes) = kit::server::health_and_reflection(SERVICE_NAME).await?;
    let url = kit::db::redacted(&config.database.url);
    let kit::pools::Pools { db, stream_db } = config
        .database
        .pools::<store::migration::Migrator>("ticketing")
        .await?;
    let app = app::App {
        transactions: kit::transaction::Transactions::new("ticketing", db.clone()),
        db,
        stream_db,
        config: Arc::new(config.clone()),
        signal: app::EventSignal::default(),
        streams: kit::stream::StreamLimit::new(config.limits.max_streams),
        catalog: Default::default(),
    };
    app.streams
        .observe("ticketing", SERVICE_NAME, "WatchEvents");
    let purge = OwnedTask::spawn(purge_loop(app.clone(), draining.clone()));
    let readiness = OwnedTask::spawn(kit::readiness::follow_database(
        app.stream_db.clone(),
        health.clone(),
        draining.clone(),
    ));
    let announcer = OwnedTask::spawn(kit::db::announce_commits(
        app.stream_db.clone(),
        app::EVENTS_CHANNEL,
        app.signal.clone(),
        draining.clone(),
    ));
    let relay = OwnedTask::spawn(kit::db::relay_notifications(
        app.stream_db.clone(),
        app::EVENTS_CHANNEL,
        app.signal.clone(),
        draining.clone(),
    ));
    // Every call is authenticated and checked against the role table
    // (kit::access) before a handler sees it; health and reflection stay
    // open for probes and grpcurl.
    let service = kit::access::Guarded::new(
        TicketingServiceServer::new(api::Api::new(app, draining.clone()))
            .max_decoding_message_size(kit::server::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(kit::server::MAX_MESSAGE_SIZE),
        auth,
    );
    let routes = routes.add_service(service);
    health.serving().await;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        database = %url,
        "ticketing serving"
    );
    kit::server::serve(listener, routes, health, &config.limits, draining).await?;
    purge.join("purge").await;
    readiness.join("readiness").await;
    relay.join("notification relay").await;
    announcer.join("commit announcer").await;
    tracing::info!("ticketing stopped");
    Ok(())
}

/// R9: removes expired trash, and prunes the event log, every
/// `purge_interval` until draining.
async fn purge_loop(app: app::App, draining: Draining) {
    let interval = app.config.purge_interval;
    kit::shutdown::every(interval, draining, || {
        let app = app.clone();
        async move {
            match app.purge_expired().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired trash"),
                Err(err) => tracing::warn!(%err, "purge failed; retrying next round"),
            }
            match app.prune_events().await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "pruned events past their retention"),
                Err(err) => tracing::warn!(%err, "event pruning failed; retrying next round"),
            }
        }
    })
    .await
}

/// How the `ticketing` binary plugs into the shared life cycle.
pub struct Binary;

impl kit::service::Service for Binary {
    type Config = Config;
    type Error = RunError;
    const NAME: &'static str = "ticketing";

    fn config(source: &dyn kit::config::Source) -> Result<Config, kit::config::ConfigError> {
        Config::from_source(source)
    }

    fn listen(config: &Config) -> std::net::SocketAddr {
        config.listen
    }

    fn database(config: &Config) -> &str {
        &config.database.url
    }

    async fn migrate(config: &Config) -> Result<(), RunError> {
        migrate(config).await
    }

    async fn run(
        config: Config,
        listener: TcpListener,
        draining: Draining,
    ) -> Result<(), RunError> {
        run(config, listener, draining).await
    }
}
