//! The raw limit of each path: the SQL transactions its durable effect needs
//! at the least, issued straight through the database driver on the same
//! tables and indexes, from a pool of the same size, with the same number of
//! callers. No gRPC, no validation, no idempotency lookups, no reads the
//! path could in principle avoid; one round trip per statement.

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DatabaseTransaction, DbErr, Statement,
    TransactionTrait, Value,
};

/// A statement written with `$1, $2, …` placeholders (SQLite takes them
/// as `?1, ?2, …`).
pub fn statement(backend: DatabaseBackend, sql: &str, values: Vec<Value>) -> Statement {
    let sql = match backend {
        DatabaseBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// `$first, $first+1, …`: `count` placeholders from `first` on, for a
/// tuple or an `IN (…)` list of a statement built at run time.
pub(crate) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) async fn exec<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<u64, DbErr> {
    let result = db
        .execute_raw(statement(db.get_database_backend(), sql, values))
        .await?;
    Ok(result.rows_affected())
}

pub(crate) async fn rows<C: ConnectionTrait>(
    db: &C,
    sql: &str,
    values: Vec<Value>,
) -> Result<usize, DbErr> {
    Ok(db
        .query_all_raw(statement(db.get_database_backend(), sql, values))
        .await?
        .len())
}

/// Appends `rows` to a per-account gap-free log in two statements: bump the
/// account's head in `heads` by their number, then insert them at the new
/// sequences. `insert` names the table and its columns, the account and the
/// sequence first; each row gives the values of the other columns.
/// (On PostgreSQL the inbox's change log takes one statement instead, as in
/// the inbox: [`append_changes`].)
async fn append_to_log(
    tx: &DatabaseTransaction,
    heads: &str,
    insert: &str,
    account: &str,
    rows: Vec<Vec<Value>>,
) -> Result<(), DbErr> {
    if rows.is_empty() {
        return Ok(());
    }
    let count = rows.len() as i64;
    let last = tx
        .query_one_raw(statement(
            tx.get_database_backend(),
            &format!(
                "UPDATE {heads} SET last_sequence = last_sequence + $1 \
                 WHERE account_id = $2 RETURNING last_sequence"
            ),
            vec![count.into(), account.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound(format!("{heads} row")))?
        .try_get_by_index::<i64>(0)?;
    let mut tuples = Vec::with_capacity(rows.len());
    let mut values: Vec<Value> = Vec::new();
    for (sequence, row) in (last - count + 1..).zip(rows) {
        tuples.push(format!(
            "({})",
            placeholders(values.len() + 1, 2 + row.len())
        ));
        values.extend([account.into(), sequence.into()]);
        values.extend(row);
    }
    let sql = format!("{insert} VALUES {}", tuples.join(","));
    exec(tx, &sql, values).await.map(|_| ())
}

/// Appends one change-log entry per conversation (kind 2, updated).
pub(crate) async fn append_changes(
    tx: &DatabaseTransaction,
    account: &str,
    conversation_ids: &[String],
    now: i64,
) -> Result<(), DbErr> {
    let rows: Vec<Vec<Value>> = conversation_ids
        .iter()
        .map(|id| {
            vec![
                id.clone().into(),
                2i32.into(),
                SNAPSHOT.to_vec().into(),
                now.into(),
            ]
        })
        .collect();
    if tx.get_database_backend() == DatabaseBackend::Postgres && !rows.is_empty() {
        // The head bump and the entries in one statement, so no round trip
        // is made while holding the head (the inbox's change log does the
        // same).
        let count = rows.len() as i64;
        let mut values: Vec<Value> = vec![count.into(), account.into()];
        let mut tuples = Vec::with_capacity(rows.len());
        for (position, row) in (1..).zip(rows) {
            let row_values = placeholders(values.len() + 1, row.len());
            tuples.push(format!("({position}, {row_values})"));
            values.extend(row);
        }
        let sql = format!(
            "WITH head AS (UPDATE change_heads SET last_sequence = last_sequence + $1 \
             WHERE account_id = $2 RETURNING last_sequence) \
             INSERT INTO conversation_changes \
             (account_id, sequence, conversation_id, kind, snapshot, created_at) \
             SELECT $2, head.last_sequence - $1 + e.position, e.conversation_id, e.kind, \
             e.snapshot, e.created_at FROM head, (VALUES {}) \
             AS e (position, conversation_id, kind, snapshot, created_at)",
            tuples.join(", ")
        );
        return exec(tx, &sql, values).await.map(|_| ());
    }
    append_to_log(
        tx,
        "change_heads",
        "INSERT INTO conversation_changes (account_id, sequence, conversation_id, kind, snapshot, created_at)",
        account,
        rows,
    )
    .await
}

/// Appends `count` events of one ticket to ticketing's log.
pub(crate) async fn append_events(
    tx: &DatabaseTransaction,
    account: &str,
    ticket_id: &str,
    count: i64,
    now: i64,
) -> Result<(), DbErr> {
    let rows = (0..count)
        .map(|_| {
            vec![
                ticket_id.into(),
                Option::<String>::None.into(),
                SNAPSHOT.to_vec().into(),
                now.into(),
            ]
        })
        .collect();
    append_to_log(
        tx,
        "event_heads",
        "INSERT INTO events (account_id, sequence, ticket_id, conversation_id, payload, created_at)",
        account,
        rows,
    )
    .await
}

/// A snapshot of about the size the services store per change.
pub(crate) const SNAPSHOT: &[u8] = &[7u8; 160];

pub(crate) fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// CreateConversation: the contact (upserted by email), the conversation,
/// its first message and one change-log entry, in one transaction.
pub async fn create_conversation(
    db: &DatabaseConnection,
    account: &str,
    key: &str,
) -> Result<(), DbErr> {
    let now = now_us();
    let tx = db.begin().await?;
    let contact_id = format!("rawc-{key}");
    exec(
        &tx,
        "INSERT INTO contacts (id, account_id, email, name, created_at) VALUES ($1, $2, $3, '', $4) \
         ON CONFLICT (account_id, email) DO UPDATE SET name = contacts.name",
        vec![
            contact_id.clone().into(),
            account.into(),
            format!("{key}@raw.example.com").into(),
            now.into(),
        ],
    )
    .await?;
    let conversation_id = format!("rawv-{key}");
    exec(
        &tx,
        "INSERT INTO conversations (id, account_id, subject, contact_id, channel, status, owner_id, \
         workspace, ticket_id, created_at, updated_at, deleted_at, version) \
         VALUES ($1, $2, 'Raw', $3, 1, 1, NULL, 1, NULL, $4, $4, NULL, 1)",
        vec![
            conversation_id.clone().into(),
            account.into(),
            contact_id.into(),
            now.into(),
        ],
    )
    .await?;
    exec(
        &tx,
        "INSERT INTO messages (id, account_id, conversation_id, direction, author, body, created_at) \
         VALUES ($1, $2, $3, 1, 'raw@example.com', 'Hello', $4)",
        vec![
            format!("rawm-{key}").into(),
            account.into(),
            conversation_id.clone().into(),
            now.into(),
        ],
    )
    .await?;
    append_changes(&tx, account, std::slice::from_ref(&conversation_id), now).await?;
    tx.commit().await
}

/// CreateTicketForConversation: in ticketing the ticket, the guarded link
/// (R2) and two events; then in the inbox the conversation's ticket, the
/// ticket's view and one change-log entry.
pub async fn create_ticket(
    ticketing: &DatabaseConnection,
    inbox: &DatabaseConnection,
    account: &str,
    conversation_id: &str,
    stages: (&str, &str),
) -> Result<(), DbErr> {
    let now = now_us();
    let ticket_id = format!("rawt-{conversation_id}");
    let tx = ticketing.begin().await?;
    exec(
        &tx,
        "INSERT INTO tickets (id, account_id, name, description, pipeline_id, stage_id, priority, \
         owner_id, workspace, contact_id, created_at, updated_at, closed_at, deleted_at, purge_at, \
         cascade_id, properties, version) \
         VALUES ($1, $2, 'Raw', '', $3, $4, 0, NULL, 1, NULL, $5, $5, NULL, NULL, NULL, NULL, $6, 1)",
        vec![
            ticket_id.clone().into(),
            account.into(),
            stages.0.into(),
            stages.1.into(),
            now.into(),
            Vec::<u8>::new().into(),
        ],
    )
    .await?;
    let linked = exec(
        &tx,
        "INSERT INTO ticket_conversations (conversation_id, account_id, ticket_id, owner_id, open, \
         trashed, version, linked_at, cascade_id) VALUES ($1, $2, $3, NULL, true, false, 1, $4, NULL) \
         ON CONFLICT (account_id, conversation_id) DO UPDATE SET ticket_id = excluded.ticket_id \
         WHERE ticket_conversations.ticket_id IS NULL",
        vec![
            conversation_id.into(),
            account.into(),
            ticket_id.clone().into(),
            now.into(),
        ],
    )
    .await?;
    if linked != 1 {
        return Err(DbErr::Custom("conversation already has a ticket".into()));
    }
    append_events(&tx, account, &ticket_id, 2, now).await?;
    tx.commit().await?;

    let tx = inbox.begin().await?;
    exec(
        &tx,
        "UPDATE conversations SET ticket_id = $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND account_id = $4 AND ticket_id IS NULL",
        vec![
            ticket_id.clone().into(),
            now.into(),
            conversation_id.into(),
            account.into(),
        ],
    )
    .await?;
    exec(
        &tx,
        "INSERT INTO ticket_views (ticket_id, account_id, version, snapshot, updated_at) \
         VALUES ($1, $2, 1, $3, $4)",
        vec![
            ticket_id.into(),
            account.into(),
            SNAPSHOT.to_vec().into(),
            now.into(),
        ],
    )
    .await?;
    append_changes(&tx, account, &[conversation_id.to_owned()], now).await?;
    tx.commit().await
}

/// UpdateTicket to a closed stage: in ticketing, lock and read the ticket,
/// update it, and log the change with one close directive per conversation
/// (four events for three conversations); then in the inbox, close the
/// three conversations in one statement, store the ticket's new view and log
/// three changes. The inbox's half is what the path's durable effect needs
/// beyond ticketing's (R5); the service does it in its event consumer while
/// the closes go on.
pub async fn close_ticket(
    ticketing: &DatabaseConnection,
    inbox: &DatabaseConnection,
    account: &str,
    ticket_id: &str,
    closed_stage: &str,
) -> Result<(), DbErr> {
    let now = now_us();
    let tx = ticketing.begin().await?;
    let lock = match tx.get_database_backend() {
        DatabaseBackend::Postgres => " FOR UPDATE",
        _ => "",
    };
    rows(
        &tx,
        &format!("SELECT * FROM tickets WHERE id = $1 AND account_id = $2{lock}"),
        vec![ticket_id.into(), account.into()],
    )
    .await?;
    let conversations: Vec<String> = tx
        .query_all_raw(statement(
            tx.get_database_backend(),
            "SELECT conversation_id FROM ticket_conversations WHERE ticket_id = $1",
            vec![ticket_id.into()],
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    exec(
        &tx,
        "UPDATE tickets SET stage_id = $1, closed_at = $2, updated_at = $2, version = version + 1 \
         WHERE id = $3",
        vec![closed_stage.into(), now.into(), ticket_id.into()],
    )
    .await?;
    append_events(&tx, account, ticket_id, 4, now).await?;
    tx.commit().await?;

    let tx = inbox.begin().await?;
    let mut values: Vec<Value> = vec![now.into(), account.into()];
    values.extend(conversations.iter().map(|id| id.clone().into()));
    let closed = exec(
        &tx,
        &format!(
            "UPDATE conversations SET status = 2, version = version + 1, updated_at = $1 \
             WHERE account_id = $2 AND status = 1 AND id IN ({})",
            placeholders(3, conversations.len())
        ),
        values,
    )
    .await?;
    exec(
        &tx,
        UPSERT_VIEW,
        vec![
            ticket_id.into(),
            account.into(),
            2i64.into(),
            SNAPSHOT.to_vec().into(),
            now.into(),
        ],
    )
    .await?;
    let closed = usize::try_from(closed)
        .unwrap_or(0)
        .min(conversations.len());
    append_changes(&tx, account, &conversations[..closed], now).await?;
    tx.commit().await
}

/// AssignConversation with owner sync: in the inbox the new owner, the
/// outbox report and a change-log entry; in ticketing the idempotency key,
/// the reported owner, the ticket's owner and an event; then, back in the
/// inbox, the report leaves the outbox and the sidebar's view of the ticket
/// takes its new owner (the inbox applies it from ticketing's event).
pub async fn assign(
    inbox: &DatabaseConnection,
    ticketing: &DatabaseConnection,
    account: &str,
    conversation_id: &str,
    ticket_id: &str,
    owner: &str,
) -> Result<(), DbErr> {
    let now = now_us();
    let report_id = uuid::Uuid::now_v7().to_string();
    let tx = inbox.begin().await?;
    let version = tx
        .query_one_raw(statement(
            tx.get_database_backend(),
            "UPDATE conversations SET owner_id = $1, version = version + 1, updated_at = $2 \
             WHERE id = $3 AND account_id = $4 RETURNING version",
            vec![
                owner.into(),
                now.into(),
                conversation_id.into(),
                account.into(),
            ],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("conversation".into()))?
        .try_get_by_index::<i64>(0)?;
    exec(
        &tx,
        "INSERT INTO outbox (id, account_id, user_id, traceparent, request_id, change, snapshot, created_at) \
         VALUES ($1, $2, 'bench', NULL, $1, 1, $3, $4)",
        vec![
            report_id.clone().into(),
            account.into(),
            SNAPSHOT.to_vec().into(),
            now.into(),
        ],
    )
    .await?;
    append_changes(&tx, account, &[conversation_id.to_owned()], now).await?;
    tx.commit().await?;

    let tx = ticketing.begin().await?;
    exec(
        &tx,
        "INSERT INTO idempotency_keys (account_id, request_id, method, fingerprint, response, created_at) \
         VALUES ($1, $2, 'NotifyConversationChanged', $3, $4, $5)",
        vec![
            account.into(),
            report_id.clone().into(),
            vec![0u8; 32].into(),
            SNAPSHOT.to_vec().into(),
            now.into(),
        ],
    )
    .await?;
    exec(
        &tx,
        "UPDATE ticket_conversations SET owner_id = $1, version = $2 \
         WHERE account_id = $4 AND conversation_id = $3 AND version < $2",
        vec![
            owner.into(),
            version.into(),
            conversation_id.into(),
            account.into(),
        ],
    )
    .await?;
    let ticket_version = tx
        .query_one_raw(statement(
            tx.get_database_backend(),
            "UPDATE tickets SET owner_id = $1, updated_at = $2, version = version + 1 \
             WHERE id = $3 RETURNING version",
            vec![owner.into(), now.into(), ticket_id.into()],
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("ticket".into()))?
        .try_get_by_index::<i64>(0)?;
    append_events(&tx, account, ticket_id, 1, now).await?;
    tx.commit().await?;

    let view = vec![
        ticket_id.into(),
        account.into(),
        ticket_version.into(),
        SNAPSHOT.to_vec().into(),
        now.into(),
    ];
    if inbox.get_database_backend() == DatabaseBackend::Postgres {
        // Both in one statement and one commit: the least this step needs.
        let mut values = view;
        values.push(report_id.into());
        exec(
            inbox,
            &format!("WITH sent AS (DELETE FROM outbox WHERE id = $6) {UPSERT_VIEW}"),
            values,
        )
        .await
        .map(|_| ())
    } else {
        let tx = inbox.begin().await?;
        exec(
            &tx,
            "DELETE FROM outbox WHERE id = $1",
            vec![report_id.into()],
        )
        .await?;
        exec(&tx, UPSERT_VIEW, view).await?;
        tx.commit().await
    }
}

/// The sidebar's view of a ticket, replaced only by a newer version.
const UPSERT_VIEW: &str = "INSERT INTO ticket_views (ticket_id, account_id, version, snapshot, updated_at) \
     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (ticket_id) DO UPDATE SET \
     version = excluded.version, snapshot = excluded.snapshot, updated_at = excluded.updated_at \
     WHERE ticket_views.version < excluded.version";

/// GetConversationContext: the conversation with its contact, its ticket's
/// view and the caller's displayed properties in one statement, then the
/// contact's previous conversations — the two reads the inbox makes.
pub async fn context(
    inbox: &DatabaseConnection,
    account: &str,
    conversation_id: &str,
    contact_id: &str,
) -> Result<(), DbErr> {
    rows(
        inbox,
        "SELECT c.*, k.*, v.snapshot, d.properties FROM conversations c \
         LEFT JOIN contacts k ON k.account_id = c.account_id AND k.id = c.contact_id \
         LEFT JOIN ticket_views v ON v.account_id = c.account_id AND v.ticket_id = c.ticket_id \
         LEFT JOIN displayed_properties d ON d.account_id = c.account_id AND d.user_id = 'bench' \
         WHERE c.account_id = $1 AND c.id = $2",
        vec![account.into(), conversation_id.into()],
    )
    .await?;
    rows(
        inbox,
        "SELECT * FROM conversations WHERE account_id = $1 AND contact_id = $2 AND id <> $3 \
         AND deleted_at IS NULL ORDER BY created_at DESC, id DESC LIMIT 11",
        vec![account.into(), contact_id.into(), conversation_id.into()],
    )
    .await
    .map(|_| ())
}

/// ListConversations, first page of 20 with a status filter.
pub async fn list(inbox: &DatabaseConnection, account: &str) -> Result<(), DbErr> {
    rows(
        inbox,
        "SELECT * FROM conversations WHERE account_id = $1 AND status = 1 AND deleted_at IS NULL \
         ORDER BY created_at DESC, id DESC LIMIT 21",
        vec![account.into()],
    )
    .await
    .map(|_| ())
}
