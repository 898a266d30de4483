//! Paged reads keep one cached plan on PostgreSQL: their limit is written
//! into the statement, not bound (`kit::rows::at_most`, docs/decisions.md).
//! A bound limit made PostgreSQL plan a list query again on every call.
//! PostgreSQL only; on SQLite the test returns early.

use e2e::*;
use inbox::store::queries::{self, ConversationFilter};
use proto::ticketing::v1 as tpb;
use sea_orm::{ConnectionTrait, Statement};

#[tokio::test]
async fn a_page_of_conversations_is_served_by_a_cached_generic_plan() {
    let stack = Stack::start().await;
    let url = stack.inbox_database_url().to_owned();
    if kit::db::is_sqlite(&url) {
        return stack.stop().await;
    }
    let account = account(&stack, tpb::Tier::Starter).await;
    let first = conversation(&stack, &account, "First", "first@example.com").await;
    // An account with a thousand open conversations, as the list path
    // meets them: enough rows that a page is a small part of them.
    let db = kit::db::connect(&url, 1).await.expect("connect");
    db.execute_unprepared(&format!(
        "INSERT INTO conversations (id, account_id, subject, contact_id, channel, status, \
         owner_id, workspace, ticket_id, created_at, updated_at, deleted_at, version) \
         SELECT 'plan-' || i, '{account}', 'Seeded', '{contact}', 1, 1, NULL, 1, NULL, i, i, NULL, 1 \
         FROM generate_series(1, 1000) AS i",
        contact = first.contact_id,
    ))
    .await
    .expect("seed");
    db.execute_unprepared("ANALYZE conversations")
        .await
        .expect("analyze");

    let open = ConversationFilter {
        status: Some(1),
        ..Default::default()
    };
    for _ in 0..10 {
        let page = queries::list_conversations(&db, &account, &open, None, 21)
            .await
            .expect("list");
        assert_eq!(page.len(), 21);
    }

    // The pool has one connection, so this is the session that prepared
    // the list's statement.
    let plans = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT coalesce(sum(generic_plans), 0)::bigint, coalesce(sum(custom_plans), 0)::bigint \
             FROM pg_prepared_statements WHERE statement LIKE '%FROM \"conversations\"%ORDER BY%'",
        ))
        .await
        .expect("read plans")
        .expect("a row");
    let generic: i64 = plans.try_get_by_index(0).expect("generic");
    let custom: i64 = plans.try_get_by_index(1).expect("custom");
    assert!(
        generic >= 5 && custom <= 5,
        "10 pages: {generic} generic plans, {custom} custom ones"
    );
    db.close().await.ok();
    stack.stop().await;
}
