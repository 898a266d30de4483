//! The two services under load: by default the real `ticketing` and `inbox`
//! binaries as processes of their own, started as a deployment starts them
//! (environment only, default settings), so that each one's CPU time and
//! resident memory are its own; or, with `--in-process`, the test harness's
//! stack on a runtime of the bench's process.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use e2e::{Stack, TestDb, wait_serving};

pub enum Services {
    InProcess {
        stack: Stack,
        /// The services' own runtime: on one runtime with the load
        /// generator, each of their database replies would queue behind the
        /// generator's tasks (a thousand fan-out receivers), and the figures
        /// would time the generator's scheduling instead of the services.
        runtime: tokio::runtime::Runtime,
    },
    Processes(Processes),
}

pub struct Processes {
    ticketing: Child,
    inbox: Child,
    ticketing_addr: SocketAddr,
    inbox_addr: SocketAddr,
    ticketing_db: TestDb,
    inbox_db: TestDb,
}

/// Resident memory and CPU time of one service process, from /proc.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// The kernel's high-water mark of the resident set (VmHWM).
    pub peak_rss: u64,
    pub rss: u64,
    /// User plus system time since the process started.
    pub cpu_seconds: f64,
}

impl Services {
    pub async fn start(in_process: bool) -> Result<Services, String> {
        if in_process {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .thread_name("services")
                .enable_all()
                .build()
                .map_err(|err| format!("the services' runtime: {err}"))?;
            let stack = runtime
                .spawn(Stack::start())
                .await
                .map_err(|err| format!("start the services: {err}"))?;
            return Ok(Services::InProcess { stack, runtime });
        }
        Processes::start().await.map(Services::Processes)
    }

    pub fn ticketing_addr(&self) -> SocketAddr {
        match self {
            Services::InProcess { stack, .. } => stack.ticketing_addr,
            Services::Processes(p) => p.ticketing_addr,
        }
    }

    pub fn inbox_addr(&self) -> SocketAddr {
        match self {
            Services::InProcess { stack, .. } => stack.inbox_addr,
            Services::Processes(p) => p.inbox_addr,
        }
    }

    pub fn ticketing_database_url(&self) -> &str {
        match self {
            Services::InProcess { stack, .. } => stack.ticketing_database_url(),
            Services::Processes(p) => p.ticketing_db.url(),
        }
    }

    pub fn inbox_database_url(&self) -> &str {
        match self {
            Services::InProcess { stack, .. } => stack.inbox_database_url(),
            Services::Processes(p) => p.inbox_db.url(),
        }
    }

    /// Each service's own usage (ticketing, inbox); `None` in process, where
    /// they share the bench's.
    pub fn usage(&self) -> Option<(Usage, Usage)> {
        match self {
            Services::InProcess { .. } => None,
            Services::Processes(p) => Some((usage(p.ticketing.id())?, usage(p.inbox.id())?)),
        }
    }

    pub async fn stop(self) {
        match self {
            Services::InProcess { stack, runtime } => {
                let _ = runtime.spawn(stack.stop()).await;
                runtime.shutdown_background();
            }
            Services::Processes(p) => p.stop().await,
        }
    }
}

impl Processes {
    async fn start() -> Result<Processes, String> {
        let dir = std::env::current_exe()
            .map_err(|err| format!("where the bench runs from: {err}"))?
            .parent()
            .map(Path::to_path_buf)
            .ok_or("the bench binary has no folder")?;
        let binary = |name: &str| -> Result<PathBuf, String> {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(format!(
                    "{} is missing: build the services with the bench's profile first \
                     (e.g. cargo build --release -p ticketing -p inbox), or pass --in-process",
                    path.display()
                ))
            }
        };
        let (ticketing_bin, inbox_bin) = (binary("ticketing")?, binary("inbox")?);
        let ticketing_db = TestDb::create("ticketing").await;
        let inbox_db = TestDb::create("inbox").await;
        let ticketing_addr = free_address()?;
        let ticketing = spawn(
            &ticketing_bin,
            &[
                ("TICKETING_LISTEN", ticketing_addr.to_string()),
                ("TICKETING_DATABASE_URL", ticketing_db.url().to_owned()),
            ],
        )?;
        let inbox_addr = free_address()?;
        let inbox = spawn(
            &inbox_bin,
            &[
                ("INBOX_LISTEN", inbox_addr.to_string()),
                ("INBOX_DATABASE_URL", inbox_db.url().to_owned()),
                ("INBOX_TICKETING_URL", format!("http://{ticketing_addr}")),
            ],
        )?;
        let mut processes = Processes {
            ticketing,
            inbox,
            ticketing_addr,
            inbox_addr,
            ticketing_db,
            inbox_db,
        };
        let started = tokio::time::timeout(Duration::from_secs(60), async {
            wait_serving(ticketing_addr).await;
            wait_serving(inbox_addr).await;
        })
        .await;
        if started.is_err() {
            let exited = [
                ("ticketing", &mut processes.ticketing),
                ("inbox", &mut processes.inbox),
            ]
            .into_iter()
            .filter_map(|(name, child)| {
                child
                    .try_wait()
                    .ok()
                    .flatten()
                    .map(|s| format!("{name} {s}"))
            })
            .collect::<Vec<_>>();
            processes.stop().await;
            return Err(format!(
                "the services did not serve within 60 s (exited: {exited:?}; their logs are above)"
            ));
        }
        Ok(processes)
    }

    /// SIGTERM, as Kubernetes stops a pod, then the databases go.
    async fn stop(mut self) {
        for child in [&mut self.ticketing, &mut self.inbox] {
            terminate(child);
        }
        for child in [&mut self.inbox, &mut self.ticketing] {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while matches!(child.try_wait(), Ok(None)) && std::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.ticketing_db.drop_database().await;
        self.inbox_db.drop_database().await;
    }
}

impl Drop for Processes {
    /// A bench that panics must not leave services running.
    fn drop(&mut self) {
        let _ = self.ticketing.kill();
        let _ = self.inbox.kill();
    }
}

/// A loopback port free now. Another program could take it before the
/// service binds it; the service would then fail to start and say so.
fn free_address() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|err| format!("no free loopback port: {err}"))
}

/// The service with only the settings given, development-mode callers (the
/// bench names its account in metadata) and its logs at WARN on stderr.
fn spawn(binary: &Path, settings: &[(&str, String)]) -> Result<Child, String> {
    let mut command = Command::new(binary);
    command
        .arg("serve")
        .env_clear()
        .env("AUTH_MODE", "development")
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::null());
    for (key, value) in settings {
        command.env(key, value);
    }
    command
        .spawn()
        .map_err(|err| format!("cannot start {}: {err}", binary.display()))
}

fn terminate(child: &Child) {
    // std has no SIGTERM; the `kill` command is on every Linux the bench
    // runs on, and a failure only means the hard kill that follows.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

fn usage(pid: u32) -> Option<Usage> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line.split_whitespace().nth(1)?.parse::<u64>().ok()
    };
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces, end at ')':
    // utime and stime are the 14th and 15th fields of the line.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Usage {
        peak_rss: kib("VmHWM:")? * 1024,
        rss: kib("VmRSS:")? * 1024,
        cpu_seconds: ticks as f64 / CLOCK_TICKS_PER_SECOND,
    })
}

/// USER_HZ, 100 on every Linux architecture the services are built for.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;
