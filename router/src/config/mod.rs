//! Router settings: flags, environment, defaults, validated once at start.

mod args;
mod resolve;

use std::{net::SocketAddr, time::Duration};

pub use args::{RouterArgs, settings};
use resolve::default_replica_id;
use switchyard_core::{RoutingNames, config::LogFormat, names::DEFAULT_PREFIX};

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
        Self {
            max_connections: 10_000,
            listen_backlog: 4096,
            max_header_bytes: 64 * 1024,
            max_header_lines: 100,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            request_buffer: 64 * 1024,
            min_upload_rate: Some(1024),
            upload_grace: Duration::from_secs(10),
            backend_connect_timeout: Duration::from_secs(3),
            backend_timeout: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(30),
            ws_max_message_bytes: 16 * 1024 * 1024,
        }
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
        Self {
            prefixes: ["/assets/", "/_next/static/", "/_app/immutable/"]
                .map(String::from)
                .to_vec(),
            tries: 2,
        }
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
}

impl Default for RouterConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8000)),
            metrics_listen: None,
            metrics_hosts: Vec::new(),
            metrics_explicit: false,
            redis_url: None,
            redis_prefix: DEFAULT_PREFIX.into(),
            replica_id: default_replica_id(),
            log_format: LogFormat::Text,
            names: RoutingNames::default(),
            rollout_key_header: None,
            trust_forwarded: false,
            secure_cookies: false,
            access_log: false,
            assets: Assets::default(),
            pins: Pins {
                keys: None,
                previous_grace: Duration::from_secs(3600),
                ttl: Duration::from_secs(86_400),
                max_age: None,
            },
            limits: Limits::default(),
            heartbeat_interval: Duration::from_secs(15),
            lease_ttl: Duration::from_secs(45),
            reload_interval: Duration::from_secs(10),
            worker_threads: None,
            janitor_interval: None,
        }
    }
}

impl RouterConfig {
    /// Worker threads: as configured, else one per core.
    pub fn workers(&self) -> usize {
        self.worker_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }

    /// The configuration as one log line: every setting an operator may
    /// need to check, credentials removed.
    pub fn summary(&self) -> String {
        let l = &self.limits;
        let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
        format!(
            "listen={} metrics={} redis={} prefix={} replica={} query_param={} header={} cookie={} \
             rollout_key={} trust_forwarded={} secure_cookies={} access_log={} max_connections={} max_header_bytes={} \
             max_header_lines={} header_read_timeout={:?} idle_timeout={:?} request_buffer={} min_upload_rate={} \
             upload_grace={:?} backend_connect_timeout={:?} \
             backend_timeout={:?} shutdown_timeout={:?} heartbeat={:?} lease_ttl={:?} reload={:?} \
             ws_max_message_bytes={} workers={} asset_paths={} asset_tries={} pins={} pin_ttl={:?} \
             max_pin_age={} janitor={}",
            self.listen,
            self.metrics_listen
                .map_or_else(|| "off".into(), |a| a.to_string()),
            switchyard_core::redact::Url(self.redis_url.as_deref()),
            self.redis_prefix,
            self.replica_id,
            self.names.query_param,
            self.names.header,
            opt(&self.names.cookie),
            opt(&self.rollout_key_header),
            self.trust_forwarded,
            self.secure_cookies,
            self.access_log,
            l.max_connections,
            l.max_header_bytes,
            l.max_header_lines,
            l.header_read_timeout,
            l.idle_timeout,
            l.request_buffer,
            l.min_upload_rate
                .map_or_else(|| "off".into(), |r| format!("{r}/s")),
            l.upload_grace,
            l.backend_connect_timeout,
            l.backend_timeout,
            l.shutdown_timeout,
            self.heartbeat_interval,
            self.lease_ttl,
            self.reload_interval,
            l.ws_max_message_bytes,
            self.worker_threads
                .map_or_else(|| "per-core".into(), |n| n.to_string()),
            if self.assets.prefixes.is_empty() {
                "off".into()
            } else {
                self.assets.prefixes.join(",")
            },
            self.assets.tries,
            if self.pins.strict() { "strict" } else { "ids" },
            self.pins.ttl,
            self.pins
                .max_age
                .map_or_else(|| "off".into(), |d| format!("{d:?}")),
            self.janitor_interval
                .map_or_else(|| "cron".into(), |d| format!("every {d:?}")),
        )
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use switchyard_core::config::ConfigError;

    use super::*;

    #[test]
    fn every_setting_is_a_flag_and_every_flag_says_its_variables() {
        use clap::CommandFactory;
        use switchyard_core::config::{unmatched, without_variables};
        assert!(unmatched(&RouterArgs::command(), settings::ALL).is_empty());
        // `--health-check` is an action, not a setting.
        let bare: Vec<String> = without_variables(RouterArgs::command(), settings::ALL)
            .into_iter()
            .filter(|long| long != "health-check")
            .collect();
        assert!(
            bare.is_empty(),
            "flags whose help names no variable: {bare:?}"
        );
    }

    #[test]
    fn docs_settings_names_every_setting_and_variable() {
        use switchyard_core::config::{doc_section, undocumented};
        let doc = include_str!("../../../docs/settings.md");
        let section = doc_section(doc, "`switchyard-router`");
        assert!(section.starts_with("# `switchyard-router`"));
        let missing = undocumented(section, "", settings::ALL);
        assert!(missing.is_empty(), "docs/settings.md lacks {missing:?}");
    }

    #[test]
    fn every_flag_has_help() {
        use clap::CommandFactory;
        for arg in RouterArgs::command().get_arguments() {
            assert!(
                arg.get_help()
                    .is_some_and(|h| !h.to_string().trim().is_empty()),
                "--{} has no help text",
                arg.get_id()
            );
        }
    }

    fn parse(flags: &[&str], env: &[(&str, &str)]) -> Result<RouterConfig, ConfigError> {
        let mut argv = vec!["switchyard-router"];
        argv.extend_from_slice(flags);
        let args = RouterArgs::try_parse_from(argv).unwrap();
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        RouterConfig::from_args(&args, &env)
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
