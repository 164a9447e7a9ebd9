//! Test support shared by every crate's integration tests: real
//! `redis-server` processes, real HTTP/WebSocket backends, and (the one
//! fake) a Railway API server.

pub mod backend;
pub mod http;
pub mod metrics;
pub mod netns;
pub mod railway;
pub mod redis;
pub mod schema;
pub mod sentinel;
pub mod wait;

pub use backend::Backend;
pub use railway::FakeRailway;
pub use redis::{RedisServer, free_port};
pub use sentinel::SentinelSet;
pub use wait::eventually;
