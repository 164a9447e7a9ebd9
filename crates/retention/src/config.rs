//! Janitor settings, resolved once from flags and the environment.

use std::time::Duration;

use clap::Parser;
use switchyard_core::{
    config::{ConfigError, EnvSource, LogFormat, Resolver, Setting, common},
    names::DEFAULT_PREFIX,
};

use crate::plan::Policy;

/// Flags; each has an environment variable too (see the README).
#[derive(Debug, Default, Parser)]
#[command(
    name = "switchyard-janitor",
    version,
    about = "Reload clients of drained deployments and delete idle ones (one run)"
)]
pub struct JanitorArgs {
    /// Redis URL: redis://, rediss:// (TLS), or redis+sentinel://host:26379,.../primary-name
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key
    #[arg(long)]
    pub redis_prefix: Option<String>,
    /// Delete a draining deployment once it has had no websockets and no HTTP traffic this long
    #[arg(long)]
    pub idle_grace: Option<String>,
    /// Reload a draining deployment's clients once it has drained this long
    #[arg(long)]
    pub reload_after: Option<String>,
    /// Delete a draining deployment after this long whatever its traffic
    #[arg(long)]
    pub max_drain_age: Option<String>,
    /// Keep at most this many draining deployments, retiring the oldest
    #[arg(long)]
    pub max_draining: Option<String>,
    /// Keep every draining deployment at least this long, whatever its leases say, e.g. your CDN's max-age for documents
    #[arg(long)]
    pub retention_floor: Option<String>,
    /// Delete a preview (pending, never promoted, no rollout share) this long after it was registered, or "off"
    #[arg(long)]
    pub preview_max_age: Option<String>,
    /// Wait this long after a reload before deleting, so clients move over
    #[arg(long)]
    pub reload_grace: Option<String>,
    /// Spread a reload's websocket closes over this window
    #[arg(long)]
    pub reload_window: Option<String>,
    /// Token for the backends' internal endpoints
    #[arg(long)]
    pub internal_token: Option<String>,
    /// static (backends run elsewhere) or railway
    #[arg(long)]
    pub platform: Option<String>,
    /// Deployments handled at once
    #[arg(long)]
    pub concurrency: Option<String>,
    /// Timeout of each backend call
    #[arg(long)]
    pub probe_timeout: Option<String>,
    /// Print one JSON object instead of a summary
    #[arg(long)]
    pub json: bool,
    /// Print the decisions and change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Log format, text or json
    #[arg(long)]
    pub log_format: Option<String>,
    /// Railway project of the stack
    #[arg(long)]
    pub project_id: Option<String>,
    /// Railway environment of the stack
    #[arg(long)]
    pub environment_id: Option<String>,
}

/// Every janitor setting: flag, variables, default. `--help` and the
/// resolver both read these.
pub mod settings {
    use super::Setting;
    use switchyard_core::config::common;

    pub const IDLE_GRACE: Setting =
        Setting::new("--idle-grace", &["SWITCHYARD_IDLE_GRACE"]).defaults_to("10m");
    pub const RELOAD_AFTER: Setting =
        Setting::new("--reload-after", &["SWITCHYARD_RELOAD_AFTER"]).defaults_to("30m");
    pub const MAX_DRAIN_AGE: Setting = Setting::new(
        "--max-drain-age",
        &[
            "SWITCHYARD_MAX_DRAIN_AGE",
            "PULSE_RAILWAY_DRAIN_TTL_SECONDS",
        ],
    )
    .defaults_to("24h");
    pub const MAX_DRAINING: Setting =
        Setting::new("--max-draining", &["SWITCHYARD_MAX_DRAINING"]).defaults_to("no cap");
    pub const RETENTION_FLOOR: Setting =
        Setting::new("--retention-floor", &["SWITCHYARD_RETENTION_FLOOR"]).defaults_to("0s");
    pub const PREVIEW_MAX_AGE: Setting =
        Setting::new("--preview-max-age", &["SWITCHYARD_PREVIEW_MAX_AGE"]).defaults_to("7d");
    pub const RELOAD_GRACE: Setting =
        Setting::new("--reload-grace", &["SWITCHYARD_RELOAD_GRACE"]).defaults_to("2s");
    pub const RELOAD_WINDOW: Setting =
        Setting::new("--reload-window", &["SWITCHYARD_RELOAD_WINDOW"]).defaults_to("30s");
    pub const PLATFORM: Setting = Setting::new("--platform", &["SWITCHYARD_PLATFORM"])
        .defaults_to("railway on Railway, else static");
    pub const CONCURRENCY: Setting =
        Setting::new("--concurrency", &["SWITCHYARD_JANITOR_CONCURRENCY"]).defaults_to("4");
    pub const PROBE_TIMEOUT: Setting =
        Setting::new("--probe-timeout", &["SWITCHYARD_PROBE_TIMEOUT"]).defaults_to("10s");
    pub const JSON: Setting = Setting::new("--json", &["SWITCHYARD_JSON"]);
    pub const DRY_RUN: Setting = Setting::new("--dry-run", &["SWITCHYARD_DRY_RUN"]);
    /// Railway sets this in every service it runs.
    pub const RAILWAY_PROJECT: Setting = Setting::new("--platform", &["RAILWAY_PROJECT_ID"]);
    pub const PROJECT_ID: Setting =
        Setting::new("--project-id", &["RAILWAY_PROJECT_ID"]).defaults_to("set by Railway");
    pub const ENVIRONMENT_ID: Setting =
        Setting::new("--environment-id", &["RAILWAY_ENVIRONMENT_ID"]).defaults_to("set by Railway");
    pub const TOKEN: Setting = Setting::new("(token)", &["RAILWAY_API_TOKEN", "RAILWAY_TOKEN"]);

    /// The settings `--help` describes.
    pub const ALL: &[Setting] = &[
        common::REDIS_URL,
        common::REDIS_PREFIX,
        common::LOG_FORMAT,
        common::INTERNAL_TOKEN,
        IDLE_GRACE,
        RELOAD_AFTER,
        MAX_DRAIN_AGE,
        MAX_DRAINING,
        RETENTION_FLOOR,
        PREVIEW_MAX_AGE,
        RELOAD_GRACE,
        RELOAD_WINDOW,
        PLATFORM,
        CONCURRENCY,
        PROBE_TIMEOUT,
        JSON,
        DRY_RUN,
        PROJECT_ID,
        ENVIRONMENT_ID,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    Static,
    Railway,
}

#[derive(Debug, Clone)]
pub struct JanitorConfig {
    pub redis_url: String,
    pub redis_prefix: String,
    pub policy: Policy,
    pub reload_grace: Duration,
    pub reload_window: Duration,
    pub internal_token: Option<String>,
    pub platform: PlatformKind,
    pub concurrency: usize,
    pub probe_timeout: Duration,
    pub json: bool,
    pub dry_run: bool,
    pub log_format: LogFormat,
}

impl JanitorConfig {
    /// Resolves every setting but the platform's credentials: where
    /// deployments run is known here, how to reach the platform's API is the
    /// cron janitor's business (`switchyard-janitor`), never a router's.
    pub fn from_args(args: &JanitorArgs, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        use settings::*;
        let r = Resolver::new(env);
        let d = Policy::default();
        let on_railway = r.raw(RAILWAY_PROJECT, None).is_some();
        let platform = r
            .optional_with(PLATFORM, args.platform.as_deref(), |s| match s {
                "static" => Ok(PlatformKind::Static),
                "railway" => Ok(PlatformKind::Railway),
                _ => Err("expected static or railway".into()),
            })?
            .unwrap_or(if on_railway {
                PlatformKind::Railway
            } else {
                PlatformKind::Static
            });
        let positive = switchyard_core::config::parse_positive;
        let config = Self {
            redis_url: r.required(
                common::REDIS_URL,
                args.redis_url.as_deref(),
                "the janitor reads deployments from Redis",
            )?,
            redis_prefix: r.value(
                common::REDIS_PREFIX,
                args.redis_prefix.as_deref(),
                DEFAULT_PREFIX.to_string(),
            )?,
            policy: Policy {
                idle_grace: r.duration(IDLE_GRACE, args.idle_grace.as_deref(), d.idle_grace)?,
                reload_after: r.duration(
                    RELOAD_AFTER,
                    args.reload_after.as_deref(),
                    d.reload_after,
                )?,
                max_drain_age: r.duration(
                    MAX_DRAIN_AGE,
                    args.max_drain_age.as_deref(),
                    d.max_drain_age,
                )?,
                max_draining: r.optional_with(MAX_DRAINING, args.max_draining.as_deref(), |s| {
                    s.trim().parse::<usize>().map_err(|e| e.to_string())
                })?,
                retention_floor: r.duration(
                    RETENTION_FLOOR,
                    args.retention_floor.as_deref(),
                    d.retention_floor,
                )?,
                preview_max_age: r
                    .optional_with(PREVIEW_MAX_AGE, args.preview_max_age.as_deref(), |s| {
                        if s.trim().eq_ignore_ascii_case("off") {
                            Ok(None)
                        } else {
                            switchyard_core::config::parse_duration(s).map(Some)
                        }
                    })?
                    .unwrap_or(d.preview_max_age),
            },
            reload_grace: r.duration(
                RELOAD_GRACE,
                args.reload_grace.as_deref(),
                Duration::from_secs(2),
            )?,
            reload_window: r.duration(
                RELOAD_WINDOW,
                args.reload_window.as_deref(),
                Duration::from_secs(30),
            )?,
            internal_token: r.optional(common::INTERNAL_TOKEN, args.internal_token.as_deref())?,
            platform,
            concurrency: r
                .optional_with(CONCURRENCY, args.concurrency.as_deref(), positive)?
                .unwrap_or(4),
            probe_timeout: r.duration(
                PROBE_TIMEOUT,
                args.probe_timeout.as_deref(),
                Duration::from_secs(10),
            )?,
            json: r.flag_bool(JSON, args.json)?,
            dry_run: r.flag_bool(DRY_RUN, args.dry_run)?,
            log_format: r.value(
                common::LOG_FORMAT,
                args.log_format.as_deref(),
                LogFormat::Text,
            )?,
        };
        let p = &config.policy;
        if p.retention_floor > p.max_drain_age {
            // Shown as the user wrote it, from where they wrote it.
            let (value, source_name) = r
                .raw(RETENTION_FLOOR, args.retention_floor.as_deref())
                .unwrap_or_else(|| {
                    (
                        switchyard_core::time::human_duration(p.retention_floor),
                        "default",
                    )
                });
            let ceiling = match r.raw(MAX_DRAIN_AGE, args.max_drain_age.as_deref()) {
                Some((v, from)) => format!("{v}, from {from}"),
                None => format!(
                    "{}, the default of {MAX_DRAIN_AGE}",
                    switchyard_core::time::human_duration(p.max_drain_age)
                ),
            };
            return Err(ConfigError::Invalid {
                setting: RETENTION_FLOOR.to_string(),
                source_name: source_name.into(),
                value,
                reason: format!(
                    "must not exceed the max drain age ({ceiling}): the floor keeps what the cap would delete"
                ),
            });
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_settings_names_every_setting_and_variable() {
        use switchyard_core::config::{doc_section, undocumented};
        let doc = include_str!("../../../docs/settings.md");
        let section = doc_section(doc, "`switchyard-janitor`");
        assert!(section.starts_with("# `switchyard-janitor`"));
        // The janitor's shared settings are documented "as the router".
        let router = doc_section(doc, "`switchyard-router`");
        let missing = undocumented(section, router, settings::ALL);
        assert!(missing.is_empty(), "docs/settings.md lacks {missing:?}");
    }

    #[test]
    fn every_setting_is_a_flag_and_every_flag_says_its_variables() {
        use clap::CommandFactory;
        use switchyard_core::config::{unmatched, without_variables};
        assert!(unmatched(&JanitorArgs::command(), settings::ALL).is_empty());
        let bare = without_variables(JanitorArgs::command(), settings::ALL);
        assert!(
            bare.is_empty(),
            "flags whose help names no variable: {bare:?}"
        );
    }

    #[test]
    fn every_flag_has_help() {
        use clap::CommandFactory;
        for arg in JanitorArgs::command().get_arguments() {
            assert!(
                arg.get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "--{} has no help text",
                arg.get_id()
            );
        }
    }

    fn parse(flags: &[&str], env: &[(&str, &str)]) -> Result<JanitorConfig, ConfigError> {
        let mut argv = vec!["switchyard-janitor"];
        argv.extend_from_slice(flags);
        let args = JanitorArgs::try_parse_from(argv).unwrap();
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        JanitorConfig::from_args(&args, &env)
    }

    #[test]
    fn a_floor_above_the_ceiling_is_shown_as_written_from_where_it_was_written() {
        let err = parse(&["--retention-floor", "2d"], &[("REDIS_URL", "redis://r")])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"2d\"") && err.contains("(from --retention-floor)"),
            "{err}"
        );
        let err = parse(
            &["--max-drain-age", "1h"],
            &[
                ("REDIS_URL", "redis://r"),
                ("SWITCHYARD_RETENTION_FLOOR", "90m"),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"90m\"")
                && err.contains("(from SWITCHYARD_RETENTION_FLOOR)")
                && err.contains("1h, from --max-drain-age"),
            "{err}"
        );
    }

    #[test]
    fn pulse_railway_names_and_defaults() {
        let c = parse(
            &[],
            &[
                ("REDIS_URL", "redis://r:6379"),
                ("PULSE_RAILWAY_DRAIN_TTL_SECONDS", "3600"),
                ("PULSE_RAILWAY_INTERNAL_TOKEN", "s3cret"),
            ],
        )
        .unwrap();
        assert_eq!(c.policy.max_drain_age, Duration::from_secs(3600));
        assert_eq!(c.policy.idle_grace, Duration::from_secs(600));
        assert_eq!(c.policy.reload_after, Duration::from_secs(1800));
        assert_eq!(c.internal_token.as_deref(), Some("s3cret"));
        assert_eq!(c.redis_prefix, "pulse:railway");
        assert_eq!(c.platform, PlatformKind::Static);
        let on_railway = parse(
            &[],
            &[
                ("REDIS_URL", "redis://r"),
                ("RAILWAY_PROJECT_ID", "p1"),
                ("RAILWAY_ENVIRONMENT_ID", "e1"),
            ],
        )
        .unwrap();
        assert_eq!(
            on_railway.platform,
            PlatformKind::Railway,
            "on Railway, deleting means deleting the service"
        );
    }

    #[test]
    fn errors_name_the_setting() {
        let missing = parse(&[], &[]).unwrap_err().to_string();
        assert!(missing.contains("REDIS_URL"), "{missing}");
        let bad = parse(&["--idle-grace", "soon"], &[("REDIS_URL", "redis://r")])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("--idle-grace"), "{bad}");
        let bad = parse(&["--platform", "heroku"], &[("REDIS_URL", "redis://r")])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("static or railway"), "{bad}");
        let bad = parse(
            &["--retention-floor", "2d", "--max-drain-age", "1d"],
            &[("REDIS_URL", "redis://r")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("--retention-floor") && bad.contains("max drain age"),
            "{bad}"
        );
        let ok = parse(&["--retention-floor", "1h"], &[("REDIS_URL", "redis://r")]).unwrap();
        assert_eq!(ok.policy.retention_floor, Duration::from_secs(3600));
    }
}
