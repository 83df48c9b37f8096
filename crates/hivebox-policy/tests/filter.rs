//! The protection filter on a real registry: WdFilter's semantics, one test each.

use hivebox_core::protect::bits::*;
use hivebox_core::protect::queue::{Decider, Decision};
use hivebox_core::protect::{EventSink, EventVerdict, PROTECTION_ALTITUDE, ProtectionEvent, ProtectionFilter};
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, Handle, ManualClock, NtStatus, ProcessInfo, RegNotifyClass, Registry,
    RegistryCallback, Token, Value,
};
use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Default)]
struct Recorder(Mutex<Vec<(ProtectionEvent, bool)>>);

impl EventSink for Recorder {
    fn submit(&self, event: ProtectionEvent, high: bool) {
        self.0.lock().push((event, high));
    }
}

impl Recorder {
    fn take(&self) -> Vec<(ProtectionEvent, bool)> {
        std::mem::take(&mut *self.0.lock())
    }
}

const POLICY: &str = r#"
[[rule]]
id = "run"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
deny = ["set-value", "delete-value"]
notify = ["create-key", "delete-key"]
old-value = true

[[rule]]
id = "watched-tree"
key = 'HKLM\Software\Watched\**'
notify = ["create-key", "delete-key", "set-value", "delete-value", "rename-key", "restore"]

[[rule]]
id = "rename-target"
key = 'HKLM\Software\Targets\Locked'
deny = ["rename-key"]

[[rule]]
id = "ask"
key = 'HKLM\Software\Ask'
notify = ["set-value"]
sync = true

[[hardening]]
id = "svc"
prefix = 'HKLM\SYSTEM\CurrentControlSet\Services\hivebox'

[[tamper-protection]]
id = "tamper"
key = 'HKLM\Software\hivebox\Policy'

[processes]
friendly = ["/usr/lib/hivebox/*"]
excluded = ["/opt/excluded"]
service = ["/usr/bin/hivebox"]
allow-all = ["/opt/allow-all"]
"#;

const RUN: &str = r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run";

struct Env {
    reg: Registry,
    filter: Arc<ProtectionFilter>,
    events: Arc<Recorder>,
    admin: Caller,
}

fn caller(image: &str) -> Caller {
    Caller::user(
        Token { user_sid: "S-1-5-21-1-2-3-1001".into(), system: false },
        ProcessInfo { pid: 4321, image: image.into(), ..ProcessInfo::default() },
    )
}

fn env_with(policy: &str) -> Env {
    let clock = Arc::new(ManualClock::new(hivebox_core::UNIX_EPOCH_FILETIME));
    let reg = Registry::fresh_in_memory(clock.clone());
    let admin = Caller::system();
    for k in [
        RUN,
        r"\REGISTRY\MACHINE\SOFTWARE\Watched",
        r"\REGISTRY\MACHINE\SOFTWARE\Targets\Locked",
        r"\REGISTRY\MACHINE\SOFTWARE\Ask",
        r"\REGISTRY\MACHINE\SOFTWARE\hivebox\Policy",
        r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\hivebox",
    ] {
        let (h, _) = reg.create_key_path(&admin, None, k, &CreateOptions::default()).unwrap();
        reg.close_key(&admin, h).unwrap();
    }
    let events = Arc::new(Recorder::default());
    let filter = ProtectionFilter::new(hivebox_policy::compile("t.toml", policy).unwrap(), events.clone(), clock);
    filter.register(&reg).unwrap();
    Env { reg, filter, events, admin }
}

fn env() -> Env {
    env_with(POLICY)
}

impl Env {
    fn open(&self, who: &Caller, path: &str) -> Handle {
        self.reg.create_key(who, None, path, &CreateOptions::default()).unwrap().0
    }

    fn set(&self, who: &Caller, path: &str, name: &str, v: Value) -> Result<(), NtStatus> {
        let h = self.open(&self.admin, path);
        let r = self.reg.set_value(who, h, name, v);
        self.reg.close_key(&self.admin, h).unwrap();
        r
    }
}

#[test]
fn registered_in_the_anti_virus_altitude_range() {
    let n: u32 = PROTECTION_ALTITUDE.parse().unwrap();
    assert!((320_000..=329_999).contains(&n));
    let e = env();
    assert_eq!(e.reg.callbacks().len(), 1);
}

#[test]
fn denied_bits_deny_unless_the_process_is_exempt() {
    let e = env();
    let r = e.set(&caller("/tmp/dropper"), RUN, "evil", Value::sz("x"));
    assert_eq!(r, Err(NtStatus::STATUS_ACCESS_DENIED));
    let ev = e.events.take();
    assert_eq!(ev.len(), 1);
    let (event, high) = &ev[0];
    assert!(high, "denials go on the high-priority queue");
    assert_eq!(event.verdict, EventVerdict::Denied);
    assert_eq!(event.reason, Some("rule"));
    assert_eq!(event.rules, ["run"]);
    assert_eq!(event.target_object, r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\evil");
    assert_eq!(event.details.as_deref(), Some("x"));
    assert_eq!(event.image, "/tmp/dropper");
    assert_eq!(event.process_id, 4321);
    // FinalKeyRules: the matched entry's bits, the mask's and the rest of the rule's.
    let set = SET_VALUE_KEY_OPERATION | SET_VALUE_DENIED | SET_VALUE_RETRIEVE_KEY_VALUE_INFO;
    assert_eq!(event.final_key_rules & set, set);

    // Excluded, Friendly, ServiceSid, AllowAllRegistryOperations: allowed, still notified.
    for image in ["/opt/excluded", "/usr/lib/hivebox/agent", "/usr/bin/hivebox", "/opt/allow-all"] {
        assert_eq!(e.set(&caller(image), RUN, "ok", Value::dword(1)), Ok(()), "{image}");
        let ev = e.events.take();
        assert_eq!(ev.len(), 1, "{image}");
        assert_eq!(ev[0].0.verdict, EventVerdict::Allowed);
        assert_eq!(ev[0].0.details.as_deref(), Some("DWORD (0x00000001)"));
        assert!(!ev[0].1);
    }
    // Flags the kernel-facing side gave the process count too.
    let mut flagged = caller("/tmp/dropper");
    flagged.process = Arc::new(ProcessInfo { flags: EXCLUDED_PROCESS, ..(*flagged.process).clone() });
    assert_eq!(e.set(&flagged, RUN, "ok2", Value::dword(1)), Ok(()));
}

#[test]
fn tamper_protection_denies_every_process() {
    let e = env();
    for image in ["/tmp/dropper", "/usr/bin/hivebox", "/opt/allow-all", "/opt/excluded"] {
        let r = e.set(&caller(image), r"\REGISTRY\MACHINE\SOFTWARE\hivebox\Policy", "x", Value::dword(0));
        assert_eq!(r, Err(NtStatus::STATUS_ACCESS_DENIED), "{image}");
        let who = caller(image);
        let r =
            e.reg.create_key(&who, None, r"\REGISTRY\MACHINE\SOFTWARE\hivebox\Policy\Sub", &CreateOptions::default());
        assert_eq!(r.err(), Some(NtStatus::STATUS_ACCESS_DENIED), "{image}: the subtree too");
    }
    let ev = e.events.take();
    assert!(ev.iter().all(|(e, _)| e.reason == Some("tamper-protection") && e.rules == ["tamper"]));
}

#[test]
fn the_hardening_prefix_denies_every_handled_operation() {
    let e = env();
    let dropper = caller("/tmp/dropper");
    let svc = r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\hivebox";
    // Named through the link and as it resolves; a string prefix, as RtlPrefixUnicodeString.
    for path in [svc, r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\hivebox"] {
        assert_eq!(e.set(&dropper, path, "Start", Value::dword(4)), Err(NtStatus::STATUS_ACCESS_DENIED));
    }
    let h = e.open(&e.admin, svc);
    assert_eq!(e.reg.delete_value(&dropper, h, "x"), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(e.reg.rename_key(&dropper, h, "other"), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(e.reg.delete_key(&dropper, h), Err(NtStatus::STATUS_ACCESS_DENIED));
    // Even opening it through a create is refused (WdFilter matches creates before existence).
    assert_eq!(
        e.reg.create_key(&dropper, None, &format!(r"{svc}\Parameters"), &CreateOptions::default()).err(),
        Some(NtStatus::STATUS_ACCESS_DENIED)
    );
    // Renaming another key *to* a hardened name is refused too.
    let (other, _) = e
        .reg
        .create_key(&e.admin, None, r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\x", &CreateOptions::default())
        .unwrap();
    assert_eq!(e.reg.rename_key(&dropper, other, "hivebox2"), Err(NtStatus::STATUS_ACCESS_DENIED));
    // The service, friendly processes and System are not subject to it.
    assert_eq!(e.set(&caller("/usr/bin/hivebox"), svc, "Start", Value::dword(2)), Ok(()));
    assert_eq!(e.set(&caller("/usr/lib/hivebox/agent"), svc, "Start", Value::dword(2)), Ok(()));
    assert_eq!(e.set(&e.admin, svc, "Start", Value::dword(2)), Ok(()));
    assert!(e.events.take().iter().filter(|(e, _)| e.reason == Some("hardening")).all(|(e, _)| e.rules == ["svc"]));
    e.reg.close_key(&e.admin, h).unwrap();
    e.reg.close_key(&e.admin, other).unwrap();
}

#[test]
fn creating_a_key_that_exists_is_not_a_create() {
    let e = env();
    let who = caller("/tmp/app");
    let path = r"\REGISTRY\MACHINE\SOFTWARE\Watched\New";
    let (h, _) = e.reg.create_key(&who, None, path, &CreateOptions::default()).unwrap();
    e.reg.close_key(&who, h).unwrap();
    let ev = e.events.take();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0.op, hivebox_core::protect::RegOp::CreateKey);
    assert_eq!(ev[0].0.target_object, r"HKLM\SOFTWARE\Watched\New");
    let (h, _) = e.reg.create_key(&who, None, path, &CreateOptions::default()).unwrap();
    e.reg.close_key(&who, h).unwrap();
    assert!(e.events.take().is_empty(), "opening through a create is not an event");
}

#[test]
fn rename_matches_both_names_and_ors_their_rules() {
    let e = env();
    let who = caller("/tmp/app");
    // Old name matches "rename-target" (deny): refused.
    let h = e.open(&e.admin, r"\REGISTRY\MACHINE\SOFTWARE\Targets\Locked");
    assert_eq!(e.reg.rename_key(&who, h, "Free"), Err(NtStatus::STATUS_ACCESS_DENIED));
    e.reg.close_key(&e.admin, h).unwrap();
    // New name matches it: refused as well.
    let (h, _) = e
        .reg
        .create_key(&e.admin, None, r"\REGISTRY\MACHINE\SOFTWARE\Targets\Other", &CreateOptions::default())
        .unwrap();
    assert_eq!(e.reg.rename_key(&who, h, "Locked2"), Ok(()), "a different name is free");
    e.reg.rename_key(&e.admin, h, "Other").unwrap();
    e.reg.delete_key(&e.admin, e.open(&e.admin, r"\REGISTRY\MACHINE\SOFTWARE\Targets\Locked")).unwrap();
    assert_eq!(e.reg.rename_key(&who, h, "Locked"), Err(NtStatus::STATUS_ACCESS_DENIED));
    let denied = e.events.take();
    let last = &denied.last().unwrap().0;
    assert_eq!(last.target_object, r"HKLM\SOFTWARE\Targets\Other");
    assert_eq!(last.new_name.as_deref(), Some(r"HKLM\SOFTWARE\Targets\Locked"));
    assert_eq!(last.rules, ["rename-target"]);
    // Both names in a notify tree: one event naming both.
    let (w, _) =
        e.reg.create_key(&e.admin, None, r"\REGISTRY\MACHINE\SOFTWARE\Watched\A", &CreateOptions::default()).unwrap();
    e.events.take();
    e.reg.rename_key(&who, w, "B").unwrap();
    let ev = e.events.take();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0.op.event_type(), "RenameKey");
    assert_eq!(ev[0].0.new_name.as_deref(), Some(r"HKLM\SOFTWARE\Watched\B"));
    e.reg.close_key(&e.admin, h).unwrap();
    e.reg.close_key(&e.admin, w).unwrap();
}

#[test]
fn old_values_come_with_set_and_delete_when_the_rule_asks() {
    let e = env();
    // System is not exempt from Denied bits (WdFilter exempts it from hardening only).
    assert_eq!(e.set(&e.admin, RUN, "updater", Value::sz("C:\\good.exe")), Err(NtStatus::STATUS_ACCESS_DENIED));
    e.set(&caller("/usr/bin/hivebox"), RUN, "updater", Value::sz("C:\\good.exe")).unwrap();
    e.events.take();
    let r = e.set(&caller("/tmp/dropper"), RUN, "updater", Value::sz("C:\\evil.exe"));
    assert_eq!(r, Err(NtStatus::STATUS_ACCESS_DENIED));
    let ev = e.events.take();
    assert_eq!(ev[0].0.old, Some(Value::sz("C:\\good.exe")));
    let h = e.open(&e.admin, RUN);
    assert_eq!(e.reg.delete_value(&caller("/usr/bin/hivebox"), h, "updater"), Ok(()));
    let ev = e.events.take();
    assert_eq!(ev[0].0.op.event_type(), "DeleteValue");
    assert_eq!(ev[0].0.old, Some(Value::sz("C:\\good.exe")));
    assert!(ev[0].0.to_json().contains(r#""old":{"type":"REG_SZ","data":"C:\\good.exe""#), "{}", ev[0].0.to_json());
    e.reg.close_key(&e.admin, h).unwrap();
}

/// A filter below the protection filter that blocks or bypasses what it is told to.
struct Below {
    block: AtomicBool,
    bypass: AtomicBool,
}

impl RegistryCallback for Below {
    fn notify(&self, _: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        match (class, arg) {
            (RegNotifyClass::RegNtPreSetValueKey, Argument::Pre(_)) if self.block.load(Ordering::SeqCst) => {
                NtStatus::STATUS_ACCESS_DENIED
            }
            (RegNotifyClass::RegNtPreSetValueKey, Argument::Pre(_)) if self.bypass.load(Ordering::SeqCst) => {
                NtStatus::STATUS_CALLBACK_BYPASS
            }
            _ => NtStatus::STATUS_SUCCESS,
        }
    }
}

#[test]
fn call_contexts_reach_their_own_post_and_never_leak() {
    let e = env();
    let below = Arc::new(Below { block: AtomicBool::new(false), bypass: AtomicBool::new(false) });
    e.reg.register("100000", below.clone()).unwrap();
    let who = caller("/tmp/app");
    let w = r"\REGISTRY\MACHINE\SOFTWARE\Watched";
    e.set(&who, w, "a", Value::dword(1)).unwrap();
    assert_eq!(e.events.take().len(), 1);
    assert_eq!(e.filter.live_contexts(), 0);

    below.block.store(true, Ordering::SeqCst);
    assert_eq!(e.set(&who, w, "b", Value::dword(1)), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert!(e.events.take().is_empty(), "a failed operation is not reported as done");
    assert_eq!(e.filter.live_contexts(), 0, "the blocked operation's context was released");

    below.block.store(false, Ordering::SeqCst);
    below.bypass.store(true, Ordering::SeqCst);
    assert_eq!(e.set(&who, w, "c", Value::dword(1)), Ok(()));
    let ev = e.events.take();
    assert_eq!(ev.len(), 1, "a bypass below completes the operation: the post reports it");
    assert_eq!(ev[0].0.target_object, r"HKLM\SOFTWARE\Watched\c");
    assert_eq!(e.filter.live_contexts(), 0);

    // Concurrent operations on many threads: each post gets its own pre's context.
    below.bypass.store(false, Ordering::SeqCst);
    std::thread::scope(|s| {
        for t in 0..8 {
            let e = &e;
            s.spawn(move || {
                let who = caller("/tmp/app");
                for i in 0..50 {
                    let name = format!("t{t}-{i}");
                    e.set(&who, w, &name, Value::dword(i)).unwrap();
                }
            });
        }
    });
    let ev = e.events.take();
    assert_eq!(ev.len(), 400);
    let mut names: Vec<String> =
        ev.iter().map(|(e, _)| e.target_object.rsplit('\\').next().unwrap().to_owned()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 400, "every event names its own operation");
    for (ev, _) in &ev {
        let name = ev.target_object.rsplit('\\').next().unwrap();
        let i: u32 = name.split('-').nth(1).unwrap().parse().unwrap();
        assert_eq!(ev.details.as_deref(), Some(format!("DWORD (0x{i:08x})").as_str()));
    }
    assert_eq!(e.filter.live_contexts(), 0);
}

struct Answer(Option<Decision>, Mutex<Vec<String>>);

impl Decider for Answer {
    fn decide(&self, event: &ProtectionEvent, timeout_ms: u64) -> Option<Decision> {
        self.1.lock().push(format!("{} {timeout_ms}", event.target_object));
        self.0
    }
}

#[test]
fn sync_rules_wait_for_the_service_or_the_default() {
    let e = env();
    let ask = r"\REGISTRY\MACHINE\SOFTWARE\Ask";
    let who = caller("/tmp/app");
    // No decider: the default verdict (allow).
    assert_eq!(e.set(&who, ask, "a", Value::dword(1)), Ok(()));
    let ev = e.events.take();
    assert_eq!(ev[0].0.decided_by, Some("default"));
    assert!(ev[0].0.sync);
    let d = Arc::new(Answer(Some(Decision::Deny), Mutex::new(vec![])));
    e.filter.set_decider(Some(d.clone()));
    assert_eq!(e.set(&who, ask, "b", Value::dword(1)), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(d.1.lock().as_slice(), [r"HKLM\SOFTWARE\Ask\b 5000".to_owned()]);
    let ev = e.events.take();
    assert_eq!((ev[0].0.reason, ev[0].0.decided_by), (Some("service"), Some("service")));
    // A decider that does not answer in time: the configured default (deny here).
    let strict = POLICY.replace(
        "[[rule]]\nid = \"run\"",
        "[settings]\nsync-default = \"deny\"\nsync-timeout-ms = 10\n\n[[rule]]\nid = \"run\"",
    );
    let e = env_with(&strict);
    e.filter.set_decider(Some(Arc::new(Answer(None, Mutex::new(vec![])))));
    assert_eq!(e.set(&who, ask, "c", Value::dword(1)), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(e.events.take()[0].0.decided_by, Some("default"));
    assert_eq!(e.filter.stats().sync_timeouts.load(Ordering::Relaxed), 1);
}

#[test]
fn a_policy_swap_is_atomic_for_every_operation() {
    // Policy A denies set-value on Run; policy B only notifies it. Under a storm of swaps,
    // every operation is judged by exactly one of them: a denial names A's rule, an allowed
    // write's event names B's rule; no operation is allowed without an event or denied by B.
    let a = r#"
[[rule]]
id = "A"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
deny = ["set-value"]
"#;
    let b = r#"
[[rule]]
id = "B"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
notify = ["set-value"]
"#;
    let e = env_with(a);
    let pa = Arc::new(hivebox_policy::compile("a", a).unwrap());
    let pb = Arc::new(hivebox_policy::compile("b", b).unwrap());
    let stop = AtomicBool::new(false);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut flip = false;
            while !stop.load(Ordering::SeqCst) {
                e.filter.swap_policy(if flip { pa.clone() } else { pb.clone() });
                flip = !flip;
            }
        });
        let workers: Vec<_> = (0..4)
            .map(|t| {
                let (e, results) = (&e, &results);
                s.spawn(move || {
                    let who = caller("/tmp/app");
                    // Until both policies have judged this worker's writes (bounded).
                    let (mut ok, mut refused) = (0, 0);
                    for i in 0..20_000 {
                        let name = format!("{t}-{i}");
                        let r = e.set(&who, RUN, &name, Value::dword(1));
                        if r.is_ok() {
                            ok += 1
                        } else {
                            refused += 1
                        }
                        results.lock().push((name, r.is_ok()));
                        if i >= 300 && ok > 0 && refused > 0 {
                            break;
                        }
                        std::thread::yield_now();
                    }
                })
            })
            .collect();
        for w in workers {
            w.join().unwrap();
        }
        stop.store(true, Ordering::SeqCst);
    });
    let events = e.events.take();
    let results = results.into_inner();
    let (mut allowed, mut denied) = (0, 0);
    for (name, ok) in &results {
        let target = format!(r"HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\{name}");
        let mine: Vec<_> = events.iter().filter(|(e, _)| e.target_object == target).collect();
        assert_eq!(mine.len(), 1, "{name}: exactly one event");
        let ev = &mine[0].0;
        if *ok {
            allowed += 1;
            assert_eq!((ev.verdict, ev.rules.as_slice()), (EventVerdict::Allowed, ["B".to_owned()].as_slice()));
        } else {
            denied += 1;
            assert_eq!((ev.verdict, ev.rules.as_slice()), (EventVerdict::Denied, ["A".to_owned()].as_slice()));
        }
    }
    assert!(allowed > 0 && denied > 0, "both policies were in force at some point ({allowed}/{denied})");
}

/// The protection filter above the isolation filter: a boxed write to a protected key is
/// judged on the path the program named, denied by default (a box cannot launder a protected
/// change through its private store), let through into the box with `in-box = "allow"`; every
/// event names the box; the host's key is never changed.
#[test]
fn protection_judges_boxed_writes_on_the_named_path() {
    use hivebox_core::isolate::{IsolationFilter, box_mount};
    use hivebox_core::{KeyImage, MemoryStorage, OpenOptions};
    for (in_box, allowed) in [("", false), (r#"in-box = "deny""#, false), (r#"in-box = "allow""#, true)] {
        let policy = format!(
            "[[rule]]\nid = \"run\"\nkey = 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run'\ndeny = [\"set-value\"]\n{in_box}\n"
        );
        let e = env_with(&policy);
        let image = KeyImage { name: "trial".into(), ..KeyImage::default() };
        e.reg.load_key(&e.admin, &box_mount("trial"), "memory", image, Box::new(MemoryStorage)).unwrap();
        let isolation = IsolationFilter::new();
        isolation.register(&e.reg).unwrap();
        isolation.add_box("trial");
        let boxed = Caller::user(
            Token { user_sid: "S-1-5-21-1-2-3-1001".into(), system: false },
            ProcessInfo {
                pid: 77,
                image: "/opt/trial/setup".into(),
                box_name: Some("trial".into()),
                ..ProcessInfo::default()
            },
        );
        let h = e.reg.open_key(&boxed, None, RUN, &OpenOptions::access(hivebox_core::access::KEY_ALL_ACCESS)).unwrap();
        let r = e.reg.set_value(&boxed, h, "evil", Value::sz("/tmp/x"));
        let events = e.events.take();
        assert_eq!(events.len(), 1, "{in_box}: {events:?}");
        assert_eq!(events[0].0.box_name.as_deref(), Some("trial"));
        if allowed {
            r.unwrap();
            assert_eq!(events[0].0.verdict, EventVerdict::Allowed);
            assert_eq!(e.reg.query_value(&boxed, h, "evil").unwrap(), Value::sz("/tmp/x"), "in the box");
        } else {
            assert_eq!(r.unwrap_err(), NtStatus::STATUS_ACCESS_DENIED, "{in_box}");
            assert_eq!(events[0].0.verdict, EventVerdict::Denied);
        }
        // The host's key: untouched either way.
        let host = e.open(&e.admin, RUN);
        assert_eq!(e.reg.query_value(&e.admin, host, "evil").unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    }
}
