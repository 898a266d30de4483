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
