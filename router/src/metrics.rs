//! Prometheus metrics in the text exposition format, rendered from the
//! router's own counters on each scrape. Written by hand because the
//! counters already exist for the heartbeat; a registry crate would add a
//! second set and label allocations on the request path.

use std::{
    convert::Infallible,
    fmt::Write,
    sync::{Arc, atomic::Ordering::Relaxed},
};

use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{shared::Shared, state::traffic::LATENCY_BUCKETS};

pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(4096);
    let all = shared.traffic.all();
    let _ = writeln!(
        out,
        "# HELP switchyard_requests_total Responses by deployment and status class."
    );
    let _ = writeln!(out, "# TYPE switchyard_requests_total counter");
    for (id, t) in &all {
        for (i, n) in t.by_class().iter().enumerate() {
            let _ = writeln!(
                out,
                "switchyard_requests_total{{deployment=\"{id}\",class=\"{}xx\"}} {n}",
                i + 1
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP switchyard_request_duration_seconds Time to response headers."
    );
    let _ = writeln!(out, "# TYPE switchyard_request_duration_seconds histogram");
    for (id, t) in &all {
        let (buckets, sum) = t.latency();
        let mut cumulative = 0;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += buckets[i];
            let _ = writeln!(
                out,
                "switchyard_request_duration_seconds_bucket{{deployment=\"{id}\",le=\"{bound}\"}} {cumulative}"
            );
        }
        cumulative += buckets[LATENCY_BUCKETS.len()];
        let _ = writeln!(
            out,
            "switchyard_request_duration_seconds_bucket{{deployment=\"{id}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "switchyard_request_duration_seconds_sum{{deployment=\"{id}\"}} {sum}"
        );
        let _ = writeln!(
            out,
            "switchyard_request_duration_seconds_count{{deployment=\"{id}\"}} {cumulative}"
        );
    }
    let _ = writeln!(
        out,
        "# HELP switchyard_websockets_open Proxied WebSockets open now."
    );
    let _ = writeln!(out, "# TYPE switchyard_websockets_open gauge");
    for (id, t) in &all {
        let _ = writeln!(
            out,
            "switchyard_websockets_open{{deployment=\"{id}\"}} {}",
            t.open_sockets()
        );
    }
    let _ = writeln!(out, "# TYPE switchyard_websockets_total counter");
    for (id, t) in &all {
        let _ = writeln!(
            out,
            "switchyard_websockets_total{{deployment=\"{id}\"}} {}",
            t.sockets_total()
        );
    }
    let _ = writeln!(
        out,
        "# HELP switchyard_backend_errors_total Requests the backend failed (unreachable, timeout, broken)."
    );
    let _ = writeln!(out, "# TYPE switchyard_backend_errors_total counter");
    for (id, t) in &all {
        let _ = writeln!(
            out,
            "switchyard_backend_errors_total{{deployment=\"{id}\"}} {}",
            t.backend_errors()
        );
    }
    let _ = writeln!(
        out,
        "# HELP switchyard_client_aborts_total Requests whose own body failed (closed early, bad framing): the client's fault, answered 400."
    );
    let _ = writeln!(out, "# TYPE switchyard_client_aborts_total counter");
    for (id, t) in &all {
        let _ = writeln!(
            out,
            "switchyard_client_aborts_total{{deployment=\"{id}\"}} {}",
            t.client_aborts()
        );
    }
    let _ = writeln!(
        out,
        "# HELP switchyard_asset_fallthrough_total Asset requests a deployment answered after the chosen one had no such file."
    );
    let _ = writeln!(out, "# TYPE switchyard_asset_fallthrough_total counter");
    for (id, t) in &all {
        let _ = writeln!(
            out,
            "switchyard_asset_fallthrough_total{{deployment=\"{id}\"}} {}",
            t.fell_through_total()
        );
    }
    let h = &shared.health;
    let table = shared.table.load();
    let _ = writeln!(
        out,
        "# HELP switchyard_store_up Whether the last store read succeeded."
    );
    let _ = writeln!(out, "# TYPE switchyard_store_up gauge");
    let _ = writeln!(out, "switchyard_store_up {}", u8::from(h.store.up()));
    let _ = writeln!(out, "# TYPE switchyard_snapshot_version gauge");
    let _ = writeln!(
        out,
        "switchyard_snapshot_version {}",
        table.as_ref().map_or(0, |t| t.version)
    );
    let _ = writeln!(out, "# TYPE switchyard_connections_open gauge");
    let _ = writeln!(
        out,
        "switchyard_connections_open {}",
        h.connections_open.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP switchyard_backend_idle_connections Kept-alive backend connections waiting for a request."
    );
    let _ = writeln!(out, "# TYPE switchyard_backend_idle_connections gauge");
    let _ = writeln!(
        out,
        "switchyard_backend_idle_connections {}",
        shared
            .upstreams
            .iter()
            .map(|u| u.idle_count())
            .chain(shared.pools.iter().map(|p| p.idle_count()))
            .sum::<usize>()
    );
    let _ = writeln!(
        out,
        "# HELP switchyard_snapshots_refused_total Store snapshots not installed because they lost the active deployment."
    );
    let _ = writeln!(out, "# TYPE switchyard_snapshots_refused_total counter");
    let _ = writeln!(
        out,
        "switchyard_snapshots_refused_total {}",
        h.snapshots_refused.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP switchyard_store_diverged 1 while the store holds less than this router routes on (restore it with switchyard restore)."
    );
    let _ = writeln!(out, "# TYPE switchyard_store_diverged gauge");
    let _ = writeln!(
        out,
        "switchyard_store_diverged {}",
        u8::from(h.store_diverged.load(Relaxed))
    );
    let _ = writeln!(out, "# TYPE switchyard_connections_rejected_total counter");
    let _ = writeln!(
        out,
        "switchyard_connections_rejected_total {}",
        h.connections_rejected.load(Relaxed)
    );
    out
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    r
}

/// The private listener's connection cap: scrapers and `restore` need a
/// handful, and idle connections here must never use up descriptors the
/// public listener needs.
const PRIVATE_MAX_CONNECTIONS: usize = 16;

/// A private connection's whole life: a scrape takes milliseconds.
const PRIVATE_CONNECTION_LIFETIME: std::time::Duration = std::time::Duration::from_secs(60);

/// The private listener: `/metrics` and `/snapshot`, with the public
/// listener's header deadline, its own small connection cap, and a Host
/// check so a page on another name (DNS rebinding) cannot read it.
pub async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let permits = Arc::new(tokio::sync::Semaphore::new(PRIVATE_MAX_CONNECTIONS));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(shared.config.limits.header_read_timeout);
    let builder = Arc::new(builder);
    let mut reserve = crate::connection::reserve::Reserve::new();
    let mut told_full = false;
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r {
                Ok(a) => a,
                Err(e) => {
                    reserve.shed(&listener, &e, "private");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.cancelled() => return,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            if !std::mem::replace(&mut told_full, true) {
                tracing::warn!(
                    limit = PRIVATE_MAX_CONNECTIONS,
                    "private listener full; closing new connections to it until some end"
                );
            }
            drop(stream);
            continue;
        };
        told_full = false;
        let shared = shared.clone();
        let builder = builder.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(answer(&shared, &req)) }
            });
            let _ = tokio::time::timeout(
                PRIVATE_CONNECTION_LIFETIME,
                builder.serve_connection(TokioIo::new(stream), svc),
            )
            .await;
        });
    }
}

fn answer(shared: &Shared, req: &http::Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    let host = req.uri().host().or_else(|| {
        req.headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
    });
    if !host.is_some_and(|h| allowed_host(h, &shared.config.metrics_hosts)) {
        // RFC 9110 §15.5.20: not a name this server answers for.
        return text(
            StatusCode::MISDIRECTED_REQUEST,
            "text/plain",
            "the private listener answers loopback, IP addresses and --metrics-hosts names only\n"
                .into(),
        );
    }
    match req.uri().path() {
        "/metrics" => text(StatusCode::OK, "text/plain; version=0.0.4", render(shared)),
        // What this router routes on, for `switchyard restore` after the
        // store lost its data. Private: this listener is not the public one.
        "/snapshot" => match shared.table.load().as_ref() {
            Some(t) => text(
                StatusCode::OK,
                "application/json",
                serde_json::to_string(&t.snapshot).unwrap_or_default(),
            ),
            None => text(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                r#"{"detail":"no snapshot yet"}"#.into(),
            ),
        },
        _ => text(
            StatusCode::NOT_FOUND,
            "text/plain",
            "metrics are at /metrics, the routing snapshot at /snapshot\n".into(),
        ),
    }
}

/// `localhost`, an IP literal (no DNS name can be rebound onto one), or a
/// configured name; the port is not judged.
fn allowed_host(host: &str, names: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => {
            return v6
                .split(']')
                .next()
                .is_some_and(|a| a.parse::<std::net::Ipv6Addr>().is_ok());
        }
        None => host.rsplit_once(':').map_or(host, |(h, port)| {
            if port.bytes().all(|b| b.is_ascii_digit()) {
                h
            } else {
                host
            }
        }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || names.contains(&name)
}

#[cfg(test)]
mod host_tests {
    use super::allowed_host;

    #[test]
    fn only_loopback_ips_and_configured_names() {
        let names = vec!["router.railway.internal".to_string()];
        for ok in [
            "localhost",
            "localhost:9091",
            "127.0.0.1:9091",
            "10.0.0.5",
            "[::1]:9091",
            "Router.Railway.Internal:9091",
        ] {
            assert!(allowed_host(ok, &names), "{ok}");
        }
        for bad in [
            "evil.example",
            "evil.example:9091",
            "127.0.0.1.evil.example",
            "[evil]",
            "",
        ] {
            assert!(!allowed_host(bad, &names), "{bad}");
        }
    }
}
