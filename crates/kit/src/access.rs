//! Who may call what: the one table of RPCs and the roles allowed to call
//! them (docs/security.md, "Roles"), and the one service wrapper that
//! authenticates every call of both services and enforces the table before
//! any handler runs. Health and reflection are separate routes and are not
//! wrapped: they stay open.

use std::{
    convert::Infallible,
    future::Future,
    pin::Pin,
    task::{Context, Poll},
};

use tonic::{body::Body, codegen::http, metadata::MetadataMap, server::NamedService};

use crate::{ApiError, auth::Authenticator, identity::Caller};

/// Which callers an RPC admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A user, or an internal service acting for an account (and user):
    /// everything happens within that one account.
    Account,
    /// A user (their own account only, narrowed by the handler) or an
    /// internal service (any account, or all of them).
    AccountOrService,
    /// Internal services only, acting for an account.
    ServiceForAccount,
    /// Internal services only, with or without an account.
    Service,
}

/// The table. An RPC not listed is [`Access::Account`]: the safe default
/// for anything a user of an account does in that account.
const TABLE: &[(&str, Access)] = &[
    (
        "/ticketing.v1.TicketingService/CreateAccount",
        Access::Service,
    ),
    (
        "/ticketing.v1.TicketingService/GetAccount",
        Access::AccountOrService,
    ),
    (
        "/ticketing.v1.TicketingService/WatchEvents",
        Access::AccountOrService,
    ),
    // Ticketing trusts the facts reported: only the inbox reports them.
    (
        "/ticketing.v1.TicketingService/NotifyConversationChanged",
        Access::ServiceForAccount,
    ),
    // An acknowledgement lets the log be pruned behind a durable consumer:
    // a user acking for the inbox could make it lose events.
    (
        "/ticketing.v1.TicketingService/AcknowledgeEvents",
        Access::Service,
    ),
];

/// The access rule of the RPC at `path` (`/package.Service/Method`).
pub fn access(path: &str) -> Access {
    TABLE
        .iter()
        .find(|(listed, _)| *listed == path)
        .map_or(Access::Account, |(_, access)| *access)
}

/// Admits `caller` to the RPC at `path`, or says why not: PERMISSION_DENIED
/// for the wrong role, UNAUTHENTICATED for a call that names no account
/// where one is needed.
pub fn admit(path: &str, caller: &Caller) -> Result<(), ApiError> {
    let method = path.rsplit('/').next().unwrap_or(path);
    let is_service = caller.is_service();
    let needs_account = || caller.account().map(|_| ());
    match access(path) {
        Access::Account => needs_account(),
        Access::AccountOrService if is_service => Ok(()),
        Access::AccountOrService => needs_account(),
        Access::ServiceForAccount | Access::Service if !is_service => {
            Err(ApiError::PermissionDenied(format!(
                "{method} is for internal services only (a service token in {})",
                crate::auth::SERVICE_AUTHORIZATION
            )))
        }
        Access::ServiceForAccount => needs_account(),
        Access::Service => Ok(()),
    }
}

/// Wraps a generated service: authenticates each call, applies [`admit`],
/// and leaves the [`Caller`] in the request's extensions for the handlers.
#[derive(Clone)]
pub struct Guarded<S> {
    inner: S,
    auth: Authenticator,
}

impl<S> Guarded<S> {
    pub fn new(inner: S, auth: Authenticator) -> Self {
        Self { inner, auth }
    }
}

impl<S: NamedService> NamedService for Guarded<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> tower::Service<http::Request<B>> for Guarded<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let metadata = MetadataMap::from_headers(request.headers().clone());
        let admitted = self.auth.authenticate(&metadata).and_then(|caller| {
            admit(request.uri().path(), &caller)?;
            Ok(caller)
        });
        match admitted {
            Ok(caller) => {
                request.extensions_mut().insert(caller);
                Box::pin(self.inner.call(request))
            }
            Err(err) => {
                let refusal = tonic::Status::from(err).into_http();
                Box::pin(std::future::ready(Ok(refusal)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(account: Option<&str>, service: Option<&str>) -> Caller {
        Caller {
            account_id: account.map(str::to_owned),
            user_id: account.map(|_| "u".to_owned()),
            service: service.map(str::to_owned),
            ..Caller::default()
        }
    }

    #[test]
    fn the_table_admits_each_role_where_docs_security_says() {
        let user = caller(Some("a"), None);
        let service_for_account = caller(Some("a"), Some("inbox"));
        let service_alone = caller(None, Some("inbox"));
        let nobody = caller(None, None);
        let t = "/ticketing.v1.TicketingService/";
        let code =
            |path: &str, c: &Caller| admit(path, c).map_err(|e| tonic::Status::from(e).code());
        use tonic::Code::{PermissionDenied as Denied, Unauthenticated as NoAccount};
        for (rpc, user_may, alone_may) in [
            ("CreateTicket", Ok(()), Err(NoAccount)),
            ("GetAccount", Ok(()), Ok(())),
            ("WatchEvents", Ok(()), Ok(())),
            ("NotifyConversationChanged", Err(Denied), Err(NoAccount)),
            ("AcknowledgeEvents", Err(Denied), Ok(())),
            ("CreateAccount", Err(Denied), Ok(())),
        ] {
            let path = format!("{t}{rpc}");
            assert_eq!(code(&path, &user), user_may, "{rpc} as a user");
            assert_eq!(
                code(&path, &service_alone),
                alone_may,
                "{rpc} as a service alone"
            );
            assert_eq!(
                code(&path, &service_for_account),
                Ok(()),
                "{rpc} as a service for an account"
            );
            assert!(code(&path, &nobody).is_err(), "{rpc} with no identity");
        }
        let inbox = "/inbox.v1.InboxService/GetConversation";
        assert_eq!(code(inbox, &user), Ok(()));
        assert_eq!(code(inbox, &service_alone), Err(NoAccount));
    }
}
