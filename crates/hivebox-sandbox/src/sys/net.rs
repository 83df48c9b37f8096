//! Network namespace helpers: bringing `lo` up, handing a namespace file to `pasta`.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Sets `IFF_UP` on `lo` in the calling thread's network namespace (`SIOCSIFFLAGS`, as
/// `ip link set lo up`). Makes no allocation (it runs in the keeper after `fork`).
pub fn loopback_up() -> io::Result<()> {
    use rustix::net::{AddressFamily, SocketFlags, SocketType, socket_with};
    let sock = socket_with(AddressFamily::INET, SocketType::DGRAM, SocketFlags::CLOEXEC, None)?;
    // SAFETY: `ifreq` is plain old data (integers, byte arrays and a union of those): the
    // all-zero value is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: `sock` is an open socket for the whole call; `req` is a valid, writable
    // `ifreq` naming `lo`, which SIOCGIFFLAGS fills (flags member of the union).
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS just wrote the flags member of the union, so reading it is sound.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    // SAFETY: as above; SIOCSIFFLAGS only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Makes `cmd`'s child get `fd` as its descriptor 3 (without close-on-exec), so that it can
/// name it `/proc/self/fd/3`. `fd` must stay open until the child is spawned.
pub fn pass_as_fd3<'a>(cmd: &'a mut Command, fd: BorrowedFd<'_>) -> &'a mut Command {
    let raw = fd.as_raw_fd();
    let hook = move || {
        // SAFETY: runs in the child between fork and exec: dup2 and fcntl are
        // async-signal-safe system calls, and nothing here allocates or takes a lock. `raw`
        // is open in the child, being a copy of the parent's descriptor table.
        let r = unsafe { if raw == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(raw, 3) } };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
    };
    // SAFETY: the hook only makes async-signal-safe system calls (see above).
    unsafe { cmd.pre_exec(hook) }
}
