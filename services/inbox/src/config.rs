//! Inbox settings: defaults, overridden by environment variables (names in
//! the README). Validated once, at start-up.

use std::{net::SocketAddr, time::Duration};

use kit::config::{self, ConfigError, Source};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The database and its pools (`INBOX_DATABASE_URL` and beside it).
    pub database: kit::pools::DatabaseConfig,
    /// Where ticketing listens: one URL or several, separated by commas.
    /// Each name is resolved to all its addresses (a headless Service's
    /// pods), and calls are balanced over them (`replicas`).
    pub ticketing_url: String,
    /// How often ticketing's names are resolved again, so that replicas
    /// added or removed are seen.
    pub ticketing_resolve_interval: Duration,
    /// What resolves ticketing's names: the system's resolver, or a fixed
    /// table in tests.
    pub ticketing_resolver: crate::replicas::Resolver,
    /// Deadline of each call to ticketing.
    pub ticketing_timeout: Duration,
    /// Longest wait between attempts to reach ticketing's event stream.
    pub max_reconnect_backoff: Duration,
    /// How long the event consumer's lease lasts without renewal: another
    /// replica takes over this long after the holder dies.
    pub lease_ttl: Duration,
    /// How WatchConversations streams pace themselves.
    pub stream: kit::stream::StreamConfig,
    /// How long a trashed conversation without a ticket stays restorable (R9).
    pub trash_retention: Duration,
    /// How often the purge looks for expired trash.
    pub purge_interval: Duration,
    pub limits: kit::server::Limits,
    pub auth: kit::auth::AuthConfig,
    /// The inbox's own token for calls to ticketing (token mode).
    pub service_token: Option<String>,
    /// Where `service_token` was read from, if from a file: it is read
    /// again while the inbox runs, so a rotated token needs no restart.
    pub service_token_file: Option<String>,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/inbox.db?mode=rwc";

impl Config {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let ticketing_url =
            config::string_or(source, "INBOX_TICKETING_URL", "http://127.0.0.1:50052");
        let well_formed = ticketing_url
            .split(',')
            .all(|url| url.trim().starts_with("http://") || url.trim().starts_with("https://"));
        if !well_formed {
            return Err(ConfigError {
                key: "INBOX_TICKETING_URL".into(),
                value: ticketing_url,
                reason: "expected http:// or https:// URLs, separated by commas".into(),
            });
        }
        Ok(Self {
            service_token: {
                let token = config::secret_or(source, "INBOX_SERVICE_TOKEN", "")?;
                (!token.is_empty()).then_some(token)
            },
            service_token_file: source.get("INBOX_SERVICE_TOKEN_FILE"),
            auth: kit::auth::AuthConfig::from_source(source)?,
            listen: config::addr_or(source, "INBOX_LISTEN", "127.0.0.1:50051")?,
            database: kit::pools::DatabaseConfig::from_source(
                source,
                "INBOX",
                DEFAULT_DATABASE_URL,
            )?,
            ticketing_url,
            ticketing_resolve_interval: config::duration_or(
                source,
                "INBOX_TICKETING_RESOLVE_INTERVAL",
                Duration::from_secs(5),
            )?,
            ticketing_resolver: Default::default(),
            ticketing_timeout: config::duration_or(
                source,
                "INBOX_TICKETING_TIMEOUT",
                Duration::from_secs(10),
            )?,
            max_reconnect_backoff: config::duration_or(
                source,
                "INBOX_MAX_RECONNECT_BACKOFF",
                Duration::from_secs(10),
            )?,
            lease_ttl: config::duration_or(source, "INBOX_LEASE_TTL", Duration::from_secs(5))?,
            stream: kit::stream::StreamConfig::from_source(source, "INBOX")?,
            trash_retention: config::duration_or(
                source,
                "TRASH_RETENTION",
                Duration::from_secs(30 * 86_400),
            )?,
            purge_interval: config::duration_or(
                source,
                "INBOX_PURGE_INTERVAL",
                Duration::from_secs(600),
            )?,
            limits: kit::server::Limits {
                drain_grace: config::duration_or(
                    source,
                    "INBOX_DRAIN_GRACE",
                    Duration::from_secs(20),
                )?,
                ..Default::default()
            },
        })
    }

    /// Where sessions go: the direct URL if there is one.
    /// Defaults with another database and ticketing address: what tests
    /// start from.
    pub fn for_database(database_url: &str, ticketing_url: &str) -> Self {
        let mut config = Self::from_source(&std::collections::HashMap::new())
            .expect("default settings are valid");
        config.database.url = database_url.to_owned();
        config.auth = kit::auth::AuthConfig::development();
        config.ticketing_url = ticketing_url.to_owned();
        config
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn bad_values_name_their_setting() {
        let source: HashMap<String, String> = [(
            "INBOX_TICKETING_URL".to_owned(),
            "ticketing:50052".to_owned(),
        )]
        .into();
        assert!(
            Config::from_source(&source)
                .unwrap_err()
                .to_string()
                .contains("INBOX_TICKETING_URL")
        );
        let source: HashMap<String, String> =
            [("INBOX_DRAIN_GRACE".to_owned(), "forever".to_owned())].into();
        assert!(
            Config::from_source(&source)
                .unwrap_err()
                .to_string()
                .contains("INBOX_DRAIN_GRACE")
        );
        let defaults = Config::from_source(&HashMap::new()).unwrap();
        assert_eq!(defaults.listen.port(), 50051);
        assert_eq!(defaults.ticketing_url, "http://127.0.0.1:50052");
    }
}
