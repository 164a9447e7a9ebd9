//! The upstream side: bodies relayed by their framing (`body`, and the
//! upload pace in `upload`), and the per-worker backend connections: raw
//! sockets for the engine (`pool`), hyper's client connections for the
//! general path (`general`).

pub mod body;
pub mod general;
pub mod pool;
pub mod upload;
