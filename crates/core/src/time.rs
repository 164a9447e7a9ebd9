//! Wall-clock timestamps as stored: Unix seconds with a fractional part, the
//! representation pulse-railway's records already use.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct UnixTime(pub f64);

impl UnixTime {
    pub fn now() -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self(since.as_secs_f64())
    }

    pub fn from_secs(secs: f64) -> Self {
        Self(secs)
    }

    pub fn secs(self) -> f64 {
        self.0
    }

    /// Time elapsed from `earlier` to `self`, zero when the clock went back.
    pub fn since(self, earlier: UnixTime) -> Duration {
        Duration::try_from_secs_f64(self.0 - earlier.0).unwrap_or(Duration::ZERO)
    }

    pub fn plus(self, d: Duration) -> Self {
        Self(self.0 + d.as_secs_f64())
    }

    /// `2026-12-02T00:41:07Z`: RFC 3339 in UTC, to the second.
    pub fn rfc3339(self) -> String {
        let secs = self.0.max(0.0) as i64;
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        // Days since the epoch to a civil date (the proleptic Gregorian
        // calendar), by eras of 400 years.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }
}

/// Renders a duration the way an operator reads it: `42s`, `5m`, `3h12m`, `2d4h`.
pub fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{}h", s / 86400, (s % 86400) / 3600),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_in_utc() {
        assert_eq!(UnixTime(0.0).rfc3339(), "1970-01-01T00:00:00Z");
        assert_eq!(UnixTime(951_782_400.0).rfc3339(), "2000-02-29T00:00:00Z");
        assert_eq!(UnixTime(1_796_172_067.9).rfc3339(), "2026-12-02T00:41:07Z");
    }

    #[test]
    fn since_never_goes_negative() {
        assert_eq!(UnixTime(10.0).since(UnixTime(20.0)), Duration::ZERO);
        assert_eq!(
            UnixTime(20.5).since(UnixTime(20.0)),
            Duration::from_millis(500)
        );
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(Duration::from_secs(42)), "42s");
        assert_eq!(human_duration(Duration::from_secs(300)), "5m");
        assert_eq!(human_duration(Duration::from_secs(3 * 3600 + 720)), "3h12m");
        assert_eq!(
            human_duration(Duration::from_secs(2 * 86400 + 4 * 3600)),
            "2d4h"
        );
    }
}
