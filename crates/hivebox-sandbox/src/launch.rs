//! Starting a program in a box: new mount, PID, IPC, UTS and network namespaces, an overlay
//! root over the host's (the shadow store, `crate::fs`), fresh `/proc`, a minimal `/dev`, read-only
//! `/sys`, a private `/run` holding the daemon's socket, the hivebox home hidden, the box's
//! `open` / `read-only` / `hidden` paths, then `pivot_root` and the command as a child of the
//! namespace's PID 1 (`docs/sandbox.md`).
//!
//! Process tree: the caller forks a *keeper*, which joins the box's cgroup (when the spec
//! names one), unshares the namespaces and forks *init* (PID 1 of the new PID namespace).
//! Init builds the mount tree, forks the command, drops capabilities, confines it and execs
//! it; then it reaps every orphan and forwards `SIGTERM`/`SIGHUP` to the command. Init exits
//! with the command's exit code (`128+N` when signal N killed it), the keeper with init's,
//! and the kernel kills what is left in the PID namespace when init exits.
//!
//! Setup failures are reported through a close-on-exec pipe: nothing runs when one step fails.
//! The keeper also unshares a network namespace and brings its `lo` up; with `network =
//! "full"` the launcher connects it through `pasta` before init starts (`crate::net`). With
//! `deny_host_access`, the launcher attaches the protection from the host before it forks the
//! keeper (`crate::hostaccess`).

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
    /// The box's cgroup v2 directory. The keeper moves itself into it before anything else,
    /// so every process of the box is born there (a no-op when the caller is in it already,
    /// as `hivebox run` is). `None`: the box's processes stay in the caller's cgroup.
    pub cgroup: Option<PathBuf>,
    /// Refuse every process outside [`cgroup`](Self::cgroup) but this one the right to trace,
    /// read or write the memory of, take descriptors from or signal the box's processes
    /// (`box.toml`: `deny-host-access`; `crate::hostaccess`). Needs `cgroup`.
    pub deny_host_access: bool,
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
            cgroup: None,
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
    /// The box's `pasta` (`network = "full"`), stopped once the keeper is gone.
    pasta: Option<crate::net::Pasta>,
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
        drop(self.pasta);
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
    /// `<cgroup>/cgroup.procs`, which the keeper joins.
    cgroup_procs: Option<CString>,
}

fn cstr(p: impl AsRef<OsStr>) -> Result<CString, SandboxError> {
    CString::new(p.as_ref().as_bytes())
        .map_err(|_| SandboxError::Invalid(format!("{:?} contains a NUL byte", p.as_ref())))
}

/// `root` + absolute `p`.
fn under(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

fn prepare(spec: &BoxSpec) -> Result<(Plan, Enforced), SandboxError> {
    if spec.command.is_empty() {
        return Err(SandboxError::Invalid("no command to run".into()));
    }
    spec.network.check()?;
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
        full_network: spec.network == crate::net::NetworkMode::Full,
        cgroup_procs: spec.cgroup.as_ref().map(|c| cstr(c.join("cgroup.procs"))).transpose()?,
    };
    Ok((plan, enforced))
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
    let (plan, mut enforced) = prepare(spec)?;
    // Attached before the keeper exists, so nothing of the box ever runs unprotected.
    let host_access = match (&spec.cgroup, spec.deny_host_access) {
        (Some(cgroup), true) => {
            let guard = crate::hostaccess::HostAccessGuard::protect(cgroup, std::process::id())?;
            enforced.mechanisms.push((crate::hostaccess::MECHANISM.to_owned(), guard.describe()));
            Some(guard)
        }
        _ => None,
    };
    // Held until the box is set up: the first box of an IPC space makes its namespace.
    let space_lock = plan.ipc.as_ref().map(crate::ipc::lock_space).transpose()?;
    let pipe = || {
        rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)
            .map_err(|e| SandboxError::Os { what: "pipe", source: e.into() })
    };
    let (reader, writer) = pipe()?;
    // `network = "full"`: the keeper says when its namespace exists (`ready`), then waits
    // for pasta to be connected (`go`; end of file when pasta failed).
    let (ready, go) = if plan.full_network { (Some(pipe()?), Some(pipe()?)) } else { (None, None) };
    // The keeper inherits every descriptor (it never `exec`s): it keeps its own box's BPF
    // links and closes those of other boxes this process may be running.
    let own_links = host_access.as_ref().map(|g| g.raw_links()).unwrap_or_default();
    let (forked, foreign_links) = crate::hostaccess::with_links_fixed(|live| {
        (process::fork(), live.iter().copied().filter(|fd| !own_links.contains(fd)).collect::<Vec<_>>())
    });
    let pid = match forked.map_err(|source| SandboxError::Os { what: "fork", source })? {
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
    let mut pasta_error = None;
    if let (Some((ready_r, ready_w)), Some((go_r, go_w))) = (ready, go) {
        drop((ready_w, go_r));
        let mut byte = [0u8; 1];
        if matches!(rustix::io::read(&ready_r, &mut byte), Ok(1)) {
            match crate::net::Pasta::start(pid as u32, &spec.box_dir.join("pasta.pid")) {
                Ok(p) => {
                    let _ = rustix::io::write(&go_w, b"g");
                    pasta = Some(p);
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
    let path = spec.box_dir.join("enforced.json");
    let json = serde_json::to_string_pretty(&enforced).unwrap_or_default();
    if let Err(source) = std::fs::write(&path, json) {
        return Err(SandboxError::Prepare { what: "write", path, source });
    }
    Ok(BoxedChild { pid, enforced, pasta, host_access })
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
    if let Some(procs) = &plan.cgroup_procs
        && let Err(e) = join_cgroup(procs)
    {
        fail(&pipe, &format!("join the box's cgroup ({})", show(procs)), e);
    }
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
            fail(&pipe, "connect the box's network namespace", "pasta could not be started");
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

/// Moves the calling process into the cgroup whose `cgroup.procs` is `procs` ("0" names the
/// writer).
fn join_cgroup(procs: &CString) -> rustix::io::Result<()> {
    let fd =
        rustix::fs::open(procs, rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC, rustix::fs::Mode::empty())?;
    rustix::io::write(&fd, b"0").map(drop)
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
