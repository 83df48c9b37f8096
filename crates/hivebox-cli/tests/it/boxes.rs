//! `hivebox run --box` and `hivebox box`, for real: the command runs in the box's cgroup with
//! its exit code passed on, the daemon is started on demand, `box list` shows the box, an
//! ephemeral box goes once its command ends; without a daemon, the box commands open the store
//! themselves.
//!
//! These need root and a cgroup v2 hierarchy (CI has both). Every daemon a test starts is
//! stopped with SIGTERM when the test ends, failed or not.

use crate::{Home, Out};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A box name unique to this test process (cgroups are machine-wide).
fn unique(tag: &str) -> String {
    format!("cli-{}-{tag}", std::process::id())
}

/// The cgroup v2 mount, from this process's mount table.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ").then(|| pre.split(' ').nth(4).map(PathBuf::from))?
    });
    dir.expect("a cgroup v2 hierarchy is mounted (the box tests need one)")
}

/// Stops the daemon of a home when dropped: SIGTERM to the pid in its store's lock file,
/// then waits for its socket to go.
struct DaemonGuard<'a> {
    home: &'a Path,
}

impl DaemonGuard<'_> {
    fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.home.join("hives/registry.lock")).ok()?;
        text.trim().parse().ok()
    }

    fn running(&self) -> bool {
        self.home.join("hivebox.sock").exists()
    }
}

impl Drop for DaemonGuard<'_> {
    fn drop(&mut self) {
        if !self.running() {
            return;
        }
        let Some(pid) = self.pid().and_then(rustix::process::Pid::from_raw) else { return };
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let until = Instant::now() + Duration::from_secs(30);
        while self.running() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
        if self.running() && !std::thread::panicking() {
            panic!("the daemon (pid {pid:?}) did not stop within 30 seconds of SIGTERM");
        }
    }
}

fn ok(out: &Out, what: &str) {
    assert_eq!(out.code, 0, "{what}: {out:?}");
}

fn listed(home: &Home, name: &str) -> Option<serde_json::Value> {
    let out = home.run(&["box", "list", "--json"]);
    ok(&out, "box list --json");
    let list: Vec<serde_json::Value> = serde_json::from_str(out.stdout.trim()).unwrap();
    list.into_iter().find(|b| b["name"] == name)
}

#[test]
fn run_puts_the_command_in_its_box_and_starts_the_daemon() {
    let home = Home::new();
    let _daemon = DaemonGuard { home: home.path() };
    let name = unique("run");
    assert!(!home.path().join("hivebox.sock").exists());

    let out = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", "cat /proc/self/cgroup; echo box=$HIVEBOX_BOX"]);
    ok(&out, "run");
    let cgroup = out.stdout.lines().find(|l| l.starts_with("0::")).unwrap_or_else(|| panic!("{out:?}"));
    assert!(cgroup.ends_with(&format!("/hivebox/{name}")), "{cgroup}");
    assert!(out.stdout.contains(&format!("box={name}\n")), "{out:?}");
    assert!(out.stderr.contains("started the hivebox daemon"), "{out:?}");
    assert!(home.path().join("hivebox.sock").exists(), "the daemon keeps running");
    assert!(home.path().join("daemon.log").is_file());

    // The box exists, and the daemon that was started serves it.
    let b = listed(&home, &name).unwrap_or_else(|| panic!("box {name} is not listed"));
    assert_eq!((b["ephemeral"].as_bool(), b["processes"].as_u64()), (Some(false), Some(0)), "{b}");
    let table = home.run(&["box", "list"]);
    ok(&table, "box list");
    assert!(table.stdout.starts_with("NAME"), "{table:?}");
    assert!(table.stdout.lines().any(|l| l.starts_with(&name) && l.contains(" no ")), "{table:?}");

    // Exit codes pass through, a signal's as 128+N; the second run finds the daemon.
    let out = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert!(!out.stderr.contains("started the hivebox daemon"), "{out:?}");
    let out = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", "kill -TERM $$"]);
    assert_eq!(out.code, 128 + 15, "{out:?}");
    let out = home.run(&["run", "--box", &name, "--", "/nonexistent/command"]);
    assert_eq!(out.code, 127, "{out:?}");
    assert!(out.stderr.contains("cannot run /nonexistent/command"), "{out:?}");

    // Its registry changes stay in the box.
    let reg = home.run(&[
        "run",
        "--box",
        &name,
        "--",
        env!("CARGO_BIN_EXE_hivebox"),
        "reg",
        "add",
        r"HKLM\SOFTWARE\CliBox",
        "/v",
        "x",
        "/d",
        "1",
        "/f",
    ]);
    ok(&reg, "reg add in the box");
    let host = home.reg(&["query", r"HKLM\SOFTWARE\CliBox"]);
    assert_eq!(host.code, 1, "the host does not see the box's key: {host:?}");
    let b = listed(&home, &name).unwrap();
    assert!(b["changes"].as_u64().is_some_and(|n| n >= 1), "{b}");

    let out = home.run(&["box", "delete", &name]);
    ok(&out, "box delete");
    assert_eq!(listed(&home, &name), None);
    assert!(!cgroup2_root().join("hivebox").join(&name).exists(), "its cgroup is gone");
}

#[test]
fn an_ephemeral_box_is_gone_once_its_command_ends() {
    let home = Home::new();
    let _daemon = DaemonGuard { home: home.path() };
    let name = unique("eph");
    let out = home.run(&["run", "--box", &name, "--ephemeral", "--", "/bin/true"]);
    ok(&out, "run --ephemeral");
    let until = Instant::now() + Duration::from_secs(5);
    while listed(&home, &name).is_some() {
        assert!(Instant::now() < until, "box {name} is still there 5 seconds after its command ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!home.path().join("boxes").join(&name).exists());
}

#[test]
fn box_commands_work_without_a_daemon() {
    let home = Home::new();
    let name = unique("local");
    let out = home.run(&["box", "create", &name, "--ephemeral"]);
    ok(&out, "box create");
    assert_eq!(out.stdout, format!("created box {name} (ephemeral)\n"));
    assert!(!home.path().join("hivebox.sock").exists(), "no daemon was started");
    let again = home.run(&["box", "create", &name]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(
        again.stderr.contains("exists already") && again.stderr.contains("STATUS_OBJECT_NAME_COLLISION"),
        "{again:?}"
    );
    let b = listed(&home, &name).unwrap();
    assert_eq!(
        (b["ephemeral"].as_bool(), b["changes"].as_u64(), b["processes"].as_u64()),
        (Some(true), Some(0), Some(0))
    );
    ok(&home.run(&["box", "discard", &name]), "box discard");
    ok(&home.run(&["box", "delete", &name]), "box delete");
    assert_eq!(listed(&home, &name), None);

    let bad = home.run(&["box", "create", "a/b"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("'/' at position 2"), "{bad:?}");
    let missing = home.run(&["box", "delete", "nothere"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stderr.contains("there is no box named nothere"), "{missing:?}");
    assert_eq!(home.run(&["box"]).code, 2);
    assert_eq!(home.run(&["box", "frobnicate"]).code, 2);
    assert_eq!(home.run(&["run", "--box", &name]).code, 2, "no command");
    assert_eq!(home.run(&["run", "--", "/bin/true"]).code, 2, "no box");
    let bad = home.run(&["run", "--box", ".x", "--", "/bin/true"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("starts with '.'"), "{bad:?}");
    assert!(!home.path().join("hivebox.sock").exists(), "a bad name starts nothing");
}

#[test]
fn run_isolates_files_and_the_box_commands_see_them() {
    let home = Home::new();
    let _daemon = DaemonGuard { home: home.path() };
    let name = unique("files");
    let target = PathBuf::from(format!("/var/tmp/hivebox-{name}"));
    let _ = std::fs::remove_file(&target);
    let h = home.path().display().to_string();
    let script = format!("echo boxed > {t} && cat {t} && ls -A {h} | wc -l && echo pid=$$", t = target.display());
    let out = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", &script]);
    ok(&out, "run");
    // The file is the box's; the hivebox home is an empty directory; sh is PID 2 (init is 1).
    assert_eq!(out.stdout, "boxed\n0\npid=2\n", "{out:?}");
    assert!(!target.exists(), "the host sees the box's file");

    let diff = home.run(&["box", "diff", &name]);
    ok(&diff, "box diff");
    assert!(diff.stdout.contains(&format!("Files:\n+ {} (6 B)\n", target.display())), "{diff:?}");
    let json = home.run(&["box", "diff", &name, "--json"]);
    ok(&json, "box diff --json");
    let list: Vec<serde_json::Value> = serde_json::from_str(json.stdout.trim()).unwrap();
    assert!(list.iter().any(|c| c["kind"] == "file-added" && c["path"] == target.to_str().unwrap()), "{json:?}");

    let inspect = home.run(&["box", "inspect", &name]);
    ok(&inspect, "box inspect");
    for claim in ["overlayfs", "seccomp", "landlock", "D-Bus decisions: not enforced", "network: none", "Processes (0)"]
    {
        assert!(inspect.stdout.contains(claim), "{claim}: {inspect:?}");
    }
    let inspect = home.run(&["box", "inspect", &name, "--json"]);
    ok(&inspect, "box inspect --json");
    let report: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
    assert!(report["enforced"]["mechanisms"].as_array().is_some_and(|m| !m.is_empty()), "{report}");

    // Commit the file: the host gets it, the box's copy goes (no process runs).
    let commit = home.run(&["box", "commit", &name, "--path", target.to_str().unwrap()]);
    ok(&commit, "box commit --path");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "boxed\n");
    std::fs::remove_file(&target).unwrap();
    let diff = home.run(&["box", "diff", &name]);
    assert!(!diff.stdout.contains("Files:"), "{diff:?}");

    // Discard throws the files away too.
    ok(
        &home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", &format!("echo again > {}", target.display())]),
        "run",
    );
    assert!(home.run(&["box", "diff", &name]).stdout.contains("Files:"));
    ok(&home.run(&["box", "discard", &name]), "box discard");
    assert!(!home.run(&["box", "diff", &name]).stdout.contains("Files:"));
    assert!(!target.exists());
    ok(&home.run(&["box", "delete", &name]), "box delete");
}

/// `deny-host-access = true` in `box.toml` reaches the sandbox: where the kernel enforces it,
/// the command runs and `box inspect` records the protection; where it cannot (the BPF LSM
/// inactive, or BPF LSM programs refused), the start fails naming why and nothing runs. Which
/// of the two happens depends on the kernel; each is checked in full (the escape tests in
/// `hivebox-sandbox` check the protection itself, and fail where it cannot be had).
#[test]
fn deny_host_access_protects_the_box_or_stops_its_start() {
    let home = Home::new();
    let _daemon = DaemonGuard { home: home.path() };
    let name = unique("deny");
    ok(&home.run(&["box", "create", &name]), "box create");
    std::fs::write(home.path().join("boxes").join(&name).join("box.toml"), "deny-host-access = true\n").unwrap();
    let out = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", "echo ran"]);
    if out.code == 0 {
        assert_eq!(out.stdout, "ran\n", "{out:?}");
        let inspect = home.run(&["box", "inspect", &name]);
        ok(&inspect, "box inspect");
        assert!(inspect.stdout.contains("protection from the host: BPF LSM programs"), "{inspect:?}");
        assert!(!inspect.stdout.contains("protection from the host: not enforced"), "{inspect:?}");
    } else {
        assert!(out.stderr.contains("cannot protect the box from the host: "), "{out:?}");
        assert!(!out.stdout.contains("ran"), "the command ran unprotected: {out:?}");
    }
    ok(&home.run(&["box", "delete", &name]), "box delete");
}

/// Try and buy: a program installed in a box (a file and a registry key) works inside the box
/// only; discarding the box makes every trace vanish; installing it again and committing the
/// box installs it on the host for real.
#[test]
fn try_and_buy_a_program_installed_in_a_box() {
    let home = Home::new();
    let _daemon = DaemonGuard { home: home.path() };
    let name = unique("trybuy");
    let dir = PathBuf::from(format!("/var/tmp/hivebox-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    let tool = dir.join("tool");
    let key = format!(r"HKLM\Software\TryBuy-{name}");
    let hivebox = env!("CARGO_BIN_EXE_hivebox");
    // The installer: the program, and its registry key naming it.
    let install = format!(
        "mkdir -p {d} && printf '#!/bin/sh\\necho tool works\\n' > {t} && chmod 755 {t} && {hivebox} reg add '{key}' /v Path /d {t}",
        d = dir.display(),
        t = tool.display(),
    );
    // The launcher: finds the program through the registry, runs it.
    let launch =
        format!("p=$({hivebox} reg query '{key}' /v Path | awk '/Path/ {{print $3}}') && [ -n \"$p\" ] && \"$p\"");
    ok(&home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", &install]), "install in the box");
    let used = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", &launch]);
    ok(&used, "use in the box");
    assert_eq!(used.stdout, "tool works\n", "{used:?}");
    // The host has neither the program nor its key.
    assert!(!tool.exists(), "the host sees the boxed install");
    assert_eq!(home.reg(&["query", &key]).code, 1, "the host registry has the boxed key");
    let on_host = home.run(&["run", "--box", &format!("{name}-other"), "--", "/bin/sh", "-c", &launch]);
    assert_ne!(on_host.code, 0, "another box must not see it: {on_host:?}");
    ok(&home.run(&["box", "delete", &format!("{name}-other")]), "delete the other box");

    // Discard: every trace goes, in the box too.
    ok(&home.run(&["box", "discard", &name]), "box discard");
    let after = home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", &launch]);
    assert_ne!(after.code, 0, "the discarded install still runs: {after:?}");

    // Buy: install again, commit the box; the host has the program and its key.
    ok(&home.run(&["run", "--box", &name, "--", "/bin/sh", "-c", &install]), "install again");
    ok(&home.run(&["box", "commit", &name]), "box commit");
    let bought =
        std::process::Command::new("/bin/sh").args(["-c", &launch]).env("HIVEBOX_HOME", home.path()).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&bought.stdout), "tool works\n", "{bought:?}");
    ok(&home.run(&["box", "delete", &name]), "box delete");
    std::fs::remove_dir_all(&dir).unwrap();
    ok(&home.reg(&["delete", &key, "/f"]), "clean the host key");
}

/// The host's first global IPv4 address: what a box reaches through pasta.
fn host_address() -> String {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let word = text.split_whitespace().skip_while(|w| *w != "inet").nth(1);
    word.and_then(|w| w.split('/').next().map(str::to_owned))
        .expect("the machine needs a global IPv4 address for the network tests (ip -4 addr show scope global)")
}

/// `network = "decide"` end to end: the box's rules allow one destination; another is asked
/// of a person through `hivebox decide` (here answering deny for every question), and the
/// refusal reaches the boxed program as EACCES; both decisions are events.
#[test]
fn network_decisions_go_through_the_daemon_and_hivebox_decide() {
    use std::io::{BufRead, BufReader, Read};
    let home = Home::new();
    let _daemon = DaemonGuard { home: home.path() };
    let name = unique("netdecide");
    let addr = host_address();
    let allowed = std::net::TcpListener::bind((addr.as_str(), 0)).unwrap();
    let asked = std::net::TcpListener::bind((addr.as_str(), 0)).unwrap();
    let (pa, pb) = (allowed.local_addr().unwrap().port(), asked.local_addr().unwrap().port());
    ok(&home.run(&["box", "create", &name]), "box create");
    std::fs::write(
        home.path().join("boxes").join(&name).join("box.toml"),
        format!(
            "network = \"decide\"\n[net]\nunmatched = \"deny\"\nask-timeout = 20\n\
             [[net.rule]]\naction = \"allow\"\nto = \"{addr}\"\nport = {pa}\nproto = \"tcp\"\n\
             [[net.rule]]\naction = \"ask\"\nto = \"{addr}\"\n"
        ),
    )
    .unwrap();
    // Starts the daemon.
    ok(&home.run(&["run", "--box", &name, "--", "/bin/true"]), "first run");
    let mut decide = std::process::Command::new(env!("CARGO_BIN_EXE_hivebox"))
        .args(["decide", "--answer", "deny"])
        .env("HIVEBOX_HOME", home.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = BufReader::new(decide.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    assert!(line.contains("waiting for decisions"), "{line}");
    let script = format!(
        "import socket\nfor port in [{pa}, {pb}]:\n    s = socket.socket()\n    try:\n        s.connect(('{addr}', port)); print(0)\n    except OSError as e:\n        print(e.errno)"
    );
    let out = home.run(&["run", "--box", &name, "--", "/usr/bin/python3", "-c", &script]);
    ok(&out, "run in the decide box");
    // EACCES: 13.
    assert_eq!(out.stdout, "0\n13\n", "{out:?}");
    allowed.set_nonblocking(true).unwrap();
    asked.set_nonblocking(true).unwrap();
    assert!(allowed.accept().is_ok(), "the allowed destination was reached");
    assert!(asked.accept().is_err(), "the denied destination was reached");
    let _ = decide.kill();
    let mut said = String::new();
    decide.stdout.take().unwrap().read_to_string(&mut said).unwrap();
    let _ = decide.wait();
    assert!(said.contains(&format!("NetworkConnect tcp {addr}:{pb}")), "{said}");
    assert!(said.contains("denied"), "{said}");
    let events = home.run(&["events", "--json", "--box", &name]);
    ok(&events, "events");
    let net: Vec<serde_json::Value> = events
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["EventType"] == "NetworkConnect")
        .collect();
    assert_eq!(net.len(), 2, "{}", events.stdout);
    assert_eq!((net[0]["verdict"].as_str(), net[0]["DestinationPort"].as_u64()), (Some("allowed"), Some(pa.into())));
    assert_eq!((net[1]["verdict"].as_str(), net[1]["decided_by"].as_str()), (Some("denied"), Some("service")));
    assert!(net[1]["Image"].as_str().unwrap().contains("python3"), "{}", net[1]);
    ok(&home.run(&["box", "delete", &name]), "box delete");
}
