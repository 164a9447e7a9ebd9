//! The process around a router: logging, signals, and the health probe
//! the container image runs (it has no curl).

/// Asks a router on this machine for its health: the container image has no
/// curl, so the binary checks itself.
pub async fn probe_health(port: u16, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let probe = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| e.to_string())?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
        let mut head = [0u8; 12];
        s.read_exact(&mut head).await.map_err(|e| e.to_string())?;
        if &head[9..12] == b"200" {
            Ok(())
        } else {
            Err(format!(
                "answered {}",
                String::from_utf8_lossy(&head[9..12])
            ))
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(3), probe)
        .await
        .unwrap_or_else(|_| Err("no answer within 3s".into()))
}

/// Installs the tracing subscriber: text for people, JSON for Railway.
pub fn init_logging(format: switchyard_core::config::LogFormat) {
    switchyard_core::logging::init(format, "info", switchyard_core::logging::Output::Stdout);
}

/// Resolves on SIGTERM or SIGINT, logging which.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM; only Ctrl-C will stop");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = term.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
            _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "signal received"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
