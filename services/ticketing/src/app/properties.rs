//! Property definitions, and validation of custom values against them.

use std::collections::BTreeMap;

use kit::{ApiError, idempotency::Key, paging};
use prost::Message;
use proto::ticketing::v1 as pb;
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, QueryOrder,
};

use super::App;
use crate::{
    convert,
    domain::properties::{self, BUILT_IN},
    store::property_definition,
};

/// Validates a new definition's own fields.
pub fn check_definition(definition: &pb::PropertyDefinition) -> Result<(), ApiError> {
    let field = "property_definition";
    if !properties::is_valid_name(&definition.name) {
        return Err(ApiError::invalid(
            format!("{field}.name"),
            "must match [a-z][a-z0-9_]{0,62}",
        ));
    }
    if properties::is_built_in(&definition.name) {
        return Err(ApiError::invalid(
            format!("{field}.name"),
            "is a built-in property",
        ));
    }
    kit::validate::required(
        &definition.label,
        &format!("{field}.label"),
        kit::validate::MAX_NAME_LEN,
    )?;
    let kind = match pb::PropertyType::try_from(definition.r#type) {
        Ok(pb::PropertyType::Unspecified) => {
            return Err(ApiError::invalid(format!("{field}.type"), "is required"));
        }
        Ok(kind) => kind,
        Err(_) => {
            return Err(ApiError::invalid(
                format!("{field}.type"),
                "is not a known type",
            ));
        }
    };
    let options = &definition.options;
    if kind == pb::PropertyType::Enum {
        if options.is_empty() || options.len() > properties::MAX_OPTIONS {
            return Err(ApiError::invalid(
                format!("{field}.options"),
                format!("an enum needs 1 to {} options", properties::MAX_OPTIONS),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, option) in options.iter().enumerate() {
            kit::validate::required(
                option,
                &format!("{field}.options[{i}]"),
                kit::validate::MAX_NAME_LEN,
            )?;
            if !seen.insert(option) {
                return Err(ApiError::invalid(
                    format!("{field}.options[{i}]"),
                    "is repeated",
                ));
            }
        }
    } else if !options.is_empty() {
        return Err(ApiError::invalid(
            format!("{field}.options"),
            "only enum properties have options",
        ));
    }
    Ok(())
}

fn built_in_definitions() -> impl Iterator<Item = pb::PropertyDefinition> {
    BUILT_IN.iter().map(|(name, label)| pb::PropertyDefinition {
        name: (*name).to_owned(),
        label: (*label).to_owned(),
        r#type: pb::PropertyType::Unspecified as i32,
        options: Vec::new(),
        built_in: true,
    })
}

impl App {
    pub async fn create_property_definition(
        &self,
        account_id: &str,
        definition: pb::PropertyDefinition,
        key: Option<Key>,
    ) -> Result<pb::PropertyDefinition, ApiError> {
        check_definition(&definition)?;
        let txn = self.begin("create_property_definition").await?;
        if let Some(answer) = kit::idempotency::replay(key.as_ref(), &txn).await? {
            return Ok(answer);
        }
        let exists = property_definition::Entity::find_by_id((
            account_id.to_owned(),
            definition.name.clone(),
        ))
        .one(&txn)
        .await?;
        if exists.is_some() {
            return Err(ApiError::AlreadyExists {
                reason: "PROPERTY_EXISTS",
                message: format!("property {} is already defined", definition.name),
                existing_id: definition.name,
            });
        }
        let answer = pb::PropertyDefinition {
            built_in: false,
            ..definition
        };
        let row = property_definition::Model {
            account_id: account_id.to_owned(),
            name: answer.name.clone(),
            definition: answer.encode_to_vec(),
            created_at: kit::time::now_micros(),
        };
        let inserted = property_definition::Entity::insert(row.into_active_model())
            .exec(&txn)
            .await;
        match inserted {
            Err(err) if kit::db::is_unique_violation(&err) => {
                return Err(ApiError::AlreadyExists {
                    reason: "PROPERTY_EXISTS",
                    message: format!("property {} is already defined", answer.name),
                    existing_id: answer.name,
                });
            }
            other => other?,
        };
        kit::idempotency::record(key.as_ref(), &txn, &answer).await?;
        txn.commit().await?;
        Ok(answer)
    }

    /// Built-in definitions first (on the first page), then custom ones by name.
    pub async fn list_property_definitions(
        &self,
        account_id: &str,
        page_size: u64,
        after: Option<paging::Cursor>,
    ) -> Result<pb::ListPropertyDefinitionsResponse, ApiError> {
        let mut query = property_definition::Entity::find()
            .filter(property_definition::Column::AccountId.eq(account_id));
        if let Some(cursor) = &after {
            query = query.filter(property_definition::Column::Name.gt(cursor.id.clone()));
        }
        let query = query.order_by_asc(property_definition::Column::Name);
        let mut rows: Vec<property_definition::Model> =
            kit::rows::at_most(&self.db, query, page_size + 1).await?;
        let next_page_token = paging::next_page(&mut rows, page_size, |r| paging::Cursor {
            key: 0,
            id: r.name.clone(),
        });
        let mut definitions: Vec<pb::PropertyDefinition> = if after.is_none() {
            built_in_definitions().collect()
        } else {
            Vec::new()
        };
        for row in rows {
            definitions.push(decode_definition(&row)?);
        }
        Ok(pb::ListPropertyDefinitionsResponse {
            property_definitions: definitions,
            next_page_token,
        })
    }

    /// Checks custom values against the account's definitions.
    pub(crate) async fn checked_properties(
        &self,
        conn: &impl ConnectionTrait,
        account_id: &str,
        values: BTreeMap<String, pb::PropertyValue>,
    ) -> Result<BTreeMap<String, pb::PropertyValue>, ApiError> {
        if values.is_empty() {
            return Ok(values);
        }
        let definitions: BTreeMap<String, pb::PropertyDefinition> =
            property_definition::Entity::find()
                .filter(property_definition::Column::AccountId.eq(account_id))
                .filter(property_definition::Column::Name.is_in(values.keys().cloned()))
                .all(conn)
                .await?
                .iter()
                .map(|row| decode_definition(row).map(|d| (d.name.clone(), d)))
                .collect::<Result<_, _>>()?;
        for (name, value) in &values {
            let field = format!("ticket.properties[{name}]");
            let definition = definitions.get(name).ok_or_else(|| {
                ApiError::invalid(
                    &field,
                    format!("no custom property named {}", kit::error::quote(name)),
                )
            })?;
            let kind = convert::property_kind(definition)
                .ok_or_else(|| ApiError::internal(format!("property {name} has no type")))?;
            let value = convert::property_value(value, &field)?;
            if let Some(reason) = properties::check_value(&kind, &value) {
                return Err(ApiError::invalid(field, reason));
            }
        }
        Ok(values)
    }
}

fn decode_definition(row: &property_definition::Model) -> Result<pb::PropertyDefinition, ApiError> {
    pb::PropertyDefinition::decode(row.definition.as_slice())
        .map_err(|err| ApiError::internal(format!("property {} does not decode: {err}", row.name)))
}
