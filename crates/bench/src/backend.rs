//! The benchmark's backend: as cheap as a hyper server gets, so the
//! numbers measure the proxy, not the app. `/small` answers 100 bytes,
//! `/large` 1 MiB, `/ws` echoes WebSocket messages.

use std::{convert::Infallible, net::SocketAddr};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::{body::Incoming, service::service_fn};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpSocket;
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{handshake::derive_accept_key, protocol::Role},
};

static SMALL: &[u8] = &[b'x'; 100];

pub async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    // The same accept queue as the router's default, so bursts of opens
    // measure the servers, not std's 128-entry backlog.
    let socket = if listen.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(listen)?;
    let listener = socket.listen(4096)?;
    println!("listening on {}", listener.local_addr()?);
    let large = Bytes::from(vec![b'y'; 1024 * 1024]);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let large = large.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| handle(req, large.clone()));
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(
    mut req: Request<Incoming>,
    large: Bytes,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.uri().path() == "/ws" {
        let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
            return Ok(status(StatusCode::BAD_REQUEST));
        };
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(io) = upgrade.await else { return };
            let mut ws =
                WebSocketStream::from_raw_socket(TokioIo::new(io), Role::Server, None).await;
            while let Some(Ok(msg)) = ws.next().await {
                if msg.is_close() || ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
        let mut res = Response::new(Full::default());
        *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        let h = res.headers_mut();
        h.insert(
            header::CONNECTION,
            header::HeaderValue::from_static("upgrade"),
        );
        h.insert(
            header::UPGRADE,
            header::HeaderValue::from_static("websocket"),
        );
        if let Ok(v) = header::HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
            h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
        }
        return Ok(res);
    }
    let body = match req.uri().path() {
        "/large" => large,
        _ => Bytes::from_static(SMALL),
    };
    Ok(Response::new(Full::new(body)))
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::default());
    *r.status_mut() = code;
    r
}
