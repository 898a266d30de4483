//! A database that refuses connections, as an operator meets it (a role
//! refused login, sessions terminated, the database being restored): calls
//! answer UNAVAILABLE with a reason, readiness turns NOT_SERVING while
//! liveness stays SERVING, and both come back by themselves. PostgreSQL
//! only: the embedded SQLite file cannot be taken away from an open handle.

use std::time::{Duration, Instant};

use e2e::*;
use proto::ticketing::v1 as tpb;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use tonic::Code;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn status(addr: std::net::SocketAddr, service: &str) -> Option<ServingStatus> {
    let mut client = HealthClient::new(channel(addr).await);
    let answer = client
        .check(HealthCheckRequest {
            service: service.into(),
        })
        .await
        .ok()?
        .into_inner();
    ServingStatus::try_from(answer.status).ok()
}

/// Refuses (or allows again) new sessions to `database`, and ends the ones
/// it has: what a refused login or a restore does to a service.
async fn connections(admin: &DatabaseConnection, database: &str, allowed: bool) {
    admin
        .execute_unprepared(&format!(
            "ALTER DATABASE \"{database}\" WITH ALLOW_CONNECTIONS {allowed}"
        ))
        .await
        .expect("alter database");
    if !allowed {
        admin
            .execute_unprepared(&format!(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = '{database}' AND pid <> pg_backend_pid()"
            ))
            .await
            .expect("terminate sessions");
    }
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_not_ready_and_both_recover() {
    let Some(admin_url) = std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
    else {
        eprintln!("PostgreSQL only (TEST_DATABASE_URL): skipped on SQLite");
        return;
    };
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let database = stack
        .ticketing_database_url()
        .rsplit_once('/')
        .map(|(_, name)| name.to_owned())
        .expect("database name");
    let admin = Database::connect(&admin_url)
        .await
        .expect("admin connection");
    const READINESS: &str = "ticketing.v1.TicketingService";
    assert_eq!(
        status(stack.ticketing_addr, READINESS).await,
        Some(ServingStatus::Serving)
    );

    connections(&admin, &database, false).await;
    let mut ticketing = stack.ticketing().await;
    let get = tpb::ListTicketsRequest::default();
    let refused = eventually("calls to answer UNAVAILABLE", || {
        let mut ticketing = ticketing.clone();
        let get = get.clone();
        let account = account.clone();
        async move {
            match ticketing
                .list_tickets(as_user(&account, "agent-1", get))
                .await
            {
                Err(status) if status.code() == Code::Unavailable => Some(status),
                _ => None,
            }
        }
    })
    .await;
    assert_eq!(reason(&refused), "DATABASE_UNAVAILABLE");
    eventually("readiness to turn NOT_SERVING", || async {
        (status(stack.ticketing_addr, READINESS).await == Some(ServingStatus::NotServing))
            .then_some(())
    })
    .await;
    assert_eq!(
        status(stack.ticketing_addr, "").await,
        Some(ServingStatus::Serving),
        "liveness stays up: a restart would not bring the database back"
    );
    let write = ticketing
        .create_ticket(as_user(
            &account,
            "agent-1",
            tpb::CreateTicketRequest {
                ticket: Some(tpb::Ticket {
                    name: "during the outage".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ))
        .await
        .expect_err("no database, no ticket");
    assert_eq!(write.code(), Code::Unavailable, "{write:?}");

    connections(&admin, &database, true).await;
    let back = Instant::now();
    eventually("calls to succeed again", || {
        let mut ticketing = ticketing.clone();
        let get = get.clone();
        let account = account.clone();
        async move {
            ticketing
                .list_tickets(as_user(&account, "agent-1", get))
                .await
                .ok()
        }
    })
    .await;
    eprintln!(
        "calls recovered {:?} after connections were allowed",
        back.elapsed()
    );
    eventually("readiness to turn SERVING again", || async {
        (status(stack.ticketing_addr, READINESS).await == Some(ServingStatus::Serving))
            .then_some(())
    })
    .await;
    eprintln!(
        "readiness recovered {:?} after connections were allowed",
        back.elapsed()
    );
    ticketing
        .list_tickets(as_user(
            &account,
            "agent-1",
            tpb::ListTicketsRequest::default(),
        ))
        .await
        .expect("served again");
    tokio::time::sleep(Duration::from_millis(10)).await;
    stack.stop().await;
}
