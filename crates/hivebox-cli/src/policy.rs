//! `hivebox policy`: check a policy file, show the one in force, have the running daemon
//! reload it, import Sigma rules, and replay traces through a policy before enforcing it.

use anyhow::{Context, Result, bail};
use hivebox_core::protect::CompiledPolicy;
use hivebox_daemon::protection::{load_policy, policy_path};
use hivebox_policy::replay::Replay;
use std::io::{BufRead, BufReader, IsTerminal, Read, Write};
use std::path::Path;
use std::time::Instant;

const USAGE: &str = "\
usage: hivebox policy <command>

commands:
  check FILE                      validate a policy file (errors name file, line and rule)
  show                            the policy in force ($HIVEBOX_HOME/policy.toml, else the default)
  default                         print the default policy
  reload                          have the running daemon read $HIVEBOX_HOME/policy.toml again
                                  (as SIGHUP does); a file with errors changes nothing
  import-sigma DIR [-o FILE]      turn Sigma registry rules into hivebox rules (TOML);
                                  rules that cannot be expressed are listed with the reason
  test --policy FILE --trace FILE [--json]
                                  replay a trace (Sysmon JSON lines, plain or .gz) through a
                                  policy and count, per rule, the events it denies or notifies
";

/// Runs `hivebox policy ARGS...`.
pub fn run(args: &[String]) -> Result<i32> {
    match args.first().map(String::as_str) {
        Some("check") => {
            let [_, file] = args else { bail!("usage: hivebox policy check FILE") };
            check(file)
        }
        Some("show") => show(),
        Some("reload") => {
            let [_] = args else { bail!("usage: hivebox policy reload") };
            reload()
        }
        Some("default") => {
            print!("{}", hivebox_policy::DEFAULT_POLICY);
            Ok(0)
        }
        Some("import-sigma") => import_sigma(&args[1..]),
        Some("test") => test(&args[1..]),
        Some("help" | "-h" | "--help") | None => {
            print!("{USAGE}");
            Ok(if args.is_empty() { 2 } else { 0 })
        }
        Some(other) => bail!("unknown policy command {other:?}\n\n{USAGE}"),
    }
}

fn summary(p: &CompiledPolicy) -> String {
    let s = p.spec();
    let tamper = s.rules.iter().filter(|r| r.tamper).count();
    let deny = s.rules.iter().filter(|r| !r.deny.is_empty()).count();
    let sync = s.rules.iter().filter(|r| r.sync).count();
    format!(
        "{} rules ({deny} deny, {sync} sync, {tamper} tamper-protection), {} hardening prefixes, {} process classes; {} tree nodes",
        s.rules.len() - tamper,
        s.hardening.len(),
        s.processes.len(),
        p.tree_nodes()
    )
}

fn check(file: &str) -> Result<i32> {
    let text = std::fs::read_to_string(file).with_context(|| format!("cannot read {file}"))?;
    match hivebox_policy::compile(file, &text) {
        Ok(p) => {
            println!("{file}: valid: {}", summary(&p));
            Ok(0)
        }
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("{e}");
            }
            eprintln!("{file}: {} error(s)", errors.0.len());
            Ok(1)
        }
    }
}

fn show() -> Result<i32> {
    let home = hivebox_hive::default_home();
    let (p, from) = load_policy(&home)?;
    println!("policy: {from}");
    println!("{}", summary(&p));
    if !policy_path(&home).exists() {
        println!("(write {} to replace it; `hivebox policy default` prints it)", policy_path(&home).display());
    }
    Ok(0)
}

/// `hivebox policy reload`: the daemon reloads its policy file and says what it loaded.
fn reload() -> Result<i32> {
    use hivebox_client::{Reply, Request, Transport};
    let socket = crate::daemon::socket_path();
    let Some(client) = crate::daemon::connect(&socket)? else {
        bail!("no hivebox daemon is running; each command reads the policy file itself");
    };
    match client.call(Request::ReloadPolicy) {
        Reply::Text(summary) => {
            println!("{summary}");
            Ok(0)
        }
        Reply::Error { status, message } if message.is_empty() => {
            bail!("the daemon did not reload the policy: {status}")
        }
        Reply::Error { message, .. } => bail!("the daemon kept the running policy: {message}"),
        other => bail!("the daemon answered the reload with {other:?}"),
    }
}

fn import_sigma(args: &[String]) -> Result<i32> {
    let (mut dir, mut out) = (None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-o" | "--output" => out = Some(it.next().context("-o needs a file")?.clone()),
            _ if dir.is_none() => dir = Some(a.clone()),
            other => bail!("unexpected argument {other:?}: usage: hivebox policy import-sigma DIR [-o FILE]"),
        }
    }
    let dir = dir.context("usage: hivebox policy import-sigma DIR [-o FILE]")?;
    let import = hivebox_policy::sigma::import_dir(Path::new(&dir)).with_context(|| format!("cannot read {dir}"))?;
    let toml = import.to_toml();
    // What is written must be a valid policy.
    let compiled = hivebox_policy::compile("<imported>", &toml)
        .map_err(|e| anyhow::anyhow!("the imported rules do not compile (a bug):\n{e}"))?;
    match &out {
        Some(f) => std::fs::write(f, &toml).with_context(|| format!("cannot write {f}"))?,
        None => print!("{toml}"),
    }
    eprintln!(
        "{} Sigma rules: {} imported, {} not expressible{}",
        import.rules.len() + import.unsupported.len(),
        import.rules.len(),
        import.unsupported.len(),
        if import.unsupported.is_empty() { "" } else { ":" }
    );
    for u in &import.unsupported {
        eprintln!("  {}: {} ({})", u.source, u.reason, u.title);
    }
    if let Some(f) = out {
        eprintln!("wrote {f}: {}", summary(&compiled));
    }
    Ok(0)
}

fn open_trace(path: &str) -> Result<(Box<dyn BufRead>, u64)> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let counting = Counting { inner: f };
    let r: Box<dyn Read> =
        if path.ends_with(".gz") { Box::new(flate2::read::MultiGzDecoder::new(counting)) } else { Box::new(counting) };
    Ok((Box::new(BufReader::with_capacity(1 << 16, r)), len))
}

/// Counts the compressed bytes read, for the progress bar.
struct Counting<R> {
    inner: R,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        POSITION.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

static POSITION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn test(args: &[String]) -> Result<i32> {
    let (mut policy, mut trace, mut json) = (None, None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--policy" => policy = Some(it.next().context("--policy needs a file")?.clone()),
            "--trace" => trace = Some(it.next().context("--trace needs a file")?.clone()),
            "--json" => json = true,
            other => {
                bail!("unexpected argument {other:?}: usage: hivebox policy test --policy FILE --trace FILE [--json]")
            }
        }
    }
    let trace = trace.context("usage: hivebox policy test --policy FILE --trace FILE [--json]")?;
    let compiled = match &policy {
        Some(f) => {
            let text = std::fs::read_to_string(f).with_context(|| format!("cannot read {f}"))?;
            hivebox_policy::compile(f, &text).map_err(|e| anyhow::anyhow!("{e}"))?
        }
        None => load_policy(&hivebox_hive::default_home())?.0,
    };
    let (reader, total) = open_trace(&trace)?;
    let bar = (std::io::stderr().is_terminal() && !json).then(|| {
        let b = indicatif::ProgressBar::new(total);
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {percent:>3}% {msg} ({eta} left)")
                .expect("a valid template"),
        );
        b
    });
    let started = Instant::now();
    let mut replay = Replay::new(&compiled);
    for (i, line) in reader.lines().enumerate() {
        let line = line.with_context(|| format!("{trace}: cannot read line {}", i + 1))?;
        replay.line(i as u64 + 1, &line);
        if let Some(b) = &bar
            && i % 4096 == 0
        {
            b.set_position(POSITION.load(std::sync::atomic::Ordering::Relaxed));
            b.set_message(format!("{} events", replay.events));
        }
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let secs = started.elapsed().as_secs_f64();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let spec = compiled.spec();
    if json {
        let rules: Vec<serde_json::Value> = replay
            .rules
            .iter()
            .enumerate()
            .filter(|(_, c)| c.denied + c.notified > 0)
            .map(|(i, c)| serde_json::json!({"id": spec.rules[i].id, "denied": c.denied, "notified": c.notified}))
            .chain(
                replay
                    .hardening
                    .iter()
                    .enumerate()
                    .filter(|(_, n)| **n > 0)
                    .map(|(i, n)| serde_json::json!({"id": spec.hardening[i].id, "denied": n, "notified": 0})),
            )
            .collect();
        let errors: Vec<serde_json::Value> =
            replay.errors.iter().map(|(l, e)| serde_json::json!({"line": l, "error": e.to_string()})).collect();
        let doc = serde_json::json!({
            "trace": trace,
            "events": replay.events,
            "matched": replay.matched,
            "denied": replay.denied,
            "unreadable_lines": replay.error_count,
            "errors": errors,
            "rules": rules,
            "seconds": secs,
        });
        writeln!(out, "{}", serde_json::to_string_pretty(&doc)?)?;
        return Ok(0);
    }
    writeln!(
        out,
        "{trace}: {} events in {secs:.2} s; {} matched, {} denied; {} unreadable lines",
        replay.events, replay.matched, replay.denied, replay.error_count
    )?;
    let mut rows: Vec<(&str, u64, u64)> = replay
        .rules
        .iter()
        .enumerate()
        .filter(|(_, c)| c.denied + c.notified > 0)
        .map(|(i, c)| (spec.rules[i].id.as_str(), c.denied, c.notified))
        .chain(
            replay
                .hardening
                .iter()
                .enumerate()
                .filter(|(_, n)| **n > 0)
                .map(|(i, n)| (spec.hardening[i].id.as_str(), *n, 0)),
        )
        .collect();
    rows.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(a.0.cmp(b.0)));
    if !rows.is_empty() {
        writeln!(out, "{:>9} {:>9}  rule", "denied", "notified")?;
        for (id, d, n) in &rows {
            writeln!(out, "{d:>9} {n:>9}  {id}")?;
        }
    }
    let silent = spec.rules.len() + spec.hardening.len() - rows.len();
    writeln!(out, "{silent} rules matched nothing")?;
    for (line, e) in &replay.errors {
        writeln!(out, "{trace}:{line}: {e}")?;
    }
    if replay.error_count > replay.errors.len() as u64 {
        writeln!(out, "... and {} more unreadable lines", replay.error_count - replay.errors.len() as u64)?;
    }
    Ok(0)
}
