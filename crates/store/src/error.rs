//! What can go wrong talking to the store, split by who must act: the
//! caller (bad request), the operator (store unreachable) or nobody (a
//! record someone else wrote that we cannot read is skipped, not fatal).

use switchyard_core::{DeploymentId, DeploymentState};

use crate::Result;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("deployment {0} does not exist")]
    NotFound(DeploymentId),
    #[error("deployment {0} already exists")]
    AlreadyExists(DeploymentId),
    #[error("service {service:?} already backs deployment {owner}")]
    ServiceTaken { service: String, owner: String },
    #[error("deployment {id} is {state}; {action} is not allowed")]
    WrongState {
        id: DeploymentId,
        state: String,
        action: &'static str,
    },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("the store is not empty ({0}); a restore never overwrites")]
    NotEmpty(String),
    #[error("unreadable store data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True when retrying later may succeed (the store itself failed).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

// The status words the Lua scripts answer with, as errors; the memory store
// reports its refusals in the same words so both stores fail alike.

pub(crate) fn rollout_status(
    status: &str,
    detail: String,
    id: Option<&DeploymentId>,
) -> Result<()> {
    let Some(id) = id else { return Ok(()) };
    match status {
        "ok" => Ok(()),
        "missing" => Err(StoreError::NotFound(id.clone())),
        "no_active" => Err(StoreError::Invalid(
            "a rollout needs an active deployment to split traffic with".into(),
        )),
        _ => Err(StoreError::WrongState {
            id: id.clone(),
            state: detail,
            action: "a gradual rollout (only a pending deployment can be rolled out)",
        }),
    }
}

pub(crate) fn revoke_status(
    status: &str,
    id: &DeploymentId,
    successor: Option<&DeploymentId>,
) -> Result<()> {
    let successor_err = |state: &str| match successor {
        Some(s) if state == "missing" => StoreError::NotFound(s.clone()),
        Some(s) => StoreError::WrongState {
            id: s.clone(),
            state: state.into(),
            action: "promote",
        },
        None => StoreError::Invalid("no successor given".into()),
    };
    match status {
        "ok" => Ok(()),
        "missing" => Err(StoreError::NotFound(id.clone())),
        "self" => Err(StoreError::Invalid(
            "a deployment cannot succeed itself".into(),
        )),
        "active" => Err(StoreError::WrongState {
            id: id.clone(),
            state: DeploymentState::Active.to_string(),
            action: "revoke without promoting another deployment in the same step",
        }),
        s => Err(successor_err(s.trim_start_matches("successor_"))),
    }
}
