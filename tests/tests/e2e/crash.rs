//! The real `inbox` binary is killed with SIGKILL again and again while
//! tickets close and reopen; after it restarts and catches up, every
//! conversation is as if nothing had happened, and no event was applied
//! twice.

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

const KILLS: usize = 22;
const TICKETS: usize = 6;

/// The `inbox` binary next to this test's executable, built if missing.
fn inbox_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let binary = dir.join("inbox");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "-p", "inbox", "--bin", "inbox"])
            .status()
            .expect("cargo build");
        assert!(status.success(), "building the inbox binary failed");
    }
    binary
}

fn start_inbox(stack: &Stack, port: u16) -> Child {
    Command::new(inbox_binary())
        .env("INBOX_LISTEN", format!("127.0.0.1:{port}"))
        .env("INBOX_DATABASE_URL", stack.inbox_database_url())
        .env(
            "INBOX_TICKETING_URL",
            format!("http://{}", stack.ticketing_addr),
        )
        .env("INBOX_LEASE_TTL", "1s")
        .env("AUTH_MODE", "development")
        .env("INBOX_MAX_RECONNECT_BACKOFF", "300ms")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the inbox binary")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn random(below: u64) -> u64 {
    (uuid::Uuid::now_v7().as_u128() as u64) % below
}

fn one_second_lease(config: &mut inbox::Config) {
    config.lease_ttl = Duration::from_secs(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_inbox_killed_again_and_again_applies_every_event_exactly_once() {
    let mut stack = Stack::start_with(|_| {}, one_second_lease).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut conversations = Vec::new();
    let mut tickets = Vec::new();
    for i in 0..TICKETS {
        let c = conversation(
            &stack,
            &account,
            &format!("Crash {i}"),
            &format!("c{i}@example.com"),
        )
        .await;
        tickets.push(ticket_for(&stack, &account, &c.id).await);
        conversations.push(c);
    }
    // From here on only the real binary consumes.
    stack.crash_inbox().await;
    let closed = stage_id(&stack, &account, "Closed").await;
    let open = stage_id(&stack, &account, "Waiting on us").await;

    let mut moves = [0usize; TICKETS];
    let mut ticketing = stack.ticketing().await;
    let mut child = start_inbox(&stack, free_port());
    for round in 0..KILLS {
        // Load: every ticket flips between closed and open a few times.
        for _ in 0..3 {
            for (i, ticket) in tickets.iter().enumerate() {
                let target = if moves[i].is_multiple_of(2) {
                    &closed
                } else {
                    &open
                };
                ticketing
                    .update_ticket(as_user(
                        &account,
                        "x",
                        move_to_stage(&ticket.id, target, ""),
                    ))
                    .await
                    .expect("move ticket");
                moves[i] += 1;
            }
        }
        tokio::time::sleep(Duration::from_millis(random(300))).await;
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        child = start_inbox(&stack, free_port());
        if round % 5 == 0 {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let port = free_port();
    child.kill().ok();
    child.wait().ok();
    let mut child = start_inbox(&stack, port);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_serving(addr).await;
    let inbox = ipb::inbox_service_client::InboxServiceClient::new(channel(addr).await);

    for (i, conversation) in conversations.iter().enumerate() {
        let ticket = get_ticket(&stack, &account, &tickets[i].id).await.unwrap();
        let expected_status = if ticket.closed {
            ipb::ConversationStatus::Closed
        } else {
            ipb::ConversationStatus::Open
        };
        // Created (1), linked (2), then one change per stage move, each
        // applied once: a doubled event would change nothing (conditional
        // updates) but a lost one would leave the version short.
        let expected_version = 2 + moves[i] as i64;
        let settled = eventually("the restarted inbox to catch up", || {
            let mut inbox = inbox.clone();
            let request = as_user(
                &account,
                "x",
                ipb::GetConversationRequest {
                    id: conversation.id.clone(),
                },
            );
            async move {
                let c = inbox.get_conversation(request).await.ok()?.into_inner();
                (c.version >= expected_version).then_some(c)
            }
        })
        .await;
        assert_eq!(settled.status, expected_status as i32, "conversation {i}");
        assert_eq!(
            settled.version, expected_version,
            "conversation {i}: each event applied exactly once"
        );
    }
    eprintln!(
        "{KILLS} kills, {} stage moves, {} conversations all consistent",
        moves.iter().sum::<usize>(),
        conversations.len()
    );
    child.kill().ok();
    child.wait().ok();
    stack.stop().await;
}
