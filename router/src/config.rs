//! Router settings: flags, environment, defaults, validated once at start.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;

pub use crate::pins::Pins;
use switchyard_core::{
    RoutingNames,
    config::{ConfigError, EnvSource, LogFormat, Resolver, Setting, common},
    names::DEFAULT_PREFIX,
};

/// Command-line flags. Every flag also has an environment variable (see the
/// README); flags win.
#[derive(Debug, Default, Parser)]
#[command(
    name = "switchyard-router",
    version,
    about = "Switchyard's public router"
)]
pub struct RouterArgs {
    /// Address to serve public traffic on
    #[arg(long)]
    pub listen: Option<String>,
    /// Private address for /metrics and /snapshot, or "off"
    #[arg(long)]
    pub metrics_listen: Option<String>,
    /// Host names the private listener answers besides loopback and IP addresses, comma-separated (its DNS-rebinding guard)
    #[arg(long)]
    pub metrics_hosts: Option<String>,
    /// Redis URL: redis://, rediss:// (TLS), or redis+sentinel://host:26379,.../primary-name
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Prefix of every Redis key
    #[arg(long)]
    pub redis_prefix: Option<String>,
    /// This replica's id in lease heartbeats
    #[arg(long)]
    pub replica_id: Option<String>,
    /// Log format, text or json
    #[arg(long)]
    pub log_format: Option<String>,
    /// Query parameter that pins a request
    #[arg(long)]
    pub query_param: Option<String>,
    /// Header that pins a request
    #[arg(long)]
    pub affinity_header: Option<String>,
    /// Cookie that pins a request and is set on unpinned responses
    #[arg(long)]
    pub affinity_cookie: Option<String>,
    /// Path prefix of the router's own browser-client endpoints (script, pin status); never forwarded
    #[arg(long)]
    pub client_prefix: Option<String>,
    /// Header whose value keys the sticky rollout split
    #[arg(long)]
    pub rollout_key_header: Option<String>,
    /// Open connections, WebSockets included, before new ones get 503
    #[arg(long)]
    pub max_connections: Option<String>,
    /// Connections the kernel queues for accept before dropping SYNs
    #[arg(long)]
    pub listen_backlog: Option<String>,
    /// Largest request head in bytes; larger gets 431
    #[arg(long)]
    pub max_header_bytes: Option<String>,
    /// Most header lines in an HTTP/1 request head; more gets 431
    #[arg(long)]
    pub max_header_lines: Option<String>,
    /// Time a connection has to send a complete request head, from accept, HTTP/1 and HTTP/2 alike
    #[arg(long)]
    pub header_read_timeout: Option<String>,
    /// Close a connection when nothing moved in either direction for this long
    #[arg(long)]
    pub idle_timeout: Option<String>,
    /// Bytes of a request body read before a backend connection is taken (0: none)
    #[arg(long)]
    pub request_buffer: Option<String>,
    /// Slowest average an upload may arrive at once its grace is over, per second (off: no minimum)
    #[arg(long)]
    pub min_upload_rate: Option<String>,
    /// Time an upload may take before the minimum upload rate applies
    #[arg(long)]
    pub upload_grace: Option<String>,
    /// Time to open a TCP connection to a backend; then 502
    #[arg(long)]
    pub backend_connect_timeout: Option<String>,
    /// Time a backend has to answer with a response head; then 504
    #[arg(long)]
    pub backend_timeout: Option<String>,
    /// On SIGTERM, time in-flight requests and WebSocket closes get before exit
    #[arg(long)]
    pub shutdown_timeout: Option<String>,
    /// How often leases, activity and request counts are written to Redis
    #[arg(long)]
    pub heartbeat_interval: Option<String>,
    /// How long this replica's leases outlive its last heartbeat
    #[arg(long)]
    pub lease_ttl: Option<String>,
    /// Full snapshot reload period, the safety net under pub/sub
    #[arg(long)]
    pub reload_interval: Option<String>,
    /// Largest WebSocket message in bytes; larger closes with 1009
    #[arg(long)]
    pub ws_max_message_bytes: Option<String>,
    /// Keep the client's X-Forwarded-Proto and -Host (behind a trusted edge such as Railway's)
    #[arg(long)]
    pub trust_forwarded: bool,
    /// Mark the router's cookies Secure always (they are whenever a trusted X-Forwarded-Proto says https)
    #[arg(long)]
    pub secure_cookies: bool,
    /// Path prefixes of content-hashed build output whose 404 is retried on older live deployments, comma-separated, or "off"
    #[arg(long)]
    pub asset_paths: Option<String>,
    /// Other live deployments an asset 404 is retried on, newest first; 0 turns fallthrough off
    #[arg(long)]
    pub asset_fallthrough_tries: Option<String>,
    /// Strict mode: sign pins with this secret (32+ bytes) and route only valid, unexpired tokens
    #[arg(long)]
    pub pin_secret: Option<String>,
    /// The secret before a rotation, still accepted for --pin-previous-grace after start
    #[arg(long)]
    pub pin_secret_previous: Option<String>,
    /// How long after start the previous pin secret is accepted
    #[arg(long)]
    pub pin_previous_grace: Option<String>,
    /// Lifetime of the signed pins the router hands out
    #[arg(long)]
    pub pin_ttl: Option<String>,
    /// Pins to a deployment draining longer than this are stale, whatever its leases ("off" for none)
    #[arg(long)]
    pub max_pin_age: Option<String>,
    /// Write one JSON line per request to stdout: id, method, path, status, deployment, duration, bytes
    #[arg(long)]
    pub access_log: bool,
    /// Threads serving traffic
    #[arg(long)]
    pub worker_threads: Option<String>,
    /// Also run the janitor every this long, on whichever router holds its lock; its settings are the janitor's variables (SWITCHYARD_IDLE_GRACE, SWITCHYARD_PLATFORM, ...)
    #[arg(long)]
    pub janitor_interval: Option<String>,
    /// Probe a router on this machine (GET /healthz on the listen port) and exit 0 if healthy; for container health checks
    #[arg(long)]
    pub health_check: bool,
}

/// Every router setting: flag, variables, default. `--help` and the
/// resolver both read these.
pub mod settings {
    use super::Setting;
    use switchyard_core::config::common;

    pub const LISTEN: Setting = Setting::new("--listen", &["SWITCHYARD_LISTEN"])
        .defaults_to("0.0.0.0:$PORT, PORT defaults to 8000");
    pub const PORT: Setting = Setting::new("--listen", &["PORT"]);
    pub const METRICS_LISTEN: Setting =
        Setting::new("--metrics-listen", &["SWITCHYARD_METRICS_LISTEN"])
            .defaults_to("127.0.0.1:9091");
    pub const METRICS_HOSTS: Setting =
        Setting::new("--metrics-hosts", &["SWITCHYARD_METRICS_HOSTS"])
            .defaults_to("none: loopback names and IP addresses only");
    pub const REPLICA_ID: Setting = Setting::new(
        "--replica-id",
        &["SWITCHYARD_REPLICA_ID", "RAILWAY_REPLICA_ID"],
    )
    .defaults_to("host, pid and a random tag");
    pub const QUERY_PARAM: Setting =
        Setting::new("--query-param", &["SWITCHYARD_QUERY_PARAM"]).defaults_to("pulse_deployment");
    pub const AFFINITY_HEADER: Setting =
        Setting::new("--affinity-header", &["SWITCHYARD_AFFINITY_HEADER"])
            .defaults_to("x-pulse-deployment");
    pub const AFFINITY_COOKIE: Setting =
        Setting::new("--affinity-cookie", &["SWITCHYARD_AFFINITY_COOKIE"])
            .defaults_to("none, disabled");
    pub const CLIENT_PREFIX: Setting =
        Setting::new("--client-prefix", &["SWITCHYARD_CLIENT_PREFIX"]).defaults_to("/_switchyard");
    pub const ROLLOUT_KEY_HEADER: Setting =
        Setting::new("--rollout-key-header", &["SWITCHYARD_ROLLOUT_KEY_HEADER"])
            .defaults_to("client address");
    pub const MAX_CONNECTIONS: Setting = Setting::new(
        "--max-connections",
        &[
            "SWITCHYARD_MAX_CONNECTIONS",
            "PULSE_RAILWAY_ROUTER_CONNECTION_LIMIT",
        ],
    )
    .defaults_to("10000");
    pub const LISTEN_BACKLOG: Setting =
        Setting::new("--listen-backlog", &["SWITCHYARD_LISTEN_BACKLOG"])
            .defaults_to("4096, capped by net.core.somaxconn");
    pub const MAX_HEADER_BYTES: Setting =
        Setting::new("--max-header-bytes", &["SWITCHYARD_MAX_HEADER_BYTES"])
            .defaults_to("65536, at least 8192");
    pub const MAX_HEADER_LINES: Setting =
        Setting::new("--max-header-lines", &["SWITCHYARD_MAX_HEADER_LINES"]).defaults_to("100");
    pub const ASSET_PATHS: Setting = Setting::new("--asset-paths", &["SWITCHYARD_ASSET_PATHS"])
        .defaults_to("/assets/,/_next/static/,/_app/immutable/");
    pub const ASSET_TRIES: Setting = Setting::new(
        "--asset-fallthrough-tries",
        &["SWITCHYARD_ASSET_FALLTHROUGH_TRIES"],
    )
    .defaults_to("2");
    pub const PIN_SECRET: Setting =
        Setting::new("--pin-secret", &["SWITCHYARD_PIN_SECRET"]).defaults_to("off");
    pub const PIN_SECRET_PREVIOUS: Setting =
        Setting::new("--pin-secret-previous", &["SWITCHYARD_PIN_SECRET_PREVIOUS"]);
    pub const PIN_PREVIOUS_GRACE: Setting =
        Setting::new("--pin-previous-grace", &["SWITCHYARD_PIN_PREVIOUS_GRACE"]).defaults_to("1h");
    pub const PIN_TTL: Setting =
        Setting::new("--pin-ttl", &["SWITCHYARD_PIN_TTL"]).defaults_to("24h");
    pub const MAX_PIN_AGE: Setting =
        Setting::new("--max-pin-age", &["SWITCHYARD_MAX_PIN_AGE"]).defaults_to("off");
    pub const ACCESS_LOG: Setting = Setting::new("--access-log", &["SWITCHYARD_ACCESS_LOG"]);
    pub const HEADER_READ_TIMEOUT: Setting =
        Setting::new("--header-read-timeout", &["SWITCHYARD_HEADER_READ_TIMEOUT"])
            .defaults_to("10s");
    pub const IDLE_TIMEOUT: Setting =
        Setting::new("--idle-timeout", &["SWITCHYARD_IDLE_TIMEOUT"]).defaults_to("120s");
    pub const REQUEST_BUFFER: Setting =
        Setting::new("--request-buffer", &["SWITCHYARD_REQUEST_BUFFER"]).defaults_to("64KiB");
    pub const MIN_UPLOAD_RATE: Setting =
        Setting::new("--min-upload-rate", &["SWITCHYARD_MIN_UPLOAD_RATE"]).defaults_to("1KiB");
    pub const UPLOAD_GRACE: Setting =
        Setting::new("--upload-grace", &["SWITCHYARD_UPLOAD_GRACE"]).defaults_to("10s");
    pub const BACKEND_CONNECT_TIMEOUT: Setting = Setting::new(
        "--backend-connect-timeout",
        &["SWITCHYARD_BACKEND_CONNECT_TIMEOUT"],
    )
    .defaults_to("3s");
    pub const BACKEND_TIMEOUT: Setting =
        Setting::new("--backend-timeout", &["SWITCHYARD_BACKEND_TIMEOUT"]).defaults_to("60s");
    pub const SHUTDOWN_TIMEOUT: Setting =
        Setting::new("--shutdown-timeout", &["SWITCHYARD_SHUTDOWN_TIMEOUT"]).defaults_to("30s");
    pub const HEARTBEAT_INTERVAL: Setting =
        Setting::new("--heartbeat-interval", &["SWITCHYARD_HEARTBEAT_INTERVAL"]).defaults_to("15s");
    pub const LEASE_TTL: Setting =
        Setting::new("--lease-ttl", &["SWITCHYARD_LEASE_TTL"]).defaults_to("45s");
    pub const JANITOR_INTERVAL: Setting =
        Setting::new("--janitor-interval", &["SWITCHYARD_JANITOR_INTERVAL"])
            .defaults_to("off, cron runs it");
    pub const RELOAD_INTERVAL: Setting =
        Setting::new("--reload-interval", &["SWITCHYARD_RELOAD_INTERVAL"]).defaults_to("10s");
    pub const WS_MAX_MESSAGE_BYTES: Setting = Setting::new(
        "--ws-max-message-bytes",
        &["SWITCHYARD_WS_MAX_MESSAGE_BYTES"],
    )
    .defaults_to("16777216");
    pub const WORKER_THREADS: Setting =
        Setting::new("--worker-threads", &["SWITCHYARD_WORKER_THREADS"])
            .defaults_to("one per core");
    pub const TRUST_FORWARDED: Setting =
        Setting::new("--trust-forwarded", &["SWITCHYARD_TRUST_FORWARDED"]);
    pub const SECURE_COOKIES: Setting =
        Setting::new("--secure-cookies", &["SWITCHYARD_SECURE_COOKIES"]);

    /// The settings `--help` describes; PORT only fills in --listen.
    pub const ALL: &[Setting] = &[
        common::REDIS_URL,
        common::REDIS_PREFIX,
        common::LOG_FORMAT,
        LISTEN,
        METRICS_LISTEN,
        METRICS_HOSTS,
        REPLICA_ID,
        QUERY_PARAM,
        AFFINITY_HEADER,
        AFFINITY_COOKIE,
        CLIENT_PREFIX,
        ROLLOUT_KEY_HEADER,
        MAX_CONNECTIONS,
        LISTEN_BACKLOG,
        MAX_HEADER_BYTES,
        MAX_HEADER_LINES,
        ASSET_PATHS,
        ASSET_TRIES,
        PIN_SECRET,
        PIN_SECRET_PREVIOUS,
        PIN_PREVIOUS_GRACE,
        PIN_TTL,
        MAX_PIN_AGE,
        ACCESS_LOG,
        HEADER_READ_TIMEOUT,
        IDLE_TIMEOUT,
        REQUEST_BUFFER,
        MIN_UPLOAD_RATE,
        UPLOAD_GRACE,
        BACKEND_CONNECT_TIMEOUT,
        BACKEND_TIMEOUT,
        SHUTDOWN_TIMEOUT,
        HEARTBEAT_INTERVAL,
        LEASE_TTL,
        JANITOR_INTERVAL,
        RELOAD_INTERVAL,
        WS_MAX_MESSAGE_BYTES,
        WORKER_THREADS,
        TRUST_FORWARDED,
        SECURE_COOKIES,
    ];
}

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

fn asset_prefixes(raw: &str) -> Result<Vec<String>, String> {
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(Vec::new());
    }
    raw.split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.starts_with('/') && !p.contains(['?', '#', ' ']) {
                Ok(p.to_string())
            } else {
                Err(format!("{p:?} is not a path prefix starting with '/'"))
            }
        })
        .collect()
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

fn default_replica_id() -> String {
    use rand::Rng;
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    let tag: u32 = rand::rng().random();
    format!(
        "{}-{}-{tag:08x}",
        if host.is_empty() { "router" } else { &host },
        std::process::id()
    )
}

fn header_name(raw: &str) -> Result<String, String> {
    let lower = raw.trim().to_ascii_lowercase();
    http::HeaderName::from_bytes(lower.as_bytes())
        .map(|_| lower)
        .map_err(|_| "not a valid HTTP header name".into())
}

fn pins(r: &Resolver<'_>, args: &RouterArgs, d: &Pins) -> Result<Pins, ConfigError> {
    use settings::*;
    let key = |raw: &str| switchyard_core::pin::PinKeys::new(raw.trim().as_bytes());
    let mut keys = r.optional_with(PIN_SECRET, args.pin_secret.as_deref(), key)?;
    let grace = r.duration(
        PIN_PREVIOUS_GRACE,
        args.pin_previous_grace.as_deref(),
        Duration::from_secs(3600),
    )?;
    if let Some(current) = keys.take() {
        let until = switchyard_core::UnixTime::now().plus(grace);
        keys = Some(
            match r.optional_with(
                PIN_SECRET_PREVIOUS,
                args.pin_secret_previous.as_deref(),
                |raw| current.clone().with_previous(raw.trim().as_bytes(), until),
            )? {
                Some(with_previous) => with_previous,
                None => current,
            },
        );
    } else if r
        .raw(PIN_SECRET_PREVIOUS, args.pin_secret_previous.as_deref())
        .is_some()
    {
        return Err(ConfigError::missing(
            PIN_SECRET,
            "a previous pin secret means nothing without the current one",
        ));
    }
    let max_age = r.optional_with(MAX_PIN_AGE, args.max_pin_age.as_deref(), |s| {
        if s.trim().eq_ignore_ascii_case("off") {
            Ok(None)
        } else {
            switchyard_core::config::parse_duration(s).map(Some)
        }
    })?;
    Ok(Pins {
        keys,
        previous_grace: grace,
        ttl: r.duration(PIN_TTL, args.pin_ttl.as_deref(), d.ttl)?,
        max_age: max_age.flatten(),
    })
}

/// `/segment[/segment...]` of token characters, no trailing slash.
fn path_prefix(raw: &str) -> Result<String, String> {
    let p = raw.trim().trim_end_matches('/');
    let ok = p.starts_with('/')
        && p[1..].split('/').all(|seg| {
            !seg.is_empty()
                && seg != "."
                && seg != ".."
                && seg
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        });
    if ok {
        Ok(p.to_string())
    } else {
        Err("a path like /_switchyard: '/' then letters, digits, '-', '_' or '.'".into())
    }
}

fn non_empty_token(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty()
        || !t
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        return Err("use letters, digits, '-', '_' or '.'".into());
    }
    Ok(t.to_string())
}

use switchyard_core::config::parse_positive as positive;

fn routing_names(
    r: &Resolver<'_>,
    args: &RouterArgs,
    d: RoutingNames,
) -> Result<RoutingNames, ConfigError> {
    use settings::*;
    Ok(RoutingNames {
        query_param: r
            .optional_with(QUERY_PARAM, args.query_param.as_deref(), non_empty_token)?
            .unwrap_or(d.query_param),
        header: r
            .optional_with(
                AFFINITY_HEADER,
                args.affinity_header.as_deref(),
                header_name,
            )?
            .unwrap_or(d.header),
        cookie: r.optional_with(
            AFFINITY_COOKIE,
            args.affinity_cookie.as_deref(),
            non_empty_token,
        )?,
        client_prefix: r
            .optional_with(CLIENT_PREFIX, args.client_prefix.as_deref(), path_prefix)?
            .unwrap_or(d.client_prefix),
        ..d
    })
}

fn limits(r: &Resolver<'_>, args: &RouterArgs) -> Result<Limits, ConfigError> {
    use settings::*;
    let dl = Limits::default();
    let max_header_bytes: usize = r.value(
        MAX_HEADER_BYTES,
        args.max_header_bytes.as_deref(),
        dl.max_header_bytes,
    )?;
    if max_header_bytes < 8192 {
        return Err(ConfigError::Invalid {
            setting: MAX_HEADER_BYTES.to_string(),
            source_name: "configuration".into(),
            value: max_header_bytes.to_string(),
            reason: "must be at least 8192".into(),
        });
    }
    Ok(Limits {
        max_connections: r
            .optional_with(MAX_CONNECTIONS, args.max_connections.as_deref(), positive)?
            .unwrap_or(dl.max_connections),
        listen_backlog: r
            .optional_with(LISTEN_BACKLOG, args.listen_backlog.as_deref(), |s| {
                positive(s).and_then(|n| u32::try_from(n).map_err(|e| e.to_string()))
            })?
            .unwrap_or(dl.listen_backlog),
        max_header_bytes,
        max_header_lines: r
            .optional_with(MAX_HEADER_LINES, args.max_header_lines.as_deref(), positive)?
            .unwrap_or(dl.max_header_lines),
        header_read_timeout: r.duration(
            HEADER_READ_TIMEOUT,
            args.header_read_timeout.as_deref(),
            dl.header_read_timeout,
        )?,
        idle_timeout: r.duration(IDLE_TIMEOUT, args.idle_timeout.as_deref(), dl.idle_timeout)?,
        request_buffer: r
            .optional_with(REQUEST_BUFFER, args.request_buffer.as_deref(), |s| {
                let n = switchyard_core::config::parse_size(s)?;
                if n > 16 << 20 {
                    return Err("at most 16MiB: the buffer is held in memory per request".into());
                }
                usize::try_from(n).map_err(|e| e.to_string())
            })?
            .unwrap_or(dl.request_buffer),
        min_upload_rate: match r.optional_with(
            MIN_UPLOAD_RATE,
            args.min_upload_rate.as_deref(),
            |s| match s.trim() {
                "off" => Ok(None),
                s => {
                    match switchyard_core::config::parse_size(s.strip_suffix("/s").unwrap_or(s))? {
                        0 => Err("must be more than 0 bytes a second (or off)".into()),
                        n => Ok(Some(n)),
                    }
                }
            },
        )? {
            Some(rate) => rate,
            None => dl.min_upload_rate,
        },
        upload_grace: r.duration(UPLOAD_GRACE, args.upload_grace.as_deref(), dl.upload_grace)?,
        backend_connect_timeout: r.duration(
            BACKEND_CONNECT_TIMEOUT,
            args.backend_connect_timeout.as_deref(),
            dl.backend_connect_timeout,
        )?,
        backend_timeout: r.duration(
            BACKEND_TIMEOUT,
            args.backend_timeout.as_deref(),
            dl.backend_timeout,
        )?,
        shutdown_timeout: r.duration(
            SHUTDOWN_TIMEOUT,
            args.shutdown_timeout.as_deref(),
            dl.shutdown_timeout,
        )?,
        ws_max_message_bytes: r
            .optional_with(
                WS_MAX_MESSAGE_BYTES,
                args.ws_max_message_bytes.as_deref(),
                positive,
            )?
            .unwrap_or(dl.ws_max_message_bytes),
    })
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

    pub fn from_args(args: &RouterArgs, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        use settings::*;
        let r = Resolver::new(env);
        let d = Self::default();
        let listen = match r.optional::<SocketAddr>(LISTEN, args.listen.as_deref())? {
            Some(a) => a,
            None => SocketAddr::from(([0, 0, 0, 0], r.value(PORT, None, 8000u16)?)),
        };
        let metrics_explicit = r
            .raw(METRICS_LISTEN, args.metrics_listen.as_deref())
            .is_some();
        let metrics_listen = r
            .optional_with(METRICS_LISTEN, args.metrics_listen.as_deref(), |s| {
                if s.eq_ignore_ascii_case("off") {
                    Ok(None)
                } else {
                    s.parse::<SocketAddr>().map(Some).map_err(|e| e.to_string())
                }
            })?
            .unwrap_or(Some(SocketAddr::from(([127, 0, 0, 1], 9091))));
        let metrics_hosts = r
            .raw(METRICS_HOSTS, args.metrics_hosts.as_deref())
            .map(|(v, _)| {
                v.split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let names = routing_names(&r, args, d.names)?;
        let heartbeat_interval = r.duration(
            HEARTBEAT_INTERVAL,
            args.heartbeat_interval.as_deref(),
            d.heartbeat_interval,
        )?;
        let lease_ttl = r.duration(LEASE_TTL, args.lease_ttl.as_deref(), d.lease_ttl)?;
        if lease_ttl <= heartbeat_interval {
            return Err(ConfigError::Invalid {
                setting: LEASE_TTL.to_string(),
                source_name: "configuration".into(),
                value: format!("{lease_ttl:?}"),
                reason: format!(
                    "must be longer than the heartbeat interval ({heartbeat_interval:?}), or leases lapse between beats"
                ),
            });
        }
        Ok(Self {
            listen,
            metrics_listen,
            metrics_explicit,
            redis_url: r.optional(common::REDIS_URL, args.redis_url.as_deref())?,
            redis_prefix: r.value(
                common::REDIS_PREFIX,
                args.redis_prefix.as_deref(),
                d.redis_prefix,
            )?,
            replica_id: r
                .optional_with(REPLICA_ID, args.replica_id.as_deref(), non_empty_token)?
                .unwrap_or(d.replica_id),
            log_format: r.value(
                common::LOG_FORMAT,
                args.log_format.as_deref(),
                LogFormat::Text,
            )?,
            names,
            metrics_hosts,
            rollout_key_header: r.optional_with(
                ROLLOUT_KEY_HEADER,
                args.rollout_key_header.as_deref(),
                header_name,
            )?,
            trust_forwarded: r.flag_bool(TRUST_FORWARDED, args.trust_forwarded)?,
            secure_cookies: r.flag_bool(SECURE_COOKIES, args.secure_cookies)?,
            access_log: r.flag_bool(ACCESS_LOG, args.access_log)?,
            pins: pins(&r, args, &d.pins)?,
            assets: Assets {
                prefixes: r
                    .optional_with(ASSET_PATHS, args.asset_paths.as_deref(), asset_prefixes)?
                    .unwrap_or(d.assets.prefixes),
                tries: r.value(
                    ASSET_TRIES,
                    args.asset_fallthrough_tries.as_deref(),
                    d.assets.tries,
                )?,
            },
            limits: limits(&r, args)?,
            heartbeat_interval,
            lease_ttl,
            reload_interval: r.duration(
                RELOAD_INTERVAL,
                args.reload_interval.as_deref(),
                d.reload_interval,
            )?,
            worker_threads: r.optional_with(
                WORKER_THREADS,
                args.worker_threads.as_deref(),
                positive,
            )?,
            janitor_interval: r
                .optional_with(JANITOR_INTERVAL, args.janitor_interval.as_deref(), |s| {
                    if s.trim().eq_ignore_ascii_case("off") {
                        return Ok(None);
                    }
                    let d = switchyard_core::config::parse_duration(s)?;
                    if d < Duration::from_secs(1) {
                        return Err(format!("{s} is under a second; the janitor asks the store and every draining backend each round"));
                    }
                    Ok(Some(d))
                })?
                .flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
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
