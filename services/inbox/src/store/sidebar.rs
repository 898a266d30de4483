//! The sidebar's point reads (R12) in one statement: the conversation with
//! its contact, its ticket's view and the caller's displayed properties.
//! Read one by one, each of the four costs a round trip to the database and
//! another when sqlx checks the connection on its way back to the pool; the
//! sidebar is opened with every conversation an agent looks at.

use kit::positional::{ByPosition, Columns};
use sea_orm::{
    ConnectionTrait, DbErr, Iden, Iterable,
    sea_query::{Condition, Expr, ExprTrait, Query},
};

use super::entities::{contact, conversation, displayed_properties, ticket_view};

/// What the sidebar reads from its own store about one conversation.
pub struct SidebarRows {
    pub conversation: conversation::Model,
    pub contact: Option<contact::Model>,
    /// The encoded ticket, if the conversation has one the inbox has seen.
    pub ticket_snapshot: Option<Vec<u8>>,
    /// The user's stored choice of displayed properties, if any.
    pub displayed: Option<Vec<u8>>,
}

pub async fn read(
    conn: &impl ConnectionTrait,
    account_id: &str,
    conversation_id: &str,
    user_id: Option<&str>,
) -> Result<Option<SidebarRows>, DbErr> {
    use conversation::{Column as C, Entity as Conversation};
    let mut select = Query::select();
    select
        .columns(conversation::Column::iter().map(|c| (Conversation, c)))
        .columns(contact::Column::iter().map(|c| (contact::Entity, c)))
        .column((ticket_view::Entity, ticket_view::Column::Snapshot))
        .column((
            displayed_properties::Entity,
            displayed_properties::Column::Properties,
        ))
        .from(Conversation)
        .left_join(
            contact::Entity,
            of_its_account(
                contact::Entity,
                contact::Column::AccountId,
                Expr::col((contact::Entity, contact::Column::Id))
                    .equals((Conversation, C::ContactId)),
            ),
        )
        .left_join(
            ticket_view::Entity,
            of_its_account(
                ticket_view::Entity,
                ticket_view::Column::AccountId,
                Expr::col((ticket_view::Entity, ticket_view::Column::TicketId))
                    .equals((Conversation, C::TicketId)),
            ),
        )
        .left_join(
            displayed_properties::Entity,
            of_its_account(
                displayed_properties::Entity,
                displayed_properties::Column::AccountId,
                match user_id {
                    Some(user_id) => Expr::col((
                        displayed_properties::Entity,
                        displayed_properties::Column::UserId,
                    ))
                    .eq(user_id),
                    // A call that names no user has no choice to read.
                    None => Expr::value(false),
                },
            ),
        )
        .and_where(Expr::col((Conversation, C::AccountId)).eq(account_id))
        .and_where(Expr::col((Conversation, C::Id)).eq(conversation_id));
    let statement = conn.get_database_backend().build(&select);
    let Some(row) = conn.query_one_raw(statement).await? else {
        return Ok(None);
    };
    let mut columns = Columns::of(&row);
    Ok(Some(SidebarRows {
        conversation: conversation::Model::decode(&mut columns)?,
        contact: optional_contact(&mut columns)?,
        ticket_snapshot: columns.read()?,
        displayed: columns.read()?,
    }))
}

/// A joined row of the conversation's own account that also meets `on`.
fn of_its_account<T, A>(table: T, account: A, on: Expr) -> Condition
where
    T: Iden + Copy + 'static,
    A: Iden + 'static,
{
    Condition::all()
        .add(
            Expr::col((table, account))
                .equals((conversation::Entity, conversation::Column::AccountId)),
        )
        .add(on)
}

/// The contact's columns, all NULL when the join found none.
fn optional_contact(c: &mut Columns<'_>) -> Result<Option<contact::Model>, DbErr> {
    let id: Option<String> = c.read()?;
    let account_id: Option<String> = c.read()?;
    let email: Option<String> = c.read()?;
    let name: Option<String> = c.read()?;
    let created_at: Option<i64> = c.read()?;
    Ok(match (id, account_id, email, name, created_at) {
        (Some(id), Some(account_id), Some(email), Some(name), Some(created_at)) => {
            Some(contact::Model {
                id,
                account_id,
                email,
                name,
                created_at,
            })
        }
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveModelTrait, IntoActiveModel};

    use super::*;

    /// Each part comes back as it was written, the joined rows are those
    /// of the conversation's account and of the asking user, and a part
    /// that is missing comes back as none rather than as an error.
    #[tokio::test]
    async fn one_statement_reads_each_part_of_the_sidebar() {
        let scratch = crate::store::Scratch::open("sidebar").await;
        let db = scratch.db.clone();
        let contact = contact::Model {
            id: "k".into(),
            account_id: "a".into(),
            email: "k@example.com".into(),
            name: "Kay".into(),
            created_at: 1,
        };
        let ticketed = conversation::Model {
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
            deleted_at: None,
            version: 8,
        };
        let bare = conversation::Model {
            id: "c2".into(),
            contact_id: "nobody".into(),
            ticket_id: None,
            owner_id: None,
            ..ticketed.clone()
        };
        let view = |account: &str, snapshot: &[u8]| ticket_view::Model {
            ticket_id: "t".into(),
            account_id: account.into(),
            version: 1,
            snapshot: snapshot.to_vec(),
            updated_at: 1,
        };
        let choice = |account: &str, user: &str, properties: &[u8]| displayed_properties::Model {
            account_id: account.into(),
            user_id: user.into(),
            properties: properties.to_vec(),
            updated_at: 1,
        };
        contact
            .clone()
            .into_active_model()
            .insert(&db)
            .await
            .expect("contact");
        for row in [&ticketed, &bare] {
            row.clone()
                .into_active_model()
                .insert(&db)
                .await
                .expect("conversation");
        }
        view("a", b"ticket")
            .into_active_model()
            .insert(&db)
            .await
            .expect("view");
        for row in [
            choice("a", "u", b"mine"),
            choice("a", "other", b"theirs"),
            choice("b", "u", b"another account"),
        ] {
            row.into_active_model().insert(&db).await.expect("choice");
        }

        let full = read(&db, "a", "c1", Some("u"))
            .await
            .expect("read")
            .expect("found");
        assert_eq!(full.conversation, ticketed);
        assert_eq!(full.contact, Some(contact));
        assert_eq!(full.ticket_snapshot.as_deref(), Some(&b"ticket"[..]));
        assert_eq!(full.displayed.as_deref(), Some(&b"mine"[..]));

        let sparse = read(&db, "a", "c2", Some("nobody-chose"))
            .await
            .expect("read")
            .expect("found");
        assert_eq!(sparse.conversation, bare);
        assert_eq!(sparse.contact, None);
        assert_eq!(sparse.ticket_snapshot, None);
        assert_eq!(sparse.displayed, None);

        let anonymous = read(&db, "a", "c1", None)
            .await
            .expect("read")
            .expect("found");
        assert_eq!(anonymous.displayed, None);
        assert!(
            read(&db, "b", "c1", Some("u"))
                .await
                .expect("read")
                .is_none()
        );
    }
}
