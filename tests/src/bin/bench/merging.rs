//! The MergeTickets path (R14) beside its raw limit: pairs of seeded
//! tickets of three conversations each, the second merged into the first.

use std::time::Duration;

use e2e::*;
use proto::ticketing::v1 as tpb;
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, TransactionTrait, Value,
};

use crate::{
    load::Supply,
    paths::{Bench, Measured, client},
    raw::{self, exec, statement},
    seed,
};

impl Bench {
    pub async fn merge(&self, concurrency: usize) -> Measured {
        let pairs = self.supply_size();
        let batch = self.seed_ticketed("mg", 2 * pairs, false).await;
        let supply = Supply::new(pairs_of(&batch, pairs));
        let (clients, account) = (self.ticketing.clone(), self.account.clone());
        let service = move |worker, _| {
            let mut client = client(&clients, worker);
            let request = supply.take().cloned().map(|(primary, secondary)| {
                as_user(
                    &account,
                    "bench",
                    tpb::MergeTicketsRequest {
                        primary_id: primary,
                        secondary_id: secondary,
                        ..Default::default()
                    },
                )
            });
            async move { Some(client.merge_tickets(request?).await.is_ok()) }
        };
        let batch = self.seed_ticketed("rawmg", 2 * pairs, true).await;
        let supply = Supply::new(pairs_of(&batch, pairs));
        let (ticketing, inbox, account) = (
            self.raw_ticketing_db.clone(),
            self.raw_inbox_db.clone(),
            self.account.clone(),
        );
        let raw = move |_, _| {
            let pair = supply.take().cloned();
            let (ticketing, inbox, account) = (ticketing.clone(), inbox.clone(), account.clone());
            async move {
                let (primary, secondary) = pair?;
                let done = merge(&ticketing, &inbox, &account, &primary, &secondary).await;
                Some(done.is_ok())
            }
        };
        let (service, raw) = self
            .alternate(concurrency, Duration::ZERO, service, raw)
            .await;
        Measured {
            path: "MergeTickets (3 conversations move)".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }
}

fn pairs_of(batch: &str, pairs: u64) -> Vec<(String, String)> {
    (0..pairs)
        .map(|p| {
            (
                seed::ticket_id(batch, 2 * p),
                seed::ticket_id(batch, 2 * p + 1),
            )
        })
        .collect()
}

/// MergeTickets at the least: in ticketing, lock both tickets, move the
/// secondary's links, bump both tickets (the secondary now redirects),
/// record the merge and append five events (two snapshots, three moves);
/// in the inbox, move the three conversations in one statement, store both
/// tickets' views and log three changes.
async fn merge(
    ticketing: &DatabaseConnection,
    inbox: &DatabaseConnection,
    account: &str,
    primary: &str,
    secondary: &str,
) -> Result<(), DbErr> {
    let now = raw::now_us();
    let tx = ticketing.begin().await?;
    let backend = tx.get_database_backend();
    let lock = match backend {
        DatabaseBackend::Postgres => " FOR UPDATE",
        _ => "",
    };
    raw::rows(
        &tx,
        &format!(
            "SELECT * FROM tickets WHERE account_id = $1 AND id IN ($2, $3) ORDER BY id{lock}"
        ),
        vec![account.into(), primary.into(), secondary.into()],
    )
    .await?;
    let conversations: Vec<String> = tx
        .query_all_raw(statement(
            backend,
            "SELECT conversation_id FROM ticket_conversations WHERE ticket_id = $1",
            vec![secondary.into()],
        ))
        .await?
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?;
    exec(
        &tx,
        "UPDATE ticket_conversations SET ticket_id = $1, linked_at = $2 \
         WHERE account_id = $3 AND ticket_id = $4",
        vec![primary.into(), now.into(), account.into(), secondary.into()],
    )
    .await?;
    exec(
        &tx,
        "UPDATE tickets SET version = version + 1, updated_at = $1, merge_count = merge_count + 1 \
         WHERE id = $2",
        vec![now.into(), primary.into()],
    )
    .await?;
    exec(
        &tx,
        "UPDATE tickets SET merged_into = $1, version = version + 1, updated_at = $2, \
         merge_count = merge_count + 1 WHERE id = $3",
        vec![primary.into(), now.into(), secondary.into()],
    )
    .await?;
    exec(
        &tx,
        "INSERT INTO ticket_merges (id, account_id, primary_id, secondary_id, merged_at, final_at, \
         conversation_ids, unmerged_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL)",
        vec![
            kit::new_id().into(),
            account.into(),
            primary.into(),
            secondary.into(),
            now.into(),
            now.into(),
            conversations.join("\n").into(),
        ],
    )
    .await?;
    raw::append_events(&tx, account, primary, 5, now).await?;
    tx.commit().await?;

    let tx = inbox.begin().await?;
    let mut values: Vec<Value> = vec![primary.into(), now.into(), account.into()];
    values.extend(conversations.iter().map(|id| id.clone().into()));
    exec(
        &tx,
        &format!(
            "UPDATE conversations SET ticket_id = $1, version = version + 1, updated_at = $2 \
             WHERE account_id = $3 AND id IN ({})",
            raw::placeholders(4, conversations.len())
        ),
        values,
    )
    .await?;
    for ticket in [primary, secondary] {
        exec(
            &tx,
            "INSERT INTO ticket_views (ticket_id, account_id, version, snapshot, updated_at) \
             VALUES ($1, $2, 2, $3, $4) ON CONFLICT (ticket_id) DO UPDATE SET \
             version = excluded.version, snapshot = excluded.snapshot, \
             updated_at = excluded.updated_at WHERE ticket_views.version < excluded.version",
            vec![
                ticket.into(),
                account.into(),
                raw::SNAPSHOT.to_vec().into(),
                now.into(),
            ],
        )
        .await?;
    }
    raw::append_changes(&tx, account, &conversations, now).await?;
    tx.commit().await
}
