//! Protection from the host (`deny-host-access`): a host process running as root cannot
//! signal, trace, read or write the memory of, or take descriptors from a boxed process, while
//! the box's processes still signal each other, the launcher still forwards signals to the
//! box, and `/proc/PID/exe` stays readable. Without the option the same host `kill` works, so
//! the option is what refuses it.
//!
//! Where the kernel refuses BPF LSM programs outright (as the machines this project is built on
//! do: every trampoline-attached program type is refused with `EPERM` before verification), a
//! protected box must not start: the tests then check that refusal, loud, naming the kernel's
//! answer, with nothing run in the box; a refusal by the verifier (a fault of the programs) fails
//! them. The decision code itself is checked in the kernel by `hostaccess`'s unit test
//! `the_decision_runs_in_the_kernel`, on a tracepoint this kernel does accept.
//!
//! The attempts are `probe.py` (as in `processes.rs`), run on the host: unconfined, as root,
//! outside the box's cgroup, in a process of their own (the test process is the launcher,
//! which the protection exempts). Each box runs in a cgroup the test makes under the cgroup v2
//! root and removes at the end.

use std::io::{BufRead, BufReader, Read};
use std::process::Command;
use std::sync::Arc;

use hivebox_sandbox::{BoxSpec, BoxedChild};

use crate::common::TestCgroup;
use crate::processes::PROBE;

/// A box running `script` (`/bin/sh -c`) in `cgroup`, started and read up to its line
/// `ready`.
struct Running {
    child: BoxedChild,
    out: BufReader<std::io::PipeReader>,
    _home: tempfile::TempDir,
}

/// Starts the box; `None` when the protection was asked for and this kernel refuses BPF LSM
/// programs before verifying them, after checking that the refusal says so and that nothing
/// ran in the box.
fn try_start(cgroup: &TestCgroup, deny_host_access: bool, script: &str) -> Option<Running> {
    let home = tempfile::Builder::new().prefix("hivebox-escape-").tempdir_in("/var/tmp").unwrap();
    let dir = home.path().join("boxes").join("protected");
    std::fs::create_dir_all(&dir).unwrap();
    // A marker written through to the host: if the command ran, the host sees it.
    let outside = tempfile::Builder::new().prefix("hivebox-escape-marker-").tempdir_in("/var/tmp").unwrap();
    let marker = outside.path().join("ran");
    let script = format!("touch {}; {script}", marker.display());
    let mut spec = BoxSpec::new("protected", &dir, vec!["/bin/sh".into(), "-c".into(), script.into()]);
    spec.hide = vec![home.path().to_owned()];
    spec.paths.open = vec![outside.path().to_owned()];
    spec.cgroup = Some(cgroup.0.clone());
    spec.deny_host_access = deny_host_access;
    let (reader, writer) = std::io::pipe().unwrap();
    spec.output = Some(Arc::new(writer.into()));
    let child = match hivebox_sandbox::spawn_boxed(&spec) {
        Ok(child) => child,
        Err(hivebox_sandbox::SandboxError::HostAccess(e)) if deny_host_access => {
            use hivebox_sandbox::hostaccess::HostAccessError;
            let refused_by_policy = match &e {
                HostAccessError::Load { errno, log, capable, .. } => {
                    errno.raw_os_error() == Some(libc::EPERM) && log.is_empty() && *capable
                }
                HostAccessError::LsmInactive { .. } => true,
                _ => false,
            };
            assert!(refused_by_policy, "the protection failed for a reason of its own, not the kernel's policy: {e}");
            let message = hivebox_sandbox::SandboxError::HostAccess(e).to_string();
            assert!(message.contains("cannot protect the box from the host"), "{message}");
            drop(spec);
            assert!(!marker.exists(), "the box's command ran although its protection failed");
            assert!(cgroup.pids("sh").is_empty(), "a process of the box runs although its protection failed");
            eprintln!("this kernel does not enforce deny-host-access, and the box did not start: {message}");
            return None;
        }
        Err(e) => panic!("the box starts: {e}"),
    };
    if deny_host_access {
        let (_, what) = child.enforced().mechanisms.iter().find(|(m, _)| m == "protection from the host").unwrap();
        assert!(what.contains(&cgroup.0.display().to_string()), "{what}");
    }
    drop(spec);
    let mut out = BufReader::new(reader);
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n", "the box's first line");
    Some(Running { child, out, _home: home })
}

impl Running {
    /// Waits for the box: its exit code and the rest of its output.
    fn finish(mut self) -> (i32, String) {
        let mut rest = String::new();
        self.out.read_to_string(&mut rest).unwrap();
        (self.child.wait().unwrap().code().unwrap_or(-1), rest)
    }
}

/// The errno a host process (not the launcher) ends `what` toward `pid` with (0: it worked).
fn host_attempt(what: &str, pid: u32) -> i32 {
    let out = Command::new("/usr/bin/python3").arg(PROBE).arg(what).arg(pid.to_string()).output().unwrap();
    assert!(out.status.success(), "probe {what}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    text.trim().parse().unwrap_or_else(|_| panic!("probe {what} printed {text:?}"))
}

/// `pid` is alive and not a zombie.
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit_once(") ").is_some_and(|(_, rest)| !rest.starts_with('Z')))
}

fn signal(pid: u32, sig: rustix::process::Signal) {
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), sig).unwrap();
}

/// A shell with a child `sleep`; on `SIGUSR1` (from the launcher) it kills its child, reports
/// how the child ended and exits.
const SHELL_WITH_CHILD: &str =
    "sleep 600 & c=$!; trap 'kill -TERM $c; wait $c; echo child $?; exit 0' USR1; echo ready; wait $c";

#[test]
fn host_processes_cannot_touch_a_protected_box() {
    let cgroup = TestCgroup::new("touch");
    let Some(running) = try_start(&cgroup, true, SHELL_WITH_CHILD) else { return };
    let (sleep, shell) = (cgroup.pid("sleep"), cgroup.pid("sh"));
    for target in [shell, sleep] {
        for what in
            ["kill", "pidfd_send_signal", "ptrace_attach", "ptrace_seize", "process_vm_readv", "process_vm_writev"]
        {
            assert_eq!(host_attempt(what, target), libc::EPERM, "{what} toward boxed process {target}");
        }
        assert_eq!(host_attempt("pidfd_getfd", target), libc::EPERM, "pidfd_getfd toward {target}");
        assert_eq!(host_attempt("proc_mem", target), libc::EACCES, "/proc/{target}/mem");
        assert!(alive(target), "boxed process {target} survived");
    }
    // Left open: asking whether a process exists, and read-mode access (what the daemon uses
    // to identify a boxed caller, and what ps reads).
    assert_eq!(host_attempt("kill0", shell), 0, "kill(pid, 0)");
    let exe = Command::new("readlink").arg(format!("/proc/{shell}/exe")).output().unwrap();
    assert!(exe.status.success() && !exe.stdout.is_empty(), "/proc/{shell}/exe from the host: {exe:?}");
    // The box's processes still signal each other: the shell ends its child on the launcher's
    // word.
    signal(shell, rustix::process::Signal::USR1);
    let (code, rest) = running.finish();
    // (The shell may also report its job as "Terminated" first.)
    assert!(code == 0 && rest.ends_with("child 143\n"), "the boxed shell signalled its own child: {code} {rest:?}");
}

#[test]
fn the_launcher_still_forwards_signals_and_the_protection_ends_with_the_box() {
    let cgroup = TestCgroup::new("forward");
    let Some(running) = try_start(&cgroup, true, "echo ready; exec sleep 600") else { return };
    let keeper = running.child.pid();
    let sleep = cgroup.pid("sleep");
    assert_eq!(host_attempt("kill", keeper), libc::EPERM, "a host kill of the box's keeper");
    assert!(alive(keeper) && alive(sleep));
    signal(keeper, rustix::process::Signal::TERM);
    let (code, _) = running.finish();
    assert_eq!(code, 128 + libc::SIGTERM, "SIGTERM to the keeper reaches the command");
    // The box is gone, and so is its protection: a process that joins the same cgroup now is
    // the host's to kill.
    let mut late = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("echo 0 > {}/cgroup.procs && exec sleep 600", cgroup.0.display()))
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(host_attempt("kill", late.id()), 0, "a host kill once the box has ended");
    let _ = late.kill();
    let _ = late.wait();
}

#[test]
fn without_the_option_the_host_can_kill_a_boxed_process() {
    let cgroup = TestCgroup::new("control");
    let running = try_start(&cgroup, false, "echo ready; exec sleep 600").expect("an unprotected box starts");
    assert!(!running.child.enforced().mechanisms.iter().any(|(m, _)| m == "protection from the host"));
    let sleep = cgroup.pid("sleep");
    assert_eq!(host_attempt("kill", sleep), 0, "a host kill of an unprotected boxed process");
    let (code, _) = running.finish();
    assert_eq!(code, 128 + libc::SIGTERM, "the host's SIGTERM ended the command");
}
