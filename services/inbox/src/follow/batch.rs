//! Applies one batch of ticketing's events exactly once: the effects of the
//! events and each account's cursor move commit in one transaction, and a
//! cursor moves only from the value this consumer last read or committed,
//! so a second consumer (or a replay after a crash) applies nothing twice.

use proto::ticketing::v1 as tpb;
use tracing::Instrument;

use super::{
    apply,
    cursors::{self, Cursors},
    plan,
};
use crate::{state::App, store::queries};

/// What happened to a batch of events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Applied,
    /// At or below the cursor: already applied.
    Duplicate,
    /// Another consumer moved the cursor first; nothing was written.
    Fenced,
}

/// Most events applied in one transaction.
pub(super) const APPLY_BATCH: usize = 256;

/// Applies `events` (in stream order, possibly of several accounts) and
/// moves each account's cursor from the value it had to its last event, in
/// one transaction: all of them take effect exactly once, or none do. The
/// batch costs a few statements whatever its size (see `plan`), and only
/// the cursor moves when it can change nothing.
pub async fn apply_events(
    app: &App,
    events: &[tpb::Event],
    cursors: &mut Cursors,
) -> Result<Applied, sea_orm::DbErr> {
    // Each causing call's trace shows the batch that applied its events.
    let mut calls: Vec<tracing::Span> = Vec::new();
    let mut contexts: Vec<&std::collections::BTreeMap<String, String>> = Vec::new();
    for event in events {
        if !contexts.contains(&&event.trace_context) {
            contexts.push(&event.trace_context);
            calls.push(kit::observe::span_from("apply_event", &event.trace_context));
        }
    }
    let span = calls.first().cloned().unwrap_or_else(tracing::Span::none);
    // The statements run once, under the first trace's span: the others
    // link to it, so every trace leads to the transaction that applied it.
    for other in calls.iter().skip(1) {
        kit::observe::link(other, &span);
    }
    async {
        if let Some(outcome) = move_cursors_alone(app, events, cursors).await? {
            return Ok(outcome);
        }
        // A remembered cursor that was not where remembered is forgotten,
        // so the second attempt reads it.
        match apply_in_one_transaction(app, events, cursors).await? {
            Some(outcome) => Ok(outcome),
            None => Ok(apply_in_one_transaction(app, events, cursors)
                .await?
                .unwrap_or(Applied::Fenced)),
        }
    }
    .instrument(span)
    .await
}

/// A batch whose snapshots this process has all applied already and that
/// leaves no directive to apply (the events of calls made through the
/// inbox, applied from their answers) only moves cursors: one guarded
/// statement per account instead of a transaction. `None` when the batch
/// needs the transaction, or a cursor was not where remembered.
async fn move_cursors_alone(
    app: &App,
    events: &[tpb::Event],
    cursors: &mut Cursors,
) -> Result<Option<Applied>, sea_orm::DbErr> {
    let Some(fresh) = cursors.fresh(events) else {
        return Ok(None);
    };
    if fresh.is_empty() {
        return Ok(Some(Applied::Duplicate));
    }
    let mut newest = plan::newest_snapshots(&fresh);
    newest.retain(|n| !app.applied.covers(&n.ticket.id, n.ticket.version));
    if !newest.is_empty() || !plan::steps(&fresh, &newest).is_empty() {
        return Ok(None);
    }
    for (account_id, last) in cursors::last_of_each_account(&fresh) {
        let Some(from) = cursors.get(account_id) else {
            return Ok(None);
        };
        // Accounts are independent here: with no effect to keep atomic,
        // a cursor moved before a later account's guard fails stays moved.
        if !queries::advance_cursor(&app.db, account_id, from, last).await? {
            cursors.forget(account_id);
            return Ok(None);
        }
        cursors.committed(account_id, last.0);
    }
    Ok(Some(Applied::Applied))
}

/// `None` when a remembered cursor had been moved by someone else: nothing
/// was written, and that cursor is forgotten.
async fn apply_in_one_transaction(
    app: &App,
    events: &[tpb::Event],
    cursors: &mut Cursors,
) -> Result<Option<Applied>, sea_orm::DbErr> {
    let txn = app.transactions.begin("apply_events").await?;
    let mut accounts: Vec<&str> = Vec::new();
    for event in events {
        if !accounts.contains(&event.account_id.as_str()) {
            accounts.push(&event.account_id);
        }
    }
    let mut fresh: Vec<&tpb::Event> = Vec::new();
    let mut moved: Vec<(&str, i64)> = Vec::new();
    for account_id in accounts {
        let remembered = cursors.get(account_id);
        let cursor = match remembered {
            Some(cursor) => cursor,
            None => queries::cursor_of(&txn, account_id).await?,
        };
        let first = fresh.len();
        fresh.extend(
            events
                .iter()
                .filter(|e| e.account_id == account_id && e.sequence > cursor),
        );
        let (Some(earliest), Some(last)) = (fresh.get(first), fresh.last()) else {
            cursors.committed(account_id, cursor);
            continue;
        };
        if earliest.sequence != cursor + 1 {
            tracing::warn!(
                account_id,
                cursor,
                sequence = earliest.sequence,
                "gap in the event stream"
            );
        }
        let to = (last.sequence, cursors::written_at(last));
        if !queries::advance_cursor(&txn, account_id, cursor, to).await? {
            // Another consumer moved it first: nothing of this batch may stay.
            cursors.forget(account_id);
            return Ok(remembered.is_none().then_some(Applied::Fenced));
        }
        moved.push((account_id, last.sequence));
    }
    if fresh.is_empty() {
        return Ok(Some(Applied::Duplicate));
    }
    let mut newest = plan::newest_snapshots(&fresh);
    // Usually the snapshots of answers the inbox applied a moment ago:
    // known, they cost nothing.
    newest.retain(|n| !app.applied.covers(&n.ticket.id, n.ticket.version));
    let stored =
        queries::upsert_ticket_views(&txn, newest.iter().map(|n| apply::ticket_view_of(n.ticket)))
            .await?;
    for snapshot in &mut newest {
        if stored.contains(&snapshot.ticket.id) {
            snapshot.work = plan::SnapshotWork {
                link: !(snapshot.same_conversations || app.applied.links_cover(snapshot.ticket)),
                move_to_help_desk: snapshot.help_desk,
            };
        }
    }
    let mut log = crate::store::changes::Pending::default();
    for step in plan::steps(&fresh, &newest) {
        match step {
            plan::Step::Apply {
                account_id,
                action,
                ticket_id,
                conversation_ids,
            } => {
                apply::directives(
                    &txn,
                    account_id,
                    action,
                    ticket_id,
                    &conversation_ids,
                    &mut log,
                )
                .await?;
            }
            plan::Step::Purge {
                account_id,
                conversation_id,
            } => {
                apply::purge(&txn, account_id, conversation_id).await?;
            }
        }
    }
    log.append(&txn).await?;
    txn.commit().await?;
    for (account_id, last) in moved {
        cursors.committed(account_id, last);
    }
    for snapshot in &newest {
        app.applied.committed(snapshot.ticket);
    }
    app.changes.notify();
    Ok(Some(Applied::Applied))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The exactly-once half of the change stream (SPEC §5): a cursor this
    /// consumer remembers but another consumer has since moved guards the
    /// move, so the batch applies nothing, and the stored value is reread.
    #[tokio::test]
    async fn a_remembered_cursor_moved_by_another_consumer_applies_nothing() {
        let scratch = crate::store::Scratch::open("consumer").await;
        let db = scratch.db.clone();
        let config = crate::Config::for_database(&scratch.url, "http://127.0.0.1:1");
        let app = App::new(db.clone(), db, config).expect("app");
        assert!(
            queries::advance_cursor(&app.db, "a", 0, (5, 0))
                .await
                .expect("store")
        );
        let mut cursors = Cursors::new([("a".to_owned(), 3)]);
        let event = tpb::Event {
            account_id: "a".into(),
            sequence: 4,
            ..Default::default()
        };

        let outcome = apply_events(&app, &[event], &mut cursors)
            .await
            .expect("apply");

        assert_eq!(outcome, Applied::Duplicate);
        assert_eq!(queries::cursor_of(&app.db, "a").await.expect("read"), 5);
        assert_eq!(cursors.get("a"), Some(5));
    }
}
