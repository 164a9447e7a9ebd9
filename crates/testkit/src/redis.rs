//! A private `redis-server` per test: free loopback port, its own directory,
//! nothing persisted, killed on drop. It can be stopped and started again on
//! the same port to test outages.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU32, Ordering},
    time::{Duration, Instant},
};

pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    tls: bool,
    /// `--replicaof` target, for a replica.
    primary: Option<u16>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl RedisServer {
    /// Starts a server, panicking with a hint when `redis-server` is absent.
    pub fn start() -> Self {
        Self::start_with(false)
    }

    /// A server that only speaks TLS, with a self-signed certificate made
    /// by `openssl` for this run. Connect with [`RedisServer::url`].
    pub fn start_tls() -> Self {
        Self::start_with(true)
    }

    /// A replica of the server on `primary`'s port.
    pub fn start_replica_of(primary: u16) -> Self {
        Self::start_as(false, Some(primary))
    }

    fn start_with(tls: bool) -> Self {
        Self::start_as(tls, None)
    }

    fn start_as(tls: bool, primary: Option<u16>) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "switchyard-redis-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create redis temp dir");
        if tls {
            let status = Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                ])
                .args([
                    "-keyout",
                    "key.pem",
                    "-out",
                    "cert.pem",
                    "-subj",
                    "/CN=localhost",
                ])
                .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run openssl (apt-get install openssl)");
            assert!(
                status.success(),
                "openssl could not make a test certificate"
            );
        }
        // The port is free when probed; another process could take it before
        // redis binds, so retry on a fresh port if startup fails.
        for _ in 0..5 {
            let port = free_port();
            let mut server = Self {
                port,
                dir: dir.clone(),
                child: None,
                tls,
                primary,
            };
            if server.spawn().is_ok() {
                return server;
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL to connect with; for a TLS server, `rediss://` with
    /// certificate checks off (the certificate is self-signed).
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://127.0.0.1:{}/#insecure", self.port)
        } else {
            format!("redis://127.0.0.1:{}/", self.port)
        }
    }

    /// Kills the server (as a crash would) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was persisted).
    pub fn restart(&mut self) {
        self.stop();
        self.spawn()
            .unwrap_or_else(|e| panic!("restart redis on port {}: {e}", self.port));
    }

    fn spawn(&mut self) -> Result<(), String> {
        let mut cmd = Command::new("redis-server");
        if self.tls {
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .args(["--tls-cert-file", "cert.pem", "--tls-key-file", "key.pem"])
                .args(["--tls-ca-cert-file", "cert.pem", "--tls-auth-clients", "no"])
                .current_dir(&self.dir);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        if let Some(primary) = self.primary {
            cmd.args(["--replicaof", "127.0.0.1", &primary.to_string()]);
        }
        let child = cmd
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                format!("cannot run redis-server ({e}); install it: apt-get install redis-server")
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if (self.tls && accepts(self.port)) || ping(self.port) {
                return Ok(());
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(format!("redis-server exited early: {status}"));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop();
        Err("redis-server did not answer PING within 10s".into())
    }

    /// Runs a raw command (inline protocol) and returns the raw reply, for
    /// assertions that must not go through the code under test.
    pub fn command(&self, cmd: &str) -> String {
        command(self.port, cmd).expect("redis answers a command")
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

/// One raw command (inline protocol) to the Redis or Sentinel on `port`.
pub fn command(port: u16, cmd: &str) -> std::io::Result<String> {
    command_at((Ipv4Addr::LOCALHOST, port).into(), cmd)
}

/// One raw command to the Redis or Sentinel at `addr`.
pub fn command_at(addr: std::net::SocketAddr, cmd: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(format!("{cmd}\r\n").as_bytes())?;
    let mut buf = vec![0u8; 64 * 1024];
    let n = s.read(&mut buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

fn accepts(port: u16) -> bool {
    TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok()
}

fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    s.set_read_timeout(Some(Duration::from_millis(500))).ok();
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}
