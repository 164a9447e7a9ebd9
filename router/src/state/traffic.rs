//! Per-deployment counters, bumped on the request path with relaxed atomics
//! and read by the heartbeat (leases, activity, statistics) and by the
//! metrics endpoint. Nothing here touches the store.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering::Relaxed},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use switchyard_core::DeploymentId;

/// Upper bounds (seconds) of the latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default)]
pub struct Traffic {
    /// Unix milliseconds of the latest request.
    last_seen_ms: AtomicU64,
    /// Responses by status class: 1xx..5xx.
    by_class: [AtomicU64; 5],
    latency_us_sum: AtomicU64,
    /// Non-cumulative counts; the last slot is "above every bound".
    latency_buckets: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    backend_errors: AtomicU64,
    /// Requests whose own body failed (the client's fault): counted apart,
    /// never as the deployment's errors.
    client_aborts: AtomicU64,
    /// Asset requests this deployment answered after the chosen one had
    /// no such file.
    fell_through: AtomicU64,
    ws_open: AtomicU64,
    ws_total: AtomicU64,
}

/// Cumulative totals at one instant, so the heartbeat can send deltas.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub requests: u64,
    pub errors_5xx: u64,
    pub latency_ms_sum: u64,
    pub last_seen_ms: u64,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Traffic {
    pub fn touch(&self) {
        self.last_seen_ms.fetch_max(unix_ms(), Relaxed);
    }

    pub fn record(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Relaxed);
        self.latency_us_sum
            .fetch_add(elapsed.as_micros() as u64, Relaxed);
        let secs = elapsed.as_secs_f64();
        let slot = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency_buckets[slot].fetch_add(1, Relaxed);
    }

    pub fn backend_error(&self) {
        self.backend_errors.fetch_add(1, Relaxed);
    }

    pub fn client_abort(&self) {
        self.client_aborts.fetch_add(1, Relaxed);
    }

    pub fn client_aborts(&self) -> u64 {
        self.client_aborts.load(Relaxed)
    }

    pub fn fell_through(&self) {
        self.fell_through.fetch_add(1, Relaxed);
    }

    pub fn fell_through_total(&self) -> u64 {
        self.fell_through.load(Relaxed)
    }

    /// Counts an open WebSocket until the guard drops.
    pub fn open_socket(self: &Arc<Self>) -> SocketGuard {
        self.ws_open.fetch_add(1, Relaxed);
        self.ws_total.fetch_add(1, Relaxed);
        self.touch();
        SocketGuard(self.clone())
    }

    pub fn open_sockets(&self) -> u64 {
        self.ws_open.load(Relaxed)
    }

    pub fn totals(&self) -> Totals {
        Totals {
            requests: self.by_class.iter().map(|c| c.load(Relaxed)).sum(),
            errors_5xx: self.by_class[4].load(Relaxed),
            latency_ms_sum: self.latency_us_sum.load(Relaxed) / 1000,
            last_seen_ms: self.last_seen_ms.load(Relaxed),
        }
    }

    pub fn by_class(&self) -> [u64; 5] {
        std::array::from_fn(|i| self.by_class[i].load(Relaxed))
    }

    pub fn latency(&self) -> ([u64; LATENCY_BUCKETS.len() + 1], f64) {
        (
            std::array::from_fn(|i| self.latency_buckets[i].load(Relaxed)),
            self.latency_us_sum.load(Relaxed) as f64 / 1e6,
        )
    }

    pub fn backend_errors(&self) -> u64 {
        self.backend_errors.load(Relaxed)
    }

    pub fn sockets_total(&self) -> u64 {
        self.ws_total.load(Relaxed)
    }
}

#[derive(Debug)]
pub struct SocketGuard(Arc<Traffic>);

impl Drop for SocketGuard {
    fn drop(&mut self) {
        self.0.ws_open.fetch_sub(1, Relaxed);
        self.0.touch();
    }
}

/// Counters outlive routing tables: a snapshot reload must not reset them.
#[derive(Debug, Default)]
pub struct TrafficRegistry {
    map: Mutex<HashMap<DeploymentId, Arc<Traffic>>>,
}

impl TrafficRegistry {
    pub fn get(&self, id: &DeploymentId) -> Arc<Traffic> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.clone()).or_default().clone()
    }

    pub fn all(&self) -> Vec<(DeploymentId, Arc<Traffic>)> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// Forgets deployments that are gone and hold nothing worth reporting.
    pub fn retain(&self, mut keep: impl FnMut(&DeploymentId, &Traffic) -> bool) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|id, t| t.open_sockets() > 0 || keep(id, t));
    }
}
