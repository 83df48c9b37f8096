//! Network: each box has its own network namespace. The host's loopback services and abstract
//! unix sockets are unreachable from a box (and the box's abstract sockets from the host), in
//! every mode; `none` reaches nothing but the box's own loopback; `full` reaches the outside
//! through pasta; processes of one box talk over the box's 127.0.0.1.

use crate::common::host_address;
use hivebox_sandbox::BoxSpec;
use hivebox_sandbox::net::NetworkMode;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Python helpers the box scripts use: `tcp(host, port)` prints the connect's errno (0: it
/// worked, after sending `hello`), `abstract(name)` the same for an abstract unix socket.
const HELPERS: &str = r#"
import os, socket, sys, time
def tcp(host, port):
    fam = socket.AF_INET6 if ':' in host else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect((host, port)); s.sendall(b'hello'); print(0)
    except socket.timeout:
        print('timeout')
    except OSError as e:
        print(e.errno)
    s.close()
def abstract(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect('\0' + name); print(0)
    except OSError as e:
        print(e.errno)
    s.close()
sys.stdout.reconfigure(line_buffering=True)
"#;

/// A started box running a Python script; its output is read line by line.
struct Boxed {
    _home: tempfile::TempDir,
    child: Option<hivebox_sandbox::BoxedChild>,
    out: BufReader<std::io::PipeReader>,
}

impl Boxed {
    fn start(mode: NetworkMode, script: &str) -> Self {
        assert!(rustix::process::geteuid().is_root(), "the escape tests need root (CI runs them as root)");
        let home = tempfile::Builder::new().prefix("hivebox-escape-").tempdir_in("/var/tmp").unwrap();
        let dir: PathBuf = home.path().join("boxes").join("net");
        std::fs::create_dir_all(&dir).unwrap();
        let code = format!("{HELPERS}\n{script}");
        let mut spec = BoxSpec::new("net", &dir, vec!["/usr/bin/python3".into(), "-c".into(), code.into()]);
        spec.hide = vec![home.path().to_owned()];
        spec.network = mode;
        let (reader, writer) = std::io::pipe().unwrap();
        spec.output = Some(Arc::new(writer.into()));
        let child = hivebox_sandbox::spawn_boxed(&spec).expect("the box starts");
        drop(spec);
        Boxed { _home: home, child: Some(child), out: BufReader::new(reader) }
    }

    fn line(&mut self) -> String {
        let mut l = String::new();
        self.out.read_line(&mut l).unwrap();
        l.trim().to_owned()
    }

    /// The rest of the output, once the box's command has exited 0.
    fn finish(mut self) -> String {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        let status = self.child.take().unwrap().wait().unwrap();
        assert!(status.success(), "the box's script failed ({status}): {rest}");
        rest
    }
}

/// Runs `script` in a box and returns its output.
fn run(mode: NetworkMode, script: &str) -> String {
    Boxed::start(mode, script).finish()
}

/// A host listener that must never see a connection from a box.
fn untouched(listener: &TcpListener) {
    listener.set_nonblocking(true).unwrap();
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        other => panic!("the host's loopback service was reached from the box: {other:?}"),
    }
}

#[test]
fn host_loopback_services_are_unreachable_in_every_mode() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (gw4, gw6) = (hivebox_sandbox::net::BOX_IPV4.1, hivebox_sandbox::net::BOX_IPV6.1);
    for mode in [NetworkMode::None, NetworkMode::Full] {
        let out = run(mode, &format!("tcp('127.0.0.1', {port})\ntcp('::1', {port})"));
        let lines: Vec<&str> = out.lines().collect();
        // The box's own loopback has no such listener.
        assert_eq!(lines, vec![libc::ECONNREFUSED.to_string(); 2], "{mode:?}: {out}");
        if mode == NetworkMode::Full {
            // Nor does pasta's gateway lead to the host's loopback (whatever answers there, it
            // is not the host's listener).
            run(mode, &format!("tcp('{gw4}', {port})\ntcp('{gw6}', {port})"));
        }
        untouched(&listener);
    }
}

#[test]
fn host_abstract_sockets_are_unreachable_and_box_ones_too() {
    let name = format!("hivebox-escape-net-{}", std::process::id());
    let host = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    for mode in [NetworkMode::None, NetworkMode::Full] {
        let out = run(mode, &format!("abstract('{name}')"));
        assert_eq!(out.trim(), libc::ECONNREFUSED.to_string(), "{mode:?}");
    }
    drop(host);
    // The other way: a socket the box makes cannot be reached from the host, while the box
    // itself reaches it.
    let inner = format!("{name}-inner");
    let mut b = Boxed::start(
        NetworkMode::None,
        &format!(
            "l = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)\nl.bind('\\0{inner}'); l.listen()\n\
             abstract('{inner}')\nprint('bound')\ntime.sleep(1.5)"
        ),
    );
    assert_eq!(b.line(), "0", "the box reaches its own abstract socket");
    assert_eq!(b.line(), "bound");
    let err = UnixStream::connect_addr(&SocketAddr::from_abstract_name(inner.as_bytes()).unwrap())
        .expect_err("the host reached an abstract socket made in the box");
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
    b.finish();
}

#[test]
fn none_reaches_nothing_but_its_loopback() {
    let target = host_address();
    let out = run(NetworkMode::None, &format!("tcp('{target}', 9)\ntcp('10.1.2.3', 80)"));
    assert_eq!(out.lines().collect::<Vec<_>>(), vec![libc::ENETUNREACH.to_string(); 2], "{out}");
}

#[test]
fn full_reaches_the_hosts_outside_address() {
    let addr = host_address();
    let listener = TcpListener::bind((addr, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let waiter = std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut got = Vec::new();
        let _ = s.read_to_end(&mut got);
        got
    });
    let out = run(NetworkMode::Full, &format!("tcp('{addr}', {port})"));
    assert_eq!(out.trim(), "0", "full: connecting to {addr}:{port}");
    assert_eq!(waiter.join().unwrap(), b"hello");
}

#[test]
fn two_processes_of_one_box_talk_over_its_loopback() {
    for mode in [NetworkMode::None, NetworkMode::Full] {
        let out = run(
            mode,
            "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\nport = l.getsockname()[1]\n\
             if os.fork() == 0:\n    socket.create_connection(('127.0.0.1', port)).sendall(b'hello'); os._exit(0)\n\
             c, _ = l.accept(); got = c.recv(5).decode(); print(got, os.wait()[1])",
        );
        assert_eq!(out.trim(), "hello 0", "{mode:?}: {out}");
    }
}
