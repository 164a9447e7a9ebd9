//! A real backend on a loopback port, standing in for one deployment of a
//! user's app. Every answer names its deployment so tests can see where a
//! request landed.
//!
//! | route              | does                                                        |
//! |--------------------|-------------------------------------------------------------|
//! | any                | JSON echo: deployment, method, path, query, headers, bytes  |
//! | `/ws`              | WebSocket echo; picks the first offered subprotocol of      |
//! |                    | `chat`/`superchat`; text `close:CODE:REASON` closes with it |
//! | `/status/{code}`   | answers with that status                                    |
//! | `/slow?ms=N`       | answers after N ms                                          |
//! | `/download?chunks` | streams N 64 KiB chunks, the second only after the test     |
//! |                    | calls `release_download`                                    |
//! | `/upload`          | counts the body; signals `first_upload_chunk` on the first  |
//! | `/_pulse/internal/railway/reload` | counts calls (POST), answers `reloaded_socket_count` |
//! | `/_pulse/internal/railway/sessions` | `render_session_count` as set by the test; 404 by default |

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering::SeqCst},
    },
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::{
        Path, Query, Request, State,
        ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade},
    },
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{any, get, post},
};
use futures_util::StreamExt;
use tokio::{
    net::TcpListener,
    sync::{Notify, oneshot},
};

#[derive(Debug)]
pub struct BackendState {
    pub deployment: String,
    pub first_upload_chunk: Notify,
    pub release_download: Notify,
    pub reload_calls: AtomicU64,
    /// Close codes received from clients, in order.
    pub ws_closes: std::sync::Mutex<Vec<(u16, String)>>,
    pub ws_open: AtomicU64,
    /// What `/_pulse/internal/railway/sessions` reports; negative answers 404
    /// (a backend without the endpoint).
    pub sessions: std::sync::atomic::AtomicI64,
    /// Delay before the sessions endpoint answers, to test slow probes.
    pub sessions_delay_ms: AtomicU64,
    /// When non-zero, every echo answer has this status (a broken release).
    pub fail_status: std::sync::atomic::AtomicU16,
    /// Requests for `/assets/...`, found or not.
    pub asset_requests: AtomicU64,
    /// `Cache-Control` to put on echo answers (for cache tests).
    pub cache_control: std::sync::Mutex<Option<String>>,
}

pub struct Backend {
    pub addr: SocketAddr,
    pub state: Arc<BackendState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Backend {
    pub async fn start(deployment: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind backend");
        Self::serve(deployment, listener).await
    }

    pub async fn serve(deployment: &str, listener: TcpListener) -> Self {
        let addr = listener.local_addr().expect("backend addr");
        let state = Arc::new(BackendState {
            deployment: deployment.to_string(),
            first_upload_chunk: Notify::new(),
            release_download: Notify::new(),
            reload_calls: AtomicU64::new(0),
            ws_closes: Default::default(),
            ws_open: AtomicU64::new(0),
            sessions: std::sync::atomic::AtomicI64::new(-1),
            sessions_delay_ms: AtomicU64::new(0),
            fail_status: std::sync::atomic::AtomicU16::new(0),
            asset_requests: AtomicU64::new(0),
            cache_control: std::sync::Mutex::new(None),
        });
        let app = Router::new()
            .route("/ws", get(ws))
            .route("/page", get(page))
            .route("/assets/{file}", any(asset))
            .route("/sse", get(sse))
            .route("/status/{code}", any(status))
            .route("/slow", any(slow))
            .route("/download", get(download))
            .route("/upload", post(upload))
            .route("/_pulse/internal/railway/reload", post(reload))
            .route("/_pulse/internal/railway/sessions", get(sessions))
            .fallback(echo)
            .with_state(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops serving; connections in progress are dropped.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    async fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

async fn echo(State(s): State<Arc<BackendState>>, req: Request) -> Response {
    let failing = s.fail_status.load(SeqCst);
    if failing != 0 {
        let code = StatusCode::from_u16(failing).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (code, format!("{} is broken", s.deployment)).into_response();
    }
    let (parts, body) = req.into_parts();
    let mut bytes = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        bytes += chunk.len() as u64;
    }
    let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (k, v) in &parts.headers {
        headers
            .entry(k.to_string())
            .or_default()
            .push(String::from_utf8_lossy(v.as_bytes()).into_owned());
    }
    let mut res = axum::Json(serde_json::json!({
        "deployment": s.deployment,
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "query": parts.uri.query(),
        "headers": headers,
        "body_bytes": bytes,
    }))
    .into_response();
    if let Some(cc) = s
        .cache_control
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        && let Ok(v) = axum::http::HeaderValue::from_str(&cc)
    {
        res.headers_mut()
            .insert(axum::http::header::CACHE_CONTROL, v);
    }
    // Readable from any page, so a browser test can see what a
    // cross-origin request carried.
    res.headers_mut().insert(
        axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN,
        axum::http::HeaderValue::from_static("*"),
    );
    res
}

/// Whether the query has `name` (bare, or with any value: the browser
/// client writes `?hold` back as `?hold=` when it adds its pin).
fn flag(uri: &axum::http::Uri, name: &str) -> bool {
    uri.query().is_some_and(|q| {
        q.split('&')
            .any(|p| p.split_once('=').map_or(p, |(k, _)| k) == name)
    })
}

/// A page using the browser client from the router's reserved path, with
/// `probe()` reporting which deployment answered each kind of request and
/// the client's events kept in sessionStorage (they survive reloads).
async fn page(State(s): State<Arc<BackendState>>, uri: axum::http::Uri) -> Response {
    // `?asset` adds a plain `<script src>` of this build's own file, as a
    // built app has: `window.asset` says whether it loaded.
    let asset = if flag(&uri, "asset") {
        format!(
            r#"<script src="/assets/{0}-app.js" onload="window.asset='loaded'" onerror="window.asset='failed'"></script>"#,
            s.deployment
        )
    } else {
        String::new()
    };
    let html = PAGE
        .replace("{DEPLOYMENT}", &s.deployment)
        .replace("{ASSET}", &asset);
    // `?cache` lets the browser keep the page, as a site's HTML often is.
    let cache = if flag(&uri, "cache") {
        "private, max-age=600"
    } else {
        "no-cache"
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (axum::http::header::CACHE_CONTROL, cache),
        ],
        html,
    )
        .into_response()
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>{DEPLOYMENT}</title>
<script src="_switchyard/client.js"></script>
{ASSET}
<script>
  const keep = (k, f) => sessionStorage.setItem(k, JSON.stringify(f(JSON.parse(sessionStorage.getItem(k) || "null"))));
  keep("loads", (n) => (n || 0) + 1);
  keep("loaded", (a) => (a || []).concat([[Date.now(), "{DEPLOYMENT}"]]));
  for (const t of ["pinned", "stale", "reload-scheduled", "reload-suppressed", "update-available"])
    switchyard.addEventListener(t, (e) => keep("events", (a) => (a || []).concat([[t, e.detail]])));
  const first = (open) => new Promise((done, fail) => { const s = open(); s.onmessage = (e) => { done(e.data); s.close(); }; s.onerror = () => fail(new Error("failed")); });
  window.probe = async () => {
    const fetched = (await (await fetch("/api")).json()).deployment;
    const xhr = await new Promise((done) => { const x = new XMLHttpRequest(); x.open("GET", "/api"); x.onload = () => done(JSON.parse(x.responseText).deployment); x.send(); });
    const ws = await first(() => new WebSocket(location.origin.replace("http", "ws") + "/ws"));
    const es = await first(() => new EventSource("/sse"));
    return { fetched, xhr, ws, es };
  };
</script></head>
<body><h1 id="served">{DEPLOYMENT}</h1></body></html>
"#;

/// A content-hashed build file: this deployment has the files whose names
/// start with its own name (`/assets/v1-app.js` on v1), nothing else.
async fn asset(State(s): State<Arc<BackendState>>, Path(file): Path<String>) -> Response {
    s.asset_requests.fetch_add(1, SeqCst);
    if file.starts_with(&format!("{}-", s.deployment)) {
        format!("{file} from {}", s.deployment).into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("{} has no {file}", s.deployment),
        )
            .into_response()
    }
}

/// One server-sent event naming the deployment, then the stream ends; with
/// `?hold`, the stream stays open after it (as a live feed does).
async fn sse(State(s): State<Arc<BackendState>>, uri: axum::http::Uri) -> Response {
    let event = Bytes::from(format!("retry: 60000\ndata: {}\n\n", s.deployment));
    let hold = flag(&uri, "hold");
    let first = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(event) });
    let body = if hold {
        axum::body::Body::from_stream(first.chain(futures_util::stream::pending()))
    } else {
        axum::body::Body::from_stream(first)
    };
    (
        [
            (axum::http::header::CONTENT_TYPE, "text/event-stream"),
            (axum::http::header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, format!("status {}", code.as_u16())).into_response()
}

async fn slow(
    State(s): State<Arc<BackendState>>,
    Query(q): Query<BTreeMap<String, u64>>,
) -> String {
    tokio::time::sleep(Duration::from_millis(q.get("ms").copied().unwrap_or(1000))).await;
    format!("slow from {}", s.deployment)
}

async fn download(
    State(s): State<Arc<BackendState>>,
    Query(q): Query<BTreeMap<String, u64>>,
) -> Response {
    let chunks = q.get("chunks").copied().unwrap_or(16);
    let stream = futures_util::stream::unfold((0u64, s), move |(i, s)| async move {
        if i >= chunks {
            return None;
        }
        if i == 1 {
            s.release_download.notified().await;
        }
        Some((
            Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024])),
            (i + 1, s),
        ))
    });
    Body::from_stream(stream).into_response()
}

async fn upload(State(s): State<Arc<BackendState>>, body: Body) -> String {
    let mut stream = body.into_data_stream();
    let mut bytes = 0u64;
    let mut first = true;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            return "aborted".into();
        };
        bytes += chunk.len() as u64;
        if first && bytes > 0 {
            first = false;
            s.first_upload_chunk.notify_one();
        }
    }
    bytes.to_string()
}

async fn reload(State(s): State<Arc<BackendState>>, headers: HeaderMap) -> Response {
    s.reload_calls.fetch_add(1, SeqCst);
    let token = headers
        .get("x-pulse-railway-internal-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    axum::Json(
        serde_json::json!({ "reloaded_socket_count": s.ws_open.load(SeqCst), "token": token }),
    )
    .into_response()
}

async fn sessions(State(s): State<Arc<BackendState>>) -> Response {
    let delay = s.sessions_delay_ms.load(SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    match s.sessions.load(SeqCst) {
        n if n < 0 => (StatusCode::NOT_FOUND, "no such endpoint").into_response(),
        n => axum::Json(serde_json::json!({ "render_session_count": n })).into_response(),
    }
}

async fn ws(State(s): State<Arc<BackendState>>, upgrade: WebSocketUpgrade) -> Response {
    upgrade
        .protocols(["chat", "superchat"])
        .on_upgrade(move |socket| echo_socket(socket, s))
}

async fn echo_socket(mut socket: WebSocket, s: Arc<BackendState>) {
    s.ws_open.fetch_add(1, SeqCst);
    let hello = format!("hello from {}", s.deployment);
    let _ = socket.send(Message::Text(hello.into())).await;
    while let Some(Ok(msg)) = socket.recv().await {
        match msg {
            Message::Text(t) => {
                if let Some(rest) = t.as_str().strip_prefix("close:") {
                    let (code, reason) = rest.split_once(':').unwrap_or((rest, ""));
                    let code = code.parse().unwrap_or(1000);
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code,
                            reason: reason.to_string().into(),
                        })))
                        .await;
                    // Wait for the close reply.
                    while let Some(Ok(m)) = socket.recv().await {
                        if matches!(m, Message::Close(_)) {
                            break;
                        }
                    }
                    break;
                }
                if socket.send(Message::Text(t)).await.is_err() {
                    break;
                }
            }
            Message::Binary(b) => {
                let sent = socket.send(Message::Binary(b)).await;
                if sent.is_err() {
                    break;
                }
            }
            Message::Close(frame) => {
                let (code, reason) =
                    frame.map_or((1005, String::new()), |f| (f.code, f.reason.to_string()));
                s.ws_closes
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((code, reason));
                break;
            }
            _ => {}
        }
    }
    s.ws_open.fetch_sub(1, SeqCst);
}
