//! What can go wrong talking to the store, split by who must act: the
//! caller (bad request), the operator (store unreachable) or nobody (a
//! record someone else wrote that we cannot read is skipped, not fatal).

use switchyard_core::DeploymentId;

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
