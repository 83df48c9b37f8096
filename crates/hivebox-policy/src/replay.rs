//! Replaying a trace through a policy: every event is judged as the operation it records, by
//! the recorded image, and counted per rule.

use crate::trace::{TraceError, TraceOp, parse_line};
use hivebox_core::protect::policy::{DenyReason, Scratch};
use hivebox_core::protect::{CompiledPolicy, RegOp};

/// Per-rule counts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleCounts {
    /// Events the rule denied (it matched and the operation was denied).
    pub denied: u64,
    /// Events the rule notified (matched, allowed).
    pub notified: u64,
}

/// The result of a replay.
#[derive(Debug)]
pub struct Replay<'p> {
    policy: &'p CompiledPolicy,
    scratch: Scratch,
    /// Counts per rule, by rule index.
    pub rules: Vec<RuleCounts>,
    /// Counts per hardening entry.
    pub hardening: Vec<u64>,
    /// Events read.
    pub events: u64,
    /// Events that matched something.
    pub matched: u64,
    /// Events denied.
    pub denied: u64,
    /// Lines that did not parse: (line number, error); at most [`Replay::KEEP_ERRORS`] kept.
    pub errors: Vec<(u64, TraceError)>,
    /// How many lines did not parse.
    pub error_count: u64,
    /// Events per operation.
    pub per_op: [u64; 7],
    last: smallvec::SmallVec<[u32; 4]>,
}

impl<'p> Replay<'p> {
    /// How many parse errors are kept with their line.
    pub const KEEP_ERRORS: usize = 100;

    /// A replay through `policy`.
    pub fn new(policy: &'p CompiledPolicy) -> Self {
        Replay {
            policy,
            scratch: Scratch::default(),
            rules: vec![RuleCounts::default(); policy.spec().rules.len()],
            hardening: vec![0; policy.spec().hardening.len()],
            events: 0,
            matched: 0,
            denied: 0,
            errors: Vec::new(),
            error_count: 0,
            per_op: [0; 7],
            last: smallvec::SmallVec::new(),
        }
    }

    /// Feeds one line (1-based `line_no`); blank lines are skipped.
    pub fn line(&mut self, line_no: u64, line: &str) {
        if line.trim().is_empty() {
            return;
        }
        match parse_line(line) {
            Ok(op) => {
                self.event(&op);
            }
            Err(e) => {
                self.error_count += 1;
                if self.errors.len() < Self::KEEP_ERRORS {
                    self.errors.push((line_no, e));
                }
            }
        }
    }

    /// Judges one event and counts it. Returns the indexes of the rules it matched.
    pub fn event(&mut self, t: &TraceOp) -> &[u32] {
        self.events += 1;
        self.per_op[t.op as usize] += 1;
        let j = self.policy.judge_with(&t.subject(), &t.actor(), &mut self.scratch);
        if !j.is_event() {
            return &[];
        }
        self.matched += 1;
        if let Some(DenyReason::Hardening(i)) = j.denied {
            self.hardening[i] += 1;
            self.denied += 1;
            return &[];
        }
        let denied = j.denied.is_some();
        self.denied += u64::from(denied);
        for &r in &j.matched {
            let c = &mut self.rules[r as usize];
            if denied { c.denied += 1 } else { c.notified += 1 }
        }
        self.last = j.matched;
        &self.last
    }

    /// The number of events of one operation.
    pub fn count(&self, op: RegOp) -> u64 {
        self.per_op[op as usize]
    }
}
