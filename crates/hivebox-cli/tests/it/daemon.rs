//! `hivebox daemon` run for real, and the commands that talk to it: `reg` gives exactly what it
//! gives without a daemon, `policy reload`, `events --follow`, `decide`, and the store's lock.
//!
//! Every wait has a deadline; a daemon is stopped with SIGTERM when its test ends (or fails).

use crate::{DONE, Home, Out};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

/// Longest a command or a wait may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(60);

fn hivebox(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hivebox"));
    c.env("HIVEBOX_HOME", home).env_remove("HIVEBOX_SOCKET").env_remove("HIVEBOX_LOG");
    c
}

fn terminate(pid: u32) {
    let pid = rustix::process::Pid::from_raw(pid as i32).expect("a pid");
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
}

/// Waits for a child to exit; kills it and fails past the deadline.
fn wait(child: &mut Child, what: &str) -> ExitStatus {
    let until = Instant::now() + DEADLINE;
    loop {
        if let Some(status) = child.try_wait().expect("the child can be waited for") {
            return status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not exit within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `hivebox ARGS...` in `home`, with stdin not a terminal, within the deadline.
fn run(home: &Path, args: &[&str]) -> Out {
    let child = hivebox(home)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hivebox runs");
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(DEADLINE) {
        Ok(out) => out.expect("hivebox runs"),
        Err(_) => {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(pid as i32).expect("a pid"),
                rustix::process::Signal::KILL,
            );
            panic!("hivebox {args:?} did not finish within {DEADLINE:?}");
        }
    };
    Out {
        code: out.status.code().expect("hivebox exits normally"),
        stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
        stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
    }
}

fn reg(home: &Path, args: &[&str]) -> Out {
    let mut all = vec!["reg"];
    all.extend_from_slice(args);
    run(home, &all)
}

fn reg_ok(home: &Path, args: &[&str]) -> String {
    let out = reg(home, args);
    assert_eq!((out.code, out.stderr.as_str()), (0, ""), "reg {args:?}: {out:?}");
    out.stdout
}

/// A line reader on a child's output: every line read is kept, and waits have deadlines.
struct Lines {
    rx: Receiver<String>,
    seen: Vec<String>,
}

impl Lines {
    fn new(from: impl std::io::Read + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(from).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Lines { rx, seen: Vec::new() }
    }

    /// Reads until a line satisfies `want`; returns it.
    fn until(&mut self, what: &str, want: impl Fn(&str) -> bool) -> String {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if want(&line) {
                        return line;
                    }
                }
                Err(e) => panic!("no line with {what} ({e}); lines so far: {:#?}", self.seen),
            }
        }
    }

    /// Every line until the writer closes its end.
    fn rest(&mut self) -> Vec<String> {
        let until = Instant::now() + DEADLINE;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => return self.seen.clone(),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!("the output did not end; so far: {:#?}", self.seen),
            }
        }
    }
}

/// A running `hivebox daemon --home HOME`, stopped with SIGTERM when dropped.
struct Daemon {
    child: Option<Child>,
    log: PathBuf,
}

impl Daemon {
    /// Starts it and waits until its socket exists.
    fn start(home: &Path) -> Daemon {
        let log = home.with_extension("daemon.log");
        let file = std::fs::File::create(&log).expect("a log file");
        let child = hivebox(home)
            .args(["daemon", "--home"])
            .arg(home)
            .env("HIVEBOX_LOG", "hivebox_daemon=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("hivebox daemon starts");
        let mut d = Daemon { child: Some(child), log };
        let socket = home.join("hivebox.sock");
        let until = Instant::now() + DEADLINE;
        while !socket.exists() {
            if let Some(status) = d.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the daemon exited with {status} before listening:\n{}", d.log());
            }
            assert!(Instant::now() < until, "the daemon did not listen within {DEADLINE:?}:\n{}", d.log());
            std::thread::sleep(Duration::from_millis(10));
        }
        d
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and the exit it makes; returns its log.
    fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        terminate(child.id());
        let status = wait(&mut child, "the daemon");
        let log = self.log();
        assert!(status.success(), "the daemon exited with {status}:\n{log}");
        log
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(child.id());
            let _ = wait(&mut child, "the daemon");
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A command running in the background (`events --follow`, `decide`), stopped when dropped.
struct Background {
    child: Child,
    stdout: Lines,
    stderr: Lines,
    stdin: Option<ChildStdin>,
}

impl Background {
    fn start(home: &Path, args: &[&str], with_stdin: bool) -> Background {
        let mut child = hivebox(home)
            .args(args)
            .stdin(if with_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hivebox runs");
        let stdout = Lines::new(child.stdout.take().expect("piped"));
        let stderr = Lines::new(child.stderr.take().expect("piped"));
        let stdin = child.stdin.take();
        Background { child, stdout, stderr, stdin }
    }

    fn stop(mut self) -> ExitStatus {
        terminate(self.child.id());
        wait(&mut self.child, "the command")
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `reg` gives the same output and exit code through the daemon as in-process: one script run
/// against a home with a daemon and one without, step by step.
#[test]
fn reg_through_the_daemon_is_reg_in_process() {
    let served = Home::new();
    let local = Home::new();
    let daemon = Daemon::start(served.path());
    let script: &[&[&str]] = &[
        &["add", r"HKCU\Software\T", "/v", "Name", "/d", "hello"],
        &["add", r"HKCU\Software\T", "/v", "N", "/t", "REG_DWORD", "/d", "42"],
        &["add", r"HKCU\Software\T\Sub", "/v", "L", "/t", "REG_MULTI_SZ", "/d", r"a\0b"],
        &["add", r"HKCU\Software\T", "/v", "Name", "/d", "again"],
        &["add", r"HKCU\Software\T", "/v", "X", "/t", "REG_DWORD", "/d", "nope"],
        &["add", r"HKLM\SYSTEM\ControlSet001\Enum\Foo\Bar", "/v", "X", "/d", "1"],
        &["query", r"HKCU\Software\T", "/s"],
        &["query", r"HKCU\Software\T", "/v", "Missing"],
        &["query", r"HKCU\Software\T", "/s", "--json"],
        &["query", r"HKLM\SYSTEM\ControlSet001\Enum"],
        &["copy", r"HKCU\Software\T", r"HKCU\Software\Copy", "/s"],
        &["compare", r"HKCU\Software\T", r"HKCU\Software\Copy", "/s"],
        &["add", r"HKCU\Software\Copy\Sub", "/v", "L", "/d", "changed", "/f"],
        &["compare", r"HKCU\Software\T", r"HKCU\Software\Copy", "/s"],
        &["rename", r"HKCU\Software\Copy", "Renamed"],
        &["delete", r"HKCU\Software\T"],
        &["delete", r"HKCU\Software\T", "/v", "Missing"],
        &["export", r"HKCU\Software\T", "{H}/t.reg"],
        &["export", r"HKCU\Software\T", "{H}/t.reg"],
        &["save", r"HKCU\Software\T", "{H}/t.hiv"],
        &["delete", r"HKCU\Software\T", "/f"],
        &["query", r"HKCU\Software\T"],
        &["import", "{H}/t.reg"],
        &["import", "{H}/missing.reg"],
        &["query", r"HKCU\Software\T", "/s"],
        &["add", r"HKCU\Software\R\Stale", "/v", "s", "/d", "x"],
        &["restore", r"HKCU\Software\R", "{H}/t.hiv"],
        &["restore", r"HKCU\Software\R", "{H}/nope.hiv"],
        &["query", r"HKCU\Software\R", "/s"],
        &["load", r"HKLM\OFFLINE", "{H}/t.hiv"],
        &["query", r"HKLM\OFFLINE", "/s"],
        &["add", r"HKLM\OFFLINE\New", "/v", "A", "/d", "later"],
        &["load", r"HKLM\OTHER", "{H}/t.hiv"],
        &["load", r"HKLM\SOFTWARE", "{H}/t.reg"],
        &["load", r"HKLM\NOPE", "{H}/nope.hiv"],
        &["load", r"HKLM\SOFTWARE\Deeper", "{H}/t.hiv"],
        &["unload", r"HKLM\SOFTWARE"],
        &["unload", r"HKLM\OFFLINE"],
        &["unload", r"HKLM\OFFLINE"],
        &["load", r"HKLM\OFFLINE", "{H}/t.hiv"],
        &["query", r"HKLM\OFFLINE\New"],
        &["unload", r"HKLM\OFFLINE"],
        &["replace", "HKCU", "{H}/t.hiv", "{H}/t.hiv"],
        &["replace", "HKLM", "{H}/t.hiv", "{H}/old.hiv"],
        &["flush", r"HKCU\Software"],
        &["query", "HKCU", "/s"],
    ];
    let mut codes = Vec::new();
    for step in script {
        let results: Vec<(i32, String, String)> = [&served, &local]
            .iter()
            .map(|home| {
                let h = home.path().display().to_string();
                let args: Vec<String> = step.iter().map(|a| a.replace("{H}", &h)).collect();
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = reg(home.path(), &args);
                (out.code, out.stdout.replace(&h, "{H}"), out.stderr.replace(&h, "{H}"))
            })
            .collect();
        assert_eq!(results[0], results[1], "reg {step:?}: through the daemon (left) and in-process (right)");
        codes.push(results[0].0);
    }
    // The script does things, and fails where it should.
    let expected = [
        0, 0, 0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 2, 0, 1, 1, 0, 1, 0, 0, 1, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 1, 1, 1, 1,
        0, 1, 0, 0, 0, 1, 1, 0, 0,
    ];
    assert_eq!(codes, expected);
    let log = daemon.stop();
    assert!(log.contains("connected"), "the commands did not go through the daemon:\n{log}");
    // What the served home holds is what the local one holds.
    let (a, b) = (reg_ok(served.path(), &["query", "HKCU", "/s"]), reg_ok(local.path(), &["query", "HKCU", "/s"]));
    assert_eq!(a, b);
    assert!(a.contains(r"HKEY_CURRENT_USER\Software\R\Sub"), "{a}");
}

const WATCHED: &str = r#"
[[rule]]
id = "watch-live"
key = 'HKCU\Software\Live'
notify = ["set-value"]
"#;

#[test]
fn policy_reload_changes_what_the_daemon_enforces() {
    let home = Home::new();
    std::fs::write(home.path().join("policy.toml"), WATCHED).unwrap();
    let daemon = Daemon::start(home.path());
    assert_eq!(reg_ok(home.path(), &["add", r"HKCU\Software\Blocked", "/v", "a", "/d", "1"]), DONE);

    let deny = r#"
[[rule]]
id = "block"
key = 'HKCU\Software\Blocked'
deny = ["set-value"]
"#;
    std::fs::write(home.path().join("policy.toml"), deny).unwrap();
    let out = run(home.path(), &["policy", "reload"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.starts_with("loaded 1 rules from ") && out.stdout.contains("policy.toml"), "{out:?}");
    let out = reg(home.path(), &["add", r"HKCU\Software\Blocked", "/v", "b", "/d", "2"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert_eq!(
        out.stderr, "ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_CURRENT_USER\\Software\\Blocked\\b\n",
        "{out:?}"
    );

    // A broken file is refused and the running policy stays.
    std::fs::write(home.path().join("policy.toml"), "[[rule]]\nid = 1\n").unwrap();
    let out = run(home.path(), &["policy", "reload"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.starts_with("hivebox policy: ") && out.stderr.contains("not valid"), "{out:?}");
    assert_eq!(reg(home.path(), &["add", r"HKCU\Software\Blocked", "/v", "c", "/d", "3"]).code, 1);
    daemon.stop();

    // Without a daemon there is nothing to reload.
    let out = run(home.path(), &["policy", "reload"]);
    assert_eq!(
        (out.code, out.stderr.as_str()),
        (1, "hivebox policy: no hivebox daemon is running; each command reads the policy file itself\n")
    );
}

/// The event of a `SetValue` of `name` under `HKCU\Software\Live`, if `line` is one.
fn live_event(line: &str, name: &str) -> bool {
    serde_json::from_str::<serde_json::Value>(line).is_ok_and(|v| {
        v["EventType"] == "SetValue"
            && v["TargetObject"].as_str().is_some_and(|t| t.ends_with(&format!(r"\Software\Live\{name}")))
    })
}

#[test]
fn events_follow_prints_new_events_as_they_come() {
    let home = Home::new();
    // Without a daemon there is nothing to follow.
    let out = run(home.path(), &["events", "--follow"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no hivebox daemon is running at "), "{out:?}");

    std::fs::write(home.path().join("policy.toml"), WATCHED).unwrap();
    let daemon = Daemon::start(home.path());
    reg_ok(home.path(), &["add", r"HKCU\Software\Live", "/v", "first", "/d", "1"]);
    let mut follow = Background::start(home.path(), &["events", "--follow", "--json"], false);
    // Already logged (or just being logged): printed once, from the log or live.
    follow.stdout.until("the first event", |l| live_event(l, "first"));
    reg_ok(home.path(), &["add", r"HKCU\Software\Live", "/v", "second", "/d", "2"]);
    follow.stdout.until("the second event", |l| live_event(l, "second"));
    reg_ok(home.path(), &["add", r"HKCU\Software\Live", "/v", "third", "/d", "3"]);
    follow.stdout.until("the third event", |l| live_event(l, "third"));
    // Events of other keys are not there (no rule matches them).
    reg_ok(home.path(), &["add", r"HKCU\Software\Quiet", "/v", "q", "/d", "0"]);
    daemon.stop();
    // The daemon went away: the command ends, successfully, with a note.
    let lines = follow.stdout.rest();
    let status = wait(&mut follow.child, "events --follow");
    assert!(status.success(), "{status}");
    for name in ["first", "second", "third"] {
        assert_eq!(lines.iter().filter(|l| live_event(l, name)).count(), 1, "{name}: {lines:#?}");
    }
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let note = follow.stderr.rest();
    assert_eq!(note, ["hivebox events: the daemon went away; no more events to follow"]);
}

const ASK: &str = r#"
[settings]
sync-timeout-ms = 30000
sync-default = "deny"

[[rule]]
id = "ask-me"
key = 'HKCU\Software\Ask'
notify = ["set-value"]
sync = true
"#;

/// Starts `hivebox decide ARGS...` and waits until it is subscribed.
fn decider(home: &Path, args: &[&str], with_stdin: bool) -> Background {
    let mut all = vec!["decide"];
    all.extend_from_slice(args);
    let mut d = Background::start(home, &all, with_stdin);
    d.stderr.until("the decider's start", |l| l.contains("waiting for decisions"));
    d
}

#[test]
fn decide_answers_sync_decisions() {
    let home = Home::new();
    let out = run(home.path(), &["decide", "--answer", "allow"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("no hivebox daemon is running at "), "{out:?}");

    std::fs::write(home.path().join("policy.toml"), ASK).unwrap();
    let daemon = Daemon::start(home.path());
    let h = home.path();
    reg_ok(h, &["add", r"HKCU\Software\Ask"]);
    // Nobody to ask: the default applies at once.
    assert_eq!(reg(h, &["add", r"HKCU\Software\Ask", "/v", "v0", "/d", "0"]).code, 1);

    let mut deny = decider(h, &["--answer", "deny"], false);
    let out = reg(h, &["add", r"HKCU\Software\Ask", "/v", "v1", "/d", "1"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("STATUS_ACCESS_DENIED"), "{out:?}");
    let asked = deny.stdout.until("the decision", |l| l.starts_with("decision "));
    assert!(asked.contains(r"\Software\Ask\v1 = 1") && asked.contains("rules: ask-me"), "{asked}");
    deny.stdout.until("the answer", |l| l.ends_with(": answered deny"));
    deny.stdout.until("the outcome", |l| l.ends_with(": denied"));
    deny.stop();

    let mut allow = decider(h, &["--answer", "allow", "--remember"], false);
    assert_eq!(reg_ok(h, &["add", r"HKCU\Software\Ask", "/v", "v2", "/d", "2"]), DONE);
    allow.stdout.until("the outcome", |l| l.ends_with(": allowed"));
    allow.stop();
    // Remembered by the daemon for this rule and executable: no decider needed any more.
    assert_eq!(reg_ok(h, &["add", r"HKCU\Software\Ask", "/v", "v3", "/d", "3"]), DONE);
    let q = reg_ok(h, &["query", r"HKCU\Software\Ask"]);
    assert!(q.contains("v2") && q.contains("v3") && !q.contains("v1") && !q.contains("v0"), "{q}");
    daemon.stop();
}

#[test]
fn decide_asks_on_the_terminal() {
    let home = Home::new();
    std::fs::write(home.path().join("policy.toml"), ASK).unwrap();
    let daemon = Daemon::start(home.path());
    let h = home.path().to_owned();
    reg_ok(&h, &["add", r"HKCU\Software\Ask"]);
    let mut d = decider(&h, &[], true);
    let writer = {
        let h = h.clone();
        std::thread::spawn(move || reg(&h, &["add", r"HKCU\Software\Ask", "/v", "asked", "/d", "1"]))
    };
    d.stdout.until("the decision", |l| l.starts_with("decision ") && l.contains(r"\Ask\asked"));
    let stdin = d.stdin.as_mut().expect("piped");
    writeln!(stdin, "n").unwrap();
    let out = writer.join().unwrap();
    assert_eq!(out.code, 1, "{out:?}");
    d.stdout.until("the outcome", |l| l.ends_with(": denied"));
    // "never" is remembered: the next one is denied without asking.
    assert_eq!(reg(&h, &["add", r"HKCU\Software\Ask", "/v", "again", "/d", "1"]).code, 1);
    // Closing the terminal ends the command.
    drop(d.stdin.take());
    let status = wait(&mut d.child, "decide");
    assert!(status.success(), "{status}");
    assert!(!d.stdout.rest().iter().any(|l| l.contains(r"\Ask\again")), "the remembered answer asked again");
    daemon.stop();
}

#[test]
fn a_second_daemon_on_the_same_home_names_the_first() {
    let home = Home::new();
    let daemon = Daemon::start(home.path());
    let h = home.path().display().to_string();
    let out = run(home.path(), &["daemon", "--home", &h]);
    assert_eq!(out.code, 1, "{out:?}");
    let last = out.stderr.lines().last().unwrap_or_default();
    assert!(last.starts_with("hivebox daemon: ") && last.contains(&format!("process {}", daemon.pid())), "{out:?}");
    // The first one goes on serving.
    reg_ok(home.path(), &["query", "HKCU"]);
    daemon.stop();
}
