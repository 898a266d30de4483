//! Readiness that follows the database. A service whose database cannot be
//! reached answers every call UNAVAILABLE; its readiness turns NOT_SERVING
//! so that Kubernetes stops routing to it, while liveness stays SERVING so
//! that it is not restarted for a fault a restart cannot mend. Both come
//! back by themselves when the database does.

use std::time::Duration;

use sea_orm::DatabaseConnection;

use crate::{server::Health, shutdown::Draining};

/// How often the database is probed.
pub const INTERVAL: Duration = Duration::from_secs(1);
/// How long one probe of the database may take.
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Probes that time out in a row before readiness turns NOT_SERVING: a pool
/// saturated by load is slow, not gone, and load is no reason to stop
/// routing. A probe the database refuses (or cannot be connected for)
/// counts at once.
const SLOW_PROBES: u32 = 3;

/// Probes `db` every [`INTERVAL`] until draining, and reports what it finds
/// to `health` (readiness only). Give it the pool least busy with calls
/// (the stream pool), so that load alone does not look like an outage.
pub async fn follow_database(db: DatabaseConnection, health: Health, mut draining: Draining) {
    let mut reachable = true;
    let mut slow = 0;
    loop {
        let now_reachable = match tokio::time::timeout(PING_TIMEOUT, db.ping()).await {
            Ok(Ok(())) => {
                slow = 0;
                true
            }
            Ok(Err(err)) => {
                if reachable {
                    tracing::warn!(%err, "database unreachable; readiness turns NOT_SERVING");
                }
                false
            }
            Err(_) => {
                slow += 1;
                if slow >= SLOW_PROBES && reachable {
                    tracing::warn!(
                        probes = slow,
                        "database probes time out; readiness turns NOT_SERVING"
                    );
                }
                slow < SLOW_PROBES
            }
        };
        if now_reachable != reachable {
            if now_reachable {
                tracing::info!("database reachable again; readiness turns SERVING");
            }
            health.database_reachable(now_reachable).await;
            reachable = now_reachable;
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = draining.wait() => return,
        }
    }
}
