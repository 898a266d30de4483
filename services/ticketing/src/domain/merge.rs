//! R14–R16: merging a ticket into another and undoing it. The decisions
//! only: which merges are allowed, what the primary ends up with, what the
//! inbox must do to the conversations that move, and what an unmerge takes
//! back. The callers do the writes in one transaction.

use std::collections::BTreeMap;

use super::model::*;
use super::rules::RuleError;

/// R16: a ticket takes part in at most this many merges, either side.
pub const MAX_MERGES: i32 = 100;

/// A ticket as the merge rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeSide {
    pub id: String,
    pub trashed: bool,
    /// The ticket it is merged into, if it is.
    pub merged_into: Option<String>,
    pub workspace: Workspace,
    pub merge_count: i32,
}

/// R14: both tickets must be live, unmerged, in one workspace, and under
/// the R16 cap. The account and etags are checked by the caller.
pub fn check_merge(primary: &MergeSide, secondary: &MergeSide) -> Result<(), RuleError> {
    for side in [primary, secondary] {
        if side.trashed {
            return Err(RuleError::TicketTrashed(side.id.clone()));
        }
        if let Some(into) = &side.merged_into {
            return Err(RuleError::TicketMerged {
                ticket_id: side.id.clone(),
                merged_into: into.clone(),
            });
        }
    }
    if primary.workspace != secondary.workspace {
        return Err(RuleError::WorkspacesDiffer);
    }
    for side in [primary, secondary] {
        if side.merge_count >= MAX_MERGES {
            return Err(RuleError::MergeLimitReached(side.id.clone()));
        }
    }
    Ok(())
}

/// The values a merge decides (R14). `P` is the property value type, so
/// the rule is free of the wire format.
#[derive(Debug, Clone, PartialEq)]
pub struct TicketValues<P> {
    pub description: String,
    /// 0 means no priority.
    pub priority: i32,
    pub owner_id: Option<String>,
    pub contact_id: Option<String>,
    pub created_at: i64,
    pub properties: BTreeMap<String, P>,
}

/// R14: the primary's values win; a value empty on the primary takes the
/// secondary's; the creation time becomes the older of the two.
pub fn merged_values<P: Clone>(
    primary: &TicketValues<P>,
    secondary: &TicketValues<P>,
) -> TicketValues<P> {
    let mut properties = secondary.properties.clone();
    properties.extend(
        primary
            .properties
            .iter()
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    TicketValues {
        description: if primary.description.trim().is_empty() {
            secondary.description.clone()
        } else {
            primary.description.clone()
        },
        priority: if primary.priority == 0 {
            secondary.priority
        } else {
            primary.priority
        },
        owner_id: primary
            .owner_id
            .clone()
            .or_else(|| secondary.owner_id.clone()),
        contact_id: primary
            .contact_id
            .clone()
            .or_else(|| secondary.contact_id.clone()),
        created_at: primary.created_at.min(secondary.created_at),
        properties,
    }
}

/// R14 and R5: every conversation of the secondary moves to the primary;
/// if the primary is closed, those that arrive open are closed. Like R5,
/// ticketing's view of "open" may lag the inbox, so every live moved
/// conversation is directed to close; closing a closed one is a no-op.
pub fn merge_directives(primary_closed: bool, moved: &[LinkedConversation]) -> Vec<Directive> {
    let mut directives: Vec<Directive> = moved
        .iter()
        .map(|c| Directive::new(&c.id, DirectiveAction::MoveToTicket, "R14"))
        .collect();
    if primary_closed {
        directives.extend(
            moved
                .iter()
                .filter(|c| !c.trashed)
                .map(|c| Directive::new(&c.id, DirectiveAction::Close, "R5")),
        );
    }
    directives
}

/// R15: whether a merge can still be undone at `now`, and whether the
/// ticket now holding the conversations lets them go (a trashed one is
/// read-only until restored, R9).
pub fn check_unmerge(
    secondary: &MergeSide,
    final_at: Option<i64>,
    now: i64,
    holder: &MergeSide,
) -> Result<(), RuleError> {
    let Some(final_at) = final_at.filter(|_| secondary.merged_into.is_some()) else {
        return Err(RuleError::TicketNotMerged(secondary.id.clone()));
    };
    if now >= final_at {
        return Err(RuleError::MergeFinal(secondary.id.clone()));
    }
    if holder.trashed {
        return Err(RuleError::TicketTrashed(holder.id.clone()));
    }
    Ok(())
}

/// R15: the secondary takes back exactly the conversations it brought that
/// are still on the ticket now holding them, in the order it brought them.
pub fn taken_back(brought: &[String], on_holder: &[String]) -> Vec<String> {
    brought
        .iter()
        .filter(|id| on_holder.contains(id))
        .cloned()
        .collect()
}

/// R15: the undo's directives, one move per conversation taken back;
/// statuses are not changed by the undo.
pub fn unmerge_directives(taken: &[String]) -> Vec<Directive> {
    taken
        .iter()
        .map(|id| Directive::new(id, DirectiveAction::MoveToTicket, "R15"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn side(id: &str) -> MergeSide {
        MergeSide {
            id: id.into(),
            trashed: false,
            merged_into: None,
            workspace: Workspace::Inbox,
            merge_count: 0,
        }
    }

    fn values(
        description: &str,
        priority: i32,
        owner: Option<&str>,
        created: i64,
    ) -> TicketValues<u8> {
        TicketValues {
            description: description.into(),
            priority,
            owner_id: owner.map(Into::into),
            contact_id: None,
            created_at: created,
            properties: BTreeMap::new(),
        }
    }

    #[test]
    fn r14_refuses_trash_merged_other_workspace_and_r16_cap() {
        assert_eq!(check_merge(&side("p"), &side("s")), Ok(()));
        let trashed = MergeSide {
            trashed: true,
            ..side("s")
        };
        assert_eq!(
            check_merge(&side("p"), &trashed),
            Err(RuleError::TicketTrashed("s".into()))
        );
        let merged = MergeSide {
            merged_into: Some("x".into()),
            ..side("p")
        };
        assert!(matches!(
            check_merge(&merged, &side("s")),
            Err(RuleError::TicketMerged { .. })
        ));
        let help_desk = MergeSide {
            workspace: Workspace::HelpDesk,
            ..side("s")
        };
        assert_eq!(
            check_merge(&side("p"), &help_desk),
            Err(RuleError::WorkspacesDiffer)
        );
        let full = MergeSide {
            merge_count: MAX_MERGES,
            ..side("p")
        };
        assert_eq!(
            check_merge(&full, &side("s")),
            Err(RuleError::MergeLimitReached("p".into()))
        );
        let almost = MergeSide {
            merge_count: MAX_MERGES - 1,
            ..side("p")
        };
        assert_eq!(check_merge(&almost, &side("s")), Ok(()));
    }

    #[test]
    fn r14_primary_wins_empty_values_come_from_the_secondary() {
        let mut primary = values("", 3, None, 200);
        primary.properties.insert("a".into(), 1);
        let mut secondary = values("from s", 1, Some("u2"), 100);
        secondary.properties.insert("a".into(), 2);
        secondary.properties.insert("b".into(), 3);
        secondary.contact_id = Some("c9".into());
        let merged = merged_values(&primary, &secondary);
        assert_eq!(merged.description, "from s");
        assert_eq!(merged.priority, 3);
        assert_eq!(merged.owner_id.as_deref(), Some("u2"));
        assert_eq!(merged.contact_id.as_deref(), Some("c9"));
        assert_eq!(merged.created_at, 100);
        assert_eq!(merged.properties.get("a"), Some(&1));
        assert_eq!(merged.properties.get("b"), Some(&3));
        let kept = merged_values(&values("p", 2, Some("u1"), 50), &secondary);
        assert_eq!(
            (
                kept.description.as_str(),
                kept.priority,
                kept.owner_id.as_deref(),
                kept.created_at
            ),
            ("p", 2, Some("u1"), 50)
        );
    }

    #[test]
    fn r14_r5_moves_every_conversation_and_closes_them_into_a_closed_primary() {
        let moved = [
            LinkedConversation {
                id: "a".into(),
                open: true,
                trashed: false,
            },
            LinkedConversation {
                id: "b".into(),
                open: false,
                trashed: false,
            },
        ];
        let open = merge_directives(false, &moved);
        assert_eq!(
            open,
            vec![
                Directive::new("a", DirectiveAction::MoveToTicket, "R14"),
                Directive::new("b", DirectiveAction::MoveToTicket, "R14"),
            ]
        );
        let closed = merge_directives(true, &moved);
        assert_eq!(closed.len(), 4);
        assert!(
            closed[2..]
                .iter()
                .all(|d| d.action == DirectiveAction::Close && d.rule == "R5")
        );
    }

    #[test]
    fn r15_unmerge_within_the_period_takes_back_what_is_still_there() {
        let merged = MergeSide {
            merged_into: Some("p".into()),
            ..side("s")
        };
        assert_eq!(check_unmerge(&merged, Some(10), 9, &side("p")), Ok(()));
        assert_eq!(
            check_unmerge(&merged, Some(10), 10, &side("p")),
            Err(RuleError::MergeFinal("s".into()))
        );
        assert_eq!(
            check_unmerge(&side("s"), Some(10), 1, &side("p")),
            Err(RuleError::TicketNotMerged("s".into()))
        );
        let trashed = MergeSide {
            trashed: true,
            ..side("p")
        };
        assert_eq!(
            check_unmerge(&merged, Some(10), 1, &trashed),
            Err(RuleError::TicketTrashed("p".into()))
        );
        let brought = ["a".to_owned(), "b".to_owned(), "c".to_owned()];
        let holder = ["x".to_owned(), "c".to_owned(), "a".to_owned()];
        assert_eq!(taken_back(&brought, &holder), ["a", "c"]);
        assert!(
            unmerge_directives(&["a".into()])
                .iter()
                .all(|d| d.rule == "R15")
        );
    }
}
