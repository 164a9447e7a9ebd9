//! The dashboard's server at the size the issue names: 50 deployments and
//! an hour of statistics render whole, over real HTTP, behind the token.
//! (The page in Chromium, following a live release, is
//! clients/browser/test/dashboard.test.mjs.)

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use switchyard_core::{DeploymentId, UnixTime};
use switchyard_store::{
    Heartbeat, JournalEntry, JournalKind, MemoryStore, NewDeployment, RequestStats,
    STATS_WINDOW_SECS, SharedStore,
};
use switchyard_testkit::eventually;

const TOKEN: &str = "0123456789abcdef0123456789abcdef";

fn id(n: usize) -> DeploymentId {
    DeploymentId::new(&format!("web-{n:02}")).unwrap()
}

/// 50 deployments (one active, the rest draining), each with 60 minutes of
/// requests and open websockets from two replicas.
async fn busy_store() -> SharedStore {
    let store: SharedStore = Arc::new(MemoryStore::new());
    let now = UnixTime::now();
    for n in 0..50 {
        store
            .register(NewDeployment {
                id: id(n),
                service_name: format!("svc-{n}"),
                backend_url: format!("http://10.0.0.{n}:8000"),
                service_id: None,
                state_epoch: None,
                now,
            })
            .await
            .unwrap();
        store.promote(&id(n), now).await.unwrap();
        store
            .append_journal(&JournalEntry::new("cli", JournalKind::Promoted).deployment(&id(n)))
            .await
            .unwrap();
    }
    for minute in (0..60u64).rev() {
        let at = UnixTime(now.secs() - (minute * STATS_WINDOW_SECS) as f64);
        for replica in ["r1", "r2"] {
            let beat = Heartbeat {
                replica: replica.into(),
                ttl: Duration::from_secs(600),
                leases: (0..50).map(|n| (id(n), 60 - minute)).collect(),
                activity: vec![],
                stats: (0..50)
                    .map(|n| {
                        let s = RequestStats {
                            requests: 100 + minute,
                            errors_5xx: minute % 3,
                            latency_ms_sum: 0,
                        };
                        (id(n), s)
                    })
                    .collect(),
                report: None,
                now: at,
            };
            store.heartbeat(&beat).await.unwrap();
        }
    }
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_deployments_and_an_hour_of_traffic_render_whole_behind_the_token() {
    let store = busy_store().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let server = tokio::spawn(switchyard_cli::dashboard::serve(
        store,
        listener,
        TOKEN.into(),
        std::future::pending(),
    ));
    let http = reqwest::Client::new();

    for path in ["/", "/?token=wrong", "/events", "/?token="] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    // The static assets carry nothing of the store and need no token.
    let js = http
        .get(format!("{base}/assets/dashboard.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);

    let page = eventually(Duration::from_secs(10), "the first read", || async {
        let body = http
            .get(format!("{base}/?token={TOKEN}"))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()?;
        body.contains(r#"data-deployment="web-49""#).then_some(body)
    })
    .await;
    assert_eq!(page.matches("<tr data-deployment=").count(), 50);
    assert_eq!(page.matches(r#"data-state="active""#).count(), 1);
    assert_eq!(page.matches(r#"data-state="draining""#).count(), 49);
    for chart in ["requests", "errors", "websockets"] {
        let svg = page
            .split(&format!(r#"data-chart="{chart}""#))
            .nth(1)
            .and_then(|s| s.split("</svg>").next())
            .unwrap();
        assert_eq!(svg.matches("<g data-deployment=").count(), 50, "{chart}");
        assert_eq!(svg.matches(r#"data-points="60""#).count(), 50, "{chart}");
    }
    // Two replicas' sockets in the last minute: 60 + 60 on each row.
    assert!(page.contains(r#"120 <span class="muted">(r1: 60, r2: 60)</span>"#));
    // Everything on one page stays small enough to push every second.
    assert!(page.len() < 400_000, "{} bytes", page.len());
    server.abort();
}
