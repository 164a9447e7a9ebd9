//! Carrying out a plan. Each deployment is handled on its own, a few at a
//! time, so one slow or failing deployment does not hold up the others.
//!
//! Deleting goes through `switchyard_platform::retire`, whose ordering keeps
//! a promotion racing this run from ever losing its deployment.

use std::time::Duration;

use futures_util::StreamExt;
use switchyard_core::{
    Deployment, DeploymentId, Snapshot,
    names::{backend_paths, headers},
};
use switchyard_platform::{Retired, Revoked, SharedPlatform};
use switchyard_store::{ReloadNotice, SharedStore, StoreError};

use crate::{
    config::JanitorConfig,
    plan::{Action, DeleteReason},
    report::{BackendReload, Outcome, Step},
};

pub struct Executor<'a> {
    pub config: &'a JanitorConfig,
    pub store: &'a SharedStore,
    pub platform: &'a SharedPlatform,
    pub http: &'a reqwest::Client,
}

impl Executor<'_> {
    pub async fn apply(&self, snap: &Snapshot, actions: Vec<Action>) -> Vec<Outcome> {
        futures_util::stream::iter(actions)
            .map(|a| async move {
                let deployment = snap.get(a.deployment_id().as_str()).cloned();
                match deployment {
                    Some(d) => self.apply_one(&d, a).await,
                    None => Outcome::Gone {
                        deployment_id: a.deployment_id().clone(),
                    },
                }
            })
            .buffer_unordered(self.config.concurrency)
            .collect()
            .await
    }

    async fn apply_one(&self, d: &Deployment, action: Action) -> Outcome {
        match action {
            Action::Keep {
                deployment_id,
                reason,
                ..
            } => Outcome::Kept {
                deployment_id,
                reason,
            },
            Action::Reload {
                deployment_id,
                reason,
                ..
            } => self.reload_and_retire(d, deployment_id, reason).await,
            Action::Delete {
                deployment_id,
                why,
                reason,
                leases,
                ..
            } => self.delete(d, deployment_id, why, reason, leases).await,
        }
    }

    /// Past the reload deadline: clients must leave for good. Routers close
    /// the sockets (spread over the window), the backend is told, and the
    /// deployment is revoked so reconnects find stale affinity and land on
    /// the active deployment instead of coming back. The next run deletes it.
    async fn reload_and_retire(&self, d: &Deployment, id: DeploymentId, reason: String) -> Outcome {
        let backend = match self
            .reload(d, "deployment retired", self.config.reload_window)
            .await
        {
            Ok(note) => note,
            Err(e) => return broadcast_failed(id, &e),
        };
        match switchyard_platform::revoke_unless_active(self.store, &id).await {
            Ok(Revoked::Revoked) => Outcome::Reloaded {
                deployment_id: id,
                reason,
                backend,
            },
            Ok(Revoked::Active) => became_active(id),
            Ok(Revoked::Gone) => Outcome::Gone { deployment_id: id },
            Err(e) => Outcome::Failed {
                deployment_id: id,
                step: Step::Store,
                error: format!("store: {e}"),
            },
        }
    }

    async fn delete(
        &self,
        d: &Deployment,
        id: DeploymentId,
        why: DeleteReason,
        reason: String,
        leases: u64,
    ) -> Outcome {
        if !self.platform.deletes_services() {
            // No token here: what is due leaves the routers now, the
            // service goes on the cron janitor's next run.
            let left =
                "its service is left to the cron janitor (this process holds no platform token)";
            if d.state == switchyard_core::DeploymentState::Revoked {
                return Outcome::Kept {
                    deployment_id: id,
                    reason: format!("{reason}; {left}"),
                };
            }
            return self
                .reload_and_retire(d, id, format!("{reason}; {left}"))
                .await;
        }
        // Tell clients first, then give them a moment to move.
        let backend = match self.reload(d, "deployment retired", Duration::ZERO).await {
            Ok(note) => note,
            Err(e) => return broadcast_failed(id, &e),
        };
        let reloaded_sockets = backend
            .as_ref()
            .and_then(|b| b.reloaded_socket_count)
            .unwrap_or(0);
        if leases > 0 || reloaded_sockets > 0 {
            tokio::time::sleep(self.config.reload_grace).await;
        }
        match switchyard_platform::retire(self.store, self.platform, d).await {
            Ok(Retired::Deleted) => Outcome::Deleted {
                deployment_id: id,
                forced: why != DeleteReason::Idle,
                why,
                reason,
                backend,
            },
            Ok(Retired::AlreadyGone) => Outcome::Gone { deployment_id: id },
            Ok(Retired::Active) => became_active(id),
            Err(e) => Outcome::Failed {
                deployment_id: id,
                step: match e {
                    switchyard_platform::RetireError::Store(_) => Step::Store,
                    switchyard_platform::RetireError::Platform { .. } => Step::Platform,
                },
                error: e.to_string(),
            },
        }
    }

    /// Broadcasts the reload to routers, then asks the backend to reload the
    /// clients it knows. Only the broadcast failing is an error: a backend
    /// that is not a Pulse app, or already gone, is noted.
    async fn reload(
        &self,
        d: &Deployment,
        reason: &str,
        window: Duration,
    ) -> Result<Option<BackendReload>, StoreError> {
        let notice = ReloadNotice {
            deployment_id: d.deployment_id.clone(),
            reason: reason.into(),
            window_ms: window.as_millis() as u64,
        };
        self.store.publish_reload(&notice).await?;
        Ok(self.backend_reload(d).await)
    }

    async fn backend_reload(&self, d: &Deployment) -> Option<BackendReload> {
        if d.backend_url.is_empty() {
            return None;
        }
        let url = format!(
            "{}{}",
            d.backend_url.trim_end_matches('/'),
            backend_paths::RELOAD
        );
        let mut req = self.http.post(&url).timeout(self.config.probe_timeout);
        if let Some(token) = &self.config.internal_token {
            req = req.header(headers::INTERNAL_TOKEN, token);
        }
        let result = match req.send().await {
            Ok(res) if res.status().is_success() => {
                let count = res
                    .json::<serde_json::Value>()
                    .await
                    .ok()
                    .and_then(|v| v["reloaded_socket_count"].as_u64());
                BackendReload {
                    ok: true,
                    reloaded_socket_count: count,
                    detail: None,
                }
            }
            // A backend without the endpoint (not every app is a Pulse
            // app) is not a failure: the routers' reload is what counts.
            Ok(res)
                if matches!(
                    res.status(),
                    reqwest::StatusCode::NOT_FOUND
                        | reqwest::StatusCode::METHOD_NOT_ALLOWED
                        | reqwest::StatusCode::NOT_IMPLEMENTED
                ) =>
            {
                tracing::debug!(deployment = %d.deployment_id, status = %res.status(),
                    "backend has no reload endpoint");
                return Some(BackendReload {
                    ok: false,
                    reloaded_socket_count: None,
                    detail: Some(format!(
                        "not implemented (the backend answered {})",
                        res.status()
                    )),
                });
            }
            Ok(res) => BackendReload {
                ok: false,
                reloaded_socket_count: None,
                detail: Some(format!("backend answered {}", res.status())),
            },
            Err(e) => BackendReload {
                ok: false,
                reloaded_socket_count: None,
                detail: Some(format!("backend unreachable: {e}")),
            },
        };
        if let Some(detail) = &result.detail {
            tracing::warn!(deployment = %d.deployment_id, %detail, "backend reload endpoint failed; routers were still told to reload");
        }
        Some(result)
    }
}

/// A deployment promoted while the run was deciding about it is kept.
/// The routers could not be told: nothing else is done for the deployment.
fn broadcast_failed(deployment_id: DeploymentId, e: &StoreError) -> Outcome {
    Outcome::Failed {
        deployment_id,
        step: Step::Broadcast,
        error: format!("reload broadcast: {e}"),
    }
}

fn became_active(deployment_id: DeploymentId) -> Outcome {
    Outcome::Kept {
        deployment_id,
        reason: "became the active deployment during this run".into(),
    }
}
