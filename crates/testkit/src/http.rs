//! A raw HTTP/1.1 exchange for tests that want the bytes as they came:
//! one request on a fresh connection, closed after the answer.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `GET path` to `addr` (`host:port`, an `http://` prefix allowed) with
/// `Host: host` (the address when `None`); the raw response, head and
/// body, read until the server closes (at most 5 s).
pub async fn raw_get(addr: &str, host: Option<&str>, path: &str) -> String {
    let addr = addr.trim_start_matches("http://");
    let host = host.unwrap_or(addr);
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap_or_else(|e| panic!("write to {addr}: {e}"));
    let mut out = String::new();
    match tokio::time::timeout(Duration::from_secs(5), s.read_to_string(&mut out)).await {
        Ok(Ok(_)) => out,
        Ok(Err(e)) => panic!("read from {addr}: {e}"),
        Err(_) => panic!("{addr} did not close within 5 s; read so far: {out:?}"),
    }
}
