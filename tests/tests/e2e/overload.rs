//! A flood is refused quickly with RESOURCE_EXHAUSTED instead of queueing,
//! admitted calls complete, streams have a limit of their own, and the
//! server stays SERVING.

use e2e::*;
use proto::ticketing::v1 as tpb;
use tonic::Code;

fn tight_limits(config: &mut ticketing::Config) {
    config.limits.max_concurrent_calls = 4;
    config.limits.max_streams = 2;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_gets_resource_exhausted_and_the_server_keeps_serving() {
    let stack = Stack::start_with(tight_limits, |_| {}).await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let ticketing = stack.ticketing().await;

    let calls: Vec<_> = (0..300)
        .map(|i| {
            let mut ticketing = ticketing.clone();
            let request = as_user(
                &account,
                "flood",
                tpb::CreateTicketRequest {
                    request_id: String::new(),
                    ticket: Some(tpb::Ticket {
                        name: format!("Flood {i}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            tokio::spawn(async move { ticketing.create_ticket(request).await.map(|_| ()) })
        })
        .collect();
    let (mut admitted, mut shed) = (0, 0);
    for call in calls {
        match call.await.expect("task") {
            Ok(()) => admitted += 1,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                shed += 1;
            }
        }
    }
    eprintln!("flood of 300 creates: {admitted} admitted, {shed} refused with RESOURCE_EXHAUSTED");
    assert!(
        shed > 0,
        "the limit of 4 in-flight calls must shed some of 300"
    );
    assert!(admitted > 0);
    // Every admitted call took effect, and nothing else did.
    let mut listed = 0;
    let mut token = String::new();
    loop {
        let page = stack
            .ticketing()
            .await
            .list_tickets(as_user(
                &account,
                "x",
                tpb::ListTicketsRequest {
                    page_size: 1000,
                    page_token: token.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("list after the flood")
            .into_inner();
        listed += page.tickets.len();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(listed, admitted);

    // Streams: two admitted (one is the inbox's consumer), the next refused.
    let watch = || as_user(&account, "x", events_after(&account, 0));
    let mut client = stack.ticketing().await;
    let mut held = Vec::new();
    let refused = loop {
        match client.watch_events(watch()).await {
            Ok(stream) => held.push(stream),
            Err(status) => break status,
        }
        assert!(held.len() <= 2, "the stream limit is 2");
    };
    assert_eq!(refused.code(), Code::ResourceExhausted);
    wait_serving(stack.ticketing_addr).await;
    drop(held);
    stack.stop().await;
}

fn four_calls(config: &mut ticketing::Config) {
    config.limits.max_concurrent_calls = 4;
}

/// No call is ever admitted: only what bypasses admission is served.
fn no_calls(config: &mut inbox::Config) {
    config.limits.max_concurrent_calls = 0;
}

/// Health checks on a connection of their own, as a kubelet's probe.
async fn health_checks(addr: std::net::SocketAddr, n: usize) -> Vec<Result<i32, tonic::Status>> {
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let client = HealthClient::new(channel(addr).await);
    let checks: Vec<_> = (0..n)
        .map(|_| {
            let mut client = client.clone();
            tokio::spawn(async move {
                client
                    .check(HealthCheckRequest::default())
                    .await
                    .map(|r| r.into_inner().status)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for check in checks {
        answers.push(check.await.expect("task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_reflection_bypass_admission_control_under_a_flood() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let stack = Stack::start_with(four_calls, no_calls).await;
    let account = account(&stack, tpb::Tier::Starter).await;

    // Ticketing under a flood of 2,000 concurrent creates with room for 4,
    // probed at the same time.
    let ticketing = stack.ticketing().await;
    let flood: Vec<_> = (0..2_000)
        .map(|i| {
            let mut ticketing = ticketing.clone();
            let request = as_user(
                &account,
                "flood",
                tpb::CreateTicketRequest {
                    ticket: Some(tpb::Ticket {
                        name: format!("Flood {i}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            tokio::spawn(async move { ticketing.create_ticket(request).await.map(|_| ()) })
        })
        .collect();
    let probes = health_checks(stack.ticketing_addr, 200).await;
    let (mut shed, mut refused_streams) = (0, 0);
    for call in flood {
        match call.await.expect("task") {
            Ok(()) => {}
            Err(status) if status.code() == Code::ResourceExhausted => shed += 1,
            // 2,000 streams on one connection that allows 256 at a time:
            // the client and the server count a finishing stream apart for
            // a moment, so now and then the client opens one too many and
            // HTTP/2 refuses it (REFUSED_STREAM) before any service sees
            // it. Nothing was applied, and gRPC treats it as safe to retry.
            Err(status) if format!("{status:?}").contains("REFUSED_STREAM") => refused_streams += 1,
            Err(status) => panic!("neither admitted nor shed: {status:?}"),
        }
    }
    assert!(shed > 0, "the flood must hit the limit");
    assert!(
        refused_streams < 20,
        "the connection's stream limit, not admission, refused {refused_streams}"
    );
    for probe in &probes {
        assert_eq!(
            probe.as_ref().ok(),
            Some(&(ServingStatus::Serving as i32)),
            "{probe:?}"
        );
    }

    // The inbox admits no call at all, and still answers every probe and
    // reflection (list services: field 7 of the request, empty).
    let refused = stack
        .inbox()
        .await
        .list_conversations(as_user(
            &account,
            "x",
            proto::inbox::v1::ListConversationsRequest::default(),
        ))
        .await
        .expect_err("no call is admitted");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    for probe in health_checks(stack.inbox_addr, 200).await {
        assert_eq!(probe.ok(), Some(ServingStatus::Serving as i32));
    }
    let reflection = raw::Rpc {
        path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo".into(),
        server_streaming: true,
    };
    let inbox_channel = channel(stack.inbox_addr).await;
    for path in [
        reflection.path.clone(),
        reflection.path.replace(".v1.", ".v1alpha."),
    ] {
        let rpc = raw::Rpc {
            path,
            ..reflection.clone()
        };
        raw::call(&inbox_channel, &rpc, vec![0x3a, 0x00], &Default::default())
            .await
            .unwrap_or_else(|status| panic!("{}: {status:?}", rpc.path));
    }
    eprintln!(
        "flood of 2,000: {shed} shed, {refused_streams} streams refused by HTTP/2; \
         400 health checks and reflection all served"
    );
    stack.stop().await;
}
