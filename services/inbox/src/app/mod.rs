//! The use cases the handlers call: conversations, contacts and messages
//! the inbox owns (`conversations`, `mutate`, `replies`), ticket management
//! forwarded to ticketing (`tickets`) and the agent's sidebar (`context`).
//! Each is a method on [`App`](crate::state::App). Following ticketing's
//! events lives in `follow`, WatchConversations in `watch`; a use case may
//! call `follow` (to apply ticketing's answer, to deliver a report at once)
//! but nothing there calls back here.

mod context;
mod conversations;
mod mutate;
mod replies;
mod tickets;

pub use conversations::{ConversationFilterInput, NewConversation, NewMessage};
