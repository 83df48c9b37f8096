//! Registry isolation end to end: a real process in a box's cgroup, talking to the real
//! daemon, changes the registry; the host never sees it, the box sees the merge, the
//! protection filter judges the path it named, `box diff` lists what it did, and `box discard`
//! makes it vanish.

use super::identity::BoxCgroup;
use super::*;
use hivebox_core::access::{KEY_ALL_ACCESS, KEY_READ};
use hivebox_core::{NtStatus, Value};
use hivebox_proto::{HKEY_LOCAL_MACHINE, Reply, Request};
use std::io::{BufRead, Write};

const HOST: &str = r"SOFTWARE\Host";
const RUN: &str = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Run";

const POLICY: &str = r#"
[[rule]]
id = "run-keys"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
deny = ["set-value"]
"#;

fn start() -> TestDaemon {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("policy.toml"), POLICY).unwrap();
    let daemon = Daemon::start(&DaemonOptions { home: home.path().to_owned(), socket: None }).unwrap();
    TestDaemon { daemon: Some(daemon), home }
}

fn key(reg: &Registry, path: &str) -> u64 {
    reg.create_key(HKEY_LOCAL_MACHINE, path, None, 0, KEY_ALL_ACCESS, 0, true).unwrap().0
}

fn names(reg: &Registry, h: u64) -> Vec<String> {
    (0..).map_while(|i| reg.enumerate_key(h, i).ok().map(|s| s.name)).collect()
}

fn dword(reg: &Registry, h: u64, name: &str) -> Option<u32> {
    reg.query_value(h, name).ok().map(|v| u32::from_le_bytes(v.data[..4].try_into().unwrap()))
}

/// Client side, in the box: `script` changes the registry and checks what it sees; `look`
/// prints what it sees of `Host\Keep`.
pub fn child_isolation(socket: &Path, args: &[String]) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let reg = Registry::new(Arc::new(Client::connect(socket).unwrap()));
    let keep = key(&reg, &format!(r"{HOST}\Keep"));
    if args[0] == "look" {
        println!("@a={:?} b={:?}", dword(&reg, keep, "a"), dword(&reg, keep, "b"));
        return;
    }
    // A handle taken before the box changes the key sees the change.
    let early = reg.open_key(HKEY_LOCAL_MACHINE, &format!(r"{HOST}\Keep"), 0, KEY_READ, 0).unwrap();
    reg.set_value(keep, "a", Value::dword(2)).unwrap();
    reg.set_value(keep, "b", Value::dword(3)).unwrap();
    assert_eq!(dword(&reg, early, "a"), Some(2));
    assert_eq!(dword(&reg, keep, "b"), Some(3));
    // Reads fall through to keys the box never changed.
    let gone = reg.open_key(HKEY_LOCAL_MACHINE, &format!(r"{HOST}\Gone"), 0, KEY_ALL_ACCESS, 0).unwrap();
    assert_eq!(dword(&reg, gone, "v"), Some(9));
    reg.delete_key(gone).unwrap();
    let missing = reg.open_key(HKEY_LOCAL_MACHINE, &format!(r"{HOST}\Gone"), 0, KEY_READ, 0).unwrap_err();
    assert_eq!(missing.status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    let old = reg.open_key(HKEY_LOCAL_MACHINE, &format!(r"{HOST}\Old"), 0, KEY_ALL_ACCESS, 0).unwrap();
    reg.rename_key(old, "New").unwrap();
    // A multi-level create, and opens relative to it.
    let deep = key(&reg, &format!(r"{HOST}\Deep\Er\Est"));
    reg.set_value(deep, "v", Value::dword(7)).unwrap();
    let d = reg.open_key(HKEY_LOCAL_MACHINE, &format!(r"{HOST}\Deep"), 0, KEY_READ, 0).unwrap();
    let est = reg.open_key(d, r"Er\Est", 0, KEY_READ, 0).unwrap();
    assert_eq!(dword(&reg, est, "v"), Some(7));
    assert_eq!(reg.query_key_name(est).unwrap(), format!(r"\REGISTRY\MACHINE\{HOST}\Deep\Er\Est"));
    // The merged listing, and counts that agree with it.
    let host = key(&reg, HOST);
    assert_eq!(names(&reg, host), ["Deep", "Keep", "New"]);
    let info = reg.query_key(host).unwrap();
    assert_eq!((info.subkeys, info.values), (3, 0));
    // The protected key: judged on the path named, denied inside the box too.
    let run = key(&reg, RUN);
    let denied = reg.set_value(run, "TrialUpdater", Value::sz("/opt/trial/update")).unwrap_err();
    assert_eq!(denied.status, NtStatus::STATUS_ACCESS_DENIED);
    // The box hives are nobody's by name.
    let hidden = reg.open_key(0, r"\REGISTRY\A", 0, KEY_READ, 0).unwrap_err();
    assert_eq!(hidden.status, NtStatus::STATUS_ACCESS_DENIED);
    println!("@script done");
}

fn run_in_box(d: &TestDaemon, cg: &BoxCgroup, args: &[&str]) -> Vec<String> {
    let mut child = spawn_child("isolation", &d.socket(), args);
    cg.add(child.id());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child_output(child)
}

/// The host's keys the script meets; returns `Host\Keep`.
fn host_keys(host: &Registry) -> u64 {
    let keep = key(host, &format!(r"{HOST}\Keep"));
    host.set_value(keep, "a", Value::dword(1)).unwrap();
    let gone = key(host, &format!(r"{HOST}\Gone"));
    host.set_value(gone, "v", Value::dword(9)).unwrap();
    key(host, &format!(r"{HOST}\Old"));
    keep
}

#[test]
fn a_boxed_process_changes_only_its_box() {
    let d = start();
    let host = d.registry();
    let keep = host_keys(&host);
    let name = format!("it-{}-iso", std::process::id());
    let admin = d.registry();
    assert_eq!(admin.transport().call(Request::BoxCreate { name: name.clone(), ephemeral: false }), Reply::Done);
    let cg = BoxCgroup::new(&name);

    assert_eq!(run_in_box(&d, &cg, &["script"]), ["script done"]);

    // The host: exactly as before.
    assert_eq!(dword(&host, keep, "a"), Some(1));
    assert_eq!(dword(&host, keep, "b"), None);
    let h = key(&host, HOST);
    assert_eq!(names(&host, h), ["Gone", "Keep", "Old"]);
    let run = key(&host, RUN);
    assert_eq!(host.query_value(run, "TrialUpdater").unwrap_err().status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    // The denial is an event naming the box.
    let log = d.home.path().join("events/events.jsonl");
    wait_for("the boxed denial's event", || std::fs::read_to_string(&log).is_ok_and(|t| t.contains(&name)));
    let text = std::fs::read_to_string(&log).unwrap();
    let event: serde_json::Value = serde_json::from_str(text.lines().find(|l| l.contains(&name)).unwrap()).unwrap();
    assert_eq!(event["verdict"], "denied");
    assert_eq!(event["box"], name.as_str());

    // What the box did, as `box diff` lists it.
    let Reply::Text(diff) = admin.transport().call(Request::BoxDiff { name: name.clone(), json: true }) else {
        panic!("box diff")
    };
    let changes: serde_json::Value = serde_json::from_str(&diff).unwrap();
    let kinds: Vec<String> = changes
        .as_array()
        .unwrap()
        .iter()
        .map(|c| format!("{} {}", c["kind"].as_str().unwrap(), c["key"].as_str().unwrap().rsplit('\\').next().unwrap()))
        .collect();
    for want in ["key-added Deep", "key-deleted Gone", "key-renamed New", "value-modified Keep", "value-added Keep"] {
        assert!(kinds.iter().any(|k| k == want), "{want} missing from {kinds:?}");
    }

    // Another process of the same box sees the box's view.
    assert_eq!(run_in_box(&d, &cg, &["look"]), ["a=Some(2) b=Some(3)"]);
    // Discarded, the box sees the host again.
    assert_eq!(admin.transport().call(Request::BoxDiscard { name: name.clone() }), Reply::Done);
    assert_eq!(run_in_box(&d, &cg, &["look"]), ["a=Some(1) b=None"]);
    assert_eq!(admin.transport().call(Request::BoxDelete { name }), Reply::Done);
}

#[test]
fn a_commit_freezes_the_boxs_processes_and_thaws_them() {
    let d = start();
    let name = format!("it-{}-freeze", std::process::id());
    let admin = d.registry();
    host_keys(&admin);
    assert_eq!(admin.transport().call(Request::BoxCreate { name: name.clone(), ephemeral: false }), Reply::Done);
    let cg = BoxCgroup::new(&name);
    assert_eq!(run_in_box(&d, &cg, &["script"]), ["script done"]);
    // A process stays in the box while the commit runs.
    let mut sleeper = Command::new("sleep").arg("30").spawn().unwrap();
    cg.add(sleeper.id());
    let r = admin.transport().call(Request::BoxCommit {
        name: name.clone(),
        key: Some(format!(r"HKLM\{HOST}\Keep")),
        force: false,
    });
    assert!(matches!(&r, Reply::Text(t) if t.contains("committed")), "{r:?}");
    let events = std::fs::read_to_string(cg.dir.join("cgroup.events")).unwrap();
    assert!(events.lines().any(|l| l == "frozen 0"), "thawed after the commit: {events}");
    // The committed key is the host's now.
    let host = d.registry();
    let keep = key(&host, &format!(r"{HOST}\Keep"));
    assert_eq!(dword(&host, keep, "a"), Some(2));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
}
