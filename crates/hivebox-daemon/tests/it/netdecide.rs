//! Network decisions through the real daemon: the box's `[net]` rules answer a launcher's
//! question, `ask` goes to the deciders (and times out to `ask-default`), every decision is an
//! event, and nobody but a launcher (a process of the box outside every seccomp filter) may ask.
//!
//! These need root and a cgroup v2 hierarchy (CI has both).

use super::*;
use crate::identity::BoxCgroup;
use hivebox_core::NtStatus;
use hivebox_proto::{Push, Reply, Request, Verdict};
use std::io::{BufRead, Write};

fn unique(tag: &str) -> String {
    format!("it-{}-net-{tag}", std::process::id())
}

const RULES: &str = r#"
network = "decide"
[net]
unmatched = "deny"
ask-timeout = 1
ask-default = "deny"
[[net.rule]]
action = "allow"
to = "192.0.2.0/24"
port = 443
proto = "tcp"
[[net.rule]]
action = "ask"
to = "198.51.100.7"
"#;

/// Makes box `name` with [`RULES`] and its cgroup.
fn decide_box(d: &TestDaemon, name: &str) -> BoxCgroup {
    let reply = d.registry().transport().call(Request::BoxCreate { name: name.into(), ephemeral: false });
    assert_eq!(reply, Reply::Done);
    std::fs::write(d.home.path().join("boxes").join(name).join("box.toml"), RULES).unwrap();
    BoxCgroup::new(name)
}

/// Client side: waits for "go", connects, optionally puts itself under the boxes' seccomp
/// filter (`filtered`), then asks about each `PROTO ADDRESS PORT` of its arguments for its own
/// pid and prints `@allow R`, `@deny R` (R: remember) or `@error STATUS`.
pub fn child_net(socket: &Path, args: &[String]) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let mut c = Connection::connect(socket).unwrap();
    let mut args = args.iter();
    let box_name = args.next().unwrap().clone();
    if args.as_slice().first().map(String::as_str) == Some("filtered") {
        args.next();
        rustix::thread::set_no_new_privs(true).unwrap();
        let arch = hivebox_sandbox::sys::seccomp::target_arch().unwrap();
        hivebox_sandbox::sys::seccomp::compile(arch, false).unwrap().install().unwrap();
    }
    let rest: Vec<&String> = args.collect();
    for q in rest.chunks(3) {
        let request = Request::NetDecide {
            box_name: box_name.clone(),
            pid: std::process::id(),
            protocol: q[0].clone(),
            address: q[1].clone(),
            port: q[2].parse().unwrap(),
        };
        match c.call(&request).unwrap() {
            Reply::NetVerdict { allow, remember } => {
                println!("@{} {remember}", if allow { "allow" } else { "deny" })
            }
            Reply::Error { status, .. } => println!("@error {status}"),
            other => println!("@unexpected {other:?}"),
        }
    }
}

fn ask(d: &TestDaemon, cgroup: &BoxCgroup, args: &[&str]) -> Vec<String> {
    let mut child = spawn_child("net", &d.socket(), args);
    cgroup.add(child.id());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child_output(child)
}

fn events(d: &TestDaemon) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(d.home.path().join("events").join("events.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["EventType"] == "NetworkConnect")
        .collect()
}

#[test]
fn the_box_s_rules_decide_and_each_decision_is_an_event() {
    let d = TestDaemon::start();
    let name = unique("rules");
    let cg = decide_box(&d, &name);
    let out = ask(
        &d,
        &cg,
        &[
            &name,
            "tcp",
            "192.0.2.9",
            "443",
            "udp",
            "192.0.2.9",
            "443",
            "tcp",
            "::ffff:192.0.2.9",
            "443",
            "tcp",
            "203.0.113.1",
            "80",
        ],
    );
    assert_eq!(out, ["allow true", "deny true", "allow true", "deny true"]);
    wait_for("the events to be logged", || events(&d).len() == 4);
    let ev = events(&d);
    assert_eq!(ev[0]["verdict"], "allowed");
    assert_eq!(ev[0]["box"], name.as_str());
    assert_eq!(ev[0]["DestinationIp"], "192.0.2.9");
    assert_eq!(ev[0]["Protocol"], "tcp");
    assert!(
        ev[0]["rules"][0].as_str().unwrap().starts_with("net rule 1: allow tcp to 192.0.2.0/24 port 443"),
        "{}",
        ev[0]
    );
    assert_eq!(ev[2]["DestinationIp"], "192.0.2.9", "a mapped address is decided as its IPv4 address");
    assert_eq!(ev[3]["verdict"], "denied");
    assert_eq!(ev[3]["rules"][0], "unmatched: deny");
    assert!(
        ev[3]["Image"]
            .as_str()
            .unwrap()
            .ends_with(std::env::current_exe().unwrap().file_name().unwrap().to_str().unwrap())
    );
}

#[test]
fn only_a_launcher_may_ask() {
    let d = TestDaemon::start();
    let name = unique("who");
    let cg = decide_box(&d, &name);
    // A boxed program runs under the box's seccomp filter: it may not ask.
    let out = ask(&d, &cg, &[&name, "filtered", "tcp", "192.0.2.9", "443"]);
    assert_eq!(out, [format!("error {}", NtStatus::STATUS_ACCESS_DENIED)]);
    // Nor may a launcher ask about another box.
    let other = unique("other");
    let _other_cg = decide_box(&d, &other);
    let out = ask(&d, &cg, &[&other, "tcp", "192.0.2.9", "443"]);
    assert_eq!(out, [format!("error {}", NtStatus::STATUS_ACCESS_DENIED)]);
    // A host process may ask only about a process of the box.
    let mut c = d.connection();
    let r = c
        .call(&Request::NetDecide {
            box_name: name.clone(),
            pid: std::process::id(),
            protocol: "tcp".into(),
            address: "192.0.2.9".into(),
            port: 443,
        })
        .unwrap();
    assert!(
        matches!(&r, Reply::Error { status: NtStatus::STATUS_INVALID_PARAMETER, message } if message.contains("not in box")),
        "{r:?}"
    );
    // Bad fields are named.
    let out = ask(&d, &cg, &[&name, "sctp", "192.0.2.9", "1", "tcp", "example.org", "1"]);
    assert_eq!(out, vec![format!("error {}", NtStatus::STATUS_INVALID_PARAMETER); 2]);
    assert!(events(&d).is_empty(), "refused questions are no decisions");
}

#[test]
fn ask_goes_to_the_deciders_and_times_out_to_the_default() {
    let d = TestDaemon::start();
    let name = unique("ask");
    let cg = decide_box(&d, &name);
    // Nobody to ask: the default at once, not remembered.
    let started = Instant::now();
    assert_eq!(ask(&d, &cg, &[&name, "tcp", "198.51.100.7", "22"]), ["deny false"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    // A decider says "always allow": this one and later ones are allowed.
    let dc = Client::connect(&d.socket()).unwrap();
    let pushes = dc.pushes().unwrap();
    assert_eq!(dc.call(Request::SubscribeDecisions), Reply::Done);
    let answerer = std::thread::spawn(move || {
        let mut seen = Vec::new();
        while let Ok(p) = pushes.recv_timeout(Duration::from_secs(10)) {
            if let Push::Decision { id, event, .. } = p {
                seen.push(serde_json::from_str::<serde_json::Value>(&event).unwrap());
                assert_eq!(dc.call(Request::Decide { id, verdict: Verdict::Allow, remember: true }), Reply::Done);
                break;
            }
        }
        seen
    });
    let out = ask(&d, &cg, &[&name, "tcp", "198.51.100.7", "22", "tcp", "198.51.100.7", "22"]);
    assert_eq!(out, ["allow false", "allow true"]);
    let seen = answerer.join().unwrap();
    assert_eq!(seen.len(), 1, "asked once: {seen:?}");
    assert_eq!(seen[0]["EventType"], "NetworkConnect");
    assert_eq!(seen[0]["TargetObject"], "tcp 198.51.100.7:22");
    wait_for("the events", || events(&d).len() == 3);
    let by: Vec<String> = events(&d).iter().map(|e| e["decided_by"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(by, ["default", "service", "remembered"]);
}
