//! Every router setting, declared once: flag, variables, typed default,
//! parser and help. `--help`, the resolver, the effective-configuration
//! line and docs/settings.md all come from these.

use std::{
    net::{Ipv4Addr, SocketAddr},
    time::Duration,
};

use switchyard_core::{
    RoutingNames,
    config::{Bytes, Setting, common, parse_duration, parse_positive},
    pin::PinKeys,
};

/// The router's flags that are not settings.
#[derive(Debug, Default, clap::Parser)]
#[command(
    name = "switchyard-router",
    version,
    about = "Switchyard's public router"
)]
pub struct RouterArgs {
    /// Probe a router on this machine (GET /healthz on the listen port) and exit 0 if healthy; for container health checks
    #[arg(long)]
    pub health_check: bool,
}

const fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

switchyard_core::settings! {
    shared common::REDIS_URL, common::REDIS_PREFIX, common::LOG_FORMAT;

    pub LISTEN: SocketAddr = Setting::new("--listen", &["SWITCHYARD_LISTEN"], "Address to serve public traffic on")
        .computed("0.0.0.0:$PORT");
    pub PORT: u16 = Setting::new("", &["PORT"], "Port of the public address when --listen is not given (Railway sets it)")
        .default(|| 8000);
    pub METRICS_LISTEN: Option<SocketAddr> = Setting::new(
        "--metrics-listen",
        &["SWITCHYARD_METRICS_LISTEN"],
        "Private address for /metrics and /snapshot, or \"off\"",
    )
    .more("Loopback by default: to scrape over a private network give its address (`[::]:9091` on Railway). It has the public listener's header deadline, a cap of 16 connections and a 60 s connection lifetime")
    .default(|| Some(SocketAddr::from((Ipv4Addr::LOCALHOST, 9091))));
    pub METRICS_HOSTS: Vec<String> = Setting::new(
        "--metrics-hosts",
        &["SWITCHYARD_METRICS_HOSTS"],
        "Host names the private listener answers besides loopback and IP addresses, comma-separated (its DNS-rebinding guard)",
    )
    .more("a request for any other `Host` gets 421, so a DNS-rebinding page cannot read it")
    .parsed_by(lowercase_list)
    .default(Vec::new);
    pub REPLICA_ID: String = Setting::new(
        "--replica-id",
        &["SWITCHYARD_REPLICA_ID", "RAILWAY_REPLICA_ID"],
        "This replica's id in lease heartbeats",
    )
    .parsed_by(token)
    .computed("host, pid and a random tag");
    pub QUERY_PARAM: String = Setting::new("--query-param", &["SWITCHYARD_QUERY_PARAM"], "Query parameter that pins a request")
        .parsed_by(token)
        .default(|| RoutingNames::default().query_param);
    pub AFFINITY_HEADER: String = Setting::new("--affinity-header", &["SWITCHYARD_AFFINITY_HEADER"], "Header that pins a request")
        .parsed_by(header_name)
        .default(|| RoutingNames::default().header);
    pub AFFINITY_COOKIE: Option<String> = Setting::new(
        "--affinity-cookie",
        &["SWITCHYARD_AFFINITY_COOKIE"],
        "Cookie that pins a request and is set on unpinned responses",
    )
    .more("pins requests that are not document loads; set on unpinned document loads that are not publicly cacheable (README: Browser client)")
    .parsed_by(|s| token(s).map(Some))
    .default(|| None);
    pub CLIENT_PREFIX: String = Setting::new(
        "--client-prefix",
        &["SWITCHYARD_CLIENT_PREFIX"],
        "Path prefix of the router's own browser-client endpoints (script, pin status); never forwarded",
    )
    .parsed_by(path_prefix)
    .default(|| RoutingNames::default().client_prefix);
    pub ROLLOUT_KEY_HEADER: String = Setting::new(
        "--rollout-key-header",
        &["SWITCHYARD_ROLLOUT_KEY_HEADER"],
        "Header whose value keys the sticky rollout split",
    )
    .parsed_by(header_name)
    .computed("client address");
    pub TRUST_FORWARDED: bool = Setting::switch(
        "--trust-forwarded",
        &["SWITCHYARD_TRUST_FORWARDED"],
        "Keep the client's X-Forwarded-Proto and -Host (behind a trusted edge such as Railway's)",
    )
    .more("also `Forwarded`, `X-Real-IP`, `X-Forwarded-Port` and `X-Forwarded-Prefix`; without it those are dropped");
    pub SECURE_COOKIES: bool = Setting::switch(
        "--secure-cookies",
        &["SWITCHYARD_SECURE_COOKIES"],
        "Mark the router's cookies Secure always (they are whenever a trusted X-Forwarded-Proto says https)",
    );
    pub MAX_CONNECTIONS: usize = Setting::new(
        "--max-connections",
        &["SWITCHYARD_MAX_CONNECTIONS", "PULSE_RAILWAY_ROUTER_CONNECTION_LIMIT"],
        "Open connections, WebSockets included, before new ones get 503",
    )
    .parsed_by(parse_positive)
    .default(|| 10_000);
    pub LISTEN_BACKLOG: u32 = Setting::new(
        "--listen-backlog",
        &["SWITCHYARD_LISTEN_BACKLOG"],
        "Connections the kernel queues for accept before dropping SYNs",
    )
    .more("capped by `net.core.somaxconn`; a burst beyond it loses SYNs, and those clients wait a 1 s retransmit")
    .parsed_by(|s| parse_positive(s).and_then(|n| u32::try_from(n).map_err(|e| e.to_string())))
    .default(|| 4096);
    pub MAX_HEADER_BYTES: usize = Setting::new(
        "--max-header-bytes",
        &["SWITCHYARD_MAX_HEADER_BYTES"],
        "Largest request head in bytes (at least 8192); larger gets 431",
    )
    .parsed_by(|s| match parse_positive(s)? {
        n if n < 8192 => Err("must be at least 8192".into()),
        n => Ok(n),
    })
    .default(|| 64 * 1024);
    pub MAX_HEADER_LINES: usize = Setting::new(
        "--max-header-lines",
        &["SWITCHYARD_MAX_HEADER_LINES"],
        "Most header lines in an HTTP/1 request head; more gets 431",
    )
    .parsed_by(parse_positive)
    .default(|| HEADER_SLOTS);
    pub HEADER_READ_TIMEOUT: Duration = Setting::new(
        "--header-read-timeout",
        &["SWITCHYARD_HEADER_READ_TIMEOUT"],
        "Time a connection has to send a complete request head, from accept, HTTP/1 and HTTP/2 alike",
    )
    .more("also the idle time allowed between keep-alive requests")
    .default(|| secs(10));
    pub IDLE_TIMEOUT: Duration = Setting::new(
        "--idle-timeout",
        &["SWITCHYARD_IDLE_TIMEOUT"],
        "Close a connection when nothing moved in either direction for this long",
    )
    .default(|| secs(120));
    pub REQUEST_BUFFER: Bytes = Setting::new(
        "--request-buffer",
        &["SWITCHYARD_REQUEST_BUFFER"],
        "Bytes of a request body read before a backend connection is taken (0: none)",
    )
    .more("a smaller body is sent whole, a larger one streams on from there with backpressure; at most 16MiB: it is held in memory per request")
    .parsed_by(request_buffer)
    .default(|| Bytes(64 * 1024));
    pub MIN_UPLOAD_RATE: Option<Bytes> = Setting::new(
        "--min-upload-rate",
        &["SWITCHYARD_MIN_UPLOAD_RATE"],
        "Slowest average an upload may arrive at once its grace is over, per second (off: no minimum)",
    )
    .more("`10KiB` or `10KiB/s`, averaged from the body's first byte; slower uploads get 408 with `Connection: close` (RFC 9110 §15.5.9), counted as client aborts, never the deployment's errors")
    .parsed_by(upload_rate)
    .default(|| Some(Bytes(1024)));
    pub UPLOAD_GRACE: Duration = Setting::new(
        "--upload-grace",
        &["SWITCHYARD_UPLOAD_GRACE"],
        "Time an upload may take before the minimum upload rate applies",
    )
    .default(|| secs(10));
    pub BACKEND_CONNECT_TIMEOUT: Duration = Setting::new(
        "--backend-connect-timeout",
        &["SWITCHYARD_BACKEND_CONNECT_TIMEOUT"],
        "Time to open a TCP connection to a backend; then 502",
    )
    .default(|| secs(3));
    pub BACKEND_TIMEOUT: Duration = Setting::new(
        "--backend-timeout",
        &["SWITCHYARD_BACKEND_TIMEOUT"],
        "Time a backend has to answer with a response head; then 504",
    )
    .default(|| secs(60));
    pub SHUTDOWN_TIMEOUT: Duration = Setting::new(
        "--shutdown-timeout",
        &["SWITCHYARD_SHUTDOWN_TIMEOUT"],
        "On SIGTERM, time in-flight requests and WebSocket closes get before exit",
    )
    .default(|| secs(30));
    pub HEARTBEAT_INTERVAL: Duration = Setting::new(
        "--heartbeat-interval",
        &["SWITCHYARD_HEARTBEAT_INTERVAL"],
        "How often leases, activity and request counts are written to Redis",
    )
    .default(|| secs(15));
    pub LEASE_TTL: Duration = Setting::new(
        "--lease-ttl",
        &["SWITCHYARD_LEASE_TTL"],
        "How long this replica's leases outlive its last heartbeat (longer than the heartbeat interval)",
    )
    .default(|| secs(45));
    pub RELOAD_INTERVAL: Duration = Setting::new(
        "--reload-interval",
        &["SWITCHYARD_RELOAD_INTERVAL"],
        "Full snapshot reload period, the safety net under pub/sub",
    )
    .default(|| secs(10));
    pub WS_MAX_MESSAGE_BYTES: usize = Setting::new(
        "--ws-max-message-bytes",
        &["SWITCHYARD_WS_MAX_MESSAGE_BYTES"],
        "Largest WebSocket message in bytes; larger closes with 1009",
    )
    .parsed_by(parse_positive)
    .default(|| 16 << 20);
    pub WORKER_THREADS: usize = Setting::new(
        "--worker-threads",
        &["SWITCHYARD_WORKER_THREADS"],
        "Threads serving traffic",
    )
    .more("each with its own single-threaded runtime and backend connections, accepting from one listening socket")
    .parsed_by(parse_positive)
    .computed("one per core");
    pub JANITOR_INTERVAL: Option<Duration> = Setting::new(
        "--janitor-interval",
        &["SWITCHYARD_JANITOR_INTERVAL"],
        "Also run the janitor every this long (at least 1s), on whichever router holds its lock, or \"off\" to leave it to cron",
    )
    .more("its settings are the janitor's variables, except that it reads no platform token: on Railway it reloads and revokes, and deleting services stays with the cron janitor")
    .parsed_by(janitor_interval)
    .default(|| None);
    pub ACCESS_LOG: bool = Setting::switch(
        "--access-log",
        &["SWITCHYARD_ACCESS_LOG"],
        "Write one JSON line per request to stdout: id, method, path, status, deployment, duration, bytes",
    )
    .more("`request_id`, `method`, `path`, `status`, `deployment`, `duration_ms`, `bytes` (response body bytes sent), written when the response ends");
    pub ASSET_PATHS: Vec<String> = Setting::new(
        "--asset-paths",
        &["SWITCHYARD_ASSET_PATHS"],
        "Path prefixes of content-hashed build output whose 404 is retried on older live deployments, comma-separated, or \"off\"",
    )
    .more("README: Stale pages and caches")
    .parsed_by(asset_prefixes)
    .shown_by(|p| if p.is_empty() { "off".into() } else { p.join(",") })
    .default(|| ["/assets/", "/_next/static/", "/_app/immutable/"].map(String::from).to_vec());
    pub ASSET_TRIES: usize = Setting::new(
        "--asset-fallthrough-tries",
        &["SWITCHYARD_ASSET_FALLTHROUGH_TRIES"],
        "Other live deployments an asset 404 is retried on, newest first; 0 turns fallthrough off",
    )
    .default(|| 2);
    pub PIN_SECRET: PinKeys = Setting::with(
        "--pin-secret",
        &["SWITCHYARD_PIN_SECRET"],
        "Strict mode: sign pins with this secret (32+ bytes) and route only valid, unexpired tokens",
        |raw| PinKeys::new(raw.trim().as_bytes()),
    )
    .more("README: Strict mode")
    .secret();
    pub PIN_SECRET_PREVIOUS: String = Setting::new(
        "--pin-secret-previous",
        &["SWITCHYARD_PIN_SECRET_PREVIOUS"],
        "The secret before a rotation, still accepted for --pin-previous-grace after start",
    )
    .secret();
    pub PIN_PREVIOUS_GRACE: Duration = Setting::new(
        "--pin-previous-grace",
        &["SWITCHYARD_PIN_PREVIOUS_GRACE"],
        "How long after start the previous pin secret is accepted",
    )
    .default(|| secs(3600));
    pub PIN_TTL: Duration = Setting::new("--pin-ttl", &["SWITCHYARD_PIN_TTL"], "Lifetime of the signed pins the router hands out")
        .default(|| secs(86_400));
    pub MAX_PIN_AGE: Option<Duration> = Setting::new(
        "--max-pin-age",
        &["SWITCHYARD_MAX_PIN_AGE"],
        "Pins to a deployment draining longer than this are stale, whatever its leases (\"off\" for none)",
    )
    .default(|| None);
}

/// hyper's parser keeps this many header slots on the stack; another limit
/// costs an allocation per request, so only a configured value changes it.
pub const HEADER_SLOTS: usize = 100;

fn lowercase_list(raw: &str) -> Result<Vec<String>, String> {
    Ok(raw
        .split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect())
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

fn header_name(raw: &str) -> Result<String, String> {
    let lower = raw.trim().to_ascii_lowercase();
    http::HeaderName::from_bytes(lower.as_bytes())
        .map(|_| lower)
        .map_err(|_| "not a valid HTTP header name".into())
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

fn token(raw: &str) -> Result<String, String> {
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

fn request_buffer(raw: &str) -> Result<Bytes, String> {
    let n = switchyard_core::config::parse_size(raw)?;
    if n > 16 << 20 {
        return Err("at most 16MiB: the buffer is held in memory per request".into());
    }
    Ok(Bytes(n))
}

fn upload_rate(raw: &str) -> Result<Option<Bytes>, String> {
    match raw.trim() {
        "off" => Ok(None),
        s => match switchyard_core::config::parse_size(s.strip_suffix("/s").unwrap_or(s))? {
            0 => Err("must be more than 0 bytes a second (or off)".into()),
            n => Ok(Some(Bytes(n))),
        },
    }
}

fn janitor_interval(raw: &str) -> Result<Option<Duration>, String> {
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let d = parse_duration(raw)?;
    if d < secs(1) {
        return Err(format!(
            "{raw} is under a second; the janitor asks the store and every draining backend each round"
        ));
    }
    Ok(Some(d))
}
