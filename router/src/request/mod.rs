//! The request phase, in the order a request meets it:
//!
//! 1. **filter**: framing (`head`), the path (`path`), the fields read
//!    alike from either parser (`fields`, `headers`);
//! 2. **route**: the deployment (`route`, `pick`, `fallthrough`), or the
//!    router's own endpoints (`client`);
//! 3. **upstream request**: the backend's head and body
//!    (`upstream_request` on the engine, `backend` on the general path);
//! 4. **response filter**: the backend's head made the client's
//!    (`response`, `backend`), or the router's own answer (`respond`,
//!    `answer`, `write`);
//! 5. **log** (`access`).
//!
//! `exchange` runs the steps for the HTTP/1 engine, `proxy` for the
//! general path (HTTP/2, and what the engine hands over), whose WebSocket
//! upgrades go through the same route and response filter before the
//! relay (`crate::ws`) takes the sockets.

pub mod access;
pub mod answer;
pub mod backend;
pub mod client;
pub mod exchange;
pub mod fallthrough;
pub mod fields;
pub mod head;
pub mod headers;
pub mod path;
pub mod pick;
pub mod proxy;
pub mod respond;
pub mod response;
pub mod route;
pub mod session;
pub mod upgrade;
pub mod upstream_request;
pub mod write;
