//! Process creation for the launcher: `fork`, `unshare` of namespaces, the signal mask the
//! supervisors wait on, `execve` and `_exit`. Everything else the launcher does goes through
//! rustix's safe API.

use std::ffi::CStr;
use std::io;

/// What `fork` returned to this process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forked {
    /// This is the parent; the child has this pid.
    Parent(i32),
    /// This is the child.
    Child,
}

/// `fork(2)` through the C library, so that its `atfork` handlers keep `malloc` usable in the
/// child even if other threads held its locks. The child must not touch other locks a thread
/// of the parent may have held (Rust's stdout/stderr and environment locks): the launcher
/// prepares every string it needs before forking.
pub fn fork() -> io::Result<Forked> {
    // SAFETY: fork has no memory-safety preconditions; the child's restrictions (no locks held
    // by other threads of the parent) are the caller's, as documented above.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p)),
    }
}

/// `clone3(CLONE_INTO_CGROUP)`: as [`fork`], the child born in the cgroup v2 directory
/// `cgroup`. Only for a process with a single thread: the C library's fork handlers do not
/// run, which is safe only when no other thread can hold one of its locks
/// ([`single_threaded`]).
pub fn fork_into(cgroup: std::os::fd::BorrowedFd<'_>) -> io::Result<Forked> {
    use std::os::fd::AsRawFd;
    if !single_threaded() {
        return Err(io::Error::other("clone3 into a cgroup needs a single-threaded launcher"));
    }
    /// `struct clone_args` (version 2, with the cgroup field).
    #[repr(C)]
    #[derive(Default)]
    struct CloneArgs {
        flags: u64,
        pidfd: u64,
        child_tid: u64,
        parent_tid: u64,
        exit_signal: u64,
        stack: u64,
        stack_size: u64,
        tls: u64,
        set_tid: u64,
        set_tid_size: u64,
        cgroup: u64,
    }
    const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
    let mut args = CloneArgs {
        flags: CLONE_INTO_CGROUP,
        exit_signal: libc::SIGCHLD as u64,
        cgroup: cgroup.as_raw_fd() as u64,
        ..CloneArgs::default()
    };
    // SAFETY: `args` is a valid clone_args of the size passed. Without CLONE_VM the child gets
    // a copy of this address space and continues on its own copy of the stack, as after
    // fork; the caller is single-threaded (checked above), so no lock of another thread is
    // copied held.
    let pid = unsafe { libc::syscall(libc::SYS_clone3, &mut args as *mut CloneArgs, std::mem::size_of::<CloneArgs>()) };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Forked::Child),
        p => Ok(Forked::Parent(p as i32)),
    }
}

/// Whether this process has a single thread (`Threads:` of `/proc/self/status`).
pub fn single_threaded() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("Threads:")).and_then(|n| n.trim().parse::<u32>().ok()))
        == Some(1)
}

/// `unshare(2)` of the given `CLONE_NEW*` flags for the calling (single-threaded) process.
pub fn unshare(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    // SAFETY: rustix marks unshare unsafe because unsharing CLONE_FILES/CLONE_FS/CLONE_VM under
    // other threads breaks Rust's assumptions about shared state. The launcher only calls it in
    // a freshly forked, single-threaded child, and only with namespace flags.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(io::Error::from)
}

/// The signals the supervisors handle synchronously (`SIGCHLD`, and `SIGTERM`/`SIGHUP` to
/// forward; `SIGINT`/`SIGQUIT` from a terminal are left to the command).
fn supervised_set() -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise and fill the set we own; a zeroed sigset_t is a
    // valid argument to sigemptyset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Blocks the supervised signals in the calling thread (they stay pending for
/// [`wait_signal`]; the mask is inherited by `fork`).
pub fn block_supervised_signals() -> io::Result<()> {
    let set = supervised_set();
    // SAFETY: `set` is an initialised sigset_t; the old mask is not wanted (null).
    let r = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
}

/// Unblocks every signal and resets the supervised ones to their default action (before
/// `execve`, which keeps the mask).
pub fn reset_signals() -> io::Result<()> {
    // SAFETY: a zeroed then emptied sigset_t is valid; SIG_DFL is a valid disposition for
    // these catchable signals.
    unsafe {
        for s in [libc::SIGCHLD, libc::SIGTERM, libc::SIGHUP, libc::SIGINT, libc::SIGQUIT, libc::SIGPIPE] {
            libc::signal(s, libc::SIG_DFL);
        }
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        let r = libc::pthread_sigmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
        if r == 0 { Ok(()) } else { Err(io::Error::from_raw_os_error(r)) }
    }
}

/// Waits for one of the blocked supervised signals and returns its number.
pub fn wait_signal() -> io::Result<i32> {
    let set = supervised_set();
    loop {
        // SAFETY: `set` is initialised; a null siginfo pointer is allowed.
        let r = unsafe { libc::sigwaitinfo(&set, std::ptr::null_mut()) };
        if r >= 0 {
            return Ok(r);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// `execve(path, argv, envp)`; returns only on failure.
pub fn execve(path: &CStr, argv: &[*const libc::c_char], envp: &[*const libc::c_char]) -> io::Error {
    // The arrays must end with a null pointer; check rather than trust.
    if argv.last().is_none_or(|p| !p.is_null()) || envp.last().is_none_or(|p| !p.is_null()) {
        return io::Error::from_raw_os_error(libc::EINVAL);
    }
    // SAFETY: `path` is a valid C string; `argv` and `envp` are null-terminated arrays (checked
    // above) whose other entries point to C strings the caller keeps alive across the call.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    io::Error::last_os_error()
}

/// Closes descriptors a forked child inherited and must not keep (the BPF links of other
/// boxes' protection). Only for a forked child that ends with [`exit_now`]: the parent's
/// owners of these descriptors, copied into the child, are then never used or dropped.
pub fn close_in_child(fds: &[i32]) {
    for &fd in fds {
        // SAFETY: close only changes this process's descriptor table; per this function's
        // contract nothing in this process uses or closes these descriptors again.
        unsafe { libc::close(fd) };
    }
}

/// `_exit(code)`: ends a forked child without running the parent's atexit handlers or
/// flushing buffers it shares with the parent.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

/// `setns(fd, CLONE_NEWIPC)`: moves the calling (single-threaded) process into the IPC
/// namespace `fd` refers to (a `/proc/PID/ns/ipc` link or a bind mount of one), so that an
/// IPC space outlives the box that made it.
pub fn join_ipc_namespace(fd: std::os::fd::BorrowedFd<'_>) -> io::Result<()> {
    // rustix's setns is a safe call: it checks nothing a caller must uphold beyond `fd` being
    // a live descriptor, which `BorrowedFd` guarantees; the kernel refuses a non-IPC
    // namespace (the type is given).
    rustix::thread::move_into_link_name_space(fd, Some(rustix::thread::LinkNameSpaceType::InterProcessCommunication))
        .map_err(io::Error::from)
}

/// `dup3(fd, target, O_CLOEXEC)`: a close-on-exec copy of `fd` at descriptor number `target`
/// (whatever was open there is closed). Makes no allocation.
pub fn dup_to(fd: std::os::fd::BorrowedFd<'_>, target: i32) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    if fd.as_raw_fd() == target {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    // SAFETY: dup3 only manipulates the descriptor table; `fd` is live (borrowed), and the
    // caller gives up whatever `target` held (the launcher's children own no descriptor at
    // that number that Rust code still uses).
    let r = unsafe { libc::dup3(fd.as_raw_fd(), target, libc::O_CLOEXEC) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: dup3 succeeded, so `r` is an open descriptor now owned by nothing else.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(r) })
}
