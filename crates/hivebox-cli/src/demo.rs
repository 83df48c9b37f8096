//! `hivebox demo`: a scratch registry with three filters on the CM stack, and the trace of
//! every pre and post callback as operations pass through them.
//!
//! * an activity monitor at altitude 385000 that records everything it sees;
//! * the protection filter (WdFilter's rules) at 328010 with a small policy that blocks writes
//!   to the `Run` persistence key and watches `HKLM\SOFTWARE\Demo`;
//! * an isolation filter at 135000 that redirects `HKLM\SOFTWARE\Trial` into a private key
//!   and completes those creates and opens itself (`STATUS_CALLBACK_BYPASS`).

use hivebox_core::access::{KEY_ALL_ACCESS, map_generic};
use hivebox_core::name::upcase;
use hivebox_core::protect::{EventSink, PROTECTION_ALTITUDE, ProtectionEvent, ProtectionFilter};
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, ManualClock, NtStatus, OpenOptions, Operation, ProcessInfo,
    RegNotifyClass, Registry, RegistryCallback, Token, UNIX_EPOCH_FILETIME, Value,
};
use std::sync::{Arc, Mutex};

const RUN_KEY: &str = r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run";
const TRIAL: &str = r"\REGISTRY\MACHINE\SOFTWARE\Trial";
const PRIVATE: &str = r"\REGISTRY\MACHINE\SOFTWARE\hivebox-private";

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
                "  [{PROTECTION_ALTITUDE} protection] event ({} queue): {} {} {}{details}  rules {:?}",
                if high { "high" } else { "normal" },
                e.verdict.name(),
                e.op.event_type(),
                e.target_object,
                e.rules
            ),
        );
    }
}

struct Isolation(Trace);

impl Isolation {
    fn redirect(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, op: &mut Operation) -> Option<NtStatus> {
        let create = matches!(op, Operation::CreateKey(_));
        let name = target_name(cx, op);
        let up = upcase(&name);
        let trial = upcase(TRIAL);
        if !(up == trial || up.starts_with(&(trial.clone() + "\\"))) {
            return None;
        }
        let private = format!("{PRIVATE}{}", &name[TRIAL.len() - "\\Trial".len()..]);
        let info = op.create_info()?;
        let reg = cx.registry();
        let me = cx.nested();
        let opened = if create {
            let opts =
                CreateOptions { desired_access: KEY_ALL_ACCESS, class: info.class.clone(), ..CreateOptions::default() };
            reg.create_key_path(&me, None, &private, &opts).map(|(h, d)| (h, Some(d)))
        } else {
            reg.open_key(&me, None, &private, &OpenOptions::access(KEY_ALL_ACCESS)).map(|h| (h, None))
        };
        let (handle, disposition) = match opened {
            Ok(x) => x,
            Err(status) => return Some(status),
        };
        let object = cx.reference_object_by_handle(handle).ok()?;
        let _ = reg.close_key(&me, handle);
        info.result_object = Some(object);
        info.granted_access = map_generic(info.desired_access);
        info.disposition = disposition;
        say(&self.0, format!("  [135000 isolation] pre  {class:?}: redirected to {private} -> STATUS_CALLBACK_BYPASS"));
        Some(NtStatus::STATUS_CALLBACK_BYPASS)
    }
}

impl RegistryCallback for Isolation {
    fn notify(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        match arg {
            Argument::Pre(pre) => {
                if let Some(status) = self.redirect(cx, class, pre.op) {
                    return status;
                }
                say(&self.0, format!("  [135000 isolation] pre  {class:?} -> continue"));
            }
            Argument::Post(post) => {
                say(&self.0, format!("  [135000 isolation] post {class:?} status {:?}", post.status));
            }
            Argument::ContextCleanup { .. } => {}
        }
        NtStatus::STATUS_SUCCESS
    }
}

struct Scene {
    reg: Registry,
    me: Caller,
    trace: Trace,
}

impl Scene {
    fn step<T>(&self, title: &str, f: impl FnOnce(&Registry, &Caller) -> Result<T, NtStatus>) -> Result<T, NtStatus> {
        outln!("\n> {title}");
        let r = f(&self.reg, &self.me);
        if let Ok(mut t) = self.trace.lock() {
            for line in t.drain(..) {
                outln!("{line}");
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
        ProcessInfo { pid: std::process::id(), image: "/usr/bin/trial-installer".into(), ..ProcessInfo::default() },
    );
    outln!("hivebox demo: a scratch registry with three filters on the CM callback stack");
    reg.register("385000", Arc::new(Monitor(trace.clone()))).map_err(status_err)?;
    let policy = hivebox_policy::compile("<demo policy>", POLICY).map_err(|e| anyhow::anyhow!("{e}"))?;
    ProtectionFilter::new(policy, Arc::new(Events(trace.clone())), clock.clone()).register(&reg).map_err(status_err)?;
    reg.register("135000", Arc::new(Isolation(trace.clone()))).map_err(status_err)?;
    for (cookie, altitude) in reg.callbacks() {
        outln!("  registered altitude {altitude:>7}  cookie {:#x}", cookie.0);
    }
    let scene = Scene { reg, me, trace };
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
        "\n== 3. A redirected create: the isolation filter opens a private key itself and bypasses the CM; its own calls are seen only below it"
    );
    let (trial, _) = scene
        .step(r"create HKLM\SOFTWARE\Trial\Settings (one level at a time, as RegCreateKeyEx)", |r, me| {
            r.create_key_path(me, None, r"\REGISTRY\MACHINE\SOFTWARE\Trial\Settings", &all)
        })?;
    scene.step("set Licensed = 1", |r, me| r.set_value(me, trial, "Licensed", Value::dword(1)))?;
    let landed = scene.step("query the handle's name", |r, me| r.query_key_name(me, trial))?;
    scene.step("close", |r, me| r.close_key(me, trial))?;
    outln!("\n== 4. Unregistering the filters; the host's view of the registry");
    for (cookie, altitude) in scene.reg.callbacks() {
        scene.reg.unregister(cookie)?;
        outln!("  unregistered altitude {altitude}");
    }
    let real = scene.reg.open_key(&Caller::system(), None, TRIAL, &OpenOptions::default());
    if let Ok(h) = real {
        let _ = scene.reg.close_key(&Caller::system(), h);
    }

    outln!("\n== Summary");
    outln!("  the Run key write was {}", if blocked.is_err() { "blocked (STATUS_ACCESS_DENIED)" } else { "ALLOWED" });
    outln!("  the trial installer's key landed at {landed}");
    match real {
        Err(status) => outln!("  the real {TRIAL} does not exist ({status:?})"),
        Ok(_) => outln!("  the real {TRIAL} EXISTS"),
    }
    let ok = blocked.is_err() && real.is_err() && landed.starts_with(PRIVATE);
    Ok(if ok { 0 } else { 1 })
}

fn status_err(status: NtStatus) -> anyhow::Error {
    anyhow::anyhow!("{} ({status})", status.describe())
}
