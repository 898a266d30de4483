//! Closed-loop load (N callers, each calling again as soon as its call
//! returns) and open-loop load (calls started at a fixed rate), with latency
//! percentiles.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

/// What one run of one path measured.
#[derive(Debug, Clone, Default)]
pub struct Figures {
    pub calls: u64,
    pub errors: u64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
}

impl Figures {
    /// Figures of `latencies_us` (any order) over `elapsed`.
    pub fn of(mut latencies_us: Vec<u64>, errors: u64, elapsed: Duration) -> Figures {
        latencies_us.sort_unstable();
        Figures {
            calls: latencies_us.len() as u64,
            errors,
            per_second: latencies_us.len() as f64 / elapsed.as_secs_f64().max(1e-9),
            p50_ms: percentile(&latencies_us, 0.50),
            p99_ms: percentile(&latencies_us, 0.99),
            p999_ms: percentile(&latencies_us, 0.999),
        }
    }
}

fn percentile(sorted_us: &[u64], q: f64) -> f64 {
    if sorted_us.is_empty() {
        return 0.0;
    }
    let index = ((sorted_us.len() as f64 - 1.0) * q).round() as usize;
    sorted_us[index] as f64 / 1_000.0
}

/// The latencies and errors of one or more runs, and how long they ran.
#[derive(Debug, Default)]
pub struct Samples {
    latencies_us: Vec<u64>,
    errors: u64,
    elapsed: Duration,
}

impl Samples {
    pub fn add(&mut self, more: Samples) {
        self.latencies_us.extend(more.latencies_us);
        self.errors += more.errors;
        self.elapsed += more.elapsed;
    }

    pub fn figures(self) -> Figures {
        Figures::of(self.latencies_us, self.errors, self.elapsed)
    }
}

/// Runs `call(worker, n)` from `concurrency` callers for `duration`. A call
/// answers `Some(true)` on success, `Some(false)` on an error, and `None`
/// when the path has run out of prepared data (the caller then stops).
pub async fn closed_loop<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Figures
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<bool>> + Send,
{
    closed_loop_samples(concurrency, duration, call)
        .await
        .figures()
}

/// `closed_loop`, keeping the samples so that runs can be added together.
pub async fn closed_loop_samples<F, Fut>(concurrency: usize, duration: Duration, call: F) -> Samples
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<bool>> + Send,
{
    let call = Arc::new(call);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|worker| {
            let (call, stop, errors) = (call.clone(), stop.clone(), errors.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let begin = Instant::now();
                    match call(worker, n).await {
                        None => break,
                        Some(ok) => {
                            if !ok {
                                errors.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    latencies.push(begin.elapsed().as_micros() as u64);
                    n += 1;
                }
                (latencies, Instant::now())
            })
        })
        .collect();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = Vec::new();
    let mut last_end = started;
    for task in tasks {
        if let Ok((latencies, ended)) = task.await {
            all.extend(latencies);
            last_end = last_end.max(ended);
        }
    }
    // Callers that ran out of data end early: the rate is over the time
    // they actually ran.
    let elapsed = last_end.min(started + duration).duration_since(started);
    Samples {
        latencies_us: all,
        errors: errors.load(Ordering::Relaxed),
        elapsed,
    }
}

/// Starts `call(n)` at `per_second` for `duration` without waiting for
/// earlier calls (so a slow call does not slow the offered load), and waits
/// for all of them at the end.
pub async fn open_loop<F, Fut>(per_second: f64, duration: Duration, call: F) -> Figures
where
    F: Fn(u64) -> Fut,
    Fut: Future<Output = Option<bool>> + Send + 'static,
{
    let interval = Duration::from_secs_f64(1.0 / per_second.max(0.1));
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut calls = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while started.elapsed() < duration {
        ticker.tick().await;
        let future = call(n);
        calls.spawn(async move {
            let begin = Instant::now();
            future
                .await
                .map(|ok| (ok, begin.elapsed().as_micros() as u64))
        });
        n += 1;
    }
    let elapsed = started.elapsed();
    let (mut latencies, mut errors) = (Vec::new(), 0);
    while let Some(done) = calls.join_next().await {
        match done {
            Ok(Some((ok, latency))) => {
                latencies.push(latency);
                errors += u64::from(!ok);
            }
            Ok(None) => {}
            Err(_) => errors += 1,
        }
    }
    Figures::of(latencies, errors, elapsed)
}

/// A shared supply of prepared items (conversations, tickets) that callers
/// take one at a time; `None` once it is used up.
pub struct Supply<T> {
    items: Vec<T>,
    next: AtomicU64,
}

impl<T> Supply<T> {
    pub fn new(items: Vec<T>) -> Arc<Supply<T>> {
        Arc::new(Supply {
            items,
            next: AtomicU64::new(0),
        })
    }

    pub fn take(&self) -> Option<&T> {
        let index = self.next.fetch_add(1, Ordering::Relaxed) as usize;
        self.items.get(index)
    }
}
