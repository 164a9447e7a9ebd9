//! One account of whether the store is reachable, fed by every store call
//! the router makes (snapshot reads, the subscription, heartbeats): an
//! outage is logged once when it starts, summarised each minute while it
//! lasts, and logged once when it ends, instead of a warning per call.

use std::{
    fmt::Display,
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant},
};

const SUMMARY_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, Default)]
pub struct StoreHealth {
    up: AtomicBool,
    outage: Mutex<Option<Outage>>,
}

#[derive(Debug)]
struct Outage {
    since: Instant,
    failures: u64,
    last_summary: Instant,
}

impl StoreHealth {
    /// Whether the last store call succeeded.
    pub fn up(&self) -> bool {
        self.up.load(Relaxed)
    }

    pub fn succeeded(&self) {
        self.up.store(true, Relaxed);
        let ended = self.lock().take();
        if let Some(o) = ended {
            tracing::info!(
                outage_secs = o.since.elapsed().as_secs(),
                failed_calls = o.failures,
                "store reachable again"
            );
        }
    }

    /// `what` names the call ("snapshot", "heartbeat", "subscription");
    /// `routing` says whether a snapshot is held to route on meanwhile.
    pub fn failed(&self, what: &'static str, error: &dyn Display, routing: bool) {
        self.up.store(false, Relaxed);
        let now = Instant::now();
        let mut outage = self.lock();
        match outage.as_mut() {
            None => {
                if routing {
                    tracing::warn!(call = what, %error, "store unreachable; routing on the last snapshot, leases and counts kept for later");
                } else {
                    tracing::warn!(call = what, %error, "store unreachable and no snapshot yet; answering 503 until it is reachable");
                }
                *outage = Some(Outage {
                    since: now,
                    failures: 1,
                    last_summary: now,
                });
            }
            Some(o) => {
                o.failures += 1;
                if now.duration_since(o.last_summary) >= SUMMARY_EVERY {
                    o.last_summary = now;
                    tracing::warn!(
                        outage_secs = o.since.elapsed().as_secs(),
                        failed_calls = o.failures,
                        call = what,
                        %error,
                        "store still unreachable"
                    );
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        self.outage.lock().unwrap_or_else(|p| p.into_inner())
    }
}
