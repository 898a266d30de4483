//! Ticketing settings: defaults, overridden by environment variables (names
//! in the README). Validated once, at start-up.

use std::{net::SocketAddr, time::Duration};

use kit::config::{self, ConfigError, Source};

use crate::domain::{HelpDeskPolicy, Tier};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// The database and its pools (`TICKETING_DATABASE_URL` and beside it).
    pub database: kit::pools::DatabaseConfig,
    pub help_desk: HelpDeskPolicy,
    /// How WatchEvents streams pace themselves.
    pub stream: kit::stream::StreamConfig,
    /// How long trashed tickets stay restorable before the purge (R9).
    pub trash_retention: Duration,
    /// How often the purge looks for expired trash and prunable events.
    pub purge_interval: Duration,
    /// How long events are kept (never past what a known consumer has not
    /// acknowledged).
    pub event_retention: Duration,
    /// A consumer not heard from for this long no longer holds events back.
    pub consumer_ttl: Duration,
    pub limits: kit::server::Limits,
    pub auth: kit::auth::AuthConfig,
}

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/ticketing.db?mode=rwc";

impl Config {
    pub fn from_source(source: &dyn Source) -> Result<Self, ConfigError> {
        let limits = kit::server::Limits {
            drain_grace: config::duration_or(
                source,
                "TICKETING_DRAIN_GRACE",
                Duration::from_secs(20),
            )?,
            ..Default::default()
        };
        Ok(Self {
            auth: kit::auth::AuthConfig::from_source(source)?,
            listen: config::addr_or(source, "TICKETING_LISTEN", "127.0.0.1:50052")?,
            database: kit::pools::DatabaseConfig::from_source(
                source,
                "TICKETING",
                DEFAULT_DATABASE_URL,
            )?,
            help_desk: HelpDeskPolicy {
                tiers: parse_tiers(source)?,
                cutover_micros: parse_cutover(source)?,
            },
            stream: kit::stream::StreamConfig::from_source(source, "TICKETING")?,
            trash_retention: config::duration_or(
                source,
                "TRASH_RETENTION",
                Duration::from_secs(30 * 86_400),
            )?,
            event_retention: config::duration_or(
                source,
                "TICKETING_EVENT_RETENTION",
                Duration::from_secs(7 * 86_400),
            )?,
            consumer_ttl: config::duration_or(
                source,
                "TICKETING_CONSUMER_TTL",
                Duration::from_secs(30 * 86_400),
            )?,
            purge_interval: config::duration_or(
                source,
                "TICKETING_PURGE_INTERVAL",
                Duration::from_secs(600),
            )?,
            limits,
        })
    }

    /// Where sessions go: the direct URL if there is one.
    /// Defaults with another database: what tests start from.
    pub fn for_database(database_url: &str) -> Self {
        let mut config = Self::from_source(&std::collections::HashMap::new())
            .expect("default settings are valid");
        config.database.url = database_url.to_owned();
        config.auth = kit::auth::AuthConfig::development();
        config
    }
}

fn parse_tiers(source: &dyn Source) -> Result<Vec<Tier>, ConfigError> {
    let key = "HELP_DESK_TIERS";
    let Some(value) = source.get(key) else {
        return Ok(HelpDeskPolicy::default().tiers);
    };
    value
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|tier| match tier.to_ascii_uppercase().as_str() {
            "FREE" => Ok(Tier::Free),
            "STARTER" => Ok(Tier::Starter),
            "PROFESSIONAL" => Ok(Tier::Professional),
            "ENTERPRISE" => Ok(Tier::Enterprise),
            _ => Err(ConfigError {
                key: key.into(),
                value: value.clone(),
                reason: format!(
                    "unknown tier {tier}; expected FREE, STARTER, PROFESSIONAL or ENTERPRISE"
                ),
            }),
        })
        .collect()
}

fn parse_cutover(source: &dyn Source) -> Result<i64, ConfigError> {
    let key = "HELP_DESK_CUTOVER";
    match source.get(key) {
        None => Ok(HelpDeskPolicy::default().cutover_micros),
        Some(value) => kit::time::parse_date(&value).ok_or_else(|| ConfigError {
            key: key.into(),
            value,
            reason: "expected a date, YYYY-MM-DD".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn bad_values_name_their_setting() {
        let source: HashMap<String, String> =
            [("HELP_DESK_TIERS".to_owned(), "GOLD".to_owned())].into();
        let err = Config::from_source(&source).unwrap_err();
        assert!(err.to_string().contains("HELP_DESK_TIERS"), "{err}");
        let source: HashMap<String, String> =
            [("TICKETING_LISTEN".to_owned(), "here".to_owned())].into();
        assert!(
            Config::from_source(&source)
                .unwrap_err()
                .to_string()
                .contains("TICKETING_LISTEN")
        );
        let defaults = Config::from_source(&HashMap::new()).unwrap();
        assert_eq!(defaults.listen.port(), 50052);
        assert_eq!(defaults.help_desk, HelpDeskPolicy::default());
    }
}
