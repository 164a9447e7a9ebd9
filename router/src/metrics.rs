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

use crate::{Shared, traffic::LATENCY_BUCKETS};

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

pub async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => match r { Ok(a) => a, Err(_) => continue },
            _ = stop.cancelled() => return,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let shared = shared.clone();
                async move {
                    let res = match req.uri().path() {
                        "/metrics" => {
                            text(StatusCode::OK, "text/plain; version=0.0.4", render(&shared))
                        }
                        // What this router routes on, for `switchyard
                        // restore` after the store lost its data. Private:
                        // this listener is not the public one.
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
                    };
                    Ok::<_, Infallible>(res)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
