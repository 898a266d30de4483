//! A first load benchmark: both services on a fresh database (SQLite, or
//! PostgreSQL when TEST_DATABASE_URL names a server), N concurrent callers
//! over several HTTP/2 connections for a fixed time per path, reporting
//! throughput and p50/p99/p999 latency next to a no-op gRPC call measured
//! in the same run (the transport's raw limit).
//!
//! cargo run --release -p e2e --bin bench -- [--seconds 10] [--concurrency 64] [--connections 4] [--json out.json]
//! cargo run -p e2e --bin bench -- --smoke

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use e2e::*;
use proto::{
    inbox::v1::{self as ipb, inbox_service_client::InboxServiceClient},
    ticketing::v1 as tpb,
};
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

struct Options {
    seconds: u64,
    concurrency: usize,
    connections: usize,
    json: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let smoke = args.iter().any(|a| a == "--smoke");
    Options {
        seconds: value("--seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 1 } else { 10 }),
        concurrency: value("--concurrency")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 4 } else { 64 }),
        connections: value("--connections")
            .and_then(|v| v.parse().ok())
            .unwrap_or(4)
            .max(1),
        json: value("--json"),
    }
}

#[derive(Debug)]
struct Figures {
    path: &'static str,
    calls: u64,
    errors: u64,
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
}

fn percentile(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[index] as f64 / 1_000.0
}

/// Runs `call` from `concurrency` tasks for `seconds`; latencies in µs.
async fn load<F, Fut>(path: &'static str, options: &Options, call: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let call = Arc::new(call);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..options.concurrency)
        .map(|worker| {
            let (call, stop, errors) = (call.clone(), stop.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let begin = Instant::now();
                    if !call(worker, n).await {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                    latencies.push(begin.elapsed().as_micros() as u64);
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(options.seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap_or_default());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Figures {
        path,
        calls: all.len() as u64,
        errors: errors.load(Ordering::Relaxed),
        per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.50),
        p99_ms: percentile(&all, 0.99),
        p999_ms: percentile(&all, 0.999),
    }
}

#[tokio::main]
async fn main() {
    let options = options();
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut inbox_clients: Vec<InboxServiceClient<Channel>> = Vec::new();
    let mut health_clients = Vec::new();
    for _ in 0..options.connections {
        inbox_clients.push(InboxServiceClient::new(channel(stack.inbox_addr).await));
        health_clients.push(HealthClient::new(channel(stack.inbox_addr).await));
    }
    let inbox_clients = Arc::new(inbox_clients);
    let health_clients = Arc::new(health_clients);

    // Data the read paths read: a contact with a few conversations, one ticketed.
    let seed = conversation(&stack, &account, "Seed", "seed@example.com").await;
    for i in 0..5 {
        conversation(
            &stack,
            &account,
            &format!("Earlier {i}"),
            "seed@example.com",
        )
        .await;
    }
    ticket_for(&stack, &account, &seed.id).await;

    let mut results = Vec::new();
    let clients = health_clients.clone();
    results.push(
        load(
            "no-op RPC (health check: the transport's raw limit)",
            &options,
            move |worker, _| {
                let mut client = clients[worker % clients.len()].clone();
                async move {
                    client
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .is_ok()
                }
            },
        )
        .await,
    );
    let (clients, a) = (inbox_clients.clone(), account.clone());
    results.push(
        load("CreateConversation", &options, move |worker, n| {
            let mut client = clients[worker % clients.len()].clone();
            let request = as_user(
                &a,
                "bench",
                new_conversation(
                    &format!("Load {worker}-{n}"),
                    &format!("c{worker}-{n}@example.com"),
                ),
            );
            async move { client.create_conversation(request).await.is_ok() }
        })
        .await,
    );
    let (clients, a, id) = (inbox_clients.clone(), account.clone(), seed.id.clone());
    results.push(
        load("GetConversationContext", &options, move |worker, _| {
            let mut client = clients[worker % clients.len()].clone();
            let request = as_user(
                &a,
                "bench",
                ipb::GetConversationContextRequest {
                    conversation_id: id.clone(),
                    previous_page_size: 10,
                    ..Default::default()
                },
            );
            async move { client.get_conversation_context(request).await.is_ok() }
        })
        .await,
    );
    let (clients, a) = (inbox_clients.clone(), account.clone());
    results.push(
        load(
            "ListConversations (open, first page)",
            &options,
            move |worker, _| {
                let mut client = clients[worker % clients.len()].clone();
                let request = as_user(
                    &a,
                    "bench",
                    ipb::ListConversationsRequest {
                        status: ipb::ConversationStatus::Open as i32,
                        page_size: 20,
                        ..Default::default()
                    },
                );
                async move { client.list_conversations(request).await.is_ok() }
            },
        )
        .await,
    );

    let raw = results[0].per_second;
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "postgresql"
    } else {
        "sqlite"
    };
    println!(
        "\n{backend}, {} callers over {} connections, {} s per path\n",
        options.concurrency, options.connections, options.seconds
    );
    println!(
        "{:<52} {:>9} {:>7} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "path", "calls", "errors", "per s", "p50 ms", "p99 ms", "p999 ms", "vs no-op"
    );
    for f in &results {
        println!(
            "{:<52} {:>9} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>7.1}%",
            f.path,
            f.calls,
            f.errors,
            f.per_second,
            f.p50_ms,
            f.p99_ms,
            f.p999_ms,
            100.0 * f.per_second / raw.max(1.0)
        );
    }
    if let Some(path) = &options.json {
        let rows: Vec<String> = results
            .iter()
            .map(|f| {
                format!(
                    "{{\"path\":{:?},\"calls\":{},\"errors\":{},\"per_second\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3}}}",
                    f.path, f.calls, f.errors, f.per_second, f.p50_ms, f.p99_ms, f.p999_ms
                )
            })
            .collect();
        let json = format!(
            "{{\"backend\":\"{backend}\",\"concurrency\":{},\"connections\":{},\"seconds\":{},\"results\":[{}]}}\n",
            options.concurrency,
            options.connections,
            options.seconds,
            rows.join(",")
        );
        if let Err(err) = std::fs::write(path, json) {
            eprintln!("cannot write {path}: {err}");
        }
    }
    let failed = results.iter().any(|f| f.calls == 0 || f.errors > 0);
    stack.stop().await;
    if failed {
        eprintln!("a path made no call or had errors");
        std::process::exit(1);
    }
}
