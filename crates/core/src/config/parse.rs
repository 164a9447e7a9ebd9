//! The text forms settings are written in: durations, sizes, counts,
//! switches and the log format.

use std::{str::FromStr, time::Duration};

/// Parses `500ms`, `15s`, `5m`, `2h`, `1d`, or a bare number of seconds
/// (pulse-railway's `*_SECONDS` variables are bare numbers).
/// Splits `15s` / `100MiB` into the number and its unit.
fn number_and_unit(raw: &str) -> Option<(f64, &str)> {
    let s = raw.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    Some((num.parse().ok()?, unit.trim()))
}

pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let (n, unit) = number_and_unit(raw).ok_or_else(|| {
        "expected a duration such as 500ms, 15s, 5m, 2h or a number of seconds".to_string()
    })?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => {
            return Err(format!(
                "unknown duration unit {other:?}; use ms, s, m, h or d"
            ));
        }
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

/// Parses a size: `100MiB`, `512KiB`, `2GiB`, `50MB`, `10kB` or a bare
/// number of bytes.
pub fn parse_size(raw: &str) -> Result<u64, String> {
    let (n, unit) = number_and_unit(raw)
        .ok_or_else(|| "expected a size such as 100MiB, 50MB or a number of bytes".to_string())?;
    let scale: f64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" => 1024.0,
        "mib" => 1024.0 * 1024.0,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit {other:?}; use B, kB, MB, GB, KiB, MiB or GiB"
            ));
        }
    };
    let bytes = n * scale;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        return Err("size out of range".into());
    }
    Ok(bytes as u64)
}

/// A byte count for people: `999 B`, `12.3 KiB`, `40.1 MiB`, `1.20 GiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut unit = UNITS[0];
    for next in &UNITS[1..] {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = next;
    }
    if v < 10.0 {
        format!("{v:.2} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// A count that must be at least 1 (connections, lines, workers).
pub fn parse_positive(raw: &str) -> Result<usize, String> {
    match raw.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".to_string()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

pub fn parse_bool(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// How logs are written: `text` for people, `json` for Railway's log parser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err("expected text or json".into()),
        }
    }
}
