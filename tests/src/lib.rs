//! The test harness: both real services on `127.0.0.1:0`, each on a fresh
//! database of its own — SQLite files in a temporary folder by default, or
//! uniquely named PostgreSQL databases when `TEST_DATABASE_URL` names a
//! server (`postgres://user@host:port/db`), dropped afterwards.

pub mod call;
pub mod db;
pub mod fixtures;
pub mod merging;
pub mod raw;

use std::{net::SocketAddr, time::Duration};

use kit::shutdown::Shutdown;
use proto::{
    inbox::v1::inbox_service_client::InboxServiceClient,
    ticketing::v1::ticketing_service_client::TicketingServiceClient,
};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::transport::Channel;

pub use call::{as_service, as_service_for, as_user};
pub use db::TestDb;
pub use fixtures::*;

/// One running service.
struct Running {
    shutdown: Shutdown,
    task: JoinHandle<()>,
}

impl Running {
    async fn stop(self) {
        self.shutdown.trigger();
        let _ = tokio::time::timeout(Duration::from_secs(30), self.task).await;
    }
}

/// Both services, started and stopped by a test.
pub struct Stack {
    pub ticketing_addr: SocketAddr,
    pub inbox_addr: SocketAddr,
    ticketing_db: TestDb,
    inbox_db: TestDb,
    ticketing: Option<Running>,
    /// Ticketing's port until its first start.
    reserved: Option<TcpListener>,
    inbox: Option<Running>,
    replicas: Vec<Running>,
    tune_ticketing: fn(&mut ticketing::Config),
}

fn keep<T>(_: &mut T) {}

impl Stack {
    /// Both services, ticketing first.
    pub async fn start() -> Stack {
        Self::start_with(keep, keep).await
    }

    /// Both services with settings changed from the test defaults.
    pub async fn start_with(
        tune_ticketing: fn(&mut ticketing::Config),
        tune_inbox: fn(&mut inbox::Config),
    ) -> Stack {
        let mut stack = Self::start_inbox_with(tune_inbox).await;
        stack.tune_ticketing = tune_ticketing;
        stack.start_ticketing().await;
        stack
    }

    /// The inbox alone, pointed at the address ticketing will have when
    /// [`Stack::start_ticketing`] starts it.
    pub async fn start_inbox_only() -> Stack {
        let mut stack = Self::start_inbox_with(keep).await;
        // Nothing may even accept connections there until ticketing starts.
        stack.reserved = None;
        stack
    }

    async fn start_inbox_with(tune: fn(&mut inbox::Config)) -> Stack {
        init_logs();
        let ticketing_db = TestDb::create("ticketing").await;
        let inbox_db = TestDb::create("inbox").await;
        // Reserve ticketing's port now, outside the ephemeral range so that no
        // other test's `:0` bind takes it while it is free.
        let reserved = reserve_port().await;
        let ticketing_addr = reserved.local_addr().expect("ticketing address");
        let (inbox_addr, inbox) = spawn_inbox(inbox_db.url(), ticketing_addr, tune).await;
        let stack = Stack {
            ticketing_addr,
            inbox_addr,
            ticketing_db,
            inbox_db,
            ticketing: None,
            reserved: Some(reserved),
            inbox: Some(inbox),
            replicas: Vec::new(),
            tune_ticketing: keep,
        };
        wait_serving(inbox_addr).await;
        stack
    }

    /// Another inbox process on the same database (a replica); returns its
    /// address.
    pub async fn start_inbox_replica(&mut self, tune: fn(&mut inbox::Config)) -> SocketAddr {
        let (addr, running) = spawn_inbox(self.inbox_db.url(), self.ticketing_addr, tune).await;
        self.replicas.push(running);
        wait_serving(addr).await;
        addr
    }

    /// Kills the first inbox without a drain, as a crash would: it releases
    /// nothing and finishes nothing.
    pub async fn crash_inbox(&mut self) {
        if let Some(running) = self.inbox.take() {
            running.task.abort();
            let _ = running.task.await;
        }
    }

    /// The inbox's database, for tests that run inbox processes on it.
    pub fn inbox_database_url(&self) -> &str {
        self.inbox_db.url()
    }

    /// Ticketing's database, for tests that write to it directly.
    pub fn ticketing_database_url(&self) -> &str {
        self.ticketing_db.url()
    }

    /// Starts (or restarts) ticketing on its reserved address.
    pub async fn start_ticketing(&mut self) {
        assert!(self.ticketing.is_none(), "ticketing is already running");
        let listener = match self.reserved.take() {
            Some(listener) => listener,
            None => bind_retrying(self.ticketing_addr).await,
        };
        let mut config = ticketing::Config::for_database(self.ticketing_db.url());
        config.stream.poll_interval = Duration::from_millis(200);
        config.stream.progress_interval = Duration::from_millis(500);
        config.limits.drain_grace = Duration::from_secs(5);
        (self.tune_ticketing)(&mut config);
        let shutdown = Shutdown::new();
        let draining = shutdown.draining();
        let task = tokio::spawn(async move {
            if let Err(err) = ticketing::run(config, listener, draining).await {
                panic!("ticketing failed: {err}");
            }
        });
        self.ticketing = Some(Running { shutdown, task });
        wait_serving(self.ticketing_addr).await;
    }

    /// Gives the stopped ticketing a new, empty database (its old one is
    /// dropped), as a reset of the local data that missed the inbox's.
    pub async fn replace_ticketing_database(&mut self) {
        assert!(self.ticketing.is_none(), "stop ticketing first");
        let mut old = std::mem::replace(&mut self.ticketing_db, TestDb::create("ticketing").await);
        old.drop_database().await;
    }

    /// A backup of the stopped ticketing's database, as it is now.
    pub async fn backup_ticketing_database(&self) -> TestDb {
        assert!(self.ticketing.is_none(), "stop ticketing first");
        self.ticketing_db.copy("ticketing").await
    }

    /// Gives the stopped ticketing its database back as `backup` had it: a
    /// restore from an older backup (its current one is dropped).
    pub async fn restore_ticketing_database(&mut self, backup: &TestDb) {
        assert!(self.ticketing.is_none(), "stop ticketing first");
        let restored = backup.copy("ticketing").await;
        let mut old = std::mem::replace(&mut self.ticketing_db, restored);
        old.drop_database().await;
    }

    /// Drains and stops ticketing, as SIGTERM would.
    pub async fn stop_ticketing(&mut self) {
        if let Some(running) = self.ticketing.take() {
            running.stop().await;
        }
    }

    /// Starts draining ticketing without waiting for it to finish.
    pub fn begin_ticketing_drain(&self) {
        if let Some(running) = &self.ticketing {
            running.shutdown.trigger();
        }
    }

    pub async fn ticketing(&self) -> TicketingServiceClient<Channel> {
        TicketingServiceClient::new(channel(self.ticketing_addr).await)
    }

    pub async fn inbox(&self) -> InboxServiceClient<Channel> {
        InboxServiceClient::new(channel(self.inbox_addr).await)
    }

    /// Stops both services and drops their databases.
    pub async fn stop(mut self) {
        if let Some(running) = self.inbox.take() {
            running.stop().await;
        }
        for replica in std::mem::take(&mut self.replicas) {
            replica.stop().await;
        }
        self.stop_ticketing().await;
        self.inbox_db.drop_database().await;
        self.ticketing_db.drop_database().await;
    }
}

/// Service logs in the test's captured output (shown when it fails);
/// `RUST_LOG` filters.
fn init_logs() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,h2=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .try_init();
}

async fn spawn_inbox(
    database_url: &str,
    ticketing_addr: SocketAddr,
    tune: fn(&mut inbox::Config),
) -> (SocketAddr, Running) {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind inbox port");
    let addr = listener.local_addr().expect("inbox address");
    let mut config = inbox::Config::for_database(database_url, &format!("http://{ticketing_addr}"));
    config.max_reconnect_backoff = Duration::from_millis(300);
    config.stream.poll_interval = Duration::from_millis(200);
    config.stream.progress_interval = Duration::from_millis(500);
    config.limits.drain_grace = Duration::from_secs(5);
    tune(&mut config);
    let shutdown = Shutdown::new();
    let draining = shutdown.draining();
    let task = tokio::spawn(async move {
        if let Err(err) = inbox::run(config, listener, draining).await {
            panic!("inbox failed: {err}");
        }
    });
    (addr, Running { shutdown, task })
}

pub async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect()
        .await
        .expect("connect")
}

/// A port below the kernel's ephemeral range (32768 and up here), so that
/// no `127.0.0.1:0` bind of a concurrent test can take it while ticketing is
/// stopped and restarted on it.
async fn reserve_port() -> TcpListener {
    for _ in 0..200 {
        let random = uuid::Uuid::now_v7().as_u128() as u16;
        let port = 20_000 + random % 12_000;
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
    }
    panic!("no free port to reserve for ticketing");
}

async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    for _ in 0..50 {
        if let Ok(listener) = TcpListener::bind(addr).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot bind {addr}");
}

/// Waits until the server's health service answers SERVING.
pub async fn wait_serving(addr: SocketAddr) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    for _ in 0..200 {
        if let Ok(channel) = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
        {
            let answer = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await;
            if answer.is_ok_and(|r| r.get_ref().status == ServingStatus::Serving as i32) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{addr} never became SERVING");
}

/// Polls `check` until it returns `Some`, for effects that arrive through
/// the event stream.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
