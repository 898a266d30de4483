//! Thousands of random, mostly invalid requests against the running
//! services — typed ones, and raw bytes to any RPC of either service — no
//! panic, no INTERNAL, errors under 4 KiB, the servers stay SERVING, and
//! every refused call leaves the data as it was.

use e2e::*;
use proptest::{prelude::*, test_runner::TestRunner};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::Code;

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("0193aaaa-0000-7000-8000-000000000000".to_owned()),
        Just("x".repeat(600)),
        Just("y".repeat(10_000)),
        Just("💥\u{0}\u{202e}".to_owned()),
        "[a-z0-9_.@-]{1,12}",
        ".{0,40}",
    ]
}

fn number() -> impl Strategy<Value = i32> {
    prop_oneof![-3i32..8, Just(i32::MAX), Just(i32::MIN)]
}

#[derive(Debug, Clone)]
enum Call {
    CreateConversation(String, String, String, i32),
    AddMessage(String, i32, String, String),
    Assign(String, String, String),
    ListConversations(i32, String, i32, i32),
    CreateTicket(String, i32, String, String),
    UpdateTicket(String, Vec<String>, String, String),
    ListTickets(i32, String, i32, String),
    SetDisplayed(Vec<String>),
    WatchEvents(String, i64),
    ListHistory(String, i32),
    /// Raw bytes as the body of the n-th RPC of both services.
    Raw(usize, Vec<u8>),
}

fn call() -> impl Strategy<Value = Call> {
    prop_oneof![
        (text(), text(), text(), number())
            .prop_map(|(s, e, b, c)| Call::CreateConversation(s, e, b, c)),
        (text(), number(), text(), text()).prop_map(|(c, d, a, b)| Call::AddMessage(c, d, a, b)),
        (text(), text(), text()).prop_map(|(c, o, e)| Call::Assign(c, o, e)),
        (number(), text(), number(), number())
            .prop_map(|(p, t, s, w)| Call::ListConversations(p, t, s, w)),
        (text(), number(), text(), text()).prop_map(|(n, p, s, o)| Call::CreateTicket(n, p, s, o)),
        (
            text(),
            proptest::collection::vec(text(), 0..3),
            text(),
            text()
        )
            .prop_map(|(i, m, n, e)| Call::UpdateTicket(i, m, n, e)),
        (number(), text(), number(), text()).prop_map(|(p, t, w, o)| Call::ListTickets(p, t, w, o)),
        proptest::collection::vec(text(), 0..4).prop_map(Call::SetDisplayed),
        (text(), any::<i64>()).prop_map(|(a, s)| Call::WatchEvents(a, s)),
        (text(), number()).prop_map(|(t, p)| Call::ListHistory(t, p)),
        (
            any::<usize>(),
            proptest::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(rpc, body)| Call::Raw(rpc, body)),
    ]
}

/// What a refused call must not have changed.
async fn state(clients: &Clients, account: &str) -> (usize, usize, i64) {
    let conversations = clients
        .inbox
        .clone()
        .list_conversations(as_user(
            account,
            "probe",
            ipb::ListConversationsRequest {
                page_size: 1000,
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await
        .expect("list conversations")
        .into_inner()
        .conversations;
    let tickets = clients
        .ticketing
        .clone()
        .list_tickets(as_user(
            account,
            "probe",
            tpb::ListTicketsRequest {
                page_size: 1000,
                show_deleted: true,
                ..Default::default()
            },
        ))
        .await
        .expect("list tickets")
        .into_inner()
        .tickets;
    let versions = conversations.iter().map(|c| c.version).sum::<i64>()
        + tickets.iter().map(|t| t.version).sum::<i64>();
    (conversations.len(), tickets.len(), versions)
}

struct Clients {
    /// Every RPC of both services, with a channel to its server.
    rpcs: Vec<(tonic::transport::Channel, raw::Rpc)>,
    inbox: ipb::inbox_service_client::InboxServiceClient<tonic::transport::Channel>,
    ticketing: tpb::ticketing_service_client::TicketingServiceClient<tonic::transport::Channel>,
}

async fn send(clients: &Clients, account: &str, call: Call) -> Result<(), tonic::Status> {
    let mut inbox = clients.inbox.clone();
    let mut ticketing = clients.ticketing.clone();
    match call {
        Call::Raw(n, body) => {
            let (channel, rpc) = &clients.rpcs[n % clients.rpcs.len()];
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (key, value) in [
                ("x-service", "fuzz"),
                ("x-account-id", account),
                ("x-user-id", "fuzz"),
            ] {
                metadata.insert(key, value.parse().expect("header"));
            }
            raw::call(channel, rpc, body, &metadata).await
        }
        Call::CreateConversation(subject, email, body, channel) => inbox
            .create_conversation(as_user(
                account,
                "fuzz",
                ipb::CreateConversationRequest {
                    request_id: String::new(),
                    conversation: Some(ipb::Conversation {
                        subject,
                        channel,
                        ..Default::default()
                    }),
                    contact: Some(ipb::Contact {
                        email,
                        ..Default::default()
                    }),
                    first_message: Some(ipb::Message {
                        body,
                        ..Default::default()
                    }),
                },
            ))
            .await
            .map(|_| ()),
        Call::AddMessage(conversation_id, direction, author, body) => inbox
            .add_message(as_user(
                account,
                "fuzz",
                ipb::AddMessageRequest {
                    request_id: String::new(),
                    conversation_id,
                    message: Some(ipb::Message {
                        direction,
                        author,
                        body,
                        ..Default::default()
                    }),
                    seen_message_id: String::new(),
                },
            ))
            .await
            .map(|_| ()),
        Call::Assign(conversation_id, owner_id, etag) => inbox
            .assign_conversation(as_user(
                account,
                "fuzz",
                ipb::AssignConversationRequest {
                    request_id: String::new(),
                    conversation_id,
                    owner_id,
                    etag,
                },
            ))
            .await
            .map(|_| ()),
        Call::ListConversations(page_size, page_token, status, workspace) => inbox
            .list_conversations(as_user(
                account,
                "fuzz",
                ipb::ListConversationsRequest {
                    page_size,
                    page_token,
                    status,
                    workspace,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        Call::CreateTicket(name, priority, stage_id, owner_id) => ticketing
            .create_ticket(as_user(
                account,
                "fuzz",
                tpb::CreateTicketRequest {
                    ticket: Some(tpb::Ticket {
                        name,
                        priority,
                        stage_id,
                        owner_id,
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        Call::UpdateTicket(id, paths, name, etag) => ticketing
            .update_ticket(as_user(
                account,
                "fuzz",
                tpb::UpdateTicketRequest {
                    ticket: Some(tpb::Ticket {
                        id,
                        name,
                        etag,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask { paths }),
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        Call::ListTickets(page_size, page_token, workspace, owner_id) => ticketing
            .list_tickets(as_user(
                account,
                "fuzz",
                tpb::ListTicketsRequest {
                    page_size,
                    page_token,
                    workspace,
                    owner_id,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
        Call::SetDisplayed(property_names) => inbox
            .set_displayed_properties(as_user(
                account,
                "fuzz",
                ipb::SetDisplayedPropertiesRequest {
                    request_id: String::new(),
                    property_names,
                },
            ))
            .await
            .map(|_| ()),
        Call::WatchEvents(account_id, after_sequence) => ticketing
            .watch_events(as_user(
                account,
                "fuzz",
                events_after(&account_id, after_sequence),
            ))
            .await
            .map(|_| ()),
        Call::ListHistory(ticket_id, page_size) => ticketing
            .list_history(as_user(
                account,
                "fuzz",
                tpb::ListHistoryRequest {
                    subject: Some(tpb::list_history_request::Subject::TicketId(ticket_id)),
                    page_size,
                    ..Default::default()
                },
            ))
            .await
            .map(|_| ()),
    }
}

#[test]
fn random_requests_never_crash_leak_internals_or_half_apply() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let (stack, account, clients) = runtime.block_on(async {
        let stack = Stack::start().await;
        let account = account(&stack, tpb::Tier::Starter).await;
        let seed = conversation(&stack, &account, "Seed", "seed@example.com").await;
        ticket_for(&stack, &account, &seed.id).await;
        let mut rpcs = Vec::new();
        for (service, addr) in [
            ("ticketing.v1.TicketingService", stack.ticketing_addr),
            ("inbox.v1.InboxService", stack.inbox_addr),
        ] {
            let channel = channel(addr).await;
            rpcs.extend(raw::rpcs(service).into_iter().map(|r| (channel.clone(), r)));
        }
        let clients = Clients {
            rpcs,
            inbox: stack.inbox().await,
            ticketing: stack.ticketing().await,
        };
        (stack, account, clients)
    });
    // 300 in CI; GARBAGE_CASES=5000 for a longer local run.
    let cases = std::env::var("GARBAGE_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        ..ProptestConfig::default()
    });
    let (accepted, refused) = (std::cell::Cell::new(0u32), std::cell::Cell::new(0u32));
    let outcome = runner.run(&call(), |call| {
        runtime.block_on(async {
            let before = state(&clients, &account).await;
            match send(&clients, &account, call.clone()).await {
                Ok(()) => accepted.set(accepted.get() + 1),
                Err(status) => {
                    refused.set(refused.get() + 1);
                    prop_assert!(
                        !matches!(
                            status.code(),
                            Code::Internal | Code::Unknown | Code::Unimplemented
                        ),
                        "{call:?} → {status:?}"
                    );
                    prop_assert!(
                        status.message().len() + status.details().len() < 4096,
                        "an error over 4 KiB: {:?}",
                        status
                    );
                    prop_assert_eq!(
                        state(&clients, &account).await,
                        before,
                        "refused {:?} changed data",
                        call
                    );
                }
            }
            Ok(())
        })
    });
    runtime.block_on(async {
        wait_serving(stack.ticketing_addr).await;
        wait_serving(stack.inbox_addr).await;
    });
    eprintln!(
        "{} random requests: {} accepted, {} refused cleanly",
        accepted.get() + refused.get(),
        accepted.get(),
        refused.get()
    );
    outcome.expect("no random request may crash, leak an internal error or half-apply");
    runtime.block_on(stack.stop());
}
