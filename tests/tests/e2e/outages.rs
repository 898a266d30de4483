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

/// Waits until `inbox` shows `conversation` on `ticket`.
async fn shows_ticket(
    inbox: &proto::inbox::v1::inbox_service_client::InboxServiceClient<tonic::transport::Channel>,
    account: &str,
    conversation: &str,
    ticket: &str,
    what: &str,
) {
    eventually(what, || {
        let mut inbox = inbox.clone();
        let request = as_user(
            account,
            "agent-1",
            ipb::GetConversationRequest {
                id: conversation.to_owned(),
            },
        );
        async move {
            let found = inbox.get_conversation(request).await.ok()?.into_inner();
            (found.ticket_id == ticket).then_some(())
        }
    })
    .await
}

fn one_second_lease(config: &mut inbox::Config) {
    config.lease_ttl = Duration::from_secs(1);
}

/// A ticket in ticketing directly for `conversation`, as another client of
/// ticketing would make it.
async fn ticket_in_ticketing(
    stack: &Stack,
    account: &str,
    conversation: &ipb::Conversation,
) -> tpb::Ticket {
    stack
        .ticketing()
        .await
        .create_ticket(as_user(
            account,
            "agent-1",
            tpb::CreateTicketRequest {
                conversation: Some(tpb::ConversationSnapshot {
                    id: conversation.id.clone(),
                    subject: conversation.subject.clone(),
                    contact_id: conversation.contact_id.clone(),
                    open: true,
                    version: conversation.version,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect("ticket in ticketing")
        .into_inner()
}

#[tokio::test]
async fn spec5_a_log_restored_from_an_older_backup_and_written_past_the_cursor_is_resynchronised() {
    let mut stack = Stack::start_with(|_| {}, one_second_lease).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let first = conversation(&stack, &account, "Before the backup", "ana@example.com").await;
    ticket_for(&stack, &account, &first.id).await;

    stack.stop_ticketing().await;
    let backup = stack.backup_ticketing_database().await;
    stack.start_ticketing().await;
    // Events after the backup, applied by the inbox: lost by the restore.
    for i in 0..6 {
        let lost = conversation(&stack, &account, &format!("Lost {i}"), "bo@example.com").await;
        ticket_for(&stack, &account, &lost.id).await;
    }
    let late = conversation(&stack, &account, "After the restore", "cy@example.com").await;

    // The inbox is down while ticketing is restored and written to again,
    // so that when it comes back the log's head is past its cursor: only
    // the log's identity can tell the events under the cursor are new.
    stack.crash_inbox().await;
    stack.stop_ticketing().await;
    stack.restore_ticketing_database(&backup).await;
    stack.start_ticketing().await;
    let restored_ticket = ticket_in_ticketing(&stack, &account, &late).await;
    for i in 0..20 {
        stack
            .ticketing()
            .await
            .create_ticket(as_user(
                &account,
                "agent-1",
                tpb::CreateTicketRequest {
                    ticket: Some(tpb::Ticket {
                        name: format!("after the restore {i}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .expect("write past the inbox's cursor");
    }
    let inbox_addr = stack.start_inbox_replica(one_second_lease).await;
    let mut inbox =
        proto::inbox::v1::inbox_service_client::InboxServiceClient::new(channel(inbox_addr).await);
    // The link was logged under the inbox's old cursor: without noticing
    // the restore, the inbox would skip it for good.
    shows_ticket(
        &inbox,
        &account,
        &late.id,
        &restored_ticket.id,
        "the inbox to follow the restored log",
    )
    .await;
    // And it goes on following it.
    let next = inbox
        .create_conversation(as_user(
            &account,
            "agent-1",
            new_conversation("Next", "dy@example.com"),
        ))
        .await
        .expect("a conversation on the restarted inbox")
        .into_inner();
    let next_ticket = ticket_in_ticketing(&stack, &account, &next).await;
    shows_ticket(
        &inbox,
        &account,
        &next.id,
        &next_ticket.id,
        "a later event to apply",
    )
    .await;
    stack.stop().await;
}
