//! The rules of SPEC section 3 on hand-made inputs, one test per rule or
//! pair of rules.

use super::*;

fn conversation(id: &str) -> ConversationFacts {
    ConversationFacts {
        id: id.into(),
        subject: "Printer on fire".into(),
        contact_id: Some("c1".into()),
        owner_id: Some("u1".into()),
        open: true,
        trashed: false,
    }
}

fn linked(id: &str, trashed: bool) -> LinkedConversation {
    LinkedConversation {
        id: id.into(),
        open: true,
        trashed,
    }
}

#[test]
fn r1_defaults_come_from_the_conversation() {
    let plan = plan_creation(
        &CreationRequest::default(),
        Some(&conversation("k1")),
        None,
        false,
    )
    .unwrap();
    assert_eq!(plan.name, "Printer on fire");
    assert_eq!(plan.owner_id.as_deref(), Some("u1"));
    assert_eq!(plan.contact_id.as_deref(), Some("c1"));
    assert_eq!(plan.workspace, Workspace::Inbox);
    assert_eq!(
        plan.directives,
        vec![Directive::new("k1", DirectiveAction::LinkTicket, "R1")]
    );
}

#[test]
fn r2_a_second_ticket_is_refused_and_r1_refuses_trash() {
    let err = plan_creation(
        &CreationRequest::default(),
        Some(&conversation("k1")),
        Some("t9"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        RuleError::ConversationHasTicket {
            conversation_id: "k1".into(),
            ticket_id: "t9".into()
        }
    );
    let mut trashed = conversation("k1");
    trashed.trashed = true;
    assert!(matches!(
        plan_creation(&CreationRequest::default(), Some(&trashed), None, false),
        Err(RuleError::ConversationTrashed(_))
    ));
}

#[test]
fn r10_help_desk_accounts_move_ticket_and_conversation() {
    let policy = HelpDeskPolicy::default();
    assert!(manages_tickets_in_help_desk(
        &policy,
        Tier::Enterprise,
        policy.cutover_micros
    ));
    assert!(!manages_tickets_in_help_desk(
        &policy,
        Tier::Enterprise,
        policy.cutover_micros - 1
    ));
    assert!(!manages_tickets_in_help_desk(
        &policy,
        Tier::Starter,
        policy.cutover_micros + 1
    ));
    let plan = plan_creation(
        &CreationRequest::default(),
        Some(&conversation("k1")),
        None,
        true,
    )
    .unwrap();
    assert_eq!(plan.workspace, Workspace::HelpDesk);
    assert!(plan.directives.contains(&Directive::new(
        "k1",
        DirectiveAction::MoveToHelpDesk,
        "R10"
    )));
    assert_eq!(
        check_management_surface(true, Surface::Inbox),
        Err(RuleError::ManagedInHelpDesk)
    );
    assert_eq!(check_management_surface(true, Surface::HelpDesk), Ok(()));
    assert_eq!(check_management_surface(false, Surface::Inbox), Ok(()));
}

#[test]
fn r5_closing_closes_every_live_conversation() {
    let conversations = [linked("a", false), linked("b", false), linked("c", true)];
    let directives = stage_change_directives(false, true, &conversations);
    let ids: Vec<_> = directives
        .iter()
        .map(|d| d.conversation_id.as_str())
        .collect();
    assert_eq!(ids, ["a", "b"]);
    assert!(
        directives
            .iter()
            .all(|d| d.action == DirectiveAction::Close && d.rule == "R5")
    );
    assert!(stage_change_directives(true, true, &conversations).is_empty());
}

fn ticket(owner: Option<&str>, trashed: bool) -> TicketFacts {
    TicketFacts {
        id: "t1".into(),
        owner_id: owner.map(Into::into),
        trashed,
    }
}

#[test]
fn r4_owner_follows_the_conversation_one_way() {
    let mut facts = conversation("k1");
    facts.owner_id = Some("u2".into());
    assert_eq!(
        consequence_of_report(
            Reported::OwnerChanged,
            &facts,
            Some(&ticket(Some("u1"), false))
        ),
        Consequence::SetTicketOwner(Some("u2".into()))
    );
    facts.owner_id = None;
    assert_eq!(
        consequence_of_report(
            Reported::OwnerChanged,
            &facts,
            Some(&ticket(Some("u1"), false))
        ),
        Consequence::SetTicketOwner(None)
    );
    assert_eq!(
        consequence_of_report(Reported::OwnerChanged, &facts, None),
        Consequence::Nothing
    );
    assert_eq!(
        consequence_of_report(
            Reported::OwnerChanged,
            &facts,
            Some(&ticket(Some("u1"), true))
        ),
        Consequence::Nothing
    );
}

#[test]
fn r7_r13_closing_reopening_and_mail_stay_local() {
    let facts = conversation("k1");
    for change in [
        Reported::Closed,
        Reported::Reopened,
        Reported::IncomingMessage,
    ] {
        assert_eq!(
            consequence_of_report(change, &facts, Some(&ticket(None, false))),
            Consequence::Nothing
        );
    }
}

#[test]
fn r8_r9_trash_cascades_and_restores_together() {
    let facts = conversation("k1");
    assert_eq!(
        consequence_of_report(Reported::Trashed, &facts, Some(&ticket(None, false))),
        Consequence::TrashCascade
    );
    assert_eq!(
        consequence_of_report(Reported::Restored, &facts, Some(&ticket(None, true))),
        Consequence::RestoreCascade
    );
    assert_eq!(
        consequence_of_report(Reported::Trashed, &facts, Some(&ticket(None, true))),
        Consequence::Nothing
    );
    let trash = trash_directives(&[linked("a", false), linked("b", true)]);
    assert_eq!(
        trash,
        vec![Directive::new("a", DirectiveAction::Trash, "R8")]
    );
    assert_eq!(
        restore_directives(&["a".into(), "b".into()]).len(),
        2,
        "everything in the cascade comes back"
    );
}

#[test]
fn r3_association_checks_r2_and_trash() {
    let facts = conversation("k2");
    assert!(check_association(&facts, None, &ticket(None, false)).is_ok());
    assert!(matches!(
        check_association(&facts, Some("t9"), &ticket(None, false)),
        Err(RuleError::ConversationHasTicket { .. })
    ));
    assert!(matches!(
        check_association(&facts, None, &ticket(None, true)),
        Err(RuleError::TicketTrashed(_))
    ));
}

#[test]
fn r6_reopening_reopens_only_a_single_conversation() {
    let one = [linked("a", false), linked("t", true)];
    assert_eq!(
        stage_change_directives(true, false, &one),
        vec![Directive::new("a", DirectiveAction::Reopen, "R6")]
    );
    let two = [linked("a", false), linked("b", false)];
    assert!(stage_change_directives(true, false, &two).is_empty());
    assert!(stage_change_directives(false, false, &two).is_empty());
}
