//! The key tree: keys, their values and subkeys, in memory.
//!
//! Every key has a [`KeyId`] that stays the same for the key's life, across renames (it is the
//! `ObjectID` that `CmCallbackGetKeyObjectIDEx` reports). Ids of deleted keys are never reused
//! while the tree lives, so a stale id can only ever find a deleted key.
//!
//! Subkeys are kept sorted by upcased name (the order of a regf `lh` index, and the order
//! `RegEnumKeyEx` reports); values keep their insertion order, as Windows keeps its value list.

use crate::name::{cmp_with_upcased, eq_names, upcase};
use crate::value::Value;
use std::collections::HashMap;

/// The identity of a key, stable across renames.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct KeyId(pub u64);

/// Values above this count get a hash index for lookups.
const VALUE_INDEX_THRESHOLD: usize = 16;

#[derive(Debug, Clone)]
pub(crate) struct ValueEntry {
    pub name: String,
    pub value: Value,
}

/// One key.
#[derive(Debug, Clone, Default)]
pub(crate) struct Node {
    pub name: String,
    pub upname: String,
    pub parent: Option<KeyId>,
    /// Sorted by upcased name.
    pub children: Vec<(Box<str>, KeyId)>,
    pub values: Vec<ValueEntry>,
    /// Upcased value name -> position in `values`, kept only for keys with many values.
    pub value_index: Option<HashMap<String, usize>>,
    pub class: Option<String>,
    pub last_write: u64,
    pub volatile: bool,
    pub link: bool,
    pub deleted: bool,
    /// Access rights that only SYSTEM is granted on this key (a reduced security descriptor).
    pub system_only: u32,
    /// Security descriptor bytes, shared (see `KeyImage::security`).
    pub security: Option<std::sync::Arc<[u8]>>,
    /// The hive the key is stored in (0: a master key such as `\REGISTRY\MACHINE`, kept only
    /// in memory).
    pub hive: u32,
}

impl Node {
    fn value_pos(&self, name: &str) -> Option<usize> {
        if let Some(index) = &self.value_index {
            return index.get(&upcase(name)).copied();
        }
        // The same equality as comparing against `upcase(name)`, without allocating it.
        self.values.iter().position(|e| eq_names(&e.name, name))
    }

    fn rebuild_index(&mut self) {
        self.value_index = (self.values.len() > VALUE_INDEX_THRESHOLD)
            .then(|| self.values.iter().enumerate().map(|(i, e)| (upcase(&e.name), i)).collect());
    }
}

/// [`cmp_with_upcased`] for an ASCII `name`, against any upcased name: bytes compare as
/// characters do (UTF-8 order is code point order, and an ASCII character upcases to one).
#[inline]
fn cmp_ascii_with_upcased(name: &[u8], upcased: &[u8]) -> std::cmp::Ordering {
    for (x, y) in name.iter().zip(upcased) {
        match x.to_ascii_uppercase().cmp(y) {
            std::cmp::Ordering::Equal => continue,
            other => return other,
        }
    }
    name.len().cmp(&upcased.len())
}

/// The in-memory key tree.
#[derive(Debug, Clone)]
pub struct Tree {
    nodes: Vec<Node>,
}

/// Summary of one key, as `NtQueryKey(KeyFullInformation)` reports it. Lengths are in UTF-16
/// code units (characters), data lengths in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyInfo {
    /// The key's own name.
    pub name: String,
    /// Its class name.
    pub class: Option<String>,
    /// Last write time (FILETIME: 100 ns units since 1601).
    pub last_write: u64,
    /// Number of subkeys.
    pub subkeys: u32,
    /// Longest subkey name.
    pub max_subkey_name_len: u32,
    /// Longest subkey class name.
    pub max_class_len: u32,
    /// Number of values.
    pub values: u32,
    /// Longest value name.
    pub max_value_name_len: u32,
    /// Largest value data, in bytes.
    pub max_value_data_len: u32,
    /// A volatile key (never persisted).
    pub volatile: bool,
    /// A symbolic link key.
    pub link: bool,
}

/// One subkey as enumeration reports it (`KEY_BASIC_INFORMATION` plus the class).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubkeyInfo {
    /// The subkey's name, as created.
    pub name: String,
    /// Its class.
    pub class: Option<String>,
    /// Its last write time.
    pub last_write: u64,
}

fn u16len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

impl Tree {
    /// A tree holding only `\REGISTRY`.
    pub fn new(now: u64) -> Self {
        let root = Node { name: "REGISTRY".into(), upname: "REGISTRY".into(), last_write: now, ..Node::default() };
        Self { nodes: vec![root] }
    }

    /// The `\REGISTRY` key.
    pub fn root(&self) -> KeyId {
        KeyId(0)
    }

    pub(crate) fn node(&self, id: KeyId) -> &Node {
        &self.nodes[id.0 as usize]
    }

    pub(crate) fn node_mut(&mut self, id: KeyId) -> &mut Node {
        &mut self.nodes[id.0 as usize]
    }

    /// The hive a key belongs to (0 for master keys).
    pub fn hive_of(&self, id: KeyId) -> u32 {
        self.node(id).hive
    }

    /// True if the key has been deleted.
    pub fn is_deleted(&self, id: KeyId) -> bool {
        self.node(id).deleted
    }

    /// The subkey of `parent` with this name (case-insensitive).
    #[inline]
    pub fn child(&self, parent: KeyId, name: &str) -> Option<KeyId> {
        let children = &self.node(parent).children;
        if name.is_ascii() {
            // Checked once here rather than in every comparison, as `cmp_with_upcased` does.
            return self.child_ascii(parent, name.as_bytes());
        }
        children.binary_search_by(|(up, _)| cmp_with_upcased(name, up).reverse()).ok().map(|i| children[i].1)
    }

    /// [`Tree::child`] for a name the caller knows to be ASCII.
    #[inline]
    pub(crate) fn child_ascii(&self, parent: KeyId, name: &[u8]) -> Option<KeyId> {
        let children = &self.node(parent).children;
        children
            .binary_search_by(|(up, _)| cmp_ascii_with_upcased(name, up.as_bytes()).reverse())
            .ok()
            .map(|i| children[i].1)
    }

    /// Adds a subkey. The caller has checked the name and that it does not exist.
    pub(crate) fn insert_child(&mut self, parent: KeyId, name: &str, class: Option<String>, now: u64) -> KeyId {
        self.insert_named_child(parent, name.to_owned(), class, now)
    }

    /// [`Tree::insert_child`] taking the name's ownership (loading a hive: no copy).
    pub(crate) fn insert_named_child(&mut self, parent: KeyId, name: String, class: Option<String>, now: u64) -> KeyId {
        // An empty class is no class, as Windows stores it (class length 0).
        let class = class.filter(|c| !c.is_empty());
        let id = KeyId(self.nodes.len() as u64);
        let upname = upcase(&name);
        let p = self.node(parent);
        let node = Node {
            name,
            upname: upname.clone(),
            parent: Some(parent),
            class,
            last_write: now,
            volatile: p.volatile,
            system_only: p.system_only,
            security: p.security.clone(),
            hive: p.hive,
            ..Node::default()
        };
        self.nodes.push(node);
        let p = self.node_mut(parent);
        let pos = p.children.binary_search_by(|(up, _)| crate::name::cmp_upcased(up, &upname)).unwrap_or_else(|e| e);
        p.children.insert(pos, (upname.into_boxed_str(), id));
        p.last_write = now;
        id
    }

    /// Removes a key that has no subkeys. Its node stays, marked deleted.
    pub(crate) fn remove(&mut self, id: KeyId, now: u64) {
        let node = self.node_mut(id);
        node.deleted = true;
        node.values.clear();
        node.value_index = None;
        let parent = node.parent;
        let upname = node.upname.clone();
        if let Some(parent) = parent {
            let p = self.node_mut(parent);
            p.children.retain(|(up, _)| **up != *upname);
            p.last_write = now;
        }
    }

    /// Renames a key among its siblings. The caller has checked for a collision.
    pub(crate) fn rename(&mut self, id: KeyId, new_name: &str, now: u64) {
        let old_up = self.node(id).upname.clone();
        let new_up = upcase(new_name);
        {
            let node = self.node_mut(id);
            node.name = new_name.to_owned();
            node.upname = new_up.clone();
            node.last_write = now;
        }
        if let Some(parent) = self.node(id).parent {
            let p = self.node_mut(parent);
            p.children.retain(|(up, _)| **up != *old_up);
            let pos =
                p.children.binary_search_by(|(up, _)| crate::name::cmp_upcased(up, &new_up)).unwrap_or_else(|e| e);
            p.children.insert(pos, (new_up.into_boxed_str(), id));
            p.last_write = now;
        }
    }

    /// The value with this name.
    pub fn value(&self, id: KeyId, name: &str) -> Option<&Value> {
        let node = self.node(id);
        node.value_pos(name).map(|i| &node.values[i].value)
    }

    /// Sets a value; returns the old one.
    pub(crate) fn set_value(&mut self, id: KeyId, name: &str, value: Value, now: u64) -> Option<Value> {
        let node = self.node_mut(id);
        node.last_write = now;
        match node.value_pos(name) {
            Some(i) => Some(std::mem::replace(&mut node.values[i].value, value)),
            None => {
                node.push_value(name.to_owned(), value);
                None
            }
        }
    }

    /// Adds a value the caller has checked is not there yet (loading a hive: no copy).
    pub(crate) fn add_new_value(&mut self, id: KeyId, name: String, value: Value) {
        self.node_mut(id).push_value(name, value);
    }
}

impl Node {
    fn push_value(&mut self, name: String, value: Value) {
        let up = self.value_index.is_some().then(|| upcase(&name));
        self.values.push(ValueEntry { name, value });
        if let (Some(index), Some(up)) = (&mut self.value_index, up) {
            index.insert(up, self.values.len() - 1);
        } else if self.values.len() > VALUE_INDEX_THRESHOLD {
            self.rebuild_index();
        }
    }
}

impl Tree {
    /// Deletes a value; returns it.
    pub(crate) fn delete_value(&mut self, id: KeyId, name: &str, now: u64) -> Option<Value> {
        let node = self.node_mut(id);
        let i = node.value_pos(name)?;
        let entry = node.values.remove(i);
        node.last_write = now;
        if node.value_index.is_some() {
            node.rebuild_index();
        }
        Some(entry.value)
    }

    /// The subkey at this enumeration index.
    pub fn subkey_at(&self, id: KeyId, index: usize) -> Option<SubkeyInfo> {
        let child = self.node(id).children.get(index)?.1;
        let n = self.node(child);
        Some(SubkeyInfo { name: n.name.clone(), class: n.class.clone(), last_write: n.last_write })
    }

    /// The value at this enumeration index.
    pub fn value_at(&self, id: KeyId, index: usize) -> Option<(&str, &Value)> {
        self.node(id).values.get(index).map(|e| (e.name.as_str(), &e.value))
    }

    /// The ids of a key's subkeys, in enumeration order.
    pub fn children(&self, id: KeyId) -> impl Iterator<Item = KeyId> + '_ {
        self.node(id).children.iter().map(|(_, c)| *c)
    }

    /// The key's values, in enumeration order.
    pub fn values(&self, id: KeyId) -> impl Iterator<Item = (&str, &Value)> + '_ {
        self.node(id).values.iter().map(|e| (e.name.as_str(), &e.value))
    }

    /// The key's own name.
    pub fn name(&self, id: KeyId) -> &str {
        &self.node(id).name
    }

    /// The key's parent.
    pub fn parent(&self, id: KeyId) -> Option<KeyId> {
        self.node(id).parent
    }

    /// A key's name, class, time and kind, without counting its subkeys and values.
    pub(crate) fn info_header(&self, id: KeyId) -> KeyInfo {
        let n = self.node(id);
        KeyInfo {
            name: n.name.clone(),
            class: n.class.clone(),
            last_write: n.last_write,
            volatile: n.volatile,
            link: n.link,
            ..KeyInfo::default()
        }
    }

    /// Full information about a key.
    pub fn info(&self, id: KeyId) -> KeyInfo {
        let n = self.node(id);
        let mut info = KeyInfo {
            name: n.name.clone(),
            class: n.class.clone(),
            last_write: n.last_write,
            subkeys: n.children.len() as u32,
            values: n.values.len() as u32,
            volatile: n.volatile,
            link: n.link,
            ..KeyInfo::default()
        };
        for (_, c) in &n.children {
            let c = self.node(*c);
            info.max_subkey_name_len = info.max_subkey_name_len.max(u16len(&c.name));
            info.max_class_len = info.max_class_len.max(c.class.as_deref().map_or(0, u16len));
        }
        for e in &n.values {
            info.max_value_name_len = info.max_value_name_len.max(u16len(&e.name));
            info.max_value_data_len = info.max_value_data_len.max(e.value.data.len() as u32);
        }
        info
    }

    /// The key's full native path, `\REGISTRY\...`.
    pub fn path(&self, id: KeyId) -> String {
        // Measure first, so that neither allocation ever regrows.
        let (mut depth, mut len) = (0, 0);
        let mut cur = Some(id);
        while let Some(c) = cur {
            depth += 1;
            len += 1 + self.node(c).name.len();
            cur = self.node(c).parent;
        }
        let mut parts = Vec::with_capacity(depth);
        let mut cur = Some(id);
        while let Some(c) = cur {
            parts.push(self.node(c).name.as_str());
            cur = self.node(c).parent;
        }
        let mut out = String::with_capacity(len);
        for p in parts.iter().rev() {
            out.push('\\');
            out.push_str(p);
        }
        out
    }

    /// The key's depth below `\REGISTRY`.
    pub fn depth(&self, id: KeyId) -> usize {
        let mut d = 0;
        let mut cur = self.node(id).parent;
        while let Some(c) = cur {
            d += 1;
            cur = self.node(c).parent;
        }
        d
    }

    /// True if `id` is `ancestor` or below it.
    pub fn is_within(&self, id: KeyId, ancestor: KeyId) -> bool {
        let mut cur = Some(id);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.node(c).parent;
        }
        false
    }

    /// Number of key ids handed out (live and deleted).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True if the tree has no key at all (never: the root always exists).
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Number of live keys.
    pub fn live_keys(&self) -> usize {
        self.nodes.iter().filter(|n| !n.deleted).count()
    }
}
