//! seccomp user notification for `network = "decide"` (`crate::netdecide`): the filter that
//! stops a box's `connect`, `sendto` (with an address), `sendmsg` and `sendmmsg` and hands them
//! to the launcher, and the launcher's side of the listener (receive, read the caller's memory,
//! answer).
//!
//! The filter (classic BPF, stacked on the deny list, so the strictest answer wins):
//! - another architecture's call: allowed here (the deny list kills it);
//! - `connect`, `sendmmsg`: notify;
//! - `sendto`: notify when its address argument is not NULL (a plain `send` goes straight on);
//! - `sendmsg`: notify, except on the hand-off descriptor that carries the listener to the
//!   launcher before exec (`HANDOFF` below);
//! - `socket` of `AF_INET`/`AF_INET6` with a protocol other than 0, TCP or UDP (SCTP, MPTCP,
//!   UDP-Lite, ...): `EPROTONOSUPPORT`, so that every network socket of the box is one the
//!   kernel's connect and sendmsg hooks see (`crate::backstop`);
//! - everything else: allowed.

use seccompiler::sock_filter;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::seccomp::{
    BPF_JA, BPF_JEQ_K, BPF_LD_W_ABS, BPF_RET_K, SECCOMP_DATA_ARCH, SECCOMP_DATA_NR, SECCOMP_RET_ALLOW as RET_ALLOW,
    SECCOMP_RET_ERRNO as RET_ERRNO, insn,
};

const RET_USER_NOTIF: u32 = 0x7fc0_0000;

/// Offset of argument `n`'s low 32 bits in `struct seccomp_data`.
const fn arg_lo(n: u32) -> u32 {
    16 + 8 * n
}

/// Offset of argument `n`'s high 32 bits.
const fn arg_hi(n: u32) -> u32 {
    16 + 8 * n + 4
}

/// The audit architecture of this build.
fn audit_arch() -> u32 {
    match std::env::consts::ARCH {
        "aarch64" => 0xC000_00B7,
        _ => 0xC000_003E,
    }
}

/// The network filter; `handoff` is the descriptor number on which `sendmsg` is let through
/// (the box's command sends the listener over it, then closes it before exec).
pub fn network_filter(handoff: i32) -> Vec<sock_filter> {
    let nr = |n: i64| n as u32;
    // Labels are resolved by hand: each jump counts the instructions it skips.
    vec![
        /* 0 */ insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        /* 1 */ insn(BPF_JEQ_K, 1, 0, audit_arch()),
        /* 2 */ insn(BPF_RET_K, 0, 0, RET_ALLOW),
        /* 3 */ insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
        /* 4 */ insn(BPF_JEQ_K, 0, 1, nr(libc::SYS_connect)),
        /* 5 */ insn(BPF_RET_K, 0, 0, RET_USER_NOTIF),
        /* 6 */ insn(BPF_JEQ_K, 0, 1, nr(libc::SYS_sendmmsg)),
        /* 7 */ insn(BPF_RET_K, 0, 0, RET_USER_NOTIF),
        /* 8 */ insn(BPF_JEQ_K, 0, 6, nr(libc::SYS_sendto)),
        // sendto: notify unless the address (argument 4) is NULL.
        /* 9 */
        insn(BPF_LD_W_ABS, 0, 0, arg_lo(4)),
        /* 10 */ insn(BPF_JEQ_K, 0, 2, 0),
        /* 11 */ insn(BPF_LD_W_ABS, 0, 0, arg_hi(4)),
        /* 12 */ insn(BPF_JEQ_K, 1, 0, 0),
        /* 13 */ insn(BPF_RET_K, 0, 0, RET_USER_NOTIF),
        /* 14 */ insn(BPF_RET_K, 0, 0, RET_ALLOW),
        /* 15 */ insn(BPF_JEQ_K, 0, 4, nr(libc::SYS_sendmsg)),
        // sendmsg: notify unless on the hand-off descriptor (the kernel reads the low 32 bits).
        /* 16 */
        insn(BPF_LD_W_ABS, 0, 0, arg_lo(0)),
        /* 17 */ insn(BPF_JEQ_K, 1, 0, handoff as u32),
        /* 18 */ insn(BPF_RET_K, 0, 0, RET_USER_NOTIF),
        /* 19 */ insn(BPF_RET_K, 0, 0, RET_ALLOW),
        /* 20 */ insn(BPF_JEQ_K, 0, 10, nr(libc::SYS_socket)),
        // socket: AF_INET / AF_INET6 only with protocol 0, TCP or UDP.
        /* 21 */
        insn(BPF_LD_W_ABS, 0, 0, arg_lo(0)),
        /* 22 */ insn(BPF_JEQ_K, 2, 0, libc::AF_INET as u32),
        /* 23 */ insn(BPF_JEQ_K, 1, 0, libc::AF_INET6 as u32),
        /* 24 */ insn(BPF_JA, 0, 0, 5),
        /* 25 */ insn(BPF_LD_W_ABS, 0, 0, arg_lo(2)),
        /* 26 */ insn(BPF_JEQ_K, 3, 0, 0),
        /* 27 */ insn(BPF_JEQ_K, 2, 0, libc::IPPROTO_TCP as u32),
        /* 28 */ insn(BPF_JEQ_K, 1, 0, libc::IPPROTO_UDP as u32),
        /* 29 */ insn(BPF_RET_K, 0, 0, RET_ERRNO | libc::EPROTONOSUPPORT as u32),
        /* 30 */ insn(BPF_RET_K, 0, 0, RET_ALLOW),
        // Everything else.
        /* 31 */ insn(BPF_RET_K, 0, 0, RET_ALLOW),
    ]
}

/// Installs `program` on the calling thread (which must have `no_new_privs`) and returns the
/// listener. Makes no allocation (it runs in the box's command between fork and exec).
pub fn install(program: &[sock_filter]) -> io::Result<OwnedFd> {
    let prog = libc::sock_fprog { len: program.len() as u16, filter: program.as_ptr() as *mut libc::sock_filter };
    let flags = libc::SECCOMP_FILTER_FLAG_NEW_LISTENER | libc::SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV;
    // SAFETY: `prog` points to `program`, a valid array of `len` classic BPF instructions
    // (seccompiler's `sock_filter` has the kernel's layout), alive for the whole call; the
    // kernel copies it. With NEW_LISTENER the return value is a new descriptor we own.
    let fd = unsafe {
        libc::syscall(libc::SYS_seccomp, libc::SECCOMP_SET_MODE_FILTER, flags, &prog as *const libc::sock_fprog)
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// One stopped system call.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    /// Its id, for the answer.
    pub id: u64,
    /// The calling thread (in the launcher's PID namespace).
    pub pid: u32,
    /// The system call number.
    pub nr: i64,
    /// Its arguments.
    pub args: [u64; 6],
}

/// Waits for the next notification on `listener`. `Ok(None)`: the call vanished before it was
/// received (the caller was killed), try again.
pub fn receive(listener: BorrowedFd<'_>) -> io::Result<Option<Notification>> {
    // SAFETY: seccomp_notif is plain old data; the kernel requires it zeroed on input.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `n` is a valid, writable seccomp_notif, the size the ioctl number encodes.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::ENOENT) | Some(libc::EINTR) => Ok(None),
            _ => Err(e),
        };
    }
    Ok(Some(Notification { id: n.id, pid: n.pid, nr: n.data.nr as i64, args: n.data.args }))
}

/// Whether notification `id` is still waiting (its thread still blocked in that call, so a
/// pid read since belongs to it).
pub fn still_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    // SAFETY: the ioctl reads one u64 from the pointer, which is valid for the call.
    unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0 }
}

/// How a stopped call ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// The kernel runs the call as the caller made it.
    Continue,
    /// The call returns this value (done on the caller's behalf).
    Value(i64),
    /// The call fails with this errno.
    Error(i32),
}

/// Answers notification `id`. An error `ENOENT` means the caller is gone (killed, or
/// interrupted before the answer); there is nothing left to do then.
pub fn answer(listener: BorrowedFd<'_>, id: u64, answer: Answer) -> io::Result<()> {
    let (val, error, flags) = match answer {
        Answer::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
        Answer::Value(v) => (v, 0, 0),
        Answer::Error(e) => (0, -e, 0),
    };
    let resp = libc::seccomp_notif_resp { id, val, error, flags };
    // SAFETY: `resp` is a valid seccomp_notif_resp for the call; the kernel only reads it.
    let r = unsafe { libc::ioctl(listener.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// Reads `buf.len()` bytes at `addr` of process `pid` (`process_vm_readv`); fewer bytes read
/// is an error (`EFAULT`).
pub fn read_memory(pid: u32, addr: u64, buf: &mut [u8]) -> io::Result<()> {
    if buf.is_empty() {
        return Ok(());
    }
    let local = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    // SAFETY: `local` describes `buf`, writable for its length; `remote` is only an address
    // in the other process, which the kernel checks (it never dereferences it here).
    let n = unsafe { libc::process_vm_readv(pid as i32, &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != buf.len() => Err(io::Error::from_raw_os_error(libc::EFAULT)),
        _ => Ok(()),
    }
}

/// Writes `data` at `addr` of process `pid` (`process_vm_writev`).
pub fn write_memory(pid: u32, addr: u64, data: &[u8]) -> io::Result<()> {
    let local = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: `local` describes `data`, readable for its length (the kernel only reads it);
    // `remote` is an address in the other process, checked by the kernel.
    let n = unsafe { libc::process_vm_writev(pid as i32, &local, 1, &remote, 1, 0) };
    match n {
        n if n < 0 => Err(io::Error::last_os_error()),
        n if n as usize != data.len() => Err(io::Error::from_raw_os_error(libc::EFAULT)),
        _ => Ok(()),
    }
}

/// `sendmsg(fd, {name, [data], control}, flags)` on the launcher's copy of a box socket, with
/// the destination already checked (`name` is a complete `sockaddr_in`/`sockaddr_in6`).
/// Returns the bytes sent.
pub fn send_message(fd: BorrowedFd<'_>, name: &[u8], data: &[u8], control: &[u8], flags: i32) -> io::Result<usize> {
    let mut iov = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    // SAFETY: msghdr is plain old data; all-zero is a valid empty message.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_name = name.as_ptr() as *mut libc::c_void;
    msg.msg_namelen = name.len() as u32;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if !control.is_empty() {
        msg.msg_control = control.as_ptr() as *mut libc::c_void;
        msg.msg_controllen = control.len();
    }
    // SAFETY: every pointer in `msg` refers to a live buffer of the stated length (`name`,
    // `data` through `iov`, `control`) for the whole call; the kernel only reads them.
    let n = unsafe { libc::sendmsg(fd.as_raw_fd(), &msg, flags | libc::MSG_NOSIGNAL) };
    if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) }
}

/// `connect(fd, name)` on the launcher's copy of a box socket, `name` being the checked copy
/// of the caller's address (a complete `sockaddr_in`/`sockaddr_in6`, or `AF_UNSPEC`).
pub fn connect_raw(fd: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    // SAFETY: `name` is a live buffer of the stated length for the whole call; the kernel
    // reads at most that many bytes of it.
    let r = unsafe { libc::connect(fd.as_raw_fd(), name.as_ptr().cast(), name.len() as u32) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The network namespace cookie of a socket (`SO_NETNS_COOKIE`).
pub fn netns_cookie(fd: BorrowedFd<'_>) -> io::Result<u64> {
    let mut cookie = 0u64;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: `cookie` and `len` are valid and writable; the kernel writes at most `len` bytes.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(cookie) }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::super::run_classic_bpf as run;

    fn verdict(nr: i64, args: [u64; 6]) -> u32 {
        run(&network_filter(999), audit_arch(), nr, args)
    }

    #[test]
    fn connects_and_addressed_sends_are_stopped() {
        assert_eq!(verdict(libc::SYS_connect, [3, 0x1000, 16, 0, 0, 0]), RET_USER_NOTIF);
        assert_eq!(verdict(libc::SYS_sendmmsg, [3, 0x1000, 2, 0, 0, 0]), RET_USER_NOTIF);
        assert_eq!(verdict(libc::SYS_sendmsg, [3, 0x1000, 0, 0, 0, 0]), RET_USER_NOTIF);
        // The address in the high half only still counts.
        assert_eq!(verdict(libc::SYS_sendto, [3, 0x1000, 5, 0, 0x7fff_0000_0000, 16]), RET_USER_NOTIF);
        assert_eq!(verdict(libc::SYS_sendto, [3, 0x1000, 5, 0, 0x1000, 16]), RET_USER_NOTIF);
    }

    #[test]
    fn plain_sends_and_other_calls_go_straight_on() {
        assert_eq!(verdict(libc::SYS_sendto, [3, 0x1000, 5, 0, 0, 0]), RET_ALLOW);
        assert_eq!(verdict(libc::SYS_sendmsg, [999, 0x1000, 0, 0, 0, 0]), RET_ALLOW);
        assert_eq!(verdict(libc::SYS_read, [3, 0x1000, 5, 0, 0, 0]), RET_ALLOW);
        assert_eq!(verdict(libc::SYS_write, [3, 0x1000, 5, 0, 0, 0]), RET_ALLOW);
        // Another architecture is the deny list's business.
        assert_eq!(run(&network_filter(999), 0x4000_0003, libc::SYS_connect, [0; 6]), RET_ALLOW);
    }

    #[test]
    fn only_tcp_and_udp_network_sockets_can_be_made() {
        let inet = libc::AF_INET as u64;
        let inet6 = libc::AF_INET6 as u64;
        for (domain, proto, ok) in [
            (inet, 0, true),
            (inet, 6, true),
            (inet6, 17, true),
            (inet, 132, false),  // SCTP
            (inet6, 262, false), // MPTCP
            (inet, 136, false),  // UDP-Lite
            (libc::AF_UNIX as u64, 0, true),
            (libc::AF_NETLINK as u64, 9, true),
        ] {
            let v = verdict(libc::SYS_socket, [domain, 1, proto, 0, 0, 0]);
            let want = if ok { RET_ALLOW } else { RET_ERRNO | libc::EPROTONOSUPPORT as u32 };
            assert_eq!(v, want, "socket({domain}, _, {proto})");
        }
    }
}
