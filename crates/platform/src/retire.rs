//! Removing a deployment for good, in the one order that is safe against a
//! racing promotion: revoke it (an atomic store step that refuses the active
//! deployment, after which it can never be promoted), remove its platform
//! service, then forget its record. A platform failure leaves the revoked
//! record behind, so the next attempt picks it up again.

use switchyard_core::{Deployment, DeploymentId, UnixTime};
use switchyard_store::{DeleteOutcome, SharedStore, StoreError};

use crate::SharedPlatform;

#[derive(Debug, PartialEq, Eq)]
pub enum Retired {
    Deleted,
    /// It is (or just became) the active deployment: left alone.
    Active,
    /// Someone else deleted it first.
    AlreadyGone,
}

#[derive(Debug, thiserror::Error)]
pub enum RetireError {
    #[error("store: {0}")]
    Store(StoreError),
    #[error(
        "{platform} platform: {error}; the deployment stays revoked so the next attempt retries"
    )]
    Platform {
        platform: &'static str,
        error: crate::PlatformError,
    },
}

#[derive(Debug, PartialEq, Eq)]
pub enum Revoked {
    /// It can no longer be promoted, and pins to it are stale.
    Revoked,
    /// It is (or just became) the active deployment: left alone.
    Active,
    Gone,
}

/// The first step of retiring: one atomic store step that refuses the
/// active deployment. The janitor's deadline reload stops here.
pub async fn revoke_unless_active(
    store: &SharedStore,
    id: &DeploymentId,
) -> Result<Revoked, StoreError> {
    match store.revoke(id, None, UnixTime::now()).await {
        Ok(()) => Ok(Revoked::Revoked),
        Err(StoreError::WrongState { .. }) => Ok(Revoked::Active),
        Err(StoreError::NotFound(_)) => Ok(Revoked::Gone),
        Err(e) => Err(e),
    }
}

pub async fn retire(
    store: &SharedStore,
    platform: &SharedPlatform,
    d: &Deployment,
) -> Result<Retired, RetireError> {
    match revoke_unless_active(store, &d.deployment_id)
        .await
        .map_err(RetireError::Store)?
    {
        Revoked::Revoked => {}
        Revoked::Active => return Ok(Retired::Active),
        Revoked::Gone => return Ok(Retired::AlreadyGone),
    }
    platform
        .delete_service(d)
        .await
        .map_err(|error| RetireError::Platform {
            platform: platform.name(),
            error,
        })?;
    match store.delete_unless_active(&d.deployment_id).await {
        Ok(DeleteOutcome::Deleted) => Ok(Retired::Deleted),
        Ok(DeleteOutcome::Missing) => Ok(Retired::AlreadyGone),
        Ok(DeleteOutcome::Active) => Ok(Retired::Active),
        Err(e) => Err(RetireError::Store(e)),
    }
}
