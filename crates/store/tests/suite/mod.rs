//! The behaviour every store must have, written once and run against each
//! implementation by `memory.rs` and `redis.rs`.

#![allow(dead_code)]

use std::{collections::BTreeSet, sync::Arc, time::Duration};

use switchyard_core::{DeploymentId, DeploymentState, UnixTime};
use switchyard_store::{
    DeleteOutcome, Heartbeat, JOURNAL_LEN, JournalEntry, JournalKind, NewDeployment, ReloadNotice,
    RequestStats, RouterReport, SharedStore, StoreError, StoreEvent,
};
use switchyard_testkit::eventually;

pub fn id(s: &str) -> DeploymentId {
    DeploymentId::new(s).unwrap()
}

pub fn new(s: &str) -> NewDeployment {
    NewDeployment {
        id: id(s),
        service_name: format!("svc-{s}"),
        backend_url: format!("http://{s}.internal:8000"),
        service_id: None,
        state_epoch: None,
        now: UnixTime(1000.0),
    }
}

fn beat(replica: &str, leases: &[(&str, u64)], ttl: Duration) -> Heartbeat {
    Heartbeat {
        replica: replica.into(),
        ttl,
        leases: leases.iter().map(|(d, n)| (id(d), *n)).collect(),
        activity: vec![],
        stats: vec![],
        report: None,
        now: UnixTime::now(),
    }
}

/// Generates one `#[tokio::test]` per suite function for a store factory.
#[macro_export]
macro_rules! store_suite {
    ($make:expr) => {
        $crate::store_suite!(@tests $make;
            register_then_snapshot, duplicate_ids_and_services_are_refused,
            promote_drains_every_other, promote_unknown_or_revoked_fails, rollback_by_promoting_a_draining_one,
            delete_unless_active_never_deletes_the_active, concurrent_promotes_and_deletes_keep_one_active,
            leases_are_per_replica_and_replaced, replicas_report_themselves, leases_expire_when_heartbeats_stop, activity_keeps_the_latest,
            request_stats_sum_over_windows, lock_is_exclusive_and_released_only_by_holder,
            concurrent_lock_acquire_has_one_winner, lock_expires, subscribers_see_changes_and_reloads,
            rollout_rules, revoke_rules, meta_documents_round_trip,
            a_rollout_candidate_drains_when_another_is_promoted, restore_fills_only_an_empty_store,
            retire_below_epoch_is_one_step_and_spares_the_active,
            history_keeps_each_window_and_the_drain_curve, journal_is_newest_first_and_capped);
    };
    (@tests $make:expr; $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make;
                suite::$name(store).await;
            }
        )*
    };
}

pub async fn register_then_snapshot(store: SharedStore) {
    let empty = store.snapshot().await.unwrap();
    assert!(empty.deployments.is_empty());
    assert_eq!(empty.active, None);

    store.register(new("v1")).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    let d = snap.get("v1").expect("registered deployment in snapshot");
    assert_eq!(d.state, DeploymentState::Pending);
    assert_eq!(d.backend_url, "http://v1.internal:8000");
    assert_eq!(d.service_name, "svc-v1");
    assert_eq!(d.created_at, Some(UnixTime(1000.0)));
    assert_eq!(snap.active, None, "registering never activates");
    assert!(snap.version > empty.version);
}

pub async fn duplicate_ids_and_services_are_refused(store: SharedStore) {
    store.register(new("v1")).await.unwrap();
    let err = store.register(new("v1")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err}");

    let mut same_service = new("v2");
    same_service.service_name = "svc-v1".into();
    let err = store.register(same_service).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::ServiceTaken { owner, .. } if owner == "v1"),
        "{err}"
    );
    assert!(store.snapshot().await.unwrap().get("v2").is_none());
}

pub async fn promote_drains_every_other(store: SharedStore) {
    for d in ["v1", "v2", "v3"] {
        store.register(new(d)).await.unwrap();
    }
    let first = store.promote(&id("v1"), UnixTime(2000.0)).await.unwrap();
    assert_eq!(first.previous, None);
    let second = store.promote(&id("v2"), UnixTime(3000.0)).await.unwrap();
    assert_eq!(second.previous, Some(id("v1")));
    assert!(second.version > first.version);

    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.active, Some(id("v2")));
    assert_eq!(snap.version, second.version);
    let v1 = snap.get("v1").unwrap();
    assert_eq!(v1.state, DeploymentState::Draining);
    assert_eq!(v1.drain_started_at, Some(UnixTime(3000.0)));
    assert_eq!(snap.get("v2").unwrap().state, DeploymentState::Active);
    assert_eq!(snap.get("v2").unwrap().drain_started_at, None);
    // The pending v3 is a preview: promoting another leaves it pending.
    assert_eq!(snap.get("v3").unwrap().state, DeploymentState::Pending);
    assert_eq!(snap.get("v3").unwrap().drain_started_at, None);
    // Promoting again keeps the first drain time of those already draining.
    store.promote(&id("v2"), UnixTime(4000.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(
        snap.get("v1").unwrap().drain_started_at,
        Some(UnixTime(3000.0))
    );
}

pub async fn promote_unknown_or_revoked_fails(store: SharedStore) {
    let err = store
        .promote(&id("ghost"), UnixTime(1.0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    store.register(new("v1")).await.unwrap();
    store.register(new("v2")).await.unwrap();
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    store.revoke(&id("v2"), None, UnixTime(2.0)).await.unwrap();
    let err = store.promote(&id("v2"), UnixTime(3.0)).await.unwrap_err();
    assert!(matches!(err, StoreError::WrongState { .. }), "{err}");
    assert_eq!(store.snapshot().await.unwrap().active, Some(id("v1")));
}

pub async fn rollback_by_promoting_a_draining_one(store: SharedStore) {
    store.register(new("v1")).await.unwrap();
    store.register(new("v2")).await.unwrap();
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    store.promote(&id("v2"), UnixTime(2.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.rollback_target().unwrap().deployment_id, id("v1"));
    store.promote(&id("v1"), UnixTime(3.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.active, Some(id("v1")));
    assert_eq!(snap.get("v1").unwrap().drain_started_at, None);
    assert_eq!(snap.get("v2").unwrap().state, DeploymentState::Draining);
}

pub async fn delete_unless_active_never_deletes_the_active(store: SharedStore) {
    store.register(new("v1")).await.unwrap();
    store.register(new("v2")).await.unwrap();
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    store.promote(&id("v2"), UnixTime(2.0)).await.unwrap();

    assert_eq!(
        store.delete_unless_active(&id("v2")).await.unwrap(),
        DeleteOutcome::Active
    );
    assert_eq!(
        store.delete_unless_active(&id("v1")).await.unwrap(),
        DeleteOutcome::Deleted
    );
    assert_eq!(
        store.delete_unless_active(&id("v1")).await.unwrap(),
        DeleteOutcome::Missing
    );
    let snap = store.snapshot().await.unwrap();
    assert!(snap.get("v1").is_none());
    assert_eq!(snap.active, Some(id("v2")));
    // The service name is free again.
    store.register(new("v1")).await.unwrap();
}

/// Many tasks promote and delete at random at once. Whatever the
/// interleaving, exactly one deployment is active and it still exists.
pub async fn concurrent_promotes_and_deletes_keep_one_active(store: SharedStore) {
    let ids: Vec<String> = (0..8).map(|i| format!("d{i}")).collect();
    for d in &ids {
        store.register(new(d)).await.unwrap();
    }
    store.promote(&id("d0"), UnixTime(1.0)).await.unwrap();
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for t in 0..16usize {
        let store = store.clone();
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            for round in 0..25usize {
                let d = id(&ids[(t * 7 + round * 3) % ids.len()]);
                if (t + round) % 2 == 0 {
                    // Fails harmlessly when a racer deleted it first.
                    let _ = store.promote(&d, UnixTime(round as f64)).await;
                } else {
                    let outcome = store.delete_unless_active(&d).await.unwrap();
                    if outcome == DeleteOutcome::Deleted {
                        let snap = store.snapshot().await.unwrap();
                        assert_ne!(snap.active.as_ref(), Some(&d), "deleted the active one");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let snap = store.snapshot().await.unwrap();
    let active = snap.active.clone().expect("an active deployment remains");
    let record = snap
        .get(active.as_str())
        .expect("the active deployment exists");
    assert_eq!(record.state, DeploymentState::Active);
    let actives: Vec<_> = snap.in_state(DeploymentState::Active).collect();
    assert_eq!(actives.len(), 1, "exactly one active: {actives:?}");
}

pub async fn leases_are_per_replica_and_replaced(store: SharedStore) {
    let ttl = Duration::from_secs(30);
    store
        .heartbeat(&beat("r1", &[("v1", 3), ("v2", 1)], ttl))
        .await
        .unwrap();
    store
        .heartbeat(&beat("r2", &[("v1", 2)], ttl))
        .await
        .unwrap();
    let leases = store.live_leases().await.unwrap();
    assert_eq!(leases.get(&id("v1")), Some(&5));
    assert_eq!(leases.get(&id("v2")), Some(&1));

    // A beat states the replica's whole count: it replaces, never adds.
    store
        .heartbeat(&beat("r1", &[("v1", 1)], ttl))
        .await
        .unwrap();
    let leases = store.live_leases().await.unwrap();
    assert_eq!(leases.get(&id("v1")), Some(&3));
    assert_eq!(leases.get(&id("v2")), None);

    store.remove_replica("r2").await.unwrap();
    assert_eq!(store.live_leases().await.unwrap().get(&id("v1")), Some(&1));
}

pub async fn replicas_report_themselves(store: SharedStore) {
    let report = RouterReport {
        snapshot_version: Some(7),
        deployments: 2,
        store_diverged: true,
        pins: switchyard_core::pin::PinPolicy {
            strict: true,
            ttl_secs: 600,
            max_pin_age_secs: None,
        },
        private_listener: Some("127.0.0.1:9091".into()),
    };
    let mut with_report = beat("r1", &[("v1", 2)], Duration::from_secs(30));
    with_report.report = Some(report.clone());
    store.heartbeat(&with_report).await.unwrap();
    store
        .heartbeat(&beat("r2", &[], Duration::from_secs(30)))
        .await
        .unwrap();
    let mut replicas = store.replicas().await.unwrap();
    replicas.sort_by(|a, b| a.replica.cmp(&b.replica));
    assert_eq!(replicas.len(), 2);
    assert_eq!(replicas[0].replica, "r1");
    assert_eq!(replicas[0].report.as_ref(), Some(&report));
    assert_eq!(replicas[0].leases, vec![(id("v1"), 2)]);
    assert!(replicas[0].seen.0 > 0.0);
    assert_eq!(replicas[1].report, None);
    // A beat without a report keeps nothing of an earlier one: the hash is
    // replaced whole, like the leases.
    store
        .heartbeat(&beat("r1", &[], Duration::from_secs(30)))
        .await
        .unwrap();
    let r1 = store.replicas().await.unwrap();
    let r1 = r1.iter().find(|r| r.replica == "r1").unwrap();
    assert_eq!(r1.report, None);
    assert!(r1.leases.is_empty());
}

pub async fn leases_expire_when_heartbeats_stop(store: SharedStore) {
    store
        .heartbeat(&beat("crashy", &[("v1", 4)], Duration::from_millis(300)))
        .await
        .unwrap();
    store
        .heartbeat(&beat("steady", &[("v1", 1)], Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(store.live_leases().await.unwrap().get(&id("v1")), Some(&5));
    eventually(Duration::from_secs(5), "crashed replica's leases to expire", || {
        let store = store.clone();
        async move { (store.live_leases().await.ok()?.get(&id("v1")) == Some(&1)).then_some(()) }
    })
    .await;
}

pub async fn activity_keeps_the_latest(store: SharedStore) {
    store.register(new("v1")).await.unwrap();
    let mut b = beat("r1", &[], Duration::from_secs(30));
    b.activity = vec![(id("v1"), UnixTime(500.0)), (id("gone"), UnixTime(9.0))];
    store.heartbeat(&b).await.unwrap();
    b.activity = vec![(id("v1"), UnixTime(400.0))];
    store.heartbeat(&b).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.get("v1").unwrap().last_seen_at, Some(UnixTime(500.0)));
    assert!(
        snap.get("gone").is_none(),
        "activity never recreates a deleted deployment"
    );
}

pub async fn request_stats_sum_over_windows(store: SharedStore) {
    store.register(new("v1")).await.unwrap();
    let now = UnixTime::now();
    let mut b = beat("r1", &[], Duration::from_secs(30));
    b.now = now;
    let s = RequestStats {
        requests: 10,
        errors_5xx: 2,
        latency_ms_sum: 50,
    };
    b.stats = vec![(id("v1"), s)];
    store.heartbeat(&b).await.unwrap();
    b.replica = "r2".into();
    store.heartbeat(&b).await.unwrap();
    let stats = store.request_stats(now, 5).await.unwrap();
    let v1 = stats.get(&id("v1")).copied().unwrap_or_default();
    assert_eq!(
        v1,
        RequestStats {
            requests: 20,
            errors_5xx: 4,
            latency_ms_sum: 100
        }
    );
    assert!((v1.error_ratio() - 0.2).abs() < 1e-9);
    // Windows in the future of `now` are not counted.
    let later = store
        .request_stats(now.plus(Duration::from_secs(3600)), 5)
        .await
        .unwrap();
    assert!(!later.contains_key(&id("v1")));
}

pub async fn lock_is_exclusive_and_released_only_by_holder(store: SharedStore) {
    let ttl = Duration::from_secs(30);
    let token = store
        .acquire_lock("janitor", ttl)
        .await
        .unwrap()
        .expect("free lock");
    assert!(store.acquire_lock("janitor", ttl).await.unwrap().is_none());
    assert!(
        store.acquire_lock("other", ttl).await.unwrap().is_some(),
        "locks are independent"
    );

    let mut forged = token.clone();
    forged.token = "not-the-holder".into();
    assert!(!store.release_lock(&forged).await.unwrap());
    assert!(store.acquire_lock("janitor", ttl).await.unwrap().is_none());

    assert!(store.release_lock(&token).await.unwrap());
    assert!(
        !store.release_lock(&token).await.unwrap(),
        "released only once"
    );
    assert!(store.acquire_lock("janitor", ttl).await.unwrap().is_some());
}

pub async fn concurrent_lock_acquire_has_one_winner(store: SharedStore) {
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .acquire_lock("janitor", Duration::from_secs(30))
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += usize::from(t.await.unwrap().is_some());
    }
    assert_eq!(winners, 1);
}

pub async fn lock_expires(store: SharedStore) {
    let stale = store
        .acquire_lock("janitor", Duration::from_millis(200))
        .await
        .unwrap()
        .unwrap();
    let fresh = eventually(Duration::from_secs(5), "expired lock to be free", || {
        let store = store.clone();
        async move {
            store
                .acquire_lock("janitor", Duration::from_secs(30))
                .await
                .ok()?
        }
    })
    .await;
    assert!(
        !store.release_lock(&stale).await.unwrap(),
        "an expired holder cannot release"
    );
    assert!(store.release_lock(&fresh).await.unwrap());
}

async fn next(sub: &mut switchyard_store::Subscription) -> StoreEvent {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("event within 5s")
        .expect("subscription open")
}

pub async fn subscribers_see_changes_and_reloads(store: SharedStore) {
    let mut sub = store.subscribe().await.unwrap();
    assert_eq!(
        next(&mut sub).await,
        StoreEvent::Resync,
        "a subscription starts with a resync"
    );
    store.register(new("v1")).await.unwrap();
    let promotion = store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    let mut versions = BTreeSet::new();
    while !versions.contains(&promotion.version) {
        match next(&mut sub).await {
            StoreEvent::Changed { version } => versions.insert(version),
            other => panic!("unexpected {other:?}"),
        };
    }
    let notice = ReloadNotice {
        deployment_id: id("v1"),
        reason: "deployment retired".into(),
        window_ms: 0,
    };
    store.publish_reload(&notice).await.unwrap();
    assert_eq!(next(&mut sub).await, StoreEvent::Reload(notice));
}

pub async fn rollout_rules(store: SharedStore) {
    for d in ["v1", "v2"] {
        store.register(new(d)).await.unwrap();
    }
    let err = store.set_rollout(Some((&id("v2"), 10))).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "no active to split with: {err}"
    );
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    store.register(new("v3")).await.unwrap();

    for bad in [0, 100] {
        assert!(
            store.set_rollout(Some((&id("v3"), bad))).await.is_err(),
            "{bad}%"
        );
    }
    let err = store.set_rollout(Some((&id("v1"), 10))).await.unwrap_err();
    assert!(
        matches!(err, StoreError::WrongState { .. }),
        "the active cannot be a candidate: {err}"
    );

    store.set_rollout(Some((&id("v3"), 25))).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    let rollout = snap.rollout.clone().expect("rollout set");
    assert_eq!(
        (rollout.deployment_id.as_str(), rollout.percent),
        ("v3", 25)
    );
    assert_eq!(snap.get("v3").unwrap().state, DeploymentState::Pending);

    store.set_rollout(None).await.unwrap();
    assert_eq!(store.snapshot().await.unwrap().rollout, None);

    store.set_rollout(Some((&id("v3"), 50))).await.unwrap();
    store.promote(&id("v3"), UnixTime(2.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.rollout, None, "completing the rollout ends it");
    assert_eq!(snap.active, Some(id("v3")));
}

pub async fn revoke_rules(store: SharedStore) {
    for d in ["v1", "v2", "v3"] {
        store.register(new(d)).await.unwrap();
    }
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    let err = store
        .revoke(&id("v1"), None, UnixTime(2.0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongState { .. }), "{err}");
    let err = store
        .revoke(&id("v1"), Some(&id("ghost")), UnixTime(2.0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
    assert_eq!(
        store.snapshot().await.unwrap().active,
        Some(id("v1")),
        "failed revoke changes nothing"
    );

    store
        .revoke(&id("v1"), Some(&id("v2")), UnixTime(3.0))
        .await
        .unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.active, Some(id("v2")));
    assert_eq!(snap.get("v1").unwrap().state, DeploymentState::Revoked);
    assert_eq!(snap.get("v1").unwrap().revoked_at, Some(UnixTime(3.0)));

    // Revoking a rollout candidate ends the rollout.
    store.register(new("v4")).await.unwrap();
    store.set_rollout(Some((&id("v4"), 10))).await.unwrap();
    store.revoke(&id("v4"), None, UnixTime(4.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.rollout, None);
    assert_eq!(snap.get("v4").unwrap().state, DeploymentState::Revoked);
    let err = store
        .revoke(&id("missing"), None, UnixTime(5.0))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err}");
}

pub async fn meta_documents_round_trip(store: SharedStore) {
    assert_eq!(store.get_meta("janitor-policy").await.unwrap(), None);
    store
        .put_meta("janitor-policy", "{\"max_draining\":3}")
        .await
        .unwrap();
    store
        .put_meta("janitor-policy", "{\"max_draining\":2}")
        .await
        .unwrap();
    assert_eq!(
        store.get_meta("janitor-policy").await.unwrap().as_deref(),
        Some("{\"max_draining\":2}")
    );
}

pub async fn a_rollout_candidate_drains_when_another_is_promoted(store: SharedStore) {
    for d in ["v1", "cand", "preview", "v2"] {
        store.register(new(d)).await.unwrap();
    }
    store.promote(&id("v1"), UnixTime(1.0)).await.unwrap();
    store.set_rollout(Some((&id("cand"), 10))).await.unwrap();
    store.promote(&id("v2"), UnixTime(2.0)).await.unwrap();
    let snap = store.snapshot().await.unwrap();
    // The candidate had a share of unpinned traffic; the preview had none.
    assert_eq!(snap.get("cand").unwrap().state, DeploymentState::Draining);
    assert_eq!(snap.get("v1").unwrap().state, DeploymentState::Draining);
    assert_eq!(snap.get("preview").unwrap().state, DeploymentState::Pending);
    assert_eq!(snap.active, Some(id("v2")));
}

pub async fn restore_fills_only_an_empty_store(store: SharedStore) {
    let mut held = store.snapshot().await.unwrap();
    // An empty store takes a snapshot, with a version past the held one.
    for d in ["v1", "v2"] {
        let mut rec = new(d).record();
        rec.state = if d == "v2" {
            DeploymentState::Active
        } else {
            DeploymentState::Draining
        };
        held.deployments.insert(id(d), rec);
    }
    held.active = Some(id("v2"));
    held.version = 41;
    let version = store.restore(&held).await.unwrap();
    assert!(version > 41, "{version}");
    let snap = store.snapshot().await.unwrap();
    assert_eq!(snap.active, Some(id("v2")));
    assert_eq!(snap.deployments.len(), 2);
    assert_eq!(snap.get("v1").unwrap().state, DeploymentState::Draining);
    // The restored records keep their service names taken.
    let err = store.register(new("v1")).await.unwrap_err();
    assert!(matches!(err, StoreError::AlreadyExists(_)), "{err}");
    // A store that has deployments is never overwritten.
    let err = store.restore(&held).await.unwrap_err();
    assert!(matches!(err, StoreError::NotEmpty(_)), "{err}");
    assert_eq!(store.snapshot().await.unwrap().version, version);
}

pub async fn retire_below_epoch_is_one_step_and_spares_the_active(store: SharedStore) {
    let with_epoch = |name: &str, epoch: Option<u64>| NewDeployment {
        state_epoch: epoch,
        ..new(name)
    };
    store.register(with_epoch("old", None)).await.unwrap();
    store.register(with_epoch("e1", Some(1))).await.unwrap();
    store.register(with_epoch("e2", Some(2))).await.unwrap();
    store
        .register(with_epoch("preview1", Some(1)))
        .await
        .unwrap();
    store.promote(&id("old"), UnixTime(1.0)).await.unwrap();
    store.promote(&id("e1"), UnixTime(2.0)).await.unwrap();
    // The active (e1) is below 2: refused, nothing changes.
    let before = store.snapshot().await.unwrap();
    let err = store
        .retire_below_epoch(2, UnixTime(3.0))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("e1"), "{err}");
    assert_eq!(store.snapshot().await.unwrap(), before);
    store.promote(&id("e2"), UnixTime(4.0)).await.unwrap();
    let mut revoked = store.retire_below_epoch(2, UnixTime(5.0)).await.unwrap();
    revoked.sort();
    assert_eq!(revoked, vec![id("e1"), id("old"), id("preview1")]);
    let snap = store.snapshot().await.unwrap();
    for gone in ["old", "e1", "preview1"] {
        assert_eq!(
            snap.get(gone).unwrap().state,
            DeploymentState::Revoked,
            "{gone}"
        );
    }
    assert_eq!(snap.active, Some(id("e2")));
    assert_eq!(snap.get("e2").unwrap().state_epoch, Some(2));
    // Nothing left below: a no-op that bumps nothing.
    assert!(
        store
            .retire_below_epoch(2, UnixTime(6.0))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(store.snapshot().await.unwrap().version, snap.version);
}

pub async fn history_keeps_each_window_and_the_drain_curve(store: SharedStore) {
    store.register(new("v1")).await.unwrap();
    let start = UnixTime::now();
    let stats = |requests, errors_5xx| RequestStats {
        requests,
        errors_5xx,
        latency_ms_sum: 0,
    };
    // Window 1: two replicas, 3 + 4 sockets, 10 requests with 1 error.
    let mut b = beat("r1", &[("v1", 3)], Duration::from_secs(300));
    b.now = start;
    b.stats = vec![(id("v1"), stats(6, 1))];
    store.heartbeat(&b).await.unwrap();
    let mut b2 = beat("r2", &[("v1", 4)], Duration::from_secs(300));
    b2.now = start;
    b2.stats = vec![(id("v1"), stats(4, 0))];
    store.heartbeat(&b2).await.unwrap();
    // Two windows later r1's sockets have all closed: it reports none, and
    // the window says 0 for it rather than keeping 3.
    let later = start.plus(Duration::from_secs(2 * switchyard_store::STATS_WINDOW_SECS));
    let mut b3 = beat("r1", &[], Duration::from_secs(300));
    b3.now = later;
    b3.stats = vec![(id("v1"), stats(2, 2))];
    store.heartbeat(&b3).await.unwrap();

    let history = store.history(later, 60).await.unwrap();
    let points = history.get(&id("v1")).expect("v1 has history");
    assert_eq!(points.len(), 2, "{points:?}");
    assert!(points[0].window < points[1].window, "oldest first");
    assert_eq!(points[0].requests.requests, 10);
    assert_eq!(points[0].requests.errors_5xx, 1);
    assert_eq!(points[0].websockets, 7);
    assert_eq!(points[1].requests.requests, 2);
    assert_eq!(points[1].websockets, 0, "r1's closed sockets are 0");
    // A shorter look back leaves the first window out.
    let recent = store.history(later, 1).await.unwrap();
    assert_eq!(recent.get(&id("v1")).map(Vec::len), Some(1));
}

pub async fn journal_is_newest_first_and_capped(store: SharedStore) {
    assert!(store.journal(10).await.unwrap().is_empty());
    for n in 0..JOURNAL_LEN + 5 {
        let entry = JournalEntry::new("cli", JournalKind::Promoted)
            .deployment(&id("v1"))
            .detail(format!("entry {n}"));
        store.append_journal(&entry).await.unwrap();
    }
    let newest = store.journal(3).await.unwrap();
    assert_eq!(newest.len(), 3);
    assert_eq!(newest[0].detail, format!("entry {}", JOURNAL_LEN + 4));
    assert_eq!(newest[0].kind, JournalKind::Promoted);
    assert_eq!(newest[0].deployment_id, Some(id("v1")));
    assert_eq!(newest[0].actor, "cli");
    let all = store.journal(usize::MAX).await.unwrap();
    assert_eq!(all.len(), JOURNAL_LEN, "older entries fall off");
    assert_eq!(all[JOURNAL_LEN - 1].detail, "entry 5");
}
