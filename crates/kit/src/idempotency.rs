//! Request idempotency (AIP-155). A mutating call with a `request_id` stores
//! its response in the same transaction as its effect; a retry with the same
//! id gets that response back, and the same id with a different body is
//! refused. Both services keep the table, created by [`migration`].

use prost::Message;
use sea_orm::{ActiveModelTrait, ConnectionTrait, EntityTrait, Set};

use crate::ApiError;

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub method: String,
        pub fingerprint: Vec<u8>,
        pub response: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod migration {
    use sea_orm_migration::{prelude::*, schema::*};

    #[derive(DeriveMigrationName)]
    pub struct Migration;

    #[async_trait::async_trait]
    impl MigrationTrait for Migration {
        async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .create_table(
                    Table::create()
                        .table("idempotency_keys")
                        .if_not_exists()
                        .col(string("account_id"))
                        .col(string("request_id"))
                        .col(string("method"))
                        .col(blob("fingerprint"))
                        .col(blob("response"))
                        .col(big_integer("created_at"))
                        .primary_key(Index::create().col("account_id").col("request_id"))
                        .to_owned(),
                )
                .await
        }

        async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
            manager
                .drop_table(Table::drop().table("idempotency_keys").to_owned())
                .await
        }
    }
}

/// One call's idempotency key; `None` when the caller sent no request id.
#[derive(Debug, Clone)]
pub struct Key {
    pub account_id: String,
    pub request_id: String,
    pub method: &'static str,
    /// The request without its request id, deterministically encoded.
    pub fingerprint: Vec<u8>,
}

/// Request ids are opaque to the server but bounded: 1–64 characters of
/// `[A-Za-z0-9_-]` (a UUID fits).
pub fn validate_request_id(request_id: &str) -> Result<(), ApiError> {
    let ok = request_id.len() <= 64
        && request_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "request_id",
            "must be at most 64 characters of letters, digits, '-' and '_'",
        ))
    }
}

impl Key {
    /// `request` must already have its request id cleared.
    pub fn new<M: Message>(
        account_id: &str,
        request_id: &str,
        method: &'static str,
        request: &M,
    ) -> Result<Option<Self>, ApiError> {
        if request_id.is_empty() {
            return Ok(None);
        }
        validate_request_id(request_id)?;
        Ok(Some(Self {
            account_id: account_id.to_owned(),
            request_id: request_id.to_owned(),
            method,
            fingerprint: request.encode_to_vec(),
        }))
    }

    /// The stored answer of an earlier call with this key, if any.
    pub async fn replay<R: Message + Default>(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Option<R>, ApiError> {
        let found = entity::Entity::find_by_id((self.account_id.clone(), self.request_id.clone()))
            .one(conn)
            .await?;
        let Some(row) = found else { return Ok(None) };
        if row.method != self.method || row.fingerprint != self.fingerprint {
            return Err(ApiError::precondition(
                "REQUEST_ID_REUSED",
                format!(
                    "request_id {} was already used for a different request ({})",
                    self.request_id, row.method
                ),
            ));
        }
        R::decode(row.response.as_slice())
            .map(Some)
            .map_err(|err| ApiError::internal(format!("stored response does not decode: {err}")))
    }

    /// Stores the answer; call inside the transaction that made the change.
    pub async fn record<R: Message>(
        &self,
        conn: &impl ConnectionTrait,
        response: &R,
    ) -> Result<(), sea_orm::DbErr> {
        entity::ActiveModel {
            account_id: Set(self.account_id.clone()),
            request_id: Set(self.request_id.clone()),
            method: Set(self.method.to_owned()),
            fingerprint: Set(self.fingerprint.clone()),
            response: Set(response.encode_to_vec()),
            created_at: Set(crate::time::now_micros()),
        }
        .insert(conn)
        .await
        .map(|_| ())
    }
}

/// Replays the stored answer for `key` if there is one.
pub async fn replay<R: Message + Default>(
    key: Option<&Key>,
    conn: &impl ConnectionTrait,
) -> Result<Option<R>, ApiError> {
    match key {
        Some(key) => key.replay(conn).await,
        None => Ok(None),
    }
}

/// Records the answer for `key` if there is one. A unique violation means a
/// concurrent call with the same key committed first: the database error is
/// returned as is, so that callers can tell it apart, roll back and replay
/// that call's answer.
pub async fn record<R: Message>(
    key: Option<&Key>,
    conn: &impl ConnectionTrait,
    response: &R,
) -> Result<(), sea_orm::DbErr> {
    match key {
        Some(key) => key.record(conn, response).await,
        None => Ok(()),
    }
}

/// SPEC section 4 for duplicates that overlap: a keyed call that was
/// refused, or lost a race, while a duplicate with the same request id
/// committed answers with that duplicate's answer. Without this, a rule
/// check (R2 refusing a second link, say) that ran after the first call
/// committed would answer the retry with a refusal the first call caused.
pub trait FirstAnswer<R> {
    fn or_first_answer(
        self,
        key: Option<&Key>,
        conn: &impl ConnectionTrait,
    ) -> impl std::future::Future<Output = Result<R, ApiError>>;
}

impl<R: Message + Default> FirstAnswer<R> for Result<R, ApiError> {
    async fn or_first_answer(
        self,
        key: Option<&Key>,
        conn: &impl ConnectionTrait,
    ) -> Result<R, ApiError> {
        match self {
            Ok(answer) => Ok(answer),
            Err(refused) => match replay(key, conn).await? {
                Some(answer) => Ok(answer),
                None => Err(refused),
            },
        }
    }
}
