//! The load benchmark: both services on a fresh database (PostgreSQL when
//! TEST_DATABASE_URL names a server, SQLite files otherwise), N concurrent
//! callers over several HTTP/2 connections per path for a fixed time, each
//! path beside its raw limit measured in the same run — a no-op gRPC call
//! for the transport, and the path's SQL transactions issued directly for
//! the database. Figures go to stdout, and with --json and --svg to files.
//!
//! `cargo run --release -p e2e --bin bench -- --help` lists the options.
//! Logs go to stderr at WARN unless `RUST_LOG` says otherwise, so that the
//! table on stdout stands alone.

mod hot;
mod load;
mod memory;
mod merging;
mod paths;
mod plot;
mod raw;
mod report;
mod seed;
mod services;
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
    in_process: bool,
}

const PATHS: [&str; 11] = [
    "noop",
    "create",
    "ticket",
    "close",
    "assign",
    "merge",
    "context",
    "list",
    "hot",
    "propagation",
    "fanout",
];

/// Both services on a fresh database (PostgreSQL when TEST_DATABASE_URL
/// names a server, SQLite files otherwise), each path measured beside its
/// raw limits. Figures go to stdout, and with --json and --svg to files.
#[derive(clap::Parser)]
#[command(name = "bench")]
struct Cli {
    /// Seconds per path and concurrency [default: 10; smoke: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    seconds: Option<u64>,
    /// Concurrent callers, e.g. 1,4,16,64 [default: 64; smoke: 4]
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = positive)]
    concurrency: Vec<usize>,
    /// HTTP/2 connections per service
    #[arg(long, value_name = "N", default_value = "4", value_parser = positive)]
    connections: usize,
    /// Paths to run [default: all]
    #[arg(long, value_name = "LIST", value_delimiter = ',',
          value_parser = clap::builder::PossibleValuesParser::new(PATHS))]
    paths: Vec<String>,
    /// Fan-out subscribers [default: 1000; smoke: 20]
    #[arg(long, value_name = "N", value_parser = positive)]
    subscribers: Option<usize>,
    /// Fan-out changes per second [default: 100; smoke: 20]
    #[arg(long, value_name = "N", value_parser = per_second)]
    events: Option<f64>,
    /// Instead of the paths: the sidebar and the list at these conversation
    /// counts, e.g. 10000,1_000_000
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = count)]
    growth: Vec<u64>,
    /// Alternate service and raw runs in N slices [default: 5; smoke: 1]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    slices: Option<u32>,
    /// Also write the figures as JSON to this file
    #[arg(long, value_name = "FILE")]
    json: Option<String>,
    /// Also plot throughput and p99 against concurrency to this SVG file
    #[arg(long, value_name = "FILE")]
    svg: Option<String>,
    /// The few-second run CI does
    #[arg(long)]
    smoke: bool,
    /// Run both services inside the bench's process (the test harness's
    /// stack) instead of as the `ticketing` and `inbox` binaries beside it
    #[arg(long)]
    in_process: bool,
}

fn positive(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".into()),
    }
}

fn per_second(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n > 0.0 => Ok(n),
        _ => Err("expected a rate above 0".into()),
    }
}

/// A conversation count, `_` allowed as a separator, rounded up to whole
/// contacts.
fn count(text: &str) -> Result<u64, String> {
    let n: u64 = text
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|_| "expected a whole number, e.g. 10000 or 1_000_000".to_owned())?;
    Ok(n.div_ceil(seed::CONVERSATIONS_PER_CONTACT) * seed::CONVERSATIONS_PER_CONTACT)
}

fn options() -> Options {
    let cli = <Cli as clap::Parser>::parse();
    let smoke = cli.smoke;
    Options {
        seconds: cli.seconds.unwrap_or(if smoke { 1 } else { 10 }),
        concurrency: if cli.concurrency.is_empty() {
            vec![if smoke { 4 } else { 64 }]
        } else {
            cli.concurrency
        },
        connections: cli.connections,
        paths: if cli.paths.is_empty() {
            PATHS.iter().map(|p| (*p).to_owned()).collect()
        } else {
            cli.paths
        },
        subscribers: cli.subscribers.unwrap_or(if smoke { 20 } else { 1000 }),
        events_per_second: cli.events.unwrap_or(if smoke { 20.0 } else { 100.0 }),
        growth: cli.growth,
        slices: cli.slices.unwrap_or(if smoke { 1 } else { 5 }),
        json: cli.json,
        svg: cli.svg,
        in_process: cli.in_process,
    }
}

/// Logs on stderr, at WARN unless `RUST_LOG` says otherwise: the services'
/// INFO lines would bury the table. Installed before the services start, so
/// the harness's own subscriber (for tests) is not.
fn init_logs() -> Result<(), String> {
    let filter = kit::telemetry::log_filter(&kit::config::Environment, "warn")
        .map_err(|err| err.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init()
        .map_err(|err| err.to_string())
}

#[tokio::main]
async fn main() {
    let options = options();
    if let Err(err) = init_logs() {
        eprintln!("bench: {err}");
        std::process::exit(2);
    }
    let peak = memory::Peak::start();
    let bench = match Bench::start(
        options.connections,
        Duration::from_secs(options.seconds),
        2_000,
        options.slices,
        options.in_process,
    )
    .await
    {
        Ok(bench) => bench,
        Err(err) => {
            eprintln!("bench: {err}");
            std::process::exit(2);
        }
    };
    let backend = if std::env::var("TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        "postgresql"
    } else {
        "sqlite"
    };
    eprintln!(
        "bench: {backend}, callers {:?} over {} connections per service, {} s per run, services {}",
        options.concurrency,
        options.connections,
        options.seconds,
        if options.in_process {
            "in the bench's process"
        } else {
            "as processes of their own"
        }
    );
    let mut report = report::Report::new(backend, &options);
    if options.growth.is_empty() {
        run_paths(&bench, &options, &mut report, &peak).await;
    } else {
        run_growth(&bench, &options, &mut report).await;
    }
    report.peak_rss = Some(peak.highest());
    report.services = bench.services.usage();
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
        let usage_before = bench.services.usage();
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
        if wanted("hot") {
            bench.settle().await;
            run.extend(hot::hot_account(bench, concurrency).await);
        }
        for measured in &run {
            eprintln!("{}", report::line(measured));
        }
        if let (Some(before), Some(after)) = (&usage_before, bench.services.usage()) {
            eprintln!(
                "  CPU of these {} paths: ticketing {:.1} s, inbox {:.1} s",
                run.len(),
                after.0.cpu_seconds - before.0.cpu_seconds,
                after.1.cpu_seconds - before.1.cpu_seconds
            );
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
    report.services_before_fan_out = bench.services.usage();
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
