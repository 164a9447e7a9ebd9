//! The router's flags, and the table of its settings (flag, variables,
//! default) that `--help` and the resolver both read.

use clap::Parser;
use switchyard_core::config::Setting;

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
