//! Wall-clock helpers. Event timestamps are compared with the wall clock (both
//! sides run on the same machine), so latencies are `event.ts - spawn_wall_ms`.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn wall_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Formats a duration for the agent's CLI: whole seconds as `10s`, anything else
/// in milliseconds (`100ms`, `2500ms`). Both are humantime syntax.
pub fn cli_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis();
    if ms % 1000 == 0 && ms > 0 {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Formats a duration for GNU `timeout` (seconds with a fraction).
pub fn timeout_arg(d: std::time::Duration) -> String {
    format!("{:.3}s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn cli_durations() {
        assert_eq!(cli_duration(Duration::from_millis(100)), "100ms");
        assert_eq!(cli_duration(Duration::from_secs(20)), "20s");
        assert_eq!(cli_duration(Duration::from_millis(2500)), "2500ms");
        assert_eq!(cli_duration(Duration::ZERO), "0ms");
    }

    #[test]
    fn timeout_args() {
        assert_eq!(timeout_arg(Duration::from_millis(10_500)), "10.500s");
    }
}
