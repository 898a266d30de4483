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
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let year: i64 = parts.next()?.parse().ok()?;
    let month: i64 = parts.next()?.parse().ok()?;
    let day: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days.checked_mul(86_400_000_000)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
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

/// RFC 3339 in UTC with second precision, e.g. `2024-04-01T09:30:00Z`.
pub fn format_rfc3339(micros: i64) -> String {
    let seconds = micros.div_euclid(1_000_000);
    let (days, secs_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
    // Civil date from days since the epoch (inverse of `parse_date`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs_of_day / 3_600,
        secs_of_day % 3_600 / 60,
        secs_of_day % 60
    )
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
