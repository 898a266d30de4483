//! Hostile bytes (SPEC §6, docs/security.md "Errors and limits"): request
//! bodies that do not decode are INVALID_ARGUMENT, never INTERNAL, on every
//! RPC of both services; an error quoting a huge caller value stays under
//! 4 KiB; a length prefix over the limit is RESOURCE_EXHAUSTED.

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use tonic::{Code, metadata::MetadataMap};

/// A call that passes authentication and the roles on every RPC, so the
/// body is what is judged.
fn trusted(account: &str) -> MetadataMap {
    let mut metadata = MetadataMap::new();
    for (key, value) in [
        ("x-service", "fuzz"),
        ("x-account-id", account),
        ("x-user-id", "fuzz"),
    ] {
        metadata.insert(key, value.parse().expect("header"));
    }
    metadata
}

/// Bodies that do not decode as any request message, whatever its fields:
/// each breaks the wire format itself.
fn undecodable() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        // Field 1, length-delimited, claiming 5 bytes and giving 1.
        ("a truncated field", vec![0x0a, 0x05, b'a']),
        // Wire type 7 does not exist.
        ("an invalid wire type", vec![0x0f, 0x01]),
        // Field number 0 is invalid.
        ("field number zero", vec![0x02, 0x00]),
        // A varint that never ends.
        (
            "an endless varint",
            vec![
                0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            ],
        ),
        // Every request message's field 1 is a string or a message here, so
        // a group start (wire type 3) never closed cannot decode.
        ("an unclosed group", vec![0x0b]),
    ]
}

/// A small deterministic generator: the same bodies on every run.
struct Bytes(u64);

impl Bytes {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn body(&mut self) -> Vec<u8> {
        let len = (self.next() % 48) as usize;
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[tokio::test]
async fn no_request_body_gets_internal_and_undecodable_ones_are_invalid_argument() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let metadata = trusted(&account);
    let mut bytes = Bytes(0x9e37_79b9_7f4a_7c15);
    let (mut calls, mut undecodable_refused) = (0, 0);
    for (service, addr) in [
        ("ticketing.v1.TicketingService", stack.ticketing_addr),
        ("inbox.v1.InboxService", stack.inbox_addr),
    ] {
        let channel = channel(addr).await;
        for rpc in raw::rpcs(service) {
            for (what, body) in undecodable() {
                let status = raw::call(&channel, &rpc, body, &metadata)
                    .await
                    .expect_err("does not decode");
                assert_eq!(
                    status.code(),
                    Code::InvalidArgument,
                    "{} with {what}: {status:?}",
                    rpc.path
                );
                assert_eq!(reason(&status), "UNDECODABLE_REQUEST");
                undecodable_refused += 1;
            }
            // Invalid UTF-8 in field 1 (a string in most requests).
            let mut random = vec![vec![0x0a, 0x02, 0xff, 0xfe]];
            random.extend((0..40).map(|_| bytes.body()));
            for body in random {
                if let Err(status) = raw::call(&channel, &rpc, body.clone(), &metadata).await {
                    assert!(
                        !matches!(status.code(), Code::Internal | Code::Unknown),
                        "{} with {body:02x?}: {status:?}",
                        rpc.path
                    );
                    assert!(status.message().len() + status.details().len() < 4096);
                }
                calls += 1;
            }
        }
    }
    eprintln!(
        "{undecodable_refused} undecodable bodies refused with INVALID_ARGUMENT, {calls} random bodies without INTERNAL"
    );
    wait_serving(stack.ticketing_addr).await;
    wait_serving(stack.inbox_addr).await;
    stack.stop().await;
}

#[tokio::test]
async fn an_error_quoting_a_huge_caller_value_stays_under_4_kib_through_both_services() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let seed = conversation(&stack, &account, "Seed", "seed@example.com").await;
    let ticket = ticket_for(&stack, &account, &seed.id).await;
    let huge = "p".repeat(10_000);
    let mask = || {
        Some(prost_types::FieldMask {
            paths: vec![huge.clone()],
        })
    };
    let direct = stack
        .ticketing()
        .await
        .update_ticket(as_user(
            &account,
            "x",
            tpb::UpdateTicketRequest {
                ticket: Some(tpb::Ticket {
                    id: ticket.id.clone(),
                    ..Default::default()
                }),
                update_mask: mask(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no such field");
    let through_inbox = stack
        .inbox()
        .await
        .update_conversation_ticket(as_user(
            &account,
            "x",
            ipb::UpdateConversationTicketRequest {
                conversation_id: seed.id.clone(),
                ticket: Some(tpb::Ticket::default()),
                update_mask: mask(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no such field");
    for status in [direct, through_inbox] {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(bad_field(&status), "update_mask.paths[0]");
        let size = status.message().len() + status.details().len();
        assert!(size < 4096, "{size} bytes: {status:?}");
        assert!(!status.message().contains(&"p".repeat(100)), "{status:?}");
    }
    stack.stop().await;
}

#[tokio::test]
async fn a_length_prefix_over_the_limit_is_resource_exhausted() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let rpc = raw::rpcs("ticketing.v1.TicketingService")
        .into_iter()
        .find(|r| r.method() == "CreateTicket")
        .expect("CreateTicket");
    let body = vec![0u8; kit::server::MAX_MESSAGE_SIZE + 1];
    let status = raw::call(
        &channel(stack.ticketing_addr).await,
        &rpc,
        body,
        &trusted(&account),
    )
    .await
    .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), "MESSAGE_TOO_LARGE");
    stack.stop().await;
}
