//! A box's merged view of one key, computed from the base tree and the box's private hive
//! (both in the registry's one tree) under the registry's lock: which keys stand behind a
//! path, and the merged values, subkeys and key information.

use super::markers::{self, DELETED, OPAQUE, RENAMED_FROM, Stored};
use crate::cm::LINK_VALUE;
use crate::tree::{KeyId, KeyInfo, SubkeyInfo, Tree};
use crate::{KeyImage, Value, ValueType};

/// Most symbolic links followed while resolving one path.
const MAX_LINK_HOPS: u32 = 16;

/// The keys behind one path of a box's view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Resolved {
    /// The base key, when the box can see it.
    pub base: Option<KeyId>,
    /// The box's private key.
    pub private: Option<KeyId>,
}

fn has_marker(tree: &Tree, key: KeyId, marker: &str) -> bool {
    tree.value(key, marker).is_some()
}

/// Whether a private key hides the base content at its path (deleted and created again, or
/// made by a rename).
pub(crate) fn hides_base(tree: &Tree, private: KeyId) -> bool {
    has_marker(tree, private, OPAQUE) || has_marker(tree, private, RENAMED_FROM)
}

/// Whether a private key marks its path deleted.
pub(crate) fn is_deleted(tree: &Tree, private: KeyId) -> bool {
    has_marker(tree, private, DELETED)
}

/// The path (components below `\REGISTRY`) with the base registry's symbolic links followed,
/// as the CM would resolve it; the last component's link is kept with `open_link_last`.
/// Components past a missing base key stay as given.
pub(crate) fn canonical(tree: &Tree, comps: &[String], open_link_last: bool) -> Vec<String> {
    let mut comps = comps.to_vec();
    let mut hops = 0;
    'restart: loop {
        let mut cur = tree.root();
        for i in 0..comps.len() {
            let Some(next) = tree.child(cur, &comps[i]) else { return comps };
            let last = i + 1 == comps.len();
            if tree.node(next).link && !(last && open_link_last) && hops < MAX_LINK_HOPS {
                let target = tree.value(next, LINK_VALUE).filter(|v| v.ty == ValueType::REG_LINK);
                if let Some(t) = target.and_then(|v| v.as_string().ok()) {
                    let mut all: Vec<String> =
                        t.split('\\').filter(|c| !c.is_empty()).skip(1).map(str::to_owned).collect();
                    all.extend(comps.drain(i + 1..));
                    comps = all;
                    hops += 1;
                    continue 'restart;
                }
            }
            cur = next;
        }
        return comps;
    }
}

/// Resolves a canonical path in the view of the box whose hive root is `box_root`: `None`
/// when the path does not exist there (missing, or deleted in the box).
pub(crate) fn resolve(tree: &Tree, box_root: KeyId, comps: &[String]) -> Option<Resolved> {
    let mut base = Some(tree.root());
    let mut private = Some(box_root);
    for c in comps {
        private = private.and_then(|p| tree.child(p, c));
        base = base.and_then(|b| tree.child(b, c));
        if let Some(p) = private {
            if is_deleted(tree, p) {
                return None;
            }
            if hides_base(tree, p) {
                base = None;
            }
        }
        if base.is_none() && private.is_none() {
            return None;
        }
    }
    Some(Resolved { base, private })
}

/// The private key at a path of the box's hive, if it exists (markers included).
pub(crate) fn private_key(tree: &Tree, box_root: KeyId, comps: &[String]) -> Option<KeyId> {
    comps.iter().try_fold(box_root, |k, c| tree.child(k, c))
}

/// The merged value `name`: the box's (a tombstone hides the base's), else the base's.
pub(crate) fn value(tree: &Tree, r: Resolved, name: &str) -> Option<Value> {
    if let Some(p) = r.private
        && let Some(v) = tree.value(p, &markers::escape(name))
    {
        return (!markers::is_tombstone(v)).then(|| v.clone());
    }
    r.base.and_then(|b| tree.value(b, name).cloned())
}

/// The merged values: the base's in their order (the box's version in place of one it
/// changed, none for one it deleted), then the box's new ones in the order it wrote them.
pub(crate) fn values(tree: &Tree, r: Resolved) -> Vec<(String, Value)> {
    let mut own: Vec<(String, &Value, bool)> = Vec::new();
    if let Some(p) = r.private {
        for (stored, v) in tree.values(p) {
            if let Stored::Value(name) = markers::unescape(stored) {
                own.push((name.to_owned(), v, false));
            }
        }
    }
    let mut out = Vec::new();
    if let Some(b) = r.base {
        for (name, v) in tree.values(b) {
            match own.iter_mut().find(|(n, _, used)| !*used && crate::name::eq_names(n, name)) {
                Some(o) => {
                    o.2 = true;
                    if !markers::is_tombstone(o.1) {
                        out.push((o.0.clone(), o.1.clone()));
                    }
                }
                None => out.push((name.to_owned(), v.clone())),
            }
        }
    }
    for (name, v, used) in own {
        if !used && !markers::is_tombstone(v) {
            out.push((name, v.clone()));
        }
    }
    out
}

/// One merged subkey: its name, and the keys behind it.
#[derive(Debug, Clone)]
pub(crate) struct Sub {
    pub info: SubkeyInfo,
    pub keys: Resolved,
}

/// The merged subkeys, sorted as the registry sorts them (by upcased name).
pub(crate) fn subkeys(tree: &Tree, r: Resolved) -> Vec<Sub> {
    let node_info = |k: KeyId| {
        let n = tree.node(k);
        SubkeyInfo { name: n.name.clone(), class: n.class.clone(), last_write: n.last_write }
    };
    let base: Vec<(&str, KeyId)> =
        r.base.map(|b| tree.node(b).children.iter().map(|(u, k)| (&**u, *k)).collect()).unwrap_or_default();
    let own: Vec<(&str, KeyId)> =
        r.private.map(|p| tree.node(p).children.iter().map(|(u, k)| (&**u, *k)).collect()).unwrap_or_default();
    let mut out = Vec::with_capacity(base.len() + own.len());
    let (mut i, mut j) = (0, 0);
    while i < base.len() || j < own.len() {
        let order = match (base.get(i), own.get(j)) {
            (Some(b), Some(o)) => crate::name::cmp_upcased(b.0, o.0),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let (_, k) = base[i];
                out.push(Sub { info: node_info(k), keys: Resolved { base: Some(k), private: None } });
                i += 1;
            }
            ord => {
                let (_, p) = own[j];
                let b = (ord == std::cmp::Ordering::Equal).then(|| base[i].1);
                if ord == std::cmp::Ordering::Equal {
                    i += 1;
                }
                j += 1;
                if is_deleted(tree, p) {
                    continue;
                }
                let b = if hides_base(tree, p) { None } else { b };
                let mut info = node_info(p);
                if let Some(b) = b {
                    let bn = tree.node(b);
                    info.last_write = info.last_write.max(bn.last_write);
                    if info.class.is_none() {
                        info.class = bn.class.clone();
                    }
                }
                out.push(Sub { info, keys: Resolved { base: b, private: Some(p) } });
            }
        }
    }
    out
}

fn u16len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

/// The merged key information, its counts and lengths agreeing with [`values`] and
/// [`subkeys`].
pub(crate) fn info(tree: &Tree, r: Resolved, subs: &[Sub], vals: &[(String, Value)]) -> KeyInfo {
    let main = r.private.or(r.base).map(|k| tree.info_header(k)).unwrap_or_default();
    let mut info = KeyInfo {
        subkeys: subs.len() as u32,
        values: vals.len() as u32,
        max_subkey_name_len: 0,
        max_class_len: 0,
        max_value_name_len: 0,
        max_value_data_len: 0,
        ..main
    };
    if let (Some(p), Some(b)) = (r.private, r.base) {
        info.last_write = tree.node(p).last_write.max(tree.node(b).last_write);
        info.name = tree.node(b).name.clone();
        if info.class.is_none() {
            info.class = tree.node(b).class.clone();
        }
        info.volatile |= tree.node(b).volatile;
        info.link |= tree.node(b).link;
    }
    for s in subs {
        info.max_subkey_name_len = info.max_subkey_name_len.max(u16len(&s.info.name));
        info.max_class_len = info.max_class_len.max(s.info.class.as_deref().map_or(0, u16len));
    }
    for (n, v) in vals {
        info.max_value_name_len = info.max_value_name_len.max(u16len(n));
        info.max_value_data_len = info.max_value_data_len.max(v.data.len() as u32);
    }
    info
}

/// The merged subtree below a view key, as `NtSaveKey` would save it.
pub(crate) fn image(tree: &Tree, r: Resolved, name: &str, depth: usize) -> KeyImage {
    let k = r.private.or(r.base);
    let node = k.map(|k| tree.node(k));
    let vals = values(tree, r);
    let subs = subkeys(tree, r);
    let subkeys = if depth >= crate::name::MAX_PATH_DEPTH {
        Vec::new()
    } else {
        subs.iter().map(|s| image(tree, s.keys, &s.info.name, depth + 1)).collect()
    };
    KeyImage {
        name: name.to_owned(),
        class: node.and_then(|n| n.class.clone()),
        last_write: node.map_or(0, |n| n.last_write),
        link: node.is_some_and(|n| n.link),
        system_only: r.base.map_or(0, |b| tree.node(b).system_only),
        security: r.base.and_then(|b| tree.node(b).security.clone()),
        values: vals,
        subkeys,
    }
}
