//! The monitored-keys tree (WdFilter's `MP_KEY_ENTRY` tree), compiled from a policy.
//!
//! A node is one path component: children by literal name (a hash lookup), a `*` child (one
//! component, WdFilter's wildcard node), a `**` child (any number of components: a node that
//! stays active), and component-glob children. Walking a path keeps the set of active nodes, so
//! the cost is O(path depth × active nodes), and the number of active nodes depends on the
//! wildcards a path can meet, not on the number of rules.
//!
//! A node carries, like `MP_KEY_ENTRY`, a *client list* (rules on the key, for key
//! operations) and a *values list* (value-name patterns with their rules, for value
//! operations); and for rules indexed by a `TargetObject` condition, clients matched at the
//! end of the whole target (key, then the value name's components for value operations).

use super::bits::RegOp;
use super::path::WalkPath;
use super::pattern::{CompPat, StrPat, ValuePat};
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
#[derive(Debug, Clone)]
pub struct RuleTree {
    nodes: Vec<Node>,
    /// Every literal name in the tree, numbered: a path's component is looked up here once,
    /// and nodes compare numbers.
    vocab: FxHashMap<Box<str>, u32>,
}

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
        RuleTree { nodes: vec![Node::default()], vocab: FxHashMap::default() }
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
                    let hits = ix.ac.find_overlapping_iter(comp).map(|m| ix.owners[m.pattern().as_usize()]);
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

    fn walk<'a>(&self, comps: impl Iterator<Item = &'a str>, states: &mut States, sticky: &mut States) {
        let mut next = States::new();
        for c in comps {
            if states.is_empty() {
                return;
            }
            self.step(states, (c, self.vocab.get(c).copied()), &mut next, sticky);
            std::mem::swap(states, &mut next);
        }
    }

    /// `MpRegMatchData`: the entries that apply to `op` on `path` (a key, plus the value name
    /// for value operations) whose bits meet `op`'s `Operation|Denied` mask.
    pub fn matches(&self, op: RegOp, path: &WalkPath, out: &mut SmallVec<[Client; 8]>) {
        let mask = op.mask();
        let (mut states, mut sticky) = (States::new(), States::new());
        self.enter(0, &mut states, &mut sticky);
        self.walk(path.key_components(), &mut states, &mut sticky);
        if op.is_value_op() {
            let value = path.value_text().unwrap_or("");
            for &s in states.iter().chain(&sticky) {
                let node = &self.nodes[s as usize];
                out.extend(node.values.iter().filter(|(p, c)| c.bits & mask != 0 && p.matches(value)).map(|(_, c)| *c));
            }
            self.walk(path.value_components(), &mut states, &mut sticky);
            for &s in states.iter().chain(&sticky) {
                out.extend(self.nodes[s as usize].target_value.iter().filter(|c| c.bits & mask != 0).copied());
            }
        } else {
            for &s in states.iter().chain(&sticky) {
                let node = &self.nodes[s as usize];
                out.extend(node.key_clients.iter().chain(&node.target_key).filter(|c| c.bits & mask != 0).copied());
            }
        }
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
