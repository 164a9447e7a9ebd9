//! Futures that only wake their task: a deadline, the shutdown signal.
//!
//! A connection's task is polled a few times per request, and polling a
//! `Sleep` or a waiting `Notified` on each of those polls re-registers the
//! task's waker (for `Notified`, under the lock every connection of every
//! worker shares). A task's waker never changes, so such a future is polled
//! once to register it and afterwards only read (`Sleep::is_elapsed`,
//! `CancellationToken::is_cancelled`: atomic loads).

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll},
    time::Duration,
};

use tokio::task::coop;

/// Polls `fut` once so it registers this task's waker. Unconstrained by
/// tokio's coop budget: a poll refused for want of budget would register
/// nothing, and the caller does not poll again.
pub fn register<F: Future>(fut: Pin<&mut F>, cx: &mut Context<'_>) {
    let _ = Pin::new(&mut coop::unconstrained(fut)).poll(cx);
}

/// `fut`'s output, or `None` once `limit` has passed (from this call).
pub async fn within<F: Future>(limit: Duration, fut: F) -> Option<F::Output> {
    let mut fut = std::pin::pin!(fut);
    let mut timer = std::pin::pin!(tokio::time::sleep(limit));
    let mut registered = false;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = fut.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        if !registered {
            registered = true;
            register(timer.as_mut(), cx);
        }
        if timer.is_elapsed() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::within;

    #[tokio::test(start_paused = true)]
    async fn within_returns_the_output_or_none_at_the_deadline() {
        assert_eq!(within(Duration::from_secs(1), async { 7 }).await, Some(7));
        let slow = tokio::time::sleep(Duration::from_secs(5));
        assert_eq!(within(Duration::from_secs(1), slow).await, None);
        let in_time = tokio::time::sleep(Duration::from_millis(500));
        assert_eq!(within(Duration::from_secs(1), in_time).await, Some(()));
    }
}
