//! Heap allocations the router makes per forwarded request, counted by a
//! counting allocator on the router's own thread only: the client and the
//! backend run on another thread, so their allocations are not counted.
//! A regression guard with headroom, and the figure BENCHMARKS.md quotes.

#![allow(clippy::unwrap_used)]

mod support;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicU64, Ordering::Relaxed},
};

use support::*;

struct Counting;

thread_local! {
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: defers to the system allocator; counting touches no heap memory.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTED.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Relaxed);
        }
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The HTTP/1 engine allocates nothing per request in the steady state
/// (0.02 measured: the connection's buffers, spread over its requests);
/// one allocation per request is already a regression.
const BUDGET: f64 = 0.5;

#[test]
fn a_forwarded_request_costs_few_allocations_on_the_router_thread() {
    // The client side and the backend: their own runtime and thread.
    let outside = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let backend = outside.block_on(Backend::start("v1"));
    // The router: this thread's runtime, one worker, so all its work is
    // on the counted thread.
    let router_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = memory_store();
    let router = router_rt.block_on(async {
        deploy(&store, &[("v1", &backend)], &["v1"]).await;
        let mut config = test_config();
        config.worker_threads = Some(1);
        TestRouter::start(config, store.clone()).await
    });
    let addr = router.addr;
    let rounds = |n: usize| {
        let client = outside.spawn(async move {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut buf = vec![0u8; 64 * 1024];
            for _ in 0..n {
                s.write_all(b"GET /small HTTP/1.1\r\nhost: app\r\n\r\n")
                    .await
                    .unwrap();
                // One response per request: read until the body (the
                // backend's JSON echo) has closed its brace.
                let mut got = Vec::new();
                loop {
                    let k = s.read(&mut buf).await.unwrap();
                    assert!(k > 0, "router closed the connection");
                    got.extend_from_slice(&buf[..k]);
                    if got.ends_with(b"}") || got.ends_with(b"}\n") {
                        break;
                    }
                }
                assert!(
                    got.starts_with(b"HTTP/1.1 200"),
                    "{}",
                    String::from_utf8_lossy(&got)
                );
            }
        });
        router_rt.block_on(async {
            COUNTED.with(|c| c.set(true));
            client.await.unwrap();
            COUNTED.with(|c| c.set(false));
        });
    };
    // Warm up: the connection, pools and buffers reach their steady size.
    rounds(200);
    ALLOCATIONS.store(0, Relaxed);
    let n = 2_000;
    rounds(n);
    let per_request = ALLOCATIONS.load(Relaxed) as f64 / n as f64;
    eprintln!("router thread: {per_request:.2} heap allocations per forwarded request");
    assert!(
        per_request <= BUDGET,
        "{per_request:.2} allocations per request, over the budget of {BUDGET}"
    );
    router_rt.block_on(router.shutdown());
}
