//! Who is calling. Until token authentication lands (see docs/security.md),
//! the caller names itself in request metadata: this is the documented
//! development mode, never to be exposed beyond a laptop or a test.

use tonic::metadata::{MetadataMap, MetadataValue};

use crate::ApiError;

pub const ACCOUNT_HEADER: &str = "x-account-id";
pub const USER_HEADER: &str = "x-user-id";
/// Set by internal services (the inbox) calling on their own behalf, e.g. to
/// consume every account's events.
pub const SERVICE_HEADER: &str = "x-service";

/// W3C trace context headers, carried from a call into the events it causes
/// and on to the calls it makes.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub account_id: Option<String>,
    pub user_id: Option<String>,
    pub service: Option<String>,
    /// The call's W3C trace context (`traceparent`, `tracestate`), if any.
    pub trace_context: std::collections::BTreeMap<String, String>,
    /// The end user's verified bearer token, passed on to other services.
    pub bearer: Option<String>,
}

/// How a service presents itself when it calls another.
#[derive(Debug, Clone, Default)]
pub struct ServiceCredentials {
    pub name: String,
    /// Its own bearer token (token mode); none in development mode.
    pub token: ServiceToken,
}

/// A service's own bearer token: fixed, or read from a file and read again
/// (at most once a second, when used) so that a rotated Secret takes effect
/// without a restart. Kubernetes swaps a mounted Secret's files atomically,
/// so a read sees the old token or the new one, never half of each.
#[derive(Debug, Clone, Default)]
pub struct ServiceToken(Option<std::sync::Arc<TokenSource>>);

#[derive(Debug)]
struct TokenSource {
    file: Option<std::path::PathBuf>,
    state: std::sync::Mutex<(std::time::Instant, String)>,
}

/// How often a token file is read again while the token is in use.
const TOKEN_REREAD: std::time::Duration = std::time::Duration::from_secs(1);

impl ServiceToken {
    /// A token that never changes (`None`: no token, development mode).
    pub fn fixed(token: Option<String>) -> Self {
        ServiceToken(token.map(|token| {
            std::sync::Arc::new(TokenSource {
                file: None,
                state: std::sync::Mutex::new((std::time::Instant::now(), token)),
            })
        }))
    }

    /// The token in `path`, read now (its first value is `initial`, read
    /// when the configuration was) and again whenever it is used a second
    /// or more after the last read.
    pub fn file(path: impl Into<std::path::PathBuf>, initial: String) -> Self {
        ServiceToken(Some(std::sync::Arc::new(TokenSource {
            file: Some(path.into()),
            state: std::sync::Mutex::new((std::time::Instant::now(), initial)),
        })))
    }

    /// The token to send now.
    pub fn current(&self) -> Option<String> {
        let source = self.0.as_ref()?;
        let mut state = source.state.lock().ok()?;
        if let Some(path) = &source.file
            && state.0.elapsed() >= TOKEN_REREAD
        {
            state.0 = std::time::Instant::now();
            match std::fs::read_to_string(path) {
                Ok(text) if !text.trim().is_empty() || state.1.is_empty() => {
                    if text.trim() != state.1 {
                        tracing::info!(path = %path.display(), "service token changed; using the new one");
                        state.1 = text.trim().to_owned();
                    }
                }
                // Mid-rotation or a mount hiccup: the last token is still
                // the best there is.
                Ok(_) => {
                    tracing::warn!(path = %path.display(), "service token file is empty; keeping the last token")
                }
                Err(err) => {
                    tracing::warn!(path = %path.display(), %err, "cannot read the service token; keeping the last one")
                }
            }
        }
        (!state.1.is_empty()).then(|| state.1.clone())
    }
}

impl Caller {
    pub fn from_metadata(metadata: &MetadataMap) -> Self {
        let read = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|v| !v.is_empty() && v.len() <= 128)
                .map(str::to_owned)
        };
        let trace_context = TRACE_HEADERS
            .iter()
            .filter_map(|key| {
                let value = metadata.get(*key)?.to_str().ok()?;
                (value.len() <= 512).then(|| ((*key).to_owned(), value.to_owned()))
            })
            .collect();
        Self {
            account_id: read(ACCOUNT_HEADER),
            user_id: read(USER_HEADER),
            service: read(SERVICE_HEADER),
            trace_context,
            bearer: None,
        }
    }

    /// The account every query of this call is scoped to.
    pub fn account(&self) -> Result<&str, ApiError> {
        self.account_id.as_deref().ok_or_else(|| {
            ApiError::Unauthenticated(format!(
                "the call names no account (metadata {ACCOUNT_HEADER})"
            ))
        })
    }

    /// Who to record as the actor of a change: the user, else the service.
    pub fn actor_id(&self) -> String {
        self.user_id
            .clone()
            .or_else(|| self.service.clone())
            .unwrap_or_else(|| "anonymous".to_owned())
    }

    pub fn is_service(&self) -> bool {
        self.service.is_some()
    }

    /// The caller that authentication (`kit::access::Guarded`) put on the
    /// request.
    pub fn of<T>(request: &tonic::Request<T>) -> Result<Self, ApiError> {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthenticated("the call was not authenticated".into()))
    }

    /// Passes the end user's identity on to another service, adding ours.
    pub fn forward(&self, credentials: &ServiceCredentials, metadata: &mut MetadataMap) {
        let service = credentials.name.as_str();
        if let Some(token) = &self.bearer
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            metadata.insert(crate::auth::AUTHORIZATION, value);
        }
        if let Some(token) = credentials.token.current()
            && let Ok(value) = MetadataValue::try_from(format!("Bearer {token}"))
        {
            metadata.insert(crate::auth::SERVICE_AUTHORIZATION, value);
        }
        let mut put = |key: &'static str, value: &str| {
            if let Ok(value) = MetadataValue::try_from(value) {
                metadata.insert(key, value);
            }
        };
        if let Some(account) = &self.account_id {
            put(ACCOUNT_HEADER, account);
        }
        if let Some(user) = &self.user_id {
            put(USER_HEADER, user);
        }
        put(SERVICE_HEADER, service);
        // Our own span's context when tracing is on, so the callee's span is
        // a child of ours; the caller's headers otherwise.
        for (key, value) in &crate::observe::current_trace_context(&self.trace_context) {
            if let (Ok(key), Ok(value)) = (
                tonic::metadata::MetadataKey::from_bytes(key.as_bytes()),
                MetadataValue::try_from(value.as_str()),
            ) {
                metadata.insert(key, value);
            }
        }
    }
}
