//! The box-contents benchmark: `box diff` of a box with 100,000 changes, beside the floor of
//! any reader of the same box: enumerating its private hive's keys and values through the
//! registry API. Both are measured in one run (best of 3 each) and their ratio printed.
//!
//! ```text
//! box-bench [--rounds N]
//! ```
//!
//! The box: 1,000 keys below `HKLM\BENCH` (a base hive of 500 keys of 100 values each).
//! 500 keys the box changed (60 values modified, 20 deleted, 20 added: 100 changes each) and
//! 500 keys it added (99 values each: the key and its values, 100 changes each). Target:
//! `box diff` (text, and `--json`) under one second. The structured list
//! (`changes::changes`) and the `.reg` export are timed too.
//!
//! Run in release (`cargo run --release -p box-bench`).

use anyhow::{Context, Result, bail, ensure};
use hivebox_core::isolate::{box_mount, markers};
use hivebox_core::{
    Caller, KeyImage, ManualClock, MemoryStorage, NtStatus, OpenOptions, Registry, UNIX_EPOCH_FILETIME, Value,
};
use hivebox_daemon::changes;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BOX: &str = "bench";
const CHANGED: usize = 500;
const ADDED: usize = 500;
const VALUES: usize = 100;
const TARGET: Duration = Duration::from_secs(1);
const EXPECTED: usize = CHANGED * VALUES + ADDED * VALUES;

/// One timed run: the size of what it produced.
type Measure<'a> = dyn Fn() -> Result<usize> + 'a;

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn key(name: String, values: Vec<(String, Value)>) -> KeyImage {
    KeyImage { name, values, ..KeyImage::default() }
}

/// The registry: the base hive at `\REGISTRY\MACHINE\BENCH`, the box's hive mounted.
fn setup() -> Result<Registry> {
    let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(UNIX_EPOCH_FILETIME)));
    let system = Caller::system();
    let base = KeyImage {
        name: "BENCH".into(),
        subkeys: (0..CHANGED)
            .map(|k| {
                key(
                    format!("k{k:04}"),
                    (0..VALUES)
                        .map(|v| (format!("v{v:03}"), Value::sz(&format!("base value {v} of key {k}"))))
                        .collect(),
                )
            })
            .collect(),
        ..KeyImage::default()
    };
    reg.load_key(&system, r"\REGISTRY\MACHINE\BENCH", "mem", base, Box::new(MemoryStorage))
        .map_err(|s| anyhow::anyhow!("cannot mount the base hive: {s}"))?;
    let mut keys = Vec::new();
    for k in 0..CHANGED {
        let mut values = vec![(markers::BASE_TIME.to_owned(), Value::qword(UNIX_EPOCH_FILETIME))];
        for v in 0..60 {
            values.push((format!("v{v:03}"), Value::sz(&format!("box value {v} of key {k}"))));
        }
        for v in 60..80 {
            values.push((format!("v{v:03}"), markers::tombstone()));
        }
        for v in 0..20 {
            values.push((format!("n{v:03}"), Value::dword(v)));
        }
        keys.push(key(format!("k{k:04}"), values));
    }
    for k in 0..ADDED {
        let values = (0..VALUES - 1).map(|v| (format!("a{v:03}"), Value::sz(&format!("added {v} of {k}")))).collect();
        keys.push(key(format!("a{k:04}"), values));
    }
    let bench = KeyImage { name: "BENCH".into(), subkeys: keys, ..KeyImage::default() };
    let machine = KeyImage { name: "MACHINE".into(), subkeys: vec![bench], ..KeyImage::default() };
    let root = KeyImage { name: BOX.into(), subkeys: vec![machine], ..KeyImage::default() };
    reg.load_key(&system, &box_mount(BOX), "mem", root, Box::new(MemoryStorage))
        .map_err(|s| anyhow::anyhow!("cannot mount the box's hive: {s}"))?;
    Ok(reg)
}

/// The floor: every key and value of the box's hive below `MACHINE\BENCH`, enumerated through
/// the registry API. Returns the number of values seen.
fn enumerate(reg: &Registry) -> Result<usize, NtStatus> {
    let system = Caller::system();
    let top = reg.open_key(&system, None, &format!(r"{}\MACHINE\BENCH", box_mount(BOX)), &OpenOptions::default())?;
    let mut values = 0;
    let mut i = 0;
    loop {
        let sub = match reg.enumerate_key(&system, top, i) {
            Ok(s) => s,
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
            Err(s) => return Err(s),
        };
        let h = reg.open_key(&system, Some(top), &sub.name, &OpenOptions::default())?;
        let mut j = 0;
        loop {
            match reg.enumerate_value(&system, h, j) {
                Ok(v) => {
                    std::hint::black_box(v);
                    values += 1;
                }
                Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
                Err(s) => return Err(s),
            }
            j += 1;
        }
        reg.close_key(&system, h)?;
        i += 1;
    }
    reg.close_key(&system, top)?;
    Ok(values)
}

/// The best of `rounds` runs of `f`, and its last output's size.
fn best<T>(rounds: usize, mut f: impl FnMut() -> Result<T>, size: impl Fn(&T) -> usize) -> Result<(Duration, usize)> {
    let mut best = Duration::MAX;
    let mut n = 0;
    for _ in 0..rounds {
        let start = Instant::now();
        let out = f()?;
        best = best.min(start.elapsed());
        n = size(&out);
        drop(std::hint::black_box(out));
    }
    Ok((best, n))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> Result<()> {
    let mut rounds = 3;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--rounds" => rounds = args.next().context("--rounds needs a number")?.parse()?,
            "-h" | "--help" => {
                println!("usage: box-bench [--rounds N]");
                return Ok(());
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    ensure!(rounds > 0, "--rounds must be positive");
    let built = Instant::now();
    let reg = setup()?;
    let count = changes::changes(&reg, BOX).map_err(|e| anyhow::anyhow!("{e}"))?.len();
    ensure!(count == EXPECTED, "the box has {count} changes, not {EXPECTED}");
    println!(
        "box-bench: a box with {count} changes ({CHANGED} keys changed x {VALUES} values, {ADDED} keys added with {} values), \
         built in {:.0} ms; best of {rounds}",
        VALUES - 1,
        ms(built.elapsed())
    );
    let fail = |e: changes::ChangeError| anyhow::anyhow!("{e}");
    let (floor, seen) = best(rounds, || enumerate(&reg).map_err(|s| anyhow::anyhow!("{s}")), |n| *n)?;
    println!(
        "floor:          {:>8.1} ms   enumerating the private hive's {} keys and {seen} stored values through the registry API",
        ms(floor),
        CHANGED + ADDED
    );
    // What is timed, whether the target applies, and what its output's size counts.
    let measures: [(&str, &Measure<'_>, bool, &str); 4] = [
        ("diff (text)", &|| changes::diff_text(&reg, BOX).map(|t| t.len()).map_err(fail), true, "bytes"),
        ("diff --json", &|| changes::diff_json(&reg, BOX).map(|t| t.len()).map_err(fail), true, "bytes"),
        ("changes()", &|| changes::changes(&reg, BOX).map(|c| c.len()).map_err(fail), false, "changes"),
        ("export --reg", &|| changes::export_reg(&reg, BOX).map(|t| t.len()).map_err(fail), false, "bytes"),
    ];
    let mut missed = false;
    for (what, f, targeted, unit) in measures {
        let (t, size) = best(rounds, f, |n| *n)?;
        let target = if targeted {
            missed |= t >= TARGET;
            format!("target < {} ms: {}", TARGET.as_millis(), verdict(t < TARGET))
        } else {
            String::new()
        };
        println!(
            "{what:<15} {:>8.1} ms   {:>6.2}x the floor   {:>9} {unit:<8} {target}",
            ms(t),
            t.as_secs_f64() / floor.as_secs_f64(),
            size
        );
    }
    if missed {
        std::process::exit(1);
    }
    Ok(())
}
