//! Upgrading a ticketing database that holds conversation links: the
//! per-account key (migration `migration_links`) keeps every row, and from
//! then on the same conversation id can be linked in two accounts while
//! each account still links it once (R2, docs/security.md "Account
//! isolation").

use e2e::TestDb;
use sea_orm::{ConnectionTrait, Database};
use sea_orm_migration::MigratorTrait;
use ticketing::store::migration::Migrator;

const CONVERSATION: &str = "0193aaaa-0000-7000-8000-000000000001";

fn link(account: &str, ticket: &str) -> String {
    format!(
        "INSERT INTO ticket_conversations (conversation_id, account_id, ticket_id, owner_id, \
         open, trashed, version, linked_at, cascade_id) \
         VALUES ('{CONVERSATION}', '{account}', '{ticket}', 'owner', true, false, 7, 1, NULL)"
    )
}

#[tokio::test]
async fn links_survive_the_upgrade_to_per_account_keys() {
    let mut db = TestDb::create("ticketing").await;
    let conn = Database::connect(db.url()).await.expect("connect");
    // Everything up to, not including, the per-account key.
    let upto = Migrator::migrations()
        .iter()
        .position(|m| m.name() == "migration_links")
        .expect("the migration is listed");
    Migrator::up(&conn, Some(upto as u32))
        .await
        .expect("old schema");
    conn.execute_unprepared(&link("account-a", "ticket-a"))
        .await
        .expect("a link under the old key");
    assert!(
        conn.execute_unprepared(&link("account-b", "ticket-b"))
            .await
            .is_err(),
        "the old key is global: another account's link collides"
    );

    Migrator::up(&conn, None).await.expect("upgrade");
    let kept = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            format!(
                "SELECT ticket_id, owner_id, version FROM ticket_conversations \
                 WHERE account_id = 'account-a' AND conversation_id = '{CONVERSATION}'"
            ),
        ))
        .await
        .expect("read")
        .expect("the link is kept");
    assert_eq!(kept.try_get::<String>("", "ticket_id").unwrap(), "ticket-a");
    assert_eq!(kept.try_get::<i64>("", "version").unwrap(), 7);
    conn.execute_unprepared(&link("account-b", "ticket-b"))
        .await
        .expect("the same id in another account is that account's own");
    assert!(
        conn.execute_unprepared(&link("account-a", "ticket-c"))
            .await
            .is_err(),
        "one account still links a conversation once"
    );
    conn.close().await.expect("close");
    db.drop_database().await;
}
