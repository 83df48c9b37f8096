//! Network decisions (`network = "decide"` boxes): a box's launcher asks about each new
//! destination of a boxed process (`Request::NetDecide`); the box's `[net]` rules answer, or
//! the deciders (`hivebox decide`) when a rule says `ask`. Every decision is an event
//! (`NetworkConnect`, in the event log and to live subscribers).
//!
//! Only a box's launcher may ask: a peer outside every seccomp filter (every boxed program
//! runs under the box's), as root or the daemon's user, and in no other box. So a boxed
//! program cannot put made-up questions to a person, nor learn answers it could then use.

use crate::decide::{Asked, DecisionHub};
use crate::events::EventLog;
use hivebox_core::NtStatus;
use hivebox_proto::{Reply, Verdict};
use hivebox_sandbox::netrules::{Action, Connection, NetRules, Proto};
use parking_lot::Mutex;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

/// Hands a logged event line to live subscribers: box, verdict, line.
pub type Publish = Arc<dyn Fn(Option<&str>, &str, &str) + Send + Sync>;

/// Who asks, as the kernel told the daemon when it connected.
#[derive(Debug)]
pub struct Asker {
    /// Root or the daemon's user.
    pub privileged: bool,
    /// Its pid.
    pub pid: u32,
    /// The process, pinned (`None`: the daemon itself).
    pub pidfd: Option<std::os::fd::OwnedFd>,
    /// The box its cgroup puts it in.
    pub box_name: Option<String>,
}

impl Asker {
    /// Whether it is a launcher now: privileged, and outside every seccomp filter at this very
    /// moment (read from the kernel at each question: a filter installed after connecting
    /// counts).
    fn is_launcher(&self) -> bool {
        if !self.privileged {
            return false;
        }
        let mode = crate::identity::seccomp_mode(self.pid);
        let alive = self.pidfd.as_ref().is_none_or(|p| crate::identity::exited(p).is_ok_and(|gone| !gone));
        matches!(mode, Ok(0)) && alive
    }
}

/// The network decision service.
pub struct NetDecisions {
    boxes_dir: PathBuf,
    hub: Arc<DecisionHub>,
    log: Arc<Mutex<EventLog>>,
    publish: Publish,
}

impl std::fmt::Debug for NetDecisions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetDecisions").field("boxes_dir", &self.boxes_dir).finish_non_exhaustive()
    }
}

/// One question, as the request carried it.
#[derive(Debug, Clone)]
pub struct Question<'a> {
    /// The box.
    pub box_name: &'a str,
    /// The connecting process.
    pub pid: u32,
    /// `tcp` / `udp`.
    pub protocol: &'a str,
    /// The destination address.
    pub address: &'a str,
    /// The destination port.
    pub port: u16,
}

fn error(status: NtStatus, message: impl Into<String>) -> Reply {
    Reply::Error { status, message: message.into() }
}

impl NetDecisions {
    /// The service for the boxes under `boxes_dir`.
    pub fn new(boxes_dir: PathBuf, hub: Arc<DecisionHub>, log: Arc<Mutex<EventLog>>, publish: Publish) -> Self {
        NetDecisions { boxes_dir, hub, log, publish }
    }

    /// Answers one question.
    pub fn decide(&self, asker: &Asker, q: &Question<'_>) -> Reply {
        if !asker.is_launcher() || asker.box_name.as_deref().is_some_and(|b| b != q.box_name) {
            return error(
                NtStatus::STATUS_ACCESS_DENIED,
                "only a box's launcher (outside every seccomp filter, as root or the daemon's user) may ask for \
                 network decisions",
            );
        }
        if let Err(e) = crate::boxes::check_name(q.box_name) {
            return error(NtStatus::STATUS_OBJECT_NAME_INVALID, e.to_string());
        }
        let Some(proto) = Proto::parse(q.protocol) else {
            return error(
                NtStatus::STATUS_INVALID_PARAMETER,
                format!("protocol {:?}: expected tcp or udp", q.protocol),
            );
        };
        let Ok(ip) = q.address.parse::<IpAddr>() else {
            return error(NtStatus::STATUS_INVALID_PARAMETER, format!("address {:?} is not an IP address", q.address));
        };
        let proc = format!("/proc/{}", q.pid);
        let in_box = std::fs::read_to_string(format!("{proc}/cgroup"))
            .ok()
            .and_then(|c| crate::identity::box_of_cgroup(&c))
            .is_some_and(|b| b == q.box_name);
        if !in_box {
            return error(
                NtStatus::STATUS_INVALID_PARAMETER,
                format!("process {} is not in box {}", q.pid, q.box_name),
            );
        }
        let exe = match std::fs::read_link(format!("{proc}/exe")) {
            Ok(p) => p.display().to_string(),
            Err(e) => return error(NtStatus::STATUS_INVALID_PARAMETER, format!("process {}: {e}", q.pid)),
        };
        let rules = match self.rules(q.box_name) {
            Ok(r) => r,
            Err(message) => return error(NtStatus::STATUS_INVALID_PARAMETER, message),
        };
        let c = Connection { pid: q.pid, exe, proto, dest: SocketAddr::new(ip.to_canonical(), q.port) };
        let outcome = rules.evaluate(&c);
        let rule = match outcome.rule {
            Some(i) => format!("net rule {}: {}", i + 1, rules.rules[i].describe()),
            None => format!("unmatched: {}", outcome.action.as_str()),
        };
        let mut event = NetEvent { c: &c, box_name: q.box_name, rule: &rule, decided_by: None };
        let (allow, remember) = match outcome.action {
            Action::Allow => (true, true),
            Action::Deny => (false, true),
            Action::Ask => {
                let key = (format!("net {} {} {}", q.box_name, proto.as_str(), c.dest), c.exe.clone());
                let timeout_ms = u64::from(rules.ask_timeout) * 1000;
                match self.hub.ask(event.json("asked"), key, timeout_ms) {
                    Asked::Remembered(v) => {
                        event.decided_by = Some("remembered");
                        (v == Verdict::Allow, true)
                    }
                    Asked::Answered(v) => {
                        event.decided_by = Some("service");
                        (v == Verdict::Allow, false)
                    }
                    Asked::NoAnswer => {
                        event.decided_by = Some("default");
                        (rules.ask_default == Action::Allow, false)
                    }
                }
            }
        };
        let verdict = if allow { "allowed" } else { "denied" };
        let line = event.json(verdict);
        if let Err(e) = self.log.lock().append_line(&line) {
            tracing::warn!("{e:#}");
        }
        (self.publish)(Some(q.box_name), verdict, &line);
        Reply::NetVerdict { allow, remember }
    }

    /// The box's `[net]` rules, read from its `box.toml` now (so an edit applies to the next
    /// question).
    fn rules(&self, name: &str) -> Result<NetRules, String> {
        let dir = self.boxes_dir.join(name);
        if !dir.is_dir() {
            return Err(format!("there is no box named {name}"));
        }
        let path = dir.join(crate::boxes::SETTINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => crate::boxes::parse_settings(&text)
                .map(|s| s.net)
                .map_err(|e| format!("{}: {}", path.display(), e.message().trim_end())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(NetRules::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// A network decision as an event line (Sysmon's event 3 fields, plus hivebox's).
struct NetEvent<'a> {
    c: &'a Connection,
    box_name: &'a str,
    rule: &'a str,
    decided_by: Option<&'static str>,
}

impl NetEvent<'_> {
    fn json(&self, verdict: &str) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let filetime = hivebox_core::UNIX_EPOCH_FILETIME + now.as_nanos() as u64 / 100;
        let mut v = serde_json::json!({
            "EventType": "NetworkConnect",
            "UtcTime": hivebox_core::protect::event::utc_time(filetime),
            "ProcessId": self.c.pid,
            "Image": self.c.exe,
            "TargetObject": format!("{} {}", self.c.proto.as_str(), self.c.dest),
            "Protocol": self.c.proto.as_str(),
            "DestinationIp": self.c.dest.ip().to_string(),
            "DestinationPort": self.c.dest.port(),
            "box": self.box_name,
            "verdict": verdict,
            "rules": [self.rule],
        });
        if let Some(d) = self.decided_by {
            v["decided_by"] = d.into();
        }
        v.to_string()
    }
}
