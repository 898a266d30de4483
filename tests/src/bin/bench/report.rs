//! The run's figures: a table on stdout, a JSON document, and what failed.

use crate::{
    Options,
    load::Figures,
    paths::Measured,
    services::Usage,
    streams::{FanOut, Propagation},
};

/// The share of its raw limit a path is meant to reach (issue targets, on
/// PostgreSQL at 64 callers).
fn target(path: &str) -> Option<f64> {
    match path {
        "CreateConversation" | "CreateTicketForConversation" => Some(0.60),
        p if p.starts_with("UpdateTicket") => Some(0.55),
        "GetConversationContext" => Some(0.50),
        _ => None,
    }
}

const LATENCY_TARGET_MS: f64 = 100.0;
const MEMORY_TARGET: u64 = 150 * 1024 * 1024;
const IDLE_STREAM_TARGET: f64 = 64.0 * 1024.0;

pub struct Report {
    pub backend: &'static str,
    pub seconds: u64,
    pub connections: usize,
    pub measured: Vec<Measured>,
    pub propagation: Option<Propagation>,
    pub fan_out: Option<FanOut>,
    pub growth: Vec<(u64, Measured, Measured)>,
    pub peak_rss: Option<u64>,
    pub peak_rss_before_fan_out: Option<u64>,
    /// Each service's own (ticketing, inbox), when they ran as processes.
    pub services: Option<(Usage, Usage)>,
    pub services_before_fan_out: Option<(Usage, Usage)>,
}

/// One measured path, as a progress line.
pub fn line(m: &Measured) -> String {
    format!(
        "{:<44} {:>4} callers {:>8.0}/s p99 {:>7.2} ms{}",
        m.path,
        m.concurrency,
        m.service.per_second,
        m.service.p99_ms,
        m.raw.as_ref().map_or(String::new(), |raw| format!(
            "  raw {:>8.0}/s p99 {:>7.2} ms  ratio {:>5.1}%",
            raw.per_second,
            raw.p99_ms,
            100.0 * m.ratio().unwrap_or(0.0)
        ))
    )
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// A service's peak resident memory against the target, and its CPU time.
fn usage_line(name: &str, usage: &Usage) -> String {
    format!(
        "{name} peak resident {:.1} MiB (< 150 MiB {}), CPU {:.1} s",
        mib(usage.peak_rss),
        verdict(usage.peak_rss < MEMORY_TARGET),
        usage.cpu_seconds
    )
}

fn figures_json(f: &Figures) -> String {
    format!(
        "{{\"calls\":{},\"errors\":{},\"per_second\":{:.1},\"p50_ms\":{:.3},\"p99_ms\":{:.3},\"p999_ms\":{:.3}}}",
        f.calls, f.errors, f.per_second, f.p50_ms, f.p99_ms, f.p999_ms
    )
}

fn measured_json(m: &Measured) -> String {
    format!(
        "{{\"path\":{:?},\"concurrency\":{},\"service\":{},\"raw\":{},\"ratio\":{}}}",
        m.path,
        m.concurrency,
        figures_json(&m.service),
        m.raw.as_ref().map_or("null".into(), figures_json),
        m.ratio().map_or("null".into(), |r| format!("{r:.4}"))
    )
}

impl Report {
    pub fn new(backend: &'static str, options: &Options) -> Report {
        Report {
            backend,
            seconds: options.seconds,
            connections: options.connections,
            measured: Vec::new(),
            propagation: None,
            fan_out: None,
            growth: Vec::new(),
            peak_rss: None,
            peak_rss_before_fan_out: None,
            services: None,
            services_before_fan_out: None,
        }
    }

    pub fn print(&self) {
        println!(
            "\n{}, {} s per run, {} HTTP/2 connections per service\n",
            self.backend, self.seconds, self.connections
        );
        if !self.measured.is_empty() {
            println!(
                "{:<44} {:>7} {:>9} {:>8} {:>8} {:>8} {:>6} {:>9} {:>8} {:>7} {:>12}",
                "path",
                "callers",
                "calls/s",
                "p50 ms",
                "p99 ms",
                "p999 ms",
                "errors",
                "raw /s",
                "raw p99",
                "ratio",
                "target"
            );
            for m in &self.measured {
                let raw = m.raw.clone().unwrap_or_default();
                let ratio = m.ratio();
                let goal = match (target(&m.path), ratio) {
                    (Some(goal), Some(ratio)) => {
                        format!("≥{:.0}% {}", goal * 100.0, verdict(ratio >= goal))
                    }
                    _ => String::new(),
                };
                println!(
                    "{:<44} {:>7} {:>9.0} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>9.0} {:>8.2} {:>7} {:>12}",
                    m.path,
                    m.concurrency,
                    m.service.per_second,
                    m.service.p50_ms,
                    m.service.p99_ms,
                    m.service.p999_ms,
                    m.service.errors,
                    raw.per_second,
                    raw.p99_ms,
                    ratio.map_or("-".into(), |r| format!("{:.1}%", r * 100.0)),
                    goal
                );
            }
        }
        if let Some(p) = &self.propagation {
            println!(
                "\nclose → 3 conversations closed in the inbox, at {:.0} closes/s (half the sustained rate): \
                 p50 {:.1} ms, p99 {:.1} ms, p999 {:.1} ms over {} tickets, {} never closed; \
                 close calls p99 {:.1} ms — p99 < {LATENCY_TARGET_MS} ms {}",
                p.offered_per_second,
                p.all_closed.p50_ms,
                p.all_closed.p99_ms,
                p.all_closed.p999_ms,
                p.all_closed.calls,
                p.never_closed,
                p.close_calls.p99_ms,
                verdict(p.all_closed.p99_ms < LATENCY_TARGET_MS && p.never_closed == 0)
            );
        }
        if let Some(f) = &self.fan_out {
            println!(
                "\nfan-out: {} subscribers × {:.0} changes/s, {} changes, {} deliveries: \
                 p50 {:.1} ms, p99 {:.1} ms, p999 {:.1} ms, {} lost; the AddMessage calls that made \
                 them p50 {:.1} ms, p99 {:.1} ms — p99 < {LATENCY_TARGET_MS} ms and none lost {}",
                f.subscribers,
                f.events_per_second,
                f.events_sent,
                f.delivery.calls,
                f.delivery.p50_ms,
                f.delivery.p99_ms,
                f.delivery.p999_ms,
                f.lost,
                f.change_calls.p50_ms,
                f.change_calls.p99_ms,
                verdict(f.delivery.p99_ms < LATENCY_TARGET_MS && f.lost == 0)
            );
            if let Some(bytes) = f.idle_stream_bytes {
                println!(
                    "idle WatchConversations stream: {:.1} KiB each ({}) — < 64 KiB {}",
                    bytes / 1024.0,
                    if self.services.is_some() {
                        "the inbox's side"
                    } else {
                        "client and server side together"
                    },
                    verdict(bytes < IDLE_STREAM_TARGET)
                );
            }
        }
        if !self.growth.is_empty() {
            println!(
                "\n{:>12} {:<44} {:>9} {:>8} {:>9} {:>8}",
                "conversations", "path", "calls/s", "p99 ms", "raw /s", "raw p99"
            );
            for (size, context, list) in &self.growth {
                for m in [context, list] {
                    let raw = m.raw.clone().unwrap_or_default();
                    println!(
                        "{:>12} {:<44} {:>9.0} {:>8.2} {:>9.0} {:>8.2}",
                        size,
                        m.path,
                        m.service.per_second,
                        m.service.p99_ms,
                        raw.per_second,
                        raw.p99_ms
                    );
                }
            }
            if let (Some(first), Some(last)) = (self.growth.first(), self.growth.last()) {
                for (a, b) in [(&first.1, &last.1), (&first.2, &last.2)] {
                    let change = (b.service.p99_ms - a.service.p99_ms) / a.service.p99_ms.max(1e-9);
                    println!(
                        "{}: p99 {:+.1}% from {} to {} conversations — within ±20% {}",
                        a.path,
                        change * 100.0,
                        first.0,
                        last.0,
                        verdict(change.abs() < 0.20)
                    );
                }
            }
        }
        match (&self.services_before_fan_out, &self.services) {
            (before, Some(at_end)) => {
                if let Some((ticketing, inbox)) = before {
                    println!(
                        "\nthrough the paths and propagation: {}; {}",
                        usage_line("ticketing", ticketing),
                        usage_line("inbox", inbox)
                    );
                }
                let (ticketing, inbox) = at_end;
                println!(
                    "whole run (fan-out's subscriptions held by the inbox): {}; {}",
                    usage_line("ticketing", ticketing),
                    usage_line("inbox", inbox)
                );
            }
            (_, None) => self.print_shared_memory(),
        }
    }

    /// In process, one resident figure covers both services and the load
    /// generator: an upper bound for either service.
    fn print_shared_memory(&self) {
        if let Some(rss) = self.peak_rss_before_fan_out {
            println!(
                "\npeak resident memory of the whole process through the paths and propagation \
                 (both services, 64 callers' clients): {:.1} MiB — each service < 150 MiB {}",
                mib(rss),
                if rss < MEMORY_TARGET {
                    "met"
                } else {
                    "not shown by this figure"
                }
            );
        }
        if let Some(rss) = self.peak_rss {
            println!(
                "\npeak resident memory of the whole process (both services, the load generator, its \
                 clients and subscribers): {:.1} MiB — each service < 150 MiB {}",
                mib(rss),
                if rss < MEMORY_TARGET {
                    "met"
                } else {
                    "not shown by this figure"
                }
            );
        }
    }

    pub fn json(&self) -> String {
        let measured: Vec<String> = self.measured.iter().map(measured_json).collect();
        let propagation = self.propagation.as_ref().map_or("null".into(), |p| {
            format!(
                "{{\"offered_per_second\":{:.1},\"close_calls\":{},\"all_closed\":{},\"never_closed\":{}}}",
                p.offered_per_second,
                figures_json(&p.close_calls),
                figures_json(&p.all_closed),
                p.never_closed
            )
        });
        let fan_out = self.fan_out.as_ref().map_or("null".into(), |f| {
            format!(
                "{{\"subscribers\":{},\"events_per_second\":{:.1},\"events_sent\":{},\"change_calls\":{},\"delivery\":{},\"lost\":{},\"idle_stream_bytes\":{}}}",
                f.subscribers,
                f.events_per_second,
                f.events_sent,
                figures_json(&f.change_calls),
                figures_json(&f.delivery),
                f.lost,
                f.idle_stream_bytes.map_or("null".into(), |b| format!("{b:.0}"))
            )
        });
        let growth: Vec<String> = self
            .growth
            .iter()
            .map(|(size, context, list)| {
                format!(
                    "{{\"conversations\":{size},\"context\":{},\"list\":{}}}",
                    measured_json(context),
                    measured_json(list)
                )
            })
            .collect();
        format!(
            "{{\"backend\":\"{}\",\"seconds\":{},\"connections\":{},\"paths\":[{}],\"propagation\":{},\"fan_out\":{},\"growth\":[{}],\"peak_rss_bytes\":{},\"peak_rss_before_fan_out_bytes\":{},\"services\":{}}}\n",
            self.backend,
            self.seconds,
            self.connections,
            measured.join(","),
            propagation,
            fan_out,
            growth.join(","),
            self.peak_rss.map_or("null".into(), |b| b.to_string()),
            self.peak_rss_before_fan_out
                .map_or("null".into(), |b| b.to_string()),
            self.services_json()
        )
    }

    fn services_json(&self) -> String {
        let one = |u: &Usage| {
            format!(
                "{{\"peak_rss_bytes\":{},\"cpu_seconds\":{:.2}}}",
                u.peak_rss, u.cpu_seconds
            )
        };
        self.services.as_ref().map_or("null".into(), |(t, i)| {
            format!("{{\"ticketing\":{},\"inbox\":{}}}", one(t), one(i))
        })
    }

    /// What makes the run fail (not missed targets: errors and silence).
    pub fn failures(&self) -> Vec<String> {
        let mut failures = Vec::new();
        let all = self
            .measured
            .iter()
            .chain(self.growth.iter().flat_map(|(_, a, b)| [a, b]));
        for m in all {
            for (side, f) in [("service", Some(&m.service)), ("raw", m.raw.as_ref())] {
                if let Some(f) = f
                    && (f.calls == 0 || f.errors > 0)
                {
                    failures.push(format!(
                        "{} ({side}, {} callers): {} calls, {} errors",
                        m.path, m.concurrency, f.calls, f.errors
                    ));
                }
            }
        }
        if let Some(p) = &self.propagation
            && (p.close_calls.errors > 0 || p.all_closed.calls == 0)
        {
            failures.push(format!(
                "propagation: {} close errors, {} tickets seen closed",
                p.close_calls.errors, p.all_closed.calls
            ));
        }
        if let Some(f) = &self.fan_out
            && f.delivery.calls == 0
        {
            failures.push("fan-out: nothing delivered".into());
        }
        failures
    }
}
