//! One hot account beside many. Every write of an account takes its log
//! head row (the gap-free per-account sequence, SPEC §5), so one account's
//! writes commit one at a time however many callers it has; writes of
//! different accounts do not wait for each other. The same callers run on
//! one account and spread over `ACCOUNTS`, in alternating slices.

use std::{net::SocketAddr, sync::Arc};

use e2e::*;
use proto::{inbox::v1 as ipb, ticketing::v1 as tpb};

use crate::paths::{Bench, Measured, client, new_account};

/// Accounts the spread run shares its callers among (64 callers: 4 each).
pub const ACCOUNTS: usize = 16;

/// The accounts a caller writes to: the hot run's one, or the spread
/// run's, caller `w` on account `w % ACCOUNTS`.
struct Accounts {
    hot: String,
    spread: Vec<String>,
}

impl Accounts {
    /// The account caller `worker` writes to.
    fn of(&self, spread: bool, worker: usize) -> &str {
        if spread {
            &self.spread[worker % ACCOUNTS]
        } else {
            &self.hot
        }
    }

    async fn new(bench: &Bench, ticketing: SocketAddr) -> Accounts {
        let mut spread = Vec::with_capacity(ACCOUNTS);
        for _ in 0..ACCOUNTS {
            spread.push(new_account(ticketing).await);
        }
        Accounts {
            hot: bench.account.clone(),
            spread,
        }
    }
}

/// AddMessage and CreateTicket, each on one account and spread over
/// `ACCOUNTS` accounts, at `concurrency` callers.
pub async fn hot_account(bench: &Bench, concurrency: usize) -> Vec<Measured> {
    let accounts = Arc::new(Accounts::new(bench, bench.services.ticketing_addr()).await);
    vec![
        add_message(bench, concurrency, &accounts).await,
        create_ticket(bench, concurrency, &accounts).await,
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Each caller adds messages to a conversation of its own, so that only
/// the account's head row is shared, never the conversation's row.
async fn add_message(bench: &Bench, concurrency: usize, accounts: &Arc<Accounts>) -> Vec<Measured> {
    let mut hot_conversations = Vec::with_capacity(concurrency);
    let mut spread_conversations = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let email = format!("hot-{worker}@example.com");
        hot_conversations.push(bench.conversation_of(&accounts.hot, "Hot", &email).await.id);
        let account = &accounts.spread[worker % ACCOUNTS];
        spread_conversations.push(bench.conversation_of(account, "Spread", &email).await.id);
    }
    let call = |conversations: Vec<String>, spread: bool| {
        let (clients, accounts) = (bench.inbox.clone(), accounts.clone());
        move |worker: usize, n: u64| {
            let mut client = client(&clients, worker);
            let account = accounts.of(spread, worker);
            let request = as_user(
                account,
                "bench",
                ipb::AddMessageRequest {
                    conversation_id: conversations[worker].clone(),
                    message: Some(ipb::Message {
                        direction: ipb::Direction::Outgoing as i32,
                        author: "bench".into(),
                        body: format!("Reply {n}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            async move { Some(client.add_message(request).await.is_ok()) }
        }
    };
    let (hot, spread) = bench
        .alternate(
            concurrency,
            std::time::Duration::ZERO,
            call(hot_conversations, false),
            call(spread_conversations, true),
        )
        .await;
    pair("AddMessage", concurrency, hot, spread)
}

async fn create_ticket(
    bench: &Bench,
    concurrency: usize,
    accounts: &Arc<Accounts>,
) -> Vec<Measured> {
    let call = |spread: bool| {
        let (clients, accounts) = (bench.ticketing.clone(), accounts.clone());
        move |worker: usize, n: u64| {
            let mut client = client(&clients, worker);
            let account = accounts.of(spread, worker);
            let request = as_user(
                account,
                "bench",
                tpb::CreateTicketRequest {
                    ticket: Some(tpb::Ticket {
                        name: format!("Hot {worker}-{n}"),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            );
            async move { Some(client.create_ticket(request).await.is_ok()) }
        }
    };
    let (hot, spread) = bench
        .alternate(
            concurrency,
            std::time::Duration::ZERO,
            call(false),
            call(true),
        )
        .await;
    pair("CreateTicket", concurrency, hot, spread)
}

fn pair(
    call: &str,
    concurrency: usize,
    hot: crate::load::Figures,
    spread: crate::load::Figures,
) -> Vec<Measured> {
    eprintln!(
        "{call}: one account at {concurrency} callers {:.0}/s, {ACCOUNTS} accounts {:.0}/s: one account does {:.0}% of the spread throughput",
        hot.per_second,
        spread.per_second,
        100.0 * hot.per_second / spread.per_second.max(1e-9)
    );
    vec![
        Measured {
            path: format!("{call}, one account"),
            concurrency,
            service: hot,
            raw: None,
        },
        Measured {
            path: format!("{call}, {ACCOUNTS} accounts"),
            concurrency,
            service: spread,
            raw: None,
        },
    ]
}
