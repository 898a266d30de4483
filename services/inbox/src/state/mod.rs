//! What every part of the inbox shares: the database pools, the
//! configuration, ticketing's replicas and the signals that wake streams and
//! the outbox deliverer. The use cases (`app`), the follower of ticketing's
//! events (`follow`) and WatchConversations (`watch`) all hold an [`App`];
//! this module calls none of them.

pub mod applied;

use std::sync::Arc;

use kit::{ApiError, identity::Caller};
use sea_orm::DatabaseConnection;

use crate::config::Config;

/// The name the inbox gives itself when it calls ticketing.
pub const SERVICE_IDENTITY: &str = "inbox";

#[derive(Clone)]
pub struct App {
    pub db: DatabaseConnection,
    /// Opens the transactions of `db` (`kit::transaction`).
    pub transactions: kit::transaction::Transactions,
    /// For WatchConversations' reads only (`kit::db::stream_pool`).
    pub stream_db: DatabaseConnection,
    pub config: Arc<Config>,
    pub ticketing: crate::replicas::Replicas,
    /// Wakes WatchConversations streams after a conversation change commits.
    pub changes: kit::signal::CommitSignal,
    /// Wakes the outbox deliverer when a report is queued.
    pub outbox_ready: Arc<tokio::sync::Notify>,
    /// This process, as a lease holder among replicas.
    pub instance: String,
    /// How the inbox presents itself to ticketing.
    pub credentials: kit::identity::ServiceCredentials,
    /// How many WatchConversations streams this process serves at once.
    pub streams: kit::stream::StreamLimit,
    /// Ticket versions known applied, so their events are skipped.
    pub applied: Arc<applied::AppliedTickets>,
}

impl App {
    pub fn new(
        db: DatabaseConnection,
        stream_db: DatabaseConnection,
        config: Config,
    ) -> Result<Self, tonic::transport::Error> {
        let ticketing = crate::replicas::Replicas::new(
            &config.ticketing_url,
            config.ticketing_resolver.clone(),
            config.ticketing_resolve_interval,
        )?;
        let max_streams = config.limits.max_streams;
        let credentials = kit::identity::ServiceCredentials {
            name: SERVICE_IDENTITY.to_owned(),
            token: match &config.service_token_file {
                Some(path) => kit::identity::ServiceToken::file(
                    path,
                    config.service_token.clone().unwrap_or_default(),
                ),
                None => kit::identity::ServiceToken::fixed(config.service_token.clone()),
            },
        };
        Ok(Self {
            transactions: kit::transaction::Transactions::new(SERVICE_IDENTITY, db.clone()),
            db,
            stream_db,
            config: Arc::new(config),
            ticketing,
            changes: Default::default(),
            outbox_ready: Default::default(),
            instance: kit::new_id(),
            credentials,
            streams: kit::stream::StreamLimit::new(max_streams),
            applied: Default::default(),
        })
    }

    /// Calls ticketing on behalf of `caller`, with the configured deadline,
    /// on whichever replica is in turn (and another if that one cannot be
    /// reached).
    pub async fn call_ticketing<T, R, F, Fut>(
        &self,
        caller: &Caller,
        message: T,
        send: F,
    ) -> Result<tonic::Response<R>, tonic::Status>
    where
        T: Clone,
        F: Fn(crate::replicas::Client, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let request = self.to_ticketing(caller, message);
        self.ticketing
            .call(request, Some(self.config.ticketing_timeout), send)
            .await
    }

    /// A request to ticketing on behalf of `caller`, with a deadline.
    pub fn to_ticketing<T>(&self, caller: &Caller, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.config.ticketing_timeout);
        caller.forward(&self.credentials, request.metadata_mut());
        request
    }
}

/// Ticketing's refusals pass through untouched; its absence is UNAVAILABLE.
pub fn from_ticketing(status: tonic::Status) -> ApiError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Unknown => {
            tracing::warn!(code = ?status.code(), message = status.message(), "ticketing unreachable");
            ApiError::Unavailable("ticketing is unavailable; try again".into())
        }
        _ => ApiError::Upstream(Box::new(status)),
    }
}

/// The store's record of who made a change, from the caller.
pub(crate) fn reporter(caller: &Caller) -> crate::store::changes::Reporter {
    crate::store::changes::Reporter {
        user_id: caller.user_id.clone(),
        traceparent: caller.trace_context.get("traceparent").cloned(),
    }
}
