//! The regf writer: re-saving the 36 MiB SOFTWARE hive (117,488 keys, 193,870 values) from
//! its `KeyImage`, in MB/s of output, and saving a key with 10,000 subkeys created through
//! the registry (with 20,000 and 40,000 too, to show the cost is linear). Prints medians and
//! PASS/MISS against the targets: at least 100 MB/s, and the 10,000-subkey save well under a
//! second. `HIVEBOX_BENCH_QUICK=1` makes the number of runs small.

use hivebox_core::{Caller, CreateOptions, KeyImage, ManualClock, Registry};
use hivebox_hive::regf::{Hive, WriteOptions, write_hive, write_hive_with_stats};
use hivebox_hive_bench::software_hive;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_runs(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let start = Instant::now();
                f();
                start.elapsed()
            })
            .collect(),
    )
}

/// A key holding `n` subkeys created one by one through the registry, as its image.
fn wide_key(n: usize) -> (KeyImage, Duration) {
    let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
    let me = Caller::system();
    let base = r"\REGISTRY\MACHINE\SOFTWARE\Wide";
    let start = Instant::now();
    let (key, _) = reg.create_key(&me, None, base, &CreateOptions::default()).unwrap();
    for i in 0..n {
        let (sub, _) =
            reg.create_key(&me, Some(key), &format!("Sub{:06}", (i * 7919) % n), &CreateOptions::default()).unwrap();
        reg.close_key(&me, sub).unwrap();
    }
    reg.close_key(&me, key).unwrap();
    let created = start.elapsed();
    let image = reg.image();
    let find = |k: &KeyImage, name: &str| k.subkeys.iter().find(|s| s.name == name).cloned().unwrap();
    let wide = find(&find(&find(&image, "MACHINE"), "SOFTWARE"), "Wide");
    assert_eq!(wide.subkeys.len(), n);
    (wide, created)
}

fn main() {
    let quick = std::env::var_os("HIVEBOX_BENCH_QUICK").is_some();
    let runs = if quick { 5 } else { 21 };
    let path = software_hive();
    let image = Hive::open(&path).and_then(|h| h.to_image()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let opts = WriteOptions::default();
    let (bytes, stats) = write_hive_with_stats(&image, &opts).unwrap();
    let resave = time_runs(runs, || {
        black_box(write_hive(black_box(&image), &opts).unwrap());
    });
    let mbps = bytes.len() as f64 / resave.as_secs_f64() / 1e6;
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    println!(
        "SOFTWARE re-save: {} keys, {} values, {} sk; median of {runs} runs",
        stats.keys, stats.values, stats.security_descriptors
    );
    println!(
        "  {} -> {} bytes, {} bins, free {:.3}%, slack {:.3}%",
        std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0),
        stats.file_size,
        stats.bins,
        stats.free_percent(),
        100.0 * stats.slack_bytes as f64 / stats.file_size as f64
    );
    println!(
        "  write_hive        {:>9.2} ms  {mbps:>7.1} MB/s  {} (target >= 100 MB/s)",
        resave.as_secs_f64() * 1e3,
        verdict(mbps >= 100.0)
    );

    let mut per_key = Vec::new();
    for n in [10_000, 20_000, 40_000] {
        let (wide, created) = wide_key(n);
        let save = time_runs(runs, || {
            black_box(write_hive(black_box(&wide), &opts).unwrap());
        });
        per_key.push(save.as_secs_f64() / n as f64);
        let note = if n == 10_000 {
            format!("  {} (target < 1 s)", verdict(save < Duration::from_millis(250)))
        } else {
            String::new()
        };
        println!(
            "  {n:>6} subkeys: created in {:>8.2} ms, saved in {:>7.2} ms{note}",
            created.as_secs_f64() * 1e3,
            save.as_secs_f64() * 1e3
        );
    }
    let growth = per_key[2] / per_key[0];
    println!(
        "  save cost per key, 40k vs 10k: {growth:.2}x  {} (linear: < 2x; quadratic would be 4x)",
        verdict(growth < 2.0)
    );
}
