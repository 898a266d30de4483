//! Table shapes of the ticketing database. Enums are stored as their proto
//! numbers and timestamps as microseconds since the epoch (see `kit::time`).

pub mod account {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "accounts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub name: String,
        pub tier: i32,
        /// R10, decided once at creation from tier and creation date.
        pub help_desk: bool,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pipeline {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pipelines")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub name: String,
        pub is_default: bool,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod stage {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "stages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub pipeline_id: String,
        pub name: String,
        pub is_closed: bool,
        pub position: i32,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod ticket {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tickets")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub name: String,
        pub description: String,
        pub pipeline_id: String,
        pub stage_id: String,
        pub priority: i32,
        pub owner_id: Option<String>,
        pub workspace: i32,
        pub contact_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub closed_at: Option<i64>,
        pub deleted_at: Option<i64>,
        pub purge_at: Option<i64>,
        pub cascade_id: Option<String>,
        /// The encoded `ticketing.v1.PropertyValues`.
        pub properties: Vec<u8>,
        pub version: i64,
        /// Set while the ticket is merged into that one (R14): read-only.
        pub merged_into: Option<String>,
        /// How many merges the ticket took part in, either side (R16 cap).
        pub merge_count: i32,
        /// The inbox's change sequence of the last owner report applied
        /// (R4): an older one, from any conversation, changes nothing.
        pub owner_sequence: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What ticketing knows of a conversation: the facts the inbox reported
/// (owner, open, trashed, at the inbox's version) and its ticket. A row
/// exists once the conversation was reported or linked. `ticket_id` is set
/// once, by a guarded `UPDATE … WHERE ticket_id IS NULL`, which is what makes
/// R2 hold under concurrency.
pub mod ticket_conversation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_conversations")]
    pub struct Model {
        /// Keyed per account (migration_links): conversation ids come from
        /// callers, and one account's must never collide with another's.
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub conversation_id: String,
        pub ticket_id: Option<String>,
        pub owner_id: Option<String>,
        pub open: bool,
        pub trashed: bool,
        /// The inbox's version of the facts above.
        pub version: i64,
        pub linked_at: Option<i64>,
        /// The trash cascade the conversation went with (R8, R9).
        pub cascade_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// One merge (R14) and what it moved, so that an unmerge (R15) can undo
/// exactly that within `final_at`.
pub mod ticket_merge {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_merges")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub primary_id: String,
        pub secondary_id: String,
        pub merged_at: i64,
        /// After this instant the merge can no longer be undone.
        pub final_at: i64,
        /// The conversations the secondary brought, one id per line.
        pub conversation_ids: String,
        pub unmerged_at: Option<i64>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Custom property definitions of an account (built-ins are not stored).
pub mod property_definition {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "property_definitions")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The encoded `ticketing.v1.PropertyDefinition`.
        pub definition: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The durable event log (SPEC section 5), one gap-free sequence per account.
pub mod event {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "events")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub ticket_id: Option<String>,
        pub conversation_id: Option<String>,
        /// The encoded `ticketing.v1.Event`, without its sequence.
        pub payload: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The last sequence number taken in each account. Updating this row is the
/// last statement of every writing transaction: its row lock orders commits,
/// so sequence numbers become visible in increasing order.
pub mod event_head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        pub last_sequence: i64,
        /// Events up to here were pruned; a cursor below it has expired.
        pub pruned_through: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How far each durable consumer acknowledged each account's events.
pub mod event_consumer {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_consumers")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub consumer: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        pub acked_sequence: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
