//! The inbox service: conversations, messages, contacts and the agent's
//! sidebar. It forwards ticket management to ticketing and applies the
//! events ticketing streams back.

pub mod api;
pub mod app;
pub mod config;
pub mod convert;
pub mod follow;
pub mod replicas;
pub mod state;
pub mod store;
pub mod watch;

use kit::shutdown::{Draining, OwnedTask};
use proto::inbox::v1::inbox_service_server::InboxServiceServer;
use tokio::net::TcpListener;

pub use config::Config;

pub const SERVICE_NAME: &str = "inbox.v1.InboxService";

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Names the setting, so that start-up with a bad one says which.
    #[error(transparent)]
    Database(#[from] kit::pools::OpenError),
    #[error("ticketing address {url}: {source}")]
    TicketingUrl {
        url: String,
        source: tonic::transport::Error,
    },
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

/// Serves on `listener` and follows ticketing's events until `draining`
/// flips, then drains.
pub async fn run(
    config: Config,
    listener: TcpListener,
    draining: Draining,
) -> Result<(), RunError> {
    let auth = kit::auth::Authenticator::new(&config.auth)?;
    if config.auth.mode == kit::auth::Mode::Tokens && config.service_token.is_none() {
        // Every call to ticketing would be refused, and the consumer would
        // retry for ever: refuse to start instead.
        return Err(RunError::Auth(kit::config::ConfigError {
            key: "INBOX_SERVICE_TOKEN".into(),
            value: String::new(),
            reason: "is required in token mode (AUTH_MODE=jwt): the inbox's own token for calling ticketing".into(),
        }));
    }
    let (health, routes) = kit::server::health_and_reflection(SERVICE_NAME).await?;
    let url = kit::db::redacted(&config.database.url);
    let kit::pools::Pools { db, stream_db } = config
        .database
        .pools::<store::migration::Migrator>("inbox")
        .await?;
    let ticketing_url = config.ticketing_url.clone();
    let limits = config.limits.clone();
    let app = state::App::new(db, stream_db, config).map_err(|source| RunError::TicketingUrl {
        url: ticketing_url.clone(),
        source,
    })?;
    app.streams
        .observe("inbox", SERVICE_NAME, "WatchConversations");
    let consumer = OwnedTask::spawn(follow::consumer::run(app.clone(), draining.clone()));
    let deliverer = OwnedTask::spawn(follow::outbox::run(app.clone(), draining.clone()));
    let purge = OwnedTask::spawn(purge_loop(app.clone(), draining.clone()));
    let readiness = OwnedTask::spawn(kit::readiness::follow_database(
        app.stream_db.clone(),
        health.clone(),
        draining.clone(),
    ));
    let announcer = OwnedTask::spawn(kit::db::announce_commits(
        app.stream_db.clone(),
        store::changes::CHANGES_CHANNEL,
        app.changes.clone(),
        draining.clone(),
    ));
    let relay = OwnedTask::spawn(kit::db::relay_notifications(
        app.stream_db.clone(),
        store::changes::CHANGES_CHANNEL,
        app.changes.clone(),
        draining.clone(),
    ));
    // Every call is authenticated and checked against the role table
    // (kit::access) before a handler sees it; health and reflection stay
    // open for probes and grpcurl.
    let service = kit::access::Guarded::new(
        InboxServiceServer::new(api::Api::new(app, draining.clone()))
            .max_decoding_message_size(kit::server::MAX_MESSAGE_SIZE)
            .max_encoding_message_size(kit::server::MAX_MESSAGE_SIZE),
        auth,
    );
    health.serving().await;
    tracing::info!(
        listen = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        database = %url,
        ticketing = %ticketing_url,
        "inbox serving"
    );
    let served = kit::server::serve(
        listener,
        routes.add_service(service),
        health,
        &limits,
        draining,
    )
    .await;
    for (name, task) in [
        ("event consumer", consumer),
        ("outbox deliverer", deliverer),
        ("purge", purge),
        ("readiness", readiness),
        ("notification relay", relay),
        ("commit announcer", announcer),
    ] {
        task.join(name).await;
    }
    served?;
    tracing::info!("inbox stopped");
    Ok(())
}

/// R9: removes trashed conversations without a ticket once their retention
/// is over (ticketing directs the purge of the others).
async fn purge_loop(app: state::App, draining: Draining) {
    let interval = app.config.purge_interval;
    kit::shutdown::every(interval, draining, || {
        let app = app.clone();
        async move {
            match app.purge_expired().await {
                Ok(0) => {}
                Ok(purged) => tracing::info!(purged, "purged expired trash"),
                Err(err) => tracing::warn!(%err, "purge failed; retrying next round"),
            }
        }
    })
    .await
}

/// How the `inbox` binary plugs into the shared life cycle.
pub struct Binary;

impl kit::service::Service for Binary {
    type Config = Config;
    type Error = RunError;
    const NAME: &'static str = "inbox";

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
