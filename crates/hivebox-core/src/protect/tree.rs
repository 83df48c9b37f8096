//! The monitored-keys tree (WdFilter's `MP_KEY_ENTRY` tree), compiled from a policy.
//!
//! A node is one path component: children by literal name (a hash lookup), a `*` child (one
//! component, WdFilter's wildcard node), a `**` child (any number of components: a node that
//! stays active), and component-glob children. Walking a path keeps the set of active nodes, so
//! the cost is O(path depth × active nodes), and the number of active nodes depends on the
//! wildcards a path can meet, not on the number of rules.
//!
//! Walks go through a lazily built DFA: each set of active nodes met is numbered once, with
//! what applies where a walk ends there, and its transitions are cached per component (by the
//! component's number in the tree's vocabulary of literal names), so a walk costs one or two
//! hash lookups per component whatever the wildcards. Past [`DFA_MAX_STATES`] sets the DFA
//! stops growing and walks step the node sets directly.
//!
//! A node carries, like `MP_KEY_ENTRY`, a *client list* (rules on the key, for key
//! operations) and a *values list* (value-name patterns with their rules, for value
//! operations); and for rules indexed by a `TargetObject` condition, clients matched at the
//! end of the whole target (key, then the value name's components for value operations).

use super::bits::RegOp;
use super::path::WalkPath;
use super::pattern::{CompPat, StrPat, ValuePat};
use parking_lot::{RwLock, RwLockReadGuard};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

/// A rule's entry on a node (`MP_CLIENT_VALUE`): which rule, and its bits there.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Client {
    /// The rule's index in the policy.
    pub rule: u32,
    /// Its `MP_REG_RULES` bits on this node.
    pub bits: u32,
}

#[derive(Default, Debug, Clone)]
struct Node {
    /// Literal children by the name's id in the tree's vocabulary.
    lit: FxHashMap<u32, u32>,
    one: Option<u32>,
    any: Option<u32>,
    globs: Vec<(StrPat, u32)>,
    /// For a node with many glob children: one automaton over their literal parts.
    glob_index: Option<GlobIndex>,
    /// This node is a `**` node: it stays active on every component.
    looping: bool,
    /// A `**` node with no children: once reached it matches every longer path, so a walk
    /// keeps it aside instead of stepping it.
    sticky: bool,
    key_clients: Vec<Client>,
    values: Vec<(ValuePat, Client)>,
    target_key: Vec<Client>,
    target_value: Vec<Client>,
}

/// An Aho-Corasick automaton over the literal part of each glob child, so that a component is
/// compared with the few globs whose literal it contains, not with all of them.
#[derive(Debug, Clone)]
struct GlobIndex {
    ac: aho_corasick::AhoCorasick,
    /// Pattern id to glob index.
    owners: Vec<u32>,
    /// Globs without a literal part: always tried.
    always: Vec<u32>,
}

/// Nodes with at least this many glob children get a [`GlobIndex`].
const GLOB_INDEX_MIN: usize = 8;

fn literal_of(p: &StrPat) -> &str {
    match p {
        StrPat::Equals(l) | StrPat::Prefix(l) | StrPat::Suffix(l) => l,
        StrPat::Contains(n) => n.as_str(),
        StrPat::Glob(toks) => toks
            .iter()
            .filter_map(|t| if let super::pattern::Tok::Lit(l) = t { Some(&**l) } else { None })
            .max_by_key(|l| l.len())
            .unwrap_or(""),
    }
}

/// The compiled tree.
#[derive(Debug)]
pub struct RuleTree {
    nodes: Vec<Node>,
    /// Every literal name in the tree, numbered: a path's component is looked up here once,
    /// and nodes compare numbers.
    vocab: FxHashMap<Box<str>, u32>,
    /// The sets of active nodes met so far and their transitions (a lazily built DFA).
    dfa: RwLock<Dfa>,
    /// How many sets the DFA may hold.
    dfa_limit: usize,
}

impl Clone for RuleTree {
    fn clone(&self) -> Self {
        RuleTree {
            nodes: self.nodes.clone(),
            vocab: self.vocab.clone(),
            dfa: RwLock::new(Dfa::default()),
            dfa_limit: self.dfa_limit,
        }
    }
}

/// A set of active nodes (live ones stepped on every component, sticky ones kept aside),
/// with the entries that apply where a walk ends in it.
#[derive(Debug)]
struct DState {
    live: Box<[u32]>,
    sticky: Box<[u32]>,
    /// `key_clients` and `target_key` of every node: what a key operation ending here gets.
    key_hits: Box<[Client]>,
    /// The values lists of every node.
    values: Box<[(ValuePat, Client)]>,
    /// `target_value` of every node.
    value_hits: Box<[Client]>,
    /// No live node has glob children: a component outside the vocabulary always leads to
    /// the same set.
    plain: bool,
}

/// The lazily built DFA over active-node sets. A transition is cached per (set, word); a
/// component outside the vocabulary (`OTHER`) is cached only from a set whose next set does
/// not depend on the component's text.
#[derive(Debug, Default)]
struct Dfa {
    states: Vec<DState>,
    ids: FxHashMap<SetKey, u32>,
    next: FxHashMap<(u32, u32), u32>,
}

/// Runs `f` on what applies where a walk ended.
fn with_state(dfa: &Dfa, at: &Pos, tree: &RuleTree, f: impl FnOnce(&DState)) {
    match at {
        Pos::Dfa(id) => f(&dfa.states[*id as usize]),
        Pos::Nodes(live, sticky) => f(&tree.make_state(live.clone(), sticky.clone())),
    }
}

/// A set of active nodes: the live ones and the sticky ones, sorted.
type SetKey = (Box<[u32]>, Box<[u32]>);

/// Where a walk is.
enum Pos {
    /// A set of the DFA.
    Dfa(u32),
    /// Live and sticky nodes, when the DFA is full.
    Nodes(States, States),
}

/// The word id of a component outside the vocabulary.
const OTHER: u32 = u32::MAX;
/// Past this many sets the DFA stops growing and walks step the node sets directly.
const DFA_MAX_STATES: usize = 1 << 14;

/// Where a rule's entry goes on the node its pattern ends at.
#[derive(Clone, Debug)]
pub enum Attach {
    /// The client list (key operations).
    Key(Client),
    /// The values list: value-name patterns (value operations).
    Values(Vec<ValuePat>, Client),
    /// Matched at the end of the whole target, for key operations.
    TargetKey(Client),
    /// Matched at the end of the whole target (key, then value name), for value operations.
    TargetValue(Client),
}

/// Active node sets (kept small: a handful of wildcards can be active at once).
type States = SmallVec<[u32; 16]>;

impl Default for RuleTree {
    fn default() -> Self {
        RuleTree {
            nodes: vec![Node::default()],
            vocab: FxHashMap::default(),
            dfa: RwLock::new(Dfa::default()),
            dfa_limit: DFA_MAX_STATES,
        }
    }
}

impl RuleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if no rule is in the tree.
    pub fn is_empty(&self) -> bool {
        self.nodes.len() == 1
    }

    fn child(&mut self, at: u32, c: &CompPat) -> u32 {
        let next = self.nodes.len() as u32;
        let words = self.vocab.len() as u32;
        let word = match c {
            CompPat::Lit(l) => *self.vocab.entry(l.clone()).or_insert(words),
            _ => 0,
        };
        let node = &mut self.nodes[at as usize];
        let (slot, looping) = match c {
            CompPat::Lit(_) => {
                let id = *node.lit.entry(word).or_insert(next);
                if id != next {
                    return id;
                }
                self.nodes.push(Node::default());
                return id;
            }
            CompPat::One => (&mut node.one, false),
            CompPat::Any => {
                if node.looping {
                    return at; // `**\**` is `**`
                }
                (&mut node.any, true)
            }
            CompPat::Glob(g) => {
                if let Some((_, id)) = node.globs.iter().find(|(p, _)| p == g) {
                    return *id;
                }
                node.globs.push((g.clone(), next));
                node.glob_index = None;
                self.nodes.push(Node::default());
                return next;
            }
        };
        if let Some(id) = *slot {
            return id;
        }
        *slot = Some(next);
        self.nodes.push(Node { looping, ..Node::default() });
        next
    }

    /// Adds a pattern and attaches an entry where it ends.
    pub fn insert(&mut self, pattern: &[CompPat], attach: Attach) {
        let mut at = 0u32;
        for c in pattern {
            at = self.child(at, c);
        }
        let node = &mut self.nodes[at as usize];
        match attach {
            Attach::Key(c) => node.key_clients.push(c),
            Attach::Values(pats, c) => node.values.extend(pats.into_iter().map(|p| (p, c))),
            Attach::TargetKey(c) => node.target_key.push(c),
            Attach::TargetValue(c) => node.target_value.push(c),
        }
    }

    /// Builds the glob indexes; call once all patterns are in.
    pub fn finish(&mut self) {
        *self.dfa.get_mut() = Dfa::default();
        for node in &mut self.nodes {
            node.sticky = node.looping
                && node.lit.is_empty()
                && node.one.is_none()
                && node.any.is_none()
                && node.globs.is_empty();
            node.glob_index = None;
            if node.globs.len() < GLOB_INDEX_MIN {
                continue;
            }
            let (mut needles, mut owners, mut always) = (Vec::new(), Vec::new(), Vec::new());
            for (i, (g, _)) in node.globs.iter().enumerate() {
                let lit = literal_of(g);
                if lit.is_empty() {
                    always.push(i as u32);
                } else {
                    needles.push(lit);
                    owners.push(i as u32);
                }
            }
            // Invariant: the needles are plain strings; building fails only past size limits.
            if let Ok(ac) = aho_corasick::AhoCorasick::new(&needles) {
                node.glob_index = Some(GlobIndex { ac, owners, always });
            }
        }
    }

    fn enter(&self, n: u32, states: &mut States, sticky: &mut States) {
        let node = &self.nodes[n as usize];
        let set = if node.sticky { &mut *sticky } else { &mut *states };
        if set.contains(&n) {
            return;
        }
        set.push(n);
        if let Some(a) = node.any {
            self.enter(a, states, sticky);
        }
    }

    fn step(&self, cur: &States, (comp, word): (&str, Option<u32>), next: &mut States, sticky: &mut States) {
        next.clear();
        for &s in cur {
            let node = &self.nodes[s as usize];
            if node.looping {
                self.enter(s, next, sticky);
            }
            if let Some(&c) = word.and_then(|w| node.lit.get(&w)) {
                self.enter(c, next, sticky);
            }
            if let Some(c) = node.one {
                self.enter(c, next, sticky);
            }
            match &node.glob_index {
                None => {
                    for (g, c) in &node.globs {
                        if g.matches(comp) {
                            self.enter(*c, next, sticky);
                        }
                    }
                }
                Some(ix) => {
                    let mut tried: SmallVec<[u32; 8]> = SmallVec::new();
                    let hay = if ix.ac.is_match(comp) { comp } else { "" };
                    let hits = ix.ac.find_overlapping_iter(hay).map(|m| ix.owners[m.pattern().as_usize()]);
                    for gi in hits.chain(ix.always.iter().copied()) {
                        if tried.contains(&gi) {
                            continue;
                        }
                        tried.push(gi);
                        let (g, c) = &node.globs[gi as usize];
                        if g.matches(comp) {
                            self.enter(*c, next, sticky);
                        }
                    }
                }
            }
        }
    }

    /// Builds the set for `live` and `sticky` (sorted), computing what applies there.
    fn make_state(&self, mut live: States, mut sticky: States) -> DState {
        live.sort_unstable();
        sticky.sort_unstable();
        let all = || live.iter().chain(sticky.iter()).map(|&n| &self.nodes[n as usize]);
        DState {
            key_hits: all().flat_map(|n| n.key_clients.iter().chain(&n.target_key).copied()).collect(),
            values: all().flat_map(|n| n.values.iter().cloned()).collect(),
            value_hits: all().flat_map(|n| n.target_value.iter().copied()).collect(),
            plain: live.iter().all(|&n| self.nodes[n as usize].globs.is_empty()),
            live: live.into_vec().into_boxed_slice(),
            sticky: sticky.into_vec().into_boxed_slice(),
        }
    }

    /// The id of a set, adding it; `None` when the DFA is full.
    fn intern(&self, state: DState) -> Option<u32> {
        let key = (state.live.clone(), state.sticky.clone());
        let mut dfa = self.dfa.write();
        if let Some(&id) = dfa.ids.get(&key) {
            return Some(id);
        }
        if dfa.states.len() >= self.dfa_limit {
            return None;
        }
        let id = dfa.states.len() as u32;
        dfa.states.push(state);
        dfa.ids.insert(key, id);
        Some(id)
    }

    /// True if a glob child of a live node of `state` matches `comp`.
    fn any_glob(&self, state: &DState, comp: &str) -> bool {
        state.live.iter().any(|&n| {
            let node = &self.nodes[n as usize];
            match &node.glob_index {
                Some(ix) => {
                    // Most components hold no needle: one fast scan says so.
                    (ix.ac.is_match(comp)
                        && ix
                            .ac
                            .find_overlapping_iter(comp)
                            .any(|m| node.globs[ix.owners[m.pattern().as_usize()] as usize].0.matches(comp)))
                        || ix.always.iter().any(|&g| node.globs[g as usize].0.matches(comp))
                }
                None => node.globs.iter().any(|(g, _)| g.matches(comp)),
            }
        })
    }

    /// The walk's position: a DFA set, or (once the DFA is full) the node sets themselves.
    /// `dfa` stays read-locked except while a new set is built.
    fn walk_to<'a>(
        &self,
        dfa: &mut RwLockReadGuard<'_, Dfa>,
        comps: impl Iterator<Item = &'a str>,
        mut at: Pos,
    ) -> Pos {
        for comp in comps {
            let word = self.vocab.get(comp).copied();
            at = match at {
                Pos::Dfa(id) => {
                    let state = &dfa.states[id as usize];
                    if state.live.is_empty() {
                        return at;
                    }
                    // A component outside the vocabulary leads where any other would, unless
                    // a glob child takes it.
                    let symbol = match word {
                        Some(w) => Some(w),
                        None if state.plain || !self.any_glob(state, comp) => Some(OTHER),
                        None => None,
                    };
                    if let Some(&to) = symbol.and_then(|sym| dfa.next.get(&(id, sym))) {
                        Pos::Dfa(to)
                    } else {
                        let cur: States = SmallVec::from_slice(&state.live);
                        let (mut live, mut sticky) = (States::new(), SmallVec::from_slice(&state.sticky));
                        RwLockReadGuard::unlocked(dfa, || {
                            self.step(&cur, (comp, word), &mut live, &mut sticky);
                            let (live2, sticky2) = (live.clone(), sticky.clone());
                            match self.intern(self.make_state(live, sticky)) {
                                Some(to) => {
                                    if let Some(sym) = symbol {
                                        self.dfa.write().next.insert((id, sym), to);
                                    }
                                    Pos::Dfa(to)
                                }
                                None => Pos::Nodes(live2, sticky2),
                            }
                        })
                    }
                }
                Pos::Nodes(live, mut sticky) => {
                    if live.is_empty() {
                        return Pos::Nodes(live, sticky);
                    }
                    let mut next = States::new();
                    self.step(&live, (comp, word), &mut next, &mut sticky);
                    Pos::Nodes(next, sticky)
                }
            };
        }
        at
    }

    fn start(&self) -> Pos {
        if !self.dfa.read().states.is_empty() {
            return Pos::Dfa(0);
        }
        let (mut live, mut sticky) = (States::new(), States::new());
        self.enter(0, &mut live, &mut sticky);
        let (l, s) = (live.clone(), sticky.clone());
        match self.intern(self.make_state(live, sticky)) {
            Some(id) => Pos::Dfa(id),
            None => Pos::Nodes(l, s),
        }
    }

    /// `MpRegMatchData`: the entries that apply to `op` on `path` (a key, plus the value name
    /// for value operations) whose bits meet `op`'s `Operation|Denied` mask.
    pub fn matches(&self, op: RegOp, path: &WalkPath, out: &mut SmallVec<[Client; 8]>) {
        let mask = op.mask();
        let start = self.start();
        let mut dfa = self.dfa.read();
        let at = self.walk_to(&mut dfa, path.key_components(), start);
        if op.is_value_op() {
            let value = path.value_text().unwrap_or("");
            with_state(&dfa, &at, self, |state| {
                out.extend(state.values.iter().filter(|(p, c)| c.bits & mask != 0 && p.matches(value)).map(|(_, c)| *c))
            });
            let at = self.walk_to(&mut dfa, path.value_components(), at);
            with_state(&dfa, &at, self, |state| {
                out.extend(state.value_hits.iter().filter(|c| c.bits & mask != 0).copied())
            });
        } else {
            with_state(&dfa, &at, self, |state| {
                out.extend(state.key_hits.iter().filter(|c| c.bits & mask != 0).copied())
            });
        }
    }

    /// Sets the DFA has built so far.
    pub fn dfa_states(&self) -> usize {
        self.dfa.read().states.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protect::path::parse_key_pattern;

    fn tree(rules: &[(&str, Attach)]) -> RuleTree {
        let mut t = RuleTree::new();
        for (p, a) in rules {
            for alt in parse_key_pattern(p, 1).unwrap() {
                t.insert(&alt, a.clone());
            }
        }
        t.finish();
        t
    }

    fn hit(t: &RuleTree, op: RegOp, key: &str, value: Option<&str>) -> Vec<u32> {
        let mut w = WalkPath::new();
        w.set_key(key, 1);
        if let Some(v) = value {
            w.set_value(v);
        }
        let mut out = SmallVec::new();
        t.matches(op, &w, &mut out);
        let mut r: Vec<u32> = out.iter().map(|c| c.rule).collect();
        r.sort();
        r
    }

    const ALL_KEY: u32 = 0x1 | 0x10 | 0x4;

    #[test]
    fn wildcards_match_as_documented() {
        let c = |rule| Client { rule, bits: ALL_KEY };
        let t = tree(&[
            (r"HKLM\SOFTWARE\Run", Attach::Key(c(0))),
            (r"HKU\*\Software\Run", Attach::Key(c(1))),
            (r"HKLM\SYSTEM\CurrentControlSet\Services\**", Attach::Key(c(2))),
            (r"HKLM\A\{2}\B", Attach::Key(c(3))),
            (r"HKLM\SOFTWARE\Run*", Attach::Key(c(4))),
        ]);
        let create = RegOp::CreateKey;
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\software\RUN", None), [0, 4]);
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\SOFTWARE\RunOnce", None), [4]);
        assert_eq!(hit(&t, create, r"\REGISTRY\USER\S-1-5-21-9\Software\Run", None), [1]);
        assert_eq!(hit(&t, create, r"\REGISTRY\USER\S-1-5-21-9\x\Software\Run", None), Vec::<u32>::new());
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services", None), [2]);
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\a\b\c", None), [2]);
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\a", None), [2]);
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\SYSTEM\ControlSet002\Services\a", None), Vec::<u32>::new());
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\A\x\y\B", None), [3]);
        assert_eq!(hit(&t, create, r"\REGISTRY\MACHINE\A\x\B", None), Vec::<u32>::new());
    }

    #[test]
    fn a_full_dfa_walks_the_node_sets_with_the_same_results() {
        let c = |rule| Client { rule, bits: ALL_KEY };
        let rules = [
            (r"HKLM\SOFTWARE\Run*", Attach::Key(c(0))),
            (r"**\Services\*\Parameters", Attach::Key(c(1))),
            (r"HKU\*\Software\**", Attach::Key(c(2))),
        ];
        let paths = [
            r"\REGISTRY\MACHINE\SOFTWARE\RunOnce",
            r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\x\Parameters",
            r"\REGISTRY\USER\S-1\Software\a\b",
            r"\REGISTRY\USER\S-1\Other",
        ];
        let mut small = tree(&rules);
        small.dfa_limit = 1;
        let big = tree(&rules);
        for _ in 0..2 {
            for p in paths {
                assert_eq!(hit(&small, RegOp::CreateKey, p, None), hit(&big, RegOp::CreateKey, p, None), "{p}");
            }
        }
        assert_eq!(small.dfa_states(), 1);
        assert!(big.dfa_states() > 1);
        assert_eq!(hit(&big, RegOp::CreateKey, paths[1], None), [1]);
    }

    #[test]
    fn values_and_masks() {
        let t = tree(&[
            (r"HKLM\Run", Attach::Values(vec![ValuePat::parse("Evil*")], Client { rule: 0, bits: 0x100 })),
            (r"HKLM\Run", Attach::Key(Client { rule: 1, bits: 0x10 })),
        ]);
        assert_eq!(hit(&t, RegOp::SetValue, r"\REGISTRY\MACHINE\Run", Some("evilone")), [0]);
        assert!(hit(&t, RegOp::SetValue, r"\REGISTRY\MACHINE\Run", Some("good")).is_empty());
        assert!(hit(&t, RegOp::DeleteValue, r"\REGISTRY\MACHINE\Run", Some("evil")).is_empty());
        assert_eq!(hit(&t, RegOp::DeleteKey, r"\REGISTRY\MACHINE\Run", None), [1]);
        assert!(hit(&t, RegOp::CreateKey, r"\REGISTRY\MACHINE\Run", None).is_empty());
    }
}
