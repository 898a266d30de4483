//! The consumer remembers, beside each cursor, when the event at it was
//! written, so that it can tell ticketing's log was restored from a backup
//! or replaced even once new events have passed the cursor's number.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("event_cursors")
                .add_column(big_integer("last_event_time").default(0))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("event_cursors")
                .drop_column("last_event_time")
                .to_owned(),
        )
        .await
    }
}
