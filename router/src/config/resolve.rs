//! Resolving the settings once at start: flag, else variable, else the
//! declared default, each parsed and checked, a bad value named by its
//! flag.

use std::net::SocketAddr;

use switchyard_core::{
    RoutingNames,
    config::{ConfigError, EnvSource, Resolver, common},
};

use super::{Assets, Limits, Pins, RouterConfig, settings::*};

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

fn pins(r: &Resolver<'_>) -> Result<Pins, ConfigError> {
    let grace = r.get(&PIN_PREVIOUS_GRACE)?;
    let keys = match (r.optional(&PIN_SECRET)?, r.optional(&PIN_SECRET_PREVIOUS)?) {
        (Some(current), Some(previous)) => {
            let until = switchyard_core::UnixTime::now().plus(grace);
            Some(
                current
                    .with_previous(previous.as_bytes(), until)
                    .map_err(|reason| {
                        ConfigError::invalid(&PIN_SECRET_PREVIOUS, "(secret)", reason)
                    })?,
            )
        }
        (Some(current), None) => Some(current),
        (None, Some(_)) => {
            return Err(ConfigError::missing(
                &PIN_SECRET,
                "a previous pin secret means nothing without the current one",
            ));
        }
        (None, None) => None,
    };
    Ok(Pins {
        keys,
        previous_grace: grace,
        ttl: r.get(&PIN_TTL)?,
        max_age: r.get(&MAX_PIN_AGE)?,
    })
}

fn limits(r: &Resolver<'_>) -> Result<Limits, ConfigError> {
    Ok(Limits {
        max_connections: r.get(&MAX_CONNECTIONS)?,
        listen_backlog: r.get(&LISTEN_BACKLOG)?,
        max_header_bytes: r.get(&MAX_HEADER_BYTES)?,
        max_header_lines: r.get(&MAX_HEADER_LINES)?,
        header_read_timeout: r.get(&HEADER_READ_TIMEOUT)?,
        idle_timeout: r.get(&IDLE_TIMEOUT)?,
        // At most 16 MiB (its parser's bound), so it fits.
        request_buffer: usize::try_from(r.get(&REQUEST_BUFFER)?.0).unwrap_or(usize::MAX),
        min_upload_rate: r.get(&MIN_UPLOAD_RATE)?.map(|rate| rate.0),
        upload_grace: r.get(&UPLOAD_GRACE)?,
        backend_connect_timeout: r.get(&BACKEND_CONNECT_TIMEOUT)?,
        backend_timeout: r.get(&BACKEND_TIMEOUT)?,
        shutdown_timeout: r.get(&SHUTDOWN_TIMEOUT)?,
        ws_max_message_bytes: r.get(&WS_MAX_MESSAGE_BYTES)?,
    })
}

impl RouterConfig {
    /// Every setting from `src` (flags, then the environment), else its
    /// declared default.
    pub fn resolve(src: &dyn EnvSource) -> Result<Self, ConfigError> {
        let r = Resolver::new(src);
        let port = r.get(&PORT)?;
        let listen = r.or_computed(&LISTEN, || SocketAddr::from(([0, 0, 0, 0], port)))?;
        let heartbeat_interval = r.get(&HEARTBEAT_INTERVAL)?;
        let lease_ttl = r.get(&LEASE_TTL)?;
        if lease_ttl <= heartbeat_interval {
            return Err(ConfigError::invalid(
                &LEASE_TTL,
                format!("{lease_ttl:?}"),
                format!(
                    "must be longer than the heartbeat interval ({heartbeat_interval:?}), or leases lapse between beats"
                ),
            ));
        }
        let names = RoutingNames {
            query_param: r.get(&QUERY_PARAM)?,
            header: r.get(&AFFINITY_HEADER)?,
            cookie: r.get(&AFFINITY_COOKIE)?,
            client_prefix: r.get(&CLIENT_PREFIX)?,
            ..RoutingNames::default()
        };
        let mut config = Self {
            listen,
            metrics_explicit: r.raw(&METRICS_LISTEN).is_some(),
            metrics_listen: r.get(&METRICS_LISTEN)?,
            metrics_hosts: r.get(&METRICS_HOSTS)?,
            redis_url: r.optional(&common::REDIS_URL)?,
            redis_prefix: r.get(&common::REDIS_PREFIX)?,
            replica_id: r.or_computed(&REPLICA_ID, default_replica_id)?,
            log_format: r.get(&common::LOG_FORMAT)?,
            names,
            rollout_key_header: r.optional(&ROLLOUT_KEY_HEADER)?,
            trust_forwarded: r.get(&TRUST_FORWARDED)?,
            secure_cookies: r.get(&SECURE_COOKIES)?,
            access_log: r.get(&ACCESS_LOG)?,
            pins: pins(&r)?,
            assets: Assets {
                prefixes: r.get(&ASSET_PATHS)?,
                tries: r.get(&ASSET_TRIES)?,
            },
            limits: limits(&r)?,
            heartbeat_interval,
            lease_ttl,
            reload_interval: r.get(&RELOAD_INTERVAL)?,
            worker_threads: r.optional(&WORKER_THREADS)?,
            janitor_interval: r.get(&JANITOR_INTERVAL)?,
            summary: String::new(),
        };
        config.summary = r.summary();
        Ok(config)
    }
}
