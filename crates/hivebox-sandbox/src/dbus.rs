//! The D-Bus system and session buses of a box (`box.toml`: `[dbus]`; `docs/sandbox.md`,
//! "System bus"). A box never gets a host bus socket: the launcher starts one `xdg-dbus-proxy
//! --filter` per bus on the host, before the box, listening in `<box>/dbus/<pid>-<n>/` and
//! connected to the host's bus; its socket is bound at [`BOX_SYSTEM_BUS`] (system) or
//! [`BOX_SESSION_BUS`] (session) in the box, and the command's `DBUS_*_BUS_ADDRESS` point
//! there. The box's rules (`talk`, `see`, `own`, `call`, `broadcast`) become the proxy's; with
//! none, the box may talk to nothing but the bus driver. The proxies stop with the box.
//!
//! Not done here: rules on a method's arguments (the proxy never reads message bodies), asking
//! the user, and showing the host service the boxed process as its peer (it sees the proxy).

use crate::Enforced;
use crate::launch::SandboxError;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::ffi::OsString;
use std::fmt;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Where the system bus (its proxy) appears in a box: the well-known path.
pub const BOX_SYSTEM_BUS: &str = "/run/dbus/system_bus_socket";
/// Where the session bus (its proxy) appears in a box.
pub const BOX_SESSION_BUS: &str = "/run/hivebox/dbus/session.sock";
/// The host's system bus when `DBUS_SYSTEM_BUS_ADDRESS` is not set.
pub const DEFAULT_SYSTEM_BUS: &str = "unix:path=/run/dbus/system_bus_socket";
/// The proxy program (Debian package `xdg-dbus-proxy`).
pub const PROXY: &str = "xdg-dbus-proxy";
/// How long a proxy may take to listen.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// The longest bus name, interface or member name (D-Bus specification).
const MAX_NAME: usize = 255;

/// One of the two buses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bus {
    /// The system bus.
    System,
    /// The user's session bus.
    Session,
}

impl Bus {
    /// `system` or `session`.
    pub fn as_str(self) -> &'static str {
        match self {
            Bus::System => "system",
            Bus::Session => "session",
        }
    }

    /// Where its proxy's socket appears in the box.
    pub fn box_path(self) -> &'static str {
        match self {
            Bus::System => BOX_SYSTEM_BUS,
            Bus::Session => BOX_SESSION_BUS,
        }
    }

    /// The variable naming its address.
    pub fn env_var(self) -> &'static str {
        match self {
            Bus::System => "DBUS_SYSTEM_BUS_ADDRESS",
            Bus::Session => "DBUS_SESSION_BUS_ADDRESS",
        }
    }
}

/// The proxy's rules for one bus (`[dbus.system]`, `[dbus.session]`), as `xdg-dbus-proxy` takes
/// them. A name may end with `.*` (the name and every name below it).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusRules {
    /// Names the box may see (listed, owner looked up) but not call: `--see`.
    #[serde(default, deserialize_with = "de_see")]
    pub see: Vec<String>,
    /// Names the box may call and get signals from: `--talk`.
    #[serde(default, deserialize_with = "de_talk")]
    pub talk: Vec<String>,
    /// Names the box may own (and talk to): `--own`.
    #[serde(default, deserialize_with = "de_own")]
    pub own: Vec<String>,
    /// `NAME=[INTERFACE.MEMBER|INTERFACE.*|*][@/PATH[/*]]`: only these calls to NAME: `--call`.
    #[serde(default, deserialize_with = "de_call")]
    pub call: Vec<String>,
    /// The same form: only these broadcast signals from NAME reach the box: `--broadcast`.
    #[serde(default, deserialize_with = "de_broadcast")]
    pub broadcast: Vec<String>,
}

/// A list of `box.toml` entries, each checked by `check` (the error names the list and entry).
fn de_list<'de, D: Deserializer<'de>>(
    d: D,
    list: &str,
    check: fn(&str) -> Result<(), String>,
) -> Result<Vec<String>, D::Error> {
    let entries: Vec<String> = serde::Deserialize::deserialize(d)?;
    for e in &entries {
        check(e).map_err(|why| de::Error::custom(format!("{list} entry {e:?}: {why}")))?;
    }
    Ok(entries)
}

fn de_see<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_list(d, "see", check_name_pattern)
}

fn de_talk<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_list(d, "talk", check_name_pattern)
}

fn de_own<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_list(d, "own", check_name_pattern)
}

fn de_call<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_list(d, "call", check_rule)
}

fn de_broadcast<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    de_list(d, "broadcast", check_rule)
}

impl BusRules {
    /// Checks every entry (as parsing does): the first bad one, named, with why.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |what: &str, entry: &str, why: String| {
            Err(SandboxError::Invalid(format!("D-Bus {what} entry {entry:?}: {why}")))
        };
        for (what, list) in [("see", &self.see), ("talk", &self.talk), ("own", &self.own)] {
            for n in list {
                if let Err(why) = check_name_pattern(n) {
                    return bad(what, n, why);
                }
            }
        }
        for (what, list) in [("call", &self.call), ("broadcast", &self.broadcast)] {
            for r in list {
                if let Err(why) = check_rule(r) {
                    return bad(what, r, why);
                }
            }
        }
        Ok(())
    }

    /// The proxy's options: `--filter` and one option per entry.
    pub fn proxy_args(&self) -> Vec<String> {
        let mut args = vec!["--filter".to_owned()];
        for (opt, list) in [
            ("see", &self.see),
            ("talk", &self.talk),
            ("own", &self.own),
            ("call", &self.call),
            ("broadcast", &self.broadcast),
        ] {
            args.extend(list.iter().map(|e| format!("--{opt}={e}")));
        }
        args
    }

    /// What the rules let the box do, in words.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, list) in [
            ("talk to", &self.talk),
            ("own (and talk to)", &self.own),
            ("see (not call)", &self.see),
            ("call only", &self.call),
            ("receive broadcasts only", &self.broadcast),
        ] {
            if !list.is_empty() {
                parts.push(format!("{what} {}", list.join(", ")));
            }
        }
        if parts.is_empty() {
            "no rules: the box may talk to nothing but the bus driver".into()
        } else {
            format!("{}; nothing else but the bus driver", parts.join("; "))
        }
    }
}

/// What a box gets of one bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusAccess {
    /// No bus at all: no socket in the box, its address variable unset (`"none"`).
    None,
    /// The bus through the filtering proxy with these rules (the default: no rules).
    Filtered(BusRules),
}

impl Default for BusAccess {
    fn default() -> Self {
        BusAccess::Filtered(BusRules::default())
    }
}

impl<'de> serde::Deserialize<'de> for BusAccess {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BusAccess;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\", \"filtered\" or a table of rules (see, talk, own, call, broadcast)")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<BusAccess, E> {
                match s {
                    "none" => Ok(BusAccess::None),
                    "filtered" => Ok(BusAccess::default()),
                    other => Err(E::custom(format!(
                        "{other:?}: a bus is \"none\", \"filtered\" (no rules) or a table of rules (see, talk, own, \
                         call, broadcast)"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BusAccess, A::Error> {
                let rules: BusRules = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(BusAccess::Filtered(rules))
            }
        }
        d.deserialize_any(V)
    }
}

/// What a box gets of the host's buses (`box.toml`: `dbus = "none"`, or `[dbus]` with `system`
/// and `session`, each `"none"`, `"filtered"` or a table of rules). Default: both filtered,
/// with no rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbusSettings {
    /// The system bus.
    pub system: BusAccess,
    /// The session bus.
    pub session: BusAccess,
}

impl DbusSettings {
    /// No bus at all.
    pub fn none() -> Self {
        DbusSettings { system: BusAccess::None, session: BusAccess::None }
    }

    /// The setting for `bus`.
    pub fn access(&self, bus: Bus) -> &BusAccess {
        match bus {
            Bus::System => &self.system,
            Bus::Session => &self.session,
        }
    }
}

impl<'de> serde::Deserialize<'de> for DbusSettings {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Table {
            #[serde(default)]
            system: BusAccess,
            #[serde(default)]
            session: BusAccess,
        }
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DbusSettings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"none\" or a table with system and session")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DbusSettings, E> {
                match s {
                    "none" => Ok(DbusSettings::none()),
                    other => Err(E::custom(format!(
                        "dbus = {other:?}: dbus is \"none\" (no bus at all) or a table ([dbus.system], [dbus.session])"
                    ))),
                }
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DbusSettings, A::Error> {
                let t: Table = serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(DbusSettings { system: t.system, session: t.session })
            }
        }
        d.deserialize_any(V)
    }
}

/// Where the host's buses are, when the caller knows better than the launcher's environment
/// (`None`: `DBUS_SYSTEM_BUS_ADDRESS` or [`DEFAULT_SYSTEM_BUS`]; `DBUS_SESSION_BUS_ADDRESS` or
/// `$XDG_RUNTIME_DIR/bus` if that exists).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostBuses {
    /// The system bus's address.
    pub system: Option<String>,
    /// The session bus's address.
    pub session: Option<String>,
}

impl HostBuses {
    /// The address of `bus` on the host, or why there is none.
    pub fn address(&self, bus: Bus) -> Result<String, String> {
        let given = match bus {
            Bus::System => &self.system,
            Bus::Session => &self.session,
        };
        if let Some(a) = given {
            return Ok(a.clone());
        }
        if let Some(a) = std::env::var_os(bus.env_var()).filter(|a| !a.is_empty()) {
            return a.into_string().map_err(|a| format!("{} is not UTF-8: {a:?}", bus.env_var()));
        }
        match bus {
            Bus::System => Ok(DEFAULT_SYSTEM_BUS.to_owned()),
            Bus::Session => match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
                Some(dir) if Path::new(&dir).join("bus").exists() => {
                    Ok(format!("unix:path={}", escape(&Path::new(&dir).join("bus").into_os_string())))
                }
                Some(dir) => Err(format!(
                    "DBUS_SESSION_BUS_ADDRESS is not set and {}/bus does not exist",
                    Path::new(&dir).display()
                )),
                None => Err("neither DBUS_SESSION_BUS_ADDRESS nor XDG_RUNTIME_DIR is set".into()),
            },
        }
    }
}

/// Why `name` is not a well-known bus name the proxy takes (an optional `.*` suffix allowed).
pub fn check_name_pattern(name: &str) -> Result<(), String> {
    let base = name.strip_suffix(".*").unwrap_or(name);
    if base.starts_with(':') {
        return Err("unique names (':1.42') change with every connection; name a well-known name".into());
    }
    check_bus_name(base)
}

/// Why `name` is not a well-known bus name: 1 to 255 characters, two or more elements
/// separated by `.`, each of `A-Z a-z 0-9 _ -` and not starting with a digit.
pub fn check_bus_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("must be 1 to {MAX_NAME} characters long"));
    }
    check_elements(name, |c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Why `name` is not an interface name (as a bus name, without `-`).
fn check_interface(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_NAME {
        return Err(format!("interface {name:?} must be 1 to {MAX_NAME} characters long"));
    }
    check_elements(name, |c| c.is_ascii_alphanumeric() || c == '_').map_err(|why| format!("interface {name:?} {why}"))
}

fn check_elements(name: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    let elements: Vec<&str> = name.split('.').collect();
    if elements.len() < 2 {
        return Err("needs two or more elements separated by '.' (org.example.Name)".into());
    }
    for e in elements {
        if e.is_empty() {
            return Err("has an empty element".into());
        }
        if e.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(format!("has an element starting with a digit ({e:?})"));
        }
        if let Some(c) = e.chars().find(|c| !allowed(*c)) {
            return Err(format!("contains {c:?}"));
        }
    }
    Ok(())
}

/// Why `path` is not an object path: `/`, or `/`-separated non-empty elements of `A-Z a-z 0-9 _`.
fn check_object_path(path: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("object path {path:?} {why}"));
    let Some(rest) = path.strip_prefix('/') else { return bad("must start with '/'") };
    if rest.is_empty() {
        return Ok(());
    }
    for e in rest.split('/') {
        if e.is_empty() {
            return bad("has an empty element (or ends with '/')");
        }
        if let Some(c) = e.chars().find(|c| !(c.is_ascii_alphanumeric() || *c == '_')) {
            return bad(&format!("contains {c:?}"));
        }
    }
    Ok(())
}

/// Why `rule` is not a `call`/`broadcast` entry: `NAME=RULE`, NAME a bus name (optionally
/// `.*`), RULE `[*|INTERFACE.*|INTERFACE.MEMBER][@/PATH[/*]]`, not empty.
pub fn check_rule(rule: &str) -> Result<(), String> {
    let Some((name, rest)) = rule.split_once('=') else {
        return Err("must be NAME=RULE (org.example.Service=org.example.Iface.Method@/org/example)".into());
    };
    check_name_pattern(name).map_err(|why| format!("bus name {name:?} {why}"))?;
    if rest.is_empty() {
        return Err("the rule after '=' is empty (use talk to allow every call)".into());
    }
    let (method, path) = match rest.split_once('@') {
        Some((m, p)) => (m, Some(p)),
        None => (rest, None),
    };
    if !method.is_empty() && method != "*" {
        let Some((iface, member)) = method.rsplit_once('.') else {
            return Err(format!("{method:?} is not INTERFACE.MEMBER, INTERFACE.* or *"));
        };
        check_interface(iface)?;
        let member_ok = member == "*"
            || (!member.is_empty()
                && member.len() <= MAX_NAME
                && !member.starts_with(|c: char| c.is_ascii_digit())
                && member.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        if !member_ok {
            return Err(format!("member {member:?} is not a method or signal name (letters, digits, '_') or *"));
        }
    }
    if let Some(path) = path {
        if path.is_empty() {
            return Err("nothing after '@' (an object path such as /org/example, or /org/example/*)".into());
        }
        if path != "/*" {
            check_object_path(path.strip_suffix("/*").unwrap_or(path))?;
        }
    }
    Ok(())
}

/// `value` escaped for a D-Bus address (`%XX` for bytes outside `-0-9A-Za-z_/.\*`).
fn escape(value: &std::ffi::OsStr) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'/' | b'.' | b'\\' | b'*') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02x}"));
        }
    }
    out
}

/// `%XX` sequences of a D-Bus address value decoded (`None`: a malformed one).
fn unescape(value: &str) -> Option<OsString> {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(OsString::from_vec(out))
}

/// A unix socket a D-Bus address names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `unix:path=`.
    Path(PathBuf),
    /// `unix:abstract=`.
    Abstract(OsString),
}

/// The unix sockets of `address` (`;`-separated transports; others are skipped).
pub fn endpoints(address: &str) -> Vec<Endpoint> {
    let mut out = Vec::new();
    for entry in address.split(';') {
        let Some(params) = entry.strip_prefix("unix:") else { continue };
        for kv in params.split(',') {
            match kv.split_once('=') {
                Some(("path", v)) => out.extend(unescape(v).map(|p| Endpoint::Path(p.into()))),
                Some(("abstract", v)) => out.extend(unescape(v).map(Endpoint::Abstract)),
                _ => {}
            }
        }
    }
    out
}

/// Whether the bus at `address` answers a connection: `Err` says why not. An address with no
/// unix socket in it (tcp, say) is left to the proxy.
fn probe(address: &str) -> Result<(), String> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    let list = endpoints(address);
    if list.is_empty() {
        return Ok(());
    }
    let mut why = Vec::new();
    for e in list {
        let r = match &e {
            Endpoint::Path(p) => UnixStream::connect(p).map(drop),
            Endpoint::Abstract(name) => {
                use std::os::unix::ffi::OsStrExt;
                SocketAddr::from_abstract_name(name.as_bytes()).and_then(|a| UnixStream::connect_addr(&a)).map(drop)
            }
        };
        match r {
            Ok(()) => return Ok(()),
            Err(err) => why.push(err.to_string()),
        }
    }
    Err(format!("connect: {}", why.join("; ")))
}

/// One bus to proxy, decided before the box starts.
#[derive(Debug)]
struct BusPlan {
    bus: Bus,
    address: String,
    args: Vec<String>,
    /// The socket's name in the run directory.
    socket: &'static str,
}

/// The box's buses, decided: which proxies to start and where their sockets will be.
#[derive(Debug)]
pub(crate) struct Plan {
    /// `<box>/dbus/<pid>-<n>`: the proxies' sockets and logs, removed when they stop.
    dir: PathBuf,
    buses: Vec<BusPlan>,
}

impl Plan {
    /// The host path of `bus`'s proxy socket, if the box gets that bus.
    pub(crate) fn socket(&self, bus: Bus) -> Option<PathBuf> {
        self.buses.iter().find(|b| b.bus == bus).map(|b| self.dir.join(b.socket))
    }

    /// The buses the box gets.
    pub(crate) fn buses(&self) -> impl Iterator<Item = Bus> + '_ {
        self.buses.iter().map(|b| b.bus)
    }
}

/// A unique run directory name per launch in this process.
static LAUNCHES: AtomicU32 = AtomicU32::new(0);

/// Decides the box's buses and records them in `enforced`. Refuses settings that would give
/// the box a host bus socket directly (an `open`/`read-only` path or a host socket holding it).
pub(crate) fn prepare(
    settings: &DbusSettings,
    hosts: &HostBuses,
    holes: &[(&str, &Path)],
    box_dir: &Path,
    enforced: &mut Enforced,
) -> Result<Plan, SandboxError> {
    let n = LAUNCHES.fetch_add(1, Ordering::Relaxed);
    let dir = box_dir.join("dbus").join(format!("{}-{n}", std::process::id()));
    let mut buses = Vec::new();
    for bus in [Bus::System, Bus::Session] {
        let address = hosts.address(bus);
        if let Ok(a) = &address {
            refuse_holes(bus, a, holes)?;
        }
        let what = format!("{} bus", bus.as_str());
        let unset = format!("no socket in the box, {} unset", bus.env_var());
        let rules = match settings.access(bus) {
            BusAccess::None => {
                enforced.mechanisms.push((what, format!("none: dbus.{} = \"none\" ({unset})", bus.as_str())));
                continue;
            }
            BusAccess::Filtered(rules) => rules,
        };
        rules.validate()?;
        // A bus the host does not have is none in the box, said plainly.
        let address = match address {
            Ok(a) => a,
            Err(why) => {
                enforced.mechanisms.push((what, format!("none on the host ({why}): {unset}")));
                continue;
            }
        };
        if let Err(why) = probe(&address) {
            enforced.mechanisms.push((what, format!("none on the host at {address} ({why}): {unset}")));
            continue;
        }
        enforced.mechanisms.push((
            what,
            format!(
                "through xdg-dbus-proxy --filter on the host (connected to {address}), bound at {path} ({var}); \
                 {rules}; the host bus sees the proxy, not the boxed process, as its peer",
                path = bus.box_path(),
                var = bus.env_var(),
                rules = rules.describe(),
            ),
        ));
        let socket = match bus {
            Bus::System => "system.sock",
            Bus::Session => "session.sock",
        };
        buses.push(BusPlan { bus, address, args: rules.proxy_args(), socket });
    }
    Ok(Plan { dir, buses })
}

/// Refuses `holes` (kind, host path) that are or contain a unix socket of `address`.
fn refuse_holes(bus: Bus, address: &str, holes: &[(&str, &Path)]) -> Result<(), SandboxError> {
    for e in endpoints(address) {
        let Endpoint::Path(socket) = e else { continue };
        let Ok(socket) = std::fs::canonicalize(&socket) else { continue };
        for (kind, hole) in holes {
            let hole_real = std::fs::canonicalize(hole).unwrap_or_else(|_| hole.to_path_buf());
            if socket.starts_with(&hole_real) {
                return Err(SandboxError::Invalid(format!(
                    "{kind} {} would give the box the host's {} bus itself ({}): a box reaches it only through \
                     the proxy and its rules ([dbus.{}] in box.toml)",
                    hole.display(),
                    bus.as_str(),
                    socket.display(),
                    bus.as_str(),
                )));
            }
        }
    }
    Ok(())
}

/// The running proxies of one box; stopped (and their directory removed) when dropped.
#[derive(Debug)]
pub(crate) struct Proxies {
    dir: PathBuf,
    running: Vec<Proxy>,
}

#[derive(Debug)]
struct Proxy {
    child: Child,
    /// The read end of the proxy's `--fd` pipe: it stops when every copy is closed.
    sync: OwnedFd,
}

/// Starts the planned proxies and waits until each listens. `None` when there is nothing to
/// start.
pub(crate) fn start(plan: &Plan) -> Result<Option<Proxies>, SandboxError> {
    if plan.buses.is_empty() {
        return Ok(None);
    }
    let prep = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| SandboxError::Prepare { what, path, source }
    };
    std::fs::create_dir_all(&plan.dir).map_err(prep("create", &plan.dir))?;
    // From here on, dropping `proxies` stops what was started and removes the directory.
    let mut proxies = Proxies { dir: plan.dir.clone(), running: Vec::new() };
    let mut logs = Vec::new();
    for b in &plan.buses {
        let (read, write) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SandboxError::Os { what: "pipe", source: e.into() })?;
        let log = plan.dir.join(format!("{}.log", b.bus.as_str()));
        let log_file = std::fs::File::create(&log).map_err(prep("create", &log))?;
        let mut cmd = Command::new(PROXY);
        // The socket path is relative to the run directory: a unix socket path is limited to
        // 107 bytes, and box directories can be longer.
        cmd.arg(format!("--fd={}", std::os::fd::AsRawFd::as_raw_fd(&write)))
            .arg(&b.address)
            .arg(b.socket)
            .args(&b.args)
            .current_dir(&plan.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        // Its own process group: a terminal's Ctrl-C for the box's command must not stop it.
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        crate::sys::pre_exec::keep_fd(&mut cmd, std::os::fd::AsFd::as_fd(&write));
        let child = cmd.spawn().map_err(|e| {
            let hint = if e.kind() == io::ErrorKind::NotFound { " (install the xdg-dbus-proxy package)" } else { "" };
            SandboxError::Invalid(format!("cannot run {PROXY}{hint}: {e}"))
        })?;
        drop(write);
        logs.push(log);
        proxies.running.push(Proxy { child, sync: read });
    }
    for (p, (b, log)) in proxies.running.iter_mut().zip(plan.buses.iter().zip(&logs)) {
        if let Err(why) = wait_ready(p) {
            let said = std::fs::read_to_string(log).unwrap_or_default();
            let said = said.lines().filter(|l| !l.trim().is_empty()).collect::<Vec<_>>().join("; ");
            let said = if said.is_empty() { String::new() } else { format!(": {said}") };
            return Err(SandboxError::Invalid(format!(
                "the {} bus proxy ({PROXY}) did not start: {why}{said}",
                b.bus.as_str()
            )));
        }
        // As the host bus's own socket: any uid in the box may connect (the rules still apply).
        let socket = plan.dir.join(b.socket);
        std::fs::set_permissions(&socket, std::os::unix::fs::PermissionsExt::from_mode(0o666))
            .map_err(prep("set the mode of", &socket))?;
    }
    Ok(Some(proxies))
}

/// Waits for the proxy's byte on its `--fd` pipe, or its exit, or [`READY_WITHIN`].
fn wait_ready(p: &mut Proxy) -> Result<(), String> {
    use rustix::event::{PollFd, PollFlags, poll};
    let pid = rustix::process::Pid::from_child(&p.child);
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open: {e}"))?;
    let deadline = Instant::now() + READY_WITHIN;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!("it did not listen within {} s", READY_WITHIN.as_secs()));
        }
        let timeout = rustix::event::Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos() as i64 };
        let mut fds = [PollFd::new(&p.sync, PollFlags::IN), PollFd::new(&pidfd, PollFlags::IN)];
        match poll(&mut fds, Some(&timeout)) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        if !fds[0].revents().is_empty() {
            let mut byte = [0u8; 1];
            if matches!(rustix::io::read(&p.sync, &mut byte), Ok(1)) {
                return Ok(());
            }
        }
        if !fds[1].revents().is_empty() || !fds[0].revents().is_empty() {
            let status = p.child.wait().map_err(|e| e.to_string())?;
            return Err(format!("it exited ({status})"));
        }
    }
}

impl Drop for Proxies {
    fn drop(&mut self) {
        for p in &mut self.running {
            let _ = p.child.kill();
            let _ = p.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        // `<box>/dbus` too, unless another run of the box has its proxies there.
        if let Some(parent) = self.dir.parent() {
            let _ = std::fs::remove_dir(parent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bus_names_are_checked() {
        for good in ["org.example.Service", "org.example.*", "a.b", "org.ex-ample._x9", "org.freedesktop.DBus"] {
            assert_eq!(check_name_pattern(good), Ok(()), "{good:?}");
        }
        for bad in ["", "org", ".org.x", "org..x", "org.9x", "org.ex ample", ":1.42", "org.x.", "*", "org.x*"] {
            assert!(check_name_pattern(bad).is_err(), "{bad:?}");
        }
        assert!(check_name_pattern(&format!("org.{}", "x".repeat(252))).is_err());
    }

    #[test]
    fn call_rules_are_checked() {
        for good in [
            "org.example.Service=org.example.Iface.Method@/org/example",
            "org.example.Service=org.example.Iface.*",
            "org.example.Service=*",
            "org.example.Service=*@/",
            "org.example.*=@/org/example/*",
            "org.example.Service=@/*",
            "org.example.Service=org.example.Iface.Method",
        ] {
            assert_eq!(check_rule(good), Ok(()), "{good:?}");
        }
        for bad in [
            "org.example.Service",
            "org.example.Service=",
            "bad=org.example.Iface.Method",
            "org.example.Service=Method",
            "org.example.Service=org.Method",
            "org.example.Service=org.example.Iface.9x",
            "org.example.Service=org.example.Iface.Me-thod",
            "org.example.Service=org.example.Iface.Method@",
            "org.example.Service=org.example.Iface.Method@org/example",
            "org.example.Service=org.example.Iface.Method@/org/",
            "org.example.Service=org.example.Iface.Method@/org//x",
            "org.example.Service=*x",
        ] {
            assert!(check_rule(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rules_become_proxy_options() {
        let rules = BusRules {
            talk: vec!["org.a.B".into()],
            call: vec!["org.c.D=org.c.D.Get@/org/c".into()],
            ..BusRules::default()
        };
        assert_eq!(rules.proxy_args(), ["--filter", "--talk=org.a.B", "--call=org.c.D=org.c.D.Get@/org/c"]);
        assert_eq!(BusRules::default().proxy_args(), ["--filter"]);
        assert!(BusRules::default().describe().contains("nothing but the bus driver"));
        assert!(BusRules { see: vec!["x".into()], ..BusRules::default() }.validate().is_err());
    }

    #[test]
    fn addresses_are_parsed() {
        assert_eq!(
            endpoints("unix:path=/run/a%20b,guid=1;tcp:host=x;unix:abstract=/tmp/dbus-X"),
            [Endpoint::Path("/run/a b".into()), Endpoint::Abstract("/tmp/dbus-X".into())]
        );
        assert_eq!(endpoints("unix:path=%zz"), []);
        assert_eq!(escape(std::ffi::OsStr::new("/run/user/1000/a b,c")), "/run/user/1000/a%20b%2cc");
        let hosts = HostBuses { system: Some("unix:path=/x".into()), session: None };
        assert_eq!(hosts.address(Bus::System).unwrap(), "unix:path=/x");
    }

    #[test]
    fn an_absent_bus_is_reported_as_such() {
        assert!(probe("unix:path=/nonexistent/hivebox-bus").unwrap_err().contains("No such file"));
        assert_eq!(probe("tcp:host=localhost,port=1"), Ok(()));
    }
}
