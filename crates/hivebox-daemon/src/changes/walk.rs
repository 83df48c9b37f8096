//! Reading a box's changes: its private hive walked beside the base registry, under the
//! registry's lock, into the list shown to people ([`Change`]s) and the operations that make
//! the host what the box sees ([`Unit`]s).
//!
//! Every private key is one of (`docs/boxes.md`):
//! - below a key that hides the base (opaque or renamed), part of that key's content: compared
//!   with the key it was made from (the old key of a rename, the host key a deleted-and-created
//!   key replaced), a missing value or subkey there being a deletion;
//! - deleted: the host key at its path is deleted (if there is one);
//! - opaque or renamed: the host key at its path (if any) is replaced by the private content;
//! - plain: its values overlay the host key's (a tombstone deletes one); with no host key, it
//!   is added.

use super::{Change, ChangeError, ChangeKind};
use hivebox_core::isolate::box_mount;
use hivebox_core::isolate::markers::{self, BASE_TIME, DELETED, OPAQUE, RENAMED_FROM, Stored};
use hivebox_core::name::cmp_names;
use hivebox_core::{KeyId, KeyImage, NtStatus, Registry, Tree, Value};
use std::cmp::Ordering;
use std::collections::HashSet;
use std::sync::Arc;

/// What one key of the host must become (an operation of export and commit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unit {
    /// The key's path below `\REGISTRY` (`["MACHINE", "SOFTWARE", ...]`).
    pub comps: Vec<String>,
    pub kind: UnitKind,
    /// The private key's `hivebox:base-time`, if it has one.
    pub stamp: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum UnitKind {
    /// The key and its subtree must not exist.
    Delete,
    /// The key must be exactly this (deleted first when it exists and differs). `existed`:
    /// the host had a key at this path when the changes were read.
    Replace { image: KeyImage, existed: bool },
    /// The key must exist, with these values set and these absent.
    Values { class: Option<String>, set: Vec<(String, Value)>, delete: Vec<String> },
}

/// A box's changes and the operations that apply them.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    pub changes: Vec<Change>,
    pub units: Vec<Unit>,
}

/// The markers of one private key.
#[derive(Debug, Default)]
struct Marks {
    deleted: bool,
    opaque: bool,
    renamed_from: Option<String>,
    base_time: Option<u64>,
}

fn marks(t: &Tree, k: KeyId) -> Marks {
    let mut m = Marks::default();
    for (stored, v) in t.values(k) {
        if markers::unescape(stored) != Stored::Marker {
            continue;
        }
        if stored.eq_ignore_ascii_case(DELETED) {
            m.deleted = true;
        } else if stored.eq_ignore_ascii_case(OPAQUE) {
            m.opaque = true;
        } else if stored.eq_ignore_ascii_case(RENAMED_FROM) {
            m.renamed_from = v.as_string().ok();
        } else if stored.eq_ignore_ascii_case(BASE_TIME) {
            m.base_time = v.as_qword().ok();
        }
    }
    m
}

/// Whether a private key is deleted in the box (it is then not part of the view).
fn is_deleted(t: &Tree, k: KeyId) -> bool {
    t.value(k, DELETED).is_some()
}

/// The box's own values of a private key: markers left out, names unescaped, tombstones
/// included (`markers::is_tombstone`).
fn own_values(t: &Tree, k: KeyId) -> impl Iterator<Item = (&str, &Value)> {
    t.values(k).filter_map(|(stored, v)| match markers::unescape(stored) {
        Stored::Value(name) => Some((name, v)),
        Stored::Marker => None,
    })
}

/// The box's value `name` of a private key (a tombstone included).
fn own_value<'t>(t: &'t Tree, k: KeyId, name: &str) -> Option<&'t Value> {
    t.value(k, &markers::escape(name))
}

/// Case-insensitive order of names, as the registry sorts them ([`cmp_names`], with a fast
/// path for ASCII names).
pub(crate) fn order(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let (x, y) = (a.as_bytes(), b.as_bytes());
        for (p, q) in x.iter().zip(y) {
            match p.to_ascii_uppercase().cmp(&q.to_ascii_uppercase()) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        return x.len().cmp(&y.len());
    }
    cmp_names(a, b)
}

/// The user's form of a path below `\REGISTRY`.
pub(crate) fn user_path_of<S: AsRef<str>>(comps: &[S]) -> String {
    let mut out = String::new();
    for (i, c) in comps.iter().enumerate() {
        let c = c.as_ref();
        if i == 0 {
            push_root(&mut out, c);
        } else {
            out.push('\\');
            out.push_str(c);
        }
    }
    if out.is_empty() {
        out.push_str(r"\REGISTRY");
    }
    out
}

fn push_root(out: &mut String, master: &str) {
    if master.eq_ignore_ascii_case("MACHINE") {
        out.push_str("HKEY_LOCAL_MACHINE");
    } else if master.eq_ignore_ascii_case("USER") {
        out.push_str("HKEY_USERS");
    } else {
        out.push_str(r"\REGISTRY\");
        out.push_str(master);
    }
}

/// The native path of a path below `\REGISTRY`.
pub(crate) fn native_of<S: AsRef<str>>(comps: &[S]) -> String {
    let mut out = String::from(r"\REGISTRY");
    for c in comps {
        out.push('\\');
        out.push_str(c.as_ref());
    }
    out
}

/// The components below `\REGISTRY` of a native path (`None` if it is not one).
pub(crate) fn comps_of_native(native: &str) -> Option<Vec<String>> {
    let mut parts = native.split('\\').filter(|c| !c.is_empty());
    let first = parts.next()?;
    if !first.eq_ignore_ascii_case("REGISTRY") {
        return None;
    }
    Some(parts.map(str::to_owned).collect())
}

/// The key at a path below `\REGISTRY` of the tree, without following links.
pub(crate) fn find<S: AsRef<str>>(t: &Tree, comps: &[S]) -> Option<KeyId> {
    comps.iter().try_fold(t.root(), |k, c| t.child(k, c.as_ref()))
}

/// The root of box `name`'s private hive.
pub(crate) fn box_root(t: &Tree, name: &str) -> Option<KeyId> {
    t.child(t.root(), "A").and_then(|a| t.child(a, name))
}

/// Checks a box name enough to name one key below `\REGISTRY\A` (the daemon checks the
/// stricter rule for box names before a box exists).
pub(crate) fn check_name(name: &str) -> Result<(), ChangeError> {
    if name.is_empty() || name.contains(['\\', '/', '\0']) || hivebox_core::name::check_key_name(name).is_err() {
        return Err(ChangeError::new(NtStatus::STATUS_OBJECT_NAME_INVALID, format!("{name:?} is not a box name")));
    }
    Ok(())
}

pub(crate) fn not_mounted(name: &str) -> ChangeError {
    ChangeError::new(
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
        format!("box {name:?} has no private hive mounted at {}", box_mount(name)),
    )
}

/// What a walk collects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Want {
    /// The changes, for people.
    pub changes: bool,
    /// The operations, for export and commit.
    pub units: bool,
}

impl Want {
    pub const CHANGES: Want = Want { changes: true, units: false };
    pub const UNITS: Want = Want { changes: false, units: true };
    pub const BOTH: Want = Want { changes: true, units: true };
}

/// Reads box `name`'s changes (under the registry's lock; nothing is formatted there).
pub(crate) fn read(reg: &Registry, name: &str, want: Want) -> Result<Walk, ChangeError> {
    check_name(name)?;
    reg.with_tree(|t| {
        let root = box_root(t, name).ok_or_else(|| not_mounted(name))?;
        Ok(walk_box(t, root, want))
    })
}

/// Walks a box's private hive (rooted at `root`) against the base.
pub(crate) fn walk_box(t: &Tree, root: KeyId, want: Want) -> Walk {
    let mut w = Walker {
        t,
        want,
        comps: Vec::new(),
        native: String::from(r"\REGISTRY"),
        user: String::new(),
        shared: None,
        out: Walk::default(),
        sources: HashSet::new(),
    };
    for top in t.children(root) {
        // Master keys (`MACHINE`, `USER`) are never changed themselves: only their subkeys.
        if !["MACHINE", "USER"].iter().any(|m| t.name(top).eq_ignore_ascii_case(m)) {
            continue;
        }
        let base = t.child(t.root(), t.name(top));
        let saved = w.enter(t.name(top));
        for c in t.children(top) {
            let b = base.and_then(|b| t.child(b, t.name(c)));
            let s = w.enter(t.name(c));
            w.overlay(c, b);
            w.leave(s);
        }
        w.leave(saved);
    }
    if !w.sources.is_empty() {
        // A renamed key's old path is deleted in the box: shown as the rename only.
        let sources = std::mem::take(&mut w.sources);
        w.out
            .changes
            .retain(|c| c.kind != ChangeKind::KeyDeleted || !sources.contains(&hivebox_core::name::upcase(&c.native)));
    }
    w.out
}

struct Walker<'t> {
    t: &'t Tree,
    want: Want,
    comps: Vec<String>,
    native: String,
    user: String,
    /// `user` and `native` as the changes share them, made once per key that has changes.
    shared: Option<(Arc<str>, Arc<str>)>,
    out: Walk,
    /// Upcased native paths of renamed keys' old paths.
    sources: HashSet<String>,
}

/// A value change of one key, before sorting by name.
struct ValueChange<'t> {
    name: &'t str,
    kind: ChangeKind,
    old: Option<&'t Value>,
    new: Option<&'t Value>,
}

impl<'t> Walker<'t> {
    fn enter(&mut self, name: &str) -> (usize, usize) {
        self.shared = None;
        let saved = (self.native.len(), self.user.len());
        if self.comps.is_empty() {
            push_root(&mut self.user, name);
        } else {
            self.user.push('\\');
            self.user.push_str(name);
        }
        self.native.push('\\');
        self.native.push_str(name);
        self.comps.push(name.to_owned());
        saved
    }

    fn leave(&mut self, (native, user): (usize, usize)) {
        self.shared = None;
        self.native.truncate(native);
        self.user.truncate(user);
        self.comps.pop();
    }

    /// The current key's paths, shared.
    fn paths(&mut self) -> (Arc<str>, Arc<str>) {
        self.shared.get_or_insert_with(|| (Arc::from(self.user.as_str()), Arc::from(self.native.as_str()))).clone()
    }

    fn key_change(&mut self, kind: ChangeKind) {
        if !self.want.changes {
            return;
        }
        let (key, native) = self.paths();
        self.out.changes.push(Change {
            kind,
            key,
            native,
            from: None,
            from_native: None,
            value: None,
            old: None,
            new: None,
        });
    }

    fn value_changes(&mut self, mut list: Vec<ValueChange<'_>>) {
        if !self.want.changes {
            return;
        }
        list.sort_by(|a, b| order(a.name, b.name));
        for v in list {
            let (key, native) = self.paths();
            self.out.changes.push(Change {
                kind: v.kind,
                key,
                native,
                from: None,
                from_native: None,
                value: Some(v.name.to_owned()),
                old: v.old.cloned(),
                new: v.new.cloned(),
            });
        }
    }

    fn unit(&mut self, kind: UnitKind, stamp: Option<u64>) {
        if !self.want.units {
            return;
        }
        self.out.units.push(Unit { comps: self.comps.clone(), kind, stamp });
    }

    /// A private key whose ancestors do not hide the base; `base` is the host key at its path.
    fn overlay(&mut self, p: KeyId, base: Option<KeyId>) {
        let t = self.t;
        let m = marks(t, p);
        if m.deleted {
            if base.is_some() {
                self.key_change(ChangeKind::KeyDeleted);
                self.unit(UnitKind::Delete, m.base_time);
            }
            return;
        }
        // Renamed away and back again: as a key deleted and created again.
        let back = m.renamed_from.as_deref().and_then(comps_of_native).is_some_and(|c| {
            c.len() == self.comps.len() && c.iter().zip(&self.comps).all(|(a, b)| hivebox_core::name::eq_names(a, b))
        });
        if let Some(from) = m.renamed_from.as_ref().filter(|_| !back) {
            let origin = comps_of_native(from).and_then(|c| find(t, &c));
            if base.is_some() {
                // The host's key at the new path goes (the box deleted it before the rename).
                self.key_change(ChangeKind::KeyDeleted);
            }
            match origin {
                Some(o) if self.want.changes => {
                    let from_comps = comps_of_native(from).unwrap_or_default();
                    let (key, native) = self.paths();
                    self.out.changes.push(Change {
                        kind: ChangeKind::KeyRenamed,
                        key,
                        native,
                        from: Some(user_path_of(&from_comps)),
                        from_native: Some(native_of(&from_comps)),
                        value: None,
                        old: None,
                        new: None,
                    });
                    self.sources.insert(hivebox_core::name::upcase(&native_of(&from_comps)));
                    self.replaced(p, Some(o));
                }
                Some(_) => {}
                None => {
                    self.key_change(ChangeKind::KeyAdded);
                    self.replaced(p, None);
                }
            }
            if self.want.units {
                let image = private_image(t, p);
                self.unit(UnitKind::Replace { image, existed: base.is_some() }, m.base_time);
            }
            return;
        }
        if m.opaque || back {
            if base.is_none() {
                self.key_change(ChangeKind::KeyAdded);
            }
            // Deleted and created again: compared with the host key it replaces.
            self.replaced(p, base);
            if self.want.units {
                let image = private_image(t, p);
                self.unit(UnitKind::Replace { image, existed: base.is_some() }, m.base_time);
            }
            return;
        }
        match base {
            Some(b) => {
                let mut list = Vec::new();
                let mut set = Vec::new();
                let mut delete = Vec::new();
                for (name, v) in own_values(t, p) {
                    let old = t.value(b, name);
                    if markers::is_tombstone(v) {
                        if let Some(old) = old {
                            list.push(ValueChange { name, kind: ChangeKind::ValueDeleted, old: Some(old), new: None });
                            if self.want.units {
                                delete.push(name.to_owned());
                            }
                        }
                    } else if old != Some(v) {
                        let kind = if old.is_some() { ChangeKind::ValueModified } else { ChangeKind::ValueAdded };
                        list.push(ValueChange { name, kind, old, new: Some(v) });
                        if self.want.units {
                            set.push((name.to_owned(), v.clone()));
                        }
                    }
                }
                if !list.is_empty() {
                    self.value_changes(list);
                    self.unit(UnitKind::Values { class: None, set, delete }, m.base_time);
                }
                for c in t.children(p) {
                    let cb = t.child(b, t.name(c));
                    let s = self.enter(t.name(c));
                    self.overlay(c, cb);
                    self.leave(s);
                }
            }
            None => {
                self.key_change(ChangeKind::KeyAdded);
                let mut list = Vec::new();
                let mut set = Vec::new();
                for (name, v) in own_values(t, p) {
                    if !markers::is_tombstone(v) {
                        list.push(ValueChange { name, kind: ChangeKind::ValueAdded, old: None, new: Some(v) });
                        if self.want.units {
                            set.push((name.to_owned(), v.clone()));
                        }
                    }
                }
                self.value_changes(list);
                if self.want.units {
                    let class = t.info(p).class;
                    self.unit(UnitKind::Values { class, set, delete: Vec::new() }, m.base_time);
                }
                for c in t.children(p) {
                    let s = self.enter(t.name(c));
                    self.overlay(c, None);
                    self.leave(s);
                }
            }
        }
    }

    /// A private key whose content is all its own (it, or a key above it, hides the base),
    /// compared with `origin`, the host key it was made from: its values and subkeys, not the
    /// key itself.
    fn replaced(&mut self, p: KeyId, origin: Option<KeyId>) {
        if !self.want.changes {
            return;
        }
        let t = self.t;
        let mut list = Vec::new();
        for (name, v) in own_values(t, p) {
            if markers::is_tombstone(v) {
                continue;
            }
            let old = origin.and_then(|o| t.value(o, name));
            if old != Some(v) {
                let kind = if old.is_some() { ChangeKind::ValueModified } else { ChangeKind::ValueAdded };
                list.push(ValueChange { name, kind, old, new: Some(v) });
            }
        }
        if let Some(o) = origin {
            for (name, old) in t.values(o) {
                if own_value(t, p, name).is_none_or(markers::is_tombstone) {
                    list.push(ValueChange { name, kind: ChangeKind::ValueDeleted, old: Some(old), new: None });
                }
            }
        }
        self.value_changes(list);
        // The subkeys of both, merged in the registry's order.
        let own: Vec<KeyId> = t.children(p).filter(|c| !is_deleted(t, *c)).collect();
        let theirs: Vec<KeyId> = origin.map(|o| t.children(o).collect()).unwrap_or_default();
        let (mut i, mut j) = (0, 0);
        while i < own.len() || j < theirs.len() {
            let order = match (own.get(i), theirs.get(j)) {
                (Some(a), Some(b)) => order(t.name(*a), t.name(*b)),
                (Some(_), None) => Ordering::Less,
                _ => Ordering::Greater,
            };
            match order {
                Ordering::Less => {
                    let c = own[i];
                    let s = self.enter(t.name(c));
                    self.key_change(ChangeKind::KeyAdded);
                    self.replaced(c, None);
                    self.leave(s);
                    i += 1;
                }
                Ordering::Equal => {
                    let c = own[i];
                    let s = self.enter(t.name(c));
                    self.replaced(c, Some(theirs[j]));
                    self.leave(s);
                    i += 1;
                    j += 1;
                }
                Ordering::Greater => {
                    let s = self.enter(t.name(theirs[j]));
                    self.key_change(ChangeKind::KeyDeleted);
                    self.leave(s);
                    j += 1;
                }
            }
        }
    }
}

/// The content a key of the box that hides the base stands for: its values (names as the
/// program gave them, no markers or tombstones) and subkeys (none deleted), recursively.
pub(crate) fn private_image(t: &Tree, p: KeyId) -> KeyImage {
    let mut image = KeyImage {
        name: t.name(p).to_owned(),
        class: t.info(p).class,
        values: own_values(t, p)
            .filter(|(_, v)| !markers::is_tombstone(v))
            .map(|(n, v)| (n.to_owned(), v.clone()))
            .collect(),
        ..KeyImage::default()
    };
    for c in t.children(p) {
        if !is_deleted(t, c) {
            image.subkeys.push(private_image(t, c));
        }
    }
    image
}
