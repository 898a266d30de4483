//! The agent's sidebar (R12) and each user's displayed ticket properties
//! (R11). Served from the inbox's own store, so it works while ticketing is
//! down; only choosing properties asks ticketing which ones exist.

use std::collections::HashSet;

use kit::{ApiError, identity::Caller, paging};
use prost::Message;
use proto::{inbox::v1 as pb, ticketing::v1 as tpb};
use sea_orm::{EntityTrait, IntoActiveModel, sea_query::OnConflict};

use crate::state::{App, from_ticketing};
use crate::{
    convert,
    store::{displayed_properties, queries, sidebar},
};

/// R11: what the details panel shows until the user chooses.
pub const DEFAULT_DISPLAYED: [(&str, &str); 5] = [
    ("name", "Name"),
    ("stage", "Stage"),
    ("priority", "Priority"),
    ("owner", "Owner"),
    ("created", "Created"),
];

pub const MAX_DISPLAYED: usize = 50;

/// The stored choice: names and labels, in order.
#[derive(Clone, PartialEq, Message)]
struct Stored {
    #[prost(message, repeated, tag = "1")]
    properties: Vec<pb::DisplayedValue>,
}

fn user(caller: &Caller) -> Result<&str, ApiError> {
    caller.user_id.as_deref().ok_or_else(|| {
        ApiError::Unauthenticated("the call names no user (metadata x-user-id)".into())
    })
}

impl App {
    pub async fn get_displayed_properties(
        &self,
        caller: &Caller,
    ) -> Result<pb::DisplayedProperties, ApiError> {
        let (choice, is_default) = self.displayed(caller).await?;
        Ok(pb::DisplayedProperties {
            user_id: user(caller)?.to_owned(),
            property_names: choice.into_iter().map(|p| p.property_name).collect(),
            is_default,
        })
    }

    /// The user's choice (names and labels), or the default.
    async fn displayed(
        &self,
        caller: &Caller,
    ) -> Result<(Vec<pb::DisplayedValue>, bool), ApiError> {
        let account_id = caller.account()?;
        let user_id = user(caller)?;
        let stored =
            displayed_properties::Entity::find_by_id((account_id.to_owned(), user_id.to_owned()))
                .one(&self.db)
                .await?;
        displayed_or_default(stored.map(|row| row.properties))
    }

    /// R11: validated against ticketing's definitions, ordered, no repeats.
    pub async fn set_displayed_properties(
        &self,
        caller: &Caller,
        names: Vec<String>,
    ) -> Result<pb::DisplayedProperties, ApiError> {
        let account_id = caller.account()?;
        let user_id = user(caller)?;
        if names.is_empty() || names.len() > MAX_DISPLAYED {
            return Err(ApiError::invalid(
                "property_names",
                format!("choose 1 to {MAX_DISPLAYED} properties"),
            ));
        }
        let definitions = self.property_labels(caller).await?;
        let mut seen = HashSet::new();
        let mut chosen = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let field = format!("property_names[{i}]");
            let label = definitions
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, label)| label.clone())
                .ok_or_else(|| {
                    ApiError::invalid(
                        &field,
                        format!("no ticket property named {}", kit::error::quote(name)),
                    )
                })?;
            if !seen.insert(name.clone()) {
                return Err(ApiError::invalid(field, "is repeated"));
            }
            chosen.push(pb::DisplayedValue {
                property_name: name.clone(),
                label,
                display_value: String::new(),
            });
        }
        let row = displayed_properties::Model {
            account_id: account_id.to_owned(),
            user_id: user_id.to_owned(),
            properties: Stored { properties: chosen }.encode_to_vec(),
            updated_at: kit::time::now_micros(),
        };
        displayed_properties::Entity::insert(row.into_active_model())
            .on_conflict(
                OnConflict::columns([
                    displayed_properties::Column::AccountId,
                    displayed_properties::Column::UserId,
                ])
                .update_columns([
                    displayed_properties::Column::Properties,
                    displayed_properties::Column::UpdatedAt,
                ])
                .to_owned(),
            )
            .exec_without_returning(&self.db)
            .await?;
        Ok(pb::DisplayedProperties {
            user_id: user_id.to_owned(),
            property_names: names,
            is_default: false,
        })
    }

    /// Every property ticketing defines for the account, with its label.
    async fn property_labels(&self, caller: &Caller) -> Result<Vec<(String, String)>, ApiError> {
        let mut labels = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = tpb::ListPropertyDefinitionsRequest {
                page_size: 1000,
                page_token,
            };
            let page = self
                .call_ticketing(caller, request, |mut c, r| async move {
                    c.list_property_definitions(r).await
                })
                .await
                .map_err(from_ticketing)?
                .into_inner();
            labels.extend(
                page.property_definitions
                    .into_iter()
                    .map(|d| (d.name, d.label)),
            );
            if page.next_page_token.is_empty() {
                return Ok(labels);
            }
            page_token = page.next_page_token;
        }
    }

    /// R12: everything the sidebar shows, in one call, from the inbox's store.
    pub async fn conversation_context(
        &self,
        caller: &Caller,
        request: &pb::GetConversationContextRequest,
    ) -> Result<pb::ConversationContext, ApiError> {
        let account_id = caller.account()?;
        let id = kit::validate::id(&request.conversation_id, "conversation_id")?;
        let page_size = paging::page_size(request.previous_page_size, "previous_page_size")?;
        let after = paging::decode_token(&request.previous_page_token, "previous_page_token")?;
        let sidebar::SidebarRows {
            conversation,
            contact,
            ticket_snapshot,
            displayed,
        } = sidebar::read(&self.db, account_id, &id, caller.user_id.as_deref())
            .await?
            .ok_or_else(|| ApiError::not_found("conversation", &id))?;
        if conversation.deleted_at.is_some() {
            return Err(super::mutate::trashed_error(&id));
        }
        let panel = match ticket_snapshot {
            Some(snapshot) => {
                let ticket = tpb::Ticket::decode(snapshot.as_slice()).map_err(|err| {
                    ApiError::internal(format!("ticket view does not decode: {err}"))
                })?;
                // The panel shows the user's choice, so it needs a user.
                user(caller)?;
                Some(panel(ticket, displayed_or_default(displayed)?.0))
            }
            None => None,
        };
        let filter = queries::ConversationFilter {
            contact_id: Some(conversation.contact_id.clone()),
            except_id: Some(conversation.id.clone()),
            ..Default::default()
        };
        let mut previous = queries::list_conversations(
            &self.db,
            account_id,
            &filter,
            after.as_ref(),
            page_size + 1,
        )
        .await?;
        let next_previous_page_token =
            paging::next_page(&mut previous, page_size, |r| paging::Cursor {
                key: r.created_at,
                id: r.id.clone(),
            });
        Ok(pb::ConversationContext {
            conversation: Some(convert::conversation_to_proto(&conversation)),
            contact: contact.as_ref().map(convert::contact_to_proto),
            ticket: panel,
            previous_conversations: previous
                .into_iter()
                .map(convert::conversation_into_proto)
                .collect(),
            next_previous_page_token,
        })
    }
}

/// The stored choice decoded, or the default (R11) when there is none.
fn displayed_or_default(
    stored: Option<Vec<u8>>,
) -> Result<(Vec<pb::DisplayedValue>, bool), ApiError> {
    match stored {
        Some(encoded) => {
            let stored = Stored::decode(encoded.as_slice()).map_err(|err| {
                ApiError::internal(format!("displayed properties do not decode: {err}"))
            })?;
            Ok((stored.properties, false))
        }
        None => Ok((
            DEFAULT_DISPLAYED
                .iter()
                .map(|(name, label)| pb::DisplayedValue {
                    property_name: (*name).to_owned(),
                    label: (*label).to_owned(),
                    display_value: String::new(),
                })
                .collect(),
            true,
        )),
    }
}

/// The ticket panel: the chosen properties with their values, and the fixed
/// card (R11).
fn panel(ticket: tpb::Ticket, choice: Vec<pb::DisplayedValue>) -> pb::TicketPanel {
    let displayed = choice
        .into_iter()
        .map(|p| pb::DisplayedValue {
            display_value: display_value(&ticket, &p.property_name),
            ..p
        })
        .collect();
    let card = pb::TicketCard {
        ticket_id: ticket.id.clone(),
        name: ticket.name.clone(),
        stage_name: ticket.stage_name.clone(),
        priority: ticket.priority,
        owner_id: ticket.owner_id.clone(),
    };
    pb::TicketPanel {
        ticket_uri: format!("tickets/{}", ticket.id),
        displayed,
        card: Some(card),
        ticket: Some(ticket),
    }
}

fn display_value(ticket: &tpb::Ticket, name: &str) -> String {
    let time = |ts: &Option<prost_types::Timestamp>| {
        ts.as_ref()
            .and_then(kit::time::from_timestamp)
            .map(kit::time::format_rfc3339)
            .unwrap_or_default()
    };
    match name {
        "name" => ticket.name.clone(),
        "description" => ticket.description.clone(),
        "pipeline" => ticket.pipeline_id.clone(),
        "stage" => ticket.stage_name.clone(),
        "priority" => match tpb::Priority::try_from(ticket.priority) {
            Ok(tpb::Priority::Unspecified) | Err(_) => String::new(),
            Ok(p) => p.as_str_name().trim_start_matches("PRIORITY_").to_owned(),
        },
        "owner" => ticket.owner_id.clone(),
        "contact" => ticket.contact_id.clone(),
        "created" => time(&ticket.create_time),
        "updated" => time(&ticket.update_time),
        "closed" => time(&ticket.close_time),
        custom => ticket
            .properties
            .get(custom)
            .map(custom_value)
            .unwrap_or_default(),
    }
}

fn custom_value(value: &tpb::PropertyValue) -> String {
    use tpb::property_value::Value;
    match &value.value {
        Some(Value::StringValue(s) | Value::DateValue(s) | Value::EnumValue(s)) => s.clone(),
        Some(Value::NumberValue(n)) => n.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        None => String::new(),
    }
}
