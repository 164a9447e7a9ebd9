//! The behavioural suite against the in-memory store.

#![allow(clippy::unwrap_used)]

mod suite;

use std::sync::Arc;

use switchyard_store::{MemoryStore, SharedStore};

store_suite!((Arc::new(MemoryStore::new()) as SharedStore, ()));
