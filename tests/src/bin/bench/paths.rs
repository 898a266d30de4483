//! Each measured path, through the services and as its raw SQL, with the
//! data it needs prepared beforehand.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use e2e::*;
use proto::{
    inbox::v1::{self as ipb, inbox_service_client::InboxServiceClient},
    ticketing::v1::{self as tpb, ticketing_service_client::TicketingServiceClient},
};
use sea_orm::DatabaseConnection;
use tonic::transport::Channel;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{
    load::{Figures, Samples, Supply, closed_loop, closed_loop_samples},
    raw, seed,
    services::Services,
};

/// Everything the paths share: the running stack, clients spread over
/// several HTTP/2 connections, direct pools on both databases, and the
/// default pipeline's stages.
pub struct Bench {
    pub services: Services,
    pub account: String,
    pub inbox: Arc<Vec<InboxServiceClient<Channel>>>,
    pub ticketing: Arc<Vec<TicketingServiceClient<Channel>>>,
    pub health: Arc<Vec<HealthClient<Channel>>>,
    pub inbox_db: Arc<DatabaseConnection>,
    pub ticketing_db: Arc<DatabaseConnection>,
    /// Where the raw writes go: databases with the services' schemas that
    /// no service reads, so raw rows never reach a consumer.
    pub raw_inbox_db: Arc<DatabaseConnection>,
    pub raw_ticketing_db: Arc<DatabaseConnection>,
    raw_databases: Vec<TestDb>,
    pub pipeline_id: String,
    pub new_stage: String,
    pub closed_stage: String,
    pub duration: Duration,
    /// Upper bound of calls per second any path reaches here, to size the
    /// prepared data.
    pub max_rate: u64,
    /// Each path's service run and raw run are cut into this many slices,
    /// run alternately, so that drift in how busy the shared machine is
    /// falls on both alike.
    pub slices: u32,
    batches: std::sync::atomic::AtomicU64,
}

/// One path at one concurrency: through the services, and raw.
#[derive(Debug, Clone)]
pub struct Measured {
    pub path: String,
    pub concurrency: usize,
    pub service: Figures,
    pub raw: Option<Figures>,
}

impl Measured {
    /// Service throughput as a share of the raw limit.
    pub fn ratio(&self) -> Option<f64> {
        self.raw
            .as_ref()
            .map(|raw| self.service.per_second / raw.per_second.max(1e-9))
    }
}

/// How long a read path runs unmeasured before its first slice.
const WARM_UP: Duration = Duration::from_millis(500);

/// One slice of a closed loop whose callers number their calls on from
/// where their previous slice stopped (`next`, one counter per caller).
async fn slice_of<F, Fut>(
    call: &Arc<F>,
    next: &Arc<Vec<AtomicU64>>,
    concurrency: usize,
    slice: Duration,
) -> Samples
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Option<bool>> + Send,
{
    let (call, next) = (call.clone(), next.clone());
    closed_loop_samples(concurrency, slice, move |worker, _| {
        call(worker, next[worker].fetch_add(1, Ordering::Relaxed))
    })
    .await
}

pub(crate) fn client<T: Clone>(clients: &[T], worker: usize) -> T {
    clients[worker % clients.len()].clone()
}

impl Bench {
    pub async fn start(
        connections: usize,
        duration: Duration,
        max_rate: u64,
        slices: u32,
        in_process: bool,
    ) -> Result<Bench, String> {
        let services = Services::start(in_process).await?;
        let account = new_account(services.ticketing_addr()).await;
        let mut inbox = Vec::new();
        let mut ticketing = Vec::new();
        let mut health = Vec::new();
        for _ in 0..connections.max(1) {
            inbox.push(InboxServiceClient::new(
                channel(services.inbox_addr()).await,
            ));
            ticketing.push(TicketingServiceClient::new(
                channel(services.ticketing_addr()).await,
            ));
            health.push(HealthClient::new(channel(services.inbox_addr()).await));
        }
        // The same pool size as each service's default.
        let inbox_db = kit::db::connect(services.inbox_database_url(), 16)
            .await
            .expect("connect to the inbox database");
        let ticketing_db = kit::db::connect(services.ticketing_database_url(), 16)
            .await
            .expect("connect to ticketing's database");
        let raw_databases = vec![
            TestDb::create("rawinbox").await,
            TestDb::create("rawticketing").await,
        ];
        let raw_inbox_db =
            kit::db::open::<inbox::store::migration::Migrator>(raw_databases[0].url(), 16)
                .await
                .expect("raw inbox database");
        let raw_ticketing_db =
            kit::db::open::<ticketing::store::migration::Migrator>(raw_databases[1].url(), 16)
                .await
                .expect("raw ticketing database");
        let pipelines = ticketing[0]
            .clone()
            .list_pipelines(as_user(
                &account,
                "bench",
                tpb::ListPipelinesRequest::default(),
            ))
            .await
            .expect("list pipelines")
            .into_inner()
            .pipelines;
        let pipeline = pipelines
            .into_iter()
            .find(|p| p.is_default)
            .expect("default pipeline");
        let stage = |closed: bool| {
            pipeline
                .stages
                .iter()
                .find(|s| s.is_closed == closed)
                .map(|s| s.id.clone())
                .expect("stage")
        };
        let (new_stage, closed_stage) = (stage(false), stage(true));
        let bench = Bench {
            services,
            account,
            inbox: Arc::new(inbox),
            ticketing: Arc::new(ticketing),
            health: Arc::new(health),
            inbox_db: Arc::new(inbox_db),
            ticketing_db: Arc::new(ticketing_db),
            raw_inbox_db: Arc::new(raw_inbox_db),
            raw_ticketing_db: Arc::new(raw_ticketing_db),
            raw_databases,
            pipeline_id: pipeline.id.clone(),
            new_stage,
            closed_stage,
            duration,
            max_rate,
            slices: slices.max(1),
            batches: Default::default(),
        };
        // One write through each service so that every per-account head row
        // exists before the raw runs use them.
        let first = bench.conversation("Warm-up", "warm@example.com").await;
        bench.ticket_for(&first.id).await;
        seed::heads(&bench.raw_inbox_db, &bench.raw_ticketing_db, &bench.account)
            .await
            .expect("log heads in the raw databases");
        Ok(bench)
    }

    /// A new conversation through the inbox, as an agent makes one.
    pub async fn conversation(&self, subject: &str, email: &str) -> ipb::Conversation {
        self.conversation_of(&self.account, subject, email).await
    }

    /// A new conversation of `account` through the inbox.
    pub async fn conversation_of(
        &self,
        account: &str,
        subject: &str,
        email: &str,
    ) -> ipb::Conversation {
        conversation_via(self.inbox[0].clone(), account, subject, email).await
    }

    /// A ticket for the conversation, through the inbox.
    pub async fn ticket_for(&self, conversation_id: &str) -> tpb::Ticket {
        ticket_for_via(self.inbox[0].clone(), &self.account, conversation_id).await
    }

    /// Waits until the inbox has applied every event ticketing logged, so
    /// that one path's aftermath does not load the next path's run.
    pub async fn settle(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut shown = false;
        loop {
            // Over every account: the hot-account path writes to several.
            let logged = total(&self.ticketing_db, "event_heads").await;
            let applied = total(&self.inbox_db, "event_cursors").await;
            let behind = logged - applied;
            if behind <= 0 || std::time::Instant::now() > deadline {
                if shown {
                    eprintln!();
                }
                return;
            }
            eprint!("\rwaiting for the inbox to apply {behind:>7} events");
            shown = true;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The one number `sql` (with the account as `$1`) reads; 0 when none.
    pub async fn scalar(&self, db: &DatabaseConnection, sql: &str) -> i64 {
        use sea_orm::ConnectionTrait;
        let statement = raw::statement(
            db.get_database_backend(),
            sql,
            vec![self.account.clone().into()],
        );
        db.query_one_raw(statement)
            .await
            .ok()
            .flatten()
            .and_then(|row| row.try_get_by_index::<i64>(0).ok())
            .unwrap_or(0)
    }

    /// Stops both services and drops every database of the run.
    pub async fn stop(self) {
        self.services.stop().await;
        for mut db in self.raw_databases {
            db.drop_database().await;
        }
    }

    fn databases(&self, raw: bool) -> (&DatabaseConnection, &DatabaseConnection) {
        if raw {
            (&self.raw_inbox_db, &self.raw_ticketing_db)
        } else {
            (&self.inbox_db, &self.ticketing_db)
        }
    }

    fn batch(&self, what: &str) -> String {
        let n = self
            .batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{what}{n}")
    }

    /// Seeds `tickets` tickets of three open conversations each in both
    /// services; returns the batch name.
    pub async fn seed_ticketed(&self, what: &str, tickets: u64, raw: bool) -> String {
        let batch = self.batch(what);
        let (inbox_db, ticketing_db) = self.databases(raw);
        seed::tickets_with_three_conversations(
            ticketing_db,
            &self.account,
            &batch,
            tickets,
            &self.pipeline_id,
            &self.new_stage,
        )
        .await
        .expect("seed tickets");
        let tickets_batch = batch.clone();
        seed::inbox_conversations(inbox_db, &self.account, &batch, 0..3 * tickets, move |i| {
            Some(seed::ticket_id(&tickets_batch, i / 3))
        })
        .await
        .expect("seed ticketed conversations");
        seed::analyze(inbox_db).await.expect("analyze");
        seed::analyze(ticketing_db).await.expect("analyze");
        batch
    }

    /// Seeds `count` open conversations without tickets; returns their ids.
    pub async fn seed_unticketed(&self, what: &str, count: u64, raw: bool) -> Vec<String> {
        let batch = self.batch(what);
        seed::inbox_conversations(
            self.databases(raw).0,
            &self.account,
            &batch,
            0..count,
            |_| None,
        )
        .await
        .expect("seed conversations");
        (0..count)
            .map(|i| seed::conversation_id(&batch, i))
            .collect()
    }

    /// Runs `service` and `raw` (each a closed loop's call) for the run's
    /// duration each, in alternating slices, waiting before every slice
    /// until the inbox has applied what the previous one caused. Each
    /// caller's call number `n` runs on across slices. A read path first
    /// runs both sides unmeasured for `warm_up` (`WARM_UP`); otherwise the
    /// first run of a fresh process (the smallest size of `--growth`)
    /// opens its pools' connections and prepares its statements inside
    /// the measurement. Write paths pass zero: their calls use up items
    /// prepared for the run.
    pub async fn alternate<S, SF, R, RF>(
        &self,
        concurrency: usize,
        warm_up: Duration,
        service: S,
        raw: R,
    ) -> (Figures, Figures)
    where
        S: Fn(usize, u64) -> SF + Send + Sync + 'static,
        SF: std::future::Future<Output = Option<bool>> + Send,
        R: Fn(usize, u64) -> RF + Send + Sync + 'static,
        RF: std::future::Future<Output = Option<bool>> + Send,
    {
        let slice = self.duration / self.slices;
        let (service, raw) = (Arc::new(service), Arc::new(raw));
        let numbers = |n: usize| Arc::new((0..n).map(|_| AtomicU64::new(0)).collect::<Vec<_>>());
        if !warm_up.is_zero() {
            let unnumbered = numbers(concurrency);
            slice_of(&service, &unnumbered, concurrency, warm_up).await;
            slice_of(&raw, &unnumbered, concurrency, warm_up).await;
        }
        let (service_numbers, raw_numbers) = (numbers(concurrency), numbers(concurrency));
        let (mut service_samples, mut raw_samples) = (Samples::default(), Samples::default());
        for _ in 0..self.slices {
            self.settle().await;
            service_samples.add(slice_of(&service, &service_numbers, concurrency, slice).await);
            self.settle().await;
            raw_samples.add(slice_of(&raw, &raw_numbers, concurrency, slice).await);
        }
        (service_samples.figures(), raw_samples.figures())
    }

    /// Enough prepared items for one run at the fastest plausible rate.
    pub fn supply_size(&self) -> u64 {
        self.max_rate * self.duration.as_secs().max(1) + 100
    }

    pub async fn noop(&self, concurrency: usize) -> Measured {
        let clients = self.health.clone();
        let service = closed_loop(concurrency, self.duration, move |worker, _| {
            let mut client = client(&clients, worker);
            async move {
                Some(
                    client
                        .check(HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .is_ok(),
                )
            }
        })
        .await;
        Measured {
            path: "no-op RPC (health check)".into(),
            concurrency,
            service,
            raw: None,
        }
    }

    pub async fn create_conversation(&self, concurrency: usize) -> Measured {
        let (clients, account) = (self.inbox.clone(), self.account.clone());
        let run = self.batch("cc");
        let service = move |worker, n| {
            let mut client = client(&clients, worker);
            let request = as_user(
                &account,
                "bench",
                new_conversation(
                    &format!("Load {worker}-{n}"),
                    &format!("{run}-{worker}-{n}@example.com"),
                ),
            );
            async move { Some(client.create_conversation(request).await.is_ok()) }
        };
        let (db, account) = (self.raw_inbox_db.clone(), self.account.clone());
        let run = self.batch("rawcc");
        let raw = move |worker, n| {
            let (db, account) = (db.clone(), account.clone());
            let key = format!("{run}-{worker}-{n}");
            async move { Some(raw::create_conversation(&db, &account, &key).await.is_ok()) }
        };
        let (service, raw) = self
            .alternate(concurrency, Duration::ZERO, service, raw)
            .await;
        Measured {
            path: "CreateConversation".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }

    pub async fn create_ticket(&self, concurrency: usize) -> Measured {
        let supply = Supply::new(self.seed_unticketed("ct", self.supply_size(), false).await);
        let (clients, account) = (self.inbox.clone(), self.account.clone());
        let service = move |worker, _| {
            let mut client = client(&clients, worker);
            let id = supply.take().cloned();
            let account = account.clone();
            async move {
                let id = id?;
                let request = as_user(&account, "bench", create_ticket_for(&id));
                Some(client.create_ticket_for_conversation(request).await.is_ok())
            }
        };
        let supply = Supply::new(
            self.seed_unticketed("rawct", self.supply_size(), true)
                .await,
        );
        let (inbox, ticketing, account) = (
            self.raw_inbox_db.clone(),
            self.raw_ticketing_db.clone(),
            self.account.clone(),
        );
        let stages = (self.pipeline_id.clone(), self.new_stage.clone());
        let raw = move |_, _| {
            let id = supply.take().cloned();
            let (inbox, ticketing, account, stages) = (
                inbox.clone(),
                ticketing.clone(),
                account.clone(),
                stages.clone(),
            );
            async move {
                let id = id?;
                Some(
                    raw::create_ticket(&ticketing, &inbox, &account, &id, (&stages.0, &stages.1))
                        .await
                        .is_ok(),
                )
            }
        };
        let (service, raw) = self
            .alternate(concurrency, Duration::ZERO, service, raw)
            .await;
        Measured {
            path: "CreateTicketForConversation".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }

    /// Closing tickets of three conversations each: the calls' rate, while
    /// the inbox closes the conversations as the events arrive.
    pub async fn close_ticket(&self, concurrency: usize) -> Measured {
        let tickets = self.supply_size();
        let batch = self.seed_ticketed("cl", tickets, false).await;
        let supply = Supply::new((0..tickets).map(|t| seed::ticket_id(&batch, t)).collect());
        let (clients, account, closed) = (
            self.ticketing.clone(),
            self.account.clone(),
            self.closed_stage.clone(),
        );
        let service = move |worker, _| {
            let mut client = client(&clients, worker);
            let id = supply.take().cloned();
            let request = id.map(|id| as_user(&account, "bench", move_to_stage(&id, &closed, "")));
            async move { Some(client.update_ticket(request?).await.is_ok()) }
        };
        let batch = self.seed_ticketed("rawcl", tickets, true).await;
        let supply = Supply::new((0..tickets).map(|t| seed::ticket_id(&batch, t)).collect());
        let (ticketing, inbox, account, closed) = (
            self.raw_ticketing_db.clone(),
            self.raw_inbox_db.clone(),
            self.account.clone(),
            self.closed_stage.clone(),
        );
        let raw = move |_, _| {
            let id = supply.take().cloned();
            let (ticketing, inbox) = (ticketing.clone(), inbox.clone());
            let (account, closed) = (account.clone(), closed.clone());
            async move {
                let id = id?;
                let done = raw::close_ticket(&ticketing, &inbox, &account, &id, &closed).await;
                Some(done.is_ok())
            }
        };
        let (service, raw) = self
            .alternate(concurrency, Duration::ZERO, service, raw)
            .await;
        Measured {
            path: "UpdateTicket to closed (3 conversations)".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }

    /// Assigning ticketed conversations; each caller works on its own
    /// conversations (of distinct tickets), cycling through owners.
    pub async fn assign(&self, concurrency: usize) -> Measured {
        let per_worker = 50u64;
        let tickets = concurrency as u64 * per_worker;
        let batch = self.seed_ticketed("as", tickets, false).await;
        let (clients, account) = (self.inbox.clone(), self.account.clone());
        let service = move |worker, n| {
            let mut client = client(&clients, worker);
            let ticket = worker as u64 * per_worker + n % per_worker;
            let request = as_user(
                &account,
                "bench",
                ipb::AssignConversationRequest {
                    conversation_id: seed::conversation_id(&batch, 3 * ticket),
                    owner_id: format!("agent-{}", n % 7),
                    ..Default::default()
                },
            );
            async move { Some(client.assign_conversation(request).await.is_ok()) }
        };
        let batch = self.seed_ticketed("rawas", tickets, true).await;
        let (inbox, ticketing, account) = (
            self.raw_inbox_db.clone(),
            self.raw_ticketing_db.clone(),
            self.account.clone(),
        );
        let raw = move |worker, n| {
            let (inbox, ticketing, account) = (inbox.clone(), ticketing.clone(), account.clone());
            let ticket = worker as u64 * per_worker + n % per_worker;
            let conversation = seed::conversation_id(&batch, 3 * ticket);
            let ticket = seed::ticket_id(&batch, ticket);
            async move {
                let owner = format!("agent-{}", n % 7);
                Some(
                    raw::assign(&inbox, &ticketing, &account, &conversation, &ticket, &owner)
                        .await
                        .is_ok(),
                )
            }
        };
        let (service, raw) = self
            .alternate(concurrency, Duration::ZERO, service, raw)
            .await;
        Measured {
            path: "AssignConversation (owner sync)".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }

    /// The sidebar of a ticketed conversation whose contact has earlier
    /// conversations.
    pub async fn context(&self, concurrency: usize, conversation: &SidebarTarget) -> Measured {
        let (clients, account, id) = (
            self.inbox.clone(),
            self.account.clone(),
            conversation.conversation_id.clone(),
        );
        let service = move |worker, _| {
            let mut client = client(&clients, worker);
            let request = as_user(
                &account,
                "bench",
                ipb::GetConversationContextRequest {
                    conversation_id: id.clone(),
                    previous_page_size: 10,
                    ..Default::default()
                },
            );
            async move { Some(client.get_conversation_context(request).await.is_ok()) }
        };
        let (db, account, target) = (
            self.inbox_db.clone(),
            self.account.clone(),
            conversation.clone(),
        );
        let raw = move |_, _| {
            let (db, account, target) = (db.clone(), account.clone(), target.clone());
            async move {
                Some(
                    raw::context(&db, &account, &target.conversation_id, &target.contact_id)
                        .await
                        .is_ok(),
                )
            }
        };
        let (service, raw) = self.alternate(concurrency, WARM_UP, service, raw).await;
        Measured {
            path: "GetConversationContext".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }

    pub async fn list(&self, concurrency: usize) -> Measured {
        let (clients, account) = (self.inbox.clone(), self.account.clone());
        let service = move |worker, _| {
            let mut client = client(&clients, worker);
            let request = as_user(
                &account,
                "bench",
                ipb::ListConversationsRequest {
                    status: ipb::ConversationStatus::Open as i32,
                    page_size: 20,
                    ..Default::default()
                },
            );
            async move {
                let page = client.list_conversations(request).await;
                Some(page.is_ok_and(|p| p.into_inner().conversations.len() == 20))
            }
        };
        let (db, account) = (self.inbox_db.clone(), self.account.clone());
        let raw = move |_, _| {
            let (db, account) = (db.clone(), account.clone());
            async move { Some(raw::list(&db, &account).await.is_ok()) }
        };
        let (service, raw) = self.alternate(concurrency, WARM_UP, service, raw).await;
        Measured {
            path: "ListConversations (open, first page of 20)".into(),
            concurrency,
            service,
            raw: Some(raw),
        }
    }

    /// A ticketed conversation made through the API whose contact has
    /// `earlier` earlier conversations: what the sidebar reads.
    pub async fn sidebar_target(&self, earlier: usize) -> SidebarTarget {
        let email = format!("{}@sidebar.example.com", self.batch("sb"));
        for i in 0..earlier {
            self.conversation(&format!("Earlier {i}"), &email).await;
        }
        let target = self.conversation("Sidebar", &email).await;
        // The sidebar shows a ticket panel only for a ticketed conversation.
        self.ticket_for(&target.id).await;
        SidebarTarget {
            conversation_id: target.id,
            contact_id: target.contact_id,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SidebarTarget {
    pub conversation_id: String,
    pub contact_id: String,
}

/// The sum of `last_sequence` over every account's row of `table`.
async fn total(db: &DatabaseConnection, table: &str) -> i64 {
    use sea_orm::ConnectionTrait;
    let sql = format!("SELECT CAST(COALESCE(SUM(last_sequence), 0) AS BIGINT) FROM {table}");
    db.query_one_raw(raw::statement(db.get_database_backend(), &sql, vec![]))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0)
}

/// A Starter account, made as the admin tooling makes one.
pub async fn new_account(ticketing: std::net::SocketAddr) -> String {
    account_via(
        TicketingServiceClient::new(channel(ticketing).await),
        tpb::Tier::Starter,
    )
    .await
}
