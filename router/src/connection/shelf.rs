//! Buffers a worker lends its connections. A connection holds its head,
//! response and backend buffers while it has a request in hand and puts
//! them back on its worker's shelf when it goes idle between requests, as
//! nginx frees a keep-alive connection's header buffer: an idle keep-alive
//! connection holds no buffer, and a busy worker keeps reusing the few
//! buffers it touched last (still in cache) instead of one set per
//! connection it ever served.

use std::cell::RefCell;

/// What a lent buffer holds at first: a request or response head seldom
/// needs more.
pub const SIZE: usize = 4096;

/// Buffers a shelf keeps at most; more are freed. Enough for the requests
/// a worker has in hand at once under heavy load.
const KEPT: usize = 1024;

/// Buffers one large message grew past this are freed, not shelved.
const LARGEST: usize = 16 * 1024;

thread_local! {
    // One shelf per worker thread: each worker runs its connections on a
    // single-threaded runtime, so a connection takes and gives on one.
    static SHELF: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer with room for [`SIZE`] bytes: the one given back last,
/// else a new one.
pub fn take() -> Vec<u8> {
    SHELF
        .with_borrow_mut(Vec::pop)
        .unwrap_or_else(|| Vec::with_capacity(SIZE))
}

/// Puts `buf` back on the shelf, leaving it empty with no capacity; its
/// contents are dropped.
pub fn give(buf: &mut Vec<u8>) {
    let mut b = std::mem::take(buf);
    if b.capacity() < SIZE || b.capacity() > LARGEST {
        return;
    }
    b.clear();
    SHELF.with_borrow_mut(|shelf| {
        if shelf.len() < KEPT {
            shelf.push(b);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_given_back_last_is_lent_next_and_odd_sizes_are_freed() {
        let mut a = take();
        a.extend_from_slice(b"GET / HTTP/1.1\r\n");
        let at = a.as_ptr();
        give(&mut a);
        assert_eq!(a.capacity(), 0, "a given buffer leaves nothing behind");
        let b = take();
        assert!(b.is_empty() && b.capacity() >= SIZE);
        assert_eq!(b.as_ptr(), at, "the last buffer given is the next lent");
        let mut small = Vec::with_capacity(16);
        give(&mut small);
        let mut big = Vec::with_capacity(LARGEST * 2);
        give(&mut big);
        SHELF.with_borrow(|s| assert!(s.is_empty(), "only head-sized buffers are kept"));
    }
}
