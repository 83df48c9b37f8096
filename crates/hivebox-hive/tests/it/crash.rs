//! A writer killed with SIGKILL at random moments loses nothing it acknowledged, shows nothing
//! half-written, and leaves hive images that hivex opens.
//!
//! The parent runs this test binary again as a child (`crash_child_body`, switched on by an
//! environment variable), [`ROUNDS`] times, over a store that starts afresh every
//! [`ROUNDS_PER_STORE`] rounds (so hives stay small). Each child opens the store, prints
//! `started`, then repeats one *change* made of three registry operations: create the subkey
//! `k<round>-<i>` under [`BASE`], set its value `v` (a `REG_QWORD`, or now and then a
//! `REG_BINARY` of 4-64 KiB, both derived from the name alone by [`value_for`]), and set the
//! value `last` of [`BASE`] to the name. It prints `ack <name>` once all three returned `Ok`.
//! Every 1-16 changes it checkpoints (`flush_key`), printing `ckpt-begin` before and `ckpt-end`
//! after, so that a kill landing inside a checkpoint can be told from the output afterwards.
//!
//! The parent kills the child after a random number of acknowledgements, or a random delay
//! (log-uniform, 1 µs to 8 ms) after `started`, or a random delay (1 µs to 2 ms) after the first
//! `ckpt-begin`, so kills land mid-append and mid-checkpoint. After each kill it reads the rest
//! of the child's output (acknowledged too), then:
//!
//! 1. runs `hivexsh` on every `*.hiv` under `<home>/hives/`: each must open and list its root;
//! 2. reopens the store and checks that every acknowledged subkey is there with exactly its
//!    value, that the only other subkey is at most the one change in flight (with its value
//!    either absent or whole), that what earlier rounds left stays as it was, and that `last`
//!    names the last acknowledged change or the one in flight (whose value must then be there).
//!
//! At least [`MIN_CHECKPOINT_KILLS`] kills must have landed between `ckpt-begin` and
//! `ckpt-end`. The kill moments come from a seeded PRNG: the seed is printed when the test
//! fails, and `HIVEBOX_CRASH_SEED` replays it.

use crate::{BASE, reopen};
use hivebox_core::{Caller, CreateOptions, Handle, NtStatus, OpenOptions, Registry, Value};
use hivebox_hive::{SystemClock, open_home};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

const CHILD_HOME: &str = "HIVEBOX_IT_CRASH_HOME";
const CHILD_ROUND: &str = "HIVEBOX_IT_CRASH_ROUND";
const CHILD_SEED: &str = "HIVEBOX_IT_CRASH_CHILD_SEED";
/// Overrides the parent's seed, to replay a failure.
const SEED_ENV: &str = "HIVEBOX_CRASH_SEED";
/// How many times the writer is killed.
const ROUNDS: u32 = 120;
/// How many rounds share one store before the next starts afresh (bounds the hive's size, and
/// so the time each round takes).
const ROUNDS_PER_STORE: u32 = 30;
/// How many kills must land inside a checkpoint.
const MIN_CHECKPOINT_KILLS: u32 = 5;
/// Where `hivexsh` comes from.
const HIVEX: &str = "apt-get install -y libhivex-bin";

/// A xorshift64* generator: enough randomness for kill moments, reproducible from its seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        // splitmix64 once, so that small or similar seeds still start far apart (and never at 0).
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Self((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// FNV-1a of `name`.
fn hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The value `v` of subkey `name`: derived from the name alone, so that the parent can check
/// the data even of a change it never saw acknowledged. One in six is a 4-64 KiB binary.
fn value_for(name: &str) -> Value {
    let h = hash(name);
    if !h.is_multiple_of(6) {
        return Value::qword(h);
    }
    let len = (4096 + (h >> 8) % (60 * 1024 + 1)) as usize;
    let mut rng = Rng::new(h);
    let mut data = Vec::with_capacity(len + 8);
    while data.len() < len {
        data.extend_from_slice(&rng.next().to_le_bytes());
    }
    data.truncate(len);
    Value::binary(&data)
}

/// Not a test of its own: the child's body, a no-op unless the parent switched it on.
#[test]
fn crash_child_body() {
    let Some(home) = std::env::var_os(CHILD_HOME) else {
        return;
    };
    let round: u32 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let mut rng = Rng::new(std::env::var(CHILD_SEED).unwrap().parse().unwrap());
    let home = open_home(Path::new(&home), Arc::new(SystemClock), true).unwrap();
    let reg = &home.registry;
    let me = Caller::system();
    let (base, _) = reg.create_key_path(&me, None, BASE, &CreateOptions::default()).unwrap();
    let mut out = std::io::stdout().lock();
    let mut say = |line: &str| {
        writeln!(out, "{line}").unwrap();
        out.flush().unwrap();
    };
    say("started");
    let started = Instant::now();
    let mut until_checkpoint = rng.range(1, 16);
    // Bounded, so that a parent that fails to kill it cannot leave it running for long.
    for i in 0..20_000u32 {
        let name = format!("k{round}-{i}");
        let (sub, _) = reg.create_key(&me, Some(base), &name, &CreateOptions::default()).unwrap();
        reg.set_value(&me, sub, "v", value_for(&name)).unwrap();
        reg.close_key(&me, sub).unwrap();
        reg.set_value(&me, base, "last", Value::sz(&name)).unwrap();
        say(&format!("ack {name}"));
        until_checkpoint -= 1;
        if until_checkpoint == 0 {
            say("ckpt-begin");
            reg.flush_key(&me, base).unwrap();
            say("ckpt-end");
            until_checkpoint = rng.range(1, 16);
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
    }
}

/// When the parent kills the child.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// Once it has read this many acknowledgements.
    AfterAcks(usize),
    /// This long after `started`.
    AfterDelay(Duration),
    /// This long after the first `ckpt-begin`.
    InCheckpoint(Duration),
}

impl Kill {
    fn random(rng: &mut Rng) -> Self {
        // Log-uniform between 1 µs and `max_us`.
        let delay = |rng: &mut Rng, max_us: f64| Duration::from_secs_f64(1e-6 * max_us.powf(rng.unit()));
        match rng.next() % 3 {
            0 => Kill::AfterAcks(rng.range(1, 24) as usize),
            1 => Kill::AfterDelay(delay(rng, 8000.0)),
            _ => Kill::InCheckpoint(delay(rng, 2000.0)),
        }
    }
}

/// What one killed child reported.
struct Killed {
    /// The names of its acknowledged changes, in order.
    acked: Vec<String>,
    /// Whether its output ends inside a checkpoint (`ckpt-begin` without `ckpt-end`).
    in_checkpoint: bool,
}

fn run_and_kill(home: &Path, round: u32, child_seed: u64, kill: Kill) -> Killed {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["crash::crash_child_body", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_HOME, home)
        .env(CHILD_ROUND, round.to_string())
        .env(CHILD_SEED, child_seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    // Skip the test harness's own output up to the child's first line (which the harness
    // may have begun with `test crash::crash_child_body ... `).
    let mut lines = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line.ends_with("started") => break,
            Ok(_) => {}
            Err(e) => panic!("round {round}: the child never started ({e}); status {:?}", child.try_wait()),
        }
    }
    match kill {
        Kill::AfterAcks(n) => {
            let mut acks = 0;
            while acks < n {
                let Ok(line) = rx.recv() else { break };
                acks += usize::from(line.starts_with("ack "));
                lines.push(line);
            }
        }
        Kill::AfterDelay(delay) => std::thread::sleep(delay),
        Kill::InCheckpoint(delay) => {
            while let Ok(line) = rx.recv() {
                let begun = line == "ckpt-begin";
                lines.push(line);
                if begun {
                    std::thread::sleep(delay);
                    break;
                }
            }
        }
    }
    child.kill().unwrap();
    // The lines already in the pipe are still read: they were acknowledged.
    lines.extend(rx.iter());
    reader.join().unwrap();
    let status = child.wait().unwrap();
    assert!(status.code().is_none(), "round {round}: the child ended before the kill ({kill:?}): {status}");
    let acked = lines.iter().filter_map(|l| l.strip_prefix("ack ")).map(str::to_owned).collect();
    let in_checkpoint = lines.iter().rev().find(|l| l.starts_with("ckpt-")).is_some_and(|l| l == "ckpt-begin");
    Killed { acked, in_checkpoint }
}

/// Every `*.hiv` under `dir`, recursively.
fn hive_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            hive_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "hiv") {
            out.push(path);
        }
    }
}

/// Runs `hivexsh` on `file` with `script` on its stdin; its stdout, after checking that it
/// succeeded without a word on stderr.
fn hivexsh(file: &Path, script: &str, context: &str) -> String {
    let out = Command::new("hivexsh")
        .arg(file)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap_or_else(|e| match e.kind() {
            ErrorKind::NotFound => panic!("this test needs hivexsh, which is not installed (install with `{HIVEX}`)"),
            _ => panic!("running hivexsh on {}: {e}", file.display()),
        });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "{context}: hivexsh cannot read {}: {}\n{stderr}",
        file.display(),
        out.status
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Checks that hivex opens every image of the store and lists its root; returns the subkeys
/// of [`BASE`] in the SOFTWARE image (none if the image has no `HiveboxTest` yet).
fn hivex_reads_every_hive(home: &Path, context: &str) -> Vec<String> {
    let mut files = Vec::new();
    hive_files(&crate::hives(home), &mut files);
    assert!(!files.is_empty(), "{context}: no *.hiv under {}", crate::hives(home).display());
    let mut in_image = Vec::new();
    for file in &files {
        let root = hivexsh(file, "ls\nquit\n", context);
        if file.as_path() == crate::image_path(home) && root.lines().any(|l| l == "HiveboxTest") {
            let listed = hivexsh(file, "cd HiveboxTest\nls\nquit\n", context);
            in_image = listed.lines().map(str::to_owned).collect();
        }
    }
    in_image
}

/// Every subkey name of `key`.
fn subkeys(reg: &Registry, key: Handle) -> Vec<String> {
    let me = Caller::system();
    let mut out = Vec::new();
    for index in 0.. {
        match reg.enumerate_key(&me, key, index) {
            Ok(info) => out.push(info.name),
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
            Err(e) => panic!("enumerating subkey {index}: {e:?}"),
        }
    }
    out
}

/// Every value of `key`.
fn values(reg: &Registry, key: Handle) -> Vec<(String, Value)> {
    let me = Caller::system();
    let mut out = Vec::new();
    for index in 0.. {
        match reg.enumerate_value(&me, key, index) {
            Ok(v) => out.push(v),
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
            Err(e) => panic!("enumerating value {index}: {e:?}"),
        }
    }
    out
}

/// Whether subkey `name` carries its value `v`, after checking it carries nothing else and
/// that a `v` it carries is whole.
fn carries_its_value(name: &str, found: &[(String, Value)], context: &str) -> bool {
    match found {
        [] => false,
        [(v, value)] if v == "v" => {
            let want = value_for(name);
            assert_eq!(value.ty, want.ty, "{context}: type of {name}\\v");
            assert_eq!(value.data.len(), want.data.len(), "{context}: length of {name}\\v");
            let bad = value.data.iter().zip(&want.data).position(|(a, b)| a != b);
            assert_eq!(bad, None, "{context}: first wrong byte of {name}\\v");
            true
        }
        _ => panic!("{context}: {name} carries {:?}", found.iter().map(|(n, _)| n).collect::<Vec<_>>()),
    }
}

/// What the store must hold after the rounds so far.
#[derive(Default)]
struct Model {
    /// Every subkey that must exist, and whether it carries its value (`false` only for a
    /// change that was in flight at a kill and whose value had not been set).
    keys: BTreeMap<String, bool>,
    /// The value `last` of [`BASE`] seen after the previous round.
    last: Option<String>,
}

/// Reopens the store after round `round` and checks it against `model` and what the child
/// acknowledged; then adds the round's outcome to `model`.
fn check_round(home: &Path, round: u32, acked: &[String], in_image: &[String], model: &mut Model, context: &str) {
    let h = reopen(home);
    let reg = &h.registry;
    let me = Caller::system();
    let base = reg.open_key(&me, None, BASE, &OpenOptions::default()).unwrap();
    let in_flight = format!("k{round}-{}", acked.len());
    let mut found = BTreeMap::new();
    for name in subkeys(reg, base) {
        let sub = reg.open_key(&me, Some(base), &name, &OpenOptions::default()).unwrap();
        let has_value = carries_its_value(&name, &values(reg, sub), context);
        reg.close_key(&me, sub).unwrap();
        found.insert(name, has_value);
    }
    for (name, &had_value) in &model.keys {
        assert_eq!(found.get(name), Some(&had_value), "{context}: {name} from an earlier round (value present?)");
    }
    for name in acked {
        assert_eq!(found.get(name), Some(&true), "{context}: acknowledged {name} (value present?)");
    }
    for name in found.keys() {
        let known = model.keys.contains_key(name) || acked.contains(name) || *name == in_flight;
        assert!(known, "{context}: {name} was never written (in flight: {in_flight})");
    }
    for name in in_image {
        assert!(found.contains_key(name), "{context}: {name} is in the SOFTWARE image but not in the store");
    }
    let last = match reg.query_value(&me, base, "last") {
        Ok(v) => Some(v.as_string().unwrap()),
        Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => None,
        Err(e) => panic!("{context}: querying last: {e:?}"),
    };
    let last_acked = acked.last().cloned().or_else(|| model.last.clone());
    if last.as_ref() == Some(&in_flight) {
        assert_eq!(found.get(&in_flight), Some(&true), "{context}: last names {in_flight}, whose value is missing");
    } else {
        assert_eq!(last, last_acked, "{context}: last (in flight: {in_flight})");
    }
    reg.close_key(&me, base).unwrap();
    model.keys.extend(found);
    model.last = last;
}

/// Prints the seed if the test fails.
struct SeedReport(u64);

impl Drop for SeedReport {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("crash test failed with seed {0}; replay it with {SEED_ENV}={0}", self.0);
        }
    }
}

#[test]
fn killed_writer_keeps_every_acknowledged_change() {
    let seed = match std::env::var(SEED_ENV) {
        Ok(s) => s.parse().unwrap_or_else(|e| panic!("{SEED_ENV}={s}: {e}")),
        Err(_) => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64,
    };
    let _report = SeedReport(seed);
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let (mut acks, mut checkpoint_kills) = (0, 0);
    let mut kinds = [0; 3];
    let mut dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    for round in 0..ROUNDS {
        if round > 0 && round % ROUNDS_PER_STORE == 0 {
            dir = tempfile::tempdir().unwrap();
            model = Model::default();
        }
        let kill = Kill::random(&mut rng);
        let context = format!("seed {seed}, round {round}, kill {kill:?}");
        let killed = run_and_kill(dir.path(), round, rng.next(), kill);
        acks += killed.acked.len();
        checkpoint_kills += u32::from(killed.in_checkpoint);
        kinds[match kill {
            Kill::AfterAcks(_) => 0,
            Kill::AfterDelay(_) => 1,
            Kill::InCheckpoint(_) => 2,
        }] += 1;
        let in_image = hivex_reads_every_hive(dir.path(), &context);
        check_round(dir.path(), round, &killed.acked, &in_image, &mut model, &context);
    }
    println!(
        "seed {seed}: {ROUNDS} kills ({} after acks, {} after a delay, {} after a ckpt-begin), {checkpoint_kills} \
         inside a checkpoint, {acks} acknowledged changes, in {:.1?}",
        kinds[0],
        kinds[1],
        kinds[2],
        started.elapsed()
    );
    assert!(
        checkpoint_kills >= MIN_CHECKPOINT_KILLS,
        "only {checkpoint_kills} of {ROUNDS} kills landed inside a checkpoint (seed {seed})"
    );
}
