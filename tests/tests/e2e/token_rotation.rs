//! The inbox's own service token is read from a file and read again while
//! it runs (docs/security.md, "Keys"): a rotated Secret takes effect without
//! a restart. The file starts with a token ticketing refuses (signed with
//! another key); once it holds a good one, forwarded calls succeed.

use std::{
    path::PathBuf,
    sync::OnceLock,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use e2e::*;
use jsonwebtoken::{EncodingKey, Header, encode};
use proto::ticketing::v1 as tpb;
use serde::Serialize;
use tonic::Request;

const SECRET: &str = "a-test-signing-secret-of-some-length";

static TOKEN_FILE: OnceLock<PathBuf> = OnceLock::new();

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

fn sign(sub: Option<&str>, account: Option<&str>, svc: Option<&str>, secret: &str) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3_600;
    let claims = Claims {
        sub,
        account,
        svc,
        aud: "inbox-ticketing",
        exp,
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn token_mode() -> kit::auth::AuthConfig {
    kit::auth::AuthConfig {
        mode: kit::auth::Mode::Tokens,
        hs256_secret: Some(SECRET.into()),
        ..kit::auth::AuthConfig::development()
    }
}

fn tokens_for_ticketing(config: &mut ticketing::Config) {
    config.auth = token_mode();
}

fn token_file_for_inbox(config: &mut inbox::Config) {
    config.auth = token_mode();
    let path = TOKEN_FILE.get().expect("token file").clone();
    config.service_token = Some(std::fs::read_to_string(&path).expect("token file"));
    config.service_token_file = Some(path.display().to_string());
}

fn bearer<T>(header: &'static str, token: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert(header, format!("Bearer {token}").parse().expect("header"));
    request
}

#[tokio::test]
async fn a_rotated_service_token_file_is_used_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("token-rotation-{}", kit::new_id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let path = dir.join("token");
    std::fs::write(
        &path,
        sign(None, None, Some("inbox"), "not-the-signing-key-at-all!"),
    )
    .expect("write");
    TOKEN_FILE.set(path.clone()).expect("one test sets it");
    let stack = Stack::start_with(tokens_for_ticketing, token_file_for_inbox).await;

    let account = stack
        .ticketing()
        .await
        .create_account(bearer(
            "x-service-authorization",
            &sign(None, None, Some("admin"), SECRET),
            tpb::CreateAccountRequest {
                request_id: String::new(),
                account: Some(tpb::Account {
                    name: "Acme".into(),
                    tier: tpb::Tier::Starter as i32,
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("account")
        .into_inner()
        .id;
    let user = sign(Some("ana"), Some(&account), None, SECRET);
    let mut inbox = stack.inbox().await;
    let conversations = inbox.clone();
    let conversation = || {
        let mut inbox = conversations.clone();
        let user = user.clone();
        async move {
            inbox
                .create_conversation(bearer(
                    "authorization",
                    &user,
                    new_conversation("Printer", "ana@example.com"),
                ))
                .await
                .expect("conversation")
                .into_inner()
                .id
        }
    };

    let refused = inbox
        .create_ticket_for_conversation(bearer(
            "authorization",
            &user,
            create_ticket_for(&conversation().await),
        ))
        .await
        .expect_err("ticketing refuses the inbox's badly signed token");
    eprintln!(
        "with the old token: {:?} {}",
        refused.code(),
        refused.message()
    );

    std::fs::write(&path, sign(None, None, Some("inbox"), SECRET)).expect("rotate");
    let rotated = Instant::now();
    loop {
        let id = conversation().await;
        let created = inbox
            .create_ticket_for_conversation(bearer("authorization", &user, create_ticket_for(&id)))
            .await;
        if created.is_ok() {
            break;
        }
        assert!(
            rotated.elapsed() < Duration::from_secs(5),
            "the new token is used within seconds, without a restart: {created:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("the new token took effect after {:?}", rotated.elapsed());
    stack.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}
