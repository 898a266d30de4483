//! `<binary> token …`: mints a token signed with the configured HS256 key,
//! so that a local run in token mode, or an operator with the key at hand,
//! needs no other tool. Whoever can read the key can sign tokens anyway;
//! this only spares them writing a JWT by hand. A JWKS holds public keys
//! only, so RS256/ES256 tokens come from the issuer that holds the private
//! key.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;

use crate::{auth::AuthConfig, config::ConfigError};

/// Whom the token speaks for: a user of an account, or a service.
#[derive(Debug, Clone, clap::Args)]
#[command(group = clap::ArgGroup::new("who").required(true).args(["account", "service"]))]
pub struct TokenArgs {
    /// The account a user token acts in (claim `account`)
    #[arg(long, value_name = "ID", requires = "user")]
    pub account: Option<String>,
    /// The user (claim `sub`)
    #[arg(long, value_name = "ID", requires = "account")]
    pub user: Option<String>,
    /// A service token instead (claim `svc`), e.g. `inbox` for INBOX_SERVICE_TOKEN
    #[arg(long, value_name = "NAME", conflicts_with_all = ["account", "user"])]
    pub service: Option<String>,
    /// How long the token is valid: 30s, 15m, 12h, 30d
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = ttl)]
    pub ttl: Duration,
}

fn ttl(text: &str) -> Result<Duration, String> {
    crate::config::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a duration with a unit: 30s, 15m, 12h or 30d".into())
}

#[derive(Serialize)]
struct Claims<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    account: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    svc: Option<&'a str>,
    aud: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    iat: u64,
    exp: u64,
}

/// A token the services configured with `config` accept (same key,
/// audience and issuer).
pub fn mint(config: &AuthConfig, args: &TokenArgs) -> Result<String, ConfigError> {
    let secret = config.hs256_secret.as_deref().ok_or_else(|| ConfigError {
        key: "AUTH_HS256_SECRET".into(),
        value: String::new(),
        reason: "is needed to sign a token (a JWKS holds only public keys)".into(),
    })?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = Claims {
        sub: args.user.as_deref(),
        account: args.account.as_deref(),
        svc: args.service.as_deref(),
        aud: &config.audience,
        iss: config.issuer.as_deref(),
        iat: now,
        exp: now.saturating_add(args.ttl.as_secs()),
    };
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|err| ConfigError {
        key: "AUTH_HS256_SECRET".into(),
        value: String::new(),
        reason: format!("cannot sign with it: {err}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{auth::Authenticator, identity::Caller};

    fn bearer(header: &'static str, token: &str) -> tonic::metadata::MetadataMap {
        let mut metadata = tonic::metadata::MetadataMap::new();
        metadata.insert(header, format!("Bearer {token}").parse().expect("ascii"));
        metadata
    }

    /// A minted token is one the services accept, naming whom it was minted
    /// for; without the key there is nothing to sign with.
    #[test]
    fn minted_tokens_authenticate_as_the_named_user_or_service() {
        let mut config = AuthConfig::development();
        config.mode = crate::auth::Mode::Tokens;
        config.hs256_secret = Some("a-local-secret-of-at-least-32-bytes!".into());
        let auth = Authenticator::new(&config).expect("keys");
        let user = TokenArgs {
            account: Some("acme".into()),
            user: Some("agent-1".into()),
            service: None,
            ttl: Duration::from_secs(60),
        };
        let token = mint(&config, &user).expect("minted");
        let caller: Caller = auth
            .authenticate(&bearer(crate::auth::AUTHORIZATION, &token))
            .expect("accepted");
        assert_eq!(caller.account_id.as_deref(), Some("acme"));
        assert_eq!(caller.user_id.as_deref(), Some("agent-1"));
        let service = TokenArgs {
            account: None,
            user: None,
            service: Some("inbox".into()),
            ttl: Duration::from_secs(60),
        };
        let token = mint(&config, &service).expect("minted");
        let caller = auth
            .authenticate(&bearer(crate::auth::SERVICE_AUTHORIZATION, &token))
            .expect("accepted");
        assert_eq!(caller.service.as_deref(), Some("inbox"));

        let mut other = config.clone();
        other.hs256_secret = Some("another-secret-of-at-least-32-bytes!!".into());
        let foreign = mint(&other, &user).expect("minted");
        assert!(
            auth.authenticate(&bearer(crate::auth::AUTHORIZATION, &foreign))
                .is_err()
        );
        other.hs256_secret = None;
        let err = mint(&other, &user).unwrap_err();
        assert!(err.to_string().contains("AUTH_HS256_SECRET"), "{err}");
    }
}
