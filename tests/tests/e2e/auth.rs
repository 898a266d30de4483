//! Token mode: every RPC needs a valid bearer JWT (signature, expiry,
//! audience); claims name the account and user; the inbox calls ticketing
//! with its own service token plus the user's; health and reflection stay
//! open. A valid caller never sees another account's data.

use std::time::{SystemTime, UNIX_EPOCH};

use e2e::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};
use serde::Serialize;
use tonic::{Code, Request};

const SECRET: &str = "a-test-signing-secret-of-some-length";

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc: Option<&'a str>,
    aud: &'a str,
    exp: u64,
}

fn token(claims: Claims<'_>, secret: &str) -> String {
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn in_an_hour() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3_600
}

fn user_token(account: &str, user: &str) -> String {
    token(
        Claims {
            sub: Some(user),
            account: Some(account),
            svc: None,
            aud: "inbox-ticketing",
            exp: in_an_hour(),
        },
        SECRET,
    )
}

fn service_token(service: &str) -> String {
    token(
        Claims {
            sub: None,
            account: None,
            svc: Some(service),
            aud: "inbox-ticketing",
            exp: in_an_hour(),
        },
        SECRET,
    )
}

fn tokens_for_ticketing(config: &mut ticketing::Config) {
    config.auth = kit::auth::AuthConfig {
        mode: kit::auth::Mode::Tokens,
        hs256_secret: Some(SECRET.into()),
        ..kit::auth::AuthConfig::development()
    };
}

fn tokens_for_inbox(config: &mut inbox::Config) {
    config.auth = kit::auth::AuthConfig {
        mode: kit::auth::Mode::Tokens,
        hs256_secret: Some(SECRET.into()),
        ..kit::auth::AuthConfig::development()
    };
    config.service_token = Some(service_token("inbox"));
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header"),
    );
    request
}

#[tokio::test]
async fn token_mode_authenticates_every_call_and_isolates_accounts() {
    let stack = Stack::start_with(tokens_for_ticketing, tokens_for_inbox).await;
    let mut ticketing = stack.ticketing().await;
    let mut inbox = stack.inbox().await;
    // Creating accounts is an internal service's job.
    let create_account = |name: &str| {
        let mut request = Request::new(tpb::CreateAccountRequest {
            request_id: String::new(),
            account: Some(tpb::Account {
                name: name.into(),
                tier: tpb::Tier::Starter as i32,
                ..Default::default()
            }),
        });
        request.metadata_mut().insert(
            "x-service-authorization",
            format!("Bearer {}", service_token("admin"))
                .parse()
                .expect("header"),
        );
        request
    };
    let a = ticketing
        .create_account(create_account("A"))
        .await
        .expect("account A")
        .into_inner()
        .id;
    let b = ticketing
        .create_account(create_account("B"))
        .await
        .expect("account B")
        .into_inner()
        .id;

    // No token, a bad signature, an expired token, the wrong audience, and
    // plain development headers are all refused.
    let refused = [
        Request::new(ipb::ListConversationsRequest::default()),
        bearer(
            ipb::ListConversationsRequest::default(),
            &token(
                Claims {
                    sub: Some("u"),
                    account: Some(&a),
                    svc: None,
                    aud: "inbox-ticketing",
                    exp: in_an_hour(),
                },
                "another-secret-entirely-wrong-key",
            ),
        ),
        bearer(
            ipb::ListConversationsRequest::default(),
            &token(
                Claims {
                    sub: Some("u"),
                    account: Some(&a),
                    svc: None,
                    aud: "inbox-ticketing",
                    exp: 1_000_000,
                },
                SECRET,
            ),
        ),
        bearer(
            ipb::ListConversationsRequest::default(),
            &token(
                Claims {
                    sub: Some("u"),
                    account: Some(&a),
                    svc: None,
                    aud: "someone-else",
                    exp: in_an_hour(),
                },
                SECRET,
            ),
        ),
        as_user(&a, "u", ipb::ListConversationsRequest::default()),
    ];
    for request in refused {
        let status = inbox
            .list_conversations(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }
    let status = ticketing
        .list_tickets(Request::new(tpb::ListTicketsRequest::default()))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);

    // A user of A works end to end: the inbox passes the user's token on
    // with its own, and consumes ticketing's events as a service.
    let alice = user_token(&a, "alice");
    let conversation = inbox
        .create_conversation(bearer(new_conversation("Secured", "s@example.com"), &alice))
        .await
        .expect("create conversation")
        .into_inner();
    let ticket = inbox
        .create_ticket_for_conversation(bearer(create_ticket_for(&conversation.id), &alice))
        .await
        .expect("create ticket through the inbox")
        .into_inner()
        .ticket
        .expect("ticket");
    let pipelines = ticketing
        .list_pipelines(bearer(tpb::ListPipelinesRequest::default(), &alice))
        .await
        .expect("pipelines")
        .into_inner()
        .pipelines;
    let closed = pipelines[0]
        .stages
        .iter()
        .find(|s| s.is_closed)
        .expect("closed")
        .id
        .clone();
    let updated = ticketing
        .update_ticket(bearer(move_to_stage(&ticket.id, &closed, ""), &alice))
        .await
        .expect("close")
        .into_inner();
    assert!(updated.closed);
    eventually("the close to reach the inbox under token auth", || {
        let mut inbox = inbox.clone();
        let request = bearer(
            ipb::GetConversationRequest {
                id: conversation.id.clone(),
            },
            &alice,
        );
        async move {
            inbox
                .get_conversation(request)
                .await
                .ok()
                .filter(|c| is_closed(c.get_ref()))
        }
    })
    .await;

    // A user of B sees nothing of A's, exactly as if it did not exist.
    let bob = user_token(&b, "bob");
    let missing = inbox
        .get_conversation(bearer(
            ipb::GetConversationRequest {
                id: conversation.id.clone(),
            },
            &bob,
        ))
        .await
        .expect_err("not B's");
    assert_eq!(missing.code(), Code::NotFound);
    let missing = ticketing
        .get_ticket(bearer(
            tpb::GetTicketRequest {
                id: ticket.id.clone(),
            },
            &bob,
        ))
        .await
        .expect_err("not B's");
    assert_eq!(missing.code(), Code::NotFound);
    let listed = inbox
        .list_conversations(bearer(ipb::ListConversationsRequest::default(), &bob))
        .await
        .expect("list")
        .into_inner()
        .conversations;
    assert!(listed.is_empty());
    let foreign = ticketing
        .watch_events(bearer(events_after(&a, 0), &bob))
        .await
        .expect_err("A's events");
    assert_eq!(foreign.code(), Code::PermissionDenied);
    // Development headers do not widen a token: B's token with A's header.
    let mut sneaky = bearer(
        ipb::GetConversationRequest {
            id: conversation.id.clone(),
        },
        &bob,
    );
    sneaky
        .metadata_mut()
        .insert("x-account-id", a.parse().expect("header"));
    assert_eq!(
        inbox
            .get_conversation(sneaky)
            .await
            .expect_err("still B")
            .code(),
        Code::NotFound
    );

    // Health and reflection need no token.
    wait_serving(stack.inbox_addr).await;
    wait_serving(stack.ticketing_addr).await;
    stack.stop().await;
}
