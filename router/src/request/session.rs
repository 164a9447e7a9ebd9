//! What one exchange on the HTTP/1 engine works with besides the request
//! itself: the connection, its buffers (reused by every request on it) and
//! the worker's backend sockets.

use std::sync::Arc;

use tokio::net::TcpStream;

use crate::{conn::Conn, shared::Shared, state::table::Target, upstream::pool::Pool};

/// What one exchange needs besides the request: the connection, its
/// buffers (reused by every request on it) and the worker's backends.
pub struct Session<'s> {
    pub shared: &'s Shared,
    pub conn: &'s Conn,
    pub stream: TcpStream,
    pub pool: &'s Pool,
    /// The head being written: the backend's request, then the client's
    /// response.
    pub out: Vec<u8>,
    /// What the backend sent.
    pub back: Vec<u8>,
    /// Re-framed body bytes on their way out.
    pub scratch: Vec<u8>,
    /// A client's body, as read past its head.
    pub upload: Vec<u8>,
    /// After a request with a body: the next request starts at
    /// `upload[at..]`, not in the head buffer.
    pub carried: Option<usize>,
}

/// Buffers grown past this by one large message are given back after it,
/// so an idle connection keeps little.
const KEEP: usize = 16 * 1024;

impl Session<'_> {
    pub fn trim(&mut self) {
        for b in [
            &mut self.out,
            &mut self.back,
            &mut self.scratch,
            &mut self.upload,
        ] {
            if b.capacity() > KEEP {
                b.clear();
                b.shrink_to(KEEP);
            }
        }
    }
}

/// What the connection does after an exchange.
#[derive(Debug)]
pub enum Next {
    KeepAlive,
    Close,
    /// The general path serves this request and the rest of the
    /// connection.
    Handoff,
    /// Both sides switched to WebSocket: the relay takes the sockets.
    Upgraded(Box<Switched>),
}

/// A WebSocket both sides agreed to, ready for the relay.
#[derive(Debug)]
pub struct Switched {
    pub target: Arc<Target>,
    pub backend: TcpStream,
    /// What the backend sent after its 101 (frames may follow at once).
    pub backend_rest: Vec<u8>,
}
