//! The load generator: one task per connection, each sending its next
//! request as soon as the previous answer is read (closed loop), recording
//! every latency. Written for this harness so the same client measures
//! every target.

use std::{net::SocketAddr, time::Duration};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, header};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use tokio::{net::TcpStream, time::Instant};
use tokio_tungstenite::tungstenite::Message;

#[derive(Debug, Default, Clone)]
pub struct Sample {
    pub ops: u64,
    pub bytes: u64,
    pub errors: u64,
    pub elapsed: Duration,
    /// CPU time the serving process spent (backend for direct, else the
    /// proxy), user and kernel.
    pub cpu: Duration,
    /// Microseconds, sorted.
    pub latencies: Vec<u32>,
}

impl Sample {
    pub fn rate(&self) -> f64 {
        self.ops as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn mib_per_sec(&self) -> f64 {
        self.bytes as f64 / (1024.0 * 1024.0) / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn cpu_us_per_op(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.ops.max(1) as f64
    }

    /// Latency at quantile `q` (0.0-1.0), in milliseconds.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        f64::from(self.latencies[i]) / 1000.0
    }

    fn merge(parts: Vec<Sample>, elapsed: Duration) -> Sample {
        let mut all = Sample {
            elapsed,
            ..Default::default()
        };
        for p in parts {
            all.ops += p.ops;
            all.bytes += p.bytes;
            all.errors += p.errors;
            all.latencies.extend(p.latencies);
        }
        all.latencies.sort_unstable();
        all
    }
}

/// `conns` keep-alive connections GETting `path` for `duration`.
pub async fn http(
    addr: SocketAddr,
    path: &'static str,
    conns: usize,
    duration: Duration,
) -> Sample {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(http_conn(addr, path, deadline)))
        .collect();
    let mut parts = Vec::with_capacity(conns);
    for t in tasks {
        parts.push(t.await.unwrap_or_default());
    }
    Sample::merge(parts, started.elapsed())
}

async fn http_conn(addr: SocketAddr, path: &'static str, deadline: Instant) -> Sample {
    let mut s = Sample::default();
    // A closed connection is reopened, as a browser would.
    while Instant::now() < deadline {
        if !http_keepalive(addr, path, deadline, &mut s).await {
            s.errors += 1;
        }
    }
    s
}

/// Requests on one connection until the deadline; false if it failed.
async fn http_keepalive(
    addr: SocketAddr,
    path: &'static str,
    deadline: Instant,
    s: &mut Sample,
) -> bool {
    let Ok(stream) = TcpStream::connect(addr).await else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, conn)) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream)).await
    else {
        return false;
    };
    tokio::spawn(conn);
    while Instant::now() < deadline {
        let Ok(req) = Request::get(path)
            .header(header::HOST, "bench.local")
            .body(Empty::new())
        else {
            return false;
        };
        let t = Instant::now();
        let Ok(res) = sender.send_request(req).await else {
            return false;
        };
        let ok = res.status().is_success();
        let mut body = res.into_body();
        while let Some(frame) = body.frame().await {
            match frame {
                Ok(f) => s.bytes += f.data_ref().map_or(0, |d| d.len() as u64),
                Err(_) => return false,
            }
        }
        if !ok {
            return false;
        }
        s.ops += 1;
        s.latencies
            .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
    }
    true
}

/// `conns` WebSockets each echoing `size`-byte messages for `duration`.
pub async fn ws_echo(addr: SocketAddr, conns: usize, size: usize, duration: Duration) -> Sample {
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| tokio::spawn(ws_conn(addr, size, deadline)))
        .collect();
    let mut parts = Vec::with_capacity(conns);
    for t in tasks {
        parts.push(t.await.unwrap_or_default());
    }
    Sample::merge(parts, started.elapsed())
}

async fn ws_conn(addr: SocketAddr, size: usize, deadline: Instant) -> Sample {
    let mut s = Sample::default();
    let Ok((mut ws, _)) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws")).await else {
        s.errors += 1;
        return s;
    };
    let payload = Bytes::from(vec![7u8; size]);
    while Instant::now() < deadline {
        let t = Instant::now();
        if ws.send(Message::Binary(payload.clone())).await.is_err() {
            s.errors += 1;
            break;
        }
        match ws.next().await {
            Some(Ok(Message::Binary(b))) if b.len() == size => {
                s.ops += 1;
                s.bytes += size as u64;
                s.latencies
                    .push(t.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
            }
            _ => {
                s.errors += 1;
                break;
            }
        }
    }
    let _ = ws.close(None).await;
    s
}

/// Opens `n` WebSockets (200 handshakes in flight at a time) and keeps them
/// open; returns them with the time it took.
pub async fn open_idle(addr: SocketAddr, n: usize) -> (Vec<impl Send>, Duration, usize) {
    let started = Instant::now();
    let mut open = Vec::with_capacity(n);
    let mut failed = 0;
    let mut next = 0;
    while next < n {
        let batch = (n - next).min(200);
        let attempts: Vec<_> = (0..batch)
            .map(|_| {
                tokio::spawn(async move {
                    // A proxy out of file descriptors never accepts: count
                    // that as a failure instead of hanging.
                    let handshake = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"));
                    match tokio::time::timeout(Duration::from_secs(5), handshake).await {
                        Ok(Ok((ws, _))) => Some(ws),
                        _ => None,
                    }
                })
            })
            .collect();
        for a in attempts {
            match a.await {
                Ok(Some(ws)) => open.push(ws),
                _ => failed += 1,
            }
        }
        next += batch;
    }
    (open, started.elapsed(), failed)
}
