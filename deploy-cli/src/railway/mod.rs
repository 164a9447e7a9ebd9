//! Everything the CLI knows about Railway beyond the API client: the stack
//! it bootstraps and upgrades (`stack`), and how a deployment's backend
//! service is provisioned (`provision`).

pub mod provision;
pub mod stack;
