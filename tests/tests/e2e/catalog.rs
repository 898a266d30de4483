//! Pipelines and property definitions: custom pipelines with open and closed
//! stages (R5 holds in them too), typed custom property values.

use e2e::*;
use proto::ticketing::v1 as tpb;
use tonic::Code;

fn definition(
    name: &str,
    kind: tpb::PropertyType,
    options: &[&str],
) -> tpb::CreatePropertyDefinitionRequest {
    tpb::CreatePropertyDefinitionRequest {
        request_id: String::new(),
        property_definition: Some(tpb::PropertyDefinition {
            name: name.into(),
            label: name.to_uppercase(),
            r#type: kind as i32,
            options: options.iter().map(|o| (*o).to_owned()).collect(),
            built_in: false,
        }),
    }
}

fn value(value: tpb::property_value::Value) -> tpb::PropertyValue {
    tpb::PropertyValue { value: Some(value) }
}

#[tokio::test]
async fn custom_properties_are_typed_and_validated_against_their_definitions() {
    use tpb::property_value::Value;
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut ticketing = stack.ticketing().await;
    macro_rules! user {
        ($message:expr) => {
            as_user(&account, "admin", $message)
        };
    }
    for (name, kind, options) in [
        ("sla", tpb::PropertyType::Enum, &["gold", "silver"][..]),
        ("seats", tpb::PropertyType::Number, &[][..]),
        ("renewal", tpb::PropertyType::Date, &[][..]),
        ("vip", tpb::PropertyType::Bool, &[][..]),
        ("notes", tpb::PropertyType::String, &[][..]),
    ] {
        ticketing
            .create_property_definition(user!(definition(name, kind, options)))
            .await
            .expect(name);
    }
    for (request, field) in [
        (
            definition("tier", tpb::PropertyType::Enum, &[]),
            "property_definition.options",
        ),
        (
            definition("Tier", tpb::PropertyType::String, &[]),
            "property_definition.name",
        ),
        (
            definition("stage", tpb::PropertyType::String, &[]),
            "property_definition.name",
        ),
        (
            definition("x", tpb::PropertyType::Unspecified, &[]),
            "property_definition.type",
        ),
        (
            definition("y", tpb::PropertyType::Bool, &["a"]),
            "property_definition.options",
        ),
    ] {
        let refused = ticketing
            .create_property_definition(user!(request))
            .await
            .expect_err(field);
        assert_eq!(bad_field(&refused), field, "{refused:?}");
    }
    let again = ticketing
        .create_property_definition(user!(definition("sla", tpb::PropertyType::String, &[])))
        .await
        .expect_err("defined twice");
    assert_eq!(again.code(), Code::AlreadyExists);
    let listed = ticketing
        .list_property_definitions(user!(tpb::ListPropertyDefinitionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .property_definitions;
    assert!(listed.iter().any(|d| d.name == "stage" && d.built_in));
    assert_eq!(listed.iter().filter(|d| !d.built_in).count(), 5);

    let create = |properties: Vec<(&str, tpb::PropertyValue)>| tpb::CreateTicketRequest {
        ticket: Some(tpb::Ticket {
            name: "Typed".into(),
            properties: properties
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    };
    for (properties, field) in [
        (
            vec![("sla", value(Value::EnumValue("bronze".into())))],
            "ticket.properties[sla]",
        ),
        (
            vec![("seats", value(Value::StringValue("ten".into())))],
            "ticket.properties[seats]",
        ),
        (
            vec![("renewal", value(Value::DateValue("2025-02-30".into())))],
            "ticket.properties[renewal]",
        ),
        (
            vec![("colour", value(Value::StringValue("red".into())))],
            "ticket.properties[colour]",
        ),
    ] {
        let refused = ticketing
            .create_ticket(user!(create(properties)))
            .await
            .expect_err(field);
        assert_eq!(bad_field(&refused), field, "{refused:?}");
    }
    let ticket = ticketing
        .create_ticket(user!(create(vec![
            ("sla", value(Value::EnumValue("gold".into()))),
            ("seats", value(Value::NumberValue(12.0))),
            ("renewal", value(Value::DateValue("2027-01-31".into()))),
            ("vip", value(Value::BoolValue(true))),
        ])))
        .await
        .expect("valid values")
        .into_inner();
    assert_eq!(ticket.properties.len(), 4);

    // properties.<name> sets one value, or clears it when the request has none.
    let update =
        |paths: &[&str], properties: Vec<(&str, tpb::PropertyValue)>| tpb::UpdateTicketRequest {
            ticket: Some(tpb::Ticket {
                id: ticket.id.clone(),
                properties: properties
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: paths.iter().map(|p| (*p).to_owned()).collect(),
            }),
            ..Default::default()
        };
    let updated = ticketing
        .update_ticket(user!(update(
            &["properties.sla", "properties.vip"],
            vec![("sla", value(Value::EnumValue("silver".into())),)]
        )))
        .await
        .expect("update properties")
        .into_inner();
    assert_eq!(
        updated.properties.get("sla"),
        Some(&value(Value::EnumValue("silver".into())))
    );
    assert!(!updated.properties.contains_key("vip"));
    assert_eq!(updated.properties.len(), 3);
    let refused = ticketing
        .update_ticket(user!(update(
            &["properties.seats"],
            vec![("seats", value(Value::BoolValue(true)))]
        )))
        .await
        .expect_err("wrong type");
    assert_eq!(bad_field(&refused), "ticket.properties[seats]");
    stack.stop().await;
}

#[tokio::test]
async fn r5_holds_in_custom_pipelines_and_tickets_filter_by_pipeline() {
    let stack = Stack::start().await;
    let account = account(&stack, tpb::Tier::Starter).await;
    let mut ticketing = stack.ticketing().await;
    let stage = |name: &str, is_closed: bool| tpb::Stage {
        id: String::new(),
        name: name.into(),
        is_closed,
    };
    let refused = ticketing
        .create_pipeline(as_user(
            &account,
            "admin",
            tpb::CreatePipelineRequest {
                request_id: String::new(),
                pipeline: Some(tpb::Pipeline {
                    name: "Bugs".into(),
                    stages: vec![stage("Open", false), stage("open", true)],
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect_err("repeated stage");
    assert_eq!(bad_field(&refused), "pipeline.stages[1].name");
    let bugs = ticketing
        .create_pipeline(as_user(
            &account,
            "admin",
            tpb::CreatePipelineRequest {
                request_id: String::new(),
                pipeline: Some(tpb::Pipeline {
                    name: "Bugs".into(),
                    stages: vec![
                        stage("Triage", false),
                        stage("Fixed", true),
                        stage("Won't fix", true),
                    ],
                    ..Default::default()
                }),
            },
        ))
        .await
        .expect("pipeline")
        .into_inner();
    assert!(!bugs.is_default);
    let pipelines = ticketing
        .list_pipelines(as_user(&account, "a", tpb::ListPipelinesRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .pipelines;
    assert_eq!(pipelines.len(), 2);

    let conversation = conversation(&stack, &account, "Crash", "bug@example.com").await;
    let ticket = ticket_for(&stack, &account, &conversation.id).await;
    let fixed = &bugs.stages[1].id;
    let moved = ticketing
        .update_ticket(as_user(&account, "a", move_to_stage(&ticket.id, fixed, "")))
        .await
        .expect("move into the bug pipeline")
        .into_inner();
    assert_eq!(moved.pipeline_id, bugs.id);
    assert!(moved.closed);
    conversation_becomes(
        &stack,
        &account,
        &conversation.id,
        "closed by R5",
        is_closed,
    )
    .await;
    let in_bugs = ticketing
        .list_tickets(as_user(
            &account,
            "a",
            tpb::ListTicketsRequest {
                pipeline_id: bugs.id.clone(),
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .tickets;
    assert_eq!(in_bugs.len(), 1);
    stack.stop().await;
}
