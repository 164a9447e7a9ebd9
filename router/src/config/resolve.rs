//! Resolving the settings once at start: flag, else variable, else the
//! default, each parsed and checked, a bad value named by its flag.

use std::{net::SocketAddr, time::Duration};

use switchyard_core::{
    RoutingNames,
    config::{ConfigError, EnvSource, LogFormat, Resolver, common},
};

use super::{Assets, Limits, Pins, RouterArgs, RouterConfig, settings};

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

pub(super) fn default_replica_id() -> String {
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
