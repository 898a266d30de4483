//! The prologue every mutating handler of both services starts with: who
//! calls, in which account, the request with its request id taken out, and
//! the idempotency key built from the two. Written once so that the order of
//! the checks (an unauthenticated call is refused before its request id is
//! looked at) and the key's scope are the same in every handler.

use prost::Message;

use crate::{ApiError, idempotency::Key, identity::Caller};

/// A mutating call after its prologue.
#[derive(Debug)]
pub struct Mutation<M> {
    pub caller: Caller,
    /// The account the call is scoped to; `-` only for [`Mutation::unscoped`].
    pub account_id: String,
    /// The request without its request id.
    pub request: M,
    /// The request id as the client sent it, for handlers that pass it on
    /// to another service (a retry there must be recognised too).
    pub request_id: String,
    /// `None` when the client sent no request id.
    pub key: Option<Key>,
}

impl<M: Message> Mutation<M> {
    /// A call inside the caller's account; one that names no account is
    /// refused (UNAUTHENTICATED). The key fingerprints the whole request.
    pub fn of(
        request: tonic::Request<M>,
        method: &'static str,
        request_id: impl FnOnce(&mut M) -> &mut String,
    ) -> Result<Self, ApiError> {
        let (caller, account_id) = scoped(&request)?;
        Self::new(caller, account_id, request, request_id, |scope, id, m| {
            Key::new(scope, id, method, m)
        })
    }

    /// As [`Mutation::of`], but the key fingerprints `intent(&request)`:
    /// for requests that carry facts a retry may legitimately change.
    pub fn of_intent<I: Message>(
        request: tonic::Request<M>,
        method: &'static str,
        request_id: impl FnOnce(&mut M) -> &mut String,
        intent: impl FnOnce(&M) -> I,
    ) -> Result<Self, ApiError> {
        let (caller, account_id) = scoped(&request)?;
        Self::new(caller, account_id, request, request_id, |scope, id, m| {
            Key::new(scope, id, method, &intent(m))
        })
    }

    /// A call made before any account exists (creating one): the keys of
    /// such calls share one scope.
    pub fn unscoped(
        request: tonic::Request<M>,
        method: &'static str,
        request_id: impl FnOnce(&mut M) -> &mut String,
    ) -> Result<Self, ApiError> {
        let caller = Caller::of(&request)?;
        let account_id = caller.account_id.clone().unwrap_or_else(|| "-".to_owned());
        Self::new(caller, account_id, request, request_id, |scope, id, m| {
            Key::new(scope, id, method, m)
        })
    }

    /// Takes the request id out, then keys what is left.
    fn new(
        caller: Caller,
        account_id: String,
        request: tonic::Request<M>,
        request_id: impl FnOnce(&mut M) -> &mut String,
        key: impl FnOnce(&str, &str, &M) -> Result<Option<Key>, ApiError>,
    ) -> Result<Self, ApiError> {
        let mut request = request.into_inner();
        let request_id = std::mem::take(request_id(&mut request));
        let key = key(&account_id, &request_id, &request)?;
        Ok(Self {
            caller,
            account_id,
            request,
            request_id,
            key,
        })
    }
}

/// The authenticated caller and the account it names (UNAUTHENTICATED
/// without one).
fn scoped<M>(request: &tonic::Request<M>) -> Result<(Caller, String), ApiError> {
    let caller = Caller::of(request)?;
    let account_id = caller.account()?.to_owned();
    Ok((caller, account_id))
}

/// Checks a request id the handler passes on unchanged to another service,
/// whose own idempotency makes the retry one effect: a malformed id is
/// refused here, before the call, as it would be by [`Mutation::of`].
pub fn passed_on(request_id: &str) -> Result<(), ApiError> {
    if request_id.is_empty() {
        return Ok(());
    }
    crate::idempotency::validate_request_id(request_id)
}

#[cfg(test)]
mod tests {
    use proto::inbox::v1::CloseConversationRequest;

    use super::*;

    fn request(
        caller: Option<Caller>,
        request_id: &str,
    ) -> tonic::Request<CloseConversationRequest> {
        let mut request = tonic::Request::new(CloseConversationRequest {
            request_id: request_id.into(),
            conversation_id: "c1".into(),
            etag: String::new(),
        });
        if let Some(caller) = caller {
            request.extensions_mut().insert(caller);
        }
        request
    }

    fn in_account(account: Option<&str>) -> Caller {
        Caller {
            account_id: account.map(str::to_owned),
            ..Caller::default()
        }
    }

    /// The prologue's order: an unauthenticated call, or one without an
    /// account, is refused before its request id is looked at.
    #[test]
    fn refuses_the_caller_before_the_request_id() {
        let refused = |r| {
            matches!(
                Mutation::of(r, "Close", |r: &mut CloseConversationRequest| &mut r
                    .request_id),
                Err(ApiError::Unauthenticated(_))
            )
        };
        assert!(refused(request(None, "bad id!")));
        assert!(refused(request(Some(in_account(None)), "bad id!")));
        assert!(matches!(
            Mutation::of(
                request(Some(in_account(Some("a"))), "bad id!"),
                "Close",
                |r| &mut r.request_id
            ),
            Err(ApiError::InvalidArgument { .. })
        ));
    }

    /// SPEC §4: the key is scoped to the account and fingerprints the
    /// request without its id, so a retry with the same id matches.
    #[test]
    fn keys_the_request_without_its_id() -> Result<(), ApiError> {
        let call = Mutation::of(request(Some(in_account(Some("a"))), "r-1"), "Close", |r| {
            &mut r.request_id
        })?;
        assert!(call.request.request_id.is_empty());
        assert_eq!(call.request_id, "r-1");
        let key = call.key.ok_or_else(|| ApiError::internal("no key"))?;
        assert_eq!(
            (key.account_id.as_str(), key.request_id.as_str()),
            ("a", "r-1")
        );
        assert_eq!(key.fingerprint, call.request.encode_to_vec());
        let anonymous = Mutation::of(request(Some(in_account(Some("a"))), ""), "Close", |r| {
            &mut r.request_id
        })?;
        assert!(anonymous.key.is_none());
        let unscoped = Mutation::unscoped(request(Some(in_account(None)), "r-1"), "Create", |r| {
            &mut r.request_id
        })?;
        assert_eq!(unscoped.key.map(|k| k.account_id).as_deref(), Some("-"));
        Ok(())
    }

    #[test]
    fn a_passed_on_request_id_is_checked_when_present() {
        assert!(passed_on("").is_ok());
        assert!(passed_on("r-1").is_ok());
        assert!(passed_on("bad id!").is_err());
    }
}
