//! The sandbox benchmark: starting a program in a box beside `bwrap` starting it with a
//! comparable set of namespaces, and sequential file throughput inside a box beside the host.
//! Every figure is measured in the same run as its peer and printed as a ratio.
//!
//! ```text
//! sandbox-bench [--quick] [--runs N] [--mib M] [--rounds R]
//! ```
//!
//! Needs root (cgroups, namespaces, `drop_caches`) and `bwrap` (Debian `bubblewrap`). The
//! `hivebox` binary is `$HIVEBOX_BIN`, else the one beside this benchmark's executable
//! (`target/release/hivebox`: build it first with `cargo build --release -p hivebox-cli`).
//! A daemon of a fresh home under `/var/tmp` is started beforehand (its start-up is not
//! counted) and box `sandbox-bench` created in it; both go at the end.
//!
//! 1. Start-up: `hivebox run --box B -- /bin/true` beside `bwrap` unsharing the namespaces
//!    the box gets (read from `/proc/self/ns` inside the box, so a network namespace added
//!    to the launcher is matched), with `/proc`, `/dev`, a tmpfs `/run`, the hivebox home
//!    covered and capabilities dropped. bwrap's root is an overlay (`--overlay-src /
//!    --tmp-overlay /`) when this bwrap has those options (0.10+), else `--ro-bind / /`.
//!    Floors in the same rounds: spawning `/bin/true`, `hivebox box list` (the CLI's start-up
//!    and one daemon round trip), and moving a process into a cgroup by writing its pid to
//!    `cgroup.procs` (what `hivebox run` avoids: its keeper is born in the box's cgroup). 30 interleaved runs (20 with `--quick`), 3 warm-up
//!    runs each; median and p90. Targets: median ≤ 1.5× bwrap's and under 30 ms.
//! 2. Throughput: `dd bs=1M` writing 1 GiB (256 MiB with `--quick`) from `/dev/zero` with
//!    `conv=fdatasync`, then reading it back to `/dev/null` after `drop_caches`: on the host
//!    at `/var/tmp/hivebox-bench-host.bin`, in the box at `/var/tmp/hivebox-bench-box.bin`
//!    (the box's upper directory, on the same disk). dd's own timing (no process start-up).
//!    5 rounds (also with `--quick`), both files deleted and synced before each, alternating which
//!    goes first; the median of each side. Target: box ≥ 90% of the host's.
//! 3. Network decisions: connecting (and closing) a TCP socket to a listener on the host's
//!    outside address, N times in a row from one process in a box, in a `network = "full"` box
//!    and in a `network = "decide"` box whose rules allow that destination (so every connect
//!    after the first is an already-allowed destination: stopped by seccomp, made by the
//!    launcher on its copy of the socket). Both go through pasta; the difference of the
//!    per-connect means is the decision overhead. The connecting program is this benchmark
//!    itself (`--connect-loop`), run in the box. The same again to a listener on the box's own
//!    loopback (always allowed, no pasta: the mechanism's cost with little noise). 1,000
//!    connects per round (300 with `--quick`), 7 rounds (5) alternating the boxes; medians.
//!    Target: overhead under 200 µs.
//!
//! Run in release (`cargo run --release -p sandbox-bench`).

use anyhow::{Context, Result, bail, ensure};
use std::ffi::OsStr;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BOX: &str = "sandbox-bench";
const HOST_FILE: &str = "/var/tmp/hivebox-bench-host.bin";
const BOX_FILE: &str = "/var/tmp/hivebox-bench-box.bin";
const RATIO_TARGET: f64 = 1.5;
const STARTUP_TARGET: Duration = Duration::from_millis(30);
const THROUGHPUT_TARGET: f64 = 0.9;
const WARMUP: usize = 3;

struct Args {
    quick: bool,
    runs: usize,
    mib: u64,
    rounds: usize,
}

fn args() -> Result<Args> {
    let mut a = Args { quick: false, runs: 30, mib: 1024, rounds: 5 };
    let (mut runs, mut mib, mut rounds) = (None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |what: &str| -> Result<u64> {
            it.next().with_context(|| format!("{what} needs a number"))?.parse().with_context(|| what.to_owned())
        };
        match arg.as_str() {
            "--quick" => a.quick = true,
            "--runs" => runs = Some(number("--runs")? as usize),
            "--mib" => mib = Some(number("--mib")?),
            "--rounds" => rounds = Some(number("--rounds")? as usize),
            "-h" | "--help" => {
                println!("usage: sandbox-bench [--quick] [--runs N] [--mib M] [--rounds R]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}"),
        }
    }
    if a.quick {
        (a.runs, a.mib, a.rounds) = (20, 256, 5);
    }
    a.runs = runs.unwrap_or(a.runs).max(1);
    a.mib = mib.unwrap_or(a.mib).max(1);
    a.rounds = rounds.unwrap_or(a.rounds).max(1);
    Ok(a)
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// The hivebox binary: `$HIVEBOX_BIN`, else `hivebox` beside this executable.
fn hivebox_binary() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("HIVEBOX_BIN").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let exe = std::env::current_exe().context("cannot find this executable")?;
    let bin = exe.with_file_name("hivebox");
    ensure!(
        bin.is_file(),
        "{} does not exist: build it first (cargo build --release -p hivebox-cli) or set HIVEBOX_BIN",
        bin.display()
    );
    Ok(bin)
}

/// A running daemon of a fresh home, and its box; stopped and removed when dropped.
struct Bench {
    bin: PathBuf,
    home: tempfile::TempDir,
    daemon: Child,
}

impl Bench {
    fn start(bin: PathBuf) -> Result<Bench> {
        let home = tempfile::Builder::new()
            .prefix("hivebox-sandbox-bench.")
            .tempdir_in("/var/tmp")
            .context("cannot create a home under /var/tmp")?;
        let log = std::fs::File::create(home.path().join("daemon.log")).context("cannot create the daemon's log")?;
        let daemon = Command::new(&bin)
            .arg("daemon")
            .arg("--home")
            .arg(home.path())
            .env_remove("HIVEBOX_SOCKET")
            .env_remove("HIVEBOX_BOX")
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start {} daemon", bin.display()))?;
        let mut bench = Bench { bin, home, daemon };
        let socket = bench.home.path().join("hivebox.sock");
        let until = Instant::now() + Duration::from_secs(10);
        while UnixStream::connect(&socket).is_err() {
            if let Some(status) = bench.daemon.try_wait()? {
                bail!("the daemon exited ({status}): see its log");
            }
            ensure!(Instant::now() < until, "the daemon does not listen on {} after 10 s", socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
        bench.hivebox(["box", "create", BOX])?;
        Ok(bench)
    }

    /// `hivebox ARGS` against this home.
    fn command<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).env("HIVEBOX_HOME", self.home.path()).env_remove("HIVEBOX_SOCKET").env_remove("HIVEBOX_BOX");
        c
    }

    /// Runs `hivebox ARGS`; its output, or an error when it fails.
    fn hivebox<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(&self, args: I) -> Result<Output> {
        checked(self.command(args))
    }

    /// `hivebox run --box B -- CMD...`.
    fn run_boxed(&self, cmd: &[&str]) -> Command {
        let mut c = self.command(["run", "--box", BOX, "--"]);
        c.args(cmd);
        c
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.command(["box", "delete", BOX]).output();
        let pid = rustix::process::Pid::from_child(&self.daemon);
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let until = Instant::now() + Duration::from_secs(5);
        while matches!(self.daemon.try_wait(), Ok(None)) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// Runs `c` with its output captured; an error saying why when it fails.
fn checked(mut c: Command) -> Result<Output> {
    let out = c.stdin(Stdio::null()).output().with_context(|| format!("cannot start {c:?}"))?;
    ensure!(out.status.success(), "{c:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    Ok(out)
}

/// The wall time of running `c` to completion (output discarded; it must succeed).
fn time(c: &mut Command) -> Result<Duration> {
    c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    let t = Instant::now();
    let status = c.status().with_context(|| format!("cannot start {c:?}"))?;
    let d = t.elapsed();
    ensure!(status.success(), "{c:?} failed ({status})");
    Ok(d)
}

/// Median and p90 of `v`.
fn stats(v: &mut [Duration]) -> (Duration, Duration) {
    v.sort();
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2 };
    let p90 = v[((n * 9).div_ceil(10)).saturating_sub(1)];
    (median, p90)
}

/// The namespaces (of those bwrap can unshare besides mount, PID, IPC, UTS) the box gets:
/// compared with this process's through `/proc/self/ns` inside the box.
fn box_namespaces(bench: &Bench) -> Result<Vec<&'static str>> {
    const KINDS: [(&str, &str); 4] =
        [("net", "--unshare-net"), ("cgroup", "--unshare-cgroup"), ("user", "--unshare-user"), ("mnt", "")];
    let mut cmd = vec!["/bin/readlink"];
    let links: Vec<String> = KINDS.iter().map(|(k, _)| format!("/proc/self/ns/{k}")).collect();
    cmd.extend(links.iter().map(String::as_str));
    let out = bench.hivebox(["run", "--box", BOX, "--"].iter().chain(&cmd))?;
    let inside: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect();
    ensure!(inside.len() == KINDS.len(), "readlink in the box printed {inside:?}");
    let mut flags = Vec::new();
    for ((kind, flag), seen) in KINDS.iter().zip(&inside) {
        let host = std::fs::read_link(format!("/proc/self/ns/{kind}"))?;
        let own = host.to_string_lossy() != seen.as_str();
        if *kind == "mnt" {
            ensure!(own, "the box shares the host's mount namespace");
        } else if own {
            flags.push(*flag);
        }
    }
    Ok(flags)
}

/// bwrap's arguments for a box like hivebox's, and how its root is made.
fn bwrap_args(bench: &Bench, extra: &[&'static str]) -> Result<(Vec<String>, &'static str)> {
    let help = Command::new("bwrap").arg("--help").output().context("cannot run bwrap (apt-get install bubblewrap)")?;
    let help = String::from_utf8_lossy(&help.stdout).into_owned() + &String::from_utf8_lossy(&help.stderr);
    let mut common: Vec<String> = ["--unshare-pid", "--unshare-ipc", "--unshare-uts"].map(String::from).to_vec();
    common.extend(extra.iter().map(|s| s.to_string()));
    let tail = |root: &[&str]| -> Vec<String> {
        let mut a = common.clone();
        a.extend(root.iter().map(|s| s.to_string()));
        a.extend(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/run", "--tmpfs"].map(String::from));
        a.push(bench.home.path().display().to_string());
        a.extend(["--cap-drop", "ALL", "--", "/bin/true"].map(String::from));
        a
    };
    if help.contains("--tmp-overlay") {
        let a = tail(&["--overlay-src", "/", "--tmp-overlay", "/"]);
        if Command::new("bwrap").args(&a).stderr(Stdio::null()).status().is_ok_and(|s| s.success()) {
            return Ok((a, "overlay root (--overlay-src / --tmp-overlay /)"));
        }
    }
    let a = tail(&["--ro-bind", "/", "/"]);
    checked({
        let mut c = Command::new("bwrap");
        c.args(&a);
        c
    })?;
    Ok((a, "read-only bind of / (this bwrap has no overlay options: no overlay mount to pay for)"))
}

fn startup(bench: &Bench, a: &Args) -> Result<()> {
    let extra = box_namespaces(bench)?;
    let (bwrap, root) = bwrap_args(bench, &extra)?;
    println!("== start-up: hivebox run --box {BOX} -- /bin/true beside bwrap ({} interleaved runs) ==", a.runs);
    println!(
        "namespaces: mount, PID, IPC, UTS{}; bwrap root: {root}",
        if extra.is_empty() {
            " (network: the host's, as the box's)".to_owned()
        } else {
            format!(" + {}", extra.join(" "))
        }
    );
    let scratch = Scratch::create()?;
    type Measure<'a> = Box<dyn Fn() -> Result<Duration> + 'a>;
    let peers: [(&str, Measure); 5] = [
        ("hivebox run", Box::new(|| time(&mut bench.run_boxed(&["/bin/true"])))),
        (
            "bwrap",
            Box::new(|| {
                let mut c = Command::new("bwrap");
                c.args(&bwrap);
                time(&mut c)
            }),
        ),
        ("floor: spawn /bin/true", Box::new(|| time(&mut Command::new("/bin/true")))),
        ("hivebox box list (CLI + 1 daemon call)", Box::new(|| time(&mut bench.command(["box", "list"])))),
        ("joining a cgroup (cgroup.procs write)", Box::new(|| scratch.join_time())),
    ];
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); peers.len()];
    for round in 0..WARMUP + a.runs {
        for k in 0..peers.len() {
            let i = (round + k) % peers.len();
            let d = (peers[i].1)()?;
            if round >= WARMUP {
                times[i].push(d);
            }
        }
    }
    let s: Vec<(Duration, Duration)> = times.iter_mut().map(|v| stats(v)).collect();
    println!("{:<42} {:>10} {:>10} {:>8}", "", "median", "p90", "× bwrap");
    for ((name, _), (median, p90)) in peers.iter().zip(&s) {
        let ratio = median.as_secs_f64() / s[1].0.as_secs_f64();
        println!("{name:<42} {:>10} {:>10} {ratio:>7.2}×", ms(*median), ms(*p90));
    }
    let ratio = s[0].0.as_secs_f64() / s[1].0.as_secs_f64();
    println!(
        "target: hivebox run ≤ {RATIO_TARGET}× bwrap: {} ({ratio:.2}×); under {} ms: {} ({})",
        verdict(ratio <= RATIO_TARGET),
        STARTUP_TARGET.as_millis(),
        verdict(s[0].0 < STARTUP_TARGET),
        ms(s[0].0)
    );
    println!();
    Ok(())
}

/// A scratch cgroup beside the boxes' (at the cgroup v2 root): what `hivebox run` pays to
/// move itself into its box's cgroup, timed on a child that joins it.
struct Scratch(PathBuf);

impl Scratch {
    fn create() -> Result<Scratch> {
        let info = std::fs::read_to_string("/proc/self/mountinfo")?;
        let root = info
            .lines()
            .find_map(|l| {
                let (left, right) = l.split_once(" - ")?;
                (right.split(' ').next() == Some("cgroup2")).then(|| left.split(' ').nth(4).map(PathBuf::from))?
            })
            .context("no cgroup v2 hierarchy is mounted")?;
        let dir = root.join(format!("sandbox-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Scratch(dir))
    }

    /// The time of writing a fresh child's pid to `cgroup.procs`.
    fn join_time(&self) -> Result<Duration> {
        let mut child = Command::new("/bin/sleep").arg("10").stdin(Stdio::null()).spawn()?;
        let t = Instant::now();
        let r = std::fs::write(self.0.join("cgroup.procs"), child.id().to_string());
        let d = t.elapsed();
        let _ = child.kill();
        let _ = child.wait();
        r.context("cannot move a child into the scratch cgroup")?;
        Ok(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}

/// dd's own figure: seconds from its `..., N s, ...` summary line.
fn dd_seconds(stderr: &[u8]) -> Result<f64> {
    let text = String::from_utf8_lossy(stderr);
    let line = text.lines().find(|l| l.contains(" copied")).with_context(|| format!("no dd summary in {text:?}"))?;
    line.split(", ")
        .find_map(|f| f.strip_suffix(" s").and_then(|n| n.trim().parse().ok()))
        .with_context(|| format!("no time in dd's {line:?}"))
}

fn drop_caches() -> Result<()> {
    rustix::fs::sync();
    std::fs::write("/proc/sys/vm/drop_caches", "3").context("cannot drop the page cache (needs root)")
}

/// Runs dd (on the host, or in the box); bytes per second.
fn dd(bench: &Bench, boxed: bool, args: &[String], bytes: u64) -> Result<f64> {
    let mut argv: Vec<&str> = vec!["/bin/dd"];
    argv.extend(args.iter().map(String::as_str));
    let mut c = if boxed {
        bench.run_boxed(&argv)
    } else {
        let mut c = Command::new(argv[0]);
        c.args(&argv[1..]);
        c
    };
    c.env("LC_ALL", "C");
    let out = checked(c)?;
    Ok(bytes as f64 / dd_seconds(&out.stderr)?)
}

fn throughput(bench: &Bench, a: &Args) -> Result<()> {
    let bytes = a.mib << 20;
    println!("== sequential throughput: {} MiB with dd bs=1M, box vs host ({} rounds) ==", a.mib, a.rounds);
    // [host, box] × [write, read], bytes per second per round.
    let mut rates = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..a.rounds {
        // Both files go first, and their blocks are freed on disk, so that each write starts
        // from the same state.
        let _ = std::fs::remove_file(HOST_FILE);
        bench.hivebox(["box", "discard", BOX])?;
        rustix::fs::sync();
        let order = if round % 2 == 0 { [false, true] } else { [true, false] };
        for boxed in order {
            let file = if boxed { BOX_FILE } else { HOST_FILE };
            let write = [
                "if=/dev/zero".to_owned(),
                format!("of={file}"),
                "bs=1M".into(),
                format!("count={}", a.mib),
                "conv=fdatasync".into(),
            ];
            rates[usize::from(boxed)][0].push(dd(bench, boxed, &write, bytes)?);
        }
        for boxed in order {
            let file = if boxed { BOX_FILE } else { HOST_FILE };
            drop_caches()?;
            let read = [format!("if={file}"), "of=/dev/null".into(), "bs=1M".into()];
            rates[usize::from(boxed)][1].push(dd(bench, boxed, &read, bytes)?);
        }
    }
    let _ = std::fs::remove_file(HOST_FILE);
    bench.hivebox(["box", "discard", BOX])?;
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
    };
    let range = |v: &[f64]| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min) / 1e6;
        let hi = v.iter().copied().fold(0.0, f64::max) / 1e6;
        format!("{lo:.0}–{hi:.0}")
    };
    println!("{:<8} {:>12} {:>16} {:>12} {:>16} {:>9}", "", "host MB/s", "(range)", "box MB/s", "(range)", "box/host");
    let mut ok = true;
    for (i, what) in ["write", "read"].iter().enumerate() {
        let (h, b) = (&rates[0][i], &rates[1][i]);
        let ratio = median(b) / median(h);
        ok &= ratio >= THROUGHPUT_TARGET;
        println!(
            "{what:<8} {:>12.0} {:>16} {:>12.0} {:>16} {:>8.0}%",
            median(h) / 1e6,
            range(h),
            median(b) / 1e6,
            range(b),
            ratio * 100.0
        );
    }
    println!("target: box ≥ {:.0}% of the host, writing and reading: {}", THROUGHPUT_TARGET * 100.0, verdict(ok));
    Ok(())
}

/// `--connect-loop ADDR PORT N`: connects N times (plus 20 not counted), prints the mean
/// nanoseconds per connect.
fn connect_loop(mut it: impl Iterator<Item = String>) -> Result<()> {
    let host = it.next().context("ADDR")?;
    let port = it.next().context("PORT")?;
    let addr: std::net::SocketAddr = if host == "local" {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            for s in listener.incoming() {
                drop(s);
            }
        });
        addr
    } else {
        format!("{host}:{port}").parse().context("ADDR:PORT")?
    };
    let n: u32 = it.next().context("N")?.parse().context("N")?;
    for _ in 0..20 {
        drop(std::net::TcpStream::connect(addr).context("connect")?);
    }
    let start = Instant::now();
    for _ in 0..n {
        drop(std::net::TcpStream::connect(addr).context("connect")?);
    }
    println!("{}", start.elapsed().as_nanos() / u128::from(n.max(1)));
    Ok(())
}

/// The host's first global IPv4 address (`ip -4 -o addr show scope global`).
fn host_address() -> Result<String> {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let word = text.split_whitespace().skip_while(|w| *w != "inet").nth(1);
    word.and_then(|w| w.split('/').next().map(str::to_owned)).context("this machine has no global IPv4 address")
}

fn decisions(bench: &Bench, a: &Args) -> Result<()> {
    let (n, rounds) = if a.quick { (300, 5) } else { (1000, 7) };
    let addr = host_address()?;
    let listener = std::net::TcpListener::bind((addr.as_str(), 0)).context("cannot listen on the host's address")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            drop(s);
        }
    });
    println!("== network decisions: {n} connects to {addr}:{port} from a box, decide vs full ({rounds} rounds) ==");
    let boxes = [
        ("sandbox-bench-full", "network = \"full\"\n".to_owned()),
        (
            "sandbox-bench-decide",
            format!(
                "network = \"decide\"\n[net]\nunmatched = \"deny\"\n[[net.rule]]\naction = \"allow\"\nto = \"{addr}\"\nport = {port}\nproto = \"tcp\"\n"
            ),
        ),
    ];
    for (name, settings) in &boxes {
        bench.hivebox(["box", "create", name])?;
        std::fs::write(bench.home.path().join("boxes").join(name).join("box.toml"), settings)?;
    }
    let me = std::env::current_exe()?;
    // [full, decide] × [outside address, box loopback], µs per connect per round.
    let mut means = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
    for round in 0..rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for i in order {
            for (j, target) in [addr.as_str(), "local"].into_iter().enumerate() {
                let mut c = bench.command(["run", "--box", boxes[i].0, "--"]);
                c.arg(&me).args(["--connect-loop", target, &port.to_string(), &n.to_string()]);
                let out = checked(c)?;
                let text = String::from_utf8_lossy(&out.stdout);
                let ns: f64 = text.trim().parse().context("the connect loop's output")?;
                means[i][j].push(ns / 1e3);
            }
        }
    }
    for (name, _) in &boxes {
        bench.hivebox(["box", "delete", name])?;
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("{:<44} {:>10} {:>10} {:>10}", "µs per connect", "full", "decide", "overhead");
    let mut ok = true;
    let rows = [format!("{addr} (through pasta, rule-allowed)"), "the box's 127.0.0.1 (always allowed)".into()];
    for (j, what) in rows.iter().enumerate() {
        let (full, decide) = (median(&mut means[0][j]), median(&mut means[1][j]));
        let overhead = decide - full;
        ok &= overhead < 200.0;
        println!("{what:<44} {full:>10.1} {decide:>10.1} {overhead:>10.1}");
    }
    println!("target: decision overhead for an allowed destination under 200 µs: {}", verdict(ok));
    Ok(())
}

fn main() -> Result<()> {
    let mut raw = std::env::args().skip(1);
    if raw.next().as_deref() == Some("--connect-loop") {
        return connect_loop(raw);
    }
    let a = args()?;
    ensure!(rustix::process::geteuid().is_root(), "sandbox-bench needs root (hivebox run, drop_caches)");
    let bin = hivebox_binary()?;
    let bench = Bench::start(bin)?;
    startup(&bench, &a)?;
    decisions(&bench, &a)?;
    throughput(&bench, &a)?;
    Ok(())
}
