//! Delivers the inbox's reports to ticketing (owner changed, closed,
//! reopened, trashed, restored, incoming mail). A report is queued in the
//! transaction of the change it reports; it leaves the queue only in the
//! transaction that applies ticketing's answer, so it is delivered at least
//! once, and ticketing's request-id idempotency and version check make that
//! one effect.

use std::time::Duration;

use kit::{identity::Caller, shutdown::Draining};
use prost::Message;
use proto::ticketing::v1 as tpb;

use super::apply;
use crate::{
    state::App,
    store::{changes, outbox},
};

/// How long a call that reports a change waits for ticketing's decision
/// before answering with what the inbox knows.
pub(crate) const SYNC_DELIVERY_TIMEOUT: Duration = Duration::from_secs(2);
const BATCH: u64 = 100;

#[derive(Debug)]
enum Delivery {
    /// Ticketing could not be reached: try again later.
    Retry,
    /// Ticketing refused it for good, or it was unreadable: dropped.
    Dropped,
}

impl App {
    /// Tries to deliver one report now; returns ticketing's decision if it
    /// answered in time. On failure the deliverer retries in the background.
    /// (The deliverer may also pick the report up meanwhile; ticketing's
    /// request-id idempotency makes the second delivery a replay.)
    pub(crate) async fn deliver_now(
        &self,
        report: Option<outbox::Model>,
    ) -> Option<tpb::NotifyConversationChangedResponse> {
        let report = report?;
        match self.deliver(&report, SYNC_DELIVERY_TIMEOUT).await {
            Ok(answer) => Some(answer),
            Err(_) => {
                // The deliverer takes it from here, with backoff.
                self.outbox_ready.notify_one();
                None
            }
        }
    }

    async fn deliver(
        &self,
        report: &outbox::Model,
        timeout: Duration,
    ) -> Result<tpb::NotifyConversationChangedResponse, Delivery> {
        let snapshot = match tpb::ConversationSnapshot::decode(report.snapshot.as_slice()) {
            Ok(snapshot) => snapshot,
            Err(err) => {
                tracing::error!(report = %report.id, %err, "unreadable report dropped");
                self.forget(report).await;
                return Err(Delivery::Dropped);
            }
        };
        let caller = Caller {
            account_id: Some(report.account_id.clone()),
            user_id: report.user_id.clone(),
            service: None,
            trace_context: report
                .traceparent
                .iter()
                .map(|t| ("traceparent".to_owned(), t.clone()))
                .collect(),
            // The user's token may have expired by the time a queued report
            // goes out: the inbox vouches for the account and user itself.
            bearer: None,
        };
        let mut request = self.to_ticketing(
            &caller,
            tpb::NotifyConversationChangedRequest {
                request_id: report.request_id.clone(),
                change: report.change,
                conversation: Some(snapshot),
            },
        );
        request.set_timeout(timeout);
        let sent = self
            .ticketing
            .call(request, Some(timeout), |mut c, r| async move {
                c.notify_conversation_changed(r).await
            });
        match sent.await {
            Ok(answer) => {
                let answer = answer.into_inner();
                if let Err(err) = self.apply_decision(report, &answer).await {
                    tracing::warn!(report = %report.id, %err, "could not apply ticketing's decision; will retry");
                    return Err(Delivery::Retry);
                }
                Ok(answer)
            }
            Err(status) if is_transient(status.code()) => Err(Delivery::Retry),
            Err(status) => {
                tracing::error!(
                    report = %report.id,
                    code = ?status.code(),
                    message = status.message(),
                    "ticketing refused a report; dropped"
                );
                self.forget(report).await;
                Err(Delivery::Dropped)
            }
        }
    }

    /// Applies the decision and removes the report, together.
    async fn apply_decision(
        &self,
        report: &outbox::Model,
        answer: &tpb::NotifyConversationChangedResponse,
    ) -> Result<(), sea_orm::DbErr> {
        let txn = self.transactions.begin("apply_decision").await?;
        let mut log = changes::Pending::default();
        if let Some(ticket) = &answer.ticket {
            apply::ticket_snapshot(&txn, ticket, &mut log).await?;
        }
        for directive in &answer.directives {
            apply::directive(&txn, &report.account_id, directive, &mut log).await?;
        }
        changes::delete_report(&txn, &report.id).await?;
        log.append(&txn).await?;
        txn.commit().await?;
        if let Some(ticket) = &answer.ticket {
            self.applied.committed(ticket);
        }
        self.changes.notify();
        Ok(())
    }

    async fn forget(&self, report: &outbox::Model) {
        if let Err(err) = changes::delete_report(&self.db, &report.id).await {
            tracing::warn!(report = %report.id, %err, "could not drop a report");
        }
    }
}

fn is_transient(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unavailable
            | DeadlineExceeded
            | Unknown
            | Aborted
            | ResourceExhausted
            | Internal
            | Cancelled
    )
}

/// Delivers queued reports in creation order until draining; pauses while
/// ticketing is unreachable.
pub async fn run(app: App, mut draining: Draining) {
    let mut pause = Duration::from_millis(100);
    let gauges = OutboxGauges::new();
    let mut measured: Option<std::time::Instant> = None;
    loop {
        if draining.is_draining() {
            return;
        }
        if measured.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
            measured = Some(std::time::Instant::now());
            gauges.measure(&app).await;
        }
        // Reports younger than this are still being delivered by the call
        // that queued them; taking them too would only race it.
        let grace = i64::try_from(SYNC_DELIVERY_TIMEOUT.as_micros()).unwrap_or(i64::MAX);
        let queued_before = kit::time::now_micros().saturating_sub(grace);
        let pending = match changes::pending_reports(&app.db, queued_before, BATCH).await {
            Ok(pending) => pending,
            Err(err) => {
                tracing::warn!(%err, "cannot read the outbox");
                Vec::new()
            }
        };
        let mut blocked = false;
        for report in &pending {
            if let Err(Delivery::Retry) = app.deliver(report, app.config.ticketing_timeout).await {
                blocked = true;
                break;
            }
        }
        let wait = if blocked {
            pause = (pause * 2).min(app.config.max_reconnect_backoff);
            pause
        } else {
            pause = Duration::from_millis(100);
            if pending.len() as u64 == BATCH {
                continue;
            }
            Duration::from_secs(1)
        };
        tokio::select! {
            _ = app.outbox_ready.notified(), if !blocked => {}
            _ = tokio::time::sleep(wait) => {}
            _ = draining.wait() => return,
        }
    }
}

/// `inbox.outbox.depth` and `inbox.outbox.oldest_age`: measured by the
/// deliverer at most once a second (a query, not a callback: the metrics
/// SDK's callbacks cannot wait for the database).
struct OutboxGauges {
    depth: opentelemetry::metrics::Gauge<u64>,
    oldest_age: opentelemetry::metrics::Gauge<f64>,
}

impl OutboxGauges {
    fn new() -> Self {
        let meter = opentelemetry::global::meter("inbox");
        Self {
            depth: meter
                .u64_gauge("inbox.outbox.depth")
                .with_unit("{report}")
                .with_description("reports queued for ticketing and not yet delivered")
                .build(),
            oldest_age: meter
                .f64_gauge("inbox.outbox.oldest_age")
                .with_unit("s")
                .with_description("age of the oldest queued report (0 when the outbox is empty)")
                .build(),
        }
    }

    async fn measure(&self, app: &App) {
        match changes::outbox_stats(&app.db).await {
            Ok((depth, oldest)) => {
                self.depth.record(u64::try_from(depth).unwrap_or(0), &[]);
                let age = oldest.map_or(0, |at| (kit::time::now_micros() - at).max(0));
                self.oldest_age.record(age as f64 / 1e6, &[]);
            }
            Err(err) => tracing::debug!(%err, "cannot measure the outbox"),
        }
    }
}
