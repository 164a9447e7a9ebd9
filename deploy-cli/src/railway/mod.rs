//! Everything the CLI knows about Railway beyond the API client: the stack
//! it bootstraps and upgrades (`stack`) and the images it runs by default
//! (`images`), and how a deployment's backend
//! service is provisioned (`provision`).

pub mod images;
pub mod provision;
pub mod stack;
