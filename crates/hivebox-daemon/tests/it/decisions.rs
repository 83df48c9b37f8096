//! The decision service, live events and policy reload, through the socket: a sync rule's
//! operation waits for a decider's verdict, times out to the policy's default, is answered at
//! once when "always"/"never" was said before, and blocks nothing but itself.

use super::*;
use hivebox_core::access::KEY_ALL_ACCESS;
use hivebox_core::{NtStatus, Value};
use hivebox_proto::{Decided, HKEY_LOCAL_MACHINE, Push, Reply, Request, Verdict};
use std::sync::mpsc::Receiver;

const SYNC_POLICY: &str = r#"
[settings]
sync-timeout-ms = 1500
sync-default = "deny"

[[rule]]
id = "ask-about-run"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
notify = ["set-value"]
sync = true
"#;

fn daemon_with_policy(policy: &str) -> TestDaemon {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("policy.toml"), policy).unwrap();
    let daemon = Daemon::start(&DaemonOptions { home: home.path().to_owned(), socket: None }).unwrap();
    TestDaemon { daemon: Some(daemon), home }
}

fn run_key(reg: &Registry) -> u64 {
    let path = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Run";
    reg.create_key(HKEY_LOCAL_MACHINE, path, None, 0, KEY_ALL_ACCESS, 0, true).unwrap().0
}

/// A decider: a client subscribed to decisions, and its pushes.
fn decider(d: &TestDaemon) -> (Client, Receiver<Push>) {
    let c = Client::connect(&d.socket()).unwrap();
    let pushes = c.pushes().unwrap();
    assert_eq!(c.call(Request::SubscribeDecisions), Reply::Done);
    (c, pushes)
}

fn next_decision(pushes: &Receiver<Push>) -> (u64, serde_json::Value) {
    loop {
        match pushes.recv_timeout(Duration::from_secs(10)).expect("a decision is pushed") {
            Push::Decision { id, event, .. } => return (id, serde_json::from_str(&event).unwrap()),
            _ => continue,
        }
    }
}

#[test]
fn a_decider_allows_and_denies_sync_operations() {
    let d = daemon_with_policy(SYNC_POLICY);
    let (dc, pushes) = decider(&d);
    let reg = d.registry();
    let h = run_key(&reg);
    // Allowed: the write waits for the answer, then happens.
    let writer = {
        let reg = reg.clone();
        std::thread::spawn(move || reg.set_value(h, "ok", Value::sz("x")))
    };
    let (id, event) = next_decision(&pushes);
    assert_eq!(event["rules"][0], "ask-about-run");
    assert_eq!(event["ProcessId"], std::process::id());
    assert_eq!(dc.call(Request::Decide { id, verdict: Verdict::Allow, remember: false }), Reply::Done);
    writer.join().unwrap().unwrap();
    assert_eq!(reg.query_value(h, "ok").unwrap(), Value::sz("x"));
    // Denied: the write fails and nothing is written.
    let writer = {
        let reg = reg.clone();
        std::thread::spawn(move || reg.set_value(h, "no", Value::sz("x")))
    };
    let (id, _) = next_decision(&pushes);
    assert_eq!(dc.call(Request::Decide { id, verdict: Verdict::Deny, remember: false }), Reply::Done);
    assert_eq!(writer.join().unwrap().unwrap_err().status, NtStatus::STATUS_ACCESS_DENIED);
    assert_eq!(reg.query_value(h, "no").unwrap_err().status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    // Answering a decision that is over is an error, not a change.
    let late = dc.call(Request::Decide { id, verdict: Verdict::Allow, remember: false });
    assert!(matches!(late, Reply::Error { .. }), "{late:?}");
}

#[test]
fn an_unanswered_decision_times_out_to_the_default_and_blocks_only_itself() {
    let d = daemon_with_policy(SYNC_POLICY);
    let (_dc, pushes) = decider(&d);
    let reg = d.registry();
    let h = run_key(&reg);
    let start = Instant::now();
    let waiting = {
        let reg = reg.clone();
        std::thread::spawn(move || reg.set_value(h, "slow", Value::sz("x")))
    };
    next_decision(&pushes);
    // Meanwhile another client's operations go on.
    let other = d.registry();
    let (k, _) = other.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\other", None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    for i in 0..100 {
        other.set_value(k, &format!("v{i}"), Value::dword(i)).unwrap();
    }
    assert!(!waiting.is_finished(), "the sync write waits for its verdict");
    let r = waiting.join().unwrap();
    assert_eq!(r.unwrap_err().status, NtStatus::STATUS_ACCESS_DENIED, "the default verdict is deny");
    assert!(start.elapsed() >= Duration::from_millis(1400), "it waited for the timeout");
    loop {
        match pushes.recv_timeout(Duration::from_secs(5)).unwrap() {
            Push::Decided { outcome, .. } => {
                assert_eq!(outcome, Decided::TimedOut);
                break;
            }
            _ => continue,
        }
    }
}

#[test]
fn without_a_decider_the_default_applies_at_once() {
    let d = daemon_with_policy(SYNC_POLICY);
    let reg = d.registry();
    let h = run_key(&reg);
    let start = Instant::now();
    assert_eq!(reg.set_value(h, "x", Value::sz("x")).unwrap_err().status, NtStatus::STATUS_ACCESS_DENIED);
    assert!(start.elapsed() < Duration::from_millis(1000), "nobody could answer, so nobody was waited for");
}

#[test]
fn always_is_remembered_for_the_same_rule_and_executable() {
    let d = daemon_with_policy(SYNC_POLICY);
    let (dc, pushes) = decider(&d);
    let reg = d.registry();
    let h = run_key(&reg);
    let writer = {
        let reg = reg.clone();
        std::thread::spawn(move || reg.set_value(h, "a", Value::sz("x")))
    };
    let (id, _) = next_decision(&pushes);
    assert_eq!(dc.call(Request::Decide { id, verdict: Verdict::Allow, remember: true }), Reply::Done);
    writer.join().unwrap().unwrap();
    // The next one is answered without asking.
    reg.set_value(h, "b", Value::sz("y")).unwrap();
    while let Ok(p) = pushes.try_recv() {
        assert!(!matches!(p, Push::Decision { .. }), "nobody was asked again: {p:?}");
    }
}

#[test]
fn events_stream_live_to_subscribers_with_filters() {
    let d = TestDaemon::start();
    let all = Client::connect(&d.socket()).unwrap();
    let all_pushes = all.pushes().unwrap();
    assert_eq!(all.call(Request::SubscribeEvents { box_name: None, verdict: None }), Reply::Done);
    let denied = Client::connect(&d.socket()).unwrap();
    let denied_pushes = denied.pushes().unwrap();
    let sub = Request::SubscribeEvents { box_name: None, verdict: Some("denied".into()) };
    assert_eq!(denied.call(sub), Reply::Done);
    let reg = d.registry();
    let h = run_key(&reg);
    reg.set_value(h, "live", Value::sz("x")).unwrap();
    let Push::Event(json) = all_pushes.recv_timeout(Duration::from_secs(10)).unwrap() else { panic!() };
    let e: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(e["TargetObject"].as_str().unwrap().ends_with(r"Run\live"), "{e}");
    assert_eq!(e["verdict"], "allowed");
    assert!(denied_pushes.recv_timeout(Duration::from_millis(300)).is_err(), "an allowed event is not denied");
}

#[test]
fn a_policy_reload_takes_effect_and_a_broken_file_changes_nothing() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let h = run_key(&reg);
    reg.set_value(h, "before", Value::sz("x")).unwrap();
    let deny = r#"
[[rule]]
id = "deny-run"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
deny = ["set-value"]
"#;
    std::fs::write(d.home.path().join("policy.toml"), deny).unwrap();
    let c = Client::connect(&d.socket()).unwrap();
    let Reply::Text(summary) = c.call(Request::ReloadPolicy) else { panic!() };
    assert!(summary.contains("1 rules"), "{summary}");
    assert_eq!(reg.set_value(h, "after", Value::sz("x")).unwrap_err().status, NtStatus::STATUS_ACCESS_DENIED);
    // A policy with an error is refused; the running one stays.
    std::fs::write(d.home.path().join("policy.toml"), "[[rule]]\nid = 3\n").unwrap();
    let r = c.call(Request::ReloadPolicy);
    let Reply::Error { message, .. } = r else { panic!("{r:?}") };
    assert!(message.contains("policy.toml"), "{message}");
    assert_eq!(reg.set_value(h, "after", Value::sz("x")).unwrap_err().status, NtStatus::STATUS_ACCESS_DENIED);
}
