//! The whole story with every piece a real program: Redis, two backend
//! processes, `switchyard-router`, `switchyard` and `switchyard-janitor`
//! (static platform). Every step asserts what a user would see.
//!
//! The other programs are found next to this test's own binary; `cargo test
//! --workspace` builds them first.

#![allow(clippy::unwrap_used)]

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Output, Stdio},
    time::Duration,
};

use futures_util::StreamExt;
use switchyard_testkit::{RedisServer, eventually, free_port};
use tokio_tungstenite::tungstenite::Message;

fn bin(name: &str) -> PathBuf {
    if name == "switchyard-test-backend" {
        return PathBuf::from(env!("CARGO_BIN_EXE_switchyard-test-backend"));
    }
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` (cargo test --workspace does)",
        path.display()
    );
    path
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn backend(name: &str) -> (Killed, String) {
    let mut child = Command::new(bin("switchyard-test-backend"))
        .arg(name)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    (Killed(child), url)
}

fn cli(redis: &str, args: &[&str]) -> Output {
    Command::new(bin("switchyard"))
        .env_clear()
        .env("REDIS_URL", redis)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn janitor(redis: &str, args: &[&str]) -> serde_json::Value {
    let out = Command::new(bin("switchyard-janitor"))
        .env_clear()
        .env("REDIS_URL", redis)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    serde_json::from_str(&ok(out)).unwrap()
}

/// A plain HTTP/1.1 GET: status, the selected deployment, and the body.
async fn get(addr: &str, path: &str) -> (u16, String, String) {
    let raw = switchyard_testkit::http::raw_get(addr, Some("app.example"), path).await;
    let status = raw.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let selected = raw
        .lines()
        .find_map(|l| l.strip_prefix("x-pulse-selected-deployment: "))
        .unwrap_or("")
        .to_string();
    let body = raw
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, selected, body)
}

fn ids(report: &serde_json::Value, key: &str) -> Vec<String> {
    report[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_drain_reload_and_cleanup_with_real_programs() {
    let redis = RedisServer::start();
    let r = redis.url();
    let (_b1, v1_url) = backend("v1");
    let (_b2, v2_url) = backend("v2");
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let router_url = format!("http://{addr}");
    let _router = Killed(
        Command::new(bin("switchyard-router"))
            .env_clear()
            .env("REDIS_URL", &r)
            .env("SWITCHYARD_LISTEN", &addr)
            .env("SWITCHYARD_METRICS_LISTEN", "off")
            .env("SWITCHYARD_HEARTBEAT_INTERVAL", "200ms")
            .env("SWITCHYARD_LEASE_TTL", "3s")
            .env("SWITCHYARD_RELOAD_INTERVAL", "1s")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // Deploy v1: the router serves it.
    ok(cli(
        &r,
        &[
            "deploy",
            "--url",
            &v1_url,
            "--deployment-id",
            "v1",
            "--health-path",
            "/",
            "--router-url",
            &router_url,
        ],
    ));
    let (status, selected, body) = get(&addr, "/page").await;
    assert_eq!((status, selected.as_str()), (200, "v1"), "{body}");
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .unwrap();
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("hello from v1".into())
    );

    // Deploy v2: new visitors get v2; pinned requests and the open socket stay on v1.
    ok(cli(
        &r,
        &[
            "deploy",
            "--url",
            &v2_url,
            "--deployment-id",
            "v2",
            "--health-path",
            "/",
            "--router-url",
            &router_url,
        ],
    ));
    assert_eq!(get(&addr, "/page").await.1, "v2");
    assert_eq!(get(&addr, "/page?pulse_deployment=v1").await.1, "v1");
    ws.send_text("still on v1?").await;
    assert_eq!(
        ws.next().await.unwrap().unwrap(),
        Message::Text("still on v1?".into())
    );

    // Rollback during the drain is instant, and promoting again restores v2.
    ok(cli(&r, &["rollback", "--router-url", &router_url]));
    assert_eq!(get(&addr, "/page").await.1, "v1");
    ok(cli(&r, &["promote", "v2", "--router-url", &router_url]));
    assert_eq!(get(&addr, "/page").await.1, "v2");

    // The janitor keeps v1 while its websocket lives.
    let store_sees_lease = || async {
        let list: serde_json::Value =
            serde_json::from_str(&ok(cli(&r, &["list", "--json"]))).unwrap();
        let v1 = list["deployments"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["deployment_id"] == "v1")
            .cloned()?;
        (v1["live_websockets"] == 1).then_some(())
    };
    eventually(
        Duration::from_secs(5),
        "v1's lease in the store",
        store_sees_lease,
    )
    .await;
    let report = janitor(&r, &[]);
    assert_eq!(report["kept"][0]["deployment_id"], "v1", "{report}");
    assert!(
        report["kept"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("1 websockets"),
        "{report}"
    );

    // Past the reload deadline the broadcast closes it with 1012...
    let report = janitor(&r, &["--reload-after", "0s", "--reload-window", "0s"]);
    assert_eq!(ids(&report, "reloaded"), vec!["v1"], "{report}");
    let close = loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(f)))) => break f,
            Some(Ok(_)) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(u16::from(close.code), 1012);
    let _ = ws.next().await;

    // ...and the client, reconnecting with its stale pin, lands on v2.
    let a = addr.clone();
    let (mut again, res) = eventually(
        Duration::from_secs(5),
        "the reconnect to land on v2",
        || {
            let a = a.clone();
            async move {
                let (ws, res) = tokio_tungstenite::connect_async(format!(
                    "ws://{a}/ws?pulse_deployment=v1&pulse_reload_on_stale_affinity=1"
                ))
                .await
                .ok()?;
                (res.headers()["x-pulse-selected-deployment"] == "v2").then_some((ws, res))
            }
        },
    )
    .await;
    assert_eq!(res.headers()["x-pulse-selected-deployment"], "v2");
    assert_eq!(
        again.next().await.unwrap().unwrap(),
        Message::Text("hello from v2".into())
    );

    // The next run deletes v1; a request pinned to v1 now gets stale affinity.
    let report = janitor(&r, &[]);
    assert_eq!(ids(&report, "force_deleted"), vec!["v1"], "{report}");
    let a = addr.clone();
    let (status, _, body) = eventually(Duration::from_secs(5), "pins to v1 to be stale", || {
        let a = a.clone();
        async move {
            let res = get(&a, "/page?pulse_deployment=v1").await;
            (res.0 == 409).then_some(res)
        }
    })
    .await;
    assert_eq!(status, 409);
    assert!(body.contains("stale affinity"), "{body}");
    let list: serde_json::Value = serde_json::from_str(&ok(cli(&r, &["list", "--json"]))).unwrap();
    assert_eq!(list["deployments"].as_array().unwrap().len(), 1);
    assert_eq!(list["active"], "v2");
}

trait SendText {
    async fn send_text(&mut self, text: &str);
}

impl<S> SendText for tokio_tungstenite::WebSocketStream<S>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    async fn send_text(&mut self, text: &str) {
        use futures_util::SinkExt;
        self.send(Message::Text(text.into())).await.unwrap();
    }
}
