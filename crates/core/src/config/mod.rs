//! Typed configuration from flags, the environment and a settings file,
//! resolved once at start.
//!
//! Each setting is declared once ([`Setting`]); programs build their clap
//! arguments from the declarations ([`help`]), and resolve each setting
//! here: the flag, then its variables in order (then the settings file,
//! where the program layers one under them), then its default. Sources are
//! read through [`EnvSource`] so tests inject a map instead of touching the
//! process, and every error names the flag and variables that set the bad
//! value.

mod doc;
mod help;
mod parse;
mod setting;
mod source;

use std::{cell::RefCell, fmt};

pub use doc::{check_doc, doc_table, settings_page};
pub use help::{Flags, command, global, parse_args, with_command_line};
pub use parse::{LogFormat, human_bytes, parse_bool, parse_duration, parse_positive, parse_size};
pub use setting::{Bytes, Declared, Fallback, Setting, Value, duration_text};
pub use source::{EnvSource, ProcessEnv};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value {value:?} for {setting} (from {source_name}): {reason}")]
    Invalid {
        setting: String,
        source_name: String,
        value: String,
        reason: String,
    },
    #[error("missing setting {setting}: {hint}")]
    Missing { setting: String, hint: String },
}

impl ConfigError {
    pub fn missing<T>(setting: &Setting<T>, hint: impl Into<String>) -> Self {
        Self::Missing {
            setting: setting.to_string(),
            hint: hint.into(),
        }
    }

    /// A value that parsed but does not fit with another setting.
    pub fn invalid<T>(
        setting: &Setting<T>,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Self::Invalid {
            setting: setting.to_string(),
            source_name: "configuration".into(),
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

/// Resolves settings against one source, remembering what each resolved
/// to for the effective-configuration line.
pub struct Resolver<'a> {
    src: &'a dyn EnvSource,
    seen: RefCell<Vec<(&'static str, String)>>,
}

impl<'a> Resolver<'a> {
    pub fn new(src: &'a dyn EnvSource) -> Self {
        Self {
            src,
            seen: RefCell::new(Vec::new()),
        }
    }

    /// The raw text and where it came from: the flag, else the first
    /// variable that is set and not empty (an empty variable on Railway
    /// means "unset").
    pub fn raw<T>(&self, setting: &Setting<T>) -> Option<(String, &'static str)> {
        if let Some(v) = Some(setting.flag)
            .filter(|f| !f.is_empty())
            .and_then(|f| self.src.flag(f))
        {
            return Some((v, setting.flag));
        }
        setting.env.iter().find_map(|name| {
            self.src
                .var(name)
                .filter(|v| !v.trim().is_empty())
                .map(|v| (v, *name))
        })
    }

    /// The value set, else the typed default; `None` when neither (the
    /// program requires it, does without it, or works it out).
    pub fn optional<T>(&self, setting: &Setting<T>) -> Result<Option<T>, ConfigError> {
        let value = match self.raw(setting) {
            Some((raw, from)) => {
                Some(
                    (setting.parse)(&raw).map_err(|reason| ConfigError::Invalid {
                        setting: setting.to_string(),
                        source_name: from.to_string(),
                        value: crate::redact::value(&setting.names(), &raw),
                        reason,
                    })?,
                )
            }
            None => setting.default_value(),
        };
        let shown = match (&value, setting.fallback) {
            (Some(v), _) => setting.show(v),
            (None, Fallback::Computed(words)) => words.to_string(),
            (None, _) => "none".to_string(),
        };
        self.seen.borrow_mut().push((setting.id(), shown));
        Ok(value)
    }

    /// The value set, else the default; a setting with neither is missing.
    pub fn get<T>(&self, setting: &Setting<T>) -> Result<T, ConfigError> {
        self.optional(setting)?
            .ok_or_else(|| ConfigError::missing(setting, setting.help))
    }

    /// The value set, else the one `compute` works out at start (a setting
    /// whose default is [`Fallback::Computed`]); the effective
    /// configuration shows what it came to.
    pub fn or_computed<T>(
        &self,
        setting: &Setting<T>,
        compute: impl FnOnce() -> T,
    ) -> Result<T, ConfigError> {
        if let Some(value) = self.optional(setting)? {
            return Ok(value);
        }
        let value = compute();
        let mut seen = self.seen.borrow_mut();
        seen.retain(|(name, _)| *name != setting.id());
        seen.push((setting.id(), setting.show(&value)));
        Ok(value)
    }

    /// As [`Resolver::get`], saying `hint` when it is missing.
    pub fn required<T>(&self, setting: &Setting<T>, hint: &str) -> Result<T, ConfigError> {
        self.optional(setting)?
            .ok_or_else(|| ConfigError::missing(setting, hint))
    }

    /// Every setting resolved so far as `name=value`, secrets as `set`:
    /// the one line a program logs at start.
    pub fn summary(&self) -> String {
        let seen = self.seen.borrow();
        let mut line = String::new();
        for (i, (name, value)) in seen.iter().enumerate() {
            if seen[..i].iter().any(|(n, _)| n == name) {
                continue;
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(name);
            line.push('=');
            if value.contains(' ') {
                line.push_str(&format!("{value:?}"));
            } else {
                line.push_str(value);
            }
        }
        line
    }
}

/// Settings every program shares.
pub mod common {
    use super::{parse::LogFormat, setting::Setting};

    pub const REDIS_URL: Setting<String> = Setting::new(
        "--redis-url",
        &["REDIS_URL", "PULSE_KV_URL", "PULSE_RAILWAY_REDIS_URL"],
        "Redis URL: redis://, rediss:// (TLS), or redis+sentinel://host:26379,.../primary-name",
    )
    .more(
        "`rediss://` is verified against the public web PKI roots; append `#insecure` to skip \
         verification for a self-signed server. `redis+sentinel://` (or `rediss+sentinel://`) finds \
         the primary through Sentinels (README: Running a fleet)",
    )
    .shown_by(|url| crate::redact::Url(Some(url)).to_string());
    pub const REDIS_PREFIX: Setting<String> = Setting::new(
        "--redis-prefix",
        &["PULSE_RAILWAY_REDIS_PREFIX"],
        "Prefix of every Redis key",
    )
    .default(|| crate::names::DEFAULT_PREFIX.to_string());
    pub const LOG_FORMAT: Setting<LogFormat> = Setting::new(
        "--log-format",
        &["SWITCHYARD_LOG_FORMAT"],
        "Log format, text or json",
    )
    .more("the level comes from `RUST_LOG` (default `info`)")
    .default(|| LogFormat::Text);
    pub const INTERNAL_TOKEN: Setting<String> = Setting::new(
        "--internal-token",
        &["PULSE_RAILWAY_INTERNAL_TOKEN"],
        "Token for the backends' internal endpoints",
    )
    .more("sent as `x-pulse-railway-internal-token`")
    .secret();
}

#[cfg(test)]
mod tests;
