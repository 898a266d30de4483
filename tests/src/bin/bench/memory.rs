//! Resident memory of this process (both services and the load generator
//! share it, so each figure is an upper bound for either service alone).

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

/// Resident set size in bytes (Linux); `None` elsewhere.
pub fn rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The resident size once freshly started work has settled.
pub async fn settled_rss() -> Option<u64> {
    tokio::time::sleep(Duration::from_millis(500)).await;
    rss()
}

/// The highest resident size seen since [`Peak::start`], sampled every
/// 50 ms.
pub struct Peak {
    highest: Arc<AtomicU64>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Peak {
    pub fn start() -> Peak {
        let highest = Arc::new(AtomicU64::new(rss().unwrap_or(0)));
        let sampler = {
            let highest = highest.clone();
            tokio::spawn(async move {
                loop {
                    if let Some(now) = rss() {
                        highest.fetch_max(now, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        Peak { highest, sampler }
    }

    pub fn highest(&self) -> u64 {
        self.highest.load(Ordering::Relaxed)
    }
}

impl Drop for Peak {
    fn drop(&mut self) {
        self.sampler.abort();
    }
}
