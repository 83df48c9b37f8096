//! Notification delivery, as WdFilter's async path does it: two queues, denials on the
//! high-priority one, drained first unless the normal queue has waited `starvation_limit`
//! turns; and the interface through which sync notifications get their verdict.

use super::event::ProtectionEvent;
use parking_lot::{Condvar, Mutex};
use std::collections::VecDeque;

/// Where the protection filter sends events.
pub trait EventSink: Send + Sync {
    /// Takes one event; `high` for denials. Must not block for long: it runs on the
    /// operation's thread.
    fn submit(&self, event: ProtectionEvent, high: bool);
}

/// The verdict a decider gives a sync notification.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny,
}

/// Answers sync notifications (`RegistryEventSync`): the user-mode service's side.
pub trait Decider: Send + Sync {
    /// Decides one operation, waiting at most `timeout_ms`; `None` when no answer came in time
    /// (the policy's default verdict applies).
    fn decide(&self, event: &ProtectionEvent, timeout_ms: u64) -> Option<Decision>;
}

#[derive(Debug, Default)]
struct Queues {
    high: VecDeque<ProtectionEvent>,
    normal: VecDeque<ProtectionEvent>,
    /// High-priority events taken while a normal one waited.
    high_streak: u32,
    closed: bool,
    dropped: u64,
}

/// The async notification queue (`MpAsyncSendNotification` / `MpAsyncpWorkerThread`).
#[derive(Debug)]
pub struct EventQueue {
    q: Mutex<Queues>,
    ready: Condvar,
    starvation_limit: u32,
    capacity: usize,
}

impl EventQueue {
    /// A queue holding at most `capacity` events (further ones are counted and dropped);
    /// the normal queue is served at least once every `starvation_limit` events.
    pub fn new(capacity: usize, starvation_limit: u32) -> Self {
        EventQueue { q: Mutex::new(Queues::default()), ready: Condvar::new(), starvation_limit, capacity }
    }

    /// Queues one event.
    pub fn push(&self, event: ProtectionEvent, high: bool) {
        let mut q = self.q.lock();
        if q.closed || q.high.len() + q.normal.len() >= self.capacity {
            q.dropped += 1;
            return;
        }
        if high {
            q.high.push_back(event)
        } else {
            q.normal.push_back(event)
        }
        drop(q);
        self.ready.notify_one();
    }

    fn take(&self, q: &mut Queues) -> Option<ProtectionEvent> {
        let starving = !q.normal.is_empty() && q.high_streak >= self.starvation_limit;
        if !starving && let Some(e) = q.high.pop_front() {
            if !q.normal.is_empty() {
                q.high_streak += 1;
            }
            return Some(e);
        }
        q.high_streak = 0;
        q.normal.pop_front().or_else(|| q.high.pop_front())
    }

    /// The next event, waiting for one; `None` once the queue is closed and empty.
    pub fn pop(&self) -> Option<ProtectionEvent> {
        let mut q = self.q.lock();
        loop {
            if let Some(e) = self.take(&mut q) {
                return Some(e);
            }
            if q.closed {
                return None;
            }
            self.ready.wait(&mut q);
        }
    }

    /// The next event if one is queued.
    pub fn try_pop(&self) -> Option<ProtectionEvent> {
        self.take(&mut self.q.lock())
    }

    /// Stops accepting events and wakes the worker; queued events can still be taken.
    pub fn close(&self) {
        self.q.lock().closed = true;
        self.ready.notify_all();
    }

    /// Events refused because the queue was full or closed.
    pub fn dropped(&self) -> u64 {
        self.q.lock().dropped
    }

    /// Events waiting.
    pub fn len(&self) -> usize {
        let q = self.q.lock();
        q.high.len() + q.normal.len()
    }

    /// True if nothing waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl EventSink for EventQueue {
    fn submit(&self, event: ProtectionEvent, high: bool) {
        self.push(event, high);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::bits::RegOp;
    use crate::protect::event::EventVerdict;

    fn ev(n: u32) -> ProtectionEvent {
        ProtectionEvent {
            op: RegOp::SetValue,
            target_object: String::new(),
            details: None,
            new_name: None,
            image: String::new(),
            process_id: n,
            time: 0,
            box_name: None,
            verdict: EventVerdict::Allowed,
            reason: None,
            rules: vec![],
            final_key_rules: 0,
            old: None,
            sync: false,
            decided_by: None,
        }
    }

    #[test]
    fn denials_first_but_normal_events_do_not_starve() {
        let q = EventQueue::new(100, 2);
        q.push(ev(1), false);
        for n in 10..15 {
            q.push(ev(n), true);
        }
        q.push(ev(2), false);
        let order: Vec<u32> = std::iter::from_fn(|| q.try_pop()).map(|e| e.process_id).collect();
        assert_eq!(order, [10, 11, 1, 12, 13, 2, 14]);
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let q = EventQueue::new(2, 4);
        for n in 0..5 {
            q.push(ev(n), false);
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped(), 3);
        q.close();
        assert!(q.pop().is_some());
        assert!(q.pop().is_some());
        assert!(q.pop().is_none());
    }
}
