//! Full walk of a 36 MiB SOFTWARE hive (117,488 keys, 193,870 values: every key's name, every
//! value's name and data) by hivebox's reader, the nt-hive crate and libhivex, in the same run
//! and interleaved, plus hivebox's load (`Hive::open` + `to_image`). Prints the median of N
//! runs of each, and the ratios. `HIVEBOX_BENCH_QUICK=1` makes N small.
//!
//! Rows:
//! - `walk, names as stored`: the traversal of an already opened hive, names handed out as
//!   the file stores them (hivebox `raw_name`, nt-hive `NtHiveNameString`: both borrow);
//! - `walk, names as text`: the same, names as strings (hivebox `name()`, a `Cow<str>` that
//!   borrows ASCII; nt-hive `to_string_lossy()`; libhivex `hivex_node_name`, UTF-8, malloc'd);
//! - `open`: what each reader does before it can walk (hivebox: read the file and frame every
//!   cell; nt-hive: read the file and check the header; libhivex: map the file, map its cells);
//! - `open + walk`: both (names as text);
//! - `load`: hivebox from the file to a `KeyImage` (`Hive::open` + `to_image`);
//! - `to_image`: the `KeyImage` of the already opened hive (the load without the file read);
//! - `into a registry tree`: the whole load into the registry's key tree (`Hive::open` +
//!   `to_image` + `Tree::from_image`), what opening a store does per hive.

use hivebox_core::Tree;
use hivebox_hive::regf::Hive;
use hivebox_hive_bench::{Counts, Names, hivebox_walk, hivex::Hivex, software_hive};
use nt_hive::{KeyNode, KeyValueData, NtHiveNameString};
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

fn nt_name(n: NtHiveNameString<'_>, names: Names) -> u64 {
    match names {
        Names::Stored => match n {
            NtHiveNameString::Latin1(b) | NtHiveNameString::Utf16LE(b) => b.len() as u64,
        },
        Names::Text => n.to_string_lossy().len() as u64,
    }
}

fn nt_walk(hive: &nt_hive::Hive<&[u8]>, names: Names) -> nt_hive::Result<Counts> {
    fn key(k: KeyNode<'_, &[u8]>, names: Names, c: &mut Counts) -> nt_hive::Result<()> {
        c.keys += 1;
        c.name_bytes += nt_name(k.name()?, names);
        if let Some(values) = k.values() {
            for v in values? {
                let v = v?;
                c.values += 1;
                c.name_bytes += nt_name(v.name()?, names);
                match v.data()? {
                    KeyValueData::Small(d) => c.data_bytes += d.len() as u64,
                    KeyValueData::Big(slices) => {
                        for s in slices {
                            c.data_bytes += s?.len() as u64;
                        }
                    }
                }
            }
        }
        if let Some(subkeys) = k.subkeys() {
            for s in subkeys? {
                key(s?, names, c)?;
            }
        }
        Ok(())
    }
    let mut c = Counts::default();
    key(hive.root_key_node()?, names, &mut c)?;
    Ok(c)
}

/// nt-hive from the file: read it, check the header, walk.
fn nt_from_file(path: &Path) -> Counts {
    let bytes = std::fs::read(path).unwrap();
    let hive = nt_hive::Hive::new(bytes.as_slice()).unwrap();
    nt_walk(&hive, Names::Text).unwrap()
}

fn time<T>(f: impl FnOnce() -> T) -> Duration {
    let start = Instant::now();
    let out = black_box(f());
    let d = start.elapsed();
    drop(out);
    d
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

const ROWS: [&str; 12] = [
    "walk, names as stored: hivebox",
    "walk, names as stored: nt-hive",
    "walk, names as text:   hivebox",
    "walk, names as text:   nt-hive",
    "walk, names as text:   libhivex",
    "open:                  hivebox",
    "open:                  libhivex",
    "open + walk:           hivebox",
    "open + walk:           nt-hive",
    "load (open + to_image): hivebox",
    "to_image (open hive):  hivebox",
    "into a registry tree:  hivebox",
];

fn main() {
    let path = software_hive();
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e} (set HIVEBOX_CORPUS)", path.display()));
    let runs = if std::env::var_os("HIVEBOX_BENCH_QUICK").is_some() { 5 } else { 21 };

    // Both Rust readers walk the same buffer, so neither has a cache advantage.
    let ours = Hive::from_bytes(bytes).unwrap();
    let theirs = nt_hive::Hive::new(ours.bytes()).unwrap();
    let hivex = Hivex::open(&path).unwrap();
    let expect = hivebox_walk(&ours, Names::Text).unwrap();
    let same = |c: Counts| (c.keys, c.values, c.data_bytes) == (expect.keys, expect.values, expect.data_bytes);
    assert!(same(hivebox_walk(&ours, Names::Stored).unwrap()));
    assert!(same(nt_walk(&theirs, Names::Stored).unwrap()), "nt-hive sees another hive");
    assert_eq!(nt_walk(&theirs, Names::Text).unwrap(), expect, "nt-hive sees other names");
    assert_eq!(hivex.walk().expect("libhivex walks the hive"), expect, "libhivex sees another hive");

    let mut t: [Vec<Duration>; ROWS.len()] = Default::default();
    for run in 0..runs {
        for i in 0..ROWS.len() {
            let row = (i + run) % ROWS.len();
            t[row].push(match row {
                0 => time(|| hivebox_walk(&ours, Names::Stored).unwrap()),
                1 => time(|| nt_walk(&theirs, Names::Stored).unwrap()),
                2 => time(|| hivebox_walk(&ours, Names::Text).unwrap()),
                3 => time(|| nt_walk(&theirs, Names::Text).unwrap()),
                4 => time(|| hivex.walk().unwrap()),
                5 => time(|| Hive::open(&path).unwrap()),
                6 => time(|| Hivex::open(&path).unwrap()),
                7 => time(|| hivebox_walk(&Hive::open(&path).unwrap(), Names::Text).unwrap()),
                8 => time(|| nt_from_file(&path)),
                9 => time(|| Hive::open(&path).unwrap().to_image().unwrap()),
                10 => time(|| ours.to_image().unwrap()),
                _ => time(|| Tree::from_image_owned(Hive::open(&path).unwrap().to_image().unwrap()).unwrap()),
            });
        }
    }
    let m: Vec<Duration> = t
        .iter_mut()
        .map(|v| {
            v.sort();
            v[v.len() / 2]
        })
        .collect();
    println!(
        "SOFTWARE: {} keys, {} values, {} bytes of data; median of {runs} runs",
        expect.keys, expect.values, expect.data_bytes
    );
    for (name, d) in ROWS.iter().zip(&m) {
        println!("  {name:<32} {:>8.2} ms", ms(*d));
    }
    let ratio = |a: usize, b: usize| m[a].as_secs_f64() / m[b].as_secs_f64();
    let line = |what: &str, r: f64, target: f64, strict: bool| {
        let ok = if strict { r < target } else { r <= target };
        let cmp = if strict { "<" } else { "<=" };
        println!("  {what:<40} {r:>6.2}  {} (target {cmp} {target})", if ok { "PASS" } else { "MISS" });
    };
    line("walk hivebox/nt-hive, names as stored", ratio(0, 1), 1.0, true);
    line("walk hivebox/nt-hive, names as text", ratio(2, 3), 1.0, true);
    line("walk hivebox/libhivex", ratio(2, 4), 1.0, true);
    line("open + walk hivebox/nt-hive", ratio(7, 8), 1.0, true);
    line("load / (open + walk), hivebox", ratio(9, 7), 2.0, false);
    line("to_image / walk (both from an open hive)", ratio(10, 2), 2.0, false);
    line("into a registry tree / (open + walk)", ratio(11, 7), 2.0, false);
}
