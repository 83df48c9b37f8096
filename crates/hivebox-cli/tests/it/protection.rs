//! Protection through the command line: the policy file, denials and events, `policy check`,
//! `policy test`, `policy import-sigma`.

use crate::Home;
use std::path::PathBuf;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("HIVEBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(dir.join("traces").is_dir(), "the shared corpus is missing at {} (set HIVEBOX_CORPUS)", dir.display());
    dir
}

fn events(home: &Home) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(home.path().join("events/events.jsonl")).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).expect("an event is one JSON object per line")).collect()
}

const POLICY: &str = r#"
[[rule]]
id = "run-keys"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
deny = ["set-value", "delete-value"]
old-value = true

[[rule]]
id = "watch-app"
key = 'HKCU\Software\App\**'
notify = ["create-key", "set-value"]
"#;

#[test]
fn the_policy_file_denies_and_every_match_is_an_event() {
    let home = Home::new();
    std::fs::write(home.path().join("policy.toml"), POLICY).unwrap();
    let out = home.reg(&["add", r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run", "/v", "evil", "/d", "x", "/f"]);
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("STATUS_ACCESS_DENIED"), "{}", out.stderr);
    let out = home.reg(&["query", r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run", "/v", "evil"]);
    assert_eq!(out.code, 1, "the denied value was not written: {out:?}");
    let out = home.reg(&["add", r"HKCU\Software\App\Settings", "/v", "Theme", "/d", "dark", "/f"]);
    assert_eq!(out.code, 0, "{out:?}");

    let ev = events(&home);
    assert_eq!(ev.len(), 4, "{ev:#?}");
    let denied = &ev[0];
    assert_eq!(denied["EventType"], "SetValue");
    assert_eq!(denied["verdict"], "denied");
    assert_eq!(denied["reason"], "rule");
    assert_eq!(denied["rules"], serde_json::json!(["run-keys"]));
    assert_eq!(denied["TargetObject"], r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\evil");
    assert_eq!(denied["Details"], "x");
    // Image and ProcessId are kernel facts about the hivebox process itself.
    let exe = std::fs::canonicalize(env!("CARGO_BIN_EXE_hivebox")).unwrap();
    assert_eq!(denied["Image"], exe.display().to_string());
    assert!(denied["ProcessId"].as_u64().unwrap() > 0);
    assert!(denied["UtcTime"].as_str().unwrap().len() == 23);
    // The create of each new key and the value under HKCU (every user: HKU\*).
    let kinds: Vec<(&str, &str)> =
        ev[1..].iter().map(|e| (e["EventType"].as_str().unwrap(), e["verdict"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("CreateKey", "allowed"), ("CreateKey", "allowed"), ("SetValue", "allowed")]);
    assert!(ev[3]["TargetObject"].as_str().unwrap().starts_with(r"HKU\S-1-22-1-"), "{}", ev[3]["TargetObject"]);
    assert!(ev[3]["TargetObject"].as_str().unwrap().ends_with(r"\Software\App\Settings\Theme"));

    // `hivebox events` filters and prints them.
    let out = home.run(&["events", "--verdict", "denied"]);
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    assert!(out.stdout.contains("denied  SetValue") && out.stdout.contains("rules: run-keys (rule)"), "{}", out.stdout);
    let out = home.run(&["events", "--json"]);
    assert_eq!(out.stdout.lines().count(), 4);
}

#[test]
fn a_broken_policy_stops_the_command_and_changes_nothing() {
    let home = Home::new();
    assert_eq!(home.reg(&["add", r"HKCU\Software\Keep", "/v", "a", "/d", "1", "/f"]).code, 0);
    std::fs::write(home.path().join("policy.toml"), "[[rule]]\nid = \"x\"\nkey = 'HKLM\\a'\nnotify = [\"frob\"]\n")
        .unwrap();
    let out = home.reg(&["add", r"HKCU\Software\Keep", "/v", "b", "/d", "2", "/f"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("policy.toml:4: rule `x`: unknown operation `frob`"), "{}", out.stderr);
    std::fs::remove_file(home.path().join("policy.toml")).unwrap();
    let out = home.reg(&["query", r"HKCU\Software\Keep"]);
    assert!(out.stdout.contains("    a    REG_SZ    1") && !out.stdout.contains("    b "), "{}", out.stdout);
}

#[test]
fn policy_check_reports_lines_and_the_default_policy_is_valid() {
    let home = Home::new();
    let bad = home.path().join("bad.toml");
    std::fs::write(&bad, "[[rule]]\nid = \"a\"\nkey = 'HKLM\\x'\nnotify = [\"set-value\"]\n\n[[rule]]\nid = \"a\"\nkey = 'HKQQ\\x'\nnotify = [\"set-value\"]\n").unwrap();
    let out = home.run(&["policy", "check", bad.to_str().unwrap()]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("bad.toml:7: rule `a`: duplicate id (first used on line 2)"), "{}", out.stderr);
    assert!(out.stderr.contains("bad.toml:8: rule `a`: key `HKQQ\\x`"), "{}", out.stderr);
    let default = home.path().join("default.toml");
    let out = home.run(&["policy", "default"]);
    std::fs::write(&default, out.stdout).unwrap();
    let out = home.run(&["policy", "check", default.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("valid: 96 rules"), "{}", out.stdout);
    let out = home.run(&["policy", "show"]);
    assert!(out.stdout.contains("policy: the default policy"), "{}", out.stdout);
}

#[test]
fn policy_test_replays_a_trace_and_reports_per_rule() {
    let home = Home::new();
    let trace = corpus().join("traces/hayabusa_sample_evtx_registry.jsonl");
    let policy = home.path().join("p.toml");
    std::fs::write(
        &policy,
        r#"
[[rule]]
id = "run-keys"
keys = ['HKLM\Software\Microsoft\Windows\CurrentVersion\Run', 'HKCU\Software\Microsoft\Windows\CurrentVersion\Run']
deny = ["set-value"]

[processes]
excluded = ['C:\Windows\system32\svchost.exe']
"#,
    )
    .unwrap();
    let out = home.run(&["policy", "test", "--policy", policy.to_str().unwrap(), "--trace", trace.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("389 events"), "{}", out.stdout);
    let out = home.run(&[
        "policy",
        "test",
        "--policy",
        policy.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
        "--json",
    ]);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(doc["events"], 389);
    let rule = &doc["rules"][0];
    assert_eq!(rule["id"], "run-keys");
    // svchost.exe is excluded: its writes are notified, the others' denied.
    assert!(rule["denied"].as_u64().unwrap() > 0 && rule["notified"].as_u64().unwrap() > 0, "{rule}");

    // A damaged line is reported with its number and the replay goes on.
    let damaged = home.path().join("t.jsonl");
    let mut text = std::fs::read_to_string(&trace).unwrap();
    text.insert_str(0, "{not json\n");
    std::fs::write(&damaged, text).unwrap();
    let out = home.run(&["policy", "test", "--policy", policy.to_str().unwrap(), "--trace", damaged.to_str().unwrap()]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("389 events") && out.stdout.contains("1 unreadable lines"), "{}", out.stdout);
    assert!(out.stdout.contains("t.jsonl:1: not a JSON event"), "{}", out.stdout);
}

#[test]
fn import_sigma_writes_a_policy_that_compiles() {
    let home = Home::new();
    let out_file = home.path().join("sigma.toml");
    let out = home.run(&[
        "policy",
        "import-sigma",
        corpus().join("sigma-registry").to_str().unwrap(),
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("278 Sigma rules: 275 imported, 3 not expressible"), "{}", out.stderr);
    assert!(out.stderr.contains("field `User`"), "{}", out.stderr);
    let out = home.run(&["policy", "check", out_file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out:?}");
}
