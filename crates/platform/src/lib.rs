//! Where deployments run. The janitor and the CLI need one thing from a
//! platform in common: remove a deployment's service. Railway deletes the
//! service; the static platform (backends given by URL, run by someone
//! else) has nothing to remove, so forgetting the record is the whole job.
//! The trait lives here, free of any platform client; Railway's
//! implementation is `switchyard_railway::RailwayPlatform`.

mod retire;

use std::sync::Arc;

use async_trait::async_trait;
use switchyard_core::Deployment;

pub use retire::{RetireError, Retired, Revoked, retire, revoke_unless_active};

#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    /// Worth retrying on the next run (network, rate limit, 5xx).
    #[error("{0}")]
    Transient(String),
    /// Will fail again until someone fixes it (auth, missing project).
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Platform: Send + Sync {
    fn name(&self) -> &'static str;

    /// Whether this process deletes services here. `false` for a platform
    /// seen without its token (the janitor inside the public router): it
    /// revokes what is due and leaves the service to a process that holds
    /// the token.
    fn deletes_services(&self) -> bool {
        true
    }

    /// Removes the service behind a deployment. Removing one that is
    /// already gone succeeds.
    async fn delete_service(&self, deployment: &Deployment) -> Result<(), PlatformError>;
}

pub type SharedPlatform = Arc<dyn Platform>;

/// Backends registered by URL and run elsewhere.
#[derive(Debug, Default, Clone, Copy)]
pub struct StaticPlatform;

#[async_trait]
impl Platform for StaticPlatform {
    fn name(&self) -> &'static str {
        "static"
    }

    async fn delete_service(&self, _deployment: &Deployment) -> Result<(), PlatformError> {
        Ok(())
    }
}
