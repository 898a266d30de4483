//! Table shapes of the inbox database. Enums are stored as their proto
//! numbers and timestamps as microseconds since the epoch.

pub mod contact {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "contacts")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        /// Lower-cased; unique per account.
        pub email: String,
        pub name: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod conversation {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversations")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub subject: String,
        pub contact_id: String,
        pub channel: i32,
        pub status: i32,
        pub owner_id: Option<String>,
        pub workspace: i32,
        pub ticket_id: Option<String>,
        pub created_at: i64,
        pub updated_at: i64,
        pub deleted_at: Option<i64>,
        pub version: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    /// Pages of conversations are the inbox's most frequent read.
    impl kit::positional::ByPosition for Model {
        fn decode(c: &mut kit::positional::Columns<'_>) -> Result<Self, DbErr> {
            Ok(Self {
                id: c.read()?,
                account_id: c.read()?,
                subject: c.read()?,
                contact_id: c.read()?,
                channel: c.read()?,
                status: c.read()?,
                owner_id: c.read()?,
                workspace: c.read()?,
                ticket_id: c.read()?,
                created_at: c.read()?,
                updated_at: c.read()?,
                deleted_at: c.read()?,
                version: c.read()?,
            })
        }
    }
}

pub mod message {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "messages")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        pub conversation_id: String,
        pub direction: i32,
        pub author: String,
        pub body: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}

    impl kit::positional::ByPosition for Model {
        fn decode(c: &mut kit::positional::Columns<'_>) -> Result<Self, DbErr> {
            Ok(Self {
                id: c.read()?,
                account_id: c.read()?,
                conversation_id: c.read()?,
                direction: c.read()?,
                author: c.read()?,
                body: c.read()?,
                created_at: c.read()?,
            })
        }
    }
}

/// The inbox's read model of tickets, kept from ticketing's events so the
/// sidebar works while ticketing is down (R12).
pub mod ticket_view {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "ticket_views")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub ticket_id: String,
        pub account_id: String,
        /// The ticket's version: an older snapshot never overwrites a newer.
        pub version: i64,
        /// The encoded `ticketing.v1.Ticket`.
        pub snapshot: Vec<u8>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// How far the inbox has applied each account's event log. Advanced in the
/// same transaction as the event's effect.
pub mod event_cursor {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "event_cursors")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        pub last_sequence: i64,
        pub updated_at: i64,
        /// When ticketing wrote the event at `last_sequence` (µs; 0 when
        /// unknown): a log restored or replaced since has another event
        /// there, or none (LOG_DIVERGED).
        pub last_event_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Conversation facts waiting to be reported to ticketing, written in the
/// same transaction as the change they report: they survive ticketing being
/// down and a crash of the inbox.
pub mod outbox {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "outbox")]
    pub struct Model {
        /// A UUIDv7: rows are delivered in id order, which is creation order.
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub account_id: String,
        /// The user who made the change, passed on to ticketing.
        pub user_id: Option<String>,
        /// The W3C `traceparent` of the call that made the change.
        pub traceparent: Option<String>,
        /// Idempotency key of the report: redelivery has one effect.
        pub request_id: String,
        /// The `ticketing.v1.ConversationChange` number.
        pub change: i32,
        /// The encoded `ticketing.v1.ConversationSnapshot` after the change.
        pub snapshot: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Every change of a conversation, for WatchConversations; one gap-free
/// sequence per account, like ticketing's event log.
pub mod conversation_change {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "conversation_changes")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub sequence: i64,
        pub conversation_id: String,
        pub kind: i32,
        /// The encoded `inbox.v1.Conversation` after the change.
        pub snapshot: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The last change sequence taken in each account (see `conversation_change`).
pub mod change_head {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "change_heads")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        pub last_sequence: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Each user's choice of ticket properties for the details panel (R11).
pub mod displayed_properties {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "displayed_properties")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub account_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub user_id: String,
        /// The encoded `inbox.v1.DisplayedValue` list (names and labels).
        pub properties: Vec<u8>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Who runs a singleton role (the event consumer, the outbox deliverer)
/// among inbox replicas sharing the database, until when.
pub mod lease {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leases")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub holder: String,
        pub expires_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

#[cfg(test)]
mod tests {
    use kit::positional::Positional;
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel};

    use super::{conversation, message};

    /// The positional decoders list the fields in the order of the
    /// entity's select; reading the same rows both ways proves it, with the
    /// nullable columns both set and NULL.
    #[tokio::test]
    async fn positional_decoding_reads_what_sea_orm_reads() {
        let scratch = crate::store::Scratch::open("positional").await;
        let db = scratch.db.clone();
        let assigned = conversation::Model {
            id: "c1".into(),
            account_id: "a".into(),
            subject: "Subject".into(),
            contact_id: "k".into(),
            channel: 2,
            status: 3,
            owner_id: Some("agent".into()),
            workspace: 4,
            ticket_id: Some("t".into()),
            created_at: 5,
            updated_at: 6,
            deleted_at: Some(7),
            version: 8,
        };
        let unassigned = conversation::Model {
            id: "c2".into(),
            owner_id: None,
            ticket_id: None,
            deleted_at: None,
            ..assigned.clone()
        };
        for row in [&assigned, &unassigned] {
            row.clone()
                .into_active_model()
                .insert(&db)
                .await
                .expect("insert");
        }
        let by_name = conversation::Entity::find().all(&db).await.expect("read");
        let by_position: Vec<_> = conversation::Entity::find()
            .into_model::<Positional<conversation::Model>>()
            .all(&db)
            .await
            .expect("read")
            .into_iter()
            .map(|row| row.0)
            .collect();
        assert_eq!(by_position, by_name);
        assert_eq!(by_position.len(), 2);

        let note = message::Model {
            id: "m".into(),
            account_id: "a".into(),
            conversation_id: "c1".into(),
            direction: 1,
            author: "agent".into(),
            body: "Body".into(),
            created_at: 9,
        };
        note.clone()
            .into_active_model()
            .insert(&db)
            .await
            .expect("insert");
        let by_position = message::Entity::find()
            .into_model::<Positional<message::Model>>()
            .one(&db)
            .await
            .expect("read")
            .map(|row| row.0);
        assert_eq!(by_position, Some(note));
    }
}
