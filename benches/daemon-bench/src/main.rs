//! The daemon benchmark: registry operations over the Unix socket from 16 pipelining client
//! threads, beside the same operations called in-process on the daemon's own registry from 16
//! threads, measured in one run (the ratio is the cost of the socket).
//!
//! ```text
//! daemon-bench [--quick] [--clients N] [--depth D] [--seconds S]
//! ```
//!
//! 1. Queries: `QueryValue` of existing values, each client keeping `D` requests in flight.
//!    Target: at least 100,000 per second.
//! 2. Durable writes: `SetValue` to each client's own key, acknowledged only once the
//!    write-ahead log is synced (group commit shares one `fdatasync` among the writers waiting
//!    at once). Target: at least 20,000 per second. The syncs per write are printed.
//! 3. Latency: queries at half the target load (50,000 per second in all) over 16
//!    connections, paced: a client thread sends one request, waits for its reply, then waits
//!    for its next slot (no pipelining, so each sample is one full round trip). p50/p99/max.
//!    Target: p99 under 200 microseconds. The load comes from 4 client threads, then from one
//!    thread per connection (16 busy threads of the harness's own crowd the 2 cores and set
//!    the floor). Beside each, the floor of any Unix-socket service here: the same threads and
//!    pacing against threads that only echo their bytes.
//!
//! The daemon runs in this process (release build) on a home in a temporary directory on the
//! same disk as the system temp directory; the protection filter with the default policy is
//! registered, as in production.

use anyhow::{Context, Result, bail};
use hivebox_client::Connection;
use hivebox_core::access::KEY_ALL_ACCESS;
use hivebox_core::{Caller, Handle, OpenOptions, Registry, Value};
use hivebox_daemon::{Daemon, DaemonOptions};
use hivebox_proto::{HKEY_LOCAL_MACHINE, Reply, Request};
use std::path::Path;
use std::sync::Barrier;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TARGET_QUERIES: f64 = 100_000.0;
const TARGET_WRITES: f64 = 20_000.0;
const TARGET_P99_US: f64 = 200.0;
const VALUES: usize = 64;
/// Client threads generating the paced load (beside the run with one thread per connection).
const LATENCY_THREADS: usize = 4;

#[derive(Debug, Clone, Copy)]
struct Args {
    clients: usize,
    depth: usize,
    seconds: f64,
}

fn parse_args() -> Result<Args> {
    let mut a = Args { clients: 16, depth: 32, seconds: 3.0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut num = |name: &str| -> Result<f64> {
            let v = it.next().with_context(|| format!("{name} needs a value"))?;
            v.parse().with_context(|| format!("{name} {v}: not a number"))
        };
        match arg.as_str() {
            "--quick" => a.seconds = 1.0,
            "--clients" => a.clients = num("--clients")? as usize,
            "--depth" => a.depth = num("--depth")? as usize,
            "--seconds" => a.seconds = num("--seconds")?,
            "-h" | "--help" => {
                println!("usage: daemon-bench [--quick] [--clients N] [--depth D] [--seconds S]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.clients == 0 || a.depth == 0 || a.seconds <= 0.0 {
        bail!("--clients, --depth and --seconds must be positive");
    }
    Ok(a)
}

fn key_path(client: usize) -> String {
    format!(r"SOFTWARE\bench\c{client}")
}

/// Opens the client's key on a connection.
fn open(c: &mut Connection, client: usize) -> Result<u64> {
    let r = c.call(&Request::OpenKey {
        parent: HKEY_LOCAL_MACHINE,
        path: key_path(client),
        options: 0,
        access: KEY_ALL_ACCESS,
        txn: 0,
    })?;
    match r {
        Reply::Handle(h) => Ok(h),
        other => bail!("open: {other:?}"),
    }
}

/// Runs `clients` socket clients for `seconds`, each keeping `depth` requests of `make` in
/// flight; returns operations per second.
fn socket_rate(socket: &Path, a: Args, make: impl Fn(u64, usize, u64) -> Request + Sync) -> Result<f64> {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let barrier = Barrier::new(a.clients + 1);
    let elapsed = std::thread::scope(|s| -> Result<Duration> {
        let mut workers = Vec::new();
        for client in 0..a.clients {
            let (stop, done, barrier, make) = (&stop, &done, &barrier, &make);
            workers.push(s.spawn(move || -> Result<()> {
                let mut c = Connection::connect(socket)?;
                let h = open(&mut c, client)?;
                barrier.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for i in 0..a.depth {
                        c.queue(&make(h, i, n));
                        n += 1;
                    }
                    c.flush()?;
                    for _ in 0..a.depth {
                        let (_, r) = c.recv()?;
                        if let Reply::Error { status, message } = r {
                            bail!("{status} {message}");
                        }
                    }
                }
                done.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }));
        }
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(a.seconds));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a client panicked"))??;
        }
        Ok(start.elapsed())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

/// The same operations in-process: `threads` threads calling the registry directly.
fn local_rate(reg: &Registry, a: Args, op: impl Fn(&Registry, &Caller, Handle, u64) + Sync) -> Result<f64> {
    let stop = AtomicBool::new(false);
    let done = AtomicU64::new(0);
    let barrier = Barrier::new(a.clients + 1);
    let caller = Caller::system();
    let elapsed = std::thread::scope(|s| -> Result<Duration> {
        let mut workers = Vec::new();
        for client in 0..a.clients {
            let (stop, done, barrier, op, caller) = (&stop, &done, &barrier, &op, &caller);
            workers.push(s.spawn(move || -> Result<()> {
                let path = format!(r"\REGISTRY\MACHINE\{}", key_path(client));
                let h = reg.open_key(caller, None, &path, &OpenOptions::access(KEY_ALL_ACCESS))?;
                barrier.wait();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    op(reg, caller, h, n);
                    n += 1;
                }
                reg.close_key(caller, h)?;
                done.fetch_add(n, Ordering::Relaxed);
                Ok(())
            }));
        }
        barrier.wait();
        let start = Instant::now();
        std::thread::sleep(Duration::from_secs_f64(a.seconds));
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("a thread panicked"))??;
        }
        Ok(start.elapsed())
    })?;
    Ok(done.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64())
}

/// One round trip on one connection.
type RoundTrip = Box<dyn FnMut() -> Result<()> + Send>;

/// Sets up connection `i` of a paced run.
type MakeTrip<'a> = &'a (dyn Fn(usize) -> Result<RoundTrip> + Sync);

/// Paced round trips at `rate` per second in all, over `conns` connections driven by
/// `threads` client threads (each takes its connections in turn, one round trip per slot);
/// returns sorted latencies in microseconds.
fn paced(a: Args, conns: usize, threads: usize, rate: f64, make: MakeTrip<'_>) -> Result<Vec<f64>> {
    let per_thread = rate / threads as f64;
    let interval = Duration::from_secs_f64(1.0 / per_thread);
    let barrier = Barrier::new(threads);
    let mut all = std::thread::scope(|s| -> Result<Vec<f64>> {
        let mut workers = Vec::new();
        for t in 0..threads {
            let barrier = &barrier;
            workers.push(s.spawn(move || -> Result<Vec<f64>> {
                let mut mine: Vec<RoundTrip> = (t..conns).step_by(threads).map(make).collect::<Result<_>>()?;
                barrier.wait();
                // Spread the threads' slots over one interval.
                let start = Instant::now() + interval.mul_f64(t as f64 / threads as f64);
                let end = start + Duration::from_secs_f64(a.seconds);
                let mut next = start;
                let mut lat = Vec::new();
                let mut i = 0usize;
                while next < end {
                    let now = Instant::now();
                    if now < next {
                        std::thread::sleep(next - now);
                    }
                    let n = mine.len();
                    let trip = &mut mine[i % n];
                    let t0 = Instant::now();
                    trip()?;
                    lat.push(t0.elapsed().as_secs_f64() * 1e6);
                    i += 1;
                    next += interval;
                }
                Ok(lat)
            }));
        }
        let mut all = Vec::new();
        for w in workers {
            all.extend(w.join().map_err(|_| anyhow::anyhow!("a client panicked"))??);
        }
        Ok(all)
    })?;
    all.sort_by(f64::total_cmp);
    Ok(all)
}

/// A query round trip on a new daemon connection.
fn query_trip(socket: &Path, client: usize) -> Result<RoundTrip> {
    let mut c = Connection::connect(socket)?;
    let h = open(&mut c, client)?;
    let mut i = 0usize;
    Ok(Box::new(move || {
        let r = c.call(&Request::QueryValue { handle: h, name: format!("v{}", i % VALUES) })?;
        i += 1;
        match r {
            Reply::Value(_) => Ok(()),
            other => bail!("query: {other:?}"),
        }
    }))
}

/// The floor under any Unix-socket service here: a thread that echoes what it reads (no
/// decoding, no registry), paired with the client.
fn echo_trip(_: usize) -> Result<RoundTrip> {
    use std::io::{Read, Write};
    let (mut mine, mut theirs) = std::os::unix::net::UnixStream::pair()?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 256];
        while let Ok(n) = theirs.read(&mut buf) {
            if n == 0 || theirs.write_all(&buf[..n]).is_err() {
                return;
            }
        }
    });
    Ok(Box::new(move || {
        mine.write_all(&[7u8; 32])?;
        let mut back = [0u8; 32];
        mine.read_exact(&mut back)?;
        Ok(())
    }))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() -> Result<()> {
    let a = parse_args()?;
    let home = tempfile::tempdir().context("cannot create a temporary home")?;
    let daemon = Daemon::start(&DaemonOptions { home: home.path().to_owned(), socket: None })?;
    let socket = daemon.socket().to_owned();
    let reg = daemon.registry().clone();
    // Each client's key, with values to query.
    let caller = Caller::system();
    for client in 0..a.clients {
        let path = format!(r"\REGISTRY\MACHINE\{}", key_path(client));
        let (h, _) = reg.create_key_path(&caller, None, &path, &Default::default())?;
        for v in 0..VALUES {
            reg.set_value(&caller, h, &format!("v{v}"), Value::sz(&format!("value {v} of client {client}")))?;
        }
        reg.close_key(&caller, h)?;
    }
    println!(
        "daemon-bench: {} clients, {} requests in flight each, {:.1} s per measure, {} cores",
        a.clients,
        a.depth,
        a.seconds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );

    let names: Vec<String> = (0..VALUES).map(|v| format!("v{v}")).collect();
    let q_socket =
        socket_rate(&socket, a, |h, i, _| Request::QueryValue { handle: h, name: names[i % VALUES].clone() })?;
    let q_local = local_rate(&reg, a, |r, c, h, n| {
        r.query_value(c, h, &names[n as usize % VALUES]).expect("query");
    })?;
    println!(
        "queries:        socket {:>10.0}/s   in-process {:>10.0}/s   in-process/socket {:>5.1}x   target >= {:.0}/s: {}",
        q_socket,
        q_local,
        q_local / q_socket,
        TARGET_QUERIES,
        verdict(q_socket >= TARGET_QUERIES)
    );

    let syncs0 = hivebox_hive::log_syncs();
    let w_socket = socket_rate(&socket, a, |h, i, n| Request::SetValue {
        handle: h,
        name: format!("w{}", i % 8),
        value: Value::dword(n as u32),
    })?;
    let syncs = hivebox_hive::log_syncs() - syncs0;
    let writes = w_socket * a.seconds;
    let syncs1 = hivebox_hive::log_syncs();
    let w_local = local_rate(&reg, a, |r, c, h, n| {
        r.set_value(c, h, &format!("w{}", n % 8), Value::dword(n as u32)).expect("write");
    })?;
    let local_syncs = hivebox_hive::log_syncs() - syncs1;
    println!(
        "durable writes: socket {:>10.0}/s   in-process {:>10.0}/s   in-process/socket {:>5.1}x   target >= {:.0}/s: {}",
        w_socket,
        w_local,
        w_local / w_socket,
        TARGET_WRITES,
        verdict(w_socket >= TARGET_WRITES)
    );
    println!(
        "                writes per fdatasync: socket {:.1}, in-process {:.1}",
        writes / syncs.max(1) as f64,
        w_local * a.seconds / local_syncs.max(1) as f64
    );

    let rate = TARGET_QUERIES / 2.0;
    // The daemon serves `clients` connections either way; what changes is how many threads
    // the load generator itself puts on the machine's cores.
    for threads in [LATENCY_THREADS.min(a.clients), a.clients] {
        let q = |i| query_trip(&socket, i);
        let lat = paced(a, a.clients, threads, rate, &q)?;
        let echo = paced(a, a.clients, threads, rate, &echo_trip)?;
        let (p50, p99, max) = (pct(&lat, 0.5), pct(&lat, 0.99), pct(&lat, 1.0));
        println!(
            "query latency at {rate:.0}/s (half the target load), {} connections from {threads} client threads, {} samples:",
            a.clients,
            lat.len()
        );
        println!(
            "                daemon p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us   echo floor p50 {:.0} us, p99 {:.0} us   daemon/echo p99 {:.1}x   target p99 < {TARGET_P99_US:.0} us: {}",
            pct(&echo, 0.5),
            pct(&echo, 0.99),
            p99 / pct(&echo, 0.99),
            verdict(p99 < TARGET_P99_US)
        );
    }
    drop(reg);
    daemon.stop()?;
    Ok(())
}
