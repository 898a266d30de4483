//! Merging tickets (R14–R16): which ticket a merged one redirects to, how
//! many merges each ticket took part in, and a record of every merge with
//! the conversations it moved, so an unmerge (R15) can undo exactly that.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        m.alter_table(
            Table::alter()
                .table("tickets")
                .add_column(string_null("merged_into"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table("tickets")
                .add_column(integer("merge_count").default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table("ticket_merges")
                .col(string("id").primary_key())
                .col(string("account_id"))
                .col(string("primary_id"))
                .col(string("secondary_id"))
                .col(big_integer("merged_at"))
                .col(big_integer("final_at"))
                // The conversations the secondary brought, one id per line.
                .col(text("conversation_ids"))
                .col(big_integer_null("unmerged_at"))
                .to_owned(),
        )
        .await?;
        kit::db::create_index(
            m,
            "ticket_merges",
            "ticket_merges_secondary",
            &["account_id", "secondary_id", "merged_at"],
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table("ticket_merges").to_owned())
            .await?;
        for column in ["merge_count", "merged_into"] {
            m.alter_table(
                Table::alter()
                    .table("tickets")
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
