//! FNV-1a, the router's one non-cryptographic hash: rollout buckets (which
//! must agree on every replica, so no random seed) and the backend pool's
//! keys (operator-given addresses, so no flooding to resist).

use std::hash::Hasher;

/// FNV-1a's 64-bit offset basis: the state before any byte.
pub const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// `state` after `bytes`.
pub fn step(mut state: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        state = (state ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    state
}

/// FNV-1a as a `Hasher`, for `HashMap`s keyed by trusted values.
pub struct Fnv(u64);

impl Default for Fnv {
    fn default() -> Self {
        Self(OFFSET)
    }
}

impl Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = step(self.0, bytes);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}
