//! Acknowledgements from durable consumers and pruning of the event log.

use kit::{ApiError, identity::Caller};

use super::App;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::store::{event, events, retention};

impl App {
    pub async fn acknowledge_events(
        &self,
        caller: &Caller,
        consumer: &str,
        cursors: Vec<(String, i64)>,
    ) -> Result<(), ApiError> {
        for (i, (account, sequence)) in cursors.iter().enumerate() {
            if *sequence < 0 {
                return Err(ApiError::invalid(
                    format!("cursors[{i}].after_sequence"),
                    "must not be negative",
                ));
            }
            if !caller.is_service() && !super::same_account(caller, account) {
                return Err(ApiError::PermissionDenied(format!(
                    "cursors[{i}]: not your account"
                )));
            }
        }
        retention::acknowledge(&self.db, consumer, &cursors).await?;
        Ok(())
    }

    /// Removes events older than the retention that every consumer heard
    /// from within the consumer TTL has acknowledged. Returns how many went.
    pub async fn prune_events(&self) -> Result<u64, ApiError> {
        let now = kit::time::now_micros();
        let micros = |d: std::time::Duration| i64::try_from(d.as_micros()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(micros(self.config.event_retention));
        let consumers_since = now.saturating_sub(micros(self.config.consumer_ttl));
        let mut pruned = 0;
        for head in events::head_rows(&self.db, None).await? {
            pruned += retention::prune_account(&self.db, &head, cutoff, consumers_since).await?;
        }
        let retained = event::Entity::find().count(&self.db).await?;
        opentelemetry::global::meter("ticketing")
            .u64_gauge("ticketing.events.retained")
            .with_description("events in the log after pruning")
            .build()
            .record(retained, &[]);
        Ok(pruned)
    }
}
