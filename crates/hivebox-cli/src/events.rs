//! `hivebox events`: the protection events of the log in `$HIVEBOX_HOME/events/`
//! (`hivebox_daemon::events`), and with `--follow` the new ones as the daemon logs them.

use anyhow::{Context, Result, bail};
use hivebox_client::{Push, Reply, Request, Transport};
use hivebox_daemon::events::files;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Write};

const USAGE: &str = "\
usage: hivebox events [--json] [--box B] [--verdict allowed|denied] [--follow]

  --json       the events as logged, one JSON object per line
  --box B      only the events of box B
  --verdict V  only the allowed or only the denied operations
  --follow     after the log, print each new event as the running daemon logs it, until
               interrupted or the daemon stops
";

/// How many of the last lines read from the log are remembered, to drop a live event that the
/// log already showed (it was logged between subscribing and reading the log's end).
const OVERLAP: usize = 4096;

/// What to print, and how.
struct Filter {
    json: bool,
    box_name: Option<String>,
    verdict: Option<String>,
}

impl Filter {
    /// The line to print for an event's JSON line, if the filters keep it; `Err` when the line
    /// is not an event.
    fn render(&self, line: &str) -> Result<Option<String>, serde_json::Error> {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if self.verdict.as_deref().is_some_and(|want| v["verdict"] != want) {
            return Ok(None);
        }
        if self.box_name.as_deref().is_some_and(|want| v["box"] != want) {
            return Ok(None);
        }
        Ok(Some(if self.json { line.to_owned() } else { human(&v) }))
    }
}

/// `hivebox events [--json] [--box B] [--verdict allowed|denied] [--follow]`: prints the logged
/// events, then with `--follow` the new ones.
pub fn run(args: &[String]) -> Result<i32> {
    let mut filter = Filter { json: false, box_name: None, verdict: None };
    let mut follow = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => filter.json = true,
            "--follow" | "-f" => follow = true,
            "--box" => filter.box_name = Some(it.next().context("--box needs a box name")?.clone()),
            "--verdict" => {
                let v = it.next().context("--verdict needs allowed or denied")?;
                anyhow::ensure!(v == "allowed" || v == "denied", "--verdict takes allowed or denied, not {v:?}");
                filter.verdict = Some(v.clone());
            }
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            other => bail!("unknown argument {other:?} (hivebox events --help)"),
        }
    }
    // Subscribed before the log is read, so that no event falls between the two.
    let live = if follow {
        let socket = crate::daemon::socket_path();
        let client = crate::daemon::require(&socket).context("--follow needs the daemon")?;
        let pushes = client.pushes().context("the connection's pushes are already taken")?;
        let request = Request::SubscribeEvents { box_name: filter.box_name.clone(), verdict: filter.verdict.clone() };
        match client.call(request) {
            Reply::Done => {}
            Reply::Error { status, message } => bail!("the daemon refused the subscription: {status} {message}"),
            other => bail!("the daemon answered the subscription with {other:?}"),
        }
        Some((client, pushes))
    } else {
        None
    };
    let dir = hivebox_hive::default_home().join("events");
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut recent: VecDeque<String> = VecDeque::new();
    for path in files(&dir) {
        let f = File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
        for (n, line) in BufReader::new(f).lines().enumerate() {
            let line = line.with_context(|| format!("cannot read {}", path.display()))?;
            let shown = match filter.render(&line) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{}:{}: not an event: {e}", path.display(), n + 1);
                    continue;
                }
            };
            if let Some(s) = shown
                && writeln!(out, "{s}").is_err()
            {
                return Ok(0); // the reader went away
            }
            if live.is_some() {
                if recent.len() == OVERLAP {
                    recent.pop_front();
                }
                recent.push_back(line);
            }
        }
    }
    let Some((_client, pushes)) = live else { return Ok(0) };
    if out.flush().is_err() {
        return Ok(0);
    }
    // The first live events may be the log's last lines; once one is not, none of the rest is.
    let mut overlapping = true;
    for push in pushes {
        let Push::Event(line) = push else { continue };
        if overlapping {
            if let Some(i) = recent.iter().position(|l| *l == line) {
                recent.drain(..=i);
                continue;
            }
            overlapping = false;
            recent = VecDeque::new();
        }
        let shown = match filter.render(&line) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("hivebox events: the daemon sent something that is not an event: {e}");
                continue;
            }
        };
        if let Some(s) = shown
            && (writeln!(out, "{s}").is_err() || out.flush().is_err())
        {
            return Ok(0);
        }
    }
    eprintln!("hivebox events: the daemon went away; no more events to follow");
    Ok(0)
}

/// One line for people: time, verdict, operation, target, details, who, rules.
pub fn human(v: &serde_json::Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    format!("{} {:<7} {}", s("UtcTime"), s("verdict"), summary(v))
}

/// An event without its time and verdict: operation, target, details, who, rules (and why it
/// was denied).
pub fn summary(v: &serde_json::Value) -> String {
    let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
    let mut line = format!("{:<11} {}", s("EventType"), s("TargetObject"));
    if let Some(d) = v["Details"].as_str() {
        line.push_str(&format!(" = {d}"));
    }
    if let Some(n) = v["NewName"].as_str() {
        line.push_str(&format!(" -> {n}"));
    }
    line.push_str(&format!("  [{} pid {}", s("Image"), v["ProcessId"]));
    if let Some(b) = v["box"].as_str() {
        line.push_str(&format!(" box {b}"));
    }
    let rules: Vec<&str> =
        v["rules"].as_array().map(|a| a.iter().filter_map(|r| r.as_str()).collect()).unwrap_or_default();
    line.push_str(&format!("] rules: {}", rules.join(", ")));
    if let Some(r) = v["reason"].as_str() {
        line.push_str(&format!(" ({r})"));
    }
    line
}
