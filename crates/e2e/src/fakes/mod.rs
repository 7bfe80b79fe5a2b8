//! In-process fakes of the network backends the drivers talk to, faithful to the
//! documented REST API subset each driver uses.

pub mod awskms;
pub mod azure;
pub mod cloudkms;
pub mod transit;

use std::collections::BinaryHeap;
use std::sync::{Condvar, LazyLock, Mutex};
use std::time::{Duration, Instant};

/// Wait `delay` as closely as the operating system allows, for a fake's answer time.
/// tokio's timer rounds a sleep up to its next millisecond tick (a 20 ms sleep took 21.1 ms
/// at the median on the build machine), which a benchmark would count against the signer;
/// one timer thread waiting on a condition variable keeps to about a tenth of that.
pub async fn wait(delay: Duration) {
    if delay.is_zero() {
        return;
    }
    let (done, waiting) = tokio::sync::oneshot::channel();
    TIMER.schedule(Instant::now() + delay, done);
    // A timer thread that died would leave the sender dropped: the wait ends early
    // rather than hanging a test.
    let _ = waiting.await;
}

struct Due {
    at: Instant,
    done: tokio::sync::oneshot::Sender<()>,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at
    }
}
impl Eq for Due {}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Due {
    /// The earliest first in a max-heap.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.at.cmp(&self.at)
    }
}

struct Timer {
    due: Mutex<BinaryHeap<Due>>,
    changed: Condvar,
}

static TIMER: LazyLock<Timer> = LazyLock::new(|| {
    let _ = std::thread::Builder::new()
        .name("fake-timer".to_owned())
        .spawn(|| TIMER.run());
    Timer {
        due: Mutex::new(BinaryHeap::new()),
        changed: Condvar::new(),
    }
});

impl Timer {
    fn schedule(&self, at: Instant, done: tokio::sync::oneshot::Sender<()>) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        due.push(Due { at, done });
        self.changed.notify_one();
    }

    fn run(&self) {
        let mut due = self.due.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            let now = Instant::now();
            while due.peek().is_some_and(|next| next.at <= now) {
                if let Some(next) = due.pop() {
                    let _ = next.done.send(());
                }
            }
            due = match due
                .peek()
                .map(|next| next.at.saturating_duration_since(now))
            {
                Some(wait) => {
                    self.changed
                        .wait_timeout(due, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
                None => self.changed.wait(due).unwrap_or_else(|p| p.into_inner()),
            };
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_end_in_order_and_never_early() {
        let started = Instant::now();
        let (a, b) = tokio::join!(
            async {
                wait(Duration::from_millis(30)).await;
                started.elapsed()
            },
            async {
                wait(Duration::from_millis(10)).await;
                started.elapsed()
            }
        );
        assert!(b >= Duration::from_millis(10) && a >= Duration::from_millis(30));
        assert!(b < a);
    }
}
