//! Work in a `std::process::Command` child between `fork` and `exec`: running
//! [`Prepared::apply`](crate::confine::Prepared::apply), keeping a descriptor open.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::Arc;

use crate::confine::Prepared;

/// Makes every child `cmd` spawns apply `prepared` just before `exec`. A failure makes the
/// spawn fail with the failed step's errno.
pub fn confine_command(cmd: &mut Command, prepared: Arc<Prepared>) -> &mut Command {
    let hook = move || prepared.apply().map_err(io::Error::from);
    // SAFETY: the hook runs in the child after `fork`, where only async-signal-safe work is
    // sound if the parent had other threads. `Prepared::apply` makes system calls only (prctl,
    // capget/capset, fcntl(F_DUPFD_CLOEXEC), landlock_restrict_self, seccomp, close): it takes
    // no locks and does not allocate, since everything it needs was built by `prepare` before
    // the fork; its error is a `Copy` value turned into an errno-only `io::Error`, which does
    // not allocate either. The `Arc` is only borrowed in the child.
    unsafe { cmd.pre_exec(hook) }
}

/// Spawns `cmd` confined by `prepared` (see [`confine_command`]).
pub fn spawn_confined(cmd: &mut Command, prepared: Arc<Prepared>) -> io::Result<Child> {
    confine_command(cmd, prepared).spawn()
}

/// Makes `cmd`'s child keep `fd` open across `exec`, at the same number (the parent's copy stays
/// close-on-exec, so no other child inherits it). `fd` must stay open until the child is
/// spawned.
pub fn keep_fd<'a>(cmd: &'a mut Command, fd: std::os::fd::BorrowedFd<'_>) -> &'a mut Command {
    use std::os::fd::AsRawFd;
    let raw = fd.as_raw_fd();
    let hook = move || {
        // SAFETY: runs in the child between fork and exec: fcntl is an async-signal-safe system
        // call, and nothing here allocates or takes a lock. `raw` is open in the child, whose
        // descriptor table is a copy of the parent's.
        if unsafe { libc::fcntl(raw, libc::F_SETFD, 0) } < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    };
    // SAFETY: the hook only makes an async-signal-safe system call (see above).
    unsafe { cmd.pre_exec(hook) }
}
