//! The decision service: sync notifications (rules with `sync = true`) wait here for a
//! decider (`hivebox decide`, or any client subscribed on the socket).
//!
//! Each decision is pushed to every subscribed decider; the first answer wins and everyone
//! is told how it ended. An operation waits at most its policy's timeout, then the default
//! verdict applies; with no decider subscribed it applies at once (nobody could answer). Only
//! the operation being decided waits: the others, and other connections, go on.
//! "always"/"never" answers are remembered for the same rules and executable until the
//! daemon stops.

use crate::server::Out;
use hivebox_core::NtStatus;
use hivebox_core::protect::{Decider, Decision, ProtectionEvent};
use hivebox_proto::{Decided, Push, Verdict};
use parking_lot::{Condvar, Mutex};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Pending {
    event: String,
    deadline: Instant,
    verdict: Option<Verdict>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    deciders: Vec<(u64, Arc<Out>)>,
    /// (rules, executable) → remembered answer.
    remembered: FxHashMap<(String, String), Verdict>,
    /// Which (rules, executable) each pending decision is about.
    keys: FxHashMap<u64, (String, String)>,
}

/// Pending decisions and the deciders that answer them.
#[derive(Default)]
pub struct DecisionHub {
    state: Mutex<State>,
    answered: Condvar,
}

impl std::fmt::Debug for DecisionHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state.lock();
        f.debug_struct("DecisionHub").field("pending", &st.pending.len()).field("deciders", &st.deciders.len()).finish()
    }
}

fn key(event: &ProtectionEvent) -> (String, String) {
    (event.rules.join(","), event.image.clone())
}

impl DecisionHub {
    /// A hub with no deciders.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes connection `conn` a decider; the decisions already pending are pushed to it.
    pub fn subscribe(&self, conn: u64, out: Arc<Out>) {
        let mut st = self.state.lock();
        let now = Instant::now();
        for (id, p) in &st.pending {
            let timeout_ms = p.deadline.saturating_duration_since(now).as_millis() as u64;
            out.push(Push::Decision { id: *id, event: p.event.clone(), timeout_ms });
        }
        st.deciders.retain(|(c, _)| *c != conn);
        st.deciders.push((conn, out));
    }

    /// Connection `conn` is no decider any more.
    pub fn unsubscribe(&self, conn: u64) {
        self.state.lock().deciders.retain(|(c, _)| *c != conn);
    }

    /// How many deciders are subscribed.
    pub fn deciders(&self) -> usize {
        self.state.lock().deciders.len()
    }

    /// Answers decision `id`; with `remember`, later decisions about the same rules and
    /// executable get the same answer without asking.
    pub fn answer(&self, id: u64, verdict: Verdict, remember: bool) -> Result<(), NtStatus> {
        let mut st = self.state.lock();
        let p = st.pending.get_mut(&id).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        if p.verdict.is_some() {
            // Someone else answered first.
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        p.verdict = Some(verdict);
        if remember && let Some(k) = st.keys.get(&id).cloned() {
            st.remembered.insert(k, verdict);
        }
        drop(st);
        self.answered.notify_all();
        Ok(())
    }
}

/// How a question to the deciders ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// An earlier "always"/"never" answer applied; nobody was asked.
    Remembered(Verdict),
    /// A decider answered.
    Answered(Verdict),
    /// No decider is subscribed, or none answered in time.
    NoAnswer,
}

impl DecisionHub {
    /// Asks the deciders about the event `json` and waits up to `timeout_ms` for an answer.
    /// Questions with the same `key` share "always"/"never" answers.
    pub fn ask(&self, json: String, key: (String, String), timeout_ms: u64) -> Asked {
        let k = key;
        let mut st = self.state.lock();
        if let Some(v) = st.remembered.get(&k) {
            return Asked::Remembered(*v);
        }
        if st.deciders.is_empty() {
            return Asked::NoAnswer;
        }
        st.next_id += 1;
        let id = st.next_id;
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        for (_, out) in &st.deciders {
            out.push(Push::Decision { id, event: json.clone(), timeout_ms });
        }
        st.pending.insert(id, Pending { event: json, deadline, verdict: None });
        st.keys.insert(id, k);
        let verdict = loop {
            if let Some(v) = st.pending.get(&id).and_then(|p| p.verdict) {
                break Some(v);
            }
            if self.answered.wait_until(&mut st, deadline).timed_out() {
                break st.pending.get(&id).and_then(|p| p.verdict);
            }
        };
        st.pending.remove(&id);
        st.keys.remove(&id);
        let outcome = match verdict {
            Some(Verdict::Allow) => Decided::Allowed,
            Some(Verdict::Deny) => Decided::Denied,
            None => Decided::TimedOut,
        };
        for (_, out) in &st.deciders {
            out.push(Push::Decided { id, outcome });
        }
        verdict.map_or(Asked::NoAnswer, Asked::Answered)
    }
}

impl Decider for DecisionHub {
    fn decide(&self, event: &ProtectionEvent, timeout_ms: u64) -> Option<Decision> {
        match self.ask(event.to_json(), key(event), timeout_ms) {
            Asked::Remembered(v) | Asked::Answered(v) => Some(decision(v)),
            Asked::NoAnswer => None,
        }
    }
}

fn decision(v: Verdict) -> Decision {
    match v {
        Verdict::Allow => Decision::Allow,
        Verdict::Deny => Decision::Deny,
    }
}
