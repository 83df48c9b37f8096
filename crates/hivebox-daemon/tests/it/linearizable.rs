//! 64 client processes, each doing 2,000 mixed operations on shared values, every operation
//! timed on the system-wide monotonic clock; then each value's history is checked: every read
//! returns a write that could be the latest one at some instant within the read (no stale,
//! phantom or lost write), and reads never go back in time relative to each other.

use super::*;
use hivebox_core::access::{KEY_ALL_ACCESS, KEY_READ};
use hivebox_core::{NtStatus, Value};
use hivebox_proto::{HKEY_LOCAL_MACHINE, Reply, Request};
use rustc_hash::FxHashMap;

const CLIENTS: usize = 64;
const OPS: usize = 2000;
const KEYS: usize = 8;
const PATH: &str = r"SOFTWARE\linearizable";

fn now_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// A small deterministic generator (each client its own seed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn call(c: &mut Connection, r: Request) -> Reply {
    c.call(&r).unwrap()
}

/// Client side: `client ops`; prints one `@` line per timed operation:
/// `S key value inv resp`, `D key id inv resp`, `Q key value|- inv resp`.
pub fn child_worker(socket: &Path, args: &[String]) {
    let client: usize = args[0].parse().unwrap();
    let ops: usize = args[1].parse().unwrap();
    let mut c = Connection::connect(socket).unwrap();
    let Reply::Handle(h) = call(
        &mut c,
        Request::OpenKey { parent: HKEY_LOCAL_MACHINE, path: PATH.into(), options: 0, access: KEY_ALL_ACCESS, txn: 0 },
    ) else {
        panic!("cannot open the test key")
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ ((client as u64 + 1) * 0x1000_0000_01B3));
    let mut out = String::new();
    for seq in 0..ops {
        let key = format!("k{}", rng.next() % KEYS as u64);
        let roll = rng.next() % 100;
        let inv = now_ns();
        match roll {
            0..40 => {
                let v = format!("c{client}-{seq}");
                let r = call(&mut c, Request::SetValue { handle: h, name: key.clone(), value: Value::sz(&v) });
                assert_eq!(r, Reply::Done);
                out.push_str(&format!("@S {key} {v} {inv} {}\n", now_ns()));
            }
            40..50 => {
                let r = call(&mut c, Request::DeleteValue { handle: h, name: key.clone() });
                let ok = match r {
                    Reply::Done => true,
                    Reply::Error { status, .. } if status == NtStatus::STATUS_OBJECT_NAME_NOT_FOUND => false,
                    other => panic!("delete: {other:?}"),
                };
                // A delete that found nothing changed nothing: it is a read of "absent".
                let kind = if ok { "D" } else { "Q" };
                let v = if ok { format!("d{client}-{seq}") } else { "-".into() };
                out.push_str(&format!("@{kind} {key} {v} {inv} {}\n", now_ns()));
            }
            50..90 => {
                let r = call(&mut c, Request::QueryValue { handle: h, name: key.clone() });
                let v = match r {
                    Reply::Value(v) => v.as_string().unwrap(),
                    Reply::Error { status, .. } if status == NtStatus::STATUS_OBJECT_NAME_NOT_FOUND => "-".into(),
                    other => panic!("query: {other:?}"),
                };
                out.push_str(&format!("@Q {key} {v} {inv} {}\n", now_ns()));
            }
            90..95 => {
                // Enumeration and key information: consistent with each other at any instant
                // is not asserted here (others write meanwhile), only that they answer.
                let r = call(&mut c, Request::EnumValue { handle: h, index: 0 });
                assert!(matches!(r, Reply::NamedValue(..) | Reply::Error { .. }), "{r:?}");
            }
            _ => {
                let open = Request::OpenKey {
                    parent: HKEY_LOCAL_MACHINE,
                    path: PATH.into(),
                    options: 0,
                    access: KEY_READ,
                    txn: 0,
                };
                let Reply::Handle(k) = call(&mut c, open) else { panic!("open") };
                assert!(matches!(call(&mut c, Request::QueryKey { handle: k }), Reply::KeyInfo(_)));
                assert_eq!(call(&mut c, Request::CloseKey { handle: k }), Reply::Done);
            }
        }
    }
    print!("{out}");
}

#[derive(Clone, Copy, Debug)]
struct Op<'a> {
    value: &'a str,
    inv: u64,
    resp: u64,
}

/// Checks one value's history. `writes` includes deletes (their value starts with `d`) and the
/// initial absence; reads of absence are `-`.
fn check_key(key: &str, writes: &[Op<'_>], reads: &[Op<'_>]) -> Result<(), String> {
    let absent = |w: &Op<'_>| w.value.starts_with('d') || w.value == "-";
    let by_value: FxHashMap<&str, Op<'_>> = writes.iter().filter(|w| !absent(w)).map(|w| (w.value, *w)).collect();
    // Writes by response time, with the latest invocation among those that responded so far.
    let mut by_resp: Vec<Op<'_>> = writes.to_vec();
    by_resp.sort_by_key(|w| w.resp);
    let mut max_inv = Vec::with_capacity(by_resp.len());
    let mut m = 0;
    for w in &by_resp {
        m = m.max(w.inv);
        max_inv.push(m);
    }
    // The latest invocation of a write that completed entirely before `t`.
    let latest_before = |t: u64| -> Option<u64> {
        let n = by_resp.partition_point(|w| w.resp < t);
        (n > 0).then(|| max_inv[n - 1])
    };
    let mut sources: Vec<(Op<'_>, Op<'_>)> = Vec::with_capacity(reads.len());
    for r in reads {
        let src = if r.value == "-" {
            // Any delete (or the initial absence) that began before the read ended; the one
            // that ended last gives the read the best chance.
            writes.iter().filter(|w| absent(w) && w.inv < r.resp).max_by_key(|w| w.resp).copied()
        } else {
            by_value.get(r.value).copied()
        };
        let Some(w) = src else {
            return Err(format!("{key}: read {r:?} returned a value nobody wrote before it"));
        };
        if w.inv >= r.resp {
            return Err(format!("{key}: read {r:?} saw write {w:?} that began after it"));
        }
        if let Some(later) = latest_before(r.inv)
            && later > w.resp
        {
            return Err(format!("{key}: read {r:?} saw {w:?}, overwritten by a write (began {later}) before it"));
        }
        if r.value != "-" {
            sources.push((*r, w));
        }
    }
    // Reads in real-time order never see an older write than an earlier read saw.
    sources.sort_by_key(|(r, _)| r.resp);
    let mut max_src_inv = Vec::with_capacity(sources.len());
    let mut m = 0;
    for (_, w) in &sources {
        m = m.max(w.inv);
        max_src_inv.push(m);
    }
    for (r2, w2) in &sources {
        let n = sources.partition_point(|(r1, _)| r1.resp < r2.inv);
        if n > 0 && max_src_inv[n - 1] > w2.resp {
            return Err(format!("{key}: read {r2:?} saw {w2:?}, older than what an earlier read saw"));
        }
    }
    Ok(())
}

#[test]
fn sixty_four_clients_see_a_linearizable_registry() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let (h, _) = reg.create_key(HKEY_LOCAL_MACHINE, PATH, None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    let ops = OPS.to_string();
    let children: Vec<Child> =
        (0..CLIENTS).map(|i| spawn_child("worker", &d.socket(), &[&i.to_string(), &ops])).collect();
    let lines: Vec<String> = children.into_iter().flat_map(child_output).collect();
    let done = now_ns();
    // The final state, read after everything was acknowledged: a lost write shows here.
    let finals: Vec<String> = (0..KEYS)
        .map(|k| match reg.query_value(h, &format!("k{k}")) {
            Ok(v) => format!("Q k{k} {} {done} {done}", v.as_string().unwrap()),
            Err(e) if e.status == NtStatus::STATUS_OBJECT_NAME_NOT_FOUND => format!("Q k{k} - {done} {done}"),
            Err(e) => panic!("{e}"),
        })
        .collect();
    let mut writes: FxHashMap<&str, Vec<Op<'_>>> = FxHashMap::default();
    let mut reads: FxHashMap<&str, Vec<Op<'_>>> = FxHashMap::default();
    let mut timed = 0;
    for l in lines.iter().chain(&finals) {
        let f: Vec<&str> = l.split(' ').collect();
        let op = Op { value: f[2], inv: f[3].parse().unwrap(), resp: f[4].parse().unwrap() };
        match f[0] {
            "S" | "D" => writes.entry(f[1]).or_default().push(op),
            "Q" => reads.entry(f[1]).or_default().push(op),
            other => panic!("bad line {other}"),
        }
        timed += 1;
    }
    assert!(timed > CLIENTS * OPS * 8 / 10, "only {timed} timed operations came back");
    for k in 0..KEYS {
        let key = format!("k{k}");
        let mut w = writes.remove(key.as_str()).unwrap_or_default();
        w.push(Op { value: "-", inv: 0, resp: 0 });
        let r = reads.remove(key.as_str()).unwrap_or_default();
        check_key(&key, &w, &r).unwrap();
    }
}

#[test]
fn the_checker_catches_stale_and_reordered_reads() {
    let w = |value, inv, resp| Op { value, inv, resp };
    let init = w("-", 0, 0);
    // a written, then b written: a read after b's end must not see a.
    let writes = [init, w("a", 1, 2), w("b", 3, 4)];
    assert!(check_key("k", &writes, &[w("b", 5, 6)]).is_ok());
    assert!(check_key("k", &writes, &[w("a", 5, 6)]).is_err(), "stale read");
    assert!(check_key("k", &writes, &[w("z", 5, 6)]).is_err(), "phantom value");
    assert!(check_key("k", &writes, &[w("-", 5, 6)]).is_err(), "lost writes");
    // Concurrent with b: either is fine, but not b then a.
    let writes = [init, w("a", 1, 2), w("b", 3, 10)];
    assert!(check_key("k", &writes, &[w("a", 4, 5), w("b", 6, 7)]).is_ok());
    assert!(check_key("k", &writes, &[w("b", 4, 5), w("a", 6, 7)]).is_err(), "reordered");
}
