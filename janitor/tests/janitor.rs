//! The janitor against a real Redis and real backends (its reloads
//! reaching a router's WebSockets: router/tests/janitor.rs).

#![allow(clippy::unwrap_used)]

use std::{sync::Arc, time::Duration};

use switchyard_core::{DeploymentId, DeploymentState, UnixTime};
use switchyard_janitor::{JanitorConfig, Report, plan::Policy};
use switchyard_platform::{SharedPlatform, StaticPlatform};
use switchyard_store::{NewDeployment, RedisSettings, RedisStore, SharedStore};
use switchyard_testkit::{Backend, RedisServer};

fn id(s: &str) -> DeploymentId {
    DeploymentId::new(s).unwrap()
}

fn config(redis: &RedisServer) -> JanitorConfig {
    JanitorConfig {
        reload_grace: Duration::from_millis(50),
        reload_window: Duration::ZERO,
        internal_token: Some("tok".into()),
        probe_timeout: Duration::from_secs(2),
        ..JanitorConfig::with_store(&redis.url(), "j")
    }
}

fn store(redis: &RedisServer) -> SharedStore {
    let mut s = RedisSettings::new(redis.url(), "j");
    s.timeout = Duration::from_millis(300);
    Arc::new(RedisStore::new(&s).unwrap())
}

fn platform() -> SharedPlatform {
    Arc::new(StaticPlatform)
}

const HOUR: f64 = 3600.0;

/// Registers `name` at `url` and makes it active at `ago` seconds in the past.
async fn active_at(store: &SharedStore, name: &str, url: &str, ago: f64) {
    let then = UnixTime(UnixTime::now().0 - ago);
    store
        .register(NewDeployment {
            id: id(name),
            service_name: name.into(),
            backend_url: url.into(),
            service_id: None,
            state_epoch: None,
            now: then,
        })
        .await
        .unwrap();
    store.promote(&id(name), then).await.unwrap();
}

async fn state_of(store: &SharedStore, name: &str) -> Option<DeploymentState> {
    store.snapshot().await.unwrap().get(name).map(|d| d.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decision_branch() {
    let redis = RedisServer::start();
    let s = store(&redis);
    let idle = Backend::start("idle").await;
    // Drained 2 h ago (v-idle), 1 h ago, 26 h ago... each promotion drains the previous one.
    active_at(&s, "old", "http://127.0.0.1:9", 30.0 * HOUR).await; // drains 26 h ago
    active_at(&s, "v-idle", &idle.url(), 26.0 * HOUR).await; // drains 2 h ago
    active_at(&s, "v-sockets", "http://127.0.0.1:9", 2.0 * HOUR).await; // drains 1 h ago
    active_at(&s, "v-recent", "http://127.0.0.1:9", 1.0 * HOUR).await; // drains just now
    active_at(&s, "live", "http://127.0.0.1:9", 0.0).await;
    // v-sockets still has a client; v-recent just drained.
    s.heartbeat(&switchyard_store::Heartbeat {
        replica: "r1".into(),
        ttl: Duration::from_secs(60),
        leases: vec![(id("v-sockets"), 2)],
        activity: vec![],
        stats: vec![],
        report: None,
        now: UnixTime::now(),
    })
    .await
    .unwrap();

    let report = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap();
    assert!(report.lock_acquired);
    assert_eq!(report.scanned, 4);
    assert_eq!(report.force_deleted, vec![id("old")], "{}", report.human());
    assert_eq!(report.deleted, vec![id("v-idle")]);
    assert_eq!(report.reloaded, vec![id("v-sockets")]);
    assert_eq!(report.kept.len(), 1);
    assert_eq!(report.kept[0].deployment_id, id("v-recent"));
    assert!(report.errors.is_empty(), "{:?}", report.errors);

    assert_eq!(state_of(&s, "old").await, None);
    assert_eq!(state_of(&s, "v-idle").await, None);
    assert_eq!(
        state_of(&s, "v-sockets").await,
        Some(DeploymentState::Revoked),
        "reloaded: revoked so reconnects go to the active one; the next run deletes it"
    );
    assert_eq!(state_of(&s, "live").await, Some(DeploymentState::Active));
    // The idle Pulse backend was told to reload first, with the token.
    assert_eq!(
        idle.state
            .reload_calls
            .load(std::sync::atomic::Ordering::SeqCst),
        1
    );
    // The run published its policy for `switchyard status`.
    let published = s
        .get_meta(switchyard_janitor::POLICY_META)
        .await
        .unwrap()
        .unwrap();
    let policy: Policy = serde_json::from_str(&published).unwrap();
    assert_eq!(policy, config(&redis).policy);
    let summary = report.human();
    assert!(
        summary.contains("force-deleted") && summary.contains("old"),
        "{summary}"
    );
    // What it did is in the journal, with why; what it kept is not.
    let journal = s.journal(10).await.unwrap();
    let did: Vec<_> = journal
        .iter()
        .map(|e| (e.kind, e.deployment_id.clone().unwrap(), e.actor.as_str()))
        .collect();
    use switchyard_store::JournalKind::{Deleted, Reloaded};
    for done in [
        (Deleted, id("old"), "janitor"),
        (Deleted, id("v-idle"), "janitor"),
        (Reloaded, id("v-sockets"), "janitor"),
    ] {
        assert!(did.contains(&done), "{done:?} not in {did:?}");
    }
    assert_eq!(did.len(), 3, "{did:?}");
    assert!(journal.iter().all(|e| !e.detail.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_changes_nothing() {
    let redis = RedisServer::start();
    let s = store(&redis);
    // v1 served until three hours ago, when v2 replaced it.
    active_at(&s, "v1", "http://127.0.0.1:9", 4.0 * HOUR).await;
    active_at(&s, "v2", "http://127.0.0.1:9", 3.0 * HOUR).await;
    let mut c = config(&redis);
    c.dry_run = true;
    let report = switchyard_janitor::run(&c, &s, &platform()).await.unwrap();
    assert_eq!(report.decisions.len(), 1);
    assert!(
        report.human().contains("would delete"),
        "{}",
        report.human()
    );
    assert_eq!(state_of(&s, "v1").await, Some(DeploymentState::Draining));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["decisions"][0]["action"], "delete");
    assert_eq!(json["decisions"][0]["why"], "idle");
    // What it would do, in fields of their own: nothing claims a deletion.
    assert_eq!(json["would_delete"], serde_json::json!(["v1"]));
    assert_eq!(json["deleted"], serde_json::json!([]));
    assert_eq!(json["outcomes"][0]["outcome"], "would_delete");
    let real = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap();
    let real = serde_json::to_value(&real).unwrap();
    let keys = |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&json), keys(&real), "one shape for both");
    assert_eq!(real["deleted"], json["would_delete"]);
    assert_eq!(real["would_delete"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_means_no_action() {
    let redis = RedisServer::start();
    let s = store(&redis);
    // v1 served until three hours ago, when v2 replaced it.
    active_at(&s, "v1", "http://127.0.0.1:9", 4.0 * HOUR).await;
    active_at(&s, "v2", "http://127.0.0.1:9", 3.0 * HOUR).await;
    let held = s
        .acquire_lock("janitor", Duration::from_secs(30))
        .await
        .unwrap()
        .unwrap();
    let report = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap();
    assert!(!report.lock_acquired);
    assert!(report.human().contains("another run holds the lock"));
    assert_eq!(state_of(&s, "v1").await, Some(DeploymentState::Draining));
    assert!(
        s.release_lock(&held).await.unwrap(),
        "the janitor never releases a lock it does not hold"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_runs_act_once() {
    let redis = RedisServer::start();
    let s = store(&redis);
    // v1 served until three hours ago, when v2 replaced it.
    active_at(&s, "v1", "http://127.0.0.1:9", 4.0 * HOUR).await;
    active_at(&s, "v2", "http://127.0.0.1:9", 3.0 * HOUR).await;
    let c = config(&redis);
    let runs = (0..8).map(|_| {
        let (c, s) = (c.clone(), s.clone());
        tokio::spawn(async move { switchyard_janitor::run(&c, &s, &platform()).await.unwrap() })
    });
    let reports: Vec<Report> = futures_util::future::join_all(runs)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let deleted: usize = reports.iter().map(|r| r.deleted.len()).sum();
    assert_eq!(deleted, 1, "exactly one run deleted v1");
    assert!(reports.iter().all(|r| r.errors.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_promotion_racing_the_janitor_never_loses_the_active() {
    let redis = RedisServer::start();
    let s = store(&redis);
    let mut outcomes = Vec::new();
    for round in 0..15 {
        let (a, b) = (format!("a{round}"), format!("b{round}"));
        active_at(&s, &b, "http://127.0.0.1:9", 3.0 * HOUR).await;
        active_at(&s, &a, "http://127.0.0.1:9", 2.0 * HOUR).await;
        // b is idle and draining; race its rollback against a janitor run.
        let c = config(&redis);
        let (s1, s2) = (s.clone(), s.clone());
        let bid = id(&b);
        let janitor =
            tokio::spawn(
                async move { switchyard_janitor::run(&c, &s1, &platform()).await.unwrap() },
            );
        // Shift the promotion later each round so both orders happen.
        let lag = Duration::from_micros(round as u64 * 700);
        let promote = tokio::spawn(async move {
            tokio::time::sleep(lag).await;
            s2.promote(&bid, UnixTime::now()).await
        });
        let report = janitor.await.unwrap();
        let promoted = promote.await.unwrap();
        let snap = s.snapshot().await.unwrap();
        let active = snap.active.clone().unwrap();
        assert!(
            snap.get(active.as_str()).is_some(),
            "round {round}: the active deployment exists"
        );
        if promoted.is_ok() && report.deleted.contains(&id(&b)) {
            panic!("round {round}: promoted b and deleted it");
        }
        if promoted.is_ok() {
            // The promotion won: b serves and the janitor left it alone.
            assert_eq!(active, id(&b), "round {round}");
        } else {
            // The janitor won: b is gone (or revoked on its way out).
            assert!(
                report.deleted.contains(&id(&b)),
                "round {round}: {}",
                report.human()
            );
        }
        outcomes.push(promoted.is_ok());
        // Clean up for the next round.
        for d in snap.deployments.keys() {
            if Some(d) != snap.active.as_ref() {
                let _ = s.delete_unless_active(d).await;
            }
        }
    }
    eprintln!(
        "promotion won {} of {} rounds",
        outcomes.iter().filter(|w| **w).count(),
        outcomes.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_reload_endpoint_does_not_stop_the_delete() {
    let redis = RedisServer::start();
    let s = store(&redis);
    // Port 9 (discard) has nothing listening: the reload call fails fast.
    active_at(&s, "v1", "http://127.0.0.1:9", 4.0 * HOUR).await;
    active_at(&s, "v2", "http://127.0.0.1:9", 3.0 * HOUR).await;
    let report = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![id("v1")]);
    let json = serde_json::to_value(&report).unwrap();
    let outcome = &json["outcomes"][0];
    assert_eq!(outcome["backend"]["ok"], false, "{outcome}");
}

/// A backend that answers 404 to everything: an app without Pulse's
/// reload endpoint.
async fn no_reload_endpoint() -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = conn.read(&mut buf).await;
                let _ = conn
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_without_the_reload_endpoint_is_not_implemented_not_a_failure() {
    let redis = RedisServer::start();
    let s = store(&redis);
    let url = no_reload_endpoint().await;
    active_at(&s, "v1", &url, 4.0 * HOUR).await;
    active_at(&s, "v2", &url, 3.0 * HOUR).await;
    let report = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap();
    assert_eq!(report.deleted, vec![id("v1")]);
    let json = serde_json::to_value(&report).unwrap();
    let detail = json["outcomes"][0]["backend"]["detail"]
        .as_str()
        .unwrap_or_default();
    assert!(detail.starts_with("not implemented"), "{json}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_is_an_error_and_deletes_nothing() {
    let mut redis = RedisServer::start();
    let s = store(&redis);
    // v1 served until three hours ago, when v2 replaced it.
    active_at(&s, "v1", "http://127.0.0.1:9", 4.0 * HOUR).await;
    active_at(&s, "v2", "http://127.0.0.1:9", 3.0 * HOUR).await;
    redis.stop();
    let err = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("store"), "{err}");
}

/// Deletion on Railway removes the service; a Railway failure keeps the
/// record (revoked) and the next run finishes the job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn railway_services_are_deleted_and_failures_retried_next_run() {
    use switchyard_railway::RailwayPlatform;
    use switchyard_railway::{Auth, Client, ClientSettings};
    use switchyard_testkit::{FakeRailway, railway::Failure};

    let fake = FakeRailway::start().await;
    let (project, env) = {
        let st = fake.state();
        (st.project_id.clone(), st.environment_id.clone())
    };
    let old_id = fake.add_service("old");
    fake.add_service("live");
    let mut settings = ClientSettings::new(Auth::Project("proj-token".into()));
    settings.api = fake.api();
    settings.backoff = Duration::from_millis(5);
    let platform: SharedPlatform = Arc::new(RailwayPlatform::new(
        Client::new(settings).unwrap(),
        project,
        env,
    ));

    let redis = RedisServer::start();
    let s = store(&redis);
    let then = UnixTime(UnixTime::now().0 - 4.0 * HOUR);
    s.register(NewDeployment {
        id: id("old"),
        service_name: "old".into(),
        backend_url: "http://127.0.0.1:9".into(),
        service_id: Some(old_id.clone()),
        state_epoch: None,
        now: then,
    })
    .await
    .unwrap();
    s.promote(&id("old"), then).await.unwrap();
    active_at(&s, "live", "http://127.0.0.1:9", 3.0 * HOUR).await;

    fake.fail(
        "ServiceDelete",
        Failure::GraphQl("Problem processing request".into()),
        1,
    );
    let first = switchyard_janitor::run(&config(&redis), &s, &platform)
        .await
        .unwrap_err();
    assert!(
        first.to_string().contains("platform"),
        "every deletion failed: {first}"
    );
    assert_eq!(
        state_of(&s, "old").await,
        Some(DeploymentState::Revoked),
        "state kept for the next run"
    );
    assert!(fake.live_service("old").is_some());

    let second = switchyard_janitor::run(&config(&redis), &s, &platform)
        .await
        .unwrap();
    assert_eq!(second.force_deleted, vec![id("old")], "{}", second.human());
    assert!(
        fake.live_service("old").is_none(),
        "the Railway service is gone"
    );
    assert!(
        fake.live_service("live").is_some(),
        "the active deployment's service is untouched"
    );
    assert_eq!(state_of(&s, "old").await, None);
    let deletes = fake.sent("ServiceDelete");
    assert_eq!(deletes.last().unwrap().variables["id"], old_id.as_str());
    assert_eq!(
        deletes.last().unwrap().auth,
        switchyard_testkit::railway::SentAuth::Project("proj-token".into())
    );
}

/// Registers `name` drained `drained_ago` seconds ago, with HTTP activity
/// `seen_ago` seconds ago, by promoting it and then its successor.
async fn draining(s: &SharedStore, name: &str, url: &str, drained_ago: f64, seen_ago: Option<f64>) {
    let now = UnixTime::now().0;
    s.register(NewDeployment {
        id: id(name),
        service_name: name.into(),
        backend_url: url.into(),
        service_id: None,
        state_epoch: None,
        now: UnixTime(now - drained_ago - 60.0),
    })
    .await
    .unwrap();
    s.promote(&id(name), UnixTime(now - drained_ago - 30.0))
        .await
        .unwrap();
    let successor = format!("{name}-next");
    s.register(NewDeployment {
        id: id(&successor),
        service_name: successor.clone(),
        backend_url: "http://127.0.0.1:9".into(),
        service_id: None,
        state_epoch: None,
        now: UnixTime(now - drained_ago),
    })
    .await
    .unwrap();
    s.promote(&id(&successor), UnixTime(now - drained_ago))
        .await
        .unwrap();
    if let Some(ago) = seen_ago {
        s.heartbeat(&switchyard_store::Heartbeat {
            replica: "r-activity".into(),
            ttl: Duration::from_secs(60),
            leases: vec![],
            activity: vec![(id(name), UnixTime(now - ago))],
            stats: vec![],
            report: None,
            now: UnixTime::now(),
        })
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_cap_retires_the_oldest_and_keeps_the_newest() {
    let redis = RedisServer::start();
    let s = store(&redis);
    // A chain of releases one minute apart: old01 drained 12 minutes ago,
    // old12 one minute ago, live active since. All still see HTTP traffic,
    // so only the cap can retire them.
    let names: Vec<String> = (1..=12).map(|i| format!("old{i:02}")).collect();
    for (i, n) in names.iter().enumerate() {
        active_at(&s, n, "http://127.0.0.1:9", (13 - i) as f64 * 60.0).await;
    }
    active_at(&s, "live", "http://127.0.0.1:9", 60.0).await;
    s.heartbeat(&switchyard_store::Heartbeat {
        replica: "r-activity".into(),
        ttl: Duration::from_secs(60),
        leases: vec![(id("old01"), 4)],
        activity: names
            .iter()
            .map(|n| (id(n), UnixTime(UnixTime::now().0 - 5.0)))
            .collect(),
        stats: vec![],
        report: None,
        now: UnixTime::now(),
    })
    .await
    .unwrap();

    let mut c = config(&redis);
    c.policy.max_draining = Some(3);
    let mut dry = c.clone();
    dry.dry_run = true;
    let plan = switchyard_janitor::run(&dry, &s, &platform())
        .await
        .unwrap();
    assert!(plan.human().contains("the cap is 3"), "{}", plan.human());
    assert_eq!(
        s.snapshot()
            .await
            .unwrap()
            .in_state(DeploymentState::Draining)
            .count(),
        12,
        "a dry run changes nothing"
    );

    let report = switchyard_janitor::run(&c, &s, &platform()).await.unwrap();
    let retired: Vec<DeploymentId> = names[..9].iter().map(|n| id(n)).collect();
    assert_eq!(
        report.force_deleted,
        retired,
        "the nine oldest, even old01 with open websockets\n{}",
        report.human()
    );
    let snap = s.snapshot().await.unwrap();
    let mut left: Vec<&str> = snap
        .in_state(DeploymentState::Draining)
        .map(|d| d.deployment_id.as_str())
        .collect();
    left.sort();
    assert_eq!(left, vec!["old10", "old11", "old12"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backend_sessions_keep_a_deployment_and_a_backend_without_them_is_judged_by_leases() {
    let redis = RedisServer::start();
    let s = store(&redis);
    let with = Backend::start("with").await;
    with.state
        .sessions
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let without = Backend::start("without").await; // answers 404
    // Both drained 15 minutes ago, no websockets, no HTTP since: idle by leases and activity.
    draining(&s, "with", &with.url(), 900.0, None).await;
    draining(&s, "without", &without.url(), 900.0, None).await;

    let report = switchyard_janitor::run(&config(&redis), &s, &platform())
        .await
        .unwrap();
    assert!(
        report.deleted.contains(&id("without")),
        "{}",
        report.human()
    );
    assert!(
        report
            .kept
            .iter()
            .any(|k| k.deployment_id == id("with") && k.reason.contains("2 backend sessions")),
        "{}",
        report.human()
    );
    let json = serde_json::to_value(&report).unwrap();
    let decision = |name: &str| {
        json["decisions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["deployment_id"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(decision("with")["signals"]["sessions"], 2);
    assert_eq!(decision("with")["signals"]["session_probe"], "reported");
    assert_eq!(
        decision("without")["signals"]["session_probe"],
        "not_implemented"
    );
    assert_eq!(decision("without")["signals"]["leases"], 0);
    // The token went along.
    assert_eq!(state_of(&s, "with").await, Some(DeploymentState::Draining));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_probe_does_not_stall_the_run() {
    let redis = RedisServer::start();
    let s = store(&redis);
    let slow = Backend::start("slow").await;
    slow.state
        .sessions
        .store(5, std::sync::atomic::Ordering::SeqCst);
    slow.state
        .sessions_delay_ms
        .store(30_000, std::sync::atomic::Ordering::SeqCst);
    let quick = Backend::start("quick").await;
    draining(&s, "slow", &slow.url(), 900.0, None).await;
    draining(&s, "quick", &quick.url(), 900.0, None).await;
    let mut c = config(&redis);
    c.probe_timeout = Duration::from_millis(300);
    let report = tokio::time::timeout(
        Duration::from_secs(15),
        switchyard_janitor::run(&c, &s, &platform()),
    )
    .await
    .expect("the run finishes long before the slow backend would answer")
    .unwrap();
    let json = serde_json::to_value(&report).unwrap();
    let slow_decision = json["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["deployment_id"] == "slow")
        .unwrap()
        .clone();
    assert!(
        slow_decision["signals"]["session_probe"]
            .as_str()
            .unwrap()
            .starts_with("failed: no answer within"),
        "{slow_decision}"
    );
    // Judged by leases and activity alone: idle, so deleted, like the quick one.
    assert!(
        report.deleted.contains(&id("slow")) && report.deleted.contains(&id("quick")),
        "{}",
        report.human()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_retention_floor_keeps_a_drained_deployment_then_lets_it_go() {
    let redis = RedisServer::start();
    let s = store(&redis);
    // Drained 30 minutes ago, idle since: the idle grace alone would delete it.
    active_at(&s, "old", "http://127.0.0.1:9", 2.0 * HOUR).await;
    active_at(&s, "live", "http://127.0.0.1:9", 0.5 * HOUR).await;
    let mut c = config(&redis);
    c.policy.retention_floor = Duration::from_secs(3600);
    let report = switchyard_janitor::run(&c, &s, &platform()).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");
    assert_eq!(state_of(&s, "old").await, Some(DeploymentState::Draining));
    // A floor it has outlived: retired by the ordinary idle rule.
    c.policy.retention_floor = Duration::from_secs(600);
    let report = switchyard_janitor::run(&c, &s, &platform()).await.unwrap();
    assert_eq!(report.deleted, vec![id("old")], "{report:?}");
    assert_eq!(state_of(&s, "old").await, None);
}
