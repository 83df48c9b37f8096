//! A property test: random operation sequences on a fresh in-memory registry, compared result
//! by result (statuses and returned data) with a reference model.
//!
//! The model is deliberately naive: a `BTreeMap` from the upcased path (below the test root) to
//! the key's data, handles that name a key by a stable id, and linear scans everywhere. Names
//! come from a small alphabet of case variants (`a`/`A`, `aB`/`Ab`, `é`/`É`, ...) so that
//! case-insensitive matching, case-preserving storage and upcased ordering are exercised
//! constantly; value names include a numbered family so that keys grow past the point where
//! the tree indexes their values.

use crate::common::user;
use hivebox_core::access::*;
use hivebox_core::fresh::fresh_image;
use hivebox_core::{
    Clock, CreateOptions, Disposition, Handle, KeyImage, KeyInfo, Mutation, NtStatus, OpenOptions, Registry,
    RegistryOptions, Storage, StorageError, SubkeyInfo, Tree, Value,
};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

const PARENT: &str = r"\REGISTRY\MACHINE\SOFTWARE";
const ROOT_NAME: &str = "ModelRoot";
/// The other subkeys of `SOFTWARE` in a fresh registry (a renamed root may collide with them).
const SOFTWARE_SIBLINGS: [&str; 3] = ["Classes", "Microsoft", "Policies"];
const KEY_NAMES: &[&str] = &["a", "A", "b", "B", "ab", "aB", "Ab", "AB", "é", "É", "a_", "A1"];
const VALUE_NAMES: &[&str] = &["", "v", "V", "w", "W", "vw", "Vw", "vW", "é", "É"];
const SLOTS: usize = 4;

/// A clock the test sets before each operation; every reading returns the set time.
#[derive(Debug)]
struct StepClock(AtomicU64);

impl Clock for StepClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone, Debug)]
enum Op {
    CreatePath { slot: usize, path: Vec<&'static str>, volatile: bool },
    Open { slot: usize, path: Vec<&'static str>, read_only: bool },
    Close { slot: usize },
    DeleteKey { slot: usize },
    SetValue { slot: usize, name: String, value: Value },
    SetMany { slot: usize, count: u8, upper: bool },
    DeleteValue { slot: usize, name: String },
    QueryValue { slot: usize, name: String },
    RenameKey { slot: usize, new_name: &'static str },
    EnumerateKey { slot: usize, index: u32 },
    EnumerateValue { slot: usize, index: u32 },
    QueryKey { slot: usize },
    QueryKeyName { slot: usize },
}

impl Op {
    fn slot(&self) -> usize {
        match self {
            Op::CreatePath { slot, .. }
            | Op::Open { slot, .. }
            | Op::Close { slot }
            | Op::DeleteKey { slot }
            | Op::SetValue { slot, .. }
            | Op::SetMany { slot, .. }
            | Op::DeleteValue { slot, .. }
            | Op::QueryValue { slot, .. }
            | Op::RenameKey { slot, .. }
            | Op::EnumerateKey { slot, .. }
            | Op::EnumerateValue { slot, .. }
            | Op::QueryKey { slot }
            | Op::QueryKeyName { slot } => *slot,
        }
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq)]
enum Obs {
    Done,
    Value(Value),
    Subkey(SubkeyInfo),
    NamedValue(String, Value),
    Info(KeyInfo),
    Name(String),
}

type Res = Result<Obs, NtStatus>;

fn key_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(KEY_NAMES)
}

fn key_path(min: usize) -> impl Strategy<Value = Vec<&'static str>> {
    prop::collection::vec(key_name(), min..=3)
}

fn value_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUE_NAMES).prop_map(String::from),
        1 => (0u8..24, any::<bool>()).prop_map(|(i, upper)| format!("{}{i}", if upper { 'M' } else { 'm' })),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u32>().prop_map(Value::dword),
        "[a-zé]{0,6}".prop_map(|s| Value::sz(&s)),
        prop::collection::vec(any::<u8>(), 0..12).prop_map(|b| Value::binary(&b)),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let slot = || 0..SLOTS;
    prop_oneof![
        4 => (slot(), key_path(1), prop::bool::weighted(0.2))
            .prop_map(|(slot, path, volatile)| Op::CreatePath { slot, path, volatile }),
        3 => (slot(), key_path(0), prop::bool::weighted(0.3))
            .prop_map(|(slot, path, read_only)| Op::Open { slot, path, read_only }),
        1 => slot().prop_map(|slot| Op::Close { slot }),
        2 => slot().prop_map(|slot| Op::DeleteKey { slot }),
        4 => (slot(), value_name(), value()).prop_map(|(slot, name, value)| Op::SetValue { slot, name, value }),
        1 => (slot(), 0u8..24, any::<bool>()).prop_map(|(slot, count, upper)| Op::SetMany { slot, count, upper }),
        2 => (slot(), value_name()).prop_map(|(slot, name)| Op::DeleteValue { slot, name }),
        2 => (slot(), value_name()).prop_map(|(slot, name)| Op::QueryValue { slot, name }),
        2 => (slot(), key_name()).prop_map(|(slot, new_name)| Op::RenameKey { slot, new_name }),
        2 => (slot(), 0u32..5).prop_map(|(slot, index)| Op::EnumerateKey { slot, index }),
        2 => (slot(), 0u32..20).prop_map(|(slot, index)| Op::EnumerateValue { slot, index }),
        2 => slot().prop_map(|slot| Op::QueryKey { slot }),
        1 => slot().prop_map(|slot| Op::QueryKeyName { slot }),
    ]
}

// ---------------------------------------------------------------------------------------------
// The reference model.

#[derive(Clone, Debug)]
struct MKey {
    id: u64,
    name: String,
    values: Vec<(String, Value)>,
    last_write: u64,
    volatile: bool,
}

#[derive(Clone, Copy, Debug)]
struct MHandle {
    id: u64,
    access: u32,
}

#[derive(Debug)]
struct Model {
    /// The root's own name (it can be renamed).
    root_name: String,
    /// Upcased path below the root (`""` is the root itself) -> key.
    keys: BTreeMap<String, MKey>,
    next_id: u64,
}

/// Registry names compare by their upcased form; the alphabet only has one-to-one case pairs.
fn up(name: &str) -> String {
    name.to_uppercase()
}

fn join(parent: &str, up_name: &str) -> String {
    if parent.is_empty() { up_name.to_owned() } else { format!("{parent}\\{up_name}") }
}

fn parent_of(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    Some(path.rsplit_once('\\').map_or("", |(p, _)| p))
}

fn u16len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

impl Model {
    fn new(now: u64) -> Self {
        let root = MKey { id: 0, name: ROOT_NAME.into(), values: Vec::new(), last_write: now, volatile: false };
        Self { root_name: ROOT_NAME.into(), keys: BTreeMap::from([(String::new(), root)]), next_id: 1 }
    }

    fn path_of(&self, id: u64) -> Option<String> {
        self.keys.iter().find(|(_, k)| k.id == id).map(|(p, _)| p.clone())
    }

    /// The key behind a handle, checking the handle's access first as the object manager does.
    fn key_for(&self, h: &MHandle, need: u32) -> Result<String, NtStatus> {
        if h.access & need != need {
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        self.path_of(h.id).ok_or(NtStatus::STATUS_KEY_DELETED)
    }

    fn children(&self, path: &str) -> Vec<(String, &MKey)> {
        let prefix = if path.is_empty() { String::new() } else { format!("{path}\\") };
        let mut out: Vec<(String, &MKey)> = self
            .keys
            .iter()
            .filter_map(|(k, v)| {
                let rest = k.strip_prefix(&prefix)?;
                (!rest.is_empty() && !rest.contains('\\') && k != path).then(|| (rest.to_owned(), v))
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn full_name(&self, path: &str) -> String {
        let mut out = format!("{PARENT}\\{}", self.root_name);
        let mut cur = String::new();
        for comp in path.split('\\').filter(|c| !c.is_empty()) {
            cur = join(&cur, comp);
            out.push('\\');
            out.push_str(&self.keys[&cur].name);
        }
        out
    }

    fn touch(&mut self, path: &str, now: u64) {
        if let Some(k) = self.keys.get_mut(path) {
            k.last_write = now;
        }
    }

    fn create_path(
        &mut self,
        base: &MHandle,
        path: &[&str],
        volatile: bool,
        now: u64,
    ) -> Result<(MHandle, Disposition), NtStatus> {
        let mut cur = self.path_of(base.id).ok_or(NtStatus::STATUS_KEY_DELETED)?;
        let mut disposition = Disposition::OpenedExistingKey;
        for comp in path {
            let child = join(&cur, &up(comp));
            if self.keys.contains_key(&child) {
                disposition = Disposition::OpenedExistingKey;
            } else {
                if self.keys[&cur].volatile && !volatile {
                    return Err(NtStatus::STATUS_CHILD_MUST_BE_VOLATILE);
                }
                let id = self.next_id;
                self.next_id += 1;
                let key = MKey { id, name: (*comp).to_owned(), values: Vec::new(), last_write: now, volatile };
                self.keys.insert(child.clone(), key);
                self.touch(&cur, now);
                disposition = Disposition::CreatedNewKey;
            }
            cur = child;
        }
        Ok((MHandle { id: self.keys[&cur].id, access: KEY_ALL_ACCESS }, disposition))
    }

    fn open(&self, base: &MHandle, path: &[&str], access: u32) -> Result<MHandle, NtStatus> {
        let mut cur = self.path_of(base.id).ok_or(NtStatus::STATUS_KEY_DELETED)?;
        for comp in path {
            cur = join(&cur, &up(comp));
            if !self.keys.contains_key(&cur) {
                return Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
            }
        }
        Ok(MHandle { id: self.keys[&cur].id, access })
    }

    fn delete_key(&mut self, h: &MHandle, now: u64) -> Res {
        let path = self.key_for(h, DELETE)?;
        if !self.children(&path).is_empty() {
            return Err(NtStatus::STATUS_CANNOT_DELETE);
        }
        self.keys.remove(&path);
        if let Some(parent) = parent_of(&path) {
            self.touch(parent, now);
        }
        Ok(Obs::Done)
    }

    fn set_value(&mut self, h: &MHandle, name: &str, value: &Value, now: u64) -> Res {
        let path = self.key_for(h, KEY_SET_VALUE)?;
        let key = self.keys.get_mut(&path).expect("live");
        match key.values.iter_mut().find(|(n, _)| up(n) == up(name)) {
            Some(slot) => slot.1 = value.clone(),
            None => key.values.push((name.to_owned(), value.clone())),
        }
        key.last_write = now;
        Ok(Obs::Done)
    }

    fn delete_value(&mut self, h: &MHandle, name: &str, now: u64) -> Res {
        let path = self.key_for(h, KEY_SET_VALUE)?;
        let key = self.keys.get_mut(&path).expect("live");
        let pos =
            key.values.iter().position(|(n, _)| up(n) == up(name)).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
        key.values.remove(pos);
        key.last_write = now;
        Ok(Obs::Done)
    }

    fn query_value(&self, h: &MHandle, name: &str) -> Res {
        let path = self.key_for(h, KEY_QUERY_VALUE)?;
        let key = &self.keys[&path];
        key.values
            .iter()
            .find(|(n, _)| up(n) == up(name))
            .map(|(_, v)| Obs::Value(v.clone()))
            .ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)
    }

    fn rename(&mut self, h: &MHandle, new_name: &str, now: u64) -> Res {
        let path = self.key_for(h, KEY_SET_VALUE | KEY_CREATE_SUB_KEY)?;
        match parent_of(&path) {
            None => {
                // The root: its siblings are SOFTWARE's other subkeys.
                if SOFTWARE_SIBLINGS.iter().any(|s| up(s) == up(new_name)) {
                    return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
                }
                self.root_name = new_name.to_owned();
                let root = self.keys.get_mut("").expect("live");
                root.name = new_name.to_owned();
                root.last_write = now;
            }
            Some(parent) => {
                let parent = parent.to_owned();
                let new_path = join(&parent, &up(new_name));
                if new_path != path && self.keys.contains_key(&new_path) {
                    return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
                }
                let moved: Vec<String> =
                    self.keys.keys().filter(|k| **k == path || k.starts_with(&format!("{path}\\"))).cloned().collect();
                for old in moved {
                    let key = self.keys.remove(&old).expect("listed");
                    self.keys.insert(format!("{new_path}{}", &old[path.len()..]), key);
                }
                let key = self.keys.get_mut(&new_path).expect("moved");
                key.name = new_name.to_owned();
                key.last_write = now;
                self.touch(&parent, now);
            }
        }
        Ok(Obs::Done)
    }

    fn enumerate_key(&self, h: &MHandle, index: u32) -> Res {
        let path = self.key_for(h, KEY_ENUMERATE_SUB_KEYS)?;
        let children = self.children(&path);
        let (_, k) = children.get(index as usize).ok_or(NtStatus::STATUS_NO_MORE_ENTRIES)?;
        Ok(Obs::Subkey(SubkeyInfo { name: k.name.clone(), class: None, last_write: k.last_write }))
    }

    fn enumerate_value(&self, h: &MHandle, index: u32) -> Res {
        let path = self.key_for(h, KEY_QUERY_VALUE)?;
        let (n, v) = self.keys[&path].values.get(index as usize).ok_or(NtStatus::STATUS_NO_MORE_ENTRIES)?;
        Ok(Obs::NamedValue(n.clone(), v.clone()))
    }

    fn query_key(&self, h: &MHandle) -> Res {
        let path = self.key_for(h, KEY_QUERY_VALUE)?;
        let key = &self.keys[&path];
        let children = self.children(&path);
        Ok(Obs::Info(KeyInfo {
            name: key.name.clone(),
            class: None,
            last_write: key.last_write,
            subkeys: children.len() as u32,
            max_subkey_name_len: children.iter().map(|(_, k)| u16len(&k.name)).max().unwrap_or(0),
            max_class_len: 0,
            values: key.values.len() as u32,
            max_value_name_len: key.values.iter().map(|(n, _)| u16len(n)).max().unwrap_or(0),
            max_value_data_len: key.values.iter().map(|(_, v)| v.data.len() as u32).max().unwrap_or(0),
            volatile: key.volatile,
            link: false,
        }))
    }

    fn query_key_name(&self, h: &MHandle) -> Res {
        let path = self.key_for(h, 0)?;
        Ok(Obs::Name(self.full_name(&path)))
    }

    /// What `Registry::image` should hold for the root: persistent keys only.
    fn image(&self, path: &str) -> KeyImage {
        let key = &self.keys[path];
        KeyImage {
            name: key.name.clone(),
            class: None,
            last_write: key.last_write,
            link: false,
            system_only: 0,
            security: None,
            values: key.values.clone(),
            subkeys: self
                .children(path)
                .into_iter()
                .filter(|(_, k)| !k.volatile)
                .map(|(name, _)| self.image(&join(path, &name)))
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The run.

fn done<T>(r: Result<T, NtStatus>) -> Res {
    r.map(|_| Obs::Done)
}

/// A store that keeps the mutations it is handed, to replay them afterwards.
#[derive(Debug, Default, Clone)]
struct Recording(Arc<Mutex<Vec<Mutation>>>);

impl Storage for Recording {
    fn append(&mut self, mutation: &Mutation) -> Result<(), StorageError> {
        self.0.lock().unwrap().push(mutation.clone());
        Ok(())
    }

    fn flush(&mut self, _: &dyn Fn() -> KeyImage) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The first difference between two images, as `path: what`.
fn image_diff(a: &KeyImage, b: &KeyImage, parent: &str) -> Option<String> {
    let path = format!("{parent}\\{}", a.name);
    if (&a.name, &a.class, a.last_write, a.link, a.system_only, &a.values)
        != (&b.name, &b.class, b.last_write, b.link, b.system_only, &b.values)
    {
        let show = |k: &KeyImage| format!("{:?}", (&k.name, &k.class, k.last_write, k.link, k.system_only, &k.values));
        return Some(format!("{path}: {} != {}", show(a), show(b)));
    }
    let names = |k: &KeyImage| k.subkeys.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    if names(a) != names(b) {
        return Some(format!("{path}: subkeys {:?} != {:?}", names(a), names(b)));
    }
    a.subkeys.iter().zip(&b.subkeys).find_map(|(x, y)| image_diff(x, y, &path))
}

fn run(ops: &[Op]) -> Result<(), TestCaseError> {
    let clock = Arc::new(StepClock(AtomicU64::new(1)));
    let log = Recording::default();
    let reg = Registry::new(&fresh_image(1), Box::new(log.clone()), clock.clone(), RegistryOptions::default()).unwrap();
    let initial = reg.image();
    let me = user();
    let (base, _) = reg.create_key(&me, None, &format!("{PARENT}\\{ROOT_NAME}"), &CreateOptions::default()).unwrap();
    let mut model = Model::new(1);
    let model_base = MHandle { id: 0, access: KEY_ALL_ACCESS };
    let mut slots: [Option<(Handle, MHandle)>; SLOTS] = [None; SLOTS];

    for (i, op) in ops.iter().enumerate() {
        let now = 1_000 * (i as u64 + 1);
        clock.0.store(now, Ordering::SeqCst);
        let ctx = || format!("op #{i}: {op:?}");
        let slot = op.slot();
        match op {
            Op::CreatePath { path, volatile, .. } => {
                let opts = CreateOptions {
                    options: if *volatile { REG_OPTION_VOLATILE } else { 0 },
                    ..CreateOptions::default()
                };
                let real = reg.create_key_path(&me, Some(base), &path.join("\\"), &opts);
                let expected = model.create_path(&model_base, path, *volatile, now);
                prop_assert_eq!(real.map(|(_, d)| d), expected.map(|(_, d)| d), "{}", ctx());
                if let (Ok((h, _)), Ok((mh, _))) = (real, expected)
                    && let Some((old, _)) = slots[slot].replace((h, mh))
                {
                    reg.close_key(&me, old).unwrap();
                }
            }
            Op::Open { path, read_only, .. } => {
                let access = if *read_only { KEY_READ } else { KEY_ALL_ACCESS };
                let real = reg.open_key(&me, Some(base), &path.join("\\"), &OpenOptions::access(access));
                let expected = model.open(&model_base, path, access);
                prop_assert_eq!(real.map(|_| ()), expected.map(|_| ()), "{}", ctx());
                if let (Ok(h), Ok(mh)) = (real, expected)
                    && let Some((old, _)) = slots[slot].replace((h, mh))
                {
                    reg.close_key(&me, old).unwrap();
                }
            }
            _ => {
                let Some((h, mh)) = slots[slot] else { continue };
                match op {
                    Op::CreatePath { .. } | Op::Open { .. } => unreachable!(),
                    Op::Close { .. } => {
                        prop_assert_eq!(reg.close_key(&me, h), Ok(()), "{}", ctx());
                        slots[slot] = None;
                    }
                    Op::DeleteKey { .. } => {
                        prop_assert_eq!(done(reg.delete_key(&me, h)), model.delete_key(&mh, now), "{}", ctx());
                    }
                    Op::SetValue { name, value, .. } => {
                        let real = done(reg.set_value(&me, h, name, value.clone()));
                        prop_assert_eq!(real, model.set_value(&mh, name, value, now), "{}", ctx());
                    }
                    Op::SetMany { count, upper, .. } => {
                        for n in 0..*count {
                            let name = format!("{}{n}", if *upper { 'M' } else { 'm' });
                            let value = Value::dword(u32::from(n) + 1000);
                            let real = done(reg.set_value(&me, h, &name, value.clone()));
                            prop_assert_eq!(real, model.set_value(&mh, &name, &value, now), "{} ({})", ctx(), name);
                        }
                    }
                    Op::DeleteValue { name, .. } => {
                        let real = done(reg.delete_value(&me, h, name));
                        prop_assert_eq!(real, model.delete_value(&mh, name, now), "{}", ctx());
                    }
                    Op::QueryValue { name, .. } => {
                        let real = reg.query_value(&me, h, name).map(Obs::Value);
                        prop_assert_eq!(real, model.query_value(&mh, name), "{}", ctx());
                    }
                    Op::RenameKey { new_name, .. } => {
                        let real = done(reg.rename_key(&me, h, new_name));
                        prop_assert_eq!(real, model.rename(&mh, new_name, now), "{}", ctx());
                    }
                    Op::EnumerateKey { index, .. } => {
                        let real = reg.enumerate_key(&me, h, *index).map(Obs::Subkey);
                        prop_assert_eq!(real, model.enumerate_key(&mh, *index), "{}", ctx());
                    }
                    Op::EnumerateValue { index, .. } => {
                        let real = reg.enumerate_value(&me, h, *index).map(|(n, v)| Obs::NamedValue(n, v));
                        prop_assert_eq!(real, model.enumerate_value(&mh, *index), "{}", ctx());
                    }
                    Op::QueryKey { .. } => {
                        let real = reg.query_key(&me, h).map(Obs::Info);
                        prop_assert_eq!(real, model.query_key(&mh), "{}", ctx());
                    }
                    Op::QueryKeyName { .. } => {
                        let real = reg.query_key_name(&me, h).map(Obs::Name);
                        prop_assert_eq!(real, model.query_key_name(&mh), "{}", ctx());
                    }
                }
            }
        }
    }

    // The persistent image holds exactly the model's non-volatile keys.
    let image = reg.image();
    let software = image
        .subkeys
        .iter()
        .find(|k| k.name == "MACHINE")
        .and_then(|m| m.subkeys.iter().find(|k| k.name == "SOFTWARE"))
        .expect("SOFTWARE exists");
    let real_root = software.subkeys.iter().find(|k| !SOFTWARE_SIBLINGS.contains(&k.name.as_str()));
    let expected_root = model.keys.contains_key("").then(|| model.image(""));
    let diff = match (real_root, &expected_root) {
        (Some(real), Some(expected)) => image_diff(real, expected, PARENT),
        (None, None) => None,
        (real, expected) => Some(format!("root present: {} != {}", real.is_some(), expected.is_some())),
    };
    prop_assert_eq!(diff, None, "final image");

    // The store got every persistent change: the initial image plus the log replays to the
    // registry's image, and an image loads back to itself.
    let mut replayed = Tree::from_image(&initial).unwrap();
    for m in log.0.lock().unwrap().iter() {
        replayed.replay(m).map_err(|e| TestCaseError::fail(format!("replay of {m:?}: {e}")))?;
    }
    prop_assert_eq!(image_diff(&replayed.image(), &image, ""), None, "log replay");
    prop_assert_eq!(image_diff(&Tree::from_image(&image).unwrap().image(), &image, ""), None, "image round trip");

    // Everything is closed cleanly.
    for (h, _) in slots.into_iter().flatten() {
        prop_assert_eq!(reg.close_key(&me, h), Ok(()));
    }
    prop_assert_eq!(reg.close_key(&me, base), Ok(()));
    prop_assert_eq!(reg.open_handles(), 0);
    Ok(())
}

proptest! {
    // 512 cases unless PROPTEST_CASES says otherwise (for longer hunts).
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn registry_matches_the_model(ops in prop::collection::vec(op(), 1..80)) {
        run(&ops)?;
    }
}

/// A few fixed sequences that once mattered, run every time.
#[test]
fn model_regressions() {
    let seqs: Vec<Vec<Op>> = vec![
        vec![
            Op::CreatePath { slot: 0, path: vec!["a", "B"], volatile: false },
            Op::Open { slot: 1, path: vec!["A"], read_only: false },
            Op::RenameKey { slot: 1, new_name: "AB" },
            Op::QueryKeyName { slot: 0 },
            Op::RenameKey { slot: 1, new_name: "ab" },
            Op::EnumerateKey { slot: 1, index: 0 },
            Op::DeleteKey { slot: 1 },
            Op::DeleteKey { slot: 0 },
            Op::DeleteKey { slot: 1 },
            Op::QueryKey { slot: 0 },
        ],
        vec![
            Op::CreatePath { slot: 0, path: vec!["é"], volatile: true },
            Op::CreatePath { slot: 1, path: vec!["É", "a"], volatile: false },
            Op::CreatePath { slot: 1, path: vec!["É", "a"], volatile: true },
            Op::SetMany { slot: 0, count: 20, upper: false },
            Op::SetMany { slot: 0, count: 18, upper: true },
            Op::DeleteValue { slot: 0, name: "M3".into() },
            Op::EnumerateValue { slot: 0, index: 3 },
            Op::QueryValue { slot: 0, name: "m19".into() },
            Op::QueryKey { slot: 0 },
        ],
    ];
    for ops in seqs {
        run(&ops).unwrap();
    }
}
