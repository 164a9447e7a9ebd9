//! The real `switchyard-router` binary: SIGTERM drain, health probe, bad
//! configuration.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use futures_util::StreamExt;
use support::*;
use switchyard_testkit::free_port;

fn router(redis_url: &str, port: u16) -> Child {
    router_with(redis_url, port, &[])
}

/// The router binary on `port`, with `extra` settings on top of the
/// tests' usual ones.
fn router_with(redis_url: &str, port: u16, extra: &[(&str, &str)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", redis_url)
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_METRICS_LISTEN", "off")
        .env("SWITCHYARD_SHUTDOWN_TIMEOUT", "5s")
        .envs(extra.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn health_check(port: u16) -> bool {
    Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .arg("--health-check")
        .status()
        .unwrap()
        .success()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_with_1001_and_exits_zero() {
    let redis = RedisServer::start();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
            redis.url(),
            "pulse:railway",
        ))
        .unwrap(),
    );
    let v1 = Backend::start("v1").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let port = free_port();
    assert!(!health_check(port), "nothing listens yet");
    let mut child = router(&redis.url(), port);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually(
        Duration::from_secs(10),
        "router binary to serve",
        || async move {
            tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    assert!(health_check(port));
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(tokio_tungstenite::tungstenite::Message::Close(Some(f)))) => {
                break u16::from(f.code);
            }
            Some(Ok(_)) => continue,
            other => panic!("expected close, got {other:?}"),
        }
    };
    assert_eq!(close, 1001);
    let _ = ws.next().await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn bad_config_exits_two_naming_the_setting() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_URL"));
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .env("SWITCHYARD_BACKEND_TIMEOUT", "whenever")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SWITCHYARD_BACKEND_TIMEOUT"));
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches(" kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

/// 1 GiB up and 1 GiB down through the real router: its memory stays flat
/// because bodies stream with backpressure instead of being buffered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gibibyte_each_way_with_flat_router_memory() {
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::Frame;
    use hyper_util::{client::legacy::Client, rt::TokioExecutor};

    let redis = RedisServer::start();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
            redis.url(),
            "pulse:railway",
        ))
        .unwrap(),
    );
    let v1 = Backend::start("v1").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let port = free_port();
    let child = router(&redis.url(), port);
    let pid = child.id();
    let _guard = KillOnDrop(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually(
        Duration::from_secs(10),
        "router binary to serve",
        || async move {
            try_get(addr, "/")
                .await
                .filter(|r| r.status == 200)
                .map(|_| ())
        },
    )
    .await;
    let baseline = rss_kib(pid);

    let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let sampling = {
        let peak = peak.clone();
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), std::sync::atomic::Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };

    const CHUNK: usize = 256 * 1024;
    const CHUNKS: usize = 4096; // 1 GiB
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    let body = StreamBody::new(futures_util::stream::iter(
        (0..CHUNKS).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone()))),
    ));
    let client: Client<_, StreamBody<_>> = Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(
            http::Request::post(format!("http://{addr}/upload"))
                .body(body)
                .unwrap(),
        )
        .await
        .unwrap();
    let received = res.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(
        String::from_utf8_lossy(&received),
        (CHUNK * CHUNKS).to_string()
    );

    v1.state.release_download.notify_one();
    let client: Client<_, http_body_util::Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let res = client
        .request(
            http::Request::get(format!("http://{addr}/download?chunks=16384"))
                .body(Default::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let mut body = res.into_body().into_data_stream();
    let mut total = 0usize;
    while let Some(c) = body.next().await {
        total += c.unwrap().len();
    }
    assert_eq!(total, 16384 * 64 * 1024);
    sampling.abort();

    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!("router RSS: baseline {baseline} KiB, peak {peak} KiB over 2 GiB streamed");
    assert!(
        peak < baseline + 48 * 1024,
        "router memory grew from {baseline} KiB to {peak} KiB"
    );
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_default_metrics_port_does_not_stop_routing() {
    let redis = RedisServer::start();
    // Hold the default metrics port, as another replica on this host would.
    let _held = std::net::TcpListener::bind("0.0.0.0:9091");
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _guard = KillOnDrop(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually(
        Duration::from_secs(10),
        "router to answer /healthz",
        || async move {
            try_get(addr, "/healthz")
                .await
                .filter(|r| r.status == 200)
                .map(|_| ())
        },
    )
    .await;
    // An explicitly configured address that cannot be bound is fatal.
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("SWITCHYARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHYARD_METRICS_LISTEN", format!("127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot serve metrics"));
}

/// The start-up configuration line and every later line keep the Redis
/// password out, in text and JSON logs.
#[test]
fn the_redis_password_never_appears_in_logs() {
    let redis = RedisServer::start();
    redis.command("CONFIG SET requirepass hunter2-secret");
    let url = format!("redis://:hunter2-secret@127.0.0.1:{}/", redis.port());
    for format in ["text", "json"] {
        let dir =
            std::env::temp_dir().join(format!("switchyard-log-{}-{format}", std::process::id()));
        let log = std::fs::File::create(&dir).unwrap();
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
            .env_clear()
            .env("REDIS_URL", &url)
            .env("RUST_LOG", "debug")
            .env("SWITCHYARD_LOG_FORMAT", format)
            .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
            .env("SWITCHYARD_METRICS_LISTEN", "off")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        let text = loop {
            let text = std::fs::read_to_string(&dir).unwrap_or_default();
            if text.contains("configuration") && text.contains("snapshot loaded") {
                break text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "router never logged its start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        let _ = child.kill();
        let _ = child.wait();
        let _ = std::fs::remove_file(&dir);
        assert!(
            !text.contains("hunter2"),
            "{format} logs leak the password:\n{text}"
        );
        assert!(text.contains("redis://***@127.0.0.1"), "{text}");
    }
}

/// A Redis outage is one warning when it starts and one line when it
/// ends, not a warning per heartbeat.
#[test]
fn a_store_outage_logs_once_when_it_starts_and_once_when_it_ends() {
    let mut redis = RedisServer::start();
    let path = std::env::temp_dir().join(format!("switchyard-outage-{}", std::process::id()));
    let log = std::fs::File::create(&path).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_METRICS_LISTEN", "off")
        .env("SWITCHYARD_HEARTBEAT_INTERVAL", "100ms")
        .env("SWITCHYARD_LEASE_TTL", "1s")
        .env("SWITCHYARD_RELOAD_INTERVAL", "200ms")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&path).unwrap_or_default();
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text = read();
            if text.contains(needle) {
                return text;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {needle:?} in:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for("snapshot loaded");
    redis.stop();
    wait_for("store unreachable");
    // Thirty heartbeats and ten reloads fail while it is down.
    let down_since = std::time::Instant::now();
    while down_since.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(100));
    }
    redis.restart();
    let text = wait_for("store reachable again");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    assert_eq!(text.matches("store unreachable").count(), 1, "{text}");
    assert_eq!(text.matches("store reachable again").count(), 1, "{text}");
    assert!(
        !text.contains("WARN") || text.matches("WARN").count() <= 3,
        "{text}"
    );
}

/// A router that starts with the store down has no snapshot: it says it
/// answers 503 until the store is reachable, never that it routes on one.
#[test]
fn a_router_without_a_snapshot_never_claims_to_route_on_one() {
    let port = free_port();
    let dead = free_port();
    let path = std::env::temp_dir().join(format!("switchyard-nosnap-{}", std::process::id()));
    let log = std::fs::File::create(&path).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", format!("redis://127.0.0.1:{dead}/"))
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_METRICS_LISTEN", "off")
        .env("SWITCHYARD_HEARTBEAT_INTERVAL", "100ms")
        .env("SWITCHYARD_RELOAD_INTERVAL", "200ms")
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let text = loop {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains("no snapshot yet") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no outage line in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    assert!(!text.contains("routing on the last snapshot"), "{text}");
    assert_eq!(text.matches("store unreachable").count(), 1, "{text}");
}

/// `--access-log`: one JSON line per request on stdout, written when the
/// response ends, with its id, method, path, status, deployment, duration
/// and body bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_log_is_one_json_line_per_request() {
    let redis = RedisServer::start();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        switchyard_store::RedisStore::new(&switchyard_store::RedisSettings::new(
            redis.url(),
            "pulse:railway",
        ))
        .unwrap(),
    );
    let v1 = Backend::start("v1").await;
    deploy(&store, &[("v1", &v1)], &["v1"]).await;
    let path = std::env::temp_dir().join(format!("switchyard-access-{}", std::process::id()));
    let log = std::fs::File::create(&path).unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", redis.url())
        .env("SWITCHYARD_LISTEN", format!("127.0.0.1:{port}"))
        .env("SWITCHYARD_METRICS_LISTEN", "off")
        .env("SWITCHYARD_ACCESS_LOG", "true")
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    eventually(
        Duration::from_secs(10),
        "router binary to serve",
        || async move { try_get(addr, "/").await.filter(|r| r.status == 200) },
    )
    .await;
    let served = get(addr, "/hello", &[("x-request-id", "access-1")]).await;
    let stale = get(
        addr,
        "/?pulse_deployment=gone",
        &[("x-request-id", "access-2")],
    )
    .await;
    let lines = eventually(Duration::from_secs(10), "both lines", || {
        let path = path.clone();
        async move {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            (text.contains("access-1") && text.contains("access-2")).then_some(text)
        }
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_file(&path);
    let entry = |id: &str| -> serde_json::Value {
        let line = lines.lines().find(|l| l.contains(id)).unwrap();
        serde_json::from_str(line).unwrap_or_else(|e| panic!("not one JSON line ({e}): {line}"))
    };
    let a = entry("access-1");
    assert_eq!(
        (
            a["method"].as_str(),
            a["path"].as_str(),
            a["status"].as_u64()
        ),
        (Some("GET"), Some("/hello"), Some(200))
    );
    assert_eq!(a["deployment"], "v1");
    assert_eq!(a["bytes"].as_u64(), Some(served.body.len() as u64));
    assert!(a["duration_ms"].as_f64().is_some());
    let b = entry("access-2");
    assert_eq!(b["status"], 409);
    assert_eq!(b["bytes"].as_u64(), Some(stale.body.len() as u64));
    assert!(b["deployment"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_router_janitor_deletes_an_idle_drained_deployment_within_seconds() {
    use switchyard_store::{RedisSettings, RedisStore};
    let redis = RedisServer::start();
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        RedisStore::new(&RedisSettings::new(redis.url(), "pulse:railway")).unwrap(),
    );
    let (old, new) = (Backend::start("v1").await, Backend::start("v2").await);
    deploy(&store, &[("v1", &old), ("v2", &new)], &["v1", "v2"]).await;
    let port = free_port();
    let _router = KillOnDrop(router_with(
        &redis.url(),
        port,
        &[
            ("SWITCHYARD_JANITOR_INTERVAL", "1s"),
            ("SWITCHYARD_PLATFORM", "static"),
            ("SWITCHYARD_IDLE_GRACE", "0s"),
        ],
    ));
    eventually(
        Duration::from_secs(20),
        "the router's janitor to delete drained v1",
        || {
            let store = store.clone();
            async move {
                let snap = store.snapshot().await.ok()?;
                (snap.get("v1").is_none() && snap.get("v2").is_some()).then_some(())
            }
        },
    )
    .await;
    // Routing went on meanwhile, on the deployment that stays.
    let reply = get(format!("127.0.0.1:{port}").parse().unwrap(), "/", &[]).await;
    assert_eq!(reply.deployment(), "v2");
}

/// The public router never holds a platform token: on Railway its janitor
/// reloads and revokes what is due, and no Railway call is made (the cron
/// janitor deletes the service), even with a token in its environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_router_janitor_on_railway_revokes_and_leaves_services_to_cron() {
    use switchyard_store::{JournalKind, RedisSettings, RedisStore};
    let redis = RedisServer::start();
    let railway = switchyard_testkit::railway::FakeRailway::start().await;
    let store: switchyard_store::SharedStore = std::sync::Arc::new(
        RedisStore::new(&RedisSettings::new(redis.url(), "pulse:railway")).unwrap(),
    );
    let (old, new) = (Backend::start("v1").await, Backend::start("v2").await);
    deploy(&store, &[("v1", &old), ("v2", &new)], &["v1", "v2"]).await;
    let api = railway.api();
    let port = free_port();
    let _router = KillOnDrop(router_with(
        &redis.url(),
        port,
        &[
            ("SWITCHYARD_JANITOR_INTERVAL", "1s"),
            ("SWITCHYARD_PLATFORM", "railway"),
            ("RAILWAY_PROJECT_ID", "p-1"),
            ("RAILWAY_ENVIRONMENT_ID", "e-1"),
            ("RAILWAY_TOKEN", "a-project-token"),
            ("SWITCHYARD_RAILWAY_API", &api),
            ("SWITCHYARD_IDLE_GRACE", "0s"),
        ],
    ));
    eventually(
        Duration::from_secs(20),
        "the router's janitor to revoke v1",
        || {
            let store = store.clone();
            async move {
                let snap = store.snapshot().await.ok()?;
                (snap.get("v1")?.state == switchyard_core::DeploymentState::Revoked).then_some(())
            }
        },
    )
    .await;
    let journal = store.journal(10).await.unwrap();
    let reload = journal
        .iter()
        .find(|e| e.kind == JournalKind::Reloaded)
        .expect("the revoke is in the journal");
    assert!(reload.detail.contains("cron janitor"), "{}", reload.detail);
    // The record stays for the cron janitor, and nothing reached Railway.
    let snap = store.snapshot().await.unwrap();
    assert!(
        snap.get("v1").is_some(),
        "the record stays for the cron janitor"
    );
    assert!(
        railway.state().sent.is_empty(),
        "{:?}",
        railway.state().sent
    );
}

#[test]
fn a_janitor_interval_under_a_second_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .env_clear()
        .env("REDIS_URL", "redis://127.0.0.1:1")
        .args(["--janitor-interval", "200ms"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--janitor-interval") && err.contains("under a second"),
        "{err}"
    );
}

#[test]
fn help_gives_every_flag_its_variables_and_default() {
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard-router"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for line in [
        "[env: SWITCHYARD_IDLE_TIMEOUT; default: 120s]",
        "[env: REDIS_URL, PULSE_KV_URL, PULSE_RAILWAY_REDIS_URL]",
        "[env: PULSE_RAILWAY_REDIS_PREFIX; default: pulse:railway]",
    ] {
        assert!(help.contains(line), "{line} missing from:\n{help}");
    }
}
