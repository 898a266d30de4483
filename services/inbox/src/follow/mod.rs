//! Following ticketing, exactly once in effect. `consumer` reads ticketing's
//! event stream and applies each batch (`plan` lays it out in few statements,
//! `apply` writes it) in the transaction that moves the account's cursor
//! (`cursors` remembers the committed ones); `resync` recovers an account
//! whose events ticketing pruned. `outbox` carries the inbox's own reports
//! the other way, at least once, so ticketing's request ids make them one
//! effect. Everything here writes through `store` and calls ticketing
//! through `state`; nothing here calls the use cases in `app`.

pub mod apply;
pub mod batch;
pub mod consumer;
mod cursors;
mod metrics;
pub mod outbox;
mod plan;
mod resync;
