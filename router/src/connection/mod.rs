//! The connection phase: listening sockets, the accept loops and their
//! limits (the connection cap, the spare descriptor), one runtime per
//! worker, and what serves an accepted connection: the HTTP/1 engine
//! (`http1`), handing HTTP/2 and what the engine leaves to hyper's
//! server (`accept`).

pub mod accept;
pub mod http1;
mod listeners;
pub mod reserve;
pub mod shelf;
pub mod workers;

pub use listeners::{Listeners, listen};
