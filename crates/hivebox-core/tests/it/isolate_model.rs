//! Random operation sequences of a boxed caller against a reference model: the registry the
//! box should see (the base with the box's operations applied to a copy of it). After every
//! operation every key of the universe is compared: existence, values, subkeys, and the key
//! information's counts; at the end the host's registry must equal the base untouched.

use super::isolate::{APP, Boxed, setup};
use hivebox_core::access::*;
use hivebox_core::{Caller, CreateOptions, NtStatus, OpenOptions, Value};
use proptest::prelude::*;
use std::collections::BTreeMap;

const NAMES: [&str; 3] = ["a", "b", "c"];
const VALUES: [&str; 3] = ["x", "y", "z"];

type Path = Vec<String>;
/// Key path (below App) → values.
type Model = BTreeMap<Path, BTreeMap<String, u32>>;

/// Every key path the operations pick from: App, App\n, App\n\m.
fn universe() -> Vec<Path> {
    let mut out = vec![Vec::new()];
    for a in NAMES {
        out.push(vec![a.to_owned()]);
        for b in NAMES {
            out.push(vec![a.to_owned(), b.to_owned()]);
        }
    }
    out
}

fn native(p: &[String]) -> String {
    let mut s = APP.to_owned();
    for c in p {
        s.push('\\');
        s.push_str(c);
    }
    s
}

#[derive(Debug, Clone)]
enum Op {
    Set(usize, usize, u32),
    DeleteValue(usize, usize),
    Create(usize),
    CreatePath(usize),
    DeleteKey(usize),
    Rename(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let k = 0..13usize;
    prop_oneof![
        4 => (k.clone(), 0..3usize, any::<u32>()).prop_map(|(k, n, v)| Op::Set(k, n, v)),
        2 => (k.clone(), 0..3usize).prop_map(|(k, n)| Op::DeleteValue(k, n)),
        2 => k.clone().prop_map(Op::Create),
        1 => k.clone().prop_map(Op::CreatePath),
        2 => k.clone().prop_map(Op::DeleteKey),
        1 => (1..13usize, 0..3usize).prop_map(|(k, n)| Op::Rename(k, n)),
    ]
}

/// A base: some keys of the universe (with their parents) with some values.
fn base() -> impl Strategy<Value = Model> {
    prop::collection::vec((0..13usize, prop::option::of((0..3usize, any::<u32>()))), 0..12).prop_map(|picks| {
        let u = universe();
        let mut m = Model::new();
        m.insert(Vec::new(), BTreeMap::new());
        for (k, v) in picks {
            let p = &u[k];
            for depth in 0..=p.len() {
                m.entry(p[..depth].to_vec()).or_default();
            }
            if let Some((n, v)) = v {
                m.get_mut(p).unwrap().insert(VALUES[n].to_owned(), v);
            }
        }
        m
    })
}

fn children(m: &Model, p: &[String]) -> Vec<String> {
    m.keys().filter(|k| k.len() == p.len() + 1 && k.starts_with(p)).map(|k| k[p.len()].clone()).collect()
}

/// Applies an operation to the model; returns the status the registry must give.
fn apply(m: &mut Model, op: &Op) -> NtStatus {
    let u = universe();
    let ok = NtStatus::STATUS_SUCCESS;
    let missing = NtStatus::STATUS_OBJECT_NAME_NOT_FOUND;
    match *op {
        Op::Set(k, n, v) => match m.get_mut(&u[k]) {
            Some(vals) => {
                vals.insert(VALUES[n].to_owned(), v);
                ok
            }
            None => missing,
        },
        Op::DeleteValue(k, n) => match m.get_mut(&u[k]) {
            Some(vals) => {
                if vals.remove(VALUES[n]).is_some() {
                    ok
                } else {
                    missing
                }
            }
            None => missing,
        },
        Op::Create(k) => {
            let p = &u[k];
            if m.contains_key(p) {
                return ok;
            }
            if p.is_empty() || !m.contains_key(&p[..p.len() - 1]) {
                return missing;
            }
            m.insert(p.clone(), BTreeMap::new());
            ok
        }
        Op::CreatePath(k) => {
            let p = &u[k];
            for depth in 0..=p.len() {
                m.entry(p[..depth].to_vec()).or_default();
            }
            ok
        }
        Op::DeleteKey(k) => {
            let p = &u[k];
            if !m.contains_key(p) {
                return missing;
            }
            if !children(m, p).is_empty() {
                return NtStatus::STATUS_CANNOT_DELETE;
            }
            if !p.is_empty() {
                // App itself stays (see `perform`).
                m.remove(p);
            }
            ok
        }
        Op::Rename(k, n) => {
            let p = &u[k];
            if !m.contains_key(p) {
                return missing;
            }
            let mut to = p.clone();
            *to.last_mut().unwrap() = NAMES[n].to_owned();
            if to == *p {
                return ok;
            }
            if m.contains_key(&to) {
                return NtStatus::STATUS_OBJECT_NAME_COLLISION;
            }
            let moved: Vec<(Path, BTreeMap<String, u32>)> =
                m.iter().filter(|(k, _)| k.starts_with(p)).map(|(k, v)| (k.clone(), v.clone())).collect();
            for (k, v) in moved {
                m.remove(&k);
                let mut nk = to.clone();
                nk.extend_from_slice(&k[p.len()..]);
                m.insert(nk, v);
            }
            ok
        }
    }
}

fn status<T>(r: Result<T, NtStatus>) -> NtStatus {
    r.err().unwrap_or(NtStatus::STATUS_SUCCESS)
}

/// Performs an operation as the boxed caller.
fn perform(b: &Boxed, op: &Op) -> NtStatus {
    let u = universe();
    let c = &b.boxed;
    let open = |p: &[String]| b.reg.open_key(c, None, &native(p), &OpenOptions::access(KEY_ALL_ACCESS));
    let close = |h| b.reg.close_key(c, h).unwrap();
    let with = |p: &[String], f: &dyn Fn(hivebox_core::Handle) -> NtStatus| match open(p) {
        Ok(h) => {
            let s = f(h);
            close(h);
            s
        }
        Err(s) => s,
    };
    match *op {
        Op::Set(k, n, v) => with(&u[k], &|h| status(b.reg.set_value(c, h, VALUES[n], Value::dword(v)))),
        Op::DeleteValue(k, n) => with(&u[k], &|h| status(b.reg.delete_value(c, h, VALUES[n]))),
        Op::Create(k) => {
            let p = &u[k];
            if p.is_empty() {
                return with(p, &|_| NtStatus::STATUS_SUCCESS);
            }
            with(&p[..p.len() - 1], &|h| match b.reg.create_key(c, Some(h), &p[p.len() - 1], &CreateOptions::default())
            {
                Ok((k, _)) => {
                    close(k);
                    NtStatus::STATUS_SUCCESS
                }
                Err(s) => s,
            })
        }
        Op::CreatePath(k) => match b.reg.create_key_path(c, None, &native(&u[k]), &CreateOptions::default()) {
            Ok((h, _)) => {
                close(h);
                NtStatus::STATUS_SUCCESS
            }
            Err(s) => s,
        },
        Op::DeleteKey(k) => {
            if u[k].is_empty() {
                // App itself: its parent is outside the universe; keep it.
                return with(&u[k], &|h| {
                    if b.subkeys(c, h).is_empty() { NtStatus::STATUS_SUCCESS } else { NtStatus::STATUS_CANNOT_DELETE }
                });
            }
            with(&u[k], &|h| status(b.reg.delete_key(c, h)))
        }
        Op::Rename(k, n) => with(&u[k], &|h| status(b.reg.rename_key(c, h, NAMES[n]))),
    }
}

/// What a caller sees of the universe, as a model.
fn observe(b: &Boxed, c: &Caller) -> Model {
    let mut m = Model::new();
    for p in universe() {
        let Ok(h) = b.reg.open_key(c, None, &native(&p), &OpenOptions::access(KEY_READ)) else { continue };
        let values: BTreeMap<String, u32> =
            b.values(c, h).into_iter().map(|(n, v)| (n, u32::from_le_bytes(v.data[..4].try_into().unwrap()))).collect();
        for name in VALUES {
            let q = b.reg.query_value(c, h, name).ok().map(|v| u32::from_le_bytes(v.data[..4].try_into().unwrap()));
            assert_eq!(q, values.get(name).copied(), "{p:?}: query of {name} disagrees with the enumeration");
        }
        let subs = b.subkeys(c, h);
        let info = b.reg.query_key(c, h).unwrap();
        assert_eq!((info.subkeys as usize, info.values as usize), (subs.len(), values.len()), "{p:?}: counts");
        let mut sorted = subs.clone();
        sorted.sort_by_key(|s| s.to_uppercase());
        assert_eq!(subs, sorted, "{p:?}: subkeys in the registry's order");
        m.insert(p.clone(), values);
        b.reg.close_key(c, h).unwrap();
    }
    m
}

/// Only the universe's keys (the model may hold renamed keys elsewhere... it cannot: renames
/// stay among the universe's names).
fn in_universe(m: &Model) -> Model {
    let u = universe();
    m.iter().filter(|(k, _)| u.contains(k)).map(|(k, v)| (k.clone(), v.clone())).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_box_sees_what_its_operations_would_make_of_a_copy_of_the_base(
        base in base(),
        ops in prop::collection::vec(op(), 1..30),
    ) {
        let b = setup();
        // Replace the setup's App content with this base.
        let host = b.host.clone();
        let h = b.reg.open_key(&host, None, APP, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
        for v in ["a", "b"] { b.reg.delete_value(&host, h, v).unwrap(); }
        for k in ["One", "Two"] {
            let s = b.reg.open_key(&host, Some(h), k, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
            b.reg.delete_key(&host, s).unwrap();
            b.reg.close_key(&host, s).unwrap();
        }
        b.reg.close_key(&host, h).unwrap();
        for (p, vals) in &base {
            let (h, _) = b.reg.create_key_path(&host, None, &native(p), &CreateOptions::default()).unwrap();
            for (n, v) in vals { b.reg.set_value(&host, h, n, Value::dword(*v)).unwrap(); }
            b.reg.close_key(&host, h).unwrap();
        }
        let host_before = observe(&b, &host);
        prop_assert_eq!(&host_before, &base);
        let mut model = base.clone();
        for (i, op) in ops.iter().enumerate() {
            let want = apply(&mut model, op);
            let got = perform(&b, op);
            prop_assert_eq!(got, want, "op {} {:?}", i, op);
            prop_assert_eq!(observe(&b, &b.boxed), in_universe(&model), "after op {} {:?}", i, op);
        }
        prop_assert_eq!(observe(&b, &host), host_before, "the host is unchanged");
    }
}
