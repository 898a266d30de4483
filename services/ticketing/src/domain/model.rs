//! Domain types the rules reason about.

/// Account tiers (SPEC section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Free,
    Starter,
    Professional,
    Enterprise,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workspace {
    Inbox,
    HelpDesk,
}

/// Where a management call comes from (R10).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surface {
    Inbox,
    HelpDesk,
}

/// A conversation as the rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationFacts {
    pub id: String,
    pub subject: String,
    pub contact_id: Option<String>,
    pub owner_id: Option<String>,
    pub open: bool,
    pub trashed: bool,
}

/// A conversation linked to a ticket, as ticketing last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedConversation {
    pub id: String,
    pub open: bool,
    pub trashed: bool,
}

/// What the inbox must do to a conversation; each becomes an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirectiveAction {
    LinkTicket,
    Close,
    Reopen,
    MoveToHelpDesk,
    Trash,
    Restore,
    Purge,
    /// The conversation changes ticket: only by a merge or its undo (R14, R15).
    MoveToTicket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub conversation_id: String,
    pub action: DirectiveAction,
    /// The rule that implies it, for the audit trail ("R5", ...).
    pub rule: &'static str,
}

impl Directive {
    pub fn new(conversation_id: &str, action: DirectiveAction, rule: &'static str) -> Self {
        Self {
            conversation_id: conversation_id.to_owned(),
            action,
            rule,
        }
    }
}

/// A conversation fact the inbox reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reported {
    OwnerChanged,
    Closed,
    Reopened,
    Trashed,
    Restored,
    IncomingMessage,
}

/// The ticket as the report rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketFacts {
    pub id: String,
    pub owner_id: Option<String>,
    pub trashed: bool,
}

/// Which accounts manage tickets in the help desk (R10): configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelpDeskPolicy {
    pub tiers: Vec<Tier>,
    /// Accounts created at or after this instant (µs since the epoch).
    pub cutover_micros: i64,
}

impl Default for HelpDeskPolicy {
    fn default() -> Self {
        Self {
            tiers: vec![Tier::Professional, Tier::Enterprise],
            // 2024-04-01T00:00:00Z
            cutover_micros: 1_711_929_600_000_000,
        }
    }
}
