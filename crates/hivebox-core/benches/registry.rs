//! Registry hot paths against a plain `HashMap` peer, with 0 and 3 pass-through filters.
//!
//! `cargo bench -p hivebox-core --bench registry` runs three criterion groups (`open_query`,
//! `set_value`, `enumerate_10k`), each with the map peer and the registry with 0 and with 3
//! pass-through filters, then an interleaved cross-check (the three variants alternate in
//! short batches, so clock and thermal drift hit all of them alike), then prints a summary.
//! `HIVEBOX_BENCH_QUICK=1` shortens every measurement so the whole run fits in CI.
//! See `docs/benchmarks.md` for what each row measures and the targets.

use criterion::{BenchmarkId, Criterion, SamplingMode};
use hivebox_core::access::{KEY_ALL_ACCESS, KEY_READ};
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, Handle, ManualClock, NtStatus, OpenOptions, ProcessInfo,
    RegNotifyClass, Registry, RegistryCallback, Token, Value,
};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The warm 6-level path (six levels below `SOFTWARE`), as a caller would spell it.
const PATH: &str = r"\REGISTRY\MACHINE\SOFTWARE\A\B\C\D\E\F";
/// The value queried on `PATH`.
const QUERY_NAME: &str = "Data";
/// The value overwritten by the set benchmark (on the same key).
const SET_NAME: &str = "Counter";
/// The key holding the 10,000 subkeys.
const ENUM_PATH: &str = r"\REGISTRY\MACHINE\SOFTWARE\Enumerate";
const SUBKEYS: u32 = 10_000;
/// The altitudes of the pass-through filters.
const ALTITUDES: [&str; 3] = ["380000", "380010", "380020"];

const OPS: [(&str, &str); 3] = [
    ("open_query", "open + query value + close (6-level path)"),
    ("set_value", "set value (open handle)"),
    ("enumerate_10k", "enumerate 10,000 subkeys (one full pass)"),
];
const VARIANTS: [&str; 3] = ["hashmap", "registry_0_filters", "registry_3_filters"];

/// Target: open + query within this factor of the map lookup.
const MAX_MAP_RATIO: f64 = 3.0;
/// Target: 3 pass-through filters cost at most this factor over none.
const MAX_FILTER_RATIO: f64 = 1.15;

/// (total time, total iterations) per (operation, variant).
type Totals = Mutex<BTreeMap<(&'static str, &'static str), (Duration, u64)>>;

/// The totals from criterion's `iter_custom`.
static CRITERION_TOTALS: Totals = Mutex::new(BTreeMap::new());
/// The same, from the interleaved cross-check.
static INTERLEAVED_TOTALS: Totals = Mutex::new(BTreeMap::new());

fn record(totals: &Totals, op: &'static str, variant: &'static str, elapsed: Duration, iters: u64) {
    let mut t = totals.lock().unwrap_or_else(|e| e.into_inner());
    let slot = t.entry((op, variant)).or_default();
    slot.0 += elapsed;
    slot.1 += iters;
}

fn quick() -> bool {
    std::env::var("HIVEBOX_BENCH_QUICK").is_ok_and(|v| v == "1")
}

/// The registry side: one registry, an open handle for set and one for enumeration.
struct RegSide {
    registry: Registry,
    caller: Caller,
    set_handle: Handle,
    enum_handle: Handle,
}

impl RegSide {
    fn new(filters: usize) -> Self {
        let registry = Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
        let caller = Caller::user(
            Token { user_sid: "S-1-22-1-1000".into(), system: false },
            ProcessInfo { pid: 4242, image: "/usr/bin/hivebox-bench".into(), ..ProcessInfo::default() },
        );
        let create = CreateOptions::default();
        let (key, _) = registry.create_key_path(&caller, None, PATH, &create).expect("create the 6-level path");
        registry.set_value(&caller, key, QUERY_NAME, Value::sz("hello, registry")).expect("set the queried value");
        registry.set_value(&caller, key, SET_NAME, Value::dword(0)).expect("set the counter");
        registry.close_key(&caller, key).expect("close");
        let (parent, _) = registry.create_key_path(&caller, None, ENUM_PATH, &create).expect("create the parent");
        for i in 0..SUBKEYS {
            let (k, _) =
                registry.create_key(&caller, Some(parent), &format!("Subkey{i:05}"), &create).expect("create a subkey");
            registry.close_key(&caller, k).expect("close");
        }
        registry.close_key(&caller, parent).expect("close");
        for altitude in &ALTITUDES[..filters] {
            let pass: Arc<dyn RegistryCallback> =
                Arc::new(|_: &CallbackCx<'_>, _: RegNotifyClass, _: Argument<'_, '_>| NtStatus::STATUS_SUCCESS);
            registry.register(altitude, pass).expect("register a pass-through filter");
        }
        let set_handle =
            registry.open_key(&caller, None, PATH, &OpenOptions::access(KEY_ALL_ACCESS)).expect("open for set");
        let enum_handle =
            registry.open_key(&caller, None, ENUM_PATH, &OpenOptions::access(KEY_READ)).expect("open for enumerate");
        Self { registry, caller, set_handle, enum_handle }
    }

    fn open_query(&self) {
        let r = &self.registry;
        let h = r.open_key(&self.caller, None, black_box(PATH), &OpenOptions::access(KEY_READ)).expect("open");
        let v = r.query_value(&self.caller, h, black_box(QUERY_NAME)).expect("query");
        r.close_key(&self.caller, h).expect("close");
        black_box(v);
    }

    fn set_value(&self, n: u32) {
        self.registry.set_value(&self.caller, self.set_handle, black_box(SET_NAME), Value::dword(n)).expect("set");
    }

    fn enumerate(&self) {
        for i in 0..SUBKEYS {
            black_box(self.registry.enumerate_key(&self.caller, self.enum_handle, i).expect("enumerate"));
        }
    }
}

/// The peer: full lower-cased path -> (lower-cased value name -> data), and a sorted name list.
struct MapSide {
    keys: HashMap<String, HashMap<String, Vec<u8>>>,
    names: Vec<String>,
}

impl MapSide {
    fn new() -> Self {
        let mut keys: HashMap<String, HashMap<String, Vec<u8>>> = HashMap::new();
        // The same population as the registry side: every level of both paths is a key.
        for path in [PATH, ENUM_PATH] {
            let mut prefix = String::new();
            for comp in path.split('\\').skip(1) {
                prefix.push('\\');
                prefix.push_str(comp);
                keys.entry(prefix.to_lowercase()).or_default();
            }
        }
        let values = keys.entry(PATH.to_lowercase()).or_default();
        values.insert(QUERY_NAME.to_lowercase(), Value::sz("hello, registry").data);
        values.insert(SET_NAME.to_lowercase(), Value::dword(0).data);
        let mut names: Vec<String> = (0..SUBKEYS).map(|i| format!("Subkey{i:05}")).collect();
        for name in &names {
            keys.entry(format!("{ENUM_PATH}\\{name}").to_lowercase()).or_default();
        }
        names.sort_by_key(|n| n.to_uppercase());
        Self { keys, names }
    }

    /// Case-insensitive lookup from the caller's string: lower-case the path and the value
    /// name, look both up, hand back an owned copy of the data (as `query_value` does).
    fn open_query(&self) {
        let path = black_box(PATH).to_lowercase();
        let v = self.keys.get(&path).and_then(|values| values.get(&black_box(QUERY_NAME).to_lowercase())).cloned();
        black_box(v.expect("the map holds the value"));
    }

    /// Insert into the key's value map (resolved once, as the registry side holds a handle).
    fn set_value(values: &mut HashMap<String, Vec<u8>>, n: u32) {
        values.insert(black_box(SET_NAME).to_lowercase(), n.to_le_bytes().to_vec());
    }

    /// Walk the sorted names by index, handing back an owned copy of each (as `enumerate_key` does).
    fn enumerate(&self) {
        for i in 0..self.names.len() {
            black_box(self.names.get(i).cloned());
        }
    }
}

struct Fixture {
    map: MapSide,
    reg: [RegSide; 2],
    counter: u32,
}

impl Fixture {
    fn new() -> Self {
        Self { map: MapSide::new(), reg: [RegSide::new(0), RegSide::new(3)], counter: 0 }
    }

    /// Runs `iters` iterations of one (operation, variant) and returns the time they took.
    fn run(&mut self, op: &str, variant: usize, iters: u64) -> Duration {
        let start;
        match (op, variant) {
            ("open_query", 0) => {
                start = Instant::now();
                for _ in 0..iters {
                    self.map.open_query();
                }
            }
            ("open_query", v) => {
                let side = &self.reg[v - 1];
                start = Instant::now();
                for _ in 0..iters {
                    side.open_query();
                }
            }
            ("set_value", 0) => {
                let values = self.map.keys.get_mut(&PATH.to_lowercase()).expect("the key is in the map");
                let mut n = self.counter;
                start = Instant::now();
                for _ in 0..iters {
                    n = n.wrapping_add(1);
                    MapSide::set_value(values, n);
                }
                self.counter = n;
            }
            ("set_value", v) => {
                let side = &self.reg[v - 1];
                let mut n = self.counter;
                start = Instant::now();
                for _ in 0..iters {
                    n = n.wrapping_add(1);
                    side.set_value(n);
                }
                self.counter = n;
            }
            ("enumerate_10k", 0) => {
                start = Instant::now();
                for _ in 0..iters {
                    self.map.enumerate();
                }
            }
            ("enumerate_10k", v) => {
                let side = &self.reg[v - 1];
                start = Instant::now();
                for _ in 0..iters {
                    side.enumerate();
                }
            }
            _ => unreachable!("unknown benchmark {op}/{variant}"),
        }
        start.elapsed()
    }
}

fn criterion_groups(c: &mut Criterion, fx: &mut Fixture) {
    let quick = quick();
    for (op, _) in OPS {
        let mut group = c.benchmark_group(op);
        if op == "enumerate_10k" {
            // One iteration is 10,000 calls: flat sampling keeps the run time sane.
            group.sampling_mode(SamplingMode::Flat);
            if !quick {
                group.sample_size(30);
            }
        }
        for (v, variant) in VARIANTS.iter().enumerate() {
            group.bench_function(BenchmarkId::from_parameter(variant), |b| {
                b.iter_custom(|iters| {
                    let elapsed = fx.run(op, v, iters);
                    record(&CRITERION_TOTALS, op, variant, elapsed, iters);
                    elapsed
                })
            });
        }
        group.finish();
    }
}

/// Alternates the three variants of every operation in short batches (rotating which goes
/// first), so that frequency scaling and neighbours on the machine hit all of them alike.
fn interleaved(fx: &mut Fixture) {
    let rounds = if quick() { 10 } else { 40 };
    let batch_time = Duration::from_millis(if quick() { 5 } else { 10 });
    for (op, _) in OPS {
        // Only the operations criterion measured in full (a filter on the command line skips some).
        let measured = {
            let totals = CRITERION_TOTALS.lock().unwrap_or_else(|e| e.into_inner());
            VARIANTS.iter().all(|v| totals.contains_key(&(op, *v)))
        };
        if !measured {
            continue;
        }
        // Size each variant's batch from a short calibration run.
        let mut batch = [1u64; 3];
        for (v, b) in batch.iter_mut().enumerate() {
            let mut iters = 1u64;
            loop {
                let t = fx.run(op, v, iters);
                if t >= batch_time / 4 || iters >= 1 << 24 {
                    *b = ((iters as f64) * batch_time.as_secs_f64() / t.as_secs_f64().max(1e-9)).max(1.0) as u64;
                    break;
                }
                iters *= 2;
            }
        }
        for round in 0..rounds {
            for k in 0..3 {
                let v = (round + k) % 3;
                let elapsed = fx.run(op, v, batch[v]);
                record(&INTERLEAVED_TOTALS, op, VARIANTS[v], elapsed, batch[v]);
            }
        }
    }
}

fn mark(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn print_table(title: &str, totals: &Totals) {
    let totals = totals.lock().unwrap_or_else(|e| e.into_inner());
    let ns = |op: &str, variant: &str| {
        totals.get(&(op, variant)).filter(|(_, n)| *n > 0).map(|(t, n)| t.as_nanos() as f64 / *n as f64)
    };
    let fmt_ns = |x: Option<f64>| x.map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"));
    println!();
    println!("{title}");
    println!(
        "{:<44} {:>14} {:>14} {:>14} {:>16} {:>18}",
        "operation (ns/op)", "hashmap", "reg 0 filters", "reg 3 filters", "reg/map", "3 filt/0 filt"
    );
    for (op, label) in OPS {
        let (map, r0, r3) = (ns(op, VARIANTS[0]), ns(op, VARIANTS[1]), ns(op, VARIANTS[2]));
        let map_ratio = match (map, r0) {
            (Some(m), Some(r)) if m > 0.0 => {
                let ratio = r / m;
                if op == "open_query" {
                    format!("{ratio:.2} {} ≤{MAX_MAP_RATIO}", mark(ratio <= MAX_MAP_RATIO))
                } else {
                    format!("{ratio:.2}")
                }
            }
            _ => "-".to_owned(),
        };
        let filter_ratio = match (r0, r3) {
            (Some(a), Some(b)) if a > 0.0 => {
                let ratio = b / a;
                format!("{ratio:.3} {} ≤{MAX_FILTER_RATIO}", mark(ratio <= MAX_FILTER_RATIO))
            }
            _ => "-".to_owned(),
        };
        println!(
            "{label:<44} {:>14} {:>14} {:>14} {map_ratio:>16} {filter_ratio:>18}",
            fmt_ns(map),
            fmt_ns(r0),
            fmt_ns(r3)
        );
    }
    if let (Some(r0), Some(r3)) = (ns("enumerate_10k", VARIANTS[1]), ns("enumerate_10k", VARIANTS[2])) {
        let per = f64::from(SUBKEYS);
        println!("  (enumerate per subkey: reg 0 filters {:.1} ns, reg 3 filters {:.1} ns)", r0 / per, r3 / per);
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    if quick() {
        c = c.warm_up_time(Duration::from_millis(300)).measurement_time(Duration::from_secs(1)).sample_size(10);
    }
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`) criterion runs each
    // benchmark once as a smoke test, and the cross-check and summary are skipped.
    // `--profile-time` (profiling under perf) skips them too.
    let benchmarking =
        std::env::args().any(|a| a == "--bench") && !std::env::args().any(|a| a.starts_with("--profile-time"));
    let mut fx = Fixture::new();
    criterion_groups(&mut c, &mut fx);
    c.final_summary();
    if benchmarking {
        interleaved(&mut fx);
        println!();
        println!("hivebox-core registry benchmark summary{}", if quick() { " (HIVEBOX_BENCH_QUICK=1)" } else { "" });
        print_table("criterion runs (iter_custom totals, warm-up included):", &CRITERION_TOTALS);
        print_table("interleaved cross-check (variants alternate in short batches):", &INTERLEAVED_TOTALS);
        println!();
        println!(
            "targets: open + query ≤ {MAX_MAP_RATIO}x the map lookup; 3 pass-through filters ≤ {MAX_FILTER_RATIO}x no filters"
        );
    }
}
