//! Processes: a confined program must not signal, trace, read, write or steal descriptors from
//! host processes, reach host abstract sockets, or use the escape-prone system calls; processes
//! inside one confined tree still work together.
//!
//! Each attempt is made by `probe.py` (Python's ctypes makes the raw calls) in a child confined
//! with `confine::prepare` + `sys::pre_exec::spawn_confined`, against the test process itself or
//! a `sleep` it started outside the sandbox. These tests need no PID namespace (the launcher adds
//! one): they check the Landlock and seccomp layers on their own, with host pids visible.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};

use hivebox_sandbox::confine::{ConfineOptions, Prepared, prepare};
use hivebox_sandbox::sys::pre_exec::spawn_confined;

const EPERM: i32 = libc::EPERM;
const EACCES: i32 = libc::EACCES;
const ENOSYS: i32 = libc::ENOSYS;

pub(crate) const PROBE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/escape/probe.py");

fn prepared() -> Arc<Prepared> {
    static PREPARED: OnceLock<Arc<Prepared>> = OnceLock::new();
    PREPARED
        .get_or_init(|| {
            Arc::new(
                prepare(&ConfineOptions::default())
                    .expect("confinement must be fully enforceable here (Landlock ABI >= 6, seccomp)"),
            )
        })
        .clone()
}

/// Runs `cmd` confined, returning its stdout; a non-zero exit fails the test.
fn run_confined(cmd: &mut Command) -> String {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = spawn_confined(cmd, prepared()).expect("spawning a confined child");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{cmd:?} failed: {}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The errno a confined probe attempt ended with (0: the attempt worked).
fn attempt(what: &str, args: &[&str]) -> i32 {
    let out = run_confined(Command::new("/usr/bin/python3").arg(PROBE).arg(what).args(args));
    out.parse().unwrap_or_else(|_| panic!("probe {what} printed {out:?}"))
}

/// A host process outside the sandbox, killed when dropped.
struct HostSleep(Child);

impl HostSleep {
    fn start() -> Self {
        HostSleep(Command::new("sleep").arg("600").spawn().expect("spawning sleep"))
    }
    fn pid(&self) -> String {
        self.0.id().to_string()
    }
    /// Still running: the attempt did not kill it.
    fn assert_alive(&mut self) {
        assert!(self.0.try_wait().unwrap().is_none(), "the host process died");
    }
}

impl Drop for HostSleep {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn this_process() -> String {
    std::process::id().to_string()
}

#[test]
fn confined_programs_still_run() {
    run_confined(&mut Command::new("/bin/true"));
    run_confined(Command::new("/usr/bin/python3").args(["-c", "pass"]));
    assert_eq!(attempt("fork", &[]), 0, "fork (clone without namespace flags)");
    assert_eq!(attempt("thread", &[]), 0, "threads (clone3 falls back to clone)");
}

#[test]
fn the_confined_process_has_no_capabilities_and_no_new_privs() {
    let status = run_confined(Command::new("/usr/bin/python3").args([PROBE, "status"]));
    for key in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        let line = status.lines().find(|l| l.starts_with(key)).expect(key);
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    assert!(status.contains("Seccomp:\t2"), "{status}");
}

#[test]
fn signals_to_host_processes_are_refused() {
    let mut sleep = HostSleep::start();
    for what in ["kill", "kill0", "pidfd_send_signal"] {
        assert_eq!(attempt(what, &[&sleep.pid()]), EPERM, "{what} toward a host process");
        sleep.assert_alive();
    }
    assert_eq!(attempt("kill0", &[&this_process()]), EPERM, "kill toward the test process");
}

#[test]
fn tracing_and_memory_access_to_host_processes_are_refused() {
    let mut sleep = HostSleep::start();
    for target in [sleep.pid(), this_process()] {
        for what in ["ptrace_attach", "ptrace_seize", "process_vm_readv", "process_vm_writev", "pidfd_getfd", "kcmp"] {
            assert_eq!(attempt(what, &[&target]), EPERM, "{what} toward {target}");
        }
        assert_eq!(attempt("proc_mem", &[&target]), EACCES, "/proc/{target}/mem");
    }
    sleep.assert_alive();
}

#[test]
fn a_host_abstract_socket_is_unreachable() {
    let name = format!("hivebox-escape-test-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _listener = UnixListener::bind_addr(&addr).expect("binding a host abstract socket");
    // The same socket is reachable from the host: the refusal is the sandbox's doing.
    std::os::unix::net::UnixStream::connect_addr(&addr).expect("host connect");
    assert_eq!(attempt("abstract_connect", &[&name]), EPERM);
}

#[test]
fn processes_in_one_box_signal_each_other_and_share_abstract_sockets() {
    assert_eq!(attempt("in_box", &[]), 0);
}

#[test]
fn kernel_attack_surface_calls_are_refused() {
    for what in ["io_uring_setup", "bpf", "perf_event_open", "keyctl", "add_key", "userfaultfd"] {
        assert_eq!(attempt(what, &[]), EPERM, "{what}");
    }
}

#[test]
fn new_namespaces_and_mounts_are_refused() {
    for what in ["unshare_user", "unshare_mount", "clone_newuser", "mount_tmpfs", "mount_bind_root"] {
        assert_eq!(attempt(what, &[]), EPERM, "{what}");
    }
    assert_eq!(attempt("setns", &[]), EPERM, "setns (into the box's own mount namespace)");
    // A host process's namespaces cannot even be opened: Landlock's ptrace check.
    let sleep = HostSleep::start();
    assert_eq!(attempt("open_ns", &[&sleep.pid()]), EACCES, "opening a host mount namespace");
    assert_eq!(attempt("clone3", &[]), ENOSYS, "clone3");
}

#[test]
fn file_handles_are_refused() {
    assert_eq!(attempt("open_by_handle_at", &[]), EPERM);
}

#[test]
fn terminal_injection_is_refused() {
    for what in ["tiocsti", "tiocsti_high_bits", "tioclinux"] {
        assert_eq!(attempt(what, &[]), EPERM, "{what}");
    }
}
