//! The isolation filter's cost: the same operations by a boxed caller and by a host caller,
//! on one registry with the isolation filter registered, in one run (best of several rounds,
//! interleaved, so that drift hits both alike).
//!
//! 1. Query of a key the box never touched (open, query a value, close). Target: boxed at
//!    most 1.5x the host.
//! 2. Enumeration of a key with 10,000 base subkeys and 1,000 the box created (every index,
//!    one handle). Target: boxed at most 2x the host's enumeration of its 10,000.
//!
//! `HIVEBOX_BENCH_QUICK=1` runs fewer rounds.

use hivebox_core::access::{KEY_ALL_ACCESS, KEY_READ};
use hivebox_core::isolate::{IsolationFilter, box_mount};
use hivebox_core::{
    Caller, CreateOptions, KeyImage, ManualClock, MemoryStorage, OpenOptions, ProcessInfo, Registry, Token, Value,
};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const UNTOUCHED: &str = r"\REGISTRY\MACHINE\SOFTWARE\Bench\Untouched";
const BIG: &str = r"\REGISTRY\MACHINE\SOFTWARE\Bench\Big";

fn caller(box_name: Option<&str>) -> Caller {
    let process =
        ProcessInfo { pid: 1, image: "/bin/bench".into(), box_name: box_name.map(str::to_owned), ..Default::default() };
    Caller::user(Token { user_sid: "S-1-22-1-1000".into(), system: false }, process)
}

fn time(n: u64, mut f: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n as u32
}

fn main() {
    let quick = std::env::var_os("HIVEBOX_BENCH_QUICK").is_some();
    let rounds = if quick { 3 } else { 7 };
    let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
    let sys = Caller::system();
    let image = KeyImage { name: "b".into(), ..KeyImage::default() };
    reg.load_key(&sys, &box_mount("b"), "memory", image, Box::new(MemoryStorage)).unwrap();
    let filter = IsolationFilter::new();
    filter.register(&reg).unwrap();
    filter.add_box("b");
    let host = caller(None);
    let boxed = caller(Some("b"));
    let (h, _) = reg.create_key_path(&sys, None, UNTOUCHED, &CreateOptions::default()).unwrap();
    reg.set_value(&sys, h, "v", Value::sz("some data")).unwrap();
    reg.close_key(&sys, h).unwrap();
    let (big, _) = reg.create_key_path(&sys, None, BIG, &CreateOptions::default()).unwrap();
    for i in 0..10_000 {
        let (k, _) = reg.create_key(&sys, Some(big), &format!("base{i:05}"), &CreateOptions::default()).unwrap();
        reg.close_key(&sys, k).unwrap();
    }
    reg.close_key(&sys, big).unwrap();
    let bbig = reg.open_key(&boxed, None, BIG, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    for i in 0..1_000 {
        // Interleaved with the base's names, so the merge has work to do.
        let (k, _) =
            reg.create_key(&boxed, Some(bbig), &format!("base{:05}x", i * 10), &CreateOptions::default()).unwrap();
        reg.close_key(&boxed, k).unwrap();
    }
    reg.close_key(&boxed, bbig).unwrap();

    let query = |c: &Caller| {
        let h = reg.open_key(c, None, UNTOUCHED, &OpenOptions::access(KEY_READ)).unwrap();
        black_box(reg.query_value(c, h, "v").unwrap());
        reg.close_key(c, h).unwrap();
    };
    let enumerate = |c: &Caller| {
        let h = reg.open_key(c, None, BIG, &OpenOptions::access(KEY_READ)).unwrap();
        let mut n = 0;
        while let Ok(s) = reg.enumerate_key(c, h, n) {
            black_box(s);
            n += 1;
        }
        reg.close_key(c, h).unwrap();
        n
    };
    assert_eq!(enumerate(&host), 10_000);
    assert_eq!(enumerate(&boxed), 11_000);
    let hh = reg.open_key(&host, None, UNTOUCHED, &OpenOptions::access(KEY_READ)).unwrap();
    let hb = reg.open_key(&boxed, None, UNTOUCHED, &OpenOptions::access(KEY_READ)).unwrap();
    let value = |c: &Caller, h| {
        black_box(reg.query_value(c, h, "v").unwrap());
    };
    let (mut qh, mut qb, mut eh, mut eb) = (Duration::MAX, Duration::MAX, Duration::MAX, Duration::MAX);
    let (mut vh, mut vb) = (Duration::MAX, Duration::MAX);
    for _ in 0..rounds {
        qh = qh.min(time(20_000, || query(&host)));
        qb = qb.min(time(20_000, || query(&boxed)));
        vh = vh.min(time(50_000, || value(&host, hh)));
        vb = vb.min(time(50_000, || value(&boxed, hb)));
        eh = eh.min(time(5, || {
            enumerate(&host);
        }));
        eb = eb.min(time(5, || {
            enumerate(&boxed);
        }));
    }
    let ratio = |b: Duration, h: Duration| b.as_secs_f64() / h.as_secs_f64();
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    println!("isolation: boxed vs host, same registry, best of {rounds} rounds");
    println!(
        "query of an untouched key (open+query+close): host {:>8.2} us   boxed {:>8.2} us   boxed/host {:.2}x   target <= 1.5x: {}",
        qh.as_secs_f64() * 1e6,
        qb.as_secs_f64() * 1e6,
        ratio(qb, qh),
        verdict(ratio(qb, qh) <= 1.5)
    );
    println!(
        "query a value on an open handle:             host {:>8.2} us   boxed {:>8.2} us   boxed/host {:.2}x",
        vh.as_secs_f64() * 1e6,
        vb.as_secs_f64() * 1e6,
        ratio(vb, vh),
    );
    println!(
        "enumerate 10,000 base + 1,000 box subkeys:   host {:>8.2} ms   boxed {:>8.2} ms   boxed/host {:.2}x   target <= 2x: {}",
        eh.as_secs_f64() * 1e3,
        eb.as_secs_f64() * 1e3,
        ratio(eb, eh),
        verdict(ratio(eb, eh) <= 2.0)
    );
}
