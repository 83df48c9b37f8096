//! Who is calling, from kernel facts only: `SO_PEERCRED` (pid, uid, gid at `connect`),
//! `SO_PEERPIDFD` (the process itself, pinned, so a reused pid cannot stand in for it), its
//! executable (`/proc/PID/exe`) and its cgroup (`.../hivebox/<box>` means boxed). The facts are
//! read through `/proc/PID` and then the pidfd is checked: if the process is still the live one
//! the pidfd pins, the facts were its own.

use crate::sys;
use hivebox_core::{Caller, ProcessInfo, Token};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;

/// A client process, as the kernel describes it.
#[derive(Debug)]
pub struct Peer {
    /// Process id (in the daemon's pid namespace).
    pub pid: u32,
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
    /// Executable path.
    pub image: String,
    /// The box it runs in (its cgroup).
    pub box_name: Option<String>,
    /// The pinned process (`None` for the daemon's own process).
    pub pidfd: Option<OwnedFd>,
}

impl Peer {
    /// The registry caller this peer is: a user-mode caller with its uid's SID.
    pub fn caller(&self) -> Caller {
        let process = ProcessInfo {
            pid: self.pid,
            image: self.image.clone(),
            box_name: self.box_name.clone(),
            uid: Some(self.uid),
            ..ProcessInfo::default()
        };
        Caller::user(Token { user_sid: self.sid(), system: false }, process)
    }

    /// Its SID: `S-1-22-1-<uid>`.
    pub fn sid(&self) -> String {
        hivebox_core::path::unix_user_sid(self.uid)
    }
}

/// Identifies the process at the other end of `stream`.
pub fn peer(stream: &UnixStream) -> io::Result<Peer> {
    let cred = rustix::net::sockopt::socket_peercred(stream)?;
    let pid = cred.pid.as_raw_nonzero().get() as u32;
    let pidfd = sys::peer_pidfd(stream.as_fd())?;
    let pinned = pid_of_pidfd(&pidfd)?;
    if pinned != Some(pid) {
        return Err(io::Error::other(format!("process {pid} exited before it could be identified")));
    }
    let (image, box_name) = facts(pid)?;
    if exited(&pidfd)? {
        return Err(io::Error::other(format!("process {pid} exited before it could be identified")));
    }
    Ok(Peer { pid, uid: cred.uid.as_raw(), gid: cred.gid.as_raw(), image, box_name, pidfd: Some(pidfd) })
}

/// This process.
pub fn this_process() -> io::Result<Peer> {
    let pid = std::process::id();
    let (image, box_name) = facts(pid)?;
    Ok(Peer {
        pid,
        uid: rustix::process::geteuid().as_raw(),
        gid: rustix::process::getegid().as_raw(),
        image,
        box_name,
        pidfd: None,
    })
}

/// The executable and box of a live process.
fn facts(pid: u32) -> io::Result<(String, Option<String>)> {
    let proc = format!("/proc/{pid}");
    // A kernel thread or a zombie has no executable; that is not a process that can call.
    let image = std::fs::read_link(format!("{proc}/exe"))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read the executable of process {pid}: {e}")))?
        .display()
        .to_string();
    let cgroup = std::fs::read_to_string(format!("{proc}/cgroup"))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot read the cgroup of process {pid}: {e}")))?;
    Ok((image, box_of_cgroup(&cgroup)))
}

/// The strictest seccomp mode of a live process's threads (`Seccomp:` in each
/// `/proc/PID/task/TID/status`; filters are per thread): 0 only if no thread is filtered.
pub fn seccomp_mode(pid: u32) -> io::Result<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .map_err(|e| io::Error::new(e.kind(), format!("cannot list the threads of process {pid}: {e}")))?;
    let mut mode = 0;
    for task in tasks {
        let path = task?.path().join("status");
        let status = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            // A thread that ended meanwhile.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io::Error::new(e.kind(), format!("cannot read {}: {e}", path.display()))),
        };
        let m: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("Seccomp:"))
            .and_then(|v| v.trim().parse().ok())
            .ok_or_else(|| io::Error::other(format!("{} has no Seccomp line", path.display())))?;
        mode = mode.max(m);
    }
    Ok(mode)
}

/// The pid a pidfd refers to (`Pid:` in its fdinfo); `None` once the process has exited.
fn pid_of_pidfd(pidfd: &OwnedFd) -> io::Result<Option<u32>> {
    use std::os::fd::AsRawFd;
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", pidfd.as_raw_fd()))?;
    let pid = info.lines().find_map(|l| l.strip_prefix("Pid:")).map(|p| p.trim().parse::<i64>());
    match pid {
        Some(Ok(p)) if p > 0 => Ok(Some(p as u32)),
        Some(Ok(_)) => Ok(None),
        _ => Err(io::Error::other("the pidfd's fdinfo has no Pid line")),
    }
}

/// Whether the pinned process has exited (a pidfd polls readable then).
pub fn exited(pidfd: &OwnedFd) -> io::Result<bool> {
    use rustix::event::{PollFd, PollFlags, poll};
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    let n = poll(&mut fds, Some(&zero))?;
    Ok(n > 0)
}

/// The box a process is in, from its `/proc/PID/cgroup`: a cgroup v2 (unified hierarchy,
/// the `0::` line) `.../hivebox/<box>[/...]`. Only root can create or join such a cgroup.
pub fn box_of_cgroup(cgroup: &str) -> Option<String> {
    cgroup.lines().find_map(|line| {
        let path = line.strip_prefix("0::")?;
        let mut parts = path.split('/').skip_while(|c| *c != "hivebox");
        parts.next()?;
        parts.next().filter(|b| !b.is_empty()).map(str::to_owned)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn box_comes_from_a_hivebox_cgroup() {
        assert_eq!(box_of_cgroup("0::/hivebox/trial\n"), Some("trial".into()));
        assert_eq!(box_of_cgroup("0::/hivebox/trial/sub\n"), Some("trial".into()));
        assert_eq!(box_of_cgroup("0::/user.slice/session-1.scope\n"), None);
        assert_eq!(box_of_cgroup("0::/hivebox\n"), None);
        assert_eq!(box_of_cgroup("0::/hivebox/\n"), None);
        // Only the unified hierarchy counts.
        assert_eq!(box_of_cgroup("4:memory:/hivebox/trial\n0::/\n"), None);
    }

    #[test]
    fn a_socket_peer_is_this_process() {
        let (a, _b) = UnixStream::pair().unwrap();
        let p = peer(&a).unwrap();
        assert_eq!(p.pid, std::process::id());
        assert_eq!(p.image, std::fs::read_link("/proc/self/exe").unwrap().display().to_string());
    }

    #[test]
    fn an_exited_process_is_not_identified() {
        let (a, b) = UnixStream::pair().unwrap();
        let child = std::process::Command::new("/bin/true").spawn().unwrap();
        let pid = child.id();
        let pidfd = rustix::process::pidfd_open(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::PidfdFlags::empty(),
        )
        .unwrap();
        let mut child = child;
        child.wait().unwrap();
        assert!(exited(&pidfd).unwrap());
        drop((a, b));
    }
}
