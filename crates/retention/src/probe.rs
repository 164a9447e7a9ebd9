//! The backend session probe: `GET /_pulse/internal/railway/sessions` asks
//! a Pulse backend how many sessions it still holds (connected or
//! resumable). One more drain signal beside leases and HTTP activity; a
//! backend without the endpoint, or one that does not answer in time, is
//! judged by the others.

use std::{collections::BTreeMap, time::Duration};

use futures_util::StreamExt;
use serde::Serialize;
use switchyard_core::{
    Deployment, DeploymentId,
    names::{backend_paths, headers},
};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "probe", rename_all = "snake_case")]
pub enum SessionProbe {
    Reported {
        sessions: u64,
    },
    /// The backend has no such endpoint (404): not a Pulse app, or an old one.
    NotImplemented,
    Failed {
        reason: String,
    },
}

/// Fields a backend may report; their sum is its session count.
const COUNT_FIELDS: [&str; 4] = [
    "render_session_count",
    "connected_session_count",
    "resumable_session_count",
    "session_count",
];

pub async fn probe_all(
    http: &reqwest::Client,
    deployments: &[&Deployment],
    token: Option<&str>,
    timeout: Duration,
    concurrency: usize,
) -> BTreeMap<DeploymentId, SessionProbe> {
    // Owned inputs keep the stream's closures free of borrowed lifetimes.
    let targets: Vec<(DeploymentId, String)> = deployments
        .iter()
        .filter(|d| !d.backend_url.is_empty())
        .map(|d| (d.deployment_id.clone(), d.backend_url.clone()))
        .collect();
    let token = token.map(str::to_string);
    futures_util::stream::iter(targets)
        .map(|(id, url)| {
            let (http, token) = (http.clone(), token.clone());
            async move { (id, probe(&http, &url, token.as_deref(), timeout).await) }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await
}

async fn probe(
    http: &reqwest::Client,
    backend_url: &str,
    token: Option<&str>,
    timeout: Duration,
) -> SessionProbe {
    let url = format!(
        "{}{}",
        backend_url.trim_end_matches('/'),
        backend_paths::SESSIONS
    );
    let mut req = http.get(&url).timeout(timeout);
    if let Some(t) = token {
        req = req.header(headers::INTERNAL_TOKEN, t);
    }
    let res = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_timeout() => {
            return SessionProbe::Failed {
                reason: format!("no answer within {timeout:?}"),
            };
        }
        Err(e) => {
            return SessionProbe::Failed {
                reason: format!("unreachable: {e}"),
            };
        }
    };
    if res.status() == reqwest::StatusCode::NOT_FOUND {
        return SessionProbe::NotImplemented;
    }
    if !res.status().is_success() {
        return SessionProbe::Failed {
            reason: format!("answered {}", res.status()),
        };
    }
    let body: serde_json::Value = match res.json().await {
        Ok(v) => v,
        Err(e) => {
            return SessionProbe::Failed {
                reason: format!("unreadable answer: {e}"),
            };
        }
    };
    let counts: Vec<u64> = COUNT_FIELDS
        .iter()
        .filter_map(|f| body[*f].as_u64())
        .collect();
    if counts.is_empty() {
        return SessionProbe::Failed {
            reason: "answer has no session count".into(),
        };
    }
    SessionProbe::Reported {
        sessions: counts.iter().sum(),
    }
}
