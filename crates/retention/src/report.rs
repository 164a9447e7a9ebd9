//! What a run did, for people (a short summary) and for machines (one JSON
//! object).

use std::fmt::Write;

use serde::Serialize;
use switchyard_core::DeploymentId;

use crate::plan::{Action, DeleteReason};

/// What the backend's own reload endpoint said.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BackendReload {
    pub ok: bool,
    pub reloaded_socket_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    Kept {
        deployment_id: DeploymentId,
        reason: String,
    },
    Reloaded {
        deployment_id: DeploymentId,
        reason: String,
        backend: Option<BackendReload>,
    },
    Deleted {
        deployment_id: DeploymentId,
        forced: bool,
        why: DeleteReason,
        reason: String,
        backend: Option<BackendReload>,
    },
    Failed {
        deployment_id: DeploymentId,
        step: Step,
        error: String,
    },
    /// Deleted by someone else between the snapshot and now.
    Gone { deployment_id: DeploymentId },
    /// A dry run's reload: nothing was sent.
    WouldReload {
        deployment_id: DeploymentId,
        reason: String,
    },
    /// A dry run's deletion: nothing was deleted.
    WouldDelete {
        deployment_id: DeploymentId,
        forced: bool,
        why: DeleteReason,
        reason: String,
    },
}

impl Outcome {
    /// What the journal records of this outcome: the changes the run made.
    pub fn journal_entry(&self) -> Option<switchyard_store::JournalEntry> {
        use switchyard_store::{JournalEntry, JournalKind};
        let (kind, id, detail) = match self {
            Self::Reloaded {
                deployment_id,
                reason,
                ..
            } => (JournalKind::Reloaded, deployment_id, reason.clone()),
            Self::Deleted {
                deployment_id,
                reason,
                ..
            } => (JournalKind::Deleted, deployment_id, reason.clone()),
            _ => return None,
        };
        Some(
            JournalEntry::new("janitor", kind)
                .deployment(id)
                .detail(detail),
        )
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KeptDeployment {
    pub deployment_id: DeploymentId,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Failure {
    pub deployment_id: DeploymentId,
    pub step: Step,
    pub error: String,
}

/// Which step of acting on a deployment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Telling the routers to reload its clients.
    Broadcast,
    /// A store write (revoke, forget).
    Store,
    /// Deleting its service on the platform.
    Platform,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    pub lock_acquired: bool,
    pub dry_run: bool,
    pub platform: String,
    pub active: Option<DeploymentId>,
    pub scanned: usize,
    pub reloaded: Vec<DeploymentId>,
    pub deleted: Vec<DeploymentId>,
    pub force_deleted: Vec<DeploymentId>,
    /// A dry run's plan, in the fields a real run would fill; empty in a
    /// real run, as `reloaded`/`deleted` are in a dry one.
    pub would_reload: Vec<DeploymentId>,
    pub would_delete: Vec<DeploymentId>,
    pub would_force_delete: Vec<DeploymentId>,
    pub kept: Vec<KeptDeployment>,
    pub errors: Vec<Failure>,
    /// The plan, with every decision and its reason.
    pub decisions: Vec<Action>,
    pub outcomes: Vec<Outcome>,
}

impl Report {
    /// A dry run's report: what the plan would do, in `would_*` fields and
    /// outcomes, so nothing in it claims a change that was not made.
    pub fn would(&mut self, actions: &[Action]) {
        let outcomes = actions
            .iter()
            .map(|a| match a {
                Action::Keep {
                    deployment_id,
                    reason,
                    ..
                } => Outcome::Kept {
                    deployment_id: deployment_id.clone(),
                    reason: reason.clone(),
                },
                Action::Reload {
                    deployment_id,
                    reason,
                    ..
                } => Outcome::WouldReload {
                    deployment_id: deployment_id.clone(),
                    reason: reason.clone(),
                },
                Action::Delete {
                    deployment_id,
                    why,
                    reason,
                    ..
                } => Outcome::WouldDelete {
                    deployment_id: deployment_id.clone(),
                    forced: *why != DeleteReason::Idle,
                    why: *why,
                    reason: reason.clone(),
                },
            })
            .collect();
        self.absorb(outcomes);
    }

    pub fn absorb(&mut self, outcomes: Vec<Outcome>) {
        for o in &outcomes {
            match o {
                Outcome::Kept {
                    deployment_id,
                    reason,
                } => self.kept.push(KeptDeployment {
                    deployment_id: deployment_id.clone(),
                    reason: reason.clone(),
                }),
                Outcome::Reloaded { deployment_id, .. } => {
                    self.reloaded.push(deployment_id.clone())
                }
                Outcome::Deleted {
                    deployment_id,
                    forced: false,
                    ..
                } => self.deleted.push(deployment_id.clone()),
                Outcome::Deleted {
                    deployment_id,
                    forced: true,
                    ..
                } => self.force_deleted.push(deployment_id.clone()),
                Outcome::Failed {
                    deployment_id,
                    step,
                    error,
                } => self.errors.push(Failure {
                    deployment_id: deployment_id.clone(),
                    step: *step,
                    error: error.clone(),
                }),
                Outcome::WouldReload { deployment_id, .. } => {
                    self.would_reload.push(deployment_id.clone())
                }
                Outcome::WouldDelete {
                    deployment_id,
                    forced,
                    ..
                } => if *forced {
                    &mut self.would_force_delete
                } else {
                    &mut self.would_delete
                }
                .push(deployment_id.clone()),
                Outcome::Gone { .. } => {}
            }
        }
        self.outcomes = outcomes;
        self.outcomes.sort_by(|a, b| id_of(a).cmp(id_of(b)));
        for list in [
            &mut self.reloaded,
            &mut self.deleted,
            &mut self.force_deleted,
            &mut self.would_reload,
            &mut self.would_delete,
            &mut self.would_force_delete,
        ] {
            list.sort();
        }
    }

    pub fn human(&self) -> String {
        let mut out = String::new();
        if !self.lock_acquired && !self.dry_run {
            out.push_str("another run holds the lock; nothing done\n");
            return out;
        }
        let what = if self.dry_run {
            "dry run, nothing changed"
        } else {
            "lock acquired"
        };
        let _ = writeln!(
            out,
            "janitor ({what}; platform {}): {} draining {} scanned",
            self.platform,
            self.scanned,
            if self.scanned == 1 {
                "deployment"
            } else {
                "deployments"
            }
        );
        if self.dry_run {
            for a in &self.decisions {
                let (verb, id, reason, signals) = match a {
                    Action::Keep {
                        deployment_id,
                        reason,
                        signals,
                    } => ("keep", deployment_id, reason, signals),
                    Action::Reload {
                        deployment_id,
                        reason,
                        signals,
                        ..
                    } => ("reload", deployment_id, reason, signals),
                    Action::Delete {
                        deployment_id,
                        reason,
                        signals,
                        ..
                    } => ("delete", deployment_id, reason, signals),
                };
                let sessions = signals.sessions.map_or_else(
                    || signals.session_probe.clone(),
                    |n| format!("{n} reported"),
                );
                let _ = writeln!(
                    out,
                    "  would {verb:<7} {id:<24} {reason} [websockets {}, idle {}s, backend sessions: {sessions}]",
                    signals.leases, signals.idle_secs
                );
            }
            return out;
        }
        for o in &self.outcomes {
            let (verb, id, detail) = match o {
                Outcome::Kept {
                    deployment_id,
                    reason,
                } => ("kept", deployment_id, reason.clone()),
                Outcome::Reloaded {
                    deployment_id,
                    reason,
                    ..
                } => ("reloaded", deployment_id, reason.clone()),
                Outcome::Deleted {
                    deployment_id,
                    forced,
                    reason,
                    ..
                } => (
                    if *forced { "force-deleted" } else { "deleted" },
                    deployment_id,
                    reason.clone(),
                ),
                Outcome::Failed {
                    deployment_id,
                    error,
                    ..
                } => ("error", deployment_id, error.clone()),
                Outcome::Gone { deployment_id } => {
                    ("gone", deployment_id, "already deleted".into())
                }
                // A dry run prints its plan above and returns.
                Outcome::WouldReload { .. } | Outcome::WouldDelete { .. } => continue,
            };
            let _ = writeln!(out, "  {verb:<14} {id:<24} {detail}");
        }
        let _ = writeln!(
            out,
            "reloaded {}, deleted {}, force-deleted {}, kept {}, errors {}",
            self.reloaded.len(),
            self.deleted.len(),
            self.force_deleted.len(),
            self.kept.len(),
            self.errors.len()
        );
        out
    }
}

fn id_of(o: &Outcome) -> &DeploymentId {
    match o {
        Outcome::Kept { deployment_id, .. }
        | Outcome::Reloaded { deployment_id, .. }
        | Outcome::Deleted { deployment_id, .. }
        | Outcome::Failed { deployment_id, .. }
        | Outcome::WouldReload { deployment_id, .. }
        | Outcome::WouldDelete { deployment_id, .. }
        | Outcome::Gone { deployment_id } => deployment_id,
    }
}
