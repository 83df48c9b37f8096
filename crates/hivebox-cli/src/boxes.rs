//! `hivebox box create|list|delete|discard` (and `diff|export|commit`, in `boxes_changes.rs`),
//! and `hivebox run --box NAME -- CMD`: programs in a box (`docs/boxes.md`).
//!
//! The box commands use the daemon when one listens on its socket, else open the store
//! in-process (`hivebox_daemon::Embedded`), as `reg` does. `run` needs the daemon (its boxed
//! program's registry calls go there) and starts one when none runs.

use anyhow::{Context, Result, anyhow, bail};
use hivebox_client::{Client, Connection, Transport};
use hivebox_core::NtStatus;
use hivebox_daemon::boxes::{BoxInfo, box_cgroup, check_name};
use hivebox_proto::{Reply, Request};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: hivebox box <command>

commands:
  create NAME [--ephemeral]   a new box (an ephemeral one is discarded and deleted once its
                              last process exits)
  list [--json]               the boxes: size on disk, processes, registry changes
  delete NAME                 delete a box and its changes (refused while processes run in it)
  discard NAME                throw a box's changes away, registry and files (the box stays)
  diff NAME [--json]          what a box changed: registry and files
  inspect NAME [--json]       what the sandbox enforces for the box, and its live processes
  export NAME --reg FILE      a box's changes as a .reg file
  commit NAME [--key KEY | --path PATH] [--force]
                              apply a box's changes to the host (registry and files; --key:
                              registry keys only; --path: files only), then clear them

Box names are 1-64 characters of A-Z a-z 0-9 . _ - not starting with . or -.
Run a program in a box with: hivebox run --box NAME [--ephemeral] -- CMD [ARGS...]
";

const RUN_USAGE: &str = "\
usage: hivebox run --box NAME [--ephemeral] -- CMD [ARGS...]

Runs CMD in box NAME (created if missing; --ephemeral makes a new box ephemeral): CMD and
every process it starts are in the cgroup hivebox/NAME, and the daemon (started if none runs)
serves their registry calls from the box. They run sandboxed (docs/sandbox.md): their own
mount, PID, IPC and UTS namespaces, files written to the box's shadow store, hivebox's state
hidden, no capabilities, seccomp and Landlock. Needs root.
Exits with CMD's exit code (128+N if a signal N killed it).
";

/// Where the box requests go: the daemon, or the store opened in this process.
pub(crate) enum Backend {
    /// The running daemon.
    Daemon(Client),
    /// The store, in-process.
    Embedded(Arc<hivebox_daemon::Embedded>),
}

impl Backend {
    /// The daemon if one listens on its socket, else the store opened here.
    pub(crate) fn connect() -> Result<Self> {
        let socket = crate::daemon::socket_path();
        if let Some(client) = crate::daemon::connect(&socket)? {
            return Ok(Backend::Daemon(client));
        }
        let embedded = hivebox_daemon::Embedded::open(&hivebox_hive::default_home())?;
        Ok(Backend::Embedded(Arc::new(embedded)))
    }

    /// Performs one request.
    pub(crate) fn call(&self, request: Request) -> Reply {
        match self {
            Backend::Daemon(c) => c.call(request),
            Backend::Embedded(e) => e.call(request),
        }
    }

    /// Performs a request answered with `Text`; an `Error` reply is an error saying why.
    pub(crate) fn text(&self, request: Request) -> Result<String> {
        match self.call(request) {
            Reply::Text(t) => Ok(t),
            other => Err(refusal(other)),
        }
    }

    /// Performs a request answered with `Done`.
    pub(crate) fn done(&self, request: Request) -> Result<()> {
        match self.call(request) {
            Reply::Done => Ok(()),
            other => Err(refusal(other)),
        }
    }

    /// Ends: in-process, the protection events are written out.
    pub(crate) fn finish(self) -> Result<()> {
        match self {
            Backend::Daemon(_) => Ok(()),
            Backend::Embedded(e) => match Arc::try_unwrap(e) {
                Ok(e) => e.finish().map(drop),
                Err(_) => bail!("the registry is still in use"),
            },
        }
    }
}

/// The error an unexpected reply amounts to: the daemon's message and status.
pub(crate) fn refusal(reply: Reply) -> anyhow::Error {
    match reply {
        Reply::Error { status, message } if message.is_empty() => anyhow!("{status}"),
        Reply::Error { status, message } => anyhow!("{message} ({})", status.name().unwrap_or("error")),
        other => anyhow!("unexpected reply from the registry: {other:?}"),
    }
}

fn usage_error(what: &str) -> i32 {
    eprintln!("hivebox box: {what}\n\n{USAGE}");
    2
}

/// Runs `hivebox box ARGS...`.
pub fn run(args: &[String]) -> Result<i32> {
    let verb = args.first().map(String::as_str);
    let rest = args.get(1..).unwrap_or_default();
    match verb {
        Some("inspect") => inspect(rest),
        Some("diff" | "export" | "commit") => crate::boxes_changes::run(verb.unwrap_or_default(), rest),
        Some("create") => {
            let mut name = None;
            let mut ephemeral = false;
            for a in rest {
                match a.as_str() {
                    "--ephemeral" => ephemeral = true,
                    o if o.starts_with('-') => return Ok(usage_error(&format!("unknown option {o:?}"))),
                    n if name.is_none() => name = Some(n.to_owned()),
                    n => return Ok(usage_error(&format!("unexpected argument {n:?}"))),
                }
            }
            let Some(name) = name else { return Ok(usage_error("create needs a box name")) };
            check_name(&name).map_err(|e| anyhow!("{e}"))?;
            with_backend(|b| {
                b.done(Request::BoxCreate { name: name.clone(), ephemeral })?;
                println!("created box {name}{}", if ephemeral { " (ephemeral)" } else { "" });
                Ok(0)
            })
        }
        Some("list") => {
            let json = match rest {
                [] => false,
                [j] if j == "--json" => true,
                _ => return Ok(usage_error("usage: hivebox box list [--json]")),
            };
            with_backend(|b| {
                let text = b.text(Request::BoxList)?;
                let list: Vec<BoxInfo> =
                    serde_json::from_str(&text).context("the box list is not the JSON it should be")?;
                if json {
                    println!("{text}");
                } else {
                    print!("{}", table(&list));
                }
                for b in &list {
                    if let Some(e) = &b.error {
                        // The message names the box.
                        eprintln!("hivebox box list: {e}");
                    }
                }
                Ok(0)
            })
        }
        Some(v @ ("delete" | "discard")) => {
            let [name] = rest else { return Ok(usage_error(&format!("usage: hivebox box {v} NAME"))) };
            check_name(name).map_err(|e| anyhow!("{e}"))?;
            with_backend(|b| {
                if v == "delete" {
                    b.done(Request::BoxDelete { name: name.clone() })?;
                    // The daemon may see cgroups read-only (its unit protects them); an empty
                    // cgroup it left is removed here, best effort.
                    if let Some(cg) = box_cgroup(name) {
                        let _ = std::fs::remove_dir(cg);
                    }
                    println!("deleted box {name}");
                } else {
                    b.done(Request::BoxDiscard { name: name.clone() })?;
                    println!("discarded the changes of box {name} (registry and files)");
                }
                Ok(0)
            })
        }
        Some("help" | "-h" | "--help") => {
            print!("{USAGE}");
            Ok(0)
        }
        None => {
            eprint!("{USAGE}");
            Ok(2)
        }
        Some(other) => Ok(usage_error(&format!("unknown box command {other:?}"))),
    }
}

/// Runs `f` against the registry (the daemon's, or this process's), then ends the session.
fn with_backend(f: impl FnOnce(&Backend) -> Result<i32>) -> Result<i32> {
    let backend = Backend::connect()?;
    let r = f(&backend);
    if let Err(e) = backend.finish() {
        eprintln!("hivebox: protection events could not be written: {e:#}");
    }
    r
}

/// The list as a table.
fn table(list: &[BoxInfo]) -> String {
    let rows: Vec<[String; 5]> = list
        .iter()
        .map(|b| {
            [
                b.name.clone(),
                if b.ephemeral { "yes" } else { "no" }.into(),
                size(b.bytes),
                b.processes.to_string(),
                b.changes.map_or_else(|| "?".into(), |c| c.to_string()),
            ]
        })
        .collect();
    let head = ["NAME", "EPHEMERAL", "SIZE", "PROCESSES", "CHANGES"];
    let mut width = head.map(str::len);
    for r in &rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: [&str; 5]| {
        // Name left-aligned, the rest right-aligned (numbers).
        let mut s = format!("{:<w$}", cells[0], w = width[0]);
        for (c, w) in cells[1..].iter().zip(&width[1..]) {
            s.push_str(&format!("  {c:>w$}"));
        }
        s.push('\n');
        s
    };
    let mut out = line(head);
    for r in &rows {
        out.push_str(&line([&r[0], &r[1], &r[2], &r[3], &r[4]]));
    }
    out
}

/// Bytes for a person: `512 B`, `8.0 KiB`, `1.5 MiB`.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Runs `hivebox run ARGS...`.
pub fn run_in_box(args: &[String]) -> Result<i32> {
    let mut name = None;
    let mut ephemeral = false;
    let mut it = args.iter();
    let mut command = Vec::new();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--" => {
                command.extend(it.by_ref().cloned());
                break;
            }
            "--box" => match it.next() {
                Some(n) => name = Some(n.clone()),
                None => return Ok(run_usage("--box needs a box name")),
            },
            "--ephemeral" => ephemeral = true,
            "-h" | "--help" => {
                print!("{RUN_USAGE}");
                return Ok(0);
            }
            o if o.starts_with("--box=") => name = Some(o["--box=".len()..].to_owned()),
            o if o.starts_with('-') => return Ok(run_usage(&format!("unknown option {o:?}"))),
            _ => {
                command.push(a.clone());
                command.extend(it.by_ref().cloned());
                break;
            }
        }
    }
    let Some(name) = name else { return Ok(run_usage("--box NAME is required")) };
    if command.is_empty() {
        return Ok(run_usage("no command to run"));
    }
    check_name(&name).map_err(|e| anyhow!("{e}"))?;
    let cgroup = box_cgroup(&name)
        .ok_or_else(|| anyhow!("no cgroup v2 hierarchy is mounted (see /proc/self/mountinfo): boxes need one"))?;
    may_enter(&cgroup)?;
    let socket = crate::daemon::socket_path();
    // A plain connection, no reader thread: the launcher stays single-threaded, so that its
    // keeper can be born in the box's cgroup.
    let mut conn = ensure_daemon(&socket)?;
    let created = conn
        .call(&Request::BoxCreate { name: name.clone(), ephemeral })
        .with_context(|| format!("cannot ask the daemon to create box {name}"))?;
    match created {
        Reply::Done => {}
        // The box must be usable: one whose hive is damaged, say, runs nothing.
        Reply::Error { status: NtStatus::STATUS_OBJECT_NAME_COLLISION, .. } => {
            existing_box(&mut conn, &name, ephemeral)?
        }
        other => return Err(refusal(other).context(format!("cannot create box {name}"))),
    }
    drop(conn);
    make_cgroup(&cgroup)?;
    let home = std::path::absolute(hivebox_hive::default_home()).context("cannot find the hivebox home")?;
    let box_dir = home.join(hivebox_hive::BOXES_DIR).join(&name);
    let settings = read_settings(&box_dir)?;
    let mut spec = hivebox_sandbox::BoxSpec::new(&name, &box_dir, command.iter().map(Into::into).collect());
    // The box sees none of hivebox's state: its home (every box, the daemon's hives), and the
    // system home when that is another directory.
    spec.hide.push(home.clone());
    let system = Path::new("/var/lib/hivebox");
    if system != home && system.is_dir() {
        spec.hide.push(system.to_owned());
    }
    spec.socket = Some(std::path::absolute(&socket).context("cannot find the daemon's socket")?);
    spec.network = settings.network;
    spec.net_rules = settings.net;
    spec.cgroup = Some(cgroup.clone());
    spec.net_decider = Some(hivebox_sandbox::launch::NetDeciderHandle(std::sync::Arc::new(DaemonDecider {
        socket: socket.clone(),
        box_name: name.clone(),
        idle: std::sync::Mutex::new(Vec::new()),
    })));
    spec.deny_host_access = settings.deny_host_access;
    spec.paths = hivebox_sandbox::launch::PathSettings {
        open: settings.open,
        read_only: settings.read_only,
        hidden: settings.hidden,
    };
    spec.host_sockets = settings.host_sockets;
    spec.dbus = settings.dbus;
    spec.ipc_space = settings
        .ipc_space
        .map(|space| hivebox_sandbox::ipc::IpcSpace::new(&space, &home))
        .transpose()
        .with_context(|| format!("box {name}"))?;
    let child = match hivebox_sandbox::spawn_boxed(&spec) {
        Ok(c) => c,
        Err(hivebox_sandbox::SandboxError::Exec { command, source, status }) => {
            eprintln!("hivebox run: cannot run {command}: {source}");
            return Ok(status.code().unwrap_or(if source.kind() == ErrorKind::NotFound { 127 } else { 126 }));
        }
        Err(e) => return Err(anyhow!(e).context(format!("box {name}: {} was not run", command[0]))),
    };
    let _forward = forward_signals(child.pid());
    let status = child.wait().context("cannot wait for the command")?;
    use std::os::unix::process::ExitStatusExt;
    Ok(status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

/// Network decisions asked of the daemon (`network = "decide"`): it applies the box's rules
/// and asks `hivebox decide`. One connection per question in flight (a question may wait for
/// a person; the daemon answers a connection's requests in order).
struct DaemonDecider {
    socket: PathBuf,
    box_name: String,
    idle: std::sync::Mutex<Vec<Connection>>,
}

impl hivebox_sandbox::netdecide::NetDecider for DaemonDecider {
    fn decide(&self, c: &hivebox_sandbox::netrules::Connection) -> hivebox_sandbox::netdecide::NetAnswer {
        use hivebox_sandbox::netdecide::NetAnswer;
        let deny = NetAnswer { allow: false, remember: false };
        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut conn = match pooled.map_or_else(|| Connection::connect(&self.socket), Ok) {
            Ok(conn) => conn,
            Err(e) => {
                eprintln!("hivebox run: the daemon cannot be asked about {} {}: {e}; denied", c.proto.as_str(), c.dest);
                return deny;
            }
        };
        let request = Request::NetDecide {
            box_name: self.box_name.clone(),
            pid: c.pid,
            protocol: c.proto.as_str().into(),
            address: c.dest.ip().to_string(),
            port: c.dest.port(),
        };
        match conn.call(&request) {
            Ok(Reply::NetVerdict { allow, remember }) => {
                self.idle.lock().unwrap_or_else(|e| e.into_inner()).push(conn);
                NetAnswer { allow, remember }
            }
            Ok(Reply::Error { status, message }) => {
                eprintln!(
                    "hivebox run: the daemon refused to decide {} {}: {status} {message}; denied",
                    c.proto.as_str(),
                    c.dest
                );
                deny
            }
            Ok(other) => {
                eprintln!("hivebox run: the daemon answered a network question with {other:?}; denied");
                deny
            }
            Err(e) => {
                eprintln!("hivebox run: asking the daemon about {} {} failed: {e}; denied", c.proto.as_str(), c.dest);
                deny
            }
        }
    }
}

/// The box's settings (`box.toml`), for its path settings.
fn read_settings(box_dir: &Path) -> Result<hivebox_daemon::boxes::Settings> {
    let path = box_dir.join(hivebox_daemon::boxes::SETTINGS_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => hivebox_daemon::boxes::parse_settings(&text).map_err(|e| {
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            anyhow!("{}, line {line}: {}", path.display(), e.message().trim_end())
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Default::default()),
        Err(e) => Err(anyhow!("cannot read {}: {e}", path.display())),
    }
}

/// `hivebox box inspect NAME [--json]`.
fn inspect(rest: &[String]) -> Result<i32> {
    let (name, json) = match rest {
        [n] => (n, false),
        [n, j] if j == "--json" => (n, true),
        [j, n] if j == "--json" => (n, true),
        _ => return Ok(usage_error("usage: hivebox box inspect NAME [--json]")),
    };
    check_name(name).map_err(|e| anyhow!("{e}"))?;
    let dir = hivebox_hive::default_home().join(hivebox_hive::BOXES_DIR).join(name);
    if !dir.is_dir() {
        bail!("there is no box named {name} ({} does not exist)", dir.display());
    }
    let cgroup = box_cgroup(name);
    let report = hivebox_sandbox::inspect::inspect(name, &dir, cgroup.as_deref());
    if json {
        println!("{}", serde_json::to_string_pretty(&report).context("cannot write the report as JSON")?);
    } else {
        print!("{}", hivebox_sandbox::inspect::render_text(&report));
    }
    Ok(0)
}

fn run_usage(what: &str) -> i32 {
    eprintln!("hivebox run: {what}\n\n{RUN_USAGE}");
    2
}

/// The box exists already: fine, but say so when it is not of the kind asked for.
fn existing_box(conn: &mut Connection, name: &str, ephemeral: bool) -> Result<()> {
    let listed = conn.call(&Request::BoxList).context("cannot ask the daemon for the boxes")?;
    let text = match listed {
        Reply::Text(t) => t,
        other => return Err(refusal(other).context("cannot list the boxes")),
    };
    let list: Vec<BoxInfo> = serde_json::from_str(&text).context("the box list is not the JSON it should be")?;
    let Some(b) = list.iter().find(|b| b.name == name) else {
        // Another box differs from it only in case.
        bail!("cannot create box {name}: a box whose name differs only in case exists");
    };
    if let Some(e) = &b.error {
        bail!("box {name} cannot be used: {e}");
    }
    match (ephemeral, b.ephemeral) {
        (true, false) => eprintln!("hivebox run: box {name} exists and is not ephemeral: it is kept"),
        (false, true) => {
            eprintln!("hivebox run: box {name} is ephemeral: it goes once its last process exits")
        }
        _ => {}
    }
    Ok(())
}

/// Checks, before anything is started or created, that this process may create and join
/// the box's cgroup (the deepest of it, `hivebox/` and the cgroup root that exists).
fn may_enter(cgroup: &Path) -> Result<()> {
    use rustix::fs::{Access, access};
    let procs = cgroup.join("cgroup.procs");
    let target = if cgroup.is_dir() {
        procs
    } else {
        match cgroup.ancestors().skip(1).find(|a| a.is_dir()) {
            Some(dir) => dir.to_owned(),
            None => bail!("cannot find where to create the box's cgroup {}", cgroup.display()),
        }
    };
    access(&target, Access::WRITE_OK).map_err(|e| {
        anyhow!(
            "cannot create or join the box's cgroup {}: {} is not writable ({e}); hivebox run needs root",
            cgroup.display(),
            target.display()
        )
    })
}

/// Creates box `name`'s cgroup if need be: the box's processes are born in it (the launcher
/// stays outside).
fn make_cgroup(cgroup: &Path) -> Result<()> {
    std::fs::create_dir_all(cgroup).map_err(|e| {
        let hint = match e.kind() {
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                " (hivebox run needs root to create cgroups)"
            }
            _ => "",
        };
        anyhow!("cannot create the box's cgroup {}: {e}{hint}", cgroup.display())
    })
}

/// Connects to the daemon, starting one (detached, logging to `$HIVEBOX_HOME/daemon.log`) if
/// none listens; waits up to 5 seconds for it.
fn ensure_daemon(socket: &Path) -> Result<Connection> {
    let connect = |socket: &Path| match Connection::connect(socket) {
        Ok(c) => Ok(Some(c)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot connect to the hivebox daemon at {}", socket.display())),
    };
    if let Some(c) = connect(socket)? {
        return Ok(c);
    }
    // Absolute: the daemon runs from `/`, so as not to keep this directory busy.
    let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_owned());
    let home = absolute(&hivebox_hive::default_home());
    let socket = &absolute(socket);
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create the home directory {}", home.display()))?;
    let log_path = home.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open {}", log_path.display()))?;
    let exe = std::env::current_exe().context("cannot find the hivebox executable")?;
    let mut daemon = Command::new(&exe);
    daemon.arg("daemon").arg("--home").arg(&home);
    if std::env::var_os("HIVEBOX_SOCKET").is_some_and(|s| !s.is_empty()) {
        daemon.arg("--socket").arg(socket);
    }
    use std::os::unix::process::CommandExt;
    let mut child = daemon
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("cannot share the log file")?)
        .stderr(log)
        .env_remove("HIVEBOX_BOX")
        // Its own process group: a Ctrl-C meant for this command does not stop it.
        .process_group(0)
        .spawn()
        .with_context(|| format!("cannot start {} daemon", exe.display()))?;
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(c) = connect(socket)? {
            eprintln!("hivebox run: started the hivebox daemon (pid {}, log {})", child.id(), log_path.display());
            return Ok(c);
        }
        if let Some(status) = child.try_wait().context("cannot watch the daemon starting")? {
            bail!("the hivebox daemon could not start ({status}):\n{}", tail(&log_path));
        }
        if Instant::now() > until {
            bail!(
                "the hivebox daemon (pid {}) does not listen on {} after 5 seconds; see {}",
                child.id(),
                socket.display(),
                log_path.display()
            );
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The last lines of a log, for an error message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// While the command runs: `SIGTERM` and `SIGHUP` sent to this process are passed on to it;
/// `SIGINT` and `SIGQUIT` (which a terminal sends to both) are left to it, so this process
/// stays to report its exit code.
fn forward_signals(pid: u32) -> Option<signal_hook::iterator::Handle> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGQUIT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGHUP, SIGINT, SIGQUIT, SIGTERM]).ok()?;
    let handle = signals.handle();
    let target = rustix::process::Pid::from_raw(pid as i32)?;
    std::thread::Builder::new()
        .name("hivebox-run-signals".into())
        .spawn(move || {
            for sig in signals.forever() {
                let forwarded = match sig {
                    SIGTERM => rustix::process::Signal::TERM,
                    SIGHUP => rustix::process::Signal::HUP,
                    _ => continue,
                };
                let _ = rustix::process::kill_process(target, forwarded);
            }
        })
        .ok()?;
    Some(handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(size(0), "0 B");
        assert_eq!(size(1023), "1023 B");
        assert_eq!(size(8192), "8.0 KiB");
        assert_eq!(size(3 << 20), "3.0 MiB");
    }

    #[test]
    fn the_table_lines_up() {
        let list = vec![
            BoxInfo {
                name: "trial".into(),
                ephemeral: true,
                bytes: 8192,
                processes: 2,
                changes: Some(14),
                error: None,
            },
            BoxInfo { name: "b".into(), ephemeral: false, bytes: 100, processes: 0, changes: None, error: None },
        ];
        assert_eq!(
            table(&list),
            "\
NAME   EPHEMERAL     SIZE  PROCESSES  CHANGES
trial        yes  8.0 KiB          2       14
b             no    100 B          0        ?
"
        );
    }
}
