//! D-Bus: a box reaches the host's buses only through its `xdg-dbus-proxy`, with its rules. The
//! host bus's own sockets (a path in `/run`, a path in `/tmp`, an abstract name) are
//! unreachable from the box; through the proxy, a name the rules do not name is unknown while
//! the host calls it; what the rules name works; and the seed's case: a host service asked by
//! the box to run a file the box downloaded fails, because the file exists only in the box.
//!
//! Each test starts its own `dbus-daemon` as "the host's bus" and a small host service on it
//! (Python, `python3-dbus` and `python3-gi`), and hands the launcher the bus's address through
//! `BoxSpec::host_buses` (the test process's environment is left alone).

use hivebox_sandbox::BoxSpec;
use hivebox_sandbox::dbus::{BusAccess, BusRules, HostBuses};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// The system Python, which has the `dbus` and `gi` modules (Debian's python3-dbus and
/// python3-gi), whatever `python3` is first on `PATH`.
const PYTHON: &str = "/usr/bin/python3";
const SERVICE: &str = "org.hivebox.test.Service";
const IFACE: &str = "org.hivebox.test.Iface";
const OBJECT: &str = "/org/hivebox/test";

/// The host service: `Echo(s)`, and `RunFile(path)`, which runs the file at `path` on the host
/// and returns its output, or fails with `org.hivebox.test.Error.NoSuchFile` when there is none.
const SERVICE_PY: &str = r#"
import dbus, dbus.service, dbus.mainloop.glib, os, subprocess, sys
from gi.repository import GLib
dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
bus = dbus.bus.BusConnection(sys.argv[1])
class NoSuchFile(dbus.DBusException):
    _dbus_error_name = "org.hivebox.test.Error.NoSuchFile"
class Service(dbus.service.Object):
    @dbus.service.method("org.hivebox.test.Iface", in_signature="s", out_signature="s")
    def Echo(self, s):
        return s
    @dbus.service.method("org.hivebox.test.Iface", in_signature="s", out_signature="s")
    def RunFile(self, path):
        if not os.path.exists(path):
            raise NoSuchFile("no such file: " + path)
        return subprocess.run([path], capture_output=True, text=True, check=True).stdout.strip()
name = dbus.service.BusName("org.hivebox.test.Service", bus)
Service(bus, "/org/hivebox/test")
print("ready", flush=True)
GLib.MainLoop().run()
"#;

/// The client, on the host and in the box: `call BUS METHOD ARG` (BUS: `system`, `session` or
/// an address) prints `ok REPLY` or `error NAME MESSAGE`; `names BUS` the well-known names it
/// sees; `connect PATH` and `abstract NAME` a raw connect's outcome.
const CLIENT_PY: &str = r#"
import dbus, errno, socket, sys
SERVICE, IFACE, OBJECT = "org.hivebox.test.Service", "org.hivebox.test.Iface", "/org/hivebox/test"
def bus(which):
    if which == "system":
        return dbus.SystemBus()
    if which == "session":
        return dbus.SessionBus()
    return dbus.bus.BusConnection(which)
def connect(addr):
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(addr)
        print("connected")
    except OSError as e:
        print(errno.errorcode[e.errno])
cmd = sys.argv[1]
try:
    if cmd == "call":
        r = bus(sys.argv[2]).call_blocking(SERVICE, OBJECT, IFACE, sys.argv[3], "s", [sys.argv[4]])
        print("ok", r)
    elif cmd == "names":
        print(" ".join(sorted(n for n in bus(sys.argv[2]).list_names() if not n.startswith(":"))))
    elif cmd == "connect":
        connect(sys.argv[2])
    elif cmd == "abstract":
        connect("\0" + sys.argv[2])
except dbus.DBusException as e:
    print("error", e.get_dbus_name(), e.get_dbus_message() or "")
"#;

/// `PREFIX-<pid>-<n>`, unique to this test process.
fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!("{prefix}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// A private `dbus-daemon` standing in for the host's bus. It listens on a path in `/run` (as
/// the real system bus does; its address is [`HostBus::address`]), a path in `/tmp` and an
/// abstract name, with a policy that lets everyone call and own everything.
struct HostBus {
    daemon: Child,
    run_dir: tempfile::TempDir,
    tmp_dir: tempfile::TempDir,
    abstract_name: String,
}

impl HostBus {
    fn start() -> Self {
        assert!(rustix::process::geteuid().is_root(), "the escape tests need root (CI runs them as root)");
        let run_dir = tempfile::Builder::new().prefix("hivebox-dbus-").tempdir_in("/run").unwrap();
        let tmp_dir = tempfile::Builder::new().prefix("hivebox-dbus-").tempdir_in("/tmp").unwrap();
        let abstract_name = unique("hivebox-test-bus");
        let config = run_dir.path().join("bus.conf");
        std::fs::write(
            &config,
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path={}/bus</listen>
  <listen>unix:path={}/bus</listen>
  <listen>unix:abstract={abstract_name}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#,
                run_dir.path().display(),
                tmp_dir.path().display()
            ),
        )
        .unwrap();
        let mut daemon = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--nopidfile", "--print-address"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon runs (Debian package dbus-daemon)");
        // It prints its addresses once it listens on all of them.
        let mut line = String::new();
        BufReader::new(daemon.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert!(line.contains("unix:"), "dbus-daemon did not start: {line:?}");
        HostBus { daemon, run_dir, tmp_dir, abstract_name }
    }

    /// The socket in `/run`.
    fn run_socket(&self) -> PathBuf {
        self.run_dir.path().join("bus")
    }

    /// The socket in `/tmp`.
    fn tmp_socket(&self) -> PathBuf {
        self.tmp_dir.path().join("bus")
    }

    fn address(&self) -> String {
        format!("unix:path={}", self.run_socket().display())
    }

    /// Starts the host service on this bus (it owns [`SERVICE`] once this returns).
    fn service(&self) -> HostService {
        let mut child = Command::new(PYTHON)
            .arg("-c")
            .arg(SERVICE_PY)
            .arg(self.address())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        if line != "ready\n" {
            let mut err = String::new();
            let _ = child.stderr.take().unwrap().read_to_string(&mut err);
            panic!("the host service did not start (python3-dbus and python3-gi installed?): {err}");
        }
        HostService(child)
    }

    /// The client run on the host against this bus: its output line.
    fn host(&self, args: &[&str]) -> String {
        let address = self.address();
        let args: Vec<&str> = args.iter().map(|a| if *a == "BUS" { address.as_str() } else { a }).collect();
        let out = Command::new(PYTHON).arg("-c").arg(CLIENT_PY).args(&args).output().unwrap();
        assert!(out.status.success(), "client {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    /// The system bus setting pointing at this bus, the session bus none.
    fn hosts(&self) -> HostBuses {
        HostBuses { system: Some(self.address()), session: None }
    }
}

impl Drop for HostBus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

struct HostService(Child);

impl Drop for HostService {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A box `name` of a fresh home running `script` with `/bin/sh -c`; `C ARGS` runs the client.
struct Boxed {
    home: tempfile::TempDir,
}

impl Boxed {
    fn new() -> Self {
        Boxed { home: tempfile::Builder::new().prefix("hivebox-escape-").tempdir_in("/var/tmp").unwrap() }
    }

    fn dir(&self, name: &str) -> PathBuf {
        self.home.path().join("boxes").join(name)
    }

    /// A spec for `script` in box `name`; the session bus is none unless the test says more.
    fn spec(&self, name: &str, hosts: HostBuses, script: &str) -> BoxSpec {
        let dir = self.dir(name);
        std::fs::create_dir_all(&dir).unwrap();
        let script = format!("C() {{ {PYTHON} -c \"$HIVEBOX_CLIENT\" \"$@\"; }}\n{script}");
        let mut spec = BoxSpec::new(name, dir, vec!["/bin/sh".into(), "-c".into(), script.into()]);
        spec.hide = vec![self.home.path().to_owned()];
        spec.env.push(("HIVEBOX_CLIENT".into(), CLIENT_PY.into()));
        spec.host_buses = hosts;
        spec.dbus.session = BusAccess::None;
        spec
    }

    /// Runs `spec` to its end: exit code, output, and what was recorded as enforced.
    fn run(&self, mut spec: BoxSpec) -> (i32, String, String) {
        let (mut reader, writer) = std::io::pipe().unwrap();
        spec.output = Some(Arc::new(writer.into()));
        let child = hivebox_sandbox::spawn_boxed(&spec).expect("the box starts");
        let enforced = serde_json::to_string(child.enforced()).unwrap();
        let box_dir = spec.box_dir.clone();
        drop(spec);
        let mut out = String::new();
        reader.read_to_string(&mut out).unwrap();
        let code = child.wait().unwrap().code().unwrap_or(-1);
        // The proxies stopped with the box, and their sockets and directory went with them.
        assert!(!box_dir.join("dbus").exists(), "the proxies' directory outlived the box");
        (code, out, enforced)
    }
}

fn talk_to_service() -> BusAccess {
    BusAccess::Filtered(BusRules { talk: vec![SERVICE.into()], ..BusRules::default() })
}

#[test]
fn the_host_bus_is_reached_only_through_the_proxy() {
    let bus = HostBus::start();
    let _service = bus.service();
    // Control: on the host, the service answers, over every socket of the bus.
    assert_eq!(bus.host(&["call", "BUS", "Echo", "hi"]), "ok hi");
    for addr in [bus.run_socket(), bus.tmp_socket()] {
        assert_eq!(bus.host(&["connect", addr.to_str().unwrap()]), "connected");
    }
    assert_eq!(bus.host(&["abstract", &bus.abstract_name]), "connected");
    let b = Boxed::new();
    let script = format!(
        "echo \"$DBUS_SYSTEM_BUS_ADDRESS\" \"${{DBUS_SESSION_BUS_ADDRESS-unset}}\"
         C connect {run}; C connect {tmp}; C abstract {abs}
         C call unix:path={run} Echo hi
         C call system Echo hi
         C names system",
        run = bus.run_socket().display(),
        tmp = bus.tmp_socket().display(),
        abs = bus.abstract_name,
    );
    let (code, out, enforced) = b.run(b.spec("escape", bus.hosts(), &script));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(code, 0, "{out}");
    assert_eq!(lines[0], "unix:path=/run/dbus/system_bus_socket unset", "{out}");
    // The bus's own sockets: /run is the box's own tmpfs, /tmp's socket is seen through the
    // overlay (and refuses), the abstract name lives in the host's network namespace.
    assert_eq!(lines[1..4], ["ENOENT", "ECONNREFUSED", "ECONNREFUSED"], "{out}");
    assert!(lines[4].starts_with("error org.freedesktop.DBus.Error."), "{out}");
    // Through the proxy, with no rules: the service does not exist, and is not listed.
    assert!(lines[5].starts_with("error org.freedesktop.DBus.Error.ServiceUnknown"), "{out}");
    assert_eq!(lines[6], "org.freedesktop.DBus", "{out}");
    assert_eq!(lines.len(), 7, "{out}");
    assert!(enforced.contains("system bus") && enforced.contains("through xdg-dbus-proxy --filter"), "{enforced}");
    assert!(enforced.contains("may talk to nothing but the bus driver"), "{enforced}");
    assert!(enforced.contains("none: dbus.session = \\\"none\\\""), "{enforced}");
    // The host still can.
    assert_eq!(bus.host(&["call", "BUS", "Echo", "still"]), "ok still");
}

#[test]
fn what_the_rules_name_is_reachable() {
    let bus = HostBus::start();
    let _service = bus.service();
    let b = Boxed::new();
    let script = "echo \"$DBUS_SESSION_BUS_ADDRESS\"
        C call system Echo hi; C names system
        C call session Echo there; C call session RunFile /bin/true";
    // The system bus: talk to the service. The session bus (the same bus here): only its Echo.
    let mut spec = b.spec("rules", HostBuses { system: Some(bus.address()), session: Some(bus.address()) }, script);
    spec.dbus.system = talk_to_service();
    spec.dbus.session =
        BusAccess::Filtered(BusRules { call: vec![format!("{SERVICE}={IFACE}.Echo@{OBJECT}")], ..BusRules::default() });
    let (code, out, enforced) = b.run(spec);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "unix:path=/run/hivebox/dbus/session.sock",
            "ok hi",
            "org.freedesktop.DBus org.hivebox.test.Service",
            "ok there"
        ],
        "{out}"
    );
    assert!(lines[4].starts_with("error org.freedesktop.DBus.Error.AccessDenied"), "{out}");
    assert!(enforced.contains(&format!("talk to {SERVICE}")), "{enforced}");
    assert!(enforced.contains(&format!("call only {SERVICE}={IFACE}.Echo@{OBJECT}")), "{enforced}");
}

#[test]
fn a_host_service_cannot_run_a_file_the_box_downloaded() {
    let bus = HostBus::start();
    let _service = bus.service();
    let b = Boxed::new();
    let download = Path::new("/tmp").join(unique("hivebox-download"));
    let run = format!("C call system RunFile {}", download.display());
    let script = format!("printf '#!/bin/sh\\necho ran\\n' > {d}; chmod +x {d}; {d}\n{run}", d = download.display());
    let mut spec = b.spec("seed", bus.hosts(), &script);
    spec.dbus.system = talk_to_service();
    let (code, out, _) = b.run(spec);
    // The box ran its download; the service, asked to, finds no such file: it exists only in
    // the box's shadow store.
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, format!("ran\nerror org.hivebox.test.Error.NoSuchFile no such file: {}\n", download.display()));
    assert!(!download.exists());
    // Control: once the host has that same file, the same call works, from the host and from the box.
    std::fs::write(&download, "#!/bin/sh\necho ran on the host\n").unwrap();
    std::fs::set_permissions(&download, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    assert_eq!(bus.host(&["call", "BUS", "RunFile", download.to_str().unwrap()]), "ok ran on the host");
    let mut spec = b.spec("seed", bus.hosts(), &run);
    spec.dbus.system = talk_to_service();
    let (code, out, _) = b.run(spec);
    std::fs::remove_file(&download).unwrap();
    assert_eq!((code, out.as_str()), (0, "ok ran on the host\n"));
}

#[test]
fn a_box_without_a_bus_has_no_socket() {
    let bus = HostBus::start();
    let b = Boxed::new();
    let script = "test -e /run/dbus/system_bus_socket && echo socket || echo no-socket
        echo \"${DBUS_SYSTEM_BUS_ADDRESS-unset}\"; C call system Echo hi";
    // Set to none.
    let mut spec = b.spec("none", bus.hosts(), script);
    spec.dbus.system = BusAccess::None;
    let (code, out, enforced) = b.run(spec);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!((code, &lines[..2]), (0, &["no-socket", "unset"][..]), "{out}");
    assert!(lines[2].starts_with("error org.freedesktop.DBus.Error."), "{out}");
    assert!(enforced.contains("none: dbus.system = \\\"none\\\""), "{enforced}");
    // No such bus on the host: the box starts without one, and the record says so.
    let missing = bus.run_dir.path().join("no-such-bus");
    let hosts = HostBuses { system: Some(format!("unix:path={}", missing.display())), session: None };
    let (code, out, enforced) = b.run(b.spec("absent", hosts, script));
    assert_eq!((code, out.lines().take(2).collect::<Vec<_>>()), (0, vec!["no-socket", "unset"]), "{out}");
    assert!(enforced.contains(&format!("none on the host at unix:path={}", missing.display())), "{enforced}");
}

#[test]
fn bad_rules_and_holes_to_the_real_bus_stop_the_launch() {
    let bus = HostBus::start();
    let b = Boxed::new();
    let refused = |spec: BoxSpec| match hivebox_sandbox::spawn_boxed(&spec) {
        Err(hivebox_sandbox::SandboxError::Invalid(why)) => why,
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("the box started"),
    };
    let mut spec = b.spec("bad", bus.hosts(), "true");
    spec.dbus.system = BusAccess::Filtered(BusRules { talk: vec!["org..x".into()], ..BusRules::default() });
    let why = refused(spec);
    assert!(why.contains("\"org..x\""), "{why}");
    let mut spec = b.spec("bad", bus.hosts(), "true");
    spec.dbus.system = BusAccess::Filtered(BusRules { call: vec![format!("{SERVICE}=Echo")], ..BusRules::default() });
    assert!(refused(spec).contains("Echo"));
    // Settings that would bind the bus's own socket into the box, whatever the box's bus setting.
    for none in [false, true] {
        let mut spec = b.spec("hole", bus.hosts(), "true");
        spec.paths.read_only = vec![bus.run_dir.path().to_owned()];
        if none {
            spec.dbus.system = BusAccess::None;
        }
        let why = refused(spec);
        assert!(why.contains("read-only path") && why.contains("system bus"), "{why}");
    }
    let mut spec = b.spec("hole", bus.hosts(), "true");
    spec.host_sockets = vec![bus.run_socket()];
    assert!(refused(spec).contains("host socket"));
}
