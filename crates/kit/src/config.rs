//! Typed, layered configuration: each service declares defaults, then reads
//! overrides from a [`Source`] (the process environment in production, a map
//! in tests). A bad value stops start-up with a message naming the setting.

use std::{collections::HashMap, fmt::Display, net::SocketAddr, str::FromStr, time::Duration};

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {key}={value:?}: {reason}")]
pub struct ConfigError {
    pub key: String,
    pub value: String,
    pub reason: String,
}

/// Where settings come from.
pub trait Source {
    fn get(&self, key: &str) -> Option<String>;
}

/// The process environment.
pub struct Environment;

impl Source for Environment {
    fn get(&self, key: &str) -> Option<String> {
        std::env::var(key).ok().filter(|v| !v.is_empty())
    }
}

impl Source for HashMap<String, String> {
    fn get(&self, key: &str) -> Option<String> {
        HashMap::get(self, key).cloned()
    }
}

/// Reads `key` and parses it, or keeps `default` when unset.
pub fn parse_or<T>(source: &dyn Source, key: &str, default: T) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: Display,
{
    match source.get(key) {
        None => Ok(default),
        Some(value) => value.trim().parse().map_err(|err: T::Err| ConfigError {
            key: key.to_owned(),
            reason: err.to_string(),
            value,
        }),
    }
}

/// A secret setting: read from the file named by `<KEY>_FILE` (a mounted
/// Kubernetes Secret) when that is set, else from `<KEY>`, else `default`.
pub fn secret_or(source: &dyn Source, key: &str, default: &str) -> Result<String, ConfigError> {
    let file_key = format!("{key}_FILE");
    match source.get(&file_key) {
        Some(path) => std::fs::read_to_string(&path)
            .map(|text| text.trim().to_owned())
            .map_err(|err| ConfigError {
                key: file_key,
                value: path,
                reason: format!("cannot read it: {err}"),
            }),
        None => Ok(string_or(source, key, default)),
    }
}

pub fn string_or(source: &dyn Source, key: &str, default: &str) -> String {
    source.get(key).unwrap_or_else(|| default.to_owned())
}

/// Durations are written with a unit: `500ms`, `30s`, `5m`, `2h`, `7d`. A bare
/// number is refused: whether `30` meant seconds or milliseconds is a guess.
pub fn duration_or(
    source: &dyn Source,
    key: &str,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match source.get(key) {
        None => Ok(default),
        Some(value) => parse_duration(&value).ok_or_else(|| ConfigError {
            key: key.to_owned(),
            value,
            reason: "expected a number with a unit: 500ms, 30s, 5m, 2h or 7d".into(),
        }),
    }
}

pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    let millis = match unit {
        "ms" => n,
        "s" => n.checked_mul(1_000)?,
        "m" => n.checked_mul(60_000)?,
        "h" => n.checked_mul(3_600_000)?,
        "d" => n.checked_mul(86_400_000)?,
        _ => return None,
    };
    Some(Duration::from_millis(millis))
}

/// A database URL (`<KEY>_FILE` or `<KEY>`, else `default`): SQLite or
/// PostgreSQL, the two backends built in. An SQLite file that does not exist
/// is refused unless the URL asks to create it (`mode=rwc`), as the driver
/// would refuse it, only later and without naming the setting.
pub fn database_url_or(
    source: &dyn Source,
    key: &str,
    default: &str,
) -> Result<String, ConfigError> {
    let value = secret_or(source, key, default)?;
    let refuse = |reason: &str| ConfigError {
        key: key.to_owned(),
        value: crate::db::redacted(&value),
        reason: reason.to_owned(),
    };
    if let Some(rest) = value.strip_prefix("sqlite:") {
        let rest = rest.strip_prefix("//").unwrap_or(rest);
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let creates = query.split('&').any(|pair| pair == "mode=rwc");
        let in_memory = path.is_empty() || path == ":memory:" || query.contains("mode=memory");
        if !in_memory && !creates && !std::path::Path::new(path).exists() {
            return Err(refuse(
                "no such SQLite file; add ?mode=rwc to create it, as the default does",
            ));
        }
        return Ok(value);
    }
    let postgres = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| value.starts_with(scheme));
    if !postgres {
        return Err(refuse(
            "expected sqlite://path?mode=rwc or postgres://user:password@host:port/database",
        ));
    }
    value
        .parse::<sea_orm::sqlx::postgres::PgConnectOptions>()
        .map_err(|err| refuse(&err.to_string()))?;
    Ok(value)
}

pub fn addr_or(source: &dyn Source, key: &str, default: &str) -> Result<SocketAddr, ConfigError> {
    let value = string_or(source, key, default);
    value
        .parse()
        .map_err(|err: std::net::AddrParseError| ConfigError {
            key: key.to_owned(),
            reason: err.to_string(),
            value,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_bad_values_name_the_key() {
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("30"), None, "a bare number is refused");
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("soon"), None);
        let source: HashMap<String, String> = [("X_PORT".to_owned(), "nope".to_owned())].into();
        let err = parse_or::<u16>(&source, "X_PORT", 1).unwrap_err();
        assert!(err.to_string().contains("X_PORT"), "{err}");
        let url = |value: &str| {
            let source: HashMap<String, String> = [("DB_URL".to_owned(), value.to_owned())].into();
            database_url_or(&source, "DB_URL", "")
        };
        for bad in [
            "mysql://u@h/d",
            "garbage",
            "sqlite://no/such/dir/x.db",
            "postgres://u@h:notaport/d",
        ] {
            let err = url(bad).unwrap_err().to_string();
            assert!(err.starts_with("invalid setting DB_URL="), "{bad}: {err}");
        }
        for good in [
            "sqlite://data/x.db?mode=rwc",
            "sqlite::memory:",
            "postgres://u:p@127.0.0.1:5432/d",
        ] {
            assert_eq!(url(good).unwrap(), good);
        }
        let missing: HashMap<String, String> =
            [("DB_URL_FILE".to_owned(), "/nonexistent/url".to_owned())].into();
        assert!(
            secret_or(&missing, "DB_URL", "x")
                .unwrap_err()
                .to_string()
                .contains("DB_URL_FILE")
        );
    }
}
