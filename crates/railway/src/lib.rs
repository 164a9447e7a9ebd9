//! Railway's public GraphQL API, as Switchyard uses it.
//!
//! Every operation is a `.graphql` file under `gql/` (validated against
//! Railway's published schema by `tests/schema.rs`) listed in [`OPERATIONS`],
//! and sent through [`Client::request`], the one place that owns auth,
//! retries and errors.

mod client;
mod error;
pub mod ops;
mod platform;

pub use client::{Auth, Client, ClientSettings, DEFAULT_API, Upload, settings};
pub use error::RailwayError;
pub use ops::{OPERATIONS, Operation};
pub use platform::RailwayPlatform;
