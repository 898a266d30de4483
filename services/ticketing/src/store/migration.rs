//! The ticketing schema. Migrations are append-only: change the schema with
//! a new migration, never by editing one that has shipped.

use kit::db::create_index as index;
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(Initial),
            Box::new(kit::idempotency::migration::Migration),
            Box::new(super::migration_links::Migration),
            Box::new(super::migration_merge::Migration),
            Box::new(super::migration_owner_order::Migration),
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
                .table("accounts")
                .col(string("id").primary_key())
                .col(string("name"))
                .col(integer("tier"))
                .col(boolean("help_desk"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("pipelines")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("name"))
                .col(boolean("is_default"))
                .col(big_integer("created_at"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "pipelines",
            "pipelines_account",
            &["account_id", "created_at"],
        )
        .await?;
        m.create_table(
            Table::create()
                .table("stages")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("pipeline_id"))
                .col(string("name"))
                .col(boolean("is_closed"))
                .col(integer("position"))
                .to_owned(),
        )
        .await?;
        index(m, "stages", "stages_pipeline", &["pipeline_id", "position"]).await?;
        m.create_table(
            Table::create()
                .table("tickets")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("name"))
                .col(text("description"))
                .col(string("pipeline_id"))
                .col(string("stage_id"))
                .col(integer("priority"))
                .col(string_null("owner_id"))
                .col(integer("workspace"))
                .col(string_null("contact_id"))
                .col(big_integer("created_at"))
                .col(big_integer("updated_at"))
                .col(big_integer_null("closed_at"))
                .col(big_integer_null("deleted_at"))
                .col(big_integer_null("purge_at"))
                .col(string_null("cascade_id"))
                .col(blob("properties"))
                .col(big_integer("version"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "tickets",
            "tickets_account_created",
            &["account_id", "created_at", "id"],
        )
        .await?;
        index(
            m,
            "tickets",
            "tickets_account_stage",
            &["account_id", "stage_id", "created_at"],
        )
        .await?;
        index(
            m,
            "tickets",
            "tickets_account_owner",
            &["account_id", "owner_id", "created_at"],
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ticket_conversations")
                .col(string("conversation_id").primary_key())
                .col(string("account_id"))
                .col(string_null("ticket_id"))
                .col(string_null("owner_id"))
                .col(boolean("open"))
                .col(boolean("trashed"))
                .col(big_integer("version"))
                .col(big_integer_null("linked_at"))
                .col(string_null("cascade_id"))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("property_definitions")
                .col(string("account_id"))
                .col(string("name"))
                .col(blob("definition"))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("account_id").col("name"))
                .to_owned(),
        )
        .await?;
        index(
            m,
            "ticket_conversations",
            "ticket_conversations_ticket",
            &["ticket_id", "linked_at"],
        )
        .await?;
        m.create_table(
            Table::create()
                .table("events")
                .col(string("account_id"))
                .col(big_integer("sequence"))
                .col(string_null("ticket_id"))
                .col(string_null("conversation_id"))
                .col(blob("payload"))
                .col(big_integer("created_at"))
                .primary_key(Index::create().col("account_id").col("sequence"))
                .to_owned(),
        )
        .await?;
        index(m, "events", "events_ticket", &["ticket_id", "sequence"]).await?;
        index(
            m,
            "events",
            "events_conversation",
            &["conversation_id", "sequence"],
        )
        .await?;
        m.create_table(
            Table::create()
                .table("event_heads")
                .col(string("account_id").primary_key())
                .col(big_integer("last_sequence"))
                .col(big_integer("pruned_through").default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("event_consumers")
                .col(string("consumer"))
                .col(string("account_id"))
                .col(big_integer("acked_sequence"))
                .col(big_integer("updated_at"))
                .primary_key(Index::create().col("consumer").col("account_id"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "event_consumers",
            "event_heads",
            "events",
            "property_definitions",
            "ticket_conversations",
            "tickets",
            "stages",
            "pipelines",
            "accounts",
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}
