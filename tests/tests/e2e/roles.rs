//! SPEC §6, docs/security.md: token claims are checked (issuer and audience
//! required when configured, `exp`, `nbf` and `iat` with a configurable
//! leeway), and every RPC of both services admits exactly the roles the
//! roles table in docs/security.md gives it. The table is read from the
//! document itself, so the document and the servers cannot drift apart.

use std::time::{SystemTime, UNIX_EPOCH};

use e2e::{raw::Rpc, *};
use jsonwebtoken::{EncodingKey, Header, encode};
use proto::ticketing::v1 as tpb;
use serde::Serialize;
use tonic::{Code, Request, metadata::MetadataMap};

const SECRET: &str = "a-roles-test-signing-secret-of-length";
const ISSUER: &str = "https://issuer.example";

#[derive(Serialize, Default, Clone)]
struct Claims {
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

fn sign(claims: &Claims) -> String {
    encode(
        &Header::default(),
        claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .expect("sign")
}

/// Claims every check accepts.
fn good(account: Option<&str>, user: Option<&str>, service: Option<&str>) -> Claims {
    Claims {
        sub: user.map(str::to_owned),
        account: account.map(str::to_owned),
        svc: service.map(str::to_owned),
        iss: Some(ISSUER.into()),
        aud: Some("inbox-ticketing".into()),
        exp: Some(now() + 3_600),
        nbf: Some(now() - 5),
        iat: Some(now()),
    }
}

fn auth(leeway_secs: u64) -> kit::auth::AuthConfig {
    kit::auth::AuthConfig {
        mode: kit::auth::Mode::Tokens,
        hs256_secret: Some(SECRET.into()),
        issuer: Some(ISSUER.into()),
        leeway: std::time::Duration::from_secs(leeway_secs),
        ..kit::auth::AuthConfig::development()
    }
}

fn strict_ticketing(config: &mut ticketing::Config) {
    config.auth = auth(30);
}

/// The inbox with no leeway at all, to show the setting is the one used.
fn strict_inbox(config: &mut inbox::Config) {
    config.auth = auth(0);
    config.service_token = Some(sign(&good(None, None, Some("inbox"))));
}

fn metadata(pairs: &[(&'static str, String)]) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (key, value) in pairs {
        map.insert(*key, value.parse().expect("header"));
    }
    map
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn service_account(stack: &Stack) -> String {
    let mut request = Request::new(tpb::CreateAccountRequest {
        request_id: String::new(),
        account: Some(tpb::Account {
            name: "Roles".into(),
            tier: tpb::Tier::Starter as i32,
            ..Default::default()
        }),
    });
    request.metadata_mut().insert(
        "x-service-authorization",
        bearer(&sign(&good(None, None, Some("admin"))))
            .parse()
            .expect("header"),
    );
    stack
        .ticketing()
        .await
        .create_account(request)
        .await
        .expect("a service creates accounts")
        .into_inner()
        .id
}

#[tokio::test]
async fn token_claims_issuer_audience_times_and_kind_are_checked_with_the_configured_leeway() {
    let stack = Stack::start_with(strict_ticketing, strict_inbox).await;
    let account = service_account(&stack).await;
    let channel = channel(stack.ticketing_addr).await;
    let list = Rpc {
        path: "/ticketing.v1.TicketingService/ListPipelines".into(),
        server_streaming: false,
    };
    let user = || good(Some(&account), Some("alice"), None);
    let with = |change: fn(&mut Claims)| {
        let mut claims = user();
        change(&mut claims);
        claims
    };
    let cases: [(&str, Claims, bool); 12] = [
        ("every claim good", user(), true),
        (
            "no iss while AUTH_ISSUER is set",
            with(|c| c.iss = None),
            false,
        ),
        (
            "another issuer",
            with(|c| c.iss = Some("https://evil.example".into())),
            false,
        ),
        ("no aud", with(|c| c.aud = None), false),
        ("no exp", with(|c| c.exp = None), false),
        (
            "nbf an hour ahead",
            with(|c| c.nbf = Some(now() + 3_600)),
            false,
        ),
        (
            "nbf 10 s ahead, within the leeway",
            with(|c| c.nbf = Some(now() + 10)),
            true,
        ),
        (
            "expired 10 s ago, within the leeway",
            with(|c| c.exp = Some(now() - 10)),
            true,
        ),
        (
            "expired 2 min ago",
            with(|c| c.exp = Some(now() - 120)),
            false,
        ),
        (
            "issued an hour ahead",
            with(|c| c.iat = Some(now() + 3_600)),
            false,
        ),
        ("a user token naming no user", with(|c| c.sub = None), false),
        (
            "a service token sent as a user token",
            good(None, None, Some("admin")),
            false,
        ),
    ];
    for (case, claims, accepted) in cases {
        let answer = raw::call(
            &channel,
            &list,
            Vec::new(),
            &metadata(&[("authorization", bearer(&sign(&claims)))]),
        )
        .await;
        match (accepted, answer) {
            (true, Ok(())) => {}
            (false, Err(status)) if status.code() == Code::Unauthenticated => {}
            (_, answer) => panic!("{case}: expected accepted={accepted}, got {answer:?}"),
        }
    }
    // The inbox runs with no leeway: 10 s past `exp` is already too late
    // there, while ticketing (30 s) accepts the same token.
    let late = sign(&with(|c| c.exp = Some(now() - 10)));
    let inbox_list = Rpc {
        path: "/inbox.v1.InboxService/ListConversations".into(),
        server_streaming: false,
    };
    let status = raw::call(
        &e2e::channel(stack.inbox_addr).await,
        &inbox_list,
        Vec::new(),
        &metadata(&[("authorization", bearer(&late))]),
    )
    .await
    .expect_err("no leeway in the inbox");
    assert_eq!(status.code(), Code::Unauthenticated);
    stack.stop().await;
}

/// Who may call what, as the roles table of docs/security.md says: for
/// each RPC, whether a user, an internal service acting for an account,
/// and an internal service alone may call it.
struct Row {
    service: String,
    methods: Vec<String>,
    allowed: [bool; 3],
}

fn roles_table() -> Vec<Row> {
    let doc = include_str!("../../../docs/security.md");
    let section = doc
        .split("\n## Roles\n")
        .nth(1)
        .expect("docs/security.md has a Roles section");
    let mut rows = Vec::new();
    for line in section.lines().take_while(|l| !l.starts_with("## ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | `service`: A, B | user | service for an account | service alone |
        let Some(first) = cells.get(1).and_then(|c| c.strip_prefix('`')) else {
            continue;
        };
        let (service, methods) = first.split_once("`:").expect("`service`: methods");
        let allowed = |i: usize| cells[i].starts_with("yes");
        rows.push(Row {
            service: service.to_owned(),
            methods: methods.split(',').map(|m| m.trim().to_owned()).collect(),
            allowed: [allowed(2), allowed(3), allowed(4)],
        });
    }
    assert!(rows.len() >= 4, "the roles table was not found");
    rows
}

#[tokio::test]
async fn every_rpc_admits_exactly_the_roles_of_the_table_in_docs_security_md() {
    let stack = Stack::start_with(strict_ticketing, strict_inbox).await;
    let account = service_account(&stack).await;
    let user = bearer(&sign(&good(Some(&account), Some("alice"), None)));
    let service = bearer(&sign(&good(None, None, Some("importer"))));
    let table = roles_table();
    // The roles, each as the metadata a call carries.
    let roles: [(&str, MetadataMap); 7] = [
        ("nobody", MetadataMap::new()),
        (
            "a service token in authorization",
            metadata(&[("authorization", service.clone())]),
        ),
        ("user", metadata(&[("authorization", user.clone())])),
        // Development metadata widens nothing in token mode.
        (
            "user naming a service in x-service",
            metadata(&[
                ("authorization", user.clone()),
                ("x-service", "inbox".into()),
            ]),
        ),
        (
            // Per-user RPCs (displayed properties) need the user named too.
            "service for an account and user",
            metadata(&[
                ("x-service-authorization", service.clone()),
                ("x-account-id", account.clone()),
                ("x-user-id", "alice".into()),
            ]),
        ),
        (
            "service for a user",
            metadata(&[
                ("x-service-authorization", service.clone()),
                ("authorization", user.clone()),
            ]),
        ),
        (
            "service alone",
            metadata(&[("x-service-authorization", service.clone())]),
        ),
    ];
    let mut checked = 0;
    for (service_name, addr) in [
        ("ticketing", stack.ticketing_addr),
        ("inbox", stack.inbox_addr),
    ] {
        let full_name = match service_name {
            "ticketing" => "ticketing.v1.TicketingService",
            _ => "inbox.v1.InboxService",
        };
        let channel = channel(addr).await;
        for rpc in raw::rpcs(full_name) {
            let rows: Vec<&Row> = table
                .iter()
                .filter(|r| {
                    r.service == service_name && r.methods.iter().any(|m| m == rpc.method())
                })
                .collect();
            assert_eq!(
                rows.len(),
                1,
                "{} must have exactly one row in the roles table of docs/security.md",
                rpc.path
            );
            let [user_may, for_account_may, alone_may] = rows[0].allowed;
            let expected = [
                false,
                false,
                user_may,
                user_may,
                for_account_may,
                for_account_may,
                alone_may,
            ];
            for ((role, metadata), admitted) in roles.iter().zip(expected) {
                // An empty request: admitted calls are refused by validation
                // at most, never by authentication or the roles.
                let answer = raw::call(&channel, &rpc, Vec::new(), metadata).await;
                let code = answer.as_ref().err().map(|s| s.code());
                let refused = matches!(code, Some(Code::Unauthenticated | Code::PermissionDenied));
                assert_eq!(
                    !refused, admitted,
                    "{} as {role}: expected admitted={admitted}, got {answer:?}",
                    rpc.path
                );
                assert_ne!(
                    code,
                    Some(Code::Internal),
                    "{} as {role}: {answer:?}",
                    rpc.path
                );
                if !admitted && role.starts_with("user") {
                    assert_eq!(code, Some(Code::PermissionDenied), "{} as a user", rpc.path);
                }
                checked += 1;
            }
        }
    }
    eprintln!("{checked} calls: every RPC of both services with every role");
    stack.stop().await;
}

#[tokio::test]
async fn an_acknowledgement_beyond_the_head_is_out_of_range() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let conversation = conversation(&stack, &account, "Acked", "a@example.com").await;
    ticket_for(&stack, &account, &conversation.id).await;
    let mut ticketing = stack.ticketing().await;
    let ack = |after_sequence: i64| {
        as_service(
            "reports",
            tpb::AcknowledgeEventsRequest {
                consumer: "reports".into(),
                cursors: vec![tpb::AccountCursor {
                    account_id: account.clone(),
                    after_sequence,
                    ..Default::default()
                }],
            },
        )
    };
    ticketing
        .acknowledge_events(ack(1))
        .await
        .expect("within the head");
    let status = ticketing
        .acknowledge_events(ack(1_000_000_000))
        .await
        .expect_err("beyond the head");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert_eq!(reason(&status), "CURSOR_AHEAD_OF_HEAD");
    // And a user may not acknowledge for the inbox at all.
    let status = ticketing
        .acknowledge_events(as_user(
            &account,
            "x",
            tpb::AcknowledgeEventsRequest {
                consumer: "inbox".into(),
                cursors: vec![],
            },
        ))
        .await
        .expect_err("users do not acknowledge");
    assert_eq!(status.code(), Code::PermissionDenied);
    stack.stop().await;
}
