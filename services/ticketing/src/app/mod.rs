//! Use cases: each runs one change in one transaction, with its events and
//! its idempotency record, and returns the API's view of the result.

mod accounts;
mod associate;
mod catalog;
mod history;
mod merge;
pub mod notify;
mod outcome;
mod pipelines;
mod properties;
mod retention;
mod tickets;
mod trash;
mod unmerge;
mod update;

use std::sync::Arc;

use kit::transaction::{Transactions, Tx};
use kit::{ApiError, identity::Caller};
use proto::ticketing::v1 as pb;
use sea_orm::DatabaseConnection;

use crate::{config::Config, store::events::EventBatch};

pub use accounts::NewAccount;
pub use merge::MergeInput;
pub use pipelines::check_pipeline;
pub use properties::check_definition;
pub use tickets::{NewTicket, TicketFilterInput};
pub use update::{TicketField, TicketUpdate};

pub use kit::signal::CommitSignal as EventSignal;

/// The PostgreSQL notification channel of event-log commits.
pub const EVENTS_CHANNEL: &str = "ticketing_events";

#[derive(Clone)]
pub struct App {
    pub db: DatabaseConnection,
    /// Opens the transactions of `db` (`kit::transaction`).
    pub transactions: Transactions,
    /// For the event watchers' reads only (`kit::db::stream_pool`).
    pub stream_db: DatabaseConnection,
    pub config: Arc<Config>,
    pub signal: EventSignal,
    /// How many WatchEvents streams this process serves at once.
    pub streams: kit::stream::StreamLimit,
    /// Accounts and stages read so far (they never change).
    pub catalog: Arc<catalog::Catalog>,
}

impl App {
    /// Begins the transaction of `use_case`, in a span of its own.
    pub async fn begin(&self, use_case: &'static str) -> Result<Tx, ApiError> {
        Ok(self.transactions.begin(use_case).await?)
    }

    /// Appends the batch as the transaction's last statements, commits, and
    /// wakes watchers.
    pub async fn commit(
        &self,
        txn: Tx,
        batch: EventBatch,
    ) -> Result<Vec<pb::Event>, kit::db::TxError> {
        let events = batch.append(&txn).await?;
        txn.commit().await?;
        if !events.is_empty() {
            self.signal.notify();
        }
        Ok(events)
    }
}

/// Who an event says acted.
pub fn actor(caller: &Caller) -> pb::Actor {
    let kind = if caller.user_id.is_some() {
        pb::ActorKind::User
    } else if caller.is_service() {
        pb::ActorKind::Service
    } else {
        pb::ActorKind::Unspecified
    };
    pb::Actor {
        kind: kind as i32,
        id: caller.actor_id(),
    }
}

/// Callers see only their own account, and a missing id and another
/// account's id look the same.
pub fn same_account(caller: &Caller, account_id: &str) -> bool {
    caller.account_id.as_deref() == Some(account_id)
}
