//! Timestamps are stored as microseconds since the Unix epoch in an `i64`
//! column: portable between SQLite and PostgreSQL and cheap to compare.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_micros() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

pub fn to_timestamp(micros: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    }
}

pub fn opt_timestamp(micros: Option<i64>) -> Option<prost_types::Timestamp> {
    micros.map(to_timestamp)
}

pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<i64> {
    if !(0..1_000_000_000).contains(&ts.nanos) {
        return None;
    }
    ts.seconds
        .checked_mul(1_000_000)?
        .checked_add(i64::from(ts.nanos) / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_timestamp() {
        for micros in [0, 1, 1_711_929_600_000_000, -1] {
            assert_eq!(from_timestamp(&to_timestamp(micros)), Some(micros));
        }
        let bad = prost_types::Timestamp {
            seconds: 1,
            nanos: -5,
        };
        assert_eq!(from_timestamp(&bad), None);
    }
}

/// Parses an ISO 8601 calendar date (`YYYY-MM-DD`) as midnight UTC.
/// prost-types does the calendar (month lengths, leap years); only the
/// date-only form is ours, since its parser wants a full RFC 3339 instant.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let day: u8 = parts.next()?.parse().ok()?;
    from_timestamp(&prost_types::Timestamp::date(year, month, day).ok()?)
}

#[cfg(test)]
mod date_tests {
    #[test]
    fn parses_calendar_dates() {
        assert_eq!(super::parse_date("1970-01-01"), Some(0));
        assert_eq!(super::parse_date("2024-04-01"), Some(1_711_929_600_000_000));
        assert_eq!(super::parse_date("2024-02-30"), None);
        assert_eq!(super::parse_date("2024-4"), None);
    }
}

/// RFC 3339 in UTC with second precision, e.g. `2024-04-01T09:30:00Z`
/// (prost-types' `Timestamp` display).
pub fn format_rfc3339(micros: i64) -> String {
    to_timestamp(micros - micros.rem_euclid(1_000_000)).to_string()
}

#[cfg(test)]
mod format_tests {
    #[test]
    fn formats_utc_instants() {
        assert_eq!(super::format_rfc3339(0), "1970-01-01T00:00:00Z");
        let cutover = super::parse_date("2024-04-01").unwrap();
        assert_eq!(
            super::format_rfc3339(cutover + 34_200_000_000),
            "2024-04-01T09:30:00Z"
        );
        assert_eq!(
            super::format_rfc3339(super::parse_date("2000-02-29").unwrap()),
            "2000-02-29T00:00:00Z"
        );
    }
}
