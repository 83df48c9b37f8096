//! `hivebox demo`: a scratch registry with three filters on the CM stack, and the trace of
//! every pre and post callback as operations pass through them.
//!
//! * an activity monitor at altitude 385000 that records everything it sees;
//! * the protection filter (WdFilter's rules) at 328010 with a small policy that blocks writes
//!   to the `Run` persistence key and watches `HKLM\SOFTWARE\Demo`;
//! * the isolation filter at 135000 (`hivebox_core::isolate`), serving a box `trial` whose
//!   private hive is mounted in memory: a trial installer run in the box writes keys, deletes
//!   and renames host keys and tries the protected `Run` key; the host stays untouched, the
//!   box's diff is printed, and discarding the box makes the trial vanish.

use hivebox_core::access::KEY_ALL_ACCESS;
use hivebox_core::isolate::{IsolationFilter, box_mount};
use hivebox_core::protect::{EventSink, PROTECTION_ALTITUDE, ProtectionEvent, ProtectionFilter};
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, ManualClock, NtStatus, OpenOptions, Operation, ProcessInfo,
    RegNotifyClass, Registry, RegistryCallback, Token, UNIX_EPOCH_FILETIME, Value,
};
use std::sync::{Arc, Mutex};

const RUN_KEY: &str = r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run";
const TRIAL: &str = r"\REGISTRY\MACHINE\SOFTWARE\Trial";
const VENDOR: &str = r"\REGISTRY\MACHINE\SOFTWARE\Vendor";

type Trace = Arc<Mutex<Vec<String>>>;

/// `println!` for a reader that may go away (`hivebox demo | head`): then the demo just ends.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

fn say(trace: &Trace, line: String) {
    if let Ok(mut t) = trace.lock() {
        t.push(line);
    }
}

/// The full name an operation names: the key object's path, or root + relative name for
/// create/open.
fn target_name(cx: &CallbackCx<'_>, op: &Operation) -> String {
    match op {
        Operation::CreateKey(info) | Operation::OpenKey(info) => {
            let root = cx.key_object_id(info.root_object).map(|(_, n)| n).unwrap_or_default();
            if info.remaining_name.is_empty() { root } else { format!("{root}\\{}", info.remaining_name) }
        }
        other => cx.key_object_id(other.object()).map(|(_, n)| n).unwrap_or_default(),
    }
}

fn detail(op: &Operation) -> String {
    match op {
        Operation::SetValueKey { value_name, value, .. } => format!("  {value_name} = {value:?}"),
        Operation::QueryValueKey { value_name, .. } | Operation::DeleteValueKey { value_name, .. } => {
            format!("  value {value_name}")
        }
        _ => String::new(),
    }
}

struct Monitor(Trace);

impl RegistryCallback for Monitor {
    fn notify(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        match arg {
            Argument::Pre(pre) => {
                let name = target_name(cx, pre.op);
                say(
                    &self.0,
                    format!("  [385000 monitor  ] pre  {class:?} ({}) {name}{}", class as i32, detail(pre.op)),
                );
            }
            Argument::Post(post) => {
                say(
                    &self.0,
                    format!("  [385000 monitor  ] post {class:?} ({}) status {:?}", class as i32, post.status),
                );
            }
            Argument::ContextCleanup { .. } => {}
        }
        NtStatus::STATUS_SUCCESS
    }
}

/// The demo's protection policy: the `Run` key's values may not be changed by ordinary
/// processes; everything under `SOFTWARE\Demo` is watched.
const POLICY: &str = r#"
[[rule]]
id = "persistence-run-keys"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
deny = ["set-value", "delete-value"]
notify = ["create-key", "delete-key"]
old-value = true

[[rule]]
id = "demo-watch"
key = 'HKLM\Software\Demo\**'
notify = ["create-key", "set-value", "delete-value", "delete-key"]
"#;

/// Prints the protection filter's events into the trace as they are sent.
struct Events(Trace);

impl EventSink for Events {
    fn submit(&self, e: ProtectionEvent, high: bool) {
        let details = e.details.as_deref().map(|d| format!(" = {d}")).unwrap_or_default();
        say(
            &self.0,
            format!(
                "  [{PROTECTION_ALTITUDE} protection] event ({} queue): {} {} {}{details}  rules {:?}{}",
                if high { "high" } else { "normal" },
                e.verdict.name(),
                e.op.event_type(),
                e.target_object,
                e.rules,
                e.box_name.as_deref().map(|b| format!("  box {b}")).unwrap_or_default()
            ),
        );
    }
}

/// The real isolation filter, with its decisions traced.
struct Isolation(Trace, Arc<IsolationFilter>);

impl RegistryCallback for Isolation {
    fn notify(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        let pre = matches!(arg, Argument::Pre(_));
        let status = self.1.notify(cx, class, arg);
        if pre {
            let what = match status {
                NtStatus::STATUS_CALLBACK_BYPASS => "performed in the box -> STATUS_CALLBACK_BYPASS".to_owned(),
                NtStatus::STATUS_SUCCESS => "continue".to_owned(),
                other => format!("-> {other}"),
            };
            say(&self.0, format!("  [135000 isolation] pre  {class:?}: {what}"));
        } else if status == NtStatus::STATUS_SUCCESS {
            say(&self.0, format!("  [135000 isolation] post {class:?}"));
        }
        status
    }
}

struct Scene {
    reg: Registry,
    me: Caller,
    trace: Trace,
    /// Print every callback (else only the events).
    verbose: bool,
}

impl Scene {
    fn step<T>(&self, title: &str, f: impl FnOnce(&Registry, &Caller) -> Result<T, NtStatus>) -> Result<T, NtStatus> {
        outln!("\n> {title}");
        let r = f(&self.reg, &self.me);
        if let Ok(mut t) = self.trace.lock() {
            for line in t.drain(..) {
                if self.verbose || line.contains("event") {
                    outln!("{line}");
                }
            }
        }
        match &r {
            Ok(_) => outln!("< STATUS_SUCCESS"),
            Err(status) => outln!("< {status}"),
        }
        r
    }
}

/// Runs the demo; returns the process exit code.
pub fn run(_args: &[String]) -> anyhow::Result<i32> {
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH_FILETIME));
    let reg = Registry::fresh_in_memory(clock.clone());
    let trace: Trace = Arc::default();
    let me = Caller::user(
        Token { user_sid: hivebox_core::path::unix_user_sid(1000), system: false },
        ProcessInfo { pid: std::process::id(), image: "/usr/bin/regedit-like".into(), ..ProcessInfo::default() },
    );
    outln!("hivebox demo: a scratch registry with three filters on the CM callback stack");
    let sys = Caller::system();
    // The host's keys the trial installer will meet.
    for (key, value) in [("OldTool", "1.0"), ("Legacy", "2.3")] {
        let (h, _) = reg.create_key_path(&sys, None, &format!(r"{VENDOR}\{key}"), &CreateOptions::default())?;
        reg.set_value(&sys, h, "Version", Value::sz(value))?;
        reg.close_key(&sys, h)?;
    }
    // The box's private hive, in memory here (`boxes/trial/registry.hiv` under the daemon).
    let image = hivebox_core::KeyImage { name: "trial".into(), ..hivebox_core::KeyImage::default() };
    reg.load_key(&sys, &box_mount("trial"), "memory", image, Box::new(hivebox_core::MemoryStorage))?;
    reg.register("385000", Arc::new(Monitor(trace.clone()))).map_err(status_err)?;
    let policy = hivebox_policy::compile("<demo policy>", POLICY).map_err(|e| anyhow::anyhow!("{e}"))?;
    ProtectionFilter::new(policy, Arc::new(Events(trace.clone())), clock.clone()).register(&reg).map_err(status_err)?;
    let isolation = IsolationFilter::new();
    isolation.add_box("trial");
    reg.register(hivebox_core::isolate::ALTITUDE, Arc::new(Isolation(trace.clone(), isolation.clone())))
        .map_err(status_err)?;
    for (cookie, altitude) in reg.callbacks() {
        outln!("  registered altitude {altitude:>7}  cookie {:#x}", cookie.0);
    }
    let mut scene = Scene { reg, me, trace, verbose: true };
    let all = CreateOptions::default();

    outln!("\n== 1. An ordinary write: pre callbacks run high to low, posts low to high");
    let (demo, _) = scene
        .step(r"create HKLM\SOFTWARE\Demo", |r, me| r.create_key(me, None, r"\REGISTRY\MACHINE\SOFTWARE\Demo", &all))?;
    scene.step("set Greeting = \"hello\"", |r, me| r.set_value(me, demo, "Greeting", Value::sz("hello")))?;
    scene.step("close", |r, me| r.close_key(me, demo))?;

    outln!(
        "\n== 2. A blocked write: the protection filter denies the pre and sends the event at once; the monitor above gets a synthetic post, the isolation filter below sees nothing"
    );
    let run = scene.step(r"open HKLM\...\CurrentVersion\Run", |r, me| {
        r.open_key(me, None, RUN_KEY, &OpenOptions::access(KEY_ALL_ACCESS))
    })?;
    let blocked =
        scene.step("set Updater = \"/tmp/evil\"", |r, me| r.set_value(me, run, "Updater", Value::sz("/tmp/evil")));
    let _ = scene.step("query Updater", |r, me| r.query_value(me, run, "Updater"));
    scene.step("close", |r, me| r.close_key(me, run))?;

    outln!(
        "\n== 3. A trial installer in box \"trial\": the isolation filter performs its writes in the box's private hive and bypasses the CM"
    );
    scene.me = Caller::user(
        Token { user_sid: hivebox_core::path::unix_user_sid(1000), system: false },
        ProcessInfo {
            pid: std::process::id(),
            image: "/opt/trial/setup".into(),
            box_name: Some("trial".into()),
            ..ProcessInfo::default()
        },
    );
    let (trial, _) = scene
        .step(r"create HKLM\SOFTWARE\Trial\Settings (one level at a time, as RegCreateKeyEx)", |r, me| {
            r.create_key_path(me, None, &format!(r"{TRIAL}\Settings"), &all)
        })?;
    scene.verbose = false;
    outln!("  (from here on only the events are shown)");
    scene.step("set Licensed = 1", |r, me| r.set_value(me, trial, "Licensed", Value::dword(1)))?;
    let seen = scene.step("query the handle's name (what the installer sees)", |r, me| r.query_key_name(me, trial))?;
    outln!("  {seen}");
    scene.step("close", |r, me| r.close_key(me, trial))?;
    scene.step(r"delete the host's HKLM\SOFTWARE\Vendor\OldTool", |r, me| {
        let h = r.open_key(me, None, &format!(r"{VENDOR}\OldTool"), &OpenOptions::access(KEY_ALL_ACCESS))?;
        let d = r.delete_key(me, h);
        r.close_key(me, h)?;
        d
    })?;
    scene.step(r"rename HKLM\SOFTWARE\Vendor\Legacy to Legacy-Trial", |r, me| {
        let h = r.open_key(me, None, &format!(r"{VENDOR}\Legacy"), &OpenOptions::access(KEY_ALL_ACCESS))?;
        let d = r.rename_key(me, h, "Legacy-Trial");
        r.close_key(me, h)?;
        d
    })?;
    let boxed_run =
        scene.step("set Run\\TrialUpdater (the protection filter judges the path the installer named)", |r, me| {
            let h = r.open_key(me, None, RUN_KEY, &OpenOptions::access(KEY_ALL_ACCESS))?;
            let d = r.set_value(me, h, "TrialUpdater", Value::sz("/opt/trial/update"));
            r.close_key(me, h)?;
            d
        });
    let box_sees = |path: &str| {
        scene.reg.open_key(&scene.me, None, path, &OpenOptions::default()).map(|h| {
            let _ = scene.reg.close_key(&scene.me, h);
        })
    };
    let host_sees = |path: &str| {
        scene.reg.open_key(&sys, None, path, &OpenOptions::default()).map(|h| {
            let _ = scene.reg.close_key(&sys, h);
        })
    };
    let yes = |r: Result<(), NtStatus>| if r.is_ok() { "exists" } else { "absent" };
    outln!("\n== 4. Two views of the same registry");
    outln!("  {:<44} {:>8} {:>8}", "key", "box", "host");
    for path in [
        format!(r"{TRIAL}\Settings"),
        format!(r"{VENDOR}\OldTool"),
        format!(r"{VENDOR}\Legacy"),
        format!(r"{VENDOR}\Legacy-Trial"),
    ] {
        let short = path.replace(r"\REGISTRY\MACHINE", "HKLM");
        outln!("  {short:<44} {:>8} {:>8}", yes(box_sees(&path)), yes(host_sees(&path)));
    }
    outln!("\n== 5. hivebox box diff trial");
    let diff = hivebox_daemon::changes::diff_text(&scene.reg, "trial").map_err(|e| anyhow::anyhow!("{e}"))?;
    for line in diff.lines() {
        outln!("  {line}");
    }
    outln!("\n== 6. hivebox box discard trial: the box's hive is thrown away and mounted afresh");
    isolation.remove_box("trial");
    scene.reg.unload_key(&sys, &box_mount("trial")).map_err(status_err)?;
    let image = hivebox_core::KeyImage { name: "trial".into(), ..hivebox_core::KeyImage::default() };
    scene.reg.load_key(&sys, &box_mount("trial"), "memory", image, Box::new(hivebox_core::MemoryStorage))?;
    isolation.add_box("trial");
    let after = box_sees(&format!(r"{TRIAL}\Settings"));
    let oldtool_back = box_sees(&format!(r"{VENDOR}\OldTool"));
    outln!("  HKLM\\SOFTWARE\\Trial\\Settings in the box: {}", yes(after));
    outln!("  HKLM\\SOFTWARE\\Vendor\\OldTool in the box: {}", yes(oldtool_back));

    outln!("\n== Summary");
    outln!("  the Run key write was {}", if blocked.is_err() { "blocked (STATUS_ACCESS_DENIED)" } else { "ALLOWED" });
    outln!("  the boxed Run key write was {}", if boxed_run.is_err() { "blocked too" } else { "ALLOWED" });
    let host_untouched = host_sees(TRIAL).is_err()
        && host_sees(&format!(r"{VENDOR}\OldTool")).is_ok()
        && host_sees(&format!(r"{VENDOR}\Legacy")).is_ok()
        && host_sees(&format!(r"{VENDOR}\Legacy-Trial")).is_err();
    outln!("  the host registry is {}", if host_untouched { "untouched" } else { "CHANGED" });
    outln!(
        "  after the discard the trial is {}",
        if after.is_err() && oldtool_back.is_ok() { "gone" } else { "STILL THERE" }
    );
    let ok = blocked.is_err()
        && boxed_run.is_err()
        && host_untouched
        && after.is_err()
        && oldtool_back.is_ok()
        && !diff.is_empty();
    Ok(if ok { 0 } else { 1 })
}

fn status_err(status: NtStatus) -> anyhow::Error {
    anyhow::anyhow!("{} ({status})", status.describe())
}
