//! How batches of events become statements: rounds, links, purges and the
//! newest snapshots, on hand-made batches.

use super::*;

fn directive(account: &str, conversation: &str, action: Action, ticket: &str) -> tpb::Event {
    tpb::Event {
        account_id: account.into(),
        payload: Some(tpb::event::Payload::ConversationDirective(
            tpb::ConversationDirective {
                conversation_id: conversation.into(),
                ticket_id: ticket.into(),
                action: action as i32,
                ..Default::default()
            },
        )),
        ..Default::default()
    }
}

fn snapshot(
    ticket: &str,
    version: i64,
    conversations: &[&str],
    kind: tpb::TicketChangeKind,
    changed: &[&str],
) -> tpb::Event {
    tpb::Event {
        account_id: "a".into(),
        payload: Some(tpb::event::Payload::TicketChanged(tpb::TicketChanged {
            kind: kind as i32,
            changed_fields: changed.iter().map(|f| (*f).to_owned()).collect(),
            ticket: Some(tpb::Ticket {
                id: ticket.into(),
                account_id: "a".into(),
                version,
                conversation_ids: conversations.iter().map(|c| (*c).to_owned()).collect(),
                ..Default::default()
            }),
        })),
        ..Default::default()
    }
}

fn apply<'e>(action: Action, ticket: &'e str, ids: &[&'e str]) -> Step<'e> {
    Step::Apply {
        account_id: "a",
        action: action as i32,
        ticket_id: ticket,
        conversation_ids: ids.to_vec(),
    }
}

fn plan(events: &[tpb::Event]) -> Vec<Step<'_>> {
    let events: Vec<&tpb::Event> = events.iter().collect();
    steps(&events, &[])
}

#[test]
fn closing_many_tickets_is_one_statement() {
    // R5: three tickets closing, each with its conversations.
    let events: Vec<tpb::Event> = ["c1", "c2", "c3", "c4", "c5", "c6"]
        .iter()
        .map(|c| directive("a", c, Action::Close, "t"))
        .collect();
    assert_eq!(
        plan(&events),
        vec![apply(
            Action::Close,
            "",
            &["c1", "c2", "c3", "c4", "c5", "c6"]
        )]
    );
}

#[test]
fn a_conversation_sees_actions_that_do_not_commute_in_stream_order() {
    let events = [
        directive("a", "c1", Action::Close, "t"),
        directive("a", "c2", Action::Close, "u"),
        directive("a", "c1", Action::Reopen, "t"),
        directive("a", "c3", Action::Close, "v"),
        directive("a", "c1", Action::Close, "t"),
    ];
    assert_eq!(
        plan(&events),
        vec![
            apply(Action::Close, "", &["c1", "c2"]),
            apply(Action::Reopen, "", &["c1"]),
            apply(Action::Close, "", &["c3"]),
            apply(Action::Close, "", &["c1"]),
        ]
    );
}

#[test]
fn actions_on_different_columns_share_a_round() {
    // R8: a ticket trashed while closing; a link and a move beside them.
    let events = [
        directive("a", "c1", Action::Close, "t"),
        directive("a", "c1", Action::Trash, "t"),
        directive("a", "c2", Action::LinkTicket, "t"),
        directive("a", "c2", Action::MoveToHelpDesk, "t"),
        directive("a", "c2", Action::Close, "t"),
        directive("a", "c1", Action::Close, "t"),
    ];
    assert_eq!(
        plan(&events),
        vec![
            apply(Action::Close, "", &["c1", "c2"]),
            apply(Action::Trash, "", &["c1"]),
            apply(Action::LinkTicket, "t", &["c2"]),
            apply(Action::MoveToHelpDesk, "", &["c2"]),
        ]
    );
}

#[test]
fn a_reopen_after_a_trash_waits_for_it() {
    // R6 and R9: a reopen does not apply to a trashed conversation.
    let events = [
        directive("a", "c1", Action::Trash, "t"),
        directive("a", "c1", Action::Reopen, "t"),
        directive("a", "c1", Action::Restore, "t"),
    ];
    assert_eq!(
        plan(&events),
        vec![
            apply(Action::Trash, "", &["c1"]),
            apply(Action::Reopen, "", &["c1"]),
            apply(Action::Restore, "", &["c1"]),
        ]
    );
}

#[test]
fn purges_stand_alone_and_accounts_never_share_a_statement() {
    let events = [
        directive("a", "c1", Action::Close, "t"),
        directive("b", "c9", Action::Close, "u"),
        directive("a", "c2", Action::Purge, "t"),
        directive("a", "c3", Action::Close, "t"),
    ];
    assert_eq!(
        plan(&events),
        vec![
            apply(Action::Close, "", &["c1"]),
            Step::Apply {
                account_id: "b",
                action: Action::Close as i32,
                ticket_id: "",
                conversation_ids: vec!["c9"],
            },
            Step::Purge {
                account_id: "a",
                conversation_id: "c2"
            },
            apply(Action::Close, "", &["c3"]),
        ]
    );
}

#[test]
fn links_to_different_tickets_are_separate_statements() {
    let events = [
        directive("a", "c1", Action::LinkTicket, "t"),
        directive("a", "c2", Action::LinkTicket, "u"),
        directive("a", "c3", Action::LinkTicket, "t"),
    ];
    assert_eq!(
        plan(&events),
        vec![
            apply(Action::LinkTicket, "t", &["c1", "c3"]),
            apply(Action::LinkTicket, "u", &["c2"]),
        ]
    );
}

#[test]
fn the_newest_snapshot_of_a_ticket_does_the_linking_once() {
    // R2, R3: version 2 associates c2; c1 was linked with version 1.
    use tpb::TicketChangeKind::{Created, Updated};
    let events = [
        snapshot("t", 1, &["c1"], Created, &[]),
        directive("a", "c1", Action::LinkTicket, "t"),
        snapshot("t", 2, &["c1", "c2"], Updated, &["conversation_ids"]),
        directive("a", "c2", Action::LinkTicket, "t"),
        snapshot("t", 3, &["c1", "c2"], Updated, &["stage_id"]),
        snapshot("u", 7, &["c5"], Updated, &["stage_id"]),
    ];
    let events: Vec<&tpb::Event> = events.iter().collect();
    let mut newest = newest_snapshots(&events);
    assert_eq!(newest.len(), 2);
    assert_eq!(newest[0].ticket.version, 3);
    assert!(!newest[0].same_conversations, "versions 1 and 2 linked");
    assert!(newest[1].same_conversations);
    newest[0].work.link = true;
    assert_eq!(
        steps(&events, &newest),
        vec![apply(Action::LinkTicket, "t", &["c1", "c2"])],
        "the link directives are no-ops beside the snapshots"
    );
}
