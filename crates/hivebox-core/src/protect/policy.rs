//! A compiled policy and the decision WdFilter's pre handlers make with it.
//!
//! [`PolicySpec`] is plain data (the `hivebox-policy` crate builds it from the policy file);
//! [`CompiledPolicy::compile`] turns it into the rule tree, and [`CompiledPolicy::judge`]
//! decides one operation in WdFilter's order: hardening prefix list, rule-tree match,
//! tamper protection, Denied bits with process exemptions, Operation bits (notification).

use super::bits::*;
use super::event::render_details;
use super::path::{WalkPath, render_key, render_target, walk_text};
use super::pattern::{CompPat, Cond, Field, Fields, Probe, StrPat, ValuePat};
use super::tree::{Attach, Client, RuleTree};
use crate::Value;
use smallvec::SmallVec;
use std::cell::RefCell;

/// One rule of a policy.
#[derive(Clone, Debug, Default)]
pub struct RuleSpec {
    /// Unique id, named in every event the rule produces.
    pub id: String,
    /// What it is about.
    pub title: Option<String>,
    /// Key patterns in walk form (see [`super::path::parse_key_pattern`]); empty: the rule is
    /// indexed by its `when` condition's `TargetObject` patterns.
    pub keys: Vec<Vec<CompPat>>,
    /// Value-name patterns for value operations (`None`: every value).
    pub values: Option<Vec<ValuePat>>,
    /// Operations that are notified.
    pub notify: OpSet,
    /// Operations that are denied (and notified) unless the caller is exempt.
    pub deny: OpSet,
    /// Notifications wait for the service's verdict.
    pub sync: bool,
    /// Set/delete value notifications carry the old value.
    pub old_value: bool,
    /// Tamper protection: every operation is denied, whoever the caller.
    pub tamper: bool,
    /// A further condition on the operation's fields (Sigma detections).
    pub when: Option<Cond>,
    /// Its Denied bits do not apply to boxed callers (`in-box = "allow"`): inside a box the
    /// change lands in the box's private store, so the rule only notifies. The default
    /// (`false`) denies in boxes as on the host: a box cannot launder a protected change.
    pub in_box_allow: bool,
}

impl RuleSpec {
    /// The rule's bits on key-operation entries and on value-operation entries.
    pub fn bits(&self) -> (u32, u32) {
        self.bits_for(self.notify, self.deny)
    }

    fn bits_for(&self, notify: OpSet, deny: OpSet) -> (u32, u32) {
        let (mut key, mut value) = (0, 0);
        for op in RegOp::ALL {
            let mut b = 0;
            if notify.contains(op) || deny.contains(op) || self.tamper {
                b |= op.operation_bit();
            }
            if deny.contains(op) || self.tamper {
                b |= op.denied_bit();
            }
            if self.tamper {
                b |= TAMPER_PROTECTION_ACTIVE;
            }
            if b != 0 && self.old_value {
                b |= op.retrieve_bit();
            }
            if op.is_value_op() {
                value |= b;
            } else {
                key |= b;
            }
        }
        (key, value)
    }
}

/// Which processes get which class.
#[derive(Clone, Debug, Default)]
pub struct ProcessRule {
    /// Executable path glob.
    pub image: Option<ImageGlob>,
    /// The user id.
    pub uid: Option<u32>,
    /// The box (`Some("")` never matches a boxed process... use `None` for any).
    pub box_name: Option<String>,
    /// `ProcessFlags` given.
    pub flags: u32,
    /// `ProcessRules` given.
    pub rules: u32,
}

/// An entry of the hardening list.
#[derive(Clone, Debug)]
pub struct Hardening {
    /// The id named in events.
    pub id: String,
    /// The prefix as written.
    pub prefix: String,
}

/// What sync notifications get when no decider answers in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncDefault {
    /// Let the operation through.
    #[default]
    Allow,
    /// Deny it.
    Deny,
}

/// A whole policy, as data.
#[derive(Clone, Debug)]
pub struct PolicySpec {
    /// The rules.
    pub rules: Vec<RuleSpec>,
    /// The hardening prefix list.
    pub hardening: Vec<Hardening>,
    /// Process classes.
    pub processes: Vec<ProcessRule>,
    /// Which `ControlSet00N` is `CurrentControlSet`.
    pub current_control_set: u32,
    /// How long a sync notification waits for a verdict, in milliseconds.
    pub sync_timeout_ms: u64,
    /// The verdict when none comes.
    pub sync_default: SyncDefault,
}

impl Default for PolicySpec {
    fn default() -> Self {
        PolicySpec {
            rules: Vec::new(),
            hardening: Vec::new(),
            processes: Vec::new(),
            current_control_set: 1,
            sync_timeout_ms: 5000,
            sync_default: SyncDefault::Allow,
        }
    }
}

/// A policy compiled for matching (WdFilter's `MP_REG_USER_DATA`).
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    spec: PolicySpec,
    tree: RuleTree,
    /// Field tests of rules that no path test indexes, grouped by field.
    side: Vec<SideProbe>,
    hardening: Vec<String>,
    generation: u64,
}

/// A field test that makes a rule a candidate.
#[derive(Debug, Clone)]
struct SideProbe {
    field: Field,
    pat: StrPat,
    key: Client,
    value: Client,
}

/// Why an operation is denied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenyReason {
    /// A hardening prefix (its index).
    Hardening(usize),
    /// A rule with `TamperProtectionActive`.
    TamperProtection,
    /// A Denied bit, the caller not exempt.
    Rule,
    /// The service said no (sync notification).
    Service,
}

impl DenyReason {
    /// A short name for events.
    pub const fn name(self) -> &'static str {
        match self {
            DenyReason::Hardening(_) => "hardening",
            DenyReason::TamperProtection => "tamper-protection",
            DenyReason::Rule => "rule",
            DenyReason::Service => "service",
        }
    }
}

/// The decision for one operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Judgement {
    /// `None`: allowed.
    pub denied: Option<DenyReason>,
    /// The OR of the matched entries' bits (`FinalKeyRules`).
    pub final_rules: u32,
    /// Indexes of the rules that matched.
    pub matched: SmallVec<[u32; 4]>,
    /// The operation is to be notified (an Operation bit matched).
    pub notify: bool,
    /// The notification waits for the service.
    pub sync: bool,
    /// The old value is to be fetched.
    pub retrieve_old: bool,
}

impl Judgement {
    /// True if something matched: the operation produces an event.
    pub fn is_event(&self) -> bool {
        self.denied.is_some() || self.notify
    }
}

/// The caller, as the policy sees it: facts from the kernel plus the flags it already has.
#[derive(Clone, Copy, Debug, Default)]
pub struct Actor<'a> {
    /// Executable path.
    pub image: &'a str,
    /// Process id.
    pub pid: u32,
    /// User id.
    pub uid: Option<u32>,
    /// The box.
    pub box_name: Option<&'a str>,
    /// `ProcessFlags` the process already has.
    pub flags: u32,
    /// `ProcessRules` the process already has.
    pub rules: u32,
    /// The System process (the registry's own calls).
    pub system: bool,
}

/// Data written by a set-value, for `Details`.
#[derive(Clone, Copy, Debug)]
pub enum Details<'a> {
    /// Already rendered as Sysmon prints it.
    Text(&'a str),
    /// The value.
    Value(&'a Value),
}

/// One operation to judge.
#[derive(Clone, Copy, Debug)]
pub struct Subject<'a> {
    /// Which operation.
    pub op: RegOp,
    /// The key: native (`\REGISTRY\...`) or Sysmon-style (`HKLM\...`).
    pub key: &'a str,
    /// The value name, for value operations.
    pub value_name: Option<&'a str>,
    /// For a rename, the key's new full name.
    pub new_key: Option<&'a str>,
    /// For a set-value, the data.
    pub details: Option<Details<'a>>,
}

/// Reusable buffers for [`CompiledPolicy::judge_with`].
#[derive(Debug, Default)]
pub struct Scratch {
    walk: WalkPath,
    clients: SmallVec<[Client; 8]>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl CompiledPolicy {
    /// Compiles a policy: O(total pattern length).
    pub fn compile(spec: PolicySpec) -> CompiledPolicy {
        let mut tree = RuleTree::new();
        let mut side: Vec<SideProbe> = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            // A condition that names its event types cannot match other operations.
            let (kb, vb) = match rule.when.as_ref().and_then(Cond::event_types) {
                Some(ops) => rule.bits_for(rule.notify.intersect(ops), rule.deny.intersect(ops)),
                None => rule.bits(),
            };
            let client = |bits| Client { rule: i as u32, bits };
            let attach_keys = |tree: &mut RuleTree, alt: &[CompPat]| {
                if kb != 0 {
                    tree.insert(alt, Attach::Key(client(kb)));
                }
                if vb != 0 {
                    let values = rule.values.clone().unwrap_or_else(|| vec![ValuePat::Any]);
                    tree.insert(alt, Attach::Values(values, client(vb)));
                }
            };
            if !rule.keys.is_empty() {
                for alt in &rule.keys {
                    attach_keys(&mut tree, alt);
                }
                continue;
            }
            let probes =
                rule.when.as_ref().and_then(Cond::probes).unwrap_or_else(|| vec![Probe::Path(vec![CompPat::Any])]);
            for probe in probes {
                match probe {
                    Probe::Path(alt) => {
                        if kb != 0 {
                            tree.insert(&alt, Attach::TargetKey(client(kb)));
                        }
                        if vb != 0 {
                            tree.insert(&alt, Attach::TargetValue(client(vb)));
                        }
                    }
                    Probe::Field(field, pat) => side.push(SideProbe { field, pat, key: client(kb), value: client(vb) }),
                }
            }
        }
        tree.finish();
        let hardening = spec.hardening.iter().map(|h| walk_text(&h.prefix, spec.current_control_set)).collect();
        side.sort_by_key(|p| p.field as usize);
        CompiledPolicy { spec, tree, side, hardening, generation: 0 }
    }

    /// The policy's data.
    pub fn spec(&self) -> &PolicySpec {
        &self.spec
    }

    /// A rule by index.
    pub fn rule(&self, index: u32) -> &RuleSpec {
        &self.spec.rules[index as usize]
    }

    /// Number of nodes in the rule tree.
    pub fn tree_nodes(&self) -> usize {
        self.tree.len()
    }

    /// A number that tells policies apart (set by whoever installs it).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Sets the generation.
    pub fn with_generation(mut self, generation: u64) -> Self {
        self.generation = generation;
        self
    }

    /// The process's flags and rules: its own plus those its class gives.
    pub fn classify(&self, actor: &Actor<'_>) -> (u32, u32) {
        let (mut flags, mut rules) = (actor.flags, actor.rules);
        for p in &self.spec.processes {
            let image = p.image.as_ref().is_none_or(|g| g.matches(actor.image));
            let uid = p.uid.is_none_or(|u| actor.uid == Some(u));
            let boxed = p.box_name.as_deref().is_none_or(|b| actor.box_name == Some(b));
            if image && uid && boxed {
                flags |= p.flags;
                rules |= p.rules;
            }
        }
        (flags, rules)
    }

    /// Judges one operation (with this thread's buffers).
    pub fn judge(&self, subject: &Subject<'_>, actor: &Actor<'_>) -> Judgement {
        SCRATCH.with(|s| self.judge_with(subject, actor, &mut s.borrow_mut()))
    }

    /// Judges one operation, in WdFilter's order.
    pub fn judge_with(&self, subject: &Subject<'_>, actor: &Actor<'_>, scratch: &mut Scratch) -> Judgement {
        let op = subject.op;
        let ccs = self.spec.current_control_set;
        let (flags, prules) = self.classify(actor);
        let mut j = Judgement {
            denied: None,
            final_rules: 0,
            matched: SmallVec::new(),
            notify: false,
            sync: false,
            retrieve_old: false,
        };
        let walk = &mut scratch.walk;
        walk.set_key(subject.key, ccs);

        // 1. The hardening list: a prefix of the key's name denies everything handled.
        if !actor.system && flags & HARDENING_EXEMPT_FLAGS == 0 && !self.hardening.is_empty() {
            let mut hit = self.hardening.iter().position(|h| walk.key_text().starts_with(h.as_str()));
            if hit.is_none()
                && let Some(new) = subject.new_key
            {
                walk.set_key(new, ccs);
                hit = self.hardening.iter().position(|h| walk.key_text().starts_with(h.as_str()));
                walk.set_key(subject.key, ccs);
            }
            if let Some(i) = hit {
                j.denied = Some(DenyReason::Hardening(i));
                return j;
            }
        }

        // 2. The rule tree (both names of a rename, OR-ed).
        if let Some(v) = subject.value_name {
            walk.set_value(v);
        }
        scratch.clients.clear();
        self.tree.matches(op, walk, &mut scratch.clients);
        if let Some(new) = subject.new_key {
            walk.set_key(new, ccs);
            self.tree.matches(op, walk, &mut scratch.clients);
        }
        // Outside a rename the walk still holds the operation's own path.
        let hint = if subject.new_key.is_none() { scratch.walk.target_upcased() } else { None };
        let fields = Fields::of(self, subject, actor).with_target_upcased(hint);
        if !self.side.is_empty() {
            let mask = op.mask();
            for p in &self.side {
                let c = if op.is_value_op() { p.value } else { p.key };
                if c.bits & mask != 0
                    && p.pat
                        .matches_unfolded(fields.unrendered(p.field))
                        .unwrap_or_else(|| p.pat.matches(fields.upcased(p.field)))
                {
                    scratch.clients.push(c);
                }
            }
        }
        let mut evaluated: SmallVec<[u32; 8]> = SmallVec::new();
        for c in &scratch.clients {
            let rule = &self.spec.rules[c.rule as usize];
            if let Some(cond) = &rule.when {
                // A rule reached by several probes is evaluated once.
                if j.matched.contains(&c.rule) {
                    j.final_rules |=
                        if rule.in_box_allow && actor.box_name.is_some() { c.bits & !ALL_DENIED } else { c.bits };
                    continue;
                }
                if evaluated.contains(&c.rule) || !cond.eval(&fields) {
                    evaluated.push(c.rule);
                    continue;
                }
                evaluated.push(c.rule);
            }
            j.final_rules |= if rule.in_box_allow && actor.box_name.is_some() { c.bits & !ALL_DENIED } else { c.bits };
            if !j.matched.contains(&c.rule) {
                j.matched.push(c.rule);
            }
        }
        j.matched.sort_unstable();

        // 3. Tamper protection denies everyone; 4. Denied bits deny the non-exempt.
        let exempt = prules & ALLOW_ALL_REGISTRY_OPERATIONS != 0 || flags & EXEMPT_FLAGS != 0;
        if j.final_rules & TAMPER_PROTECTION_ACTIVE != 0 {
            j.denied = Some(DenyReason::TamperProtection);
        } else if j.final_rules & op.denied_bit() != 0 && !exempt {
            j.denied = Some(DenyReason::Rule);
        }
        // 5. Operation bits: a notification, sync if a rule or the process asks for it.
        j.notify = j.final_rules & op.operation_bit() != 0;
        j.sync = j.denied.is_none()
            && j.notify
            && (prules & NOTIFY_REGISTRY_OPERATION_SYNC != 0 || j.matched.iter().any(|&r| self.rule(r).sync));
        j.retrieve_old = j.final_rules & op.retrieve_bit() != 0;
        j
    }

    /// The operation's fields as Sysmon renders them, each rendered when first asked for.
    pub fn fields<'a>(&'a self, subject: &'a Subject<'a>, actor: &'a Actor<'a>) -> Fields<'a> {
        Fields::of(self, subject, actor)
    }

    /// One field as Sysmon renders it.
    pub fn field(&self, f: Field, subject: &Subject<'_>, actor: &Actor<'_>) -> String {
        let ccs = self.spec.current_control_set;
        match f {
            Field::TargetObject => render_target(subject.key, subject.value_name, ccs),
            Field::Details => match subject.details {
                Some(Details::Text(t)) => t.to_owned(),
                Some(Details::Value(v)) => render_details(v),
                None => String::new(),
            },
            Field::Image => actor.image.to_owned(),
            Field::EventType => subject.op.event_type().to_owned(),
            Field::NewName => subject.new_key.map(|k| render_key(k, ccs)).unwrap_or_default(),
        }
    }

    /// The ids of a judgement's rules (or its hardening entry).
    pub fn rule_ids(&self, j: &Judgement) -> Vec<String> {
        if let Some(DenyReason::Hardening(i)) = j.denied {
            return vec![self.spec.hardening[i].id.clone()];
        }
        j.matched.iter().map(|&r| self.rule(r).id.clone()).collect()
    }
}

/// An executable-path glob: `*` any run within one path component, `**` any run, `?` one
/// character. Paths starting with `/` compare case-sensitively (Linux), others (Windows images
/// in traces) case-insensitively.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageGlob {
    text: String,
    fold: bool,
}

impl ImageGlob {
    /// A glob.
    pub fn new(text: &str) -> Self {
        let fold = !text.starts_with('/');
        ImageGlob { text: if fold { text.to_lowercase() } else { text.to_owned() }, fold }
    }

    /// The glob as written (lowercased when case-insensitive).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True if `path` matches.
    pub fn matches(&self, path: &str) -> bool {
        if self.fold {
            let p = path.to_lowercase();
            glob(self.text.as_bytes(), p.as_bytes())
        } else {
            glob(self.text.as_bytes(), path.as_bytes())
        }
    }
}

fn is_sep(b: u8) -> bool {
    b == b'/' || b == b'\\'
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p {
        [] => s.is_empty(),
        [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        [b'*', rest @ ..] => {
            for i in 0..=s.len() {
                if glob(rest, &s[i..]) {
                    return true;
                }
                if i < s.len() && is_sep(s[i]) {
                    return false;
                }
            }
            false
        }
        [b'?', rest @ ..] => !s.is_empty() && !is_sep(s[0]) && glob(rest, &s[1..]),
        [c, rest @ ..] => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_globs() {
        assert!(ImageGlob::new("/usr/lib/hivebox/*").matches("/usr/lib/hivebox/helper"));
        assert!(!ImageGlob::new("/usr/lib/hivebox/*").matches("/usr/lib/hivebox/x/helper"));
        assert!(ImageGlob::new("/usr/lib/**").matches("/usr/lib/hivebox/x/helper"));
        assert!(!ImageGlob::new("/usr/bin/hivebox").matches("/usr/bin/HIVEBOX"));
        assert!(ImageGlob::new(r"C:\Windows\System32\services.exe").matches(r"c:\windows\system32\SERVICES.EXE"));
        assert!(
            ImageGlob::new(r"C:\Windows\WinSxS\**\TiWorker.exe").matches(r"C:\Windows\WinSxS\amd64_x\TiWorker.exe")
        );
    }
}
