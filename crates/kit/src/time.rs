//! Timestamps are stored as microseconds since the Unix epoch in an `i64`
//! column: portable between SQLite and PostgreSQL and cheap to compare.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
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
        let bad = prost_types::Timestamp { seconds: 1, nanos: -5 };
        assert_eq!(from_timestamp(&bad), None);
    }
}
