//! IPC: path unix sockets, FIFOs, POSIX message queues, SysV IPC and `/dev/shm` of the host
//! and of a box never meet, while processes of one box (or of boxes in one IPC space) do; a
//! host socket named in the box's settings is reachable.
//!
//! The probes are one small Python program (`PROBE`, passed to the box in the environment),
//! run by the box's shell and by the test on the host.

use hivebox_sandbox::BoxSpec;
use hivebox_sandbox::ipc::IpcSpace;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const PROBE: &str = r#"
import ctypes, errno, os, socket, sys, time
libc = ctypes.CDLL(None, use_errno=True)
def code(r):
    print(errno.errorcode[ctypes.get_errno()] if r < 0 else "found", flush=True)
cmd, arg = sys.argv[1], sys.argv[2]
if cmd == "connect":
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(arg)
        print("connected", s.recv(100).decode(), flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
elif cmd == "serve":
    s = socket.socket(socket.AF_UNIX)
    s.bind(arg)
    s.listen()
    if os.fork() == 0:
        while True:
            c, _ = s.accept()
            c.sendall(b"hello")
            c.close()
elif cmd == "fifo-write":
    try:
        os.open(arg, os.O_WRONLY | os.O_NONBLOCK)
        print("met", flush=True)
    except OSError as e:
        print(errno.errorcode[e.errno], flush=True)
elif cmd == "mq-create":
    r = libc.mq_open(arg.encode(), os.O_CREAT | os.O_RDWR, 0o600, None)
    assert r >= 0, errno.errorcode[ctypes.get_errno()]
elif cmd == "mq-open":
    code(libc.mq_open(arg.encode(), os.O_RDWR))
elif cmd == "mq-unlink":
    libc.mq_unlink(arg.encode())
elif cmd == "msg-create":
    assert libc.msgget(int(arg), 0o1000 | 0o600) >= 0, errno.errorcode[ctypes.get_errno()]
elif cmd == "msg-find":
    code(libc.msgget(int(arg), 0))
elif cmd == "msg-remove":
    libc.msgctl(libc.msgget(int(arg), 0), 0, None)
"#;

/// A fresh home under `/var/tmp` (as in `files.rs`).
fn new_home() -> tempfile::TempDir {
    assert!(rustix::process::geteuid().is_root(), "the escape tests need root (CI runs them as root)");
    tempfile::Builder::new().prefix("hivebox-escape-").tempdir_in("/var/tmp").unwrap()
}

/// A spec running `script` with `/bin/sh -c` in box `name` of `home`; `P ARGS` runs the probe.
fn spec(home: &Path, name: &str, script: &str) -> (BoxSpec, std::io::PipeReader) {
    let dir = home.join("boxes").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let script = format!("P() {{ python3 -c \"$HIVEBOX_PROBE\" \"$@\"; }}\n{script}");
    let mut spec = BoxSpec::new(name, dir, vec!["/bin/sh".into(), "-c".into(), script.into()]);
    spec.hide = vec![home.to_owned()];
    spec.env.push(("HIVEBOX_PROBE".into(), PROBE.into()));
    let (reader, writer) = std::io::pipe().unwrap();
    spec.output = Some(Arc::new(writer.into()));
    (spec, reader)
}

/// Runs the spec to its end: exit code and output.
fn run(spec: BoxSpec, mut reader: std::io::PipeReader) -> (i32, String) {
    let child = hivebox_sandbox::spawn_boxed(&spec).expect("the box starts");
    drop(spec);
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    (child.wait().unwrap().code().unwrap_or(-1), out)
}

/// A box left running: started, its output read up to a line `ready` (kept in `before`).
struct Running {
    child: hivebox_sandbox::BoxedChild,
    out: BufReader<std::io::PipeReader>,
    before: String,
}

fn start(spec: BoxSpec, reader: std::io::PipeReader) -> Running {
    let child = hivebox_sandbox::spawn_boxed(&spec).expect("the box starts");
    drop(spec);
    let mut out = BufReader::new(reader);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "the box ended before it was ready: {seen}");
        if line == "ready\n" {
            return Running { child, out, before: seen };
        }
        seen.push_str(&line);
    }
}

impl Running {
    /// Stops the box (`SIGTERM` to its keeper, forwarded to the command).
    fn stop(mut self) {
        let pid = rustix::process::Pid::from_raw(self.child.pid() as i32).unwrap();
        rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
        let mut rest = String::new();
        let _ = self.out.read_to_string(&mut rest);
        let _ = self.child.wait();
    }
}

/// Runs the probe on the host; its output.
fn host_probe(args: &[&str]) -> String {
    let out = std::process::Command::new("python3").arg("-c").arg(PROBE).args(args).output().unwrap();
    assert!(out.status.success(), "probe {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A name unique to this test process and `tag`.
fn unique(tag: &str) -> String {
    format!("hivebox-ipc-{}-{tag}", std::process::id())
}

/// A SysV key unique to this test process and `n`.
fn key(n: u32) -> String {
    (0x4800_0000 + (std::process::id() % 0x10_0000) * 16 + n).to_string()
}

/// Where a file the box made at `path` (under `/tmp` or `/run`... of the root overlay) lies on
/// the host: in the box's upper directory.
fn upper_path(home: &Path, name: &str, path: &Path) -> PathBuf {
    let fs = home.join("boxes").join(name).join("fs");
    for layer in hivebox_sandbox::launch::layers().iter().rev() {
        if let Ok(rel) = path.strip_prefix(&layer.mount_point) {
            return fs.join(&layer.key).join("upper").join(rel);
        }
    }
    unreachable!()
}

#[test]
fn host_path_sockets_and_fifos_do_not_reach_the_box() {
    let home = new_home();
    let tmp_sock = Path::new("/tmp").join(unique("host.sock"));
    let run_sock = Path::new("/run").join(unique("host.sock"));
    let fifo = Path::new("/tmp").join(unique("host.fifo"));
    let listeners: Vec<UnixListener> = [&tmp_sock, &run_sock]
        .iter()
        .map(|p| {
            let _ = std::fs::remove_file(p);
            let l = UnixListener::bind(p).unwrap();
            l.set_nonblocking(true).unwrap();
            l
        })
        .collect();
    let _ = std::fs::remove_file(&fifo);
    rustix::fs::mknodat(rustix::fs::CWD, &fifo, rustix::fs::FileType::Fifo, 0o666.into(), 0).unwrap();
    let _reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&fifo).unwrap();
    // Control: on the host, they meet.
    drop(UnixStream::connect(&tmp_sock).unwrap());
    assert!(listeners[0].accept().is_ok());
    assert_eq!(host_probe(&["fifo-write", fifo.to_str().unwrap()]), "met\n");
    let script =
        format!("P connect {}; P connect {}; P fifo-write {}", tmp_sock.display(), run_sock.display(), fifo.display());
    let (s, r) = spec(home.path(), "hostside", &script);
    let (code, out) = run(s, r);
    // Through the overlay the host's socket refuses connections; /run is the box's own; the
    // FIFO has no reader on the box's side.
    assert_eq!((code, out.as_str()), (0, "ECONNREFUSED\nENOENT\nENXIO\n"));
    for l in &listeners {
        assert!(l.accept().is_err(), "a connection from the box arrived");
    }
    for p in [&tmp_sock, &run_sock, &fifo] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn sockets_and_fifos_made_in_the_box_do_not_reach_the_host() {
    let home = new_home();
    let sock = Path::new("/tmp").join(unique("box.sock"));
    let fifo = Path::new("/tmp").join(unique("box.fifo"));
    let script = format!(
        "set -e; P serve {s}; P connect {s}; mkfifo {f}; exec 3<>{f}; echo ready; exec sleep 30",
        s = sock.display(),
        f = fifo.display()
    );
    let (s, r) = spec(home.path(), "boxside", &script);
    let running = start(s, r);
    // The box's own processes met; the host does not see the names at all...
    assert_eq!(running.before, "connected hello\n");
    assert!(!sock.exists() && !fifo.exists());
    // ...and through the upper directory the inodes are not the box's.
    let (up_sock, up_fifo) = (upper_path(home.path(), "boxside", &sock), upper_path(home.path(), "boxside", &fifo));
    assert!(up_sock.exists() && up_fifo.exists(), "{} {}", up_sock.display(), up_fifo.display());
    let e = UnixStream::connect(&up_sock).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::ECONNREFUSED), "{e}");
    // The box holds its FIFO open for reading and writing; a host writer still finds no reader.
    assert_eq!(host_probe(&["fifo-write", up_fifo.to_str().unwrap()]), "ENXIO\n");
    running.stop();
}

#[test]
fn message_queues_sysv_ipc_and_shm_are_split_both_ways() {
    let home = new_home();
    let (host_mq, box_mq) = (format!("/{}", unique("host-mq")), format!("/{}", unique("box-mq")));
    let (host_key, box_key) = (key(0), key(1));
    let (host_shm, box_shm) =
        (Path::new("/dev/shm").join(unique("host-shm")), Path::new("/dev/shm").join(unique("box-shm")));
    host_probe(&["mq-create", &host_mq]);
    host_probe(&["msg-create", &host_key]);
    std::fs::write(&host_shm, "host").unwrap();
    let script = format!(
        "set -e
         P mq-open {host_mq}; P msg-find {host_key}; test ! -e {host_shm}; ls -A /dev/mqueue | wc -l
         P mq-create {box_mq}; P msg-create {box_key}; echo box > {box_shm}
         P mq-open {box_mq}; P msg-find {box_key}; cat {box_shm}
         echo ready; exec sleep 30",
        host_shm = host_shm.display(),
        box_shm = box_shm.display()
    );
    let (s, r) = spec(home.path(), "sysv", &script);
    let running = start(s, r);
    // While the box (and its objects) live, the host does not see them.
    let host_view = (host_probe(&["mq-open", &box_mq]), host_probe(&["msg-find", &box_key]), box_shm.exists());
    let box_view = running.before.clone();
    running.stop();
    host_probe(&["mq-unlink", &host_mq]);
    host_probe(&["msg-remove", &host_key]);
    std::fs::remove_file(&host_shm).unwrap();
    assert_eq!(box_view, "ENOENT\nENOENT\n0\nfound\nfound\nbox\n");
    assert_eq!(host_view, ("ENOENT\n".into(), "ENOENT\n".into(), false));
}

#[test]
fn processes_of_one_box_meet() {
    let home = new_home();
    let script = "set -e
        P serve /tmp/s.sock; P connect /tmp/s.sock
        mkfifo /tmp/f; cat /tmp/f & echo via-fifo > /tmp/f; wait
        P mq-create /q; P mq-open /q
        P msg-create 4242; P msg-find 4242
        echo via-shm > /dev/shm/a; sh -c 'cat /dev/shm/a'";
    let (s, r) = spec(home.path(), "together", script);
    let (code, out) = run(s, r);
    assert_eq!((code, out.as_str()), (0, "connected hello\nvia-fifo\nfound\nfound\nvia-shm\n"));
}

/// Listens on `path`, answering each connection with `host says hi`.
fn host_server(path: &Path) -> UnixListener {
    let _ = std::fs::remove_file(path);
    let l = UnixListener::bind(path).unwrap();
    let server = l.try_clone().unwrap();
    std::thread::spawn(move || {
        for mut c in server.incoming().flatten() {
            let _ = c.write_all(b"host says hi");
        }
    });
    l
}

#[test]
fn an_allowed_host_socket_is_reachable() {
    let home = new_home();
    let run_sock = Path::new("/run").join(unique("allowed.sock"));
    let tmp_sock = Path::new("/tmp").join(unique("allowed.sock"));
    let other = Path::new("/tmp").join(unique("other.sock"));
    let _servers = [host_server(&run_sock), host_server(&tmp_sock), host_server(&other)];
    let script =
        format!("P connect {}; P connect {}; P connect {}", run_sock.display(), tmp_sock.display(), other.display());
    let (mut s, r) = spec(home.path(), "allowed", &script);
    s.host_sockets = vec![run_sock.clone(), tmp_sock.clone()];
    let (code, out) = run(s, r);
    assert_eq!((code, out.as_str()), (0, "connected host says hi\nconnected host says hi\nECONNREFUSED\n"));
    let inspect = std::fs::read_to_string(home.path().join("boxes/allowed/enforced.json")).unwrap();
    assert!(inspect.contains("host sockets (deliberate holes)"), "{inspect}");
    // Refused at launch: not a socket, relative, `..`, missing.
    for bad in ["/etc/hostname", "run/x.sock", "/run/../x.sock", "/run/hivebox-no-such.sock"] {
        let (mut s, _r) = spec(home.path(), "allowed", "true");
        s.host_sockets = vec![bad.into()];
        let e = hivebox_sandbox::spawn_boxed(&s).unwrap_err();
        assert!(matches!(e, hivebox_sandbox::SandboxError::Invalid(_)), "{bad}: {e}");
    }
    for p in [&run_sock, &tmp_sock, &other] {
        std::fs::remove_file(p).unwrap();
    }
}

#[test]
fn boxes_of_one_ipc_space_meet_and_others_do_not() {
    let home = new_home();
    let space = IpcSpace::new(&unique("team"), home.path()).unwrap();
    let k = key(2);
    let mq = format!("/{}", unique("team-mq"));
    let with_space = |name: &str, script: &str| {
        let (mut s, r) = spec(home.path(), name, script);
        s.ipc_space = Some(space.clone());
        (s, r)
    };
    let (s, r) = with_space(
        "a",
        &format!(
            "set -e; P serve /run/hivebox-ipc/a.sock; P msg-create {k}; P mq-create {mq}; echo shared > \
             /dev/shm/team; echo ready; exec sleep 30"
        ),
    );
    let a = start(s, r);
    let probe = format!(
        "P connect /run/hivebox-ipc/a.sock; P msg-find {k}; P mq-open {mq}; cat /dev/shm/team 2>/dev/null || echo \
         no-shm"
    );
    let (s, r) = with_space("b", &probe);
    let inside = run(s, r);
    let (s, r) = spec(home.path(), "c", &probe);
    let outside = run(s, r);
    let host = (host_probe(&["msg-find", &k]), host_probe(&["mq-open", &mq]));
    a.stop();
    // The namespace outlives the box that made it: a later box of the space finds the objects.
    let (s, r) = with_space("d", &format!("P msg-find {k}; P mq-open {mq}; cat /dev/shm/team"));
    let later = run(s, r);
    let inspect = std::fs::read_to_string(home.path().join("boxes/d/enforced.json")).unwrap();
    hivebox_sandbox::ipc::release_space(&space.dir).unwrap();
    assert_eq!(inside, (0, "connected hello\nfound\nfound\nshared\n".into()));
    assert_eq!(outside, (0, "ENOENT\nENOENT\nENOENT\nno-shm\n".into()));
    assert_eq!(host, ("ENOENT\n".into(), "ENOENT\n".into()));
    assert_eq!(later, (0, "found\nfound\nshared\n".into()));
    assert!(inspect.contains("IPC space") && inspect.contains(&space.name), "{inspect}");
    assert!(!space.dir.exists());
}
