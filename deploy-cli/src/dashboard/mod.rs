//! `switchyard dashboard`'s server: one task reads the store every second
//! and renders the page's sections; each open page gets the sections that
//! changed as server-sent events. Every request but the two static assets
//! needs the access token printed with the URL.
//!
//! Read-only by design: the token travels in a URL (browser history,
//! screen shares, shell scroll-back), so whoever holds it can look but not
//! promote, roll back or revoke; those stay in the CLI with its checks.

pub mod chart;
pub mod render;
pub mod view;

use std::{convert::Infallible, sync::Arc, time::Duration};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, Uri, header},
    response::{
        IntoResponse, Response,
        sse::{Event, KeepAlive, Sse},
    },
    routing::get,
};
use switchyard_core::UnixTime;
use switchyard_store::SharedStore;
use tokio::sync::watch;

use view::{History, View};

/// How often the store is read.
const EVERY: Duration = Duration::from_secs(1);
/// The hour's windows only move when a router beats: read them every this
/// many reads.
const HISTORY_EVERY: u32 = 5;

/// One rendering of every section.
struct Frame {
    sections: [(&'static str, String); 5],
    at: UnixTime,
}

impl Frame {
    fn waiting(error: &str) -> Self {
        let now = UnixTime::now();
        Self {
            sections: render::SECTIONS.map(|id| {
                let html = if id == "banner" {
                    format!(
                        r#"<p class="error">Waiting for the store: {}</p>"#,
                        render::escape(error)
                    )
                } else {
                    String::new()
                };
                (id, html)
            }),
            at: now,
        }
    }
}

#[derive(Clone)]
struct App {
    token: Arc<str>,
    frames: watch::Receiver<Arc<Frame>>,
}

/// A fresh access token: 128 random bits as hex.
pub fn new_token() -> String {
    use rand::Rng;
    let bits: u128 = rand::rng().random();
    format!("{bits:032x}")
}

/// Serves the dashboard on `listener` until `stop` resolves.
pub async fn serve(
    store: SharedStore,
    listener: tokio::net::TcpListener,
    token: String,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (tx, frames) = watch::channel(Arc::new(Frame::waiting("first read")));
    let poller = tokio::spawn(poll(store, tx));
    let app = App {
        token: token.into(),
        frames,
    };
    let router = Router::new()
        .route("/", get(page))
        .route("/events", get(events))
        .route("/assets/dashboard.js", get(script))
        .route("/assets/dashboard.css", get(style))
        .fallback(not_found)
        .with_state(app);
    // Event streams never end by themselves, so a graceful shutdown would
    // wait forever: stopping drops the server and its streams.
    let result = tokio::select! {
        r = axum::serve(listener, router) => r,
        () = stop => Ok(()),
    };
    poller.abort();
    result
}

async fn poll(store: SharedStore, tx: watch::Sender<Arc<Frame>>) {
    let mut last: Option<View> = None;
    let mut reads = 0u32;
    loop {
        let history: Option<Arc<History>> = match &last {
            Some(v) if !reads.is_multiple_of(HISTORY_EVERY) => Some(v.history.clone()),
            _ => None,
        };
        let frame = match View::read(&store, history).await {
            Ok(view) => {
                let frame = Frame {
                    sections: render::sections(&view, None),
                    at: view.now,
                };
                last = Some(view);
                frame
            }
            Err(e) => match &last {
                Some(view) => Frame {
                    sections: render::sections(view, Some(&e.to_string())),
                    at: UnixTime::now(),
                },
                None => Frame::waiting(&e.to_string()),
            },
        };
        reads = reads.wrapping_add(1);
        if tx.send(Arc::new(frame)).is_err() {
            return;
        }
        tokio::time::sleep(EVERY).await;
    }
}

/// Whether the request's `token` query parameter is the token, compared in
/// time independent of where they differ.
fn authorized(app: &App, uri: &Uri) -> bool {
    let Some(query) = uri.query() else {
        return false;
    };
    let given = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let (a, b) = (given.as_bytes(), app.token.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Headers every answer carries: nothing cached, sniffed, framed or sent
/// on as a referrer (the token is in the URL).
fn guarded(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

fn refused() -> Response {
    guarded(
        (
            StatusCode::UNAUTHORIZED,
            "this dashboard needs the token in the URL `switchyard dashboard` printed\n",
        )
            .into_response(),
    )
}

async fn page(State(app): State<App>, uri: Uri) -> Response {
    if !authorized(&app, &uri) {
        return refused();
    }
    let frame = app.frames.borrow().clone();
    let mut res = axum::response::Html(render::page(&frame.sections, frame.at)).into_response();
    res.headers_mut().insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
             img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
        ),
    );
    guarded(res)
}

/// The sections as server-sent events: all of them first, then the ones
/// that changed after each read.
async fn events(State(app): State<App>, uri: Uri) -> Response {
    if !authorized(&app, &uri) {
        return refused();
    }
    let stream = futures_util::stream::unfold(
        (app.frames.clone(), None::<Arc<Frame>>),
        |(mut rx, sent)| async move {
            if sent.is_some() && rx.changed().await.is_err() {
                return None;
            }
            // Reads that changed nothing send nothing.
            let (frame, changed) = loop {
                let frame = rx.borrow_and_update().clone();
                let mut changed = serde_json::Map::new();
                for (i, (id, html)) in frame.sections.iter().enumerate() {
                    if sent.as_ref().is_none_or(|s| s.sections[i].1 != *html) {
                        changed.insert((*id).to_string(), html.clone().into());
                    }
                }
                if !changed.is_empty() {
                    break (frame, changed);
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            };
            let event = Event::default()
                .event("view")
                .data(serde_json::Value::Object(changed).to_string());
            Some((Ok::<_, Infallible>(event), (rx, Some(frame))))
        },
    );
    guarded(
        Sse::new(stream)
            .keep_alive(KeepAlive::default())
            .into_response(),
    )
}

async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("assets/dashboard.js"),
    )
}

async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("assets/dashboard.css"),
    )
}

fn asset(kind: &'static str, body: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    guarded((headers, body).into_response())
}

async fn not_found() -> Response {
    guarded((StatusCode::NOT_FOUND, "not found\n").into_response())
}
