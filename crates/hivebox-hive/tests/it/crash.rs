//! A writer killed with SIGKILL mid-stream loses nothing it acknowledged.
//!
//! The parent runs this test binary again as a child (`crash_child_body`, switched on by an
//! environment variable). The child sets values as fast as it can, checkpointing now and then,
//! and prints `ack <name> <n>` after each `set_value` returned `Ok`. The parent kills it after
//! a number of acknowledgements, reopens the store and checks every acknowledged value.

use crate::{BASE, reopen};
use hivebox_core::{Caller, CreateOptions, Value};
use hivebox_hive::{SystemClock, open_home};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_HOME: &str = "HIVEBOX_IT_CRASH_HOME";
const CHILD_ROUND: &str = "HIVEBOX_IT_CRASH_ROUND";

/// Not a test of its own: the child's body, a no-op unless the parent switched it on.
#[test]
fn crash_child_body() {
    let Some(home) = std::env::var_os(CHILD_HOME) else {
        return;
    };
    let round = std::env::var(CHILD_ROUND).unwrap();
    let home = open_home(Path::new(&home), Arc::new(SystemClock), true).unwrap();
    let reg = &home.registry;
    let me = Caller::system();
    let (key, _) = reg.create_key_path(&me, None, BASE, &CreateOptions::default()).unwrap();
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    // Bounded, so that a parent that fails to kill it cannot leave it running for long.
    for i in 0..200_000u64 {
        let name = format!("r{round}-{i}");
        reg.set_value(&me, key, &name, Value::qword(i)).unwrap();
        writeln!(out, "ack {name} {i}").unwrap();
        out.flush().unwrap();
        if i % 64 == 63 {
            reg.flush_key(&me, key).unwrap();
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
}

fn run_and_kill(home: &Path, round: u32, kill_after: usize) -> Vec<(String, u64)> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::crash_child_body", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_HOME, home)
        .env(CHILD_ROUND, round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let mut acked = Vec::new();
    let mut killed = false;
    // After the kill, the lines already in the pipe are still read: they were acknowledged.
    for line in stdout.lines() {
        let line = line.unwrap();
        let Some(rest) = line.strip_prefix("ack ") else {
            continue;
        };
        let (name, n) = rest.split_once(' ').unwrap();
        acked.push((name.to_owned(), n.parse().unwrap()));
        if !killed && acked.len() >= kill_after {
            child.kill().unwrap();
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(killed, "the child stopped after {} acknowledgements, before the kill: {status}", acked.len());
    assert!(status.code().is_none(), "the child was killed by a signal: {status}");
    acked
}

#[test]
fn killed_writer_keeps_every_acknowledged_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for (round, kill_after) in [(0, 150), (1, 333), (2, 71), (3, 1), (4, 640)] {
        all.extend(run_and_kill(dir.path(), round, kill_after));
        let h = reopen(dir.path());
        let me = Caller::system();
        let key = h.registry.open_key(&me, None, BASE, &Default::default()).unwrap();
        for (name, n) in &all {
            let got = h.registry.query_value(&me, key, name);
            assert_eq!(got, Ok(Value::qword(*n)), "acknowledged value {name} after round {round}");
        }
        h.registry.close_key(&me, key).unwrap();
    }
}
