//! The inbox schema. Migrations are append-only: change the schema with a
//! new migration, never by editing one that has shipped.

use kit::db::create_index as index;
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(kit::idempotency::migration::Migration),
            Box::new(super::migration_log_identity::Migration),
            Box::new(super::migration_expand_contact_index::Migration),
        ]
    }
}

#[derive(DeriveMigrationName)]
struct Initial;

#[async_trait::async_trait]
impl MigrationTrait for Initial {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table("contacts")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("email"))
                .col(string("name"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("contacts_account_email")
                .table("contacts")
                .col("account_id")
                .col("email")
                .unique()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("conversations")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("subject"))
                .col(string("contact_id"))
                .col(integer("channel"))
                .col(integer("status"))
                .col(string_null("owner_id"))
                .col(integer("workspace"))
                .col(string_null("ticket_id"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .col(big_integer_null("deleted_at"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "conversations",
            "conversations_account_created",
            &["account_id", "created_at", "id"],
        )
        .await?;
        index(
            m,
            "conversations",
            "conversations_account_status",
            &["account_id", "status", "created_at"],
        )
        .await?;
        index(
            m,
            "conversations",
            "conversations_account_owner",
            &["account_id", "owner_id", "created_at"],
        )
        .await?;
        index(
            m,
            "conversations",
            "conversations_contact",
            &["contact_id", "created_at"],
        )
        .await?;
        index(m, "conversations", "conversations_ticket", &["ticket_id"]).await?;
        m.create_table(
            Table::create()
                .table("messages")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("conversation_id"))
                .col(integer("direction"))
                .col(string("author"))
                .col(text("body"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "messages",
            "messages_conversation",
            &["conversation_id", "created_at", "id"],
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ticket_views")
                .col(string("ticket_id").primary_key())
                .col(string("account_id"))
                .col(big_integer("version"))
                .col(blob("snapshot"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("event_cursors")
                .col(string("account_id").primary_key())
                .col(big_integer("last_sequence"))
                .col(big_integer("updated_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("outbox")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string_null("user_id"))
                .col(string_null("traceparent"))
                .col(string("request_id"))
                .col(integer("change"))
                .col(blob("snapshot"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("conversation_changes")
                .col(string("account_id"))
                .col(big_integer("sequence"))
                .col(string("conversation_id"))
                .col(integer("kind"))
                .col(blob("snapshot"))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("account_id").col("sequence"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("change_heads")
                .col(string("account_id").primary_key())
                .col(big_integer("last_sequence"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("leases")
                .col(string("name").primary_key())
                .col(string("holder"))
                .col(big_integer("expires_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("displayed_properties")
                .col(string("account_id"))
                .col(string("user_id"))
                .col(blob("properties"))
                .col(big_integer("updated_at"))
                .primary_key(Index::create().col("account_id").col("user_id"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "leases",
            "displayed_properties",
            "change_heads",
            "conversation_changes",
            "outbox",
            "event_cursors",
            "ticket_views",
            "messages",
            "conversations",
            "contacts",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
