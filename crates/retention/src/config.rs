//! Janitor settings, resolved once from flags and the environment.

use std::time::Duration;

use switchyard_core::config::{
    ConfigError, EnvSource, LogFormat, Resolver, Setting, common, parse_positive,
};

use crate::plan::Policy;

/// The janitor's flags that are not settings: none, but clap's command
/// (name, version, about) lives here.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "switchyard-janitor",
    version,
    about = "Reload clients of drained deployments and delete idle ones (one run)"
)]
pub struct JanitorArgs {}

/// Every janitor setting, declared once: `--help`, the resolver and
/// docs/settings.md read these.
pub mod settings {
    use std::time::Duration;

    use super::{PlatformKind, Policy, Setting, common, parse_positive};

    switchyard_core::settings! {
        shared common::REDIS_URL, common::REDIS_PREFIX, common::LOG_FORMAT, common::INTERNAL_TOKEN;

        pub IDLE_GRACE: Duration = Setting::new(
            "--idle-grace",
            &["SWITCHYARD_IDLE_GRACE"],
            "Delete a draining deployment once it has had no websockets and no HTTP traffic this long",
        )
        .default(|| Policy::default().idle_grace);
        pub RELOAD_AFTER: Duration = Setting::new(
            "--reload-after",
            &["SWITCHYARD_RELOAD_AFTER"],
            "Reload a draining deployment's remaining websockets once it has drained this long",
        )
        .default(|| Policy::default().reload_after);
        pub MAX_DRAIN_AGE: Duration = Setting::new(
            "--max-drain-age",
            &["SWITCHYARD_MAX_DRAIN_AGE", "PULSE_RAILWAY_DRAIN_TTL_SECONDS"],
            "Delete a draining deployment after this long whatever its traffic",
        )
        .default(|| Policy::default().max_drain_age);
        pub MAX_DRAINING: usize = Setting::new(
            "--max-draining",
            &["SWITCHYARD_MAX_DRAINING"],
            "Keep at most this many draining deployments, retiring the oldest first",
        )
        .computed("no cap");
        pub RETENTION_FLOOR: Duration = Setting::new(
            "--retention-floor",
            &["SWITCHYARD_RETENTION_FLOOR"],
            "Keep every draining deployment at least this long, whatever its leases say, e.g. your CDN's max-age for documents",
        )
        .more("must not exceed `--max-drain-age`")
        .default(|| Policy::default().retention_floor);
        pub PREVIEW_MAX_AGE: Option<Duration> = Setting::new(
            "--preview-max-age",
            &["SWITCHYARD_PREVIEW_MAX_AGE"],
            "Delete a preview (pending, never promoted, no rollout share) this long after it was registered, or \"off\"",
        )
        .more("previews never fall under the idle grace: nobody may have opened one yet")
        .default(|| Policy::default().preview_max_age);
        pub RELOAD_GRACE: Duration = Setting::new(
            "--reload-grace",
            &["SWITCHYARD_RELOAD_GRACE"],
            "Wait this long after a reload before deleting, when clients were connected",
        )
        .default(|| Duration::from_secs(2));
        pub RELOAD_WINDOW: Duration = Setting::new(
            "--reload-window",
            &["SWITCHYARD_RELOAD_WINDOW"],
            "Routers spread a deadline reload's websocket closes over this window",
        )
        .default(|| Duration::from_secs(30));
        pub PLATFORM: PlatformKind = Setting::new(
            "--platform",
            &["SWITCHYARD_PLATFORM"],
            "static (backends run elsewhere: forget the record) or railway (delete the backend's service)",
        )
        .computed("railway when RAILWAY_PROJECT_ID is set, else static");
        /// Railway sets this in every service it runs.
        pub PROJECT_ID: String = Setting::new(
            "--project-id",
            &["RAILWAY_PROJECT_ID"],
            "Railway project of the stack",
        )
        .computed("set by Railway");
        pub ENVIRONMENT_ID: String = Setting::new(
            "--environment-id",
            &["RAILWAY_ENVIRONMENT_ID"],
            "Railway environment of the stack",
        )
        .computed("set by Railway");
        pub CONCURRENCY: usize = Setting::new(
            "--concurrency",
            &["SWITCHYARD_JANITOR_CONCURRENCY"],
            "Deployments handled at once",
        )
        .parsed_by(parse_positive)
        .default(|| 4);
        pub PROBE_TIMEOUT: Duration = Setting::new(
            "--probe-timeout",
            &["SWITCHYARD_PROBE_TIMEOUT"],
            "Timeout of each backend call",
        )
        .default(|| Duration::from_secs(10));
        pub JSON: bool = Setting::switch(
            "--json",
            &["SWITCHYARD_JSON"],
            "Print one JSON object instead of a summary",
        )
        .more("The object holds lock_acquired, scanned, reloaded, deleted, force_deleted, kept with reasons, errors, decisions and outcomes");
        pub DRY_RUN: bool = Setting::switch(
            "--dry-run",
            &["SWITCHYARD_DRY_RUN"],
            "Print the decisions and change nothing",
        );
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    Static,
    Railway,
}

impl switchyard_core::config::Value for PlatformKind {
    fn parse(raw: &str) -> Result<Self, String> {
        match raw.trim() {
            "static" => Ok(Self::Static),
            "railway" => Ok(Self::Railway),
            _ => Err("expected static or railway".into()),
        }
    }
    fn show(&self) -> String {
        match self {
            Self::Static => "static",
            Self::Railway => "railway",
        }
        .into()
    }
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
    /// A janitor configured by nothing but its store: every other setting
    /// at its declared default, on the static platform.
    pub fn with_store(redis_url: &str, redis_prefix: &str) -> Self {
        let src = [
            (common::REDIS_URL.env[0], redis_url),
            (common::REDIS_PREFIX.env[0], redis_prefix),
        ];
        Self::resolve(&src)
            .unwrap_or_else(|e| unreachable!("a declared janitor default does not parse: {e}"))
    }

    /// Resolves every setting but the platform's credentials: where
    /// deployments run is known here, how to reach the platform's API is the
    /// cron janitor's business (`switchyard-janitor`), never a router's.
    pub fn resolve(src: &dyn EnvSource) -> Result<Self, ConfigError> {
        use settings::*;
        let r = Resolver::new(src);
        let on_railway = r.raw(&PROJECT_ID).is_some();
        let config = Self {
            redis_url: r.required(
                &common::REDIS_URL,
                "the janitor reads deployments from Redis",
            )?,
            redis_prefix: r.get(&common::REDIS_PREFIX)?,
            policy: Policy {
                idle_grace: r.get(&IDLE_GRACE)?,
                reload_after: r.get(&RELOAD_AFTER)?,
                max_drain_age: r.get(&MAX_DRAIN_AGE)?,
                max_draining: r.optional(&MAX_DRAINING)?,
                retention_floor: r.get(&RETENTION_FLOOR)?,
                preview_max_age: r.get(&PREVIEW_MAX_AGE)?,
            },
            reload_grace: r.get(&RELOAD_GRACE)?,
            reload_window: r.get(&RELOAD_WINDOW)?,
            internal_token: r.optional(&common::INTERNAL_TOKEN)?,
            platform: r.optional(&PLATFORM)?.unwrap_or(if on_railway {
                PlatformKind::Railway
            } else {
                PlatformKind::Static
            }),
            concurrency: r.get(&CONCURRENCY)?,
            probe_timeout: r.get(&PROBE_TIMEOUT)?,
            json: r.get(&JSON)?,
            dry_run: r.get(&DRY_RUN)?,
            log_format: r.get(&common::LOG_FORMAT)?,
        };
        let p = &config.policy;
        if p.retention_floor > p.max_drain_age {
            // Shown as the user wrote it, from where they wrote it.
            let (value, source_name) = r.raw(&RETENTION_FLOOR).unwrap_or_else(|| {
                (
                    switchyard_core::time::human_duration(p.retention_floor),
                    "default",
                )
            });
            let ceiling = match r.raw(&MAX_DRAIN_AGE) {
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
    fn every_flag_has_help_and_names_its_variables() {
        use clap::CommandFactory;
        let cmd = switchyard_core::config::command(JanitorArgs::command(), settings::ALL);
        for arg in cmd.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(help.contains("[env: "), "--{}: {help:?}", arg.get_id());
        }
    }

    fn parse(flags: &[&str], env: &[(&str, &str)]) -> Result<JanitorConfig, ConfigError> {
        use clap::CommandFactory;
        let argv = [&["switchyard-janitor"], flags].concat();
        switchyard_core::config::with_command_line(
            JanitorArgs::command(),
            settings::ALL,
            &argv,
            env,
            JanitorConfig::resolve,
        )
        .unwrap()
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
