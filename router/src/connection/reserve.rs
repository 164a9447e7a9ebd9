//! A spare file descriptor per accept loop. When the process runs out
//! (`EMFILE`, `ENFILE`), a listener can neither take a connection nor
//! refuse it: the client waits in the backlog, and the loop spins on the
//! error. With a spare in hand the loop lets it go, accepts the waiting
//! connection and closes it at once (the client learns now, not at its
//! timeout), and takes the spare back. Each listener keeps its own, so
//! running out on one never stops the other from shedding.

use std::{
    fs::File,
    io,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
};

use futures_util::FutureExt;
use tokio::net::TcpListener;

/// Said once per process: the condition repeats with every connection.
static TOLD: AtomicBool = AtomicBool::new(false);

#[derive(Debug)]
pub struct Reserve {
    spare: Option<File>,
}

impl Reserve {
    pub fn new() -> Self {
        Self {
            spare: File::open("/dev/null").ok(),
        }
    }

    /// Called when `listener.accept()` failed with `e`; whether it was the
    /// descriptor limit (then one waiting connection was shed).
    pub fn shed(&mut self, listener: &TcpListener, e: &io::Error, which: &str) -> bool {
        // EMFILE (per process) and ENFILE (system-wide), as on Linux.
        if !matches!(e.raw_os_error(), Some(23 | 24)) {
            return false;
        }
        if !TOLD.swap(true, Relaxed) {
            tracing::error!(listener = which, error = %e,
                "out of file descriptors: closing new connections at once until some are free \
                 (raise the process's open-file limit, or lower --max-connections)");
        }
        self.spare = None;
        if let Some(Ok((stream, _))) = listener.accept().now_or_never() {
            drop(stream);
        }
        self.spare = File::open("/dev/null").ok();
        true
    }
}

impl Default for Reserve {
    fn default() -> Self {
        Self::new()
    }
}
