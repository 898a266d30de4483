//! Accounts: creation with the default pipeline, and reads.

use kit::{ApiError, idempotency::Key, identity::Caller};
use proto::ticketing::v1 as pb;
use sea_orm::{EntityTrait, IntoActiveModel};

use super::App;
use crate::{
    convert,
    domain::{Tier, rules},
    store::{account, events, pipeline, queries},
};

pub struct NewAccount {
    pub name: String,
    pub tier: Tier,
    pub created_at: i64,
}

impl App {
    pub async fn create_account(
        &self,
        input: NewAccount,
        key: Option<Key>,
    ) -> Result<pb::Account, ApiError> {
        let txn = self.begin("create_account").await?;
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &txn).await? {
            return Ok(answer);
        }
        let help_desk = rules::manages_tickets_in_help_desk(
            &self.config.help_desk,
            input.tier,
            input.created_at,
        );
        let row = account::Model {
            id: kit::new_id(),
            name: input.name,
            tier: convert::tier_to_proto(input.tier) as i32,
            help_desk,
            created_at: input.created_at,
        };
        account::Entity::insert(row.clone().into_active_model())
            .exec(&txn)
            .await?;
        let default_pipeline = pipeline::Model {
            id: kit::new_id(),
            account_id: row.id.clone(),
            name: "Support pipeline".to_owned(),
            is_default: true,
            created_at: input.created_at.max(kit::time::now_micros()),
        };
        queries::insert_pipeline(&txn, default_pipeline, &queries::DEFAULT_STAGES).await?;
        events::create_head(&txn, &row.id).await?;
        let answer = convert::account_to_proto(&row);
        kit::idempotency::record(key.as_ref(), &txn, &answer).await?;
        txn.commit().await?;
        tracing::info!(account_id = %row.id, help_desk, "account created");
        Ok(answer)
    }

    pub async fn get_account(&self, caller: &Caller, id: &str) -> Result<pb::Account, ApiError> {
        let not_found = || ApiError::not_found("account", id);
        // Refused before looking, so nobody learns which account ids exist.
        if !caller.is_service() && !super::same_account(caller, id) {
            return Err(ApiError::PermissionDenied(
                "that is not your account".into(),
            ));
        }
        let row = queries::find_account(&self.db, id)
            .await?
            .ok_or_else(not_found)?;
        Ok(convert::account_to_proto(&row))
    }
}
