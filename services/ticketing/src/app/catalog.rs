//! Accounts and stages never change once committed: an account's help-desk
//! status is decided when it is created (R10), pipelines are only ever added,
//! and a stage is never edited. So each process keeps the ones it has read,
//! and a ticket change stops paying a query for each of them. Only rows read
//! outside the transaction that created them are remembered, and only rows
//! that exist: something missing is looked up again next time.

use std::{collections::HashMap, sync::Mutex};

use sea_orm::{ConnectionTrait, DbErr};

use super::App;
use crate::store::{account, queries, stage};

/// More entries than this and a map starts over (a crude bound; a process
/// serving that many tenants re-reads a few rows).
const MAX_ENTRIES: usize = 100_000;

#[derive(Default)]
pub struct Catalog {
    accounts: Mutex<HashMap<String, account::Model>>,
    stages: Mutex<HashMap<String, stage::Model>>,
    /// The first stage of each account's default pipeline.
    first_stages: Mutex<HashMap<String, stage::Model>>,
}

fn recall<V: Clone>(map: &Mutex<HashMap<String, V>>, key: &str) -> Option<V> {
    map.lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .get(key)
        .cloned()
}

fn remember<V>(map: &Mutex<HashMap<String, V>>, key: &str, value: V) {
    let mut map = map.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key.to_owned(), value);
}

impl App {
    pub(crate) async fn account(
        &self,
        conn: &impl ConnectionTrait,
        id: &str,
    ) -> Result<Option<account::Model>, DbErr> {
        if let Some(known) = recall(&self.catalog.accounts, id) {
            return Ok(Some(known));
        }
        let found = queries::find_account(conn, id).await?;
        if let Some(row) = &found {
            remember(&self.catalog.accounts, id, row.clone());
        }
        Ok(found)
    }

    /// The stage `id` of `account_id`; `None` when it is not in the account.
    pub(crate) async fn stage(
        &self,
        conn: &impl ConnectionTrait,
        account_id: &str,
        id: &str,
    ) -> Result<Option<stage::Model>, DbErr> {
        if let Some(known) = recall(&self.catalog.stages, id) {
            return Ok((known.account_id == account_id).then_some(known));
        }
        let found = queries::find_stage(conn, account_id, id).await?;
        if let Some(row) = &found {
            remember(&self.catalog.stages, id, row.clone());
        }
        Ok(found)
    }

    /// Where a ticket starts when its creator names no pipeline or stage.
    pub(crate) async fn default_first_stage(
        &self,
        conn: &impl ConnectionTrait,
        account_id: &str,
    ) -> Result<Option<stage::Model>, DbErr> {
        if let Some(known) = recall(&self.catalog.first_stages, account_id) {
            return Ok(Some(known));
        }
        let Some(pipeline) = queries::default_pipeline(conn, account_id).await? else {
            return Ok(None);
        };
        let first = queries::stages_of(conn, std::slice::from_ref(&pipeline.id))
            .await?
            .into_iter()
            .next();
        if let Some(row) = &first {
            remember(&self.catalog.first_stages, account_id, row.clone());
        }
        Ok(first)
    }
}
