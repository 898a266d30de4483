//! Rules through ticketing outages, as an operator meets them: reports
//! queued while ticketing is down are delivered after changes made once it
//! is back, and the rules still end where the inbox's commit order says.

use std::time::Duration;

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};

fn assign(id: &str, owner: &str) -> ipb::AssignConversationRequest {
    ipb::AssignConversationRequest {
        conversation_id: id.into(),
        owner_id: owner.into(),
        ..Default::default()
    }
}

/// Waits until the inbox has delivered every queued report.
async fn outbox_drained(db: &DatabaseConnection) {
    eventually("the inbox's outbox to drain", || async {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) FROM outbox",
            ))
            .await
            .ok()??;
        let count: i64 = row.try_get_by_index(0).ok()?;
        (count == 0).then_some(())
    })
    .await
}

#[tokio::test]
async fn r4_an_owner_change_queued_in_an_outage_does_not_override_a_later_one() {
    let mut stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let x = conversation(&stack, &account, "One", "ana@example.com").await;
    let y = conversation(&stack, &account, "Two", "ana@example.com").await;
    let ticket = ticket_for(&stack, &account, &x.id).await;
    add_to_ticket(&stack, &account, &y.id, &ticket.id).await;
    let inbox_db = Database::connect(stack.inbox_database_url())
        .await
        .expect("inbox database");

    stack.stop_ticketing().await;
    stack
        .inbox()
        .await
        .assign_conversation(as_user(&account, "lead", assign(&x.id, "ux")))
        .await
        .expect("assigned while ticketing is down: the report is queued");
    // Long enough for the deliverer's backoff to grow past the restart, so
    // the queued report arrives after the next change, as in production.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    stack.start_ticketing().await;
    stack
        .inbox()
        .await
        .assign_conversation(as_user(&account, "lead", assign(&y.id, "uy")))
        .await
        .expect("assigned after the restart");
    outbox_drained(&inbox_db).await;

    // R4: the latest owner change in the inbox's commit order wins, in
    // ticketing and in the inbox's read model of the ticket.
    let stored = get_ticket(&stack, &account, &ticket.id)
        .await
        .expect("ticket");
    assert_eq!(stored.owner_id, "uy", "the late report of x must not win");
    eventually("the inbox's view of the ticket", || async {
        let context = stack
            .inbox()
            .await
            .get_conversation_context(as_user(
                &account,
                "lead",
                ipb::GetConversationContextRequest {
                    conversation_id: x.id.clone(),
                    ..Default::default()
                },
            ))
            .await
            .ok()?
            .into_inner();
        let owner = context.ticket?.ticket?.owner_id;
        (owner == "uy").then_some(())
    })
    .await;
    // A later change on the first conversation still wins.
    stack
        .inbox()
        .await
        .assign_conversation(as_user(&account, "lead", assign(&x.id, "ux2")))
        .await
        .expect("assign x again");
    ticket_becomes(&stack, &account, &ticket.id, "the newest owner", |t| {
        t.owner_id == "ux2"
    })
    .await;
    stack.stop().await;
}
