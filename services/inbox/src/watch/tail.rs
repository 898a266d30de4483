//! The newest part of each account's change log, held once per process for
//! all of its WatchConversations streams. Without it every stream read the
//! database after every commit: a thousand agents watching one account
//! turned each change into a thousand identical queries. With it, the first
//! stream to wake after a commit reads the new rows once and the rest copy
//! them from memory; a stream further behind than the tail holds (a client
//! resuming from an old cursor) reads the database until it catches up.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Weak},
    time::Duration,
};

use proto::inbox::v1 as pb;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::{sync::Mutex, time::Instant};

use crate::store::changes;

/// Changes kept per watched account.
const CAPACITY: usize = 2048;

/// The tails of the accounts somebody watches; an account's tail is
/// dropped with its last stream.
#[derive(Default)]
pub struct Tails {
    accounts: std::sync::Mutex<HashMap<String, Weak<Mutex<Tail>>>>,
}

pub struct Tail {
    /// Sequences `first..=head` are in `changes` (none when `first > head`).
    first: i64,
    head: i64,
    changes: VecDeque<pb::ConversationChanged>,
    /// The commit signal's value when the tail was last read from the
    /// database: every commit announced by then is in the tail.
    read_at_signal: Option<u64>,
    read_at: Instant,
    /// The last read was a full batch: there may be more right away.
    more: bool,
}

impl Tails {
    /// The shared tail of `account_id`, made on first use.
    pub fn join(&self, account_id: &str) -> Arc<Mutex<Tail>> {
        let mut accounts = self
            .accounts
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(tail) = accounts.get(account_id).and_then(Weak::upgrade) {
            return tail;
        }
        accounts.retain(|_, tail| tail.strong_count() > 0);
        let tail = Arc::new(Mutex::new(Tail {
            first: 1,
            head: 0,
            changes: VecDeque::new(),
            read_at_signal: None,
            read_at: Instant::now(),
            more: false,
        }));
        accounts.insert(account_id.to_owned(), Arc::downgrade(&tail));
        tail
    }
}

/// Up to `limit` changes of `account_id` after `cursor`, in order.
/// `signal` is the commit signal's value seen before the call; the tail
/// goes to the database only when a commit was announced since its last
/// read, or `poll` has passed (commits of other replicas).
pub async fn read_after(
    db: &DatabaseConnection,
    tail: &Mutex<Tail>,
    account_id: &str,
    cursor: i64,
    limit: u64,
    signal: u64,
    poll: Duration,
) -> Result<Vec<pb::ConversationChanged>, DbErr> {
    let mut tail = tail.lock().await;
    if tail.read_at_signal.is_none() {
        // Start at the head: older changes come from the database.
        tail.head = changes::head(db, account_id).await?;
        tail.first = tail.head + 1;
    }
    let stale = tail.more
        || tail.read_at_signal.is_none_or(|seen| seen < signal)
        || tail.read_at.elapsed() >= poll;
    if stale {
        let rows = changes::read_after(db, account_id, tail.head, limit).await?;
        tail.more = rows.len() as u64 == limit;
        for change in rows {
            tail.head = change.sequence;
            tail.changes.push_back(change);
        }
        while tail.changes.len() > CAPACITY {
            tail.changes.pop_front();
        }
        tail.first = tail.changes.front().map_or(tail.head + 1, |c| c.sequence);
        tail.read_at_signal = Some(signal);
        tail.read_at = Instant::now();
    }
    if cursor + 1 >= tail.first {
        // The log has no gaps, so the cursor's place is arithmetic.
        let skip = usize::try_from(cursor + 1 - tail.first).unwrap_or(0);
        return Ok(tail
            .changes
            .iter()
            .skip(skip)
            .filter(|c| c.sequence > cursor)
            .take(limit as usize)
            .cloned()
            .collect());
    }
    drop(tail);
    changes::read_after(db, account_id, cursor, limit).await
}
