//! Migrations as a rollout meets them (docs/operations.md, "Schema
//! changes"): any number of processes start at once and all end on the same
//! schema, one migrating while the others wait; and a process never serves a
//! database whose schema a later release has changed beyond what it knows.

use std::time::{Duration, Instant};

use e2e::TestDb;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use sea_orm_migration::MigratorTrait;

const STARTS: usize = 5;

async fn applied(conn: &DatabaseConnection) -> Vec<String> {
    conn.query_all_raw(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        "SELECT version FROM seaql_migrations ORDER BY version",
    ))
    .await
    .expect("read the migration table")
    .iter()
    .map(|row| row.try_get::<String>("", "version").expect("version"))
    .collect()
}

fn names<M: MigratorTrait>() -> Vec<String> {
    let mut names: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn five_concurrent_starts_on_a_fresh_database_all_succeed_on_one_schema() {
    if !std::env::var("TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres")) {
        eprintln!("PostgreSQL only (TEST_DATABASE_URL): a SQLite file has one process");
        return;
    }
    let mut ticketing_db = TestDb::create("ticketing").await;
    let mut inbox_db = TestDb::create("inbox").await;
    let started = Instant::now();
    let mut starts = tokio::task::JoinSet::new();
    for _ in 0..STARTS {
        let config = ticketing::Config::for_database(ticketing_db.url());
        starts.spawn(async move { ticketing::migrate(&config).await.map_err(|e| e.to_string()) });
        let config = inbox::Config::for_database(inbox_db.url(), "http://127.0.0.1:1");
        starts.spawn(async move { inbox::migrate(&config).await.map_err(|e| e.to_string()) });
    }
    let mut failures = Vec::new();
    while let Some(ended) = starts.join_next().await {
        if let Err(err) = ended.expect("the start did not panic") {
            failures.push(err);
        }
    }
    eprintln!(
        "{} concurrent starts per service migrated in {:?}",
        STARTS,
        started.elapsed()
    );
    assert!(failures.is_empty(), "every start succeeds: {failures:?}");

    let conn = Database::connect(ticketing_db.url())
        .await
        .expect("connect");
    assert_eq!(
        applied(&conn).await,
        names::<ticketing::store::migration::Migrator>()
    );
    conn.close().await.ok();
    let conn = Database::connect(inbox_db.url()).await.expect("connect");
    assert_eq!(
        applied(&conn).await,
        names::<inbox::store::migration::Migrator>()
    );
    conn.close().await.ok();
    ticketing_db.drop_database().await;
    inbox_db.drop_database().await;
}

/// Records a migration this binary does not know, as a later release would.
async fn apply_later_migration(url: &str, name: &str) {
    let conn = Database::connect(url).await.expect("connect");
    conn.execute_unprepared(&format!(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('{name}', 0)"
    ))
    .await
    .expect("record a later migration");
    conn.close().await.ok();
}

#[tokio::test]
async fn a_schema_newer_than_the_binary_is_refused_and_an_expanded_one_is_served() {
    let mut db = TestDb::create("ticketing").await;
    let config = ticketing::Config::for_database(db.url());
    ticketing::migrate(&config).await.expect("first migration");

    // A later release added a column: the previous one still works on it.
    apply_later_migration(db.url(), "m29990101_000001_expand_ticket_colour").await;
    ticketing::migrate(&config)
        .await
        .expect("an expanded schema is served");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let shutdown = kit::shutdown::Shutdown::new();
    let serving = tokio::spawn(ticketing::run(
        config.clone(),
        listener,
        shutdown.draining(),
    ));
    e2e::wait_serving(addr).await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(30), serving)
        .await
        .expect("drains")
        .expect("joins")
        .expect("served on the expanded schema");

    // A later release dropped or changed something this one uses.
    apply_later_migration(db.url(), "m29990101_000002_drop_ticket_description").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let shutdown = kit::shutdown::Shutdown::new();
    let refused = tokio::time::timeout(
        Duration::from_secs(30),
        ticketing::run(config.clone(), listener, shutdown.draining()),
    )
    .await
    .expect("refuses at once instead of serving");
    let message = refused.expect_err("a newer schema is refused").to_string();
    assert!(
        message.contains("newer than this binary")
            && message.contains("m29990101_000002_drop_ticket_description"),
        "the refusal says why and names the migration: {message}"
    );
    let migrating = ticketing::migrate(&config).await;
    assert!(migrating.is_err(), "the migrate command refuses it too");
    db.drop_database().await;
}
