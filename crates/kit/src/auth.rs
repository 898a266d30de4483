//! Who is calling, proven. In token mode (the default) every call carries a
//! bearer JWT — HS256 with a shared secret, or RS256/ES256 with public keys
//! from a JWKS file — whose claims name the account (`account`) and the user
//! (`sub`); internal services add their own token in
//! `x-service-authorization` (claim `svc`) and may then act for an account
//! named in `x-account-id`. Expiry, not-before and audience are always
//! checked, the issuer when one is configured, each with a small leeway for
//! clock skew; a token issued in the future is refused.
//! Development mode trusts plain metadata and is for laptops only.

use jsonwebtoken::{Algorithm, DecodingKey, Validation, jwk::JwkSet};
use serde::Deserialize;
use tonic::metadata::MetadataMap;

use crate::{
    ApiError,
    config::{self, ConfigError, Source},
    identity::{ACCOUNT_HEADER, Caller},
};

pub const AUTHORIZATION: &str = "authorization";
pub const SERVICE_AUTHORIZATION: &str = "x-service-authorization";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Tokens,
    /// Callers name themselves in metadata. Never in a cluster.
    Development,
}

/// Authentication settings, read at start-up; keys are loaded when serving.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    pub mode: Mode,
    pub hs256_secret: Option<String>,
    /// Still accepted while tokens signed with it expire (key rotation).
    pub hs256_previous_secret: Option<String>,
    pub jwks_file: Option<String>,
    pub audience: String,
    pub issuer: Option<String>,
    /// Clock skew allowed when checking `exp`, `nbf` and `iat`.
    pub leeway: std::time::Duration,
}

/// The default clock skew allowed on token times.
pub const DEFAULT_LEEWAY: std::time::Duration = std::time::Duration::from_secs(30);

impl AuthConfig {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let mode = match config::string_or(source, "AUTH_MODE", "jwt")
            .to_ascii_lowercase()
            .as_str()
        {
            "jwt" | "tokens" => Mode::Tokens,
            "development" => Mode::Development,
            other => {
                return Err(ConfigError {
                    key: "AUTH_MODE".into(),
                    value: other.into(),
                    reason: "expected jwt or development".into(),
                });
            }
        };
        let secret = config::secret_or(source, "AUTH_HS256_SECRET", "")?;
        let previous = config::secret_or(source, "AUTH_HS256_PREVIOUS_SECRET", "")?;
        Ok(Self {
            mode,
            hs256_secret: (!secret.is_empty()).then_some(secret),
            hs256_previous_secret: (!previous.is_empty()).then_some(previous),
            jwks_file: source.get("AUTH_JWKS_FILE"),
            audience: config::string_or(source, "AUTH_AUDIENCE", "inbox-ticketing"),
            issuer: source.get("AUTH_ISSUER"),
            leeway: config::duration_or(source, "AUTH_LEEWAY", DEFAULT_LEEWAY)?,
        })
    }

    /// For tests and the laptop stack.
    pub fn development() -> Self {
        Self {
            mode: Mode::Development,
            hs256_secret: None,
            hs256_previous_secret: None,
            jwks_file: None,
            audience: "inbox-ticketing".into(),
            issuer: None,
            leeway: DEFAULT_LEEWAY,
        }
    }
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: Option<String>,
    account: Option<String>,
    svc: Option<String>,
    /// Seconds since the epoch; checked here, as jsonwebtoken does not.
    iat: Option<u64>,
}

/// Verifies calls; cheap to clone.
#[derive(Clone)]
pub struct Authenticator {
    mode: Mode,
    keys: std::sync::Arc<Vec<(Option<String>, Algorithm, DecodingKey)>>,
    audience: String,
    issuer: Option<String>,
    leeway_secs: u64,
}

impl Authenticator {
    /// Loads the keys. Token mode without any key is refused: a service that
    /// accepted every token, or none, would be a misconfiguration.
    pub fn new(config: &AuthConfig) -> Result<Self, ConfigError> {
        let mut keys = Vec::new();
        if let Some(secret) = &config.hs256_secret {
            keys.push((
                None,
                Algorithm::HS256,
                DecodingKey::from_secret(secret.as_bytes()),
            ));
        }
        if let Some(path) = &config.jwks_file {
            let bad = |reason: String| ConfigError {
                key: "AUTH_JWKS_FILE".into(),
                value: path.clone(),
                reason,
            };
            let text =
                std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
            let set: JwkSet =
                serde_json::from_str(&text).map_err(|e| bad(format!("not a JWKS: {e}")))?;
            for jwk in &set.keys {
                let algorithm = jwk
                    .common
                    .key_algorithm
                    .and_then(|a| Algorithm::try_from(a).ok())
                    .filter(|a| matches!(a, Algorithm::RS256 | Algorithm::ES256))
                    .ok_or_else(|| bad("every key needs \"alg\": RS256 or ES256".into()))?;
                let key =
                    DecodingKey::from_jwk(jwk).map_err(|e| bad(format!("unusable key: {e}")))?;
                keys.push((jwk.common.key_id.clone(), algorithm, key));
            }
        }
        if config.mode == Mode::Tokens && keys.is_empty() {
            return Err(ConfigError {
                key: "AUTH_MODE".into(),
                value: "jwt".into(),
                reason: "no keys: set AUTH_HS256_SECRET(_FILE) or AUTH_JWKS_FILE, or AUTH_MODE=development on a laptop"
                    .into(),
            });
        }
        if config.mode == Mode::Development {
            tracing::warn!(
                "AUTH_MODE=development: callers name their account in metadata and nothing is verified; never expose this service"
            );
        }
        Ok(Self {
            mode: config.mode.clone(),
            keys: std::sync::Arc::new(keys),
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            leeway_secs: config.leeway.as_secs(),
        })
    }

    pub fn mode(&self) -> &Mode {
        &self.mode
    }

    /// The caller of a request, or UNAUTHENTICATED.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, ApiError> {
        let mut caller = Caller::from_metadata(metadata);
        if self.mode == Mode::Development {
            return Ok(caller);
        }
        let user = bearer(metadata, AUTHORIZATION)?;
        let service = bearer(metadata, SERVICE_AUTHORIZATION)?;
        if user.is_none() && service.is_none() {
            return Err(ApiError::Unauthenticated(
                "a bearer token is required".into(),
            ));
        }
        let user_claims = user.as_deref().map(|t| self.verify(t)).transpose()?;
        let service_claims = service.as_deref().map(|t| self.verify(t)).transpose()?;
        let service_name = match &service_claims {
            Some(claims) => Some(claims.svc.clone().ok_or_else(|| {
                ApiError::Unauthenticated("the service token names no service (claim svc)".into())
            })?),
            None => None,
        };
        caller.service = service_name;
        caller.bearer = user.clone();
        match user_claims {
            // A user token names both; a service token in `authorization`
            // would otherwise pass as a user of no account.
            Some(Claims {
                account: Some(account),
                sub: Some(user),
                svc: None,
                ..
            }) => {
                caller.account_id = Some(account);
                caller.user_id = Some(user);
            }
            Some(_) => {
                return Err(ApiError::Unauthenticated(format!(
                    "the token in {AUTHORIZATION} must be a user token (claims account and sub, no svc); \
                     a service token goes in {SERVICE_AUTHORIZATION}"
                )));
            }
            // A service acting alone may name the account (and user) it
            // acts for, e.g. the inbox delivering a queued report.
            None => {
                let read = |key: &str| {
                    metadata
                        .get(key)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                caller.account_id = read(ACCOUNT_HEADER);
                caller.user_id = read(crate::identity::USER_HEADER);
            }
        }
        Ok(caller)
    }

    fn verify(&self, token: &str) -> Result<Claims, ApiError> {
        let invalid = |why: &str| ApiError::Unauthenticated(format!("invalid token: {why}"));
        let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed"))?;
        let mut last = invalid("no key matches");
        for (kid, algorithm, key) in self.keys.iter() {
            if *algorithm != header.alg
                || (kid.is_some() && header.kid.is_some() && *kid != header.kid)
            {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, key, &self.validation(*algorithm)) {
                Ok(data) => return self.issued_in_the_past(data.claims),
                Err(err) => last = invalid(&err.to_string()),
            }
        }
        Err(last)
    }

    /// A configured issuer or audience makes its claim required: without
    /// that, jsonwebtoken accepts a token that simply leaves it out.
    fn validation(&self, algorithm: Algorithm) -> Validation {
        let mut validation = Validation::new(algorithm);
        validation.leeway = self.leeway_secs;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&[&self.audience]);
        let mut required = vec!["exp", "aud"];
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        validation
    }

    fn issued_in_the_past(&self, claims: Claims) -> Result<Claims, ApiError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        match claims.iat {
            Some(iat) if iat > now.saturating_add(self.leeway_secs) => Err(
                ApiError::Unauthenticated("invalid token: issued in the future (iat)".into()),
            ),
            _ => Ok(claims),
        }
    }
}

fn bearer(metadata: &MetadataMap, key: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = metadata.get(key) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| ApiError::Unauthenticated(format!("{key} is not text")))?;
    value
        .strip_prefix("Bearer ")
        .map(|token| Some(token.trim().to_owned()))
        .ok_or_else(|| ApiError::Unauthenticated(format!("{key} must be \"Bearer <token>\"")))
}
