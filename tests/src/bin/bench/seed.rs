//! Seeding straight into the services' databases: the API would need hours
//! for a million conversations, and the read paths only care that the rows
//! and indexes are there. Rows are written exactly as the services write them
//! (same columns, same enum numbers), in multi-row INSERTs of a few thousand
//! rows each, with a progress bar on stderr.

use std::{
    io::Write,
    time::{Instant, SystemTime, UNIX_EPOCH},
};

use sea_orm::{ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr};

const ROWS_PER_STATEMENT: usize = 2_000;
/// Conversations per seeded contact: each contact has a short history, as
/// the sidebar's "previous conversations" expects.
pub const CONVERSATIONS_PER_CONTACT: u64 = 10;

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// A progress bar on stderr, redrawn at most once per percent.
pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    shown_percent: u64,
    started: Instant,
}

impl Progress {
    pub fn new(what: &str, total: u64) -> Progress {
        let progress = Progress {
            what: what.to_owned(),
            total: total.max(1),
            done: 0,
            shown_percent: u64::MAX,
            started: Instant::now(),
        };
        progress.draw();
        progress
    }

    pub fn advance(&mut self, by: u64) {
        self.done = (self.done + by).min(self.total);
        if self.done * 100 / self.total != self.shown_percent {
            self.shown_percent = self.done * 100 / self.total;
            self.draw();
        }
    }

    fn draw(&self) {
        const WIDTH: u64 = 30;
        let filled = (self.done * WIDTH / self.total) as usize;
        let rate = self.done as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        eprint!(
            "\r{:<34} [{}{}] {:>3}% {}/{} ({:.0}/s)",
            self.what,
            "#".repeat(filled),
            " ".repeat(WIDTH as usize - filled),
            self.done * 100 / self.total,
            self.done,
            self.total,
            rate
        );
        if self.done == self.total {
            eprintln!();
        }
        let _ = std::io::stderr().flush();
    }
}

/// Inserts `rows` rows built by `row(i)` (a parenthesised VALUES tuple) into
/// `table (columns)`, a few thousand per statement.
async fn insert_rows(
    db: &DatabaseConnection,
    table: &str,
    columns: &str,
    range: std::ops::Range<u64>,
    progress: &mut Progress,
    row: impl Fn(u64) -> String,
) -> Result<(), DbErr> {
    let mut start = range.start;
    while start < range.end {
        let end = (start + ROWS_PER_STATEMENT as u64).min(range.end);
        let values: Vec<String> = (start..end).map(&row).collect();
        db.execute_unprepared(&format!(
            "INSERT INTO {table} ({columns}) VALUES {}",
            values.join(",")
        ))
        .await?;
        progress.advance(end - start);
        start = end;
    }
    Ok(())
}

/// The id of seeded conversation `i` of a batch.
pub fn conversation_id(batch: &str, i: u64) -> String {
    format!("seed-{batch}-{i:08}")
}

/// The contact of seeded conversation `i`.
pub fn contact_id(batch: &str, i: u64) -> String {
    format!("seedc-{batch}-{:07}", i / CONVERSATIONS_PER_CONTACT)
}

/// Open, unassigned-or-assigned email conversations `range` of `batch`, with
/// their contacts, in the inbox's database. Conversation `i` is newer than
/// `i - 1`. `ticket_of(i)` links it to a ticket.
pub async fn inbox_conversations(
    db: &DatabaseConnection,
    account: &str,
    batch: &str,
    range: std::ops::Range<u64>,
    ticket_of: impl Fn(u64) -> Option<String>,
) -> Result<(), DbErr> {
    let base = now_us() - 1_000_000_000;
    let first_contact = range.start / CONVERSATIONS_PER_CONTACT;
    let last_contact = range.end.div_ceil(CONVERSATIONS_PER_CONTACT);
    let mut progress = Progress::new(
        &format!("seeding contacts ({batch})"),
        last_contact - first_contact,
    );
    insert_rows(
        db,
        "contacts",
        "id, account_id, email, name, created_at",
        first_contact..last_contact,
        &mut progress,
        |c| {
            format!(
                "('seedc-{batch}-{c:07}', '{account}', 'c{c}-{batch}@seed.example.com', 'Seed {c}', {base})"
            )
        },
    )
    .await?;
    let mut progress = Progress::new(
        &format!("seeding conversations ({batch})"),
        range.end - range.start,
    );
    insert_rows(
        db,
        "conversations",
        "id, account_id, subject, contact_id, channel, status, owner_id, workspace, \
         ticket_id, created_at, updated_at, deleted_at, version",
        range,
        &mut progress,
        |i| {
            // Every fifth conversation is unassigned; the rest spread over 20 agents.
            let owner = if i % 5 == 0 {
                "NULL".to_owned()
            } else {
                format!("'agent-{}'", i % 20)
            };
            let ticket = ticket_of(i).map_or("NULL".to_owned(), |t| format!("'{t}'"));
            let at = base + i as i64;
            format!(
                "('{}', '{account}', 'Seeded {i}', '{}', 1, 1, {owner}, 1, {ticket}, {at}, {at}, NULL, 1)",
                conversation_id(batch, i),
                contact_id(batch, i),
            )
        },
    )
    .await
}

/// Tickets `0..tickets` of `batch` in ticketing's database, each linked to
/// conversations `3t, 3t+1, 3t+2` (open, as the inbox reported them at
/// version 1), in stage `stage_id` of pipeline `pipeline_id`.
pub async fn tickets_with_three_conversations(
    db: &DatabaseConnection,
    account: &str,
    batch: &str,
    tickets: u64,
    pipeline_id: &str,
    stage_id: &str,
) -> Result<(), DbErr> {
    let base = now_us() - 1_000_000;
    let empty_blob = match db.get_database_backend() {
        DatabaseBackend::Postgres => "'\\x'::bytea",
        _ => "x''",
    };
    let mut progress = Progress::new(&format!("seeding tickets ({batch})"), tickets);
    insert_rows(
        db,
        "tickets",
        "id, account_id, name, description, pipeline_id, stage_id, priority, owner_id, \
         workspace, contact_id, created_at, updated_at, closed_at, deleted_at, purge_at, \
         cascade_id, properties, version",
        0..tickets,
        &mut progress,
        |t| {
            format!(
                "('{}', '{account}', 'Seeded ticket {t}', '', '{pipeline_id}', '{stage_id}', 0, NULL, \
                 1, '{}', {base}, {base}, NULL, NULL, NULL, NULL, {empty_blob}, 1)",
                ticket_id(batch, t),
                contact_id(batch, 3 * t),
            )
        },
    )
    .await?;
    let mut progress = Progress::new(&format!("seeding ticket links ({batch})"), 3 * tickets);
    insert_rows(
        db,
        "ticket_conversations",
        "conversation_id, account_id, ticket_id, owner_id, open, trashed, version, linked_at, cascade_id",
        0..3 * tickets,
        &mut progress,
        |i| {
            format!(
                "('{}', '{account}', '{}', NULL, true, false, 1, {base}, NULL)",
                conversation_id(batch, i),
                ticket_id(batch, i / 3),
            )
        },
    )
    .await
}

pub fn ticket_id(batch: &str, t: u64) -> String {
    format!("seedt-{batch}-{t:08}")
}

/// Makes the planner see the seeded rows (PostgreSQL's autovacuum would, a
/// little later).
pub async fn analyze(db: &DatabaseConnection) -> Result<(), DbErr> {
    match db.get_database_backend() {
        DatabaseBackend::Postgres | DatabaseBackend::Sqlite => {
            db.execute_unprepared("ANALYZE").await.map(|_| ())
        }
        _ => Ok(()),
    }
}

/// The per-account log heads the services create on an account's first
/// write, for databases only the raw runs use.
pub async fn heads(
    inbox: &DatabaseConnection,
    ticketing: &DatabaseConnection,
    account: &str,
) -> Result<(), DbErr> {
    inbox
        .execute_unprepared(&format!(
            "INSERT INTO change_heads (account_id, last_sequence) VALUES ('{account}', 0)"
        ))
        .await?;
    ticketing
        .execute_unprepared(&format!(
            "INSERT INTO event_heads (account_id, last_sequence, pruned_through) VALUES ('{account}', 0, 0)"
        ))
        .await
        .map(|_| ())
}
