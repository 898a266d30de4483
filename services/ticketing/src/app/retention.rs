//! Acknowledgements from durable consumers and pruning of the event log.

use kit::ApiError;

use super::App;
use sea_orm::{EntityTrait, PaginatorTrait};

use crate::store::{event, events, retention};

impl App {
    /// Records how far a durable consumer applied each account's events.
    /// Only internal services get here (kit::access). A cursor beyond the
    /// account's head would let pruning pass events not yet written, so it is
    /// OUT_OF_RANGE, as is one for an account that has no log.
    pub async fn acknowledge_events(
        &self,
        consumer: &str,
        cursors: Vec<(String, i64)>,
    ) -> Result<(), ApiError> {
        for (i, (_, sequence)) in cursors.iter().enumerate() {
            if *sequence < 0 {
                return Err(ApiError::invalid(
                    format!("cursors[{i}].after_sequence"),
                    "must not be negative",
                ));
            }
        }
        let accounts: Vec<String> = cursors.iter().map(|(a, _)| a.clone()).collect();
        let heads: std::collections::HashMap<String, i64> =
            events::heads(&self.db, Some(&accounts))
                .await?
                .into_iter()
                .collect();
        for (i, (account, sequence)) in cursors.iter().enumerate() {
            let head = heads.get(account).copied().unwrap_or(0);
            if *sequence > head {
                return Err(ApiError::OutOfRange {
                    reason: "CURSOR_AHEAD_OF_HEAD",
                    message: format!(
                        "cursors[{i}].after_sequence {sequence} is beyond the account's last event {head}"
                    ),
                    metadata: vec![
                        ("field".into(), format!("cursors[{i}].after_sequence")),
                        ("head".into(), head.to_string()),
                    ],
                });
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
