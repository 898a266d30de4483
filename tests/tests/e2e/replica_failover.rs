//! The inbox's calls to ticketing spread over every replica behind one name
//! and fail over when one dies (docs/operations.md, "Scale"). Three real
//! ticketing replicas on one database stand behind 127.0.0.1, .2 and .3 on
//! one port, named `ticketing.test` by a test resolver, as a headless
//! Service's pods are. Each address is a door the test can slam: closing it
//! drops the listener and every connection through it, which is what a
//! client sees of a `kill -9`.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    time::{Duration, Instant},
};

use e2e::{TestDb, as_service};
use inbox::replicas::{Replicas, Resolver};
use kit::shutdown::Shutdown;
use proto::ticketing::v1 as tpb;
use tokio::{
    net::{TcpListener, TcpStream},
    task::{JoinHandle, JoinSet},
};

const NAME: &str = "ticketing.test";

/// Forwards every connection made to `addr` to `to`, until aborted.
async fn open_door(addr: SocketAddr, to: SocketAddr) -> JoinHandle<()> {
    let listener = TcpListener::bind(addr).await.expect("bind door");
    tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((mut inbound, _)) = listener.accept().await {
            connections.spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(to).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    })
}

async fn slam(door: JoinHandle<()>) {
    door.abort();
    let _ = door.await;
}

fn loopback(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// A port free on 127.0.0.1, .2 and .3 alike.
async fn common_port() -> u16 {
    for _ in 0..50 {
        let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = probe.local_addr().expect("address").port();
        let mut free = true;
        for last in 2..=3 {
            free &= TcpListener::bind((loopback(last), port)).await.is_ok();
        }
        if free {
            return port;
        }
    }
    panic!("no port free on all three loopback addresses");
}

async fn start_replica(database_url: &str) -> (SocketAddr, Shutdown) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let config = ticketing::Config::for_database(database_url);
    let shutdown = Shutdown::new();
    let draining = shutdown.draining();
    tokio::spawn(async move {
        if let Err(err) = ticketing::run(config, listener, draining).await {
            panic!("ticketing replica failed: {err}");
        }
    });
    e2e::wait_serving(addr).await;
    (addr, shutdown)
}

/// One forwarded call; whether it succeeded.
async fn forward(replicas: &Replicas) -> bool {
    let request = as_service(
        "admin",
        tpb::CreateAccountRequest {
            request_id: String::new(),
            account: Some(tpb::Account {
                name: "Acme".into(),
                tier: tpb::Tier::Starter as i32,
                ..Default::default()
            }),
        },
    );
    replicas
        .call(
            request,
            Some(Duration::from_secs(5)),
            |mut c, r| async move { c.create_account(r).await },
        )
        .await
        .is_ok()
}

fn since(before: &HashMap<SocketAddr, u64>, now: &HashMap<SocketAddr, u64>) -> Vec<u64> {
    (1..=3)
        .map(|last| {
            let addr = now.keys().find(|a| a.ip() == loopback(last)).copied();
            addr.map_or(0, |a| now[&a] - before.get(&a).copied().unwrap_or(0))
        })
        .collect()
}

fn within(share: u64, expected: u64) -> bool {
    share * 10 >= expected * 8 && share * 10 <= expected * 12
}

#[tokio::test]
async fn calls_spread_over_replicas_behind_one_name_and_a_killed_ones_share_moves_at_once() {
    let mut db = TestDb::create("ticketing").await;
    ticketing::migrate(&ticketing::Config::for_database(db.url()))
        .await
        .expect("migrate");
    let port = common_port().await;
    let mut servers = Vec::new();
    let mut doors = Vec::new();
    for last in 1..=3 {
        let (addr, shutdown) = start_replica(db.url()).await;
        servers.push(shutdown);
        doors.push(Some(
            open_door(SocketAddr::new(loopback(last), port), addr).await,
        ));
    }
    let resolver = Resolver::fixed(NAME, (1..=3).map(loopback).collect());
    let replicas = Replicas::new(
        &format!("http://{NAME}:{port}"),
        resolver,
        Duration::from_millis(200),
    )
    .expect("replicas");

    const CALLS: u64 = 300;
    for _ in 0..CALLS {
        assert!(forward(&replicas).await, "every call succeeds");
    }
    let spread = since(&HashMap::new(), &replicas.answered());
    eprintln!("answers per replica over {CALLS} calls: {spread:?}");
    assert!(
        spread.iter().all(|&n| within(n, CALLS / 3)),
        "each replica answers a third of the calls, within 20 %: {spread:?}"
    );

    // kill -9 of the replica behind 127.0.0.2, with calls running.
    let before = replicas.answered();
    let calls = tokio::spawn({
        let replicas = replicas.clone();
        async move {
            let mut outcomes = Vec::new();
            for _ in 0..CALLS {
                outcomes.push((Instant::now(), forward(&replicas).await));
            }
            outcomes
        }
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    let killed_at = Instant::now();
    slam(doors[1].take().expect("door")).await;
    let outcomes = calls.await.expect("calls");
    let failed: Vec<_> = outcomes.iter().filter(|(_, ok)| !ok).collect();
    let late = failed
        .iter()
        .filter(|(at, _)| *at > killed_at + Duration::from_secs(1))
        .count();
    let shares = since(&before, &replicas.answered());
    eprintln!(
        "after the kill: {} of {CALLS} calls failed ({late} later than 1 s); answers per replica {shares:?}",
        failed.len()
    );
    assert!(
        (failed.len() as u64) * 100 < CALLS,
        "fewer than 1 % of calls fail"
    );
    assert_eq!(late, 0, "no call fails a second after the kill");

    // From now on the two others share everything.
    let before = replicas.answered();
    for _ in 0..CALLS {
        assert!(
            forward(&replicas).await,
            "every call succeeds on two replicas"
        );
    }
    let shares = since(&before, &replicas.answered());
    eprintln!("answers per replica with one dead: {shares:?}");
    assert_eq!(shares[1], 0, "the dead replica gets nothing");
    assert!(
        within(shares[0], CALLS / 2) && within(shares[2], CALLS / 2),
        "the others take its share: {shares:?}"
    );

    // It comes back: the probe puts it back in rotation.
    doors[1] = Some(
        open_door(SocketAddr::new(loopback(2), port), {
            let (addr, shutdown) = start_replica(db.url()).await;
            servers.push(shutdown);
            addr
        })
        .await,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let before = replicas.answered();
    loop {
        assert!(forward(&replicas).await);
        if since(&before, &replicas.answered())[1] > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a replica that answers again gets calls"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    for door in doors.into_iter().flatten() {
        slam(door).await;
    }
    for server in servers {
        server.trigger();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    db.drop_database().await;
}

/// The operator's view (SPEC §3 "holds whichever replica a call lands
/// on"): the inbox forwards UpdateConversationTicket to two replicas behind
/// one name; one is killed while calls run. Target: under 1 % of calls fail,
/// none later than a second after the kill.
#[tokio::test]
async fn forwarded_updates_through_the_inbox_survive_a_kill_of_one_of_two_replicas() {
    use proto::inbox::v1 as ipb;

    let mut ticketing_db = TestDb::create("ticketing").await;
    let mut inbox_db = TestDb::create("inbox").await;
    ticketing::migrate(&ticketing::Config::for_database(ticketing_db.url()))
        .await
        .expect("migrate");
    let port = common_port().await;
    let mut servers = Vec::new();
    let mut doors = Vec::new();
    for last in 1..=2 {
        let (addr, shutdown) = start_replica(ticketing_db.url()).await;
        servers.push(shutdown);
        doors.push(Some(
            open_door(SocketAddr::new(loopback(last), port), addr).await,
        ));
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let inbox_addr = listener.local_addr().expect("address");
    let mut config = inbox::Config::for_database(inbox_db.url(), &format!("http://{NAME}:{port}"));
    config.ticketing_resolver = Resolver::fixed(NAME, vec![loopback(1), loopback(2)]);
    config.ticketing_resolve_interval = Duration::from_millis(200);
    let inbox_stop = Shutdown::new();
    let draining = inbox_stop.draining();
    let inbox_task = tokio::spawn(async move { inbox::run(config, listener, draining).await });
    e2e::wait_serving(inbox_addr).await;
    let mut inbox = proto::inbox::v1::inbox_service_client::InboxServiceClient::new(
        e2e::channel(inbox_addr).await,
    );

    let admin = Replicas::new(
        &format!("http://{NAME}:{port}"),
        Resolver::fixed(NAME, vec![loopback(1)]),
        Duration::from_secs(60),
    )
    .expect("replicas");
    let account = admin
        .call(
            as_service(
                "admin",
                tpb::CreateAccountRequest {
                    request_id: String::new(),
                    account: Some(tpb::Account {
                        name: "Acme".into(),
                        tier: tpb::Tier::Starter as i32,
                        ..Default::default()
                    }),
                },
            ),
            Some(Duration::from_secs(5)),
            |mut c, r| async move { c.create_account(r).await },
        )
        .await
        .expect("account")
        .into_inner()
        .id;
    let conversation = inbox
        .create_conversation(e2e::as_user(
            &account,
            "ana",
            e2e::new_conversation("Printer", "ana@example.com"),
        ))
        .await
        .expect("conversation")
        .into_inner()
        .id;
    inbox
        .create_ticket_for_conversation(e2e::as_user(
            &account,
            "ana",
            e2e::create_ticket_for(&conversation),
        ))
        .await
        .expect("ticket");

    const CALLS: usize = 300;
    let calls = tokio::spawn({
        let mut inbox = inbox.clone();
        async move {
            let mut outcomes = Vec::new();
            for n in 0..CALLS {
                let request = ipb::UpdateConversationTicketRequest {
                    request_id: String::new(),
                    conversation_id: conversation.clone(),
                    ticket: Some(tpb::Ticket {
                        name: format!("Printer {n}"),
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["name".into()],
                    }),
                };
                let answer = inbox
                    .update_conversation_ticket(e2e::as_user(&account, "ana", request))
                    .await;
                outcomes.push((Instant::now(), answer.err().map(|s| s.code())));
            }
            outcomes
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let killed_at = Instant::now();
    slam(doors[1].take().expect("door")).await;
    let outcomes = calls.await.expect("calls");
    let failed: Vec<_> = outcomes.iter().filter(|(_, err)| err.is_some()).collect();
    let late = failed
        .iter()
        .filter(|(at, _)| *at > killed_at + Duration::from_secs(1))
        .count();
    let after_kill = outcomes.iter().filter(|(at, _)| *at > killed_at).count();
    eprintln!(
        "{} of {CALLS} forwarded updates failed ({after_kill} sent after the kill, {late} failures later than 1 s), first codes: {:?}",
        failed.len(),
        failed
            .iter()
            .take(5)
            .map(|(_, code)| code)
            .collect::<Vec<_>>()
    );
    assert!(after_kill > CALLS / 2, "most calls run after the kill");
    assert!(failed.len() * 100 < CALLS, "fewer than 1 % of calls fail");
    assert_eq!(late, 0, "no call fails a second after the kill");

    inbox_stop.trigger();
    let _ = tokio::time::timeout(Duration::from_secs(30), inbox_task).await;
    for door in doors.into_iter().flatten() {
        slam(door).await;
    }
    for server in servers {
        server.trigger();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    ticketing_db.drop_database().await;
    inbox_db.drop_database().await;
}
