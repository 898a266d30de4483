//! How the services use their PostgreSQL connections: change streams read
//! through a pool of their own, and no connection waits on Nagle's
//! algorithm. Both only concern PostgreSQL; on SQLite they return early.

use std::{num::NonZeroU32, time::Duration};

use e2e::*;
use proto::ticketing::v1 as tpb;
use sea_orm::{ConnectionTrait, Database, TransactionTrait};
use tokio_stream::StreamExt;

fn postgres_url(stack: &Stack) -> Option<String> {
    let url = stack.ticketing_database_url();
    (!kit::db::is_sqlite(url)).then(|| url.to_owned())
}

/// A main pool of two connections, easy to exhaust.
fn two_connections(config: &mut ticketing::Config) {
    config.database.max_connections = NonZeroU32::new(2).expect("not zero");
}

#[tokio::test]
async fn events_reach_a_new_watcher_while_writers_hold_every_connection() {
    let stack = Stack::start_with(two_connections, |_| {}).await;
    let Some(url) = postgres_url(&stack) else {
        return stack.stop().await;
    };
    let account = account(&stack, tpb::Tier::Starter).await;
    let first = conversation(&stack, &account, "First", "first@example.com").await;
    let ticket = ticket_for(&stack, &account, &first.id).await;
    let closed = stage_id(&stack, &account, "Closed").await;

    // Holding the account's event head makes every write of the account
    // wait for it, each on a connection of the main pool.
    let outside = Database::connect(&url).await.expect("connect");
    let held = outside.begin().await.expect("begin");
    held.execute_unprepared(&format!(
        "SELECT * FROM event_heads WHERE account_id = '{account}' FOR UPDATE"
    ))
    .await
    .expect("lock the event head");
    let mut writers = Vec::new();
    for _ in 0..4 {
        let mut client = stack.ticketing().await;
        let request = as_user(&account, "x", move_to_stage(&ticket.id, &closed, ""));
        writers.push(tokio::spawn(
            async move { client.update_ticket(request).await },
        ));
    }
    // Writers wait for the head, holding connections of the main pool.
    eventually("writers waiting for the event head", || {
        let outside = outside.clone();
        async move {
            let waiting = outside
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                ))
                .await
                .ok()??
                .try_get_by_index::<i64>(0)
                .ok()?;
            (waiting >= 1).then_some(())
        }
    })
    .await;

    let mut client = stack.ticketing().await;
    let request = as_user(&account, "x", events_after(&account, 0));
    let first_event = tokio::time::timeout(Duration::from_secs(5), async move {
        let mut stream = client.watch_events(request).await?.into_inner();
        while let Some(message) = stream.next().await {
            if let Some(tpb::watch_events_response::Kind::Event(event)) = message?.kind {
                return Ok(event);
            }
        }
        Err(tonic::Status::aborted("the stream ended"))
    })
    .await;
    held.rollback().await.expect("release the event head");
    let first_event = first_event
        .expect("the watcher is not stuck behind the writers")
        .expect("an event");
    assert_eq!(first_event.sequence, 1);
    for writer in writers {
        writer.await.expect("writer task").expect("update");
    }
    stack.stop().await;
}

#[tokio::test]
async fn postgresql_connections_do_not_wait_on_nagles_algorithm() {
    let stack = Stack::start().await;
    let Some(url) = postgres_url(&stack) else {
        return stack.stop().await;
    };
    let server_port = url
        .parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
        .expect("a PostgreSQL URL")
        .get_port();
    let db = kit::db::connect(&url, 2).await.expect("connect");
    let mut conn = db
        .get_postgres_connection_pool()
        .acquire()
        .await
        .expect("a connection");
    let off = kit::nodelay::is_nagle_off(&mut conn, server_port)
        .await
        .expect("ask the server")
        .expect("look up the socket");
    assert_eq!(off, Some(true), "TCP_NODELAY is set on the connection");
    drop(conn);
    stack.stop().await;
}
