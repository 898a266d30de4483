//! Conversation links keyed per account. The first schema keyed
//! `ticket_conversations` by conversation id alone; conversation ids come
//! from callers, so one account could collide with another's row and learn
//! from the answer that it exists (and its ticket). The table is rebuilt
//! with the key (account_id, conversation_id): SQLite cannot change a
//! primary key in place.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const TABLE: &str = "ticket_conversations";
const COLUMNS: &str = "account_id, conversation_id, ticket_id, owner_id, open, trashed, version, linked_at, cascade_id";

fn table(name: &str, key: &[&str]) -> TableCreateStatement {
    let mut primary = Index::create();
    for column in key {
        primary.col((*column).to_owned());
    }
    Table::create()
        .table(name.to_owned())
        .col(string("account_id"))
        .col(string("conversation_id"))
        .col(string_null("ticket_id"))
        .col(string_null("owner_id"))
        .col(boolean("open"))
        .col(boolean("trashed"))
        .col(big_integer("version"))
        .col(big_integer_null("linked_at"))
        .col(string_null("cascade_id"))
        .primary_key(&mut primary)
        .to_owned()
}

/// Copies `TABLE` into a table `rebuilt` with `key`, then puts it in
/// `TABLE`'s place with its index. PostgreSQL keeps the primary key's
/// index name (`<rebuilt>_pkey`) through the rename, so `up` and `down`
/// use different names.
async fn rebuild(m: &SchemaManager<'_>, rebuilt: &str, key: &[&str]) -> Result<(), DbErr> {
    m.create_table(table(rebuilt, key)).await?;
    m.get_connection()
        .execute_unprepared(&format!(
            "INSERT INTO {rebuilt} ({COLUMNS}) SELECT {COLUMNS} FROM {TABLE}"
        ))
        .await?;
    m.drop_table(Table::drop().table(TABLE).to_owned()).await?;
    m.rename_table(Table::rename().table(rebuilt.to_owned(), TABLE).to_owned())
        .await?;
    kit::db::create_index(
        m,
        TABLE,
        "ticket_conversations_ticket",
        &["ticket_id", "linked_at"],
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rebuild(
            m,
            "ticket_conversations_per_account",
            &["account_id", "conversation_id"],
        )
        .await
    }

    /// Fails if two accounts hold the same conversation id, which the old
    /// key cannot represent.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        rebuild(m, "ticket_conversations_global", &["conversation_id"]).await
    }
}
