//! Every cleanup decision, as a pure function of the snapshot, the live
//! leases and the clock, so the rules can be tested as a table.
//!
//! For each draining (or revoked) deployment, oldest drain first, the first
//! rule that applies decides:
//! - revoked: delete, whatever its leases (it must not serve again);
//! - draining for less than the retention floor: keep, whatever its leases
//!   say (a CDN may still hold documents that load its assets);
//! - draining longer than the max drain age: delete (forced);
//! - beyond the retention cap (`max_draining`): delete the oldest extras;
//! - no live leases and no HTTP activity for the idle grace: delete;
//! - leases still open past the reload deadline: reload (its sockets close
//!   with 1012 and it is revoked, so clients reconnect to the active
//!   deployment; the next run deletes it);
//! - otherwise keep, saying why.
//!
//! The active deployment is never touched. A pending deployment is a
//! preview (or a rollout candidate, which is never touched either): it has
//! its own rule, not the idle rule of draining ones, since nobody may have
//! opened it yet:
//! - a preview registered longer ago than the preview max age: delete.

use std::{collections::BTreeMap, time::Duration};

use crate::probe::SessionProbe;
use serde::Serialize;
use switchyard_core::{
    Deployment, DeploymentId, DeploymentState, Snapshot, UnixTime, time::human_duration,
};

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Policy {
    #[serde(with = "secs")]
    pub idle_grace: Duration,
    #[serde(with = "secs")]
    pub reload_after: Duration,
    #[serde(with = "secs")]
    pub max_drain_age: Duration,
    /// Keep at most this many draining deployments; `None` for no cap.
    pub max_draining: Option<usize>,
    /// Keep every draining deployment at least this long, whatever its
    /// leases say: at least the max-age documents are cached for.
    #[serde(default, with = "secs")]
    pub retention_floor: Duration,
    /// Delete previews registered longer ago than this; `None` keeps them
    /// until someone deletes or promotes them.
    #[serde(default = "default_preview_max_age", with = "opt_secs")]
    pub preview_max_age: Option<Duration>,
}

fn default_preview_max_age() -> Option<Duration> {
    Some(Duration::from_secs(7 * 86_400))
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            idle_grace: Duration::from_secs(600),
            reload_after: Duration::from_secs(1800),
            max_drain_age: Duration::from_secs(86_400),
            max_draining: None,
            retention_floor: Duration::ZERO,
            preview_max_age: default_preview_max_age(),
        }
    }
}

/// Durations as whole seconds in JSON.
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_secs)
    }
}

/// Optional durations as whole seconds (or null) in JSON.
mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_secs))
    }
}

/// What a decision was based on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Signals {
    /// Open WebSockets over all router replicas.
    pub leases: u64,
    /// Seconds since the last HTTP activity (or the drain start).
    pub idle_secs: u64,
    /// The backend's own count, when it reported one.
    pub sessions: Option<u64>,
    /// `reported`, `not_implemented`, `failed: …` or `not_probed`.
    pub session_probe: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeleteReason {
    Idle,
    MaxDrainAge,
    RetentionCap,
    Revoked,
    PreviewAge,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Keep {
        deployment_id: DeploymentId,
        reason: String,
        signals: Signals,
    },
    Reload {
        deployment_id: DeploymentId,
        reason: String,
        leases: u64,
        signals: Signals,
    },
    Delete {
        deployment_id: DeploymentId,
        why: DeleteReason,
        reason: String,
        leases: u64,
        signals: Signals,
    },
}

impl Action {
    pub fn deployment_id(&self) -> &DeploymentId {
        match self {
            Self::Keep { deployment_id, .. }
            | Self::Reload { deployment_id, .. }
            | Self::Delete { deployment_id, .. } => deployment_id,
        }
    }
}

/// When the deployment started draining; records without a stamp count as
/// draining since they were created, or since now when that is unknown too.
fn drain_start(d: &Deployment, now: UnixTime) -> UnixTime {
    d.drain_started_at
        .or(d.revoked_at)
        .or(d.created_at)
        .unwrap_or(now)
}

pub fn plan(
    snap: &Snapshot,
    leases: &BTreeMap<DeploymentId, u64>,
    sessions: &BTreeMap<DeploymentId, SessionProbe>,
    now: UnixTime,
    policy: &Policy,
) -> Vec<Action> {
    let mut candidates: Vec<&Deployment> = snap
        .deployments
        .values()
        .filter(|d| {
            matches!(
                d.state,
                DeploymentState::Draining | DeploymentState::Revoked
            )
        })
        .filter(|d| snap.active.as_ref() != Some(&d.deployment_id))
        .collect();
    candidates.sort_by(|a, b| drain_start(a, now).0.total_cmp(&drain_start(b, now).0));

    // The cap counts draining deployments that survive the other rules.
    let draining_total = candidates
        .iter()
        .filter(|d| d.state == DeploymentState::Draining)
        .count();
    let mut over_cap = policy
        .max_draining
        .map_or(0, |cap| draining_total.saturating_sub(cap));

    let previews = previews_due(snap, now, policy);
    candidates
        .into_iter()
        .map(|d| {
            let id = d.deployment_id.clone();
            let open = leases.get(&id).copied().unwrap_or(0);
            let start = drain_start(d, now);
            let age = now.since(start);
            let last_activity = match d.last_seen_at {
                Some(seen) if seen.0 > start.0 => seen,
                _ => start,
            };
            let idle = now.since(last_activity);
            let (held, probe) = match sessions.get(&id) {
                Some(SessionProbe::Reported { sessions }) => (Some(*sessions), "reported".to_string()),
                Some(SessionProbe::NotImplemented) => (None, "not_implemented".to_string()),
                Some(SessionProbe::Failed { reason }) => (None, format!("failed: {reason}")),
                None => (None, "not_probed".to_string()),
            };
            let signals = Signals { leases: open, idle_secs: idle.as_secs(), sessions: held, session_probe: probe };
            let backend_sessions = held.unwrap_or(0);
            let delete = |why, reason: String| Action::Delete {
                deployment_id: id.clone(),
                why,
                reason,
                leases: open,
                signals: signals.clone(),
            };
            if d.state == DeploymentState::Revoked {
                return delete(DeleteReason::Revoked, "revoked".into());
            }
            if age < policy.retention_floor {
                let left = policy.retention_floor.saturating_sub(age);
                return Action::Keep {
                    deployment_id: id.clone(),
                    reason: format!(
                        "inside the retention floor of {} for another {} (until {})",
                        human_duration(policy.retention_floor),
                        human_duration(left),
                        UnixTime(start.0 + policy.retention_floor.as_secs_f64()).rfc3339(),
                    ),
                    signals,
                };
            }
            if age >= policy.max_drain_age {
                over_cap = over_cap.saturating_sub(1);
                return delete(
                    DeleteReason::MaxDrainAge,
                    format!("draining for {}, past the max drain age of {}", human_duration(age), human_duration(policy.max_drain_age)),
                );
            }
            if over_cap > 0 {
                over_cap -= 1;
                return delete(
                    DeleteReason::RetentionCap,
                    format!("oldest of {draining_total} draining deployments; the cap is {}", policy.max_draining.unwrap_or_default()),
                );
            }
            if open == 0 && backend_sessions == 0 && idle >= policy.idle_grace {
                let reason = match held {
                    Some(_) => format!("no websockets, no backend sessions and no HTTP traffic for {}", human_duration(idle)),
                    None => format!("no websockets and no HTTP traffic for {}", human_duration(idle)),
                };
                return delete(DeleteReason::Idle, reason);
            }
            if (open > 0 || backend_sessions > 0) && age >= policy.reload_after {
                return Action::Reload {
                    deployment_id: id.clone(),
                    reason: format!(
                        "{open} websockets and {backend_sessions} backend sessions still open after {} draining",
                        human_duration(age)
                    ),
                    leases: open,
                    signals,
                };
            }
            let reason = if open > 0 || backend_sessions > 0 {
                format!(
                    "{open} websockets and {backend_sessions} backend sessions open; reload in {}",
                    human_duration(policy.reload_after.saturating_sub(age))
                )
            } else if d.last_seen_at.is_some_and(|seen| seen.0 > start.0) {
                format!("HTTP traffic {} ago; idle grace is {}", human_duration(idle), human_duration(policy.idle_grace))
            } else {
                format!("no HTTP traffic since draining began {} ago; idle grace is {}", human_duration(idle), human_duration(policy.idle_grace))
            };
            Action::Keep { deployment_id: id, reason, signals }
        })
        .chain(previews)
        .collect()
}

/// Previews past the preview max age. A rollout candidate is pending too,
/// but it serves a share of unpinned traffic, so it is never one of them.
fn previews_due(snap: &Snapshot, now: UnixTime, policy: &Policy) -> Vec<Action> {
    let Some(max_age) = policy.preview_max_age else {
        return Vec::new();
    };
    let candidate = snap.rollout.as_ref().map(|r| &r.deployment_id);
    snap.deployments
        .values()
        .filter(|d| d.state == DeploymentState::Pending && Some(&d.deployment_id) != candidate)
        .filter_map(|d| {
            let age = now.since(d.created_at?);
            (age >= max_age).then(|| Action::Delete {
                deployment_id: d.deployment_id.clone(),
                why: DeleteReason::PreviewAge,
                reason: format!(
                    "preview registered {} ago, past the preview max age of {}",
                    human_duration(age),
                    human_duration(max_age)
                ),
                leases: 0,
                signals: Signals {
                    leases: 0,
                    idle_secs: 0,
                    sessions: None,
                    session_probe: "not_probed".into(),
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: f64 = 1_000_000.0;

    fn dep(
        id: &str,
        state: DeploymentState,
        drained_ago: f64,
        seen_ago: Option<f64>,
    ) -> Deployment {
        Deployment {
            deployment_id: DeploymentId::new(id).unwrap(),
            state,
            service_name: id.into(),
            backend_url: format!("http://{id}:8000"),
            created_at: Some(UnixTime(0.0)),
            last_seen_at: seen_ago.map(|s| UnixTime(NOW - s)),
            drain_started_at: (state != DeploymentState::Active)
                .then_some(UnixTime(NOW - drained_ago)),
            revoked_at: None,
            service_id: None,
            state_epoch: None,
        }
    }

    fn snapshot(deps: Vec<Deployment>, active: &str) -> Snapshot {
        let mut s = Snapshot {
            active: Some(DeploymentId::new(active).unwrap()),
            ..Default::default()
        };
        for d in deps {
            s.deployments.insert(d.deployment_id.clone(), d);
        }
        s
    }

    fn leases(pairs: &[(&str, u64)]) -> BTreeMap<DeploymentId, u64> {
        pairs
            .iter()
            .map(|(id, n)| (DeploymentId::new(id).unwrap(), *n))
            .collect()
    }

    fn verdicts(actions: &[Action]) -> Vec<(String, &'static str)> {
        actions
            .iter()
            .map(|a| {
                let kind = match a {
                    Action::Keep { .. } => "keep",
                    Action::Reload { .. } => "reload",
                    Action::Delete {
                        why: DeleteReason::Idle,
                        ..
                    } => "delete:idle",
                    Action::Delete {
                        why: DeleteReason::MaxDrainAge,
                        ..
                    } => "delete:max-age",
                    Action::Delete {
                        why: DeleteReason::RetentionCap,
                        ..
                    } => "delete:cap",
                    Action::Delete {
                        why: DeleteReason::Revoked,
                        ..
                    } => "delete:revoked",
                    Action::Delete {
                        why: DeleteReason::PreviewAge,
                        ..
                    } => "delete:preview-age",
                };
                (a.deployment_id().to_string(), kind)
            })
            .collect()
    }

    #[test]
    fn previews_have_their_own_age_rule_never_the_idle_one() {
        use DeploymentState::*;
        let day = 86_400.0;
        let preview = |id: &str, registered_ago: f64| {
            let mut d = dep(id, Pending, 0.0, None);
            d.created_at = Some(UnixTime(NOW - registered_ago));
            d.drain_started_at = None;
            d
        };
        let mut snap = snapshot(
            vec![
                dep("live", Active, 0.0, Some(1.0)),
                // Idle for days, never opened: the idle rule would take it.
                preview("fresh", 2.0 * day),
                preview("stale", 8.0 * day),
                preview("cand", 30.0 * day),
            ],
            "live",
        );
        snap.rollout = Some(switchyard_core::Rollout {
            deployment_id: DeploymentId::new("cand").unwrap(),
            percent: 10,
        });
        let now = UnixTime(NOW);
        let actions = plan(
            &snap,
            &leases(&[]),
            &BTreeMap::new(),
            now,
            &Policy::default(),
        );
        assert_eq!(
            verdicts(&actions),
            vec![("stale".to_string(), "delete:preview-age")]
        );
        let off = Policy {
            preview_max_age: None,
            ..Policy::default()
        };
        assert!(plan(&snap, &leases(&[]), &BTreeMap::new(), now, &off).is_empty());
    }

    #[test]
    fn the_retention_floor_keeps_a_young_drain_whatever_its_leases_say() {
        use DeploymentState::*;
        let policy = Policy {
            retention_floor: Duration::from_secs(3600),
            idle_grace: Duration::from_secs(60),
            reload_after: Duration::from_secs(600),
            ..Policy::default()
        };
        let snap = snapshot(
            vec![
                dep("live", Active, 0.0, Some(1.0)),
                // Idle for 30 minutes with sockets past the reload deadline:
                // both rules would act, the floor comes first.
                dep("young", Draining, 1800.0, None),
                dep("old", Draining, 7200.0, None),
            ],
            "live",
        );
        let now = UnixTime(NOW);
        let actions = plan(
            &snap,
            &leases(&[("young", 3)]),
            &BTreeMap::new(),
            now,
            &policy,
        );
        let got = verdicts(&actions);
        assert!(got.contains(&("young".to_string(), "keep")), "{got:?}");
        assert!(got.contains(&("old".to_string(), "delete:idle")), "{got:?}");
        let Some(Action::Keep { reason, .. }) = actions
            .iter()
            .find(|a| a.deployment_id().as_str() == "young")
        else {
            panic!("{actions:?}")
        };
        assert!(
            reason.contains("retention floor") && reason.contains("for another 30m"),
            "{reason}"
        );
        // Past the floor, the ordinary rules apply: reload (it has sockets).
        let later = UnixTime(NOW + 1801.0);
        let actions = plan(
            &snap,
            &leases(&[("young", 3)]),
            &BTreeMap::new(),
            later,
            &policy,
        );
        assert!(verdicts(&actions).contains(&("young".to_string(), "reload")));
    }

    #[test]
    fn a_deployment_with_no_traffic_is_not_said_to_have_had_some() {
        use DeploymentState::*;
        let snap = snapshot(
            vec![
                dep("live", Active, 0.0, Some(1.0)),
                dep("quiet", Draining, 18.0, None),
            ],
            "live",
        );
        let actions = plan(
            &snap,
            &leases(&[]),
            &BTreeMap::new(),
            UnixTime(NOW),
            &Policy::default(),
        );
        let Action::Keep { reason, .. } = &actions[0] else {
            panic!("{actions:?}")
        };
        assert!(
            reason.starts_with("no HTTP traffic since draining began"),
            "{reason}"
        );
    }

    #[test]
    fn decision_table() {
        use DeploymentState::*;
        let policy = Policy::default();
        let reported = |n| Some(SessionProbe::Reported { sessions: n });
        // (deployment, drained seconds ago, last HTTP seconds ago, leases, session probe, expected)
        type Row = (
            &'static str,
            f64,
            Option<f64>,
            u64,
            Option<SessionProbe>,
            &'static str,
        );
        let rows: Vec<Row> = vec![
            ("fresh", 60.0, None, 0, None, "keep"), // inside the idle grace
            ("idle", 900.0, Some(700.0), 0, None, "delete:idle"), // quiet for 11+ minutes
            ("busy-http", 900.0, Some(30.0), 0, None, "keep"), // recent HTTP activity
            ("ws-young", 900.0, None, 3, None, "keep"), // sockets, before the reload deadline
            ("ws-old", 2000.0, None, 3, None, "reload"), // sockets, past the deadline
            (
                "ancient",
                90_000.0,
                Some(1.0),
                9,
                reported(4),
                "delete:max-age",
            ), // forced, whatever it holds
            ("sessions", 900.0, None, 0, reported(2), "keep"), // the backend still has sessions
            ("sessions-old", 2000.0, None, 0, reported(2), "reload"), // ...past the deadline
            (
                "no-endpoint",
                900.0,
                None,
                0,
                Some(SessionProbe::NotImplemented),
                "delete:idle",
            ),
            (
                "slow-probe",
                900.0,
                None,
                0,
                Some(SessionProbe::Failed {
                    reason: "timeout".into(),
                }),
                "delete:idle",
            ),
            ("zero-sessions", 900.0, None, 0, reported(0), "delete:idle"),
        ];
        let mut deps: Vec<Deployment> = rows
            .iter()
            .map(|(id, drained, seen, ..)| dep(id, Draining, *drained, *seen))
            .collect();
        deps.push(dep("live", Active, 0.0, Some(0.0)));
        // A preview registered a day ago: inside the preview max age.
        let mut preview = dep("preview", Pending, 99_999.0, None);
        preview.created_at = Some(UnixTime(NOW - 86_400.0));
        deps.push(preview);
        let l: Vec<(&str, u64)> = rows.iter().map(|(id, _, _, n, ..)| (*id, *n)).collect();
        let sessions: BTreeMap<DeploymentId, SessionProbe> = rows
            .iter()
            .filter_map(|(id, _, _, _, p, _)| Some((DeploymentId::new(id).unwrap(), p.clone()?)))
            .collect();
        let actions = plan(
            &snapshot(deps, "live"),
            &leases(&l),
            &sessions,
            UnixTime(NOW),
            &policy,
        );
        let got = verdicts(&actions);
        for (id, .., expected) in &rows {
            let found = got
                .iter()
                .find(|(g, _)| g == id)
                .unwrap_or_else(|| panic!("{id} not planned"));
            assert_eq!(found.1, *expected, "{id}");
        }
        assert!(
            !got.iter().any(|(id, _)| id == "live" || id == "preview"),
            "never the active, never a preview inside its max age"
        );
        // Oldest drain first.
        assert_eq!(got.first().unwrap().0, "ancient");
        // Each decision says which signals it used.
        let signals = |id: &str| match actions
            .iter()
            .find(|a| a.deployment_id().as_str() == id)
            .unwrap()
        {
            Action::Keep { signals, .. }
            | Action::Reload { signals, .. }
            | Action::Delete { signals, .. } => signals.clone(),
        };
        assert_eq!(signals("sessions").sessions, Some(2));
        assert_eq!(signals("no-endpoint").session_probe, "not_implemented");
        assert_eq!(signals("slow-probe").session_probe, "failed: timeout");
        assert_eq!(signals("idle").session_probe, "not_probed");
        assert_eq!(signals("ws-old").leases, 3);
    }

    #[test]
    fn revoked_is_deleted_whatever_its_leases() {
        let mut d = dep("bad", DeploymentState::Revoked, 1.0, Some(0.0));
        d.revoked_at = Some(UnixTime(NOW));
        let actions = plan(
            &snapshot(
                vec![d, dep("live", DeploymentState::Active, 0.0, None)],
                "live",
            ),
            &leases(&[("bad", 5)]),
            &BTreeMap::new(),
            UnixTime(NOW),
            &Policy::default(),
        );
        assert_eq!(
            verdicts(&actions),
            vec![("bad".to_string(), "delete:revoked")]
        );
    }

    #[test]
    fn retention_cap_retires_the_oldest_first() {
        let policy = Policy {
            max_draining: Some(2),
            ..Policy::default()
        };
        let deps = vec![
            dep("d1", DeploymentState::Draining, 500.0, Some(1.0)),
            dep("d2", DeploymentState::Draining, 400.0, Some(1.0)),
            dep("d3", DeploymentState::Draining, 300.0, Some(1.0)),
            dep("d4", DeploymentState::Draining, 200.0, Some(1.0)),
            dep("live", DeploymentState::Active, 0.0, None),
        ];
        let actions = plan(
            &snapshot(deps, "live"),
            &leases(&[("d1", 4)]),
            &BTreeMap::new(),
            UnixTime(NOW),
            &policy,
        );
        assert_eq!(
            verdicts(&actions),
            vec![
                ("d1".into(), "delete:cap"),
                ("d2".into(), "delete:cap"),
                ("d3".into(), "keep"),
                ("d4".into(), "keep"),
            ]
        );
    }

    #[test]
    fn a_record_claiming_active_state_but_not_the_active_id_is_left_alone() {
        // Only draining or revoked records are candidates at all.
        let deps = vec![
            dep("odd", DeploymentState::Active, 99_999.0, None),
            dep("live", DeploymentState::Active, 0.0, None),
        ];
        assert!(
            plan(
                &snapshot(deps, "live"),
                &BTreeMap::new(),
                &BTreeMap::new(),
                UnixTime(NOW),
                &Policy::default()
            )
            .is_empty()
        );
    }
}
