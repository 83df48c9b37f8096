//! Running [`Prepared::apply`](crate::confine::Prepared::apply) in a `std::process::Command`
//! child between `fork` and `exec`.

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
