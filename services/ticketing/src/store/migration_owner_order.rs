//! R4 across conversations: each ticket remembers the inbox's change
//! sequence of the last owner change it applied, so that an older report
//! from another of its conversations, delivered late, changes nothing.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tickets")
                .add_column(big_integer("owner_sequence").default(0))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table("tickets")
                .drop_column("owner_sequence")
                .to_owned(),
        )
        .await
    }
}
