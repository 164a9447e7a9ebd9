//! The router's listening sockets.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::RouterConfig;

/// The sockets a router serves on.
#[derive(Debug)]
pub struct Listeners {
    pub public: TcpListener,
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &RouterConfig) -> std::io::Result<Self> {
        let public = listen(config.listen, config.limits.listen_backlog).map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", config.listen))
        })?;
        let metrics = match config.metrics_listen {
            Some(addr) => match TcpListener::bind(addr).await {
                Ok(l) => Some(l),
                Err(e) if config.metrics_explicit => {
                    return Err(std::io::Error::new(
                        e.kind(),
                        format!("cannot serve metrics on {addr}: {e}"),
                    ));
                }
                Err(e) => {
                    tracing::warn!(%addr, error = %e, "default metrics address unavailable; serving without metrics (set SWITCHYARD_METRICS_LISTEN)");
                    None
                }
            },
            None => None,
        };
        Ok(Self { public, metrics })
    }

    pub fn public_addr(&self) -> std::io::Result<SocketAddr> {
        self.public.local_addr()
    }
}

/// A listening socket with an explicit accept-queue length (the kernel caps
/// it at `net.core.somaxconn`).
pub fn listen(addr: SocketAddr, backlog: u32) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // A restarted router rebinds while old connections sit in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(backlog)
}
