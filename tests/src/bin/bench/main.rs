//! The load benchmark: both services on a fresh database (PostgreSQL when
//! TEST_DATABASE_URL names a server, SQLite files otherwise), N concurrent
//! callers over several HTTP/2 connections per path for a fixed time, each
//! path beside its raw limit measured in the same run — a no-op gRPC call
//! for the transport, and the path's SQL transactions issued directly for
//! the database. Figures go to stdout, and with --json and --svg to files.
//!
//! cargo run --release -p e2e --bin bench -- [options]
//!   --seconds N          per path and concurrency (10; smoke 1)
//!   --concurrency LIST   callers, e.g. 1,4,16,64 (64; smoke 4)
//!   --connections N      HTTP/2 connections per service (4)
//!   --paths LIST         noop,create,ticket,close,assign,merge,context,list,propagation,fanout
//!   --subscribers N      fan-out subscribers (1000; smoke 20)
//!   --events N           fan-out changes per second (100; smoke 20)
//!   --growth LIST        instead of the paths: sidebar and list at these
//!                        conversation counts, e.g. 10000,1000000
//!   --slices N           alternate service and raw runs in N slices (5; smoke 1)
//!   --json FILE, --svg FILE, --smoke

mod load;
mod memory;
mod merging;
mod paths;
mod plot;
mod raw;
mod report;
mod seed;
mod streams;

use std::time::Duration;

use paths::{Bench, Measured};

pub struct Options {
    seconds: u64,
    concurrency: Vec<usize>,
    connections: usize,
    paths: Vec<String>,
    subscribers: usize,
    events_per_second: f64,
    growth: Vec<u64>,
    slices: u32,
    json: Option<String>,
    svg: Option<String>,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let list = |flag: &str| -> Option<Vec<String>> {
        value(flag).map(|v| v.split(',').map(|s| s.trim().to_owned()).collect())
    };
    let smoke = args.iter().any(|a| a == "--smoke");
    let all_paths = "noop,create,ticket,close,assign,merge,context,list,propagation,fanout";
    Options {
        seconds: value("--seconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 1 } else { 10 }),
        concurrency: list("--concurrency")
            .map(|l| l.iter().filter_map(|c| c.parse().ok()).collect())
            .filter(|l: &Vec<usize>| !l.is_empty())
            .unwrap_or_else(|| vec![if smoke { 4 } else { 64 }]),
        connections: value("--connections")
            .and_then(|v| v.parse().ok())
            .unwrap_or(4)
            .max(1),
        paths: list("--paths").unwrap_or_else(|| all_paths.split(',').map(str::to_owned).collect()),
        subscribers: value("--subscribers")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 20 } else { 1000 }),
        events_per_second: value("--events")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 20.0 } else { 100.0 }),
        growth: list("--growth")
            .map(|l| {
                l.iter()
                    .filter_map(|c| c.replace('_', "").parse::<u64>().ok())
                    .map(|n| {
                        n.div_ceil(seed::CONVERSATIONS_PER_CONTACT)
                            * seed::CONVERSATIONS_PER_CONTACT
                    })
                    .collect()
            })
            .unwrap_or_default(),
        slices: value("--slices")
            .and_then(|v| v.parse().ok())
            .unwrap_or(if smoke { 1 } else { 5 }),
        json: value("--json"),
        svg: value("--svg"),
    }
}

#[tokio::main]
async fn main() {
    let options = options();
    let peak = memory::Peak::start();
    let bench = Bench::start(
        options.connections,
        Duration::from_secs(options.seconds),
        2_000,
        options.slices,
    )
    .await;
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "postgresql"
    } else {
        "sqlite"
    };
    eprintln!(
        "bench: {backend}, callers {:?} over {} connections per service, {} s per run",
        options.concurrency, options.connections, options.seconds
    );
    let mut report = report::Report::new(backend, &options);
    if options.growth.is_empty() {
        run_paths(&bench, &options, &mut report, &peak).await;
    } else {
        run_growth(&bench, &options, &mut report).await;
    }
    report.peak_rss = Some(peak.highest());
    report.print();
    if let Some(path) = &options.json
        && let Err(err) = std::fs::write(path, report.json())
    {
        eprintln!("cannot write {path}: {err}");
    }
    if let Some(path) = &options.svg
        && let Err(err) = std::fs::write(path, plot::svg(&report.measured))
    {
        eprintln!("cannot write {path}: {err}");
    }
    let failures = report.failures();
    bench.stop().await;
    if !failures.is_empty() {
        eprintln!("bench: {}", failures.join("; "));
        std::process::exit(1);
    }
}

async fn run_paths(
    bench: &Bench,
    options: &Options,
    report: &mut report::Report,
    peak: &memory::Peak,
) {
    let wanted = |name: &str| options.paths.iter().any(|p| p == name);
    let sidebar = bench.sidebar_target(5).await;
    if wanted("list") {
        // The first page needs 20 open conversations even when no other
        // path makes any.
        seed::inbox_conversations(&bench.inbox_db, &bench.account, "list", 0..1_000, |_| None)
            .await
            .expect("seed conversations for the list");
    }
    for &concurrency in &options.concurrency {
        let mut run: Vec<Measured> = Vec::new();
        if wanted("noop") {
            bench.settle().await;
            run.push(bench.noop(concurrency).await);
        }
        if wanted("create") {
            bench.settle().await;
            run.push(bench.create_conversation(concurrency).await);
        }
        if wanted("ticket") {
            bench.settle().await;
            run.push(bench.create_ticket(concurrency).await);
        }
        if wanted("close") {
            bench.settle().await;
            run.push(bench.close_ticket(concurrency).await);
        }
        if wanted("assign") {
            bench.settle().await;
            run.push(bench.assign(concurrency).await);
        }
        if wanted("merge") {
            bench.settle().await;
            run.push(bench.merge(concurrency).await);
        }
        if wanted("context") {
            bench.settle().await;
            run.push(bench.context(concurrency, &sidebar).await);
        }
        if wanted("list") {
            bench.settle().await;
            // The paths before it inserted thousands of rows seconds ago;
            // autovacuum would soon give the planner their statistics.
            seed::analyze(&bench.inbox_db)
                .await
                .expect("analyze the inbox database");
            run.push(bench.list(concurrency).await);
        }
        for measured in &run {
            eprintln!("{}", report::line(measured));
        }
        report.measured.extend(run);
    }
    if wanted("propagation") {
        // Half the close rate the services sustained at the highest
        // concurrency, as the target asks; 20/s when closing was not run.
        let sustained = report
            .measured
            .iter()
            .rev()
            .find(|m| m.path.starts_with("UpdateTicket"))
            .map_or(40.0, |m| m.service.per_second);
        bench.settle().await;
        let propagation = streams::propagation(bench, (sustained / 2.0).max(1.0)).await;
        eprintln!(
            "propagation at {:.0}/s: p99 {:.1} ms",
            propagation.offered_per_second, propagation.all_closed.p99_ms
        );
        report.propagation = Some(propagation);
    }
    // Before the fan-out opens its thousand client-side streams, the load
    // generator holds little: this peak is mostly the two services.
    report.peak_rss_before_fan_out = Some(peak.highest());
    if wanted("fanout") {
        bench.settle().await;
        let fan_out = streams::fan_out(bench, options.subscribers, options.events_per_second).await;
        eprintln!(
            "fan-out to {}: p99 {:.1} ms, {} lost",
            fan_out.subscribers, fan_out.delivery.p99_ms, fan_out.lost
        );
        report.fan_out = Some(fan_out);
    }
}

/// The sidebar and a filtered first page as the account grows: seeded
/// conversations straight into the database, then both paths (and their
/// raw limits) at the highest concurrency.
async fn run_growth(bench: &Bench, options: &Options, report: &mut report::Report) {
    let concurrency = options.concurrency.iter().copied().max().unwrap_or(64);
    let sidebar = bench.sidebar_target(5).await;
    let mut seeded = 0;
    let mut sizes = options.growth.clone();
    sizes.sort_unstable();
    for size in sizes {
        if size > seeded {
            seed::inbox_conversations(&bench.inbox_db, &bench.account, "g", seeded..size, |_| None)
                .await
                .expect("seed conversations");
            seeded = size;
        }
        seed::analyze(&bench.inbox_db)
            .await
            .expect("analyze the inbox database");
        let context = bench.context(concurrency, &sidebar).await;
        let list = bench.list(concurrency).await;
        eprintln!("{}\n{}", report::line(&context), report::line(&list));
        report.growth.push((size, context, list));
    }
}
