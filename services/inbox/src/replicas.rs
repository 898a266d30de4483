//! Ticketing's replicas as the inbox calls them. One Kubernetes Service name
//! is one HTTP/2 connection to one pod, so every forwarded call would land
//! on whichever pod that connection reached. Instead every address that
//! ticketing's names resolve to (a headless Service lists each pod) gets a
//! connection of its own, the names are resolved again periodically, and
//! calls go round robin over the replicas that answer. A replica that
//! refuses a connection leaves the rotation at once and comes back when its
//! readiness answers SERVING; a call that never reached a server is tried on
//! another replica within its deadline (docs/operations.md, "Scale").

use std::{
    collections::HashMap,
    future::Future,
    net::{IpAddr, SocketAddr},
    sync::{
        Arc, Mutex, RwLock, Weak,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use tonic::transport::{Channel, Endpoint};

/// A client of one replica.
/// Calls carry a CLIENT span and the trace context (`kit::client_trace`).
pub type Client = TicketingServiceClient<kit::client_trace::Traced<Channel>>;

/// How often a replica that refused a connection is asked whether it is
/// back (grpc.health on ticketing's service name).
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// Finds the addresses behind a name: the system's resolver, or (tests)
/// a fixed table that can be changed while the inbox runs.
#[derive(Clone, Debug, Default)]
pub enum Resolver {
    #[default]
    System,
    Fixed(Arc<Mutex<HashMap<String, Vec<IpAddr>>>>),
}

impl Resolver {
    /// A resolver that answers `host` with `ips` and knows no other name.
    pub fn fixed(host: &str, ips: Vec<IpAddr>) -> Resolver {
        let resolver = Resolver::Fixed(Default::default());
        resolver.set(host, ips);
        resolver
    }

    /// Changes what a fixed resolver answers for `host`.
    pub fn set(&self, host: &str, ips: Vec<IpAddr>) {
        if let Resolver::Fixed(table) = self
            && let Ok(mut table) = table.lock()
        {
            table.insert(host.to_owned(), ips);
        }
    }

    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        match self {
            Resolver::System => Ok(tokio::net::lookup_host((host, port)).await?.collect()),
            Resolver::Fixed(table) => table
                .lock()
                .ok()
                .and_then(|table| table.get(host).cloned())
                .map(|ips| {
                    ips.into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect()
                })
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, host.to_owned())),
        }
    }
}

/// One name (or address) from the inbox's configuration.
#[derive(Debug)]
struct Target {
    scheme: String,
    host: String,
    port: u16,
}

struct Member {
    target: usize,
    addr: SocketAddr,
    channel: Channel,
    up: AtomicBool,
    answered: AtomicU64,
}

struct Inner {
    targets: Vec<Target>,
    resolver: Resolver,
    members: RwLock<Vec<Arc<Member>>>,
    next: AtomicUsize,
}

/// Every replica of ticketing, balanced; cheap to clone.
#[derive(Clone)]
pub struct Replicas(Arc<Inner>);

impl std::fmt::Debug for Replicas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replicas")
            .field("targets", &self.0.targets)
            .finish()
    }
}

impl Replicas {
    /// Replicas behind `urls` (comma separated), resolved now and again
    /// every `resolve_every` while this value lives.
    pub fn new(
        urls: &str,
        resolver: Resolver,
        resolve_every: Duration,
    ) -> Result<Replicas, tonic::transport::Error> {
        let mut targets = Vec::new();
        for url in urls.split(',').map(str::trim) {
            // Parsing through Endpoint gives the same errors as before.
            let uri = Endpoint::from_shared(url.to_owned())?.uri().clone();
            let scheme = uri.scheme_str().unwrap_or("http").to_owned();
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            targets.push(Target {
                scheme,
                host: uri.host().unwrap_or_default().to_owned(),
                port,
            });
        }
        let replicas = Replicas(Arc::new(Inner {
            targets,
            resolver,
            members: RwLock::new(Vec::new()),
            next: AtomicUsize::new(0),
        }));
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(resolve_loop(Arc::downgrade(&replicas.0), resolve_every));
        }
        Ok(replicas)
    }

    /// Sends `request` to a replica, and to another if it never reached
    /// the first (refused connection), until `timeout` (if any) runs out.
    /// Only such calls are retried: one that reached a server may have had
    /// its effect.
    pub async fn call<T, R, F, Fut>(
        &self,
        request: tonic::Request<T>,
        timeout: Option<Duration>,
        send: F,
    ) -> Result<tonic::Response<R>, tonic::Status>
    where
        T: Clone,
        F: Fn(Client, tonic::Request<T>) -> Fut,
        Fut: Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let (metadata, _, message) = request.into_parts();
        if self.members().is_empty() {
            resolve(&self.0).await;
        }
        let mut tried = Vec::new();
        let mut last = None;
        while let Some(member) = self.pick(&tried) {
            let mut attempt =
                tonic::Request::from_parts(metadata.clone(), Default::default(), message.clone());
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                attempt.set_timeout(left);
            }
            let client =
                TicketingServiceClient::new(kit::client_trace::Traced::new(member.channel.clone()))
                    .max_decoding_message_size(kit::server::MAX_MESSAGE_SIZE);
            match send(client, attempt).await {
                Ok(answer) => {
                    member.answered.fetch_add(1, Ordering::Relaxed);
                    return Ok(answer);
                }
                Err(status) if never_reached_a_server(&status) => {
                    self.leave_rotation(&member);
                    tried.push(member.addr);
                    last = Some(status);
                }
                Err(status) => return Err(status),
            }
        }
        Err(last
            .unwrap_or_else(|| tonic::Status::unavailable("no ticketing replica could be reached")))
    }

    /// How many calls each replica answered, by address (for tests and
    /// diagnostics).
    pub fn answered(&self) -> HashMap<SocketAddr, u64> {
        self.members()
            .iter()
            .map(|m| (m.addr, m.answered.load(Ordering::Relaxed)))
            .collect()
    }

    fn members(&self) -> Vec<Arc<Member>> {
        self.0.members.read().map(|m| m.clone()).unwrap_or_default()
    }

    /// Round robin over the replicas in rotation that this call has not
    /// tried; if none is left, over those out of rotation (one may be back
    /// before its probe noticed, and the caller deserves the real error).
    fn pick(&self, tried: &[SocketAddr]) -> Option<Arc<Member>> {
        let members = self.members();
        let untried = || members.iter().filter(|m| !tried.contains(&m.addr));
        let mut pool: Vec<_> = untried().filter(|m| m.up.load(Ordering::Relaxed)).collect();
        if pool.is_empty() {
            pool = untried().collect();
        }
        let turn = self.0.next.fetch_add(1, Ordering::Relaxed);
        pool.get(turn % pool.len().max(1)).map(|m| Arc::clone(m))
    }

    fn leave_rotation(&self, member: &Arc<Member>) {
        if member.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(replica = %member.addr, "ticketing replica refused a connection; out of rotation until it answers");
            tokio::spawn(probe_until_back(Arc::downgrade(member)));
        }
    }
}

/// A call failed before any server saw it: the connection to the replica
/// could not be made (refused, reset, gone after a GOAWAY and not
/// reopened). tonic marks this with `ConnectError` in the status's causes.
fn never_reached_a_server(status: &tonic::Status) -> bool {
    let mut cause = std::error::Error::source(status);
    while let Some(err) = cause {
        if err.is::<tonic::ConnectError>() {
            return true;
        }
        cause = err.source();
    }
    false
}

async fn probe_until_back(member: Weak<Member>) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    loop {
        tokio::time::sleep(PROBE_INTERVAL).await;
        // A replica no longer resolved is dropped, and its probe with it.
        let Some(member) = member.upgrade() else {
            return;
        };
        let mut request = tonic::Request::new(HealthCheckRequest {
            service: "ticketing.v1.TicketingService".into(),
        });
        request.set_timeout(Duration::from_secs(1));
        let answer = HealthClient::new(member.channel.clone())
            .check(request)
            .await;
        if answer.is_ok_and(|a| a.get_ref().status == ServingStatus::Serving as i32) {
            member.up.store(true, Ordering::Relaxed);
            tracing::info!(replica = %member.addr, "ticketing replica answers again; back in rotation");
            return;
        }
    }
}

async fn resolve_loop(inner: Weak<Inner>, every: Duration) {
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        resolve(&inner).await;
        drop(inner);
        tokio::time::sleep(every).await;
    }
}

/// Replaces the member list with what the names resolve to now, keeping
/// the connections (and rotation state) of addresses that stay. A name
/// that cannot be resolved keeps its previous addresses: a DNS hiccup must
/// not empty the rotation.
async fn resolve(inner: &Inner) {
    let current: Vec<Arc<Member>> = inner.members.read().map(|m| m.clone()).unwrap_or_default();
    let mut next = Vec::new();
    for (index, target) in inner.targets.iter().enumerate() {
        let previous = current.iter().filter(|m| m.target == index);
        match inner.resolver.resolve(&target.host, target.port).await {
            Ok(addrs) if !addrs.is_empty() => {
                for addr in addrs {
                    let kept = previous.clone().find(|m| m.addr == addr);
                    match kept {
                        Some(member) => next.push(Arc::clone(member)),
                        None => match member(index, target, addr) {
                            Ok(member) => next.push(Arc::new(member)),
                            Err(err) => tracing::warn!(%addr, %err, "cannot use ticketing address"),
                        },
                    }
                }
            }
            Ok(_) | Err(_) => {
                tracing::warn!(host = %target.host, "cannot resolve ticketing; keeping its known replicas");
                next.extend(previous.cloned());
            }
        }
    }
    if let Ok(mut members) = inner.members.write() {
        *members = next;
    }
}

fn member(target: usize, at: &Target, addr: SocketAddr) -> Result<Member, tonic::transport::Error> {
    // Lazy: the inbox starts and serves while ticketing is down. HTTP/2
    // keepalive notices a replica that vanished without closing its
    // connections (a node lost), which no refused connection would show.
    let channel = Endpoint::from_shared(format!("{}://{addr}", at.scheme))?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_timeout(Duration::from_secs(10))
        .keep_alive_while_idle(true)
        .connect_lazy();
    Ok(Member {
        target,
        addr,
        channel,
        up: AtomicBool::new(true),
        answered: AtomicU64::new(0),
    })
}
