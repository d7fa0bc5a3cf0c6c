//! The one timestamp format of Levee's events: RFC 3339, UTC, milliseconds
//! (`2026-11-21T01:44:10.123Z`).

use time::{format_description::FormatItem, macros::format_description, OffsetDateTime};

const RFC3339_MILLIS: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");

/// Formats milliseconds since the Unix epoch. Out-of-range values (beyond year
/// 9999) clamp to the epoch rather than panic: a timestamp must never kill the agent.
pub fn rfc3339_millis(unix_ms: i64) -> String {
    let dt = OffsetDateTime::from_unix_timestamp_nanos(unix_ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    dt.format(RFC3339_MILLIS)
        .unwrap_or_else(|_| "1970-01-01T00:00:00.000Z".to_string())
}

/// Parses the format written by [`rfc3339_millis`] (and any RFC 3339 timestamp)
/// back into milliseconds since the Unix epoch.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((dt.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339_millis(1_795_225_450_123),
            "2026-11-21T01:44:10.123Z"
        );
    }

    #[test]
    fn round_trips() {
        for ms in [0i64, 1, 999, 1_795_225_450_123, 4_102_444_800_000] {
            assert_eq!(parse_rfc3339(&rfc3339_millis(ms)), Some(ms));
        }
    }

    #[test]
    fn absurd_values_do_not_panic() {
        let _ = rfc3339_millis(i64::MAX);
        let _ = rfc3339_millis(i64::MIN);
    }
}
