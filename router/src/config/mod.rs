//! Router settings: flags, environment, defaults, validated once at start.

mod resolve;
pub mod settings;

use std::{net::SocketAddr, time::Duration};

use switchyard_core::{RoutingNames, config::LogFormat};

pub use settings::RouterArgs;

pub use crate::pins::Pins;

#[derive(Debug, Clone)]
pub struct Limits {
    pub max_connections: usize,
    /// A burst of connections (every client reconnecting after a reload
    /// broadcast) beyond the accept queue loses SYNs and waits a 1 s
    /// retransmit; std's default of 128 is far too small for that.
    pub listen_backlog: u32,
    pub max_header_bytes: usize,
    /// hyper's parser keeps 100 header slots on the stack; more costs a
    /// heap allocation per request, so only a configured value changes it.
    pub max_header_lines: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    /// Bytes of a request body read before a backend connection is taken.
    pub request_buffer: usize,
    /// Bytes per second an upload must average after `upload_grace`.
    pub min_upload_rate: Option<u64>,
    pub upload_grace: Duration,
    pub backend_connect_timeout: Duration,
    pub backend_timeout: Duration,
    pub shutdown_timeout: Duration,
    pub ws_max_message_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        RouterConfig::default().limits
    }
}

/// Asset fallthrough: which paths, and how many other deployments to ask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assets {
    pub prefixes: Vec<String>,
    pub tries: usize,
}

impl Default for Assets {
    fn default() -> Self {
        RouterConfig::default().assets
    }
}

#[derive(Debug, Clone)]
pub struct RouterConfig {
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    /// Host names the private listener answers besides `localhost` and IP
    /// literals: a page on another name (DNS rebinding) gets nothing.
    pub metrics_hosts: Vec<String>,
    /// The metrics address was configured, not defaulted: failing to bind it
    /// is fatal. A defaulted one that is taken only costs the metrics.
    pub metrics_explicit: bool,
    pub redis_url: Option<String>,
    pub redis_prefix: String,
    pub replica_id: String,
    pub log_format: LogFormat,
    pub names: RoutingNames,
    pub rollout_key_header: Option<String>,
    /// Keep the client's X-Forwarded-Proto/Host (behind a trusted edge such
    /// as Railway's) instead of setting them from the connection.
    pub trust_forwarded: bool,
    /// Cookies the router sets are `Secure` always (else only when a
    /// trusted `X-Forwarded-Proto` says the client came over https).
    pub secure_cookies: bool,
    /// One JSON line per request on stdout.
    pub access_log: bool,
    pub assets: Assets,
    pub pins: Pins,
    pub limits: Limits,
    pub heartbeat_interval: Duration,
    pub lease_ttl: Duration,
    pub reload_interval: Duration,
    /// Runtime worker threads; `None` means one per core.
    pub worker_threads: Option<usize>,
    /// The in-router janitor's period; `None` leaves the janitor to cron.
    pub janitor_interval: Option<Duration>,
    /// Every setting as resolved, for the start-up log line.
    pub summary: String,
}

/// Every declared default: what a router started with no flags and no
/// variables runs with.
impl Default for RouterConfig {
    fn default() -> Self {
        let nothing: [(&str, &str); 0] = [];
        Self::resolve(&nothing)
            .unwrap_or_else(|e| unreachable!("a declared router default does not parse: {e}"))
    }
}

impl RouterConfig {
    /// Worker threads: as configured, else one per core.
    pub fn workers(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The configuration as one log line: every setting as resolved,
    /// credentials removed.
    pub fn summary(&self) -> &str {
        &self.summary
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use switchyard_core::config::{ConfigError, command, settings_page, with_command_line};

    use super::{settings::ALL, *};

    #[test]
    fn the_settings_page_is_what_the_declarations_say() {
        settings_page("switchyard-router", ALL).unwrap_or_else(|e| panic!("{e}"));
    }

    #[test]
    fn every_flag_has_help_and_every_setting_says_its_variables() {
        let cmd = command(RouterArgs::command(), ALL);
        for arg in cmd.get_arguments() {
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            assert!(
                !help.trim().is_empty(),
                "--{} has no help text",
                arg.get_id()
            );
            // `--health-check` is an action, not a setting.
            if arg.get_id() != "health-check" && arg.get_id() != "health_check" {
                assert!(help.contains("[env: "), "--{}: {help}", arg.get_id());
            }
        }
    }

    #[test]
    fn the_summary_names_every_setting_and_no_secret() {
        let c = parse(
            &["--pin-secret", &"k".repeat(32)],
            &[("REDIS_URL", "redis://:hunter2@kv:6379")],
        )
        .unwrap();
        let line = c.summary();
        for s in ALL.iter().filter(|s| s.flag().starts_with("--")) {
            let name = s.flag().trim_start_matches('-');
            assert!(
                line.contains(&format!("{name}=")),
                "{name} missing from {line}"
            );
        }
        assert!(line.contains("pin-secret=set"), "{line}");
        assert!(
            !line.contains("hunter2") && !line.contains("kkkk"),
            "{line}"
        );
    }

    fn parse(flags: &[&str], env: &[(&str, &str)]) -> Result<RouterConfig, ConfigError> {
        let argv = [&["switchyard-router"], flags].concat();
        with_command_line(
            RouterArgs::command(),
            ALL,
            &argv,
            env,
            RouterConfig::resolve,
        )
        .unwrap()
    }

    #[test]
    fn upload_settings_parse_and_refuse_nonsense_by_name() {
        let c = parse(&[], &[]).unwrap();
        assert_eq!(c.limits.request_buffer, 64 * 1024);
        assert_eq!(c.limits.min_upload_rate, Some(1024));
        assert_eq!(c.limits.upload_grace, Duration::from_secs(10));
        let c = parse(
            &["--request-buffer", "0", "--min-upload-rate", "off"],
            &[("SWITCHYARD_UPLOAD_GRACE", "1m")],
        )
        .unwrap();
        assert_eq!(c.limits.request_buffer, 0);
        assert_eq!(c.limits.min_upload_rate, None);
        assert_eq!(c.limits.upload_grace, Duration::from_secs(60));
        let c = parse(&["--min-upload-rate", "10KiB/s"], &[]).unwrap();
        assert_eq!(c.limits.min_upload_rate, Some(10 * 1024));
        for (var, value) in [
            ("SWITCHYARD_REQUEST_BUFFER", "lots"),
            ("SWITCHYARD_REQUEST_BUFFER", "1GiB"),
            ("SWITCHYARD_MIN_UPLOAD_RATE", "0"),
            ("SWITCHYARD_UPLOAD_GRACE", "soon"),
        ] {
            let err = parse(&[], &[(var, value)])
                .err()
                .unwrap_or_else(|| panic!("{var}={value} accepted"))
                .to_string();
            assert!(err.contains(var), "{err}");
        }
    }

    #[test]
    fn defaults_match_pulse_railway() {
        let c = parse(&[], &[]).unwrap();
        assert_eq!(c.listen.port(), 8000);
        assert_eq!(c.redis_prefix, "pulse:railway");
        assert_eq!(c.names.query_param, "pulse_deployment");
        assert_eq!(c.names.header, "x-pulse-deployment");
        assert_eq!(c.names.cookie, None);
        assert_eq!(c.heartbeat_interval, Duration::from_secs(15));
        assert_eq!(c.lease_ttl, Duration::from_secs(45));
        assert_eq!(c.limits.listen_backlog, 4096);
        let c = parse(&[], &[("SWITCHYARD_LISTEN_BACKLOG", "16384")]).unwrap();
        assert_eq!(c.limits.listen_backlog, 16384);
        let err = parse(&[], &[("SWITCHYARD_LISTEN_BACKLOG", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("SWITCHYARD_LISTEN_BACKLOG"),
            "{err}"
        );
    }

    #[test]
    fn reads_env_names_operators_already_use() {
        let c = parse(
            &[],
            &[
                ("PORT", "9000"),
                ("PULSE_KV_URL", "redis://kv:6379"),
                ("PULSE_RAILWAY_REDIS_PREFIX", "acme"),
                ("PULSE_RAILWAY_ROUTER_CONNECTION_LIMIT", "2048"),
                ("SWITCHYARD_METRICS_LISTEN", "off"),
            ],
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.redis_url.as_deref(), Some("redis://kv:6379"));
        assert_eq!(c.redis_prefix, "acme");
        assert_eq!(c.limits.max_connections, 2048);
        assert_eq!(c.metrics_listen, None);
    }

    #[test]
    fn bad_values_name_the_setting() {
        type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
        let cases: &[Case] = &[
            (&["--listen", "nowhere"], &[], "--listen"),
            (
                &[],
                &[("SWITCHYARD_IDLE_TIMEOUT", "forever")],
                "SWITCHYARD_IDLE_TIMEOUT",
            ),
            (
                &[],
                &[("SWITCHYARD_MAX_CONNECTIONS", "0")],
                "SWITCHYARD_MAX_CONNECTIONS",
            ),
            (&["--max-header-bytes", "100"], &[], "at least 8192"),
            (
                &["--affinity-header", "bad header"],
                &[],
                "--affinity-header",
            ),
            (
                &["--heartbeat-interval", "30s", "--lease-ttl", "20s"],
                &[],
                "longer than the heartbeat",
            ),
            (&["--log-format", "xml"], &[], "text or json"),
        ];
        for (flags, env, needle) in cases {
            let err = parse(flags, env).unwrap_err().to_string();
            assert!(err.contains(needle), "{flags:?} {env:?}: {err}");
        }
    }
}
