//! One worker's idle backend connections for the engine: plain sockets,
//! each between two whole messages. A socket the backend closed while it
//! sat idle is noticed by one non-blocking read when it is taken.

use std::{
    collections::HashMap,
    hash::BuildHasherDefault,
    io,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
    time::{Duration, Instant},
};

use http::uri::Authority;
use tokio::net::TcpStream;

use crate::fnv::Fnv;

/// How long an unused backend connection is kept.
const IDLE_TIMEOUT: Duration = crate::upstream::general::IDLE_TIMEOUT;

/// Idle connections kept per backend; more are closed.
const MAX_IDLE_PER_BACKEND: usize = 1024;

struct Idle {
    stream: TcpStream,
    since: Instant,
}

/// Idle sockets by backend, keyed with FNV (the keys are the operator's
/// backend addresses, never a client's).
type Lists = HashMap<Authority, Vec<Idle>, BuildHasherDefault<Fnv>>;

/// Cheap to clone; one per worker, so the lock is never contended.
#[derive(Clone, Default)]
pub struct Pool {
    idle: Arc<Mutex<Lists>>,
}

impl Pool {
    fn lists(&self) -> MutexGuard<'_, Lists> {
        // Every change is one push, pop or retain: a panic elsewhere
        // cannot leave the lists inconsistent.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used idle connection to `backend` that is still
    /// open, and how long it sat idle.
    pub fn take(&self, backend: &Authority) -> Option<(TcpStream, Duration)> {
        let mut lists = self.lists();
        let list = lists.get_mut(backend)?;
        while let Some(idle) = list.pop() {
            let mut probe = [0u8; 1];
            // Between messages a backend has nothing to say: data or the
            // end of the stream both mean the connection is done.
            match idle.stream.try_read(&mut probe) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return Some((idle.stream, idle.since.elapsed()));
                }
                _ => continue,
            }
        }
        None
    }

    /// Keeps a connection that just finished a whole exchange.
    pub fn put(&self, backend: &Authority, stream: TcpStream) {
        let mut lists = self.lists();
        let idle = Idle {
            stream,
            since: Instant::now(),
        };
        match lists.get_mut(backend) {
            Some(list) if list.len() < MAX_IDLE_PER_BACKEND => list.push(idle),
            Some(_) => {}
            None => {
                lists.insert(backend.clone(), vec![idle]);
            }
        }
    }

    /// Closes connections idle longer than the timeout.
    pub fn sweep(&self) {
        let mut lists = self.lists();
        for list in lists.values_mut() {
            list.retain(|i| i.since.elapsed() < IDLE_TIMEOUT);
        }
        lists.retain(|_, list| !list.is_empty());
    }

    pub fn idle_count(&self) -> usize {
        self.lists().values().map(Vec::len).sum()
    }
}
