//! Starting a program in a box: new mount, PID, IPC, UTS and network namespaces, an overlay
//! root over the host's (the shadow store, `crate::fs`), fresh `/proc`, a minimal `/dev`, read-only
//! `/sys`, a private `/run` holding the daemon's socket, the hivebox home hidden, the box's
//! `open` / `read-only` / `hidden` paths, then `pivot_root` and the command as a child of the
//! namespace's PID 1 (`docs/sandbox.md`).
//!
//! Process tree: the caller forks a *keeper*, born in the box's cgroup when the spec names
//! one, which unshares the namespaces and forks *init* (PID 1 of the new PID namespace).
//! Init builds the mount tree, forks the command, drops capabilities, confines it and execs
//! it; then it reaps every orphan and forwards `SIGTERM`/`SIGHUP` to the command. Init exits
//! with the command's exit code (`128+N` when signal N killed it), the keeper with init's,
//! and the kernel kills what is left in the PID namespace when init exits.
//!
//! Setup failures are reported through a close-on-exec pipe: nothing runs when one step fails.
//! The keeper also unshares a network namespace and brings its `lo` up; with `network =
//! "full"` the launcher connects it through `pasta` before init starts (`crate::net`). The
//! D-Bus proxies (`crate::dbus`) are started and listening before the keeper is forked.
//! With `deny_host_access`, the launcher attaches the protection from the host before it
//! forks the keeper (`crate::hostaccess`).

use crate::Enforced;
use crate::confine::{self, ConfineOptions};
use crate::sys::process::{self, Forked};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};
use rustix::thread::UnshareFlags;
use std::ffi::{CString, OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Where the daemon's socket appears inside a box.
pub const BOX_SOCKET: &str = "/run/hivebox/hivebox.sock";
/// Host mounts that get their own overlay when they are separate filesystems.
pub const SHADOWED_MOUNTS: [&str; 5] = ["/home", "/tmp", "/var", "/srv", "/opt"];

/// Why a box could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// A setting or argument is unusable.
    #[error("{0}")]
    Invalid(String),
    /// Preparing the box on the host failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Prepare {
        /// What was being done.
        what: &'static str,
        /// The path concerned.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A step of building the box failed in the child; nothing was run.
    #[error("cannot set up the box: {step}: {reason}")]
    Setup {
        /// The step (names the mount target).
        step: String,
        /// The kernel's answer.
        reason: String,
    },
    /// The command could not be executed (the box was set up).
    #[error("cannot run {command}: {source}")]
    Exec {
        /// The command.
        command: String,
        /// Why (`NotFound` when no such file exists in the box).
        source: io::Error,
        /// The keeper's exit status (127 or 126).
        status: std::process::ExitStatus,
    },
    /// The process confinement cannot be prepared (the kernel lacks what it needs).
    #[error("cannot confine the box: {0}")]
    Confine(#[from] confine::ConfineError),
    /// `deny-host-access` is set and the protection cannot be attached: nothing was run.
    /// (Its message is in this one's, so it is not also given as the source.)
    #[error("cannot protect the box from the host: {0}")]
    HostAccess(crate::hostaccess::HostAccessError),
    /// A process call of the launcher failed.
    #[error("{what}: {source}")]
    Os {
        /// The call.
        what: &'static str,
        /// The cause.
        source: io::Error,
    },
}

impl From<crate::hostaccess::HostAccessError> for SandboxError {
    fn from(e: crate::hostaccess::HostAccessError) -> Self {
        SandboxError::HostAccess(e)
    }
}

/// Per-box path settings (`box.toml`: `open`, `read-only`, `hidden`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PathSettings {
    /// Bind-mounted read-write: writes reach the host.
    pub open: Vec<PathBuf>,
    /// Bind-mounted read-only.
    pub read_only: Vec<PathBuf>,
    /// Covered by an empty read-only tmpfs.
    pub hidden: Vec<PathBuf>,
}

impl PathSettings {
    /// Checks every path: absolute, no `..`, no `.`, not `/` itself.
    pub fn validate(&self) -> Result<(), SandboxError> {
        for (kind, list) in [("open", &self.open), ("read-only", &self.read_only), ("hidden", &self.hidden)] {
            for p in list {
                check_box_path(p)
                    .map_err(|why| SandboxError::Invalid(format!("{kind} path {}: {why}", p.display())))?;
            }
        }
        Ok(())
    }
}

/// Why `p` cannot be a box setting path, if it cannot.
pub fn check_box_path(p: &Path) -> Result<(), &'static str> {
    if !p.is_absolute() {
        return Err("must be absolute");
    }
    if p.components().any(|c| matches!(c, Component::ParentDir | Component::CurDir)) {
        return Err("must not contain '..' or '.'");
    }
    if p.parent().is_none() {
        return Err("cannot be / itself");
    }
    Ok(())
}

/// What to run, in which box.
#[derive(Debug, Clone)]
pub struct BoxSpec {
    /// The box's name (`HIVEBOX_BOX`, the UTS hostname `hivebox-<name>`).
    pub name: String,
    /// The box's directory (`<home>/boxes/<name>`): the shadow store is under `fs/`.
    pub box_dir: PathBuf,
    /// Directories the box must not see (the hivebox home at least).
    pub hide: Vec<PathBuf>,
    /// The daemon's socket, bound at [`BOX_SOCKET`] inside the box.
    pub socket: Option<PathBuf>,
    /// The box's path settings.
    pub paths: PathSettings,
    /// Host unix sockets bind-mounted into the box at the same path (`box.toml`:
    /// `host-sockets`): absolute, no `..`, existing sockets at launch.
    pub host_sockets: Vec<PathBuf>,
    /// The IPC space the box joins (`box.toml`: `ipc-space`); `None`: private IPC.
    pub ipc_space: Option<crate::ipc::IpcSpace>,
    /// The command and its arguments.
    pub command: Vec<OsString>,
    /// Variables set (or replaced) in the command's environment, besides `HIVEBOX_BOX` and
    /// `HIVEBOX_SOCKET`.
    pub env: Vec<(OsString, OsString)>,
    /// The process confinement applied right before exec (`crate::confine`: capabilities,
    /// `no_new_privs`, Landlock scopes, seccomp deny list). `Some` by default; `None` leaves
    /// the command with the caller's capabilities (only for tests of the mount tree).
    pub confine: Option<ConfineOptions>,
    /// Where the command's stdout and stderr go (the caller's when `None`).
    pub output: Option<std::sync::Arc<OwnedFd>>,
    /// What the box's own network namespace reaches (`box.toml`: `network`).
    pub network: crate::net::NetworkMode,
    /// `network = "decide"`: the box's rules (`box.toml`: `[net]`), used when no `net_decider`
    /// is given.
    pub net_rules: crate::netrules::NetRules,
    /// `network = "decide"`: who decides the box's connections (the daemon, for `hivebox run`).
    pub net_decider: Option<NetDeciderHandle>,
    /// The box's cgroup v2 directory: the box's processes are born in it (the launcher moves
    /// the keeper there unless it is there already). `network = "decide"` needs it (its kernel
    /// backstop hangs on it).
    pub cgroup: Option<PathBuf>,
    /// What the box gets of the host's D-Bus buses (`box.toml`: `[dbus]`): by default each
    /// through a filtering proxy with no rules.
    pub dbus: crate::dbus::DbusSettings,
    /// Where the host's buses are; by default found from the launcher's environment.
    pub host_buses: crate::dbus::HostBuses,
    /// Refuse every process outside [`cgroup`](Self::cgroup) but this one the right to trace,
    /// read or write the memory of, take descriptors from or signal the box's processes
    /// (`box.toml`: `deny-host-access`; `crate::hostaccess`). Needs `cgroup`.
    pub deny_host_access: bool,
}

/// A shared [`crate::netdecide::NetDecider`].
#[derive(Clone)]
pub struct NetDeciderHandle(pub std::sync::Arc<dyn crate::netdecide::NetDecider>);

impl std::fmt::Debug for NetDeciderHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NetDecider")
    }
}

impl BoxSpec {
    /// A spec with the defaults: the command, nothing hidden but what the caller adds.
    pub fn new(name: impl Into<String>, box_dir: impl Into<PathBuf>, command: Vec<OsString>) -> Self {
        BoxSpec {
            name: name.into(),
            box_dir: box_dir.into(),
            hide: Vec::new(),
            socket: None,
            paths: PathSettings::default(),
            host_sockets: Vec::new(),
            ipc_space: None,
            command,
            env: Vec::new(),
            confine: Some(ConfineOptions::default()),
            output: None,
            network: crate::net::NetworkMode::default(),
            net_rules: crate::netrules::NetRules::default(),
            net_decider: None,
            cgroup: None,
            dbus: crate::dbus::DbusSettings::default(),
            host_buses: crate::dbus::HostBuses::default(),
            deny_host_access: false,
        }
    }
}

/// One overlay of the shadow store: a host mount point and its upper/work dirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The host mount point (`/`, `/home`, ...).
    pub mount_point: PathBuf,
    /// The key naming its directory under `<box>/fs/` (`root`, `home`, ...).
    pub key: String,
}

/// The overlays a box gets on this host: `/` and each of [`SHADOWED_MOUNTS`] that is a
/// separate mount in `/proc/self/mountinfo`.
pub fn layers() -> Vec<Layer> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let points: Vec<&str> = info.lines().filter_map(|l| l.split(' ').nth(4)).collect();
    let mut out = vec![Layer { mount_point: "/".into(), key: "root".into() }];
    for m in SHADOWED_MOUNTS {
        if points.contains(&m) {
            out.push(Layer { mount_point: m.into(), key: m.trim_start_matches('/').into() });
        }
    }
    out
}

/// `<box>/fs/<key>/upper` and `.../work`.
pub fn layer_dirs(box_dir: &Path, key: &str) -> (PathBuf, PathBuf) {
    let d = box_dir.join("fs").join(key);
    (d.join("upper"), d.join("work"))
}

/// A started box: the keeper process (host pid), waited for with [`BoxedChild::wait`].
#[derive(Debug)]
pub struct BoxedChild {
    pid: i32,
    enforced: Enforced,
    /// The box's `pasta` (`network = "full"` or `"decide"`), stopped once the keeper is gone.
    pasta: Option<crate::net::Pasta>,
    /// `network = "decide"`: the connection supervisor, then the kernel backstop.
    decide: Option<(crate::netdecide::Supervisor, crate::backstop::Backstop)>,
    /// The box's D-Bus proxies, stopped once the keeper is gone.
    dbus: Option<crate::dbus::Proxies>,
    /// The protection from the host (`deny-host-access`), held until the keeper is gone (the
    /// keeper and the box's init hold copies of it too).
    host_access: Option<crate::hostaccess::HostAccessGuard>,
}

impl BoxedChild {
    /// The keeper's host pid (signals sent to it are forwarded to the command).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// What the box enforces (also written to `<box>/enforced.json`).
    pub fn enforced(&self) -> &Enforced {
        &self.enforced
    }

    /// Waits for the command; its exit code (`128+N` if signal N killed it) is the status's.
    pub fn wait(self) -> Result<std::process::ExitStatus, SandboxError> {
        let status = wait_pid(self.pid);
        drop(self.decide);
        drop(self.pasta);
        drop(self.dbus);
        drop(self.host_access);
        status
    }
}

fn wait_pid(pid: i32) -> Result<std::process::ExitStatus, SandboxError> {
    use std::os::unix::process::ExitStatusExt;
    let pid = rustix::process::Pid::from_raw(pid).ok_or_else(|| SandboxError::Invalid("pid 0".into()))?;
    loop {
        match rustix::process::waitpid(Some(pid), rustix::process::WaitOptions::empty()) {
            Ok(Some((_, status))) => return Ok(std::process::ExitStatus::from_raw(status.as_raw())),
            Ok(None) => continue,
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(SandboxError::Os { what: "waitpid", source: e.into() }),
        }
    }
}

/// Runs `spec` in its box and waits for it.
pub fn run_boxed(spec: &BoxSpec) -> Result<std::process::ExitStatus, SandboxError> {
    spawn_boxed(spec)?.wait()
}

/// Everything the children need, prepared before forking (they allocate as little as they
/// can and touch no lock of the parent).
struct Plan {
    root: CString,
    overlays: Vec<(CString, CString)>,
    hide: Vec<CString>,
    socket: Option<CString>,
    open: Vec<(CString, CString)>,
    read_only: Vec<(CString, CString)>,
    hidden: Vec<CString>,
    host_sockets: Vec<crate::ipc::SocketPlan>,
    ipc: Option<crate::ipc::SpacePlan>,
    hostname: String,
    cwd: CString,
    candidates: Vec<CString>,
    argv: Vec<CString>,
    envp: Vec<CString>,
    confine: Option<confine::Prepared>,
    output: Option<std::sync::Arc<OwnedFd>>,
    /// `pasta` connects the namespace: the keeper waits for the launcher after unsharing.
    full_network: bool,
    /// `network = "decide"`: the command installs this filter and sends its listener.
    net_filter: Option<NetFilterPlan>,
    /// The D-Bus proxies' sockets: the host path, the directories to create in the box's
    /// `/run` (outermost first) and the path in the box, all under the new root.
    buses: Vec<(CString, Vec<CString>, CString)>,
}

/// The decide-mode filter and the socket its listener travels on.
struct NetFilterPlan {
    program: Vec<seccompiler::sock_filter>,
    /// The descriptor number the command moves its end of `socket` to (the filter lets
    /// `sendmsg` through on it only; close-on-exec).
    handoff: i32,
    /// The command's end.
    child: OwnedFd,
    /// The launcher's end.
    parent: OwnedFd,
}

fn cstr(p: impl AsRef<OsStr>) -> Result<CString, SandboxError> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| SandboxError::Invalid(format!("{:?} contains a NUL byte", p.as_ref())))
}

/// `root` + absolute `p`.
fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

fn prepare(spec: &BoxSpec) -> Result<(Plan, Enforced, crate::dbus::Plan), SandboxError> {
    if spec.command.is_empty() {
        return Err(SandboxError::Invalid("no command to run".into()));
    }
    spec.network.check()?;
    if spec.network == crate::net::NetworkMode::Decide && spec.cgroup.is_none() {
        return Err(SandboxError::Invalid(
            "network = \"decide\" needs the box's cgroup (its kernel backstop is attached there)".into(),
        ));
    }
    spec.paths.validate()?;
    if spec.deny_host_access && spec.cgroup.is_none() {
        return Err(SandboxError::Invalid("deny-host-access needs the box's cgroup".into()));
    }
    fn prep<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> SandboxError + 'a {
        move |source| SandboxError::Prepare { what, path: path.to_owned(), source }
    }
    let box_dir = std::path::absolute(&spec.box_dir).map_err(prep("find", &spec.box_dir))?;
    let root = box_dir.join("fs").join("mnt");
    std::fs::create_dir_all(&root).map_err(prep("create", &root))?;
    let mut enforced = Enforced::default();
    let mut note = |m: &str, d: String| enforced.mechanisms.push((m.to_owned(), d));
    note("namespaces", "new mount, PID, IPC, UTS and network namespaces".into());
    note("network", spec.network.describe());
    let mut overlays = Vec::new();
    let mut shadowed = Vec::new();
    for layer in layers() {
        let (upper, work) = layer_dirs(&box_dir, &layer.key);
        for d in [&upper, &work] {
            std::fs::create_dir_all(d).map_err(prep("create", d))?;
        }
        for p in [&layer.mount_point, &upper, &work] {
            let s = p.as_os_str().as_bytes();
            if s.iter().any(|b| matches!(b, b',' | b':' | b'\\')) {
                return Err(SandboxError::Invalid(format!(
                    "{} contains ',', ':' or '\\', which overlayfs options cannot carry",
                    p.display()
                )));
            }
        }
        let options =
            format!("lowerdir={},upperdir={},workdir={}", layer.mount_point.display(), upper.display(), work.display());
        overlays.push((cstr(under(&root, &layer.mount_point))?, cstr(options)?));
        shadowed.push(format!("{} (upper {})", layer.mount_point.display(), upper.display()));
    }
    note("file shadow store", format!("overlayfs over {}", shadowed.join(", ")));
    note(
        "mount tree",
        "private propagation; fresh /proc of the box's PID namespace; /dev a tmpfs with null, zero, full, random, \
         urandom, tty and the host's pts; /dev/shm and /dev/mqueue private; /sys read-only; /run an empty tmpfs; \
         pivot_root into the overlay, the host root detached"
            .into(),
    );
    let mut hide = Vec::new();
    let mut hidden_names = Vec::new();
    for h in &spec.hide {
        let h = std::path::absolute(h).map_err(prep("find", h))?;
        if h.is_dir() {
            hide.push(cstr(under(&root, &h))?);
            hidden_names.push(h.display().to_string());
        }
    }
    if !hidden_names.is_empty() {
        note("hivebox state hidden", format!("empty read-only tmpfs over {}", hidden_names.join(", ")));
    }
    let socket = match &spec.socket {
        Some(s) => {
            let s = std::path::absolute(s).map_err(prep("find", s))?;
            note("daemon socket", format!("{} bound at {BOX_SOCKET}", s.display()));
            Some(cstr(&s)?)
        }
        None => None,
    };
    let pairs = |list: &[PathBuf]| -> Result<Vec<(CString, CString)>, SandboxError> {
        list.iter().map(|p| Ok((cstr(p)?, cstr(under(&root, p))?))).collect()
    };
    let open = pairs(&spec.paths.open)?;
    let read_only = pairs(&spec.paths.read_only)?;
    let hidden = spec.paths.hidden.iter().map(|p| cstr(under(&root, p))).collect::<Result<Vec<_>, _>>()?;
    let list = |v: &[PathBuf]| v.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
    if !spec.paths.open.is_empty() {
        note("open paths (written through to the host)", list(&spec.paths.open));
    }
    if !spec.paths.read_only.is_empty() {
        note("read-only paths", list(&spec.paths.read_only));
    }
    if !spec.paths.hidden.is_empty() {
        note("hidden paths", list(&spec.paths.hidden));
    }
    let (host_sockets, ipc) = prepare_ipc(spec, &mut enforced)?;
    // Settings that bind host paths into the box must not hold a host bus's socket.
    let holes: Vec<(&str, &Path)> = spec
        .paths
        .open
        .iter()
        .map(|p| ("open path", p.as_path()))
        .chain(spec.paths.read_only.iter().map(|p| ("read-only path", p.as_path())))
        .chain(spec.host_sockets.iter().map(|p| ("host socket", p.as_path())))
        .collect();
    let dbus = crate::dbus::prepare(&spec.dbus, &spec.host_buses, &holes, &box_dir, &mut enforced)?;
    let confined = spec.confine.as_ref().map(confine::prepare).transpose()?;
    if let Some(c) = &confined {
        enforced.mechanisms.extend(c.enforced().mechanisms.iter().cloned());
    }
    let cwd = std::env::current_dir().map(cstr).unwrap_or_else(|_| cstr("/"))?;
    let program = &spec.command[0];
    let candidates = if program.as_bytes().contains(&b'/') {
        vec![cstr(program)?]
    } else {
        let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
        std::env::split_paths(&path).map(|d| cstr(d.join(program))).collect::<Result<Vec<_>, _>>()?
    };
    let argv = spec.command.iter().map(cstr).collect::<Result<Vec<_>, _>>()?;
    let mut env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let mut set = |k: &str, v: OsString| {
        env.retain(|(ek, _)| ek != k);
        env.push((k.into(), v));
    };
    set("HIVEBOX_BOX", spec.name.clone().into());
    if socket.is_some() {
        set("HIVEBOX_SOCKET", BOX_SOCKET.into());
    }
    // The host's bus addresses mean nothing in the box: a bus it gets is its proxy's.
    for bus in [crate::dbus::Bus::System, crate::dbus::Bus::Session] {
        env.retain(|(k, _)| k != bus.env_var());
    }
    for bus in dbus.buses() {
        env.push((bus.env_var().into(), format!("unix:path={}", bus.box_path()).into()));
    }
    for (k, v) in &spec.env {
        env.retain(|(ek, _)| ek != k);
        env.push((k.clone(), v.clone()));
    }
    let envp = env
        .iter()
        .map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).map_err(|_| SandboxError::Invalid(format!("environment variable {k:?} contains NUL")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let plan = Plan {
        root: cstr(&root)?,
        overlays,
        hide,
        socket,
        open,
        read_only,
        hidden,
        host_sockets,
        ipc,
        hostname: format!("hivebox-{}", spec.name),
        cwd,
        candidates,
        argv,
        envp,
        confine: confined,
        output: spec.output.clone(),
        full_network: spec.network != crate::net::NetworkMode::None,
        net_filter: if spec.network == crate::net::NetworkMode::Decide { Some(net_filter_plan()?) } else { None },
        buses: dbus
            .buses()
            .filter_map(|bus| dbus.socket(bus).map(|src| (src, Path::new(bus.box_path()))))
            .map(|(src, at)| {
                let dirs: Vec<&Path> = at.ancestors().skip(1).filter(|d| d.starts_with("/run/")).collect();
                let dirs = dirs.iter().rev().map(|d| cstr(under(&root, d))).collect::<Result<_, _>>()?;
                Ok((cstr(src)?, dirs, cstr(under(&root, at))?))
            })
            .collect::<Result<_, SandboxError>>()?,
    };
    Ok((plan, enforced, dbus))
}

/// The socket pair and filter of `network = "decide"`.
fn net_filter_plan() -> Result<NetFilterPlan, SandboxError> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socketpair};
    let (parent, child) = socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)
        .map_err(|e| SandboxError::Os { what: "socketpair", source: e.into() })?;
    // A number the box's programs are unlikely to use: the highest the descriptor limit allows,
    // at most 1023.
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current.unwrap_or(1024);
    let handoff = limit.clamp(64, 1024) as i32 - 1;
    Ok(NetFilterPlan { program: crate::sys::unotify::network_filter(handoff), handoff, child, parent })
}

/// The IPC part of [`prepare`]: the host sockets and the IPC space, and what they mean for
/// `box inspect`.
fn prepare_ipc(
    spec: &BoxSpec,
    enforced: &mut Enforced,
) -> Result<(Vec<crate::ipc::SocketPlan>, Option<crate::ipc::SpacePlan>), SandboxError> {
    let sockets = crate::ipc::prepare_sockets(&spec.host_sockets)?;
    let space = spec.ipc_space.as_ref().map(crate::ipc::prepare_space).transpose()?;
    if let Some(s) = &spec.ipc_space
        && let Some(ns) = enforced.mechanisms.iter_mut().find(|(m, _)| m == "namespaces")
    {
        ns.1.push_str(&format!("; the IPC namespace is IPC space {}'s, shared with its boxes", s.name));
    }
    let mut note = |m: &str, d: String| enforced.mechanisms.push((m.to_owned(), d));
    match &spec.ipc_space {
        None => note(
            "IPC",
            "split from the host and other boxes: the box's own IPC namespace (SysV IPC, POSIX message queues), a \
             private /dev/shm and /dev/mqueue; path unix sockets and FIFOs of the host are seen through the overlay \
             and never meet the box's (connect: ECONNREFUSED); abstract unix sockets: see the Landlock and network \
             entries"
                .into(),
        ),
        Some(s) => {
            let d = s.dir.display();
            note(
                "IPC space",
                format!(
                    "shared with every box of IPC space {name}: one IPC namespace (SysV IPC, POSIX message queues; \
                     kept alive at {d}/ns), /dev/shm (bound from {d}/shm) and {dir} (bound from {d}/sockets); \
                     not shared: path sockets and FIFOs elsewhere (each box's own overlay), abstract unix sockets; \
                     split from the host and boxes outside the space",
                    name = s.name,
                    dir = crate::ipc::IPC_SPACE_MOUNT,
                ),
            );
        }
    }
    if !spec.host_sockets.is_empty() {
        let list = spec.host_sockets.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ");
        note("host sockets (deliberate holes)", format!("bound into the box at the same path: {list}"));
    }
    Ok((sockets, space))
}

/// Starts `spec` in its box; returns once the command was executed (or the setup failed,
/// in which case nothing ran). Writes what is enforced to `<box>/enforced.json`.
pub fn spawn_boxed(spec: &BoxSpec) -> Result<BoxedChild, SandboxError> {
    let (plan, mut enforced, dbus) = prepare(spec)?;
    // Attached before the keeper exists, so nothing of the box ever runs unprotected.
    let host_access = match (&spec.cgroup, spec.deny_host_access) {
        (Some(cgroup), true) => {
            let guard = crate::hostaccess::HostAccessGuard::protect(cgroup, std::process::id())?;
            enforced.mechanisms.push((crate::hostaccess::MECHANISM.to_owned(), guard.describe()));
            Some(guard)
        }
        _ => None,
    };
    // Listening before the box exists: its programs never find a bus socket without a proxy.
    let dbus = crate::dbus::start(&dbus)?;
    // Held until the box is set up: the first box of an IPC space makes its namespace.
    let space_lock = plan.ipc.as_ref().map(crate::ipc::lock_space).transpose()?;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SandboxError::Os { what: "pipe", source: e.into() })
    };
    let (reader, writer) = pipe()?;
    // The keeper is born in the box's cgroup (clone3 with CLONE_INTO_CGROUP: no migration, which
    // costs a grace period of the kernel's) when this process has a single thread, as a fork
    // needs for its child to use the C library safely; otherwise it is forked and moved.
    let cgroup = open_cgroup(spec)?;
    let born_inside = cgroup.is_some() && process::single_threaded();
    let must_move = cgroup.is_some() && !born_inside;
    // The keeper says when its namespaces exist (`ready`), then waits (`go`; end of file when
    // something failed) while the launcher moves it into the cgroup, connects its network
    // through pasta and attaches the decide mode's backstop.
    let (ready, go) = if plan.full_network || must_move { (Some(pipe()?), Some(pipe()?)) } else { (None, None) };
    // The keeper inherits every descriptor (it never `exec`s): it keeps its own box's BPF
    // links and closes those of other boxes this process may be running.
    let own_links = host_access.as_ref().map(|g| g.raw_links()).unwrap_or_default();
    let (forked, foreign_links) = crate::hostaccess::with_links_fixed(|live| {
        let forked = match cgroup.as_ref().filter(|_| born_inside) {
            Some(dir) => process::fork_into(dir.as_fd()),
            None => process::fork(),
        };
        (forked, live.iter().copied().filter(|fd| !own_links.contains(fd)).collect::<Vec<_>>())
    });
    let pid = match forked.map_err(|source| SandboxError::Os { what: "fork the box's keeper", source })? {
        Forked::Child => {
            process::close_in_child(&foreign_links);
            drop(reader);
            let sync = ready.zip(go).map(|((_, ready_w), (go_r, _))| (ready_w, go_r));
            keeper(&plan, writer, sync)
        }
        Forked::Parent(pid) => pid,
    };
    drop(writer);
    let mut pasta = None;
    let mut backstop = None;
    let mut pasta_error = None;
    if let (Some((ready_r, ready_w)), Some((go_r, go_w))) = (ready, go) {
        drop((ready_w, go_r));
        let mut byte = [0u8; 1];
        if matches!(rustix::io::read(&ready_r, &mut byte), Ok(1)) {
            let started = (if must_move { move_keeper(spec, pid) } else { Ok(()) })
                .and_then(|()| {
                    if !plan.full_network {
                        return Ok(None);
                    }
                    crate::net::Pasta::start(pid as u32, &spec.box_dir.join("pasta.pid")).map(Some)
                })
                .and_then(|p| {
                    if plan.net_filter.is_some() {
                        backstop = Some(attach_backstop(spec, pid)?);
                    }
                    Ok(p)
                });
            match started {
                Ok(p) => {
                    let _ = rustix::io::write(&go_w, b"g");
                    pasta = p;
                }
                Err(e) => pasta_error = Some(e),
            }
        }
        drop(go_w);
    }
    let mut report = Vec::new();
    let read = std::fs::File::from(reader).read_to_end(&mut report);
    drop(space_lock);
    if let Some(e) = pasta_error {
        let _ = wait_pid(pid);
        return Err(e);
    }
    if let Err(source) = read {
        return Err(SandboxError::Os { what: "read the box's setup report", source });
    }
    let mut exec_error = None;
    for message in report.split(|b| *b == 0).filter(|m| !m.is_empty()) {
        let text = String::from_utf8_lossy(&message[1..]).into_owned();
        match message[0] {
            b'C' => {
                if let Ok(more) = serde_json::from_str::<Enforced>(&text) {
                    enforced.mechanisms.extend(more.mechanisms);
                }
            }
            b'X' => exec_error = Some(text),
            _ => {
                let _ = wait_pid(pid);
                let (step, reason) = text.split_once('\t').unwrap_or((&text, ""));
                return Err(SandboxError::Setup { step: step.to_owned(), reason: reason.to_owned() });
            }
        }
    }
    if let Some(errno) = exec_error {
        let status = wait_pid(pid)?;
        let code = errno.parse().unwrap_or(libc::ENOENT);
        return Err(SandboxError::Exec {
            command: spec.command[0].to_string_lossy().into_owned(),
            source: io::Error::from_raw_os_error(code),
            status,
        });
    }
    let decide = match (&plan.net_filter, backstop) {
        (Some(f), Some(backstop)) => {
            let listener = receive_listener(&f.parent)?;
            let decider = match &spec.net_decider {
                Some(d) => d.0.clone(),
                None => std::sync::Arc::new(crate::netdecide::RulesDecider(spec.net_rules.clone())),
            };
            let supervisor = crate::netdecide::Supervisor::start(listener, decider)
                .map_err(|source| SandboxError::Os { what: "start the connection supervisor", source })?;
            Some((supervisor, backstop))
        }
        _ => None,
    };
    let path = spec.box_dir.join("enforced.json");
    let json = serde_json::to_string_pretty(&enforced).unwrap_or_default();
    if let Err(source) = std::fs::write(&path, json) {
        return Err(SandboxError::Prepare { what: "write", path, source });
    }
    Ok(BoxedChild { pid, enforced, pasta, decide, dbus, host_access })
}

/// The box's cgroup directory, unless there is none or the launcher is in it already (then
/// its children are born there anyway).
fn open_cgroup(spec: &BoxSpec) -> Result<Option<OwnedFd>, SandboxError> {
    let Some(cgroup) = &spec.cgroup else { return Ok(None) };
    let procs = cgroup.join("cgroup.procs");
    let members = std::fs::read_to_string(&procs).map_err(|source| SandboxError::Prepare {
        what: "read",
        path: procs.clone(),
        source,
    })?;
    let me = std::process::id().to_string();
    if members.lines().any(|l| l == me) {
        return Ok(None);
    }
    let dir = std::fs::File::open(cgroup).map_err(|source| SandboxError::Prepare {
        what: "open the cgroup",
        path: cgroup.clone(),
        source,
    })?;
    Ok(Some(dir.into()))
}

/// Moves the keeper (waiting, before it forks) into the box's cgroup.
fn move_keeper(spec: &BoxSpec, keeper: i32) -> Result<(), SandboxError> {
    let Some(cgroup) = &spec.cgroup else { return Ok(()) };
    let procs = cgroup.join("cgroup.procs");
    std::fs::write(&procs, keeper.to_string()).map_err(|source| SandboxError::Prepare {
        what: "move the box's keeper into",
        path: procs,
        source,
    })
}

/// Attaches the kernel backstop of `network = "decide"` to the box's cgroup: only this
/// process may connect the box's sockets.
fn attach_backstop(spec: &BoxSpec, keeper: i32) -> Result<crate::backstop::Backstop, SandboxError> {
    let cgroup = spec.cgroup.as_ref().expect("checked in prepare");
    let dir = std::fs::File::open(cgroup).map_err(|source| SandboxError::Prepare {
        what: "open the cgroup",
        path: cgroup.clone(),
        source,
    })?;
    let ns = std::fs::File::open(format!("/proc/{keeper}/ns/net"))
        .map_err(|source| SandboxError::Os { what: "open the box's network namespace", source })?;
    // The namespace's cookie, read off a socket made in it by a thread that enters it.
    let cookie = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<u64> {
            rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))?;
            let sock = rustix::net::socket_with(
                rustix::net::AddressFamily::INET,
                rustix::net::SocketType::DGRAM,
                rustix::net::SocketFlags::CLOEXEC,
                None,
            )?;
            crate::sys::unotify::netns_cookie(sock.as_fd())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("the thread reading the namespace's cookie panicked")))
    })
    .map_err(|source| SandboxError::Os { what: "read the box's network namespace cookie", source })?;
    crate::backstop::attach(dir.as_fd(), cookie, std::process::id())
        .map_err(|why| SandboxError::Invalid(format!("network = \"decide\": cannot attach the kernel backstop: {why}")))
}

/// The listener the box's command sent before exec.
fn receive_listener(sock: &OwnedFd) -> Result<OwnedFd, SandboxError> {
    use rustix::net::{RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, recvmsg};
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut byte = [0u8; 1];
    let got = recvmsg(
        sock,
        &mut [io::IoSliceMut::new(&mut byte)],
        &mut control,
        RecvFlags::DONTWAIT | RecvFlags::CMSG_CLOEXEC,
    );
    if let Err(e) = got {
        return Err(SandboxError::Os { what: "receive the box's seccomp listener", source: e.into() });
    }
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmRights(mut fds) = message
            && let Some(fd) = fds.next()
        {
            return Ok(fd);
        }
    }
    Err(SandboxError::Invalid("the box's command sent no seccomp listener".into()))
}

/// A message for the parent: a kind byte, the text, a NUL.
fn send(pipe: &OwnedFd, kind: u8, text: &str) {
    let mut m = Vec::with_capacity(text.len() + 2);
    m.push(kind);
    m.extend_from_slice(text.as_bytes());
    m.push(0);
    let _ = rustix::io::write(pipe.as_fd(), &m);
}

/// Fails the setup: reports `step` and the error, exits.
fn fail(pipe: &OwnedFd, step: &str, e: impl std::fmt::Display) -> ! {
    send(pipe, b'!', &format!("{step}\t{e}"));
    process::exit_now(125)
}

/// The keeper: unshares the namespaces, forks init, waits for it.
fn keeper(plan: &Plan, pipe: OwnedFd, net_sync: Option<(OwnedFd, OwnedFd)>) -> ! {
    if let Err(e) = process::block_supervised_signals() {
        fail(&pipe, "block signals", e);
    }
    let mut flags = UnshareFlags::NEWNS | UnshareFlags::NEWPID | UnshareFlags::NEWUTS | UnshareFlags::NEWNET;
    // An IPC space is entered (or made and kept) while still in the host's mount namespace.
    match &plan.ipc {
        None => flags |= UnshareFlags::NEWIPC,
        Some(space) => {
            if let Err((step, e)) = crate::ipc::enter_space(space) {
                fail(&pipe, &step, e);
            }
        }
    }
    if let Err(e) = process::unshare(flags) {
        fail(&pipe, "unshare the mount, PID, IPC, UTS and network namespaces", e);
    }
    if let Err(e) = crate::sys::net::loopback_up() {
        fail(&pipe, "bring up lo in the box's network namespace", e);
    }
    if let Some((ready, go)) = net_sync {
        let mut byte = [0u8; 1];
        let _ = rustix::io::write(&ready, b"r");
        if !matches!(rustix::io::read(&go, &mut byte), Ok(1)) {
            fail(&pipe, "wait for the launcher", "the launcher could not finish the box's cgroup or network");
        }
    }
    match process::fork() {
        Err(e) => fail(&pipe, "fork the box's init", e),
        Ok(Forked::Child) => init(plan, pipe),
        Ok(Forked::Parent(init_pid)) => {
            drop(pipe);
            process::exit_now(supervise(init_pid))
        }
    }
}

/// Waits for `main`, forwarding `SIGTERM`/`SIGHUP` to it and reaping every other child;
/// returns its exit code (`128+N` when signal N killed it).
fn supervise(main: i32) -> i32 {
    use rustix::process::{Pid, Signal, WaitOptions, kill_process, waitpid};
    let Some(main_pid) = Pid::from_raw(main) else { return 125 };
    loop {
        let sig = match process::wait_signal() {
            Ok(s) => s,
            Err(_) => return 125,
        };
        if sig == libc::SIGTERM || sig == libc::SIGHUP {
            let s = if sig == libc::SIGTERM { Signal::TERM } else { Signal::HUP };
            let _ = kill_process(main_pid, s);
            continue;
        }
        if sig != libc::SIGCHLD {
            continue;
        }
        loop {
            match waitpid(None, WaitOptions::NOHANG) {
                Ok(Some((pid, status))) if pid == main_pid => {
                    if let Some(code) = status.exit_status() {
                        return code;
                    }
                    return 128 + status.terminating_signal().unwrap_or(0);
                }
                Ok(Some(_)) => continue,
                Ok(None) => break,
                Err(rustix::io::Errno::INTR) => continue,
                // ECHILD: the main child is gone without our seeing it (cannot happen).
                Err(_) => return 125,
            }
        }
    }
}

/// PID 1 of the box: builds the mount tree, starts the command, reaps.
fn init(plan: &Plan, pipe: OwnedFd) -> ! {
    if let Err(e) = build_root(plan) {
        fail(&pipe, &e.0, e.1);
    }
    match process::fork() {
        Err(e) => fail(&pipe, "fork the command", e),
        Ok(Forked::Child) => command(plan, pipe),
        Ok(Forked::Parent(cmd)) => {
            drop(pipe);
            process::exit_now(supervise(cmd))
        }
    }
}

/// A failed step: its name (with the path) and the error.
struct StepError(String, io::Error);

fn step<T>(what: impl FnOnce() -> String, r: rustix::io::Result<T>) -> Result<T, StepError> {
    r.map_err(|e| StepError(what(), e.into()))
}

fn show(c: &CString) -> String {
    c.to_string_lossy().into_owned()
}

/// Bind-mounts `src` on `dst`, read-only when asked (a bind is made read-only by a remount).
fn bind(src: &CString, dst: &CString, read_only: bool, recursive: bool) -> Result<(), StepError> {
    let r = if recursive { rustix::mount::mount_bind_recursive(src, dst) } else { rustix::mount::mount_bind(src, dst) };
    step(|| format!("bind {} on {}", show(src), show(dst)), r)?;
    if read_only {
        let flags = MountFlags::BIND | MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV;
        step(|| format!("make {} read-only", show(dst)), rustix::mount::mount_remount(dst, flags, c""))?;
    }
    Ok(())
}

/// Bind-mounts the file `src` on `dst`, creating `dst` (empty) to mount on.
fn bind_file(src: &CString, dst: &CString) -> Result<(), StepError> {
    let flags = rustix::fs::OFlags::CREATE | rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC;
    step(|| format!("create {}", show(dst)), rustix::fs::open(dst, flags, rustix::fs::Mode::from_raw_mode(0o666)))?;
    bind(src, dst, false, false)
}

fn tmpfs(dst: &CString, flags: MountFlags, data: &std::ffi::CStr) -> Result<(), StepError> {
    step(|| format!("mount a tmpfs on {}", show(dst)), rustix::mount::mount(c"tmpfs", dst, c"tmpfs", flags, data))
}

fn join(root: &CString, rel: &str) -> CString {
    let mut v = root.as_bytes().to_vec();
    v.extend_from_slice(rel.as_bytes());
    CString::new(v).unwrap_or_default()
}

/// The mount tree of the box, ending with `pivot_root` into it.
fn build_root(plan: &Plan) -> Result<(), StepError> {
    use rustix::mount::{mount, mount_change};
    step(
        || "make the mount tree private".into(),
        mount_change(c"/", MountPropagationFlags::REC | MountPropagationFlags::PRIVATE),
    )?;
    let _ = rustix::system::sethostname(plan.hostname.as_bytes());
    for (target, options) in &plan.overlays {
        step(
            || format!("mount the overlay {} ({})", show(target), show(options)),
            mount(c"overlay", target, c"overlay", MountFlags::empty(), options.as_c_str()),
        )?;
    }
    let root = &plan.root;
    let nosuid = MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let proc = join(root, "/proc");
    step(|| format!("mount proc on {}", show(&proc)), mount(c"proc", &proc, c"proc", nosuid, None))?;
    let sys = join(root, "/sys");
    bind(&c"/sys".into(), &sys, true, false)?;
    // /dev: a tmpfs with the harmless devices bound from the host.
    let dev = join(root, "/dev");
    tmpfs(&dev, MountFlags::NOSUID | MountFlags::NOEXEC, c"mode=755")?;
    for name in ["null", "zero", "full", "random", "urandom", "tty"] {
        let src = CString::new(format!("/dev/{name}")).unwrap_or_default();
        let dst = join(&dev, &format!("/{name}"));
        bind_file(&src, &dst)?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        ("ptmx", "pts/ptmx"),
    ] {
        let link = join(&dev, &format!("/{name}"));
        step(|| format!("create {}", show(&link)), rustix::fs::symlink(target, &link))?;
    }
    let mode = rustix::fs::Mode::from_raw_mode(0o755);
    for name in ["/pts", "/shm", "/mqueue"] {
        let d = join(&dev, name);
        step(|| format!("create {}", show(&d)), rustix::fs::mkdir(&d, mode))?;
    }
    bind(&c"/dev/pts".into(), &join(&dev, "/pts"), false, false)?;
    match &plan.ipc {
        Some(space) => bind(&space.shm, &join(&dev, "/shm"), false, false)?,
        None => tmpfs(&join(&dev, "/shm"), MountFlags::NOSUID | MountFlags::NODEV, c"mode=1777")?,
    }
    let mq = join(&dev, "/mqueue");
    step(|| format!("mount mqueue on {}", show(&mq)), mount(c"mqueue", &mq, c"mqueue", nosuid, None))?;
    step(
        || "make /dev read-only".into(),
        rustix::mount::mount_remount(&dev, MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NOEXEC, c"mode=755"),
    )?;
    let run = join(root, "/run");
    tmpfs(&run, MountFlags::NOSUID | MountFlags::NODEV, c"mode=755")?;
    if let Some(socket) = &plan.socket {
        let dir = join(&run, "/hivebox");
        step(|| format!("create {}", show(&dir)), rustix::fs::mkdir(&dir, mode))?;
        let dst = join(&run, "/hivebox/hivebox.sock");
        bind_file(socket, &dst)?;
    }
    // The bus proxies' sockets, in directories of the box's own (so far nearly empty) /run.
    for (src, dirs, at) in &plan.buses {
        for d in dirs {
            match rustix::fs::mkdir(d, mode) {
                Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                Err(e) => return Err(StepError(format!("create {}", show(d)), e.into())),
            }
        }
        bind_file(src, at)?;
    }
    if let Some(space) = &plan.ipc {
        let dir = join(root, crate::ipc::IPC_SPACE_MOUNT);
        step(|| format!("create {}", show(&dir)), rustix::fs::mkdir(&dir, mode))?;
        bind(&space.sockets, &dir, false, false)?;
    }
    for s in &plan.host_sockets {
        crate::ipc::bind_socket(root, s).map_err(|(what, e)| StepError(what, e))?;
    }
    let empty = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    for h in &plan.hide {
        tmpfs(h, empty, c"mode=755,size=4k")?;
    }
    for (src, dst) in &plan.open {
        bind(src, dst, false, true)?;
    }
    for (src, dst) in &plan.read_only {
        bind(src, dst, true, true)?;
    }
    for h in &plan.hidden {
        tmpfs(h, empty, c"mode=755,size=4k")?;
    }
    // pivot_root(".", "."): the old root ends up stacked on the new one, then detached.
    step(|| format!("enter {}", show(root)), rustix::process::chdir(root))?;
    step(|| "pivot_root into the overlay".into(), rustix::process::pivot_root(c".", c"."))?;
    step(|| "detach the host root".into(), rustix::mount::unmount(c".", UnmountFlags::DETACH))?;
    step(|| "enter /".into(), rustix::process::chdir(c"/"))?;
    Ok(())
}

/// `network = "decide"`: installs the filter and sends its listener to the launcher. Makes no
/// allocation (between fork and exec).
fn send_listener(f: &NetFilterPlan) -> Result<(), (&'static str, io::Error)> {
    use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags, sendmsg};
    // Our end goes to the one number on which the filter lets sendmsg through.
    let handoff = process::dup_to(f.child.as_fd(), f.handoff).map_err(|e| ("move the hand-off socket", e))?;
    // Set already by the confinement; needed anyway to install a filter without privilege.
    rustix::thread::set_no_new_privs(true).map_err(|e| ("set no_new_privs", e.into()))?;
    let listener = crate::sys::unotify::install(&f.program).map_err(|e| ("install the network filter", e))?;
    let mut space = [std::mem::MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [listener.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
        return Err(("send the network filter's listener", io::Error::from_raw_os_error(libc::ENOBUFS)));
    }
    sendmsg(&handoff, &[io::IoSlice::new(b"L")], &mut control, SendFlags::empty())
        .map_err(|e| ("send the network filter's listener", e.into()))?;
    Ok(())
}

/// The command's process: its working directory, capabilities, confinement, exec.
fn command(plan: &Plan, pipe: OwnedFd) -> ! {
    if rustix::process::chdir(&plan.cwd).is_err() {
        let _ = rustix::process::chdir(c"/");
    }
    if let Some(out) = &plan.output
        && let Err(e) = rustix::stdio::dup2_stdout(out).and_then(|()| rustix::stdio::dup2_stderr(out))
    {
        fail(&pipe, "redirect the output", e);
    }
    if let Err(e) = process::reset_signals() {
        fail(&pipe, "reset the signal mask", e);
    }
    // Confinement last: it drops every capability and installs the seccomp deny list.
    if let Some(c) = &plan.confine
        && let Err(e) = c.apply()
    {
        fail(&pipe, "confine the command", e);
    }
    if let Some(f) = &plan.net_filter
        && let Err((step, e)) = send_listener(f)
    {
        fail(&pipe, step, e);
    }
    let argv: Vec<*const libc::c_char> =
        plan.argv.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let envp: Vec<*const libc::c_char> =
        plan.envp.iter().map(|a| a.as_ptr()).chain(std::iter::once(std::ptr::null())).collect();
    let mut error = libc::ENOENT;
    for c in &plan.candidates {
        let e = process::execve(c, &argv, &envp).raw_os_error().unwrap_or(libc::ENOENT);
        // As execvp: a file that exists but cannot be run is the error to report.
        if e != libc::ENOENT && e != libc::ENOTDIR {
            error = e;
        }
    }
    send(&pipe, b'X', &error.to_string());
    process::exit_now(if error == libc::ENOENT { 127 } else { 126 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setting_paths_are_checked() {
        assert!(check_box_path(Path::new("/srv/data")).is_ok());
        assert!(check_box_path(Path::new("srv")).is_err());
        assert!(check_box_path(Path::new("/srv/../etc")).is_err());
        assert!(check_box_path(Path::new("/")).is_err());
    }

    #[test]
    fn the_root_is_always_shadowed() {
        let l = layers();
        assert_eq!(l[0], Layer { mount_point: "/".into(), key: "root".into() });
    }
}
