//! The vocabulary every Switchyard program shares: what a deployment is, how
//! its id is validated, which names the routing protocol uses, and how typed
//! configuration is read from flags and the environment.
//!
//! Nothing here does I/O; the store, router, janitor and CLI build on it.

pub mod backend;
pub mod config;
pub mod id;
pub mod logging;
pub mod model;
pub mod names;
pub mod pin;
pub mod redact;
pub mod time;

pub use backend::{BackendUrl, InvalidBackendUrl};
pub use id::{DeploymentId, InvalidDeploymentId};
pub use model::{Deployment, DeploymentState, Rollout, Snapshot};
pub use names::RoutingNames;
pub use time::UnixTime;
