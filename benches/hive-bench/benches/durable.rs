//! Durable writes with concurrent writers: group commit against one sync per operation.
//!
//! Each writer thread sets values under its own key in a registry stored on disk (the home
//! lives in Cargo's target directory, a real file system, never a tmpfs). Every `set_value`
//! returns only once its log record is synced. The peer, measured in the same run, is the
//! ceiling of a store that syncs each operation on its own: one thread appending a record of
//! the same size to a plain file and calling `fdatasync` after each. The figures: operations
//! per second for 1 and 16 writers, syncs per operation, and the ratio to the peer.
//! `HIVEBOX_BENCH_QUICK=1` shortens the runs.

use hivebox_core::{Caller, CreateOptions, Value};
use hivebox_hive::{SystemClock, log_syncs, open_home};
use std::io::Write;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// Runs `writers` threads for `span`; returns (operations, syncs).
fn hivebox_run(writers: usize, span: Duration) -> (u64, u64) {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let home = open_home(dir.path(), Arc::new(SystemClock), true).unwrap();
    let reg = home.registry.clone();
    let me = Caller::system();
    let barrier = Arc::new(Barrier::new(writers + 1));
    let threads: Vec<_> = (0..writers)
        .map(|t| {
            let reg = reg.clone();
            let barrier = Arc::clone(&barrier);
            let me = me.clone();
            let path = format!("\\REGISTRY\\MACHINE\\SOFTWARE\\Bench\\Writer{t}");
            std::thread::spawn(move || {
                let (key, _) = reg.create_key_path(&me, None, &path, &CreateOptions::default()).unwrap();
                barrier.wait();
                let start = Instant::now();
                let mut n = 0u64;
                while start.elapsed() < span {
                    reg.set_value(&me, key, &format!("v{}", n % 64), Value::dword(n as u32)).unwrap();
                    n += 1;
                }
                reg.close_key(&me, key).unwrap();
                n
            })
        })
        .collect();
    barrier.wait();
    let syncs_before = log_syncs();
    let ops: u64 = threads.into_iter().map(|t| t.join().unwrap()).sum();
    (ops, log_syncs() - syncs_before)
}

/// The peer: a 40-byte record written and `fdatasync`ed per operation, one thread.
fn fsync_per_op(span: Duration) -> u64 {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(dir.path().join("peer.log")).unwrap();
    let record = [0x5a_u8; 40];
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < span {
        f.write_all(&record).unwrap();
        f.sync_data().unwrap();
        n += 1;
    }
    n
}

fn main() {
    let quick = std::env::var_os("HIVEBOX_BENCH_QUICK").is_some();
    let span = Duration::from_millis(if quick { 1000 } else { 5000 });
    let secs = span.as_secs_f64();
    let peer = fsync_per_op(span) as f64 / secs;
    println!("durable writes, {secs:.0} s each");
    println!("  peer: write + fdatasync per operation      {peer:>9.0} ops/s");
    for writers in [1, 16] {
        let (ops, syncs) = hivebox_run(writers, span);
        let rate = ops as f64 / secs;
        println!(
            "  hivebox set_value, {writers:>2} writer(s)           {rate:>9.0} ops/s  {:.3} syncs/op  {:.2}x peer",
            syncs as f64 / ops.max(1) as f64,
            rate / peer
        );
    }
    println!("  target: 16 writers >= 20000 ops/s");
}
