//! Framing, checked by generated cases (RFC 9112): requests drawn from the
//! message grammar, with optional whitespace where the grammar allows it,
//! sent split at arbitrary bytes and followed by a pipelined request, reach
//! a reference parser (hyper's server, as the backend) as the same message,
//! and the pipelined one after it as its own. The same requests with one
//! hostile mutation (conflicting or duplicated framing, signs and lists in
//! lengths, obs-fold, bare LF, NUL or CR in values, unknown codings, huge
//! sizes) are refused by the router with its own answer; neither they nor
//! anything after them reaches the backend. Responses drawn the same way
//! reach the client with their status and body, re-framed.
//!
//! The number of cases is bounded (`PROPTEST_CASES`, 96 by default) so the
//! suite stays quick in CI; a failure prints the shrunk case.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, service::service_fn};
use hyper_util::rt::TokioIo;
use proptest::{prelude::*, test_runner::TestRunner};
use support::*;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    runtime::Runtime,
    sync::mpsc,
};

/// A request as the backend's parser read it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    fields: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// A reference backend: hyper's HTTP/1 server, recording each request.
async fn reference_backend() -> (String, mpsc::UnboundedReceiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let tx = tx.clone();
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.map(|c| c.to_bytes().to_vec());
                        let seen = Seen {
                            method: parts.method.to_string(),
                            target: parts.uri.to_string(),
                            fields: parts
                                .headers
                                .iter()
                                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                                .collect(),
                            body: body.unwrap_or_else(|e| format!("BODY ERROR {e}").into_bytes()),
                        };
                        let _ = tx.send(seen);
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"ok"))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (url, rx)
}

#[derive(Debug, Clone)]
enum BodyModel {
    None,
    Length(Vec<u8>),
    Chunked {
        pieces: Vec<Vec<u8>>,
        extension: bool,
        trailer: bool,
    },
}

impl BodyModel {
    fn data(&self) -> Vec<u8> {
        match self {
            Self::None => Vec::new(),
            Self::Length(b) => b.clone(),
            Self::Chunked { pieces, .. } => pieces.concat(),
        }
    }
}

#[derive(Debug, Clone)]
struct Model {
    method: &'static str,
    target: String,
    /// End-to-end fields: name, value, and the optional whitespace
    /// (RFC 9112 §5.1) written before and after the value.
    fields: Vec<(String, String, &'static str, &'static str)>,
    body: BodyModel,
    /// Where the bytes are split into separate writes, as fractions.
    splits: Vec<f64>,
}

/// Declares the hostile mutations once: the enum and the list the cases
/// draw from.
macro_rules! mutations {
    ($($name:ident),* $(,)?) => {
        /// One change that makes a request ambiguous or invalid, and the
        /// status the router owes it.
        #[derive(Debug, Clone, Copy)]
        enum Hostile {
            $($name),*
        }

        impl Hostile {
            const ALL: &'static [Hostile] = &[$(Hostile::$name),*];
        }
    };
}

mutations![
    TwoLengths,
    LengthAndChunked,
    SignedLength,
    LengthList,
    HugeLength,
    ObsFold,
    BareLf,
    NulInValue,
    CrInValue,
    SpaceBeforeColon,
    UnknownCoding,
    CodingAfterChunked,
    ChunkedTwice,
    ChunkedInHttp10,
    HugeChunk,
    BadChunkSize,
    HugeExtension,
    HugeTrailer,
    NoSpaceInRequestLine,
];

impl Hostile {
    fn status(self) -> u16 {
        match self {
            Self::UnknownCoding | Self::CodingAfterChunked => 501,
            _ => 400,
        }
    }
}

fn token() -> impl Strategy<Value = String> {
    "x-[a-z0-9-]{1,12}"
}

fn model() -> impl Strategy<Value = Model> {
    let method = prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]);
    // Segments already normal: the router forwards the normalized path
    // (empty and dot segments collapsed) and refuses a dot segment with
    // parameters (`..;`); `path` checks those on its own.
    let segment = "[a-zA-Z0-9._~!$&'()*+,;=:@-]{1,8}".prop_filter("a dot segment", |s| {
        !matches!(s.split(';').next(), Some("." | ".."))
    });
    let target = (
        prop::collection::vec(segment, 1..4),
        prop::option::of("[a-z0-9=&/?:@._~-]{0,16}"),
    )
        .prop_map(|(segments, query)| {
            let mut t = format!("/{}", segments.join("/"));
            if let Some(q) = query {
                t.push('?');
                t.push_str(&q);
            }
            t
        });
    let ows = prop::sample::select(vec!["", "", " ", "\t", "  ", " \t"]);
    let field = (
        prop_oneof![
            token(),
            prop::sample::select(vec!["accept", "cookie", "user-agent", "cache-control"])
                .prop_map(String::from),
        ],
        "[!-~]([ !-~]{0,20}[!-~])?",
        ows.clone(),
        ows,
    );
    let body = prop_oneof![
        Just(BodyModel::None),
        prop::collection::vec(any::<u8>(), 1..3000).prop_map(BodyModel::Length),
        (
            prop::collection::vec(prop::collection::vec(any::<u8>(), 1..700), 1..5),
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(|(pieces, extension, trailer)| BodyModel::Chunked {
                pieces,
                extension,
                trailer
            }),
    ];
    (
        method,
        target,
        prop::collection::vec(field, 0..6),
        body,
        prop::collection::vec(0.0..1.0f64, 0..3),
    )
        .prop_map(|(method, target, fields, body, splits)| Model {
            method,
            target,
            fields,
            body,
            splits,
        })
}

fn hostile() -> impl Strategy<Value = Hostile> {
    prop::sample::select(Hostile::ALL)
}

fn hex(n: usize) -> String {
    format!("{n:x}")
}

/// The request's bytes, with `id` as its request id, mutated by `hostile`.
fn render(m: &Model, id: &str, hostile: Option<Hostile>) -> Vec<u8> {
    use Hostile::*;
    let version = match hostile {
        Some(ChunkedInHttp10) => "HTTP/1.0",
        _ => "HTTP/1.1",
    };
    let mut out = match hostile {
        Some(NoSpaceInRequestLine) => format!("{}{} {version}\r\n", m.method, m.target),
        _ => format!("{} {} {version}\r\n", m.method, m.target),
    }
    .into_bytes();
    let line = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(s.as_bytes());
        out.extend_from_slice(b"\r\n");
    };
    line(&mut out, "host: app.test");
    line(&mut out, &format!("x-request-id: {id}"));
    for (name, value, before, after) in &m.fields {
        line(&mut out, &format!("{name}:{before}{value}{after}"));
    }
    let data = m.body.data();
    // The framing the body needs, or (mutated) a body-less request's.
    let chunked = matches!(m.body, BodyModel::Chunked { .. })
        || matches!(
            hostile,
            Some(
                LengthAndChunked
                    | ChunkedTwice
                    | ChunkedInHttp10
                    | HugeChunk
                    | BadChunkSize
                    | HugeExtension
                    | HugeTrailer
                    | UnknownCoding
                    | CodingAfterChunked
            )
        );
    // An unknown coding is written as the only framing field, so that
    // the answer is about the coding (501), not two framings (400).
    let own_coding = matches!(hostile, Some(UnknownCoding | CodingAfterChunked));
    match (&m.body, chunked) {
        _ if own_coding => {}
        (BodyModel::Length(b), false) => line(&mut out, &format!("content-length: {}", b.len())),
        (_, true) => line(&mut out, "transfer-encoding: chunked"),
        _ => {}
    }
    match hostile {
        Some(TwoLengths) => {
            line(&mut out, &format!("content-length: {}", data.len()));
            line(&mut out, &format!("content-length: {}", data.len() + 1));
        }
        Some(LengthAndChunked) => line(&mut out, &format!("content-length: {}", data.len())),
        Some(SignedLength) => line(&mut out, &format!("content-length: +{}", data.len())),
        Some(LengthList) => line(&mut out, &format!("content-length: {0}, {0}", data.len())),
        Some(HugeLength) => line(&mut out, "content-length: 99999999999999999999"),
        Some(ObsFold) => line(&mut out, "x-folded: one\r\n two"),
        Some(BareLf) => out.extend_from_slice(b"x-bare: lf\n"),
        Some(NulInValue) => out.extend_from_slice(b"x-nul: a\0b\r\n"),
        Some(CrInValue) => out.extend_from_slice(b"x-cr: a\rb\r\n"),
        Some(SpaceBeforeColon) => line(&mut out, "x-space : before"),
        Some(UnknownCoding) => line(&mut out, "transfer-encoding: gzip"),
        Some(CodingAfterChunked) => line(&mut out, "transfer-encoding: chunked, gzip"),
        Some(ChunkedTwice) => line(&mut out, "transfer-encoding: chunked"),
        _ => {}
    }
    out.extend_from_slice(b"\r\n");
    match (&m.body, chunked) {
        (BodyModel::Length(b), false) => out.extend_from_slice(b),
        (_, true) => {
            let pieces = match &m.body {
                BodyModel::Chunked { pieces, .. } => pieces.clone(),
                BodyModel::Length(b) => vec![b.clone()],
                BodyModel::None => vec![b"x".to_vec()],
            };
            let (extension, trailer) = match &m.body {
                BodyModel::Chunked {
                    extension, trailer, ..
                } => (*extension, *trailer),
                _ => (false, false),
            };
            for (i, p) in pieces.iter().enumerate() {
                let size = match hostile {
                    Some(HugeChunk) if i == 0 => "1ffffffffffffffff".to_owned(),
                    Some(BadChunkSize) if i == 0 => format!("0x{}", hex(p.len())),
                    _ => hex(p.len()),
                };
                let ext = match hostile {
                    Some(HugeExtension) if i == 0 => format!(";k={}", "e".repeat(20_000)),
                    _ if extension => ";k=\"v\"".to_owned(),
                    _ => String::new(),
                };
                out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                out.extend_from_slice(p);
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(b"0\r\n");
            if trailer {
                out.extend_from_slice(b"x-trailer: t\r\n");
            }
            if let Some(HugeTrailer) = hostile {
                out.extend_from_slice(format!("x-huge: {}\r\n", "t".repeat(20_000)).as_bytes());
            }
            out.extend_from_slice(b"\r\n");
        }
        _ => {}
    }
    out
}

const AFTER: &[u8] = b"GET /after HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n\r\n";

/// Sends `bytes` in pieces cut at `splits`, then the pipelined request,
/// and reads everything the router answers until it closes.
async fn exchange(addr: SocketAddr, bytes: &[u8], splits: &[f64]) -> Vec<u8> {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut cuts: Vec<usize> = splits
        .iter()
        .map(|f| (f * bytes.len() as f64) as usize)
        .collect();
    cuts.sort_unstable();
    let mut from = 0;
    for cut in cuts.into_iter().chain([bytes.len()]) {
        if cut > from {
            if s.write_all(&bytes[from..cut]).await.is_err() {
                break;
            }
            let _ = s.flush().await;
            from = cut;
        }
    }
    let _ = s.write_all(AFTER).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
    out
}

/// The responses in `bytes`: status, header fields and decoded body each.
/// A response as the client read it: status, fields, decoded body.
type Answered = (u16, Vec<(String, String)>, Vec<u8>);

fn responses(mut bytes: &[u8]) -> Result<Vec<Answered>, String> {
    let mut all = Vec::new();
    while !bytes.is_empty() {
        let mut fields = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut fields);
        let len = match res.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            other => return Err(format!("unparsable response: {other:?}")),
        };
        let status = res.code.unwrap_or(0);
        let fields: Vec<(String, String)> = res
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        let field = |n: &str| fields.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        bytes = &bytes[len..];
        let body = if let Some(n) = field("content-length") {
            let n: usize = n.parse().map_err(|_| "bad content-length")?;
            let b = bytes.get(..n).ok_or("short body")?.to_vec();
            bytes = &bytes[n..];
            b
        } else if field("transfer-encoding").is_some() {
            let (b, used) = dechunk(bytes)?;
            bytes = &bytes[used..];
            b
        } else if status == 204 || status == 304 {
            Vec::new()
        } else {
            let b = bytes.to_vec();
            bytes = &[];
            b
        };
        all.push((status, fields, body));
    }
    Ok(all)
}

/// A chunked body as the router writes it: sizes, data, the last chunk,
/// no extensions, no trailers.
fn dechunk(bytes: &[u8]) -> Result<(Vec<u8>, usize), String> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let line = bytes[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("unterminated chunk size")?;
        let size = std::str::from_utf8(&bytes[at..at + line]).map_err(|e| e.to_string())?;
        let n = usize::from_str_radix(size, 16).map_err(|_| format!("chunk size {size:?}"))?;
        at += line + 2;
        if n == 0 {
            if bytes.get(at..at + 2) != Some(b"\r\n") {
                return Err("no empty line after the last chunk".into());
            }
            return Ok((out, at + 2));
        }
        out.extend_from_slice(bytes.get(at..at + n).ok_or("short chunk")?);
        at += n;
        if bytes.get(at..at + 2) != Some(b"\r\n") {
            return Err("chunk data not ended by CRLF".into());
        }
        at += 2;
    }
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(96)
}

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// The router and its reference backend, on one runtime the cases share.
fn setup() -> (Runtime, TestRouter, mpsc::UnboundedReceiver<Seen>) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (router, seen) = rt.block_on(async {
        let (url, seen) = reference_backend().await;
        let store = memory_store();
        active_at(&store, "v1", url).await;
        (TestRouter::start(test_config(), store).await, seen)
    });
    (rt, router, seen)
}

/// The request ids of everything the backend has received so far.
fn drain(seen: &mut mpsc::UnboundedReceiver<Seen>) -> Vec<Seen> {
    let mut all = Vec::new();
    while let Ok(s) = seen.try_recv() {
        all.push(s);
    }
    all
}

fn field<'a>(s: &'a Seen, name: &str) -> Option<&'a [u8]> {
    s.fields
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_slice())
}

#[test]
fn a_valid_request_reaches_the_reference_parser_as_the_same_message() {
    let (rt, router, seen) = setup();
    // A mutex only to lend the receiver to the case closure (`Fn`).
    let seen = Mutex::new(seen);
    let n = std::cell::Cell::new(0u32);
    runner()
        .run(&model(), |m| {
            n.set(n.get() + 1);
            let id = format!("valid-{}", n.get());
            // A failed case (while shrinking) may leave requests behind.
            drain(&mut seen.lock().unwrap());
            let bytes = render(&m, &id, None);
            let answered = rt.block_on(exchange(router.addr, &bytes, &m.splits));
            let answered = responses(&answered).map_err(TestCaseError::fail)?;
            let statuses: Vec<u16> = answered.iter().map(|r| r.0).collect();
            prop_assert_eq!(&statuses, &vec![200, 200]);
            let mut guard = seen.lock().unwrap();
            let seen: &mut mpsc::UnboundedReceiver<Seen> = &mut guard;
            let got = rt.block_on(async {
                let mut got = Vec::new();
                while got.len() < 2 {
                    match tokio::time::timeout(Duration::from_secs(5), seen.recv()).await {
                        Ok(Some(s)) => got.push(s),
                        _ => break,
                    }
                }
                got
            });
            prop_assert_eq!(got.len(), 2, "the backend saw {:?}", got);
            let (first, after) = (&got[0], &got[1]);
            prop_assert_eq!(field(first, "x-request-id"), Some(id.as_bytes()));
            prop_assert_eq!(&first.method, m.method);
            prop_assert_eq!(&first.target, &m.target);
            prop_assert_eq!(&first.body, &m.body.data());
            // Every end-to-end field, its value without the optional
            // whitespace around it; the lines of one name in their order
            // (RFC 9110 §5.3: the order across names carries nothing, and
            // the reference's map groups by name).
            let mut sent: Vec<(String, Vec<u8>)> = m
                .fields
                .iter()
                .map(|(k, v, _, _)| (k.clone(), v.as_bytes().to_vec()))
                .collect();
            let names: Vec<String> = sent.iter().map(|(k, _)| k.clone()).collect();
            let mut forwarded: Vec<(String, Vec<u8>)> = first
                .fields
                .iter()
                .filter(|(k, _)| names.contains(k))
                .cloned()
                .collect();
            sent.sort_by(|a, b| a.0.cmp(&b.0));
            forwarded.sort_by(|a, b| a.0.cmp(&b.0));
            prop_assert_eq!(forwarded, sent);
            prop_assert_eq!(&after.method, "GET");
            prop_assert_eq!(&after.target, "/after");
            prop_assert!(after.body.is_empty());
            Ok(())
        })
        .unwrap();
    rt.block_on(router.shutdown());
}

#[test]
fn a_hostile_request_is_refused_and_nothing_of_it_reaches_the_backend() {
    let (rt, router, seen) = setup();
    let seen = Mutex::new(seen);
    let n = std::cell::Cell::new(0u32);
    runner()
        .run(&(model(), hostile()), |(m, hostile)| {
            n.set(n.get() + 1);
            let id = format!("hostile-{}", n.get());
            drain(&mut seen.lock().unwrap());
            let bytes = render(&m, &id, Some(hostile));
            let answered = rt.block_on(exchange(router.addr, &bytes, &m.splits));
            let answered = responses(&answered).map_err(TestCaseError::fail)?;
            // One answer, the router's own, then the connection closed:
            // the pipelined request after it is never read.
            prop_assert_eq!(answered.len(), 1, "{:?}", answered);
            let (status, fields, _) = &answered[0];
            prop_assert_eq!(*status, hostile.status());
            let has = |k: &str, v: Option<&str>| {
                fields
                    .iter()
                    .any(|(n, x)| n == k && v.is_none_or(|v| x == v))
            };
            prop_assert!(has("x-switchyard", Some("router")), "{:?}", fields);
            prop_assert!(has("x-request-id", None), "{:?}", fields);
            prop_assert!(has("connection", Some("close")), "{:?}", fields);
            // The backend's parser records a request before answering it,
            // and the router would have had that answer before its own.
            let reached = drain(&mut seen.lock().unwrap());
            prop_assert!(reached.is_empty(), "the backend saw {:?}", reached);
            Ok(())
        })
        .unwrap();
    rt.block_on(router.shutdown());
}

/// A response as a backend may frame it.
#[derive(Debug, Clone)]
struct ResponseModel {
    status: u16,
    framing: u8,
    body: Vec<u8>,
    pieces: usize,
    trailer: bool,
}

fn response_model() -> impl Strategy<Value = ResponseModel> {
    (
        prop::sample::select(vec![200u16, 201, 204, 304, 404, 500]),
        0u8..3,
        prop::collection::vec(any::<u8>(), 0..5000),
        1usize..5,
        any::<bool>(),
    )
        .prop_map(|(status, framing, body, pieces, trailer)| ResponseModel {
            status,
            framing,
            // 204 and 304 have no content (RFC 9110 §15.3.5, §15.4.5).
            body: if matches!(status, 204 | 304) {
                Vec::new()
            } else {
                body
            },
            pieces,
            trailer,
        })
}

/// The response's head and body (as framed), and whether the backend
/// closes after it.
fn render_response(r: &ResponseModel) -> (Vec<u8>, Vec<u8>, bool) {
    let mut head = format!("HTTP/1.1 {} X\r\nx-from: backend\r\n", r.status).into_bytes();
    let mut body = Vec::new();
    let bodiless = matches!(r.status, 204 | 304);
    let close = !bodiless && r.framing == 2;
    match r.framing {
        _ if bodiless => head.extend_from_slice(b"\r\n"),
        0 => {
            head.extend_from_slice(format!("content-length: {}\r\n\r\n", r.body.len()).as_bytes());
            body.extend_from_slice(&r.body);
        }
        1 => {
            head.extend_from_slice(b"transfer-encoding: chunked\r\n\r\n");
            let size = r.body.len().div_ceil(r.pieces).max(1);
            for p in r.body.chunks(size) {
                body.extend_from_slice(format!("{};e=1\r\n", hex(p.len())).as_bytes());
                body.extend_from_slice(p);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"0\r\n");
            if r.trailer {
                body.extend_from_slice(b"x-trailer: t\r\n");
            }
            body.extend_from_slice(b"\r\n");
        }
        _ => {
            head.extend_from_slice(b"connection: close\r\n\r\n");
            body.extend_from_slice(&r.body);
        }
    }
    (head, body, close)
}

type Script = Arc<Mutex<(Vec<u8>, Vec<u8>, bool)>>;

/// A backend that answers every request with the response in `next` (its
/// head alone to a HEAD), closing after it when that response ends with
/// its connection.
async fn answering_backend(next: Script) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let next = next.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let end = buf.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head_request = buf.starts_with(b"HEAD ");
                    buf.drain(..end);
                    let (mut bytes, body, close) = next.lock().unwrap().clone();
                    if !head_request {
                        bytes.extend_from_slice(&body);
                    }
                    if s.write_all(&bytes).await.is_err() || close {
                        return;
                    }
                }
            });
        }
    });
    url
}

#[test]
fn a_response_reaches_the_client_with_its_status_and_body() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let next: Script = Arc::new(Mutex::new((Vec::new(), Vec::new(), false)));
    let router = rt.block_on(async {
        let url = answering_backend(next.clone()).await;
        let store = memory_store();
        active_at(&store, "v1", url).await;
        TestRouter::start(test_config(), store).await
    });
    runner()
        .run(&(response_model(), any::<bool>()), |(r, head)| {
            *next.lock().unwrap() = render_response(&r);
            let method = if head { "HEAD" } else { "GET" };
            let req =
                format!("{method} /r HTTP/1.1\r\nhost: app.test\r\nconnection: close\r\n\r\n");
            let bytes = rt.block_on(async {
                let mut s = TcpStream::connect(router.addr).await.unwrap();
                s.write_all(req.as_bytes()).await.unwrap();
                let mut out = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
                out
            });
            if head {
                // A HEAD answer has no body whatever its fields say
                // (RFC 9110 §9.3.2): only the head arrives.
                let mut fields = [httparse::EMPTY_HEADER; 64];
                let mut res = httparse::Response::new(&mut fields);
                let parsed = res.parse(&bytes);
                prop_assert!(
                    matches!(parsed, Ok(httparse::Status::Complete(n)) if n == bytes.len()),
                    "{:?}",
                    String::from_utf8_lossy(&bytes)
                );
                prop_assert_eq!(res.code, Some(r.status));
                return Ok(());
            }
            let answered = responses(&bytes).map_err(TestCaseError::fail)?;
            prop_assert_eq!(answered.len(), 1);
            let (status, fields, body) = &answered[0];
            prop_assert_eq!(*status, r.status);
            prop_assert!(fields.iter().any(|(k, v)| k == "x-from" && v == "backend"));
            prop_assert!(!fields.iter().any(|(k, _)| k == "x-trailer"));
            prop_assert_eq!(body, &r.body);
            Ok(())
        })
        .unwrap();
    rt.block_on(router.shutdown());
}
