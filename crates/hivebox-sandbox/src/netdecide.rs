//! `network = "decide"`: the launcher's supervisor of a box's connections.
//!
//! The box's command installs a seccomp filter (`crate::sys::unotify`) that stops every
//! `connect`, addressed `sendto`, `sendmsg` and `sendmmsg`, and hands its listener to the
//! launcher before exec. For each stopped call the supervisor:
//! 1. takes a copy of the caller's socket (`pidfd_getfd`) and asks the kernel what it is;
//!    anything but a TCP or UDP socket (unix sockets, netlink, ...) continues untouched, as do
//!    sends without a destination and stream sends that cannot open a connection;
//! 2. copies the destination out of the caller's memory once, and decides on that copy: the
//!    box's own loopback is always allowed; otherwise a remembered answer, or the [`NetDecider`]
//!    (the daemon, which applies the box's rules and asks `hivebox decide`);
//! 3. allowed, makes the connection (or sends the datagram) itself, on its copy of the socket,
//!    with the checked copy of the address, and returns the kernel's result to the caller;
//!    denied, fails the call with `EACCES`.
//!
//! A racing thread that rewrites the address after the check changes nothing: the address
//! used is the supervisor's copy. And whatever slips past the filter meets the kernel
//! backstop (`crate::backstop`): on the box's sockets only the launcher may connect or send
//! to an address.

use crate::netrules::{Connection, Proto};
use crate::sys::unotify::{self, Answer, Notification};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A decider's answer about one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetAnswer {
    /// Let it through.
    pub allow: bool,
    /// The same answer holds for later connections of this program to this destination, for
    /// as long as the launcher runs.
    pub remember: bool,
}

/// Who decides the box's connections.
pub trait NetDecider: Send + Sync {
    /// Decides `c`; may block (an `ask` waits for a person).
    fn decide(&self, c: &Connection) -> NetAnswer;
}

/// Decides by the box's rules alone (no one to ask: `ask` gets `ask-default`).
#[derive(Debug, Clone)]
pub struct RulesDecider(pub crate::netrules::NetRules);

impl NetDecider for RulesDecider {
    fn decide(&self, c: &Connection) -> NetAnswer {
        use crate::netrules::Action;
        let action = match self.0.evaluate(c).action {
            Action::Ask => self.0.ask_default,
            a => a,
        };
        NetAnswer { allow: action == Action::Allow, remember: true }
    }
}

type Cache = HashMap<(String, Proto, SocketAddr), bool>;

struct Shared {
    listener: OwnedFd,
    /// Readable (end of file) once the supervisor is dropped.
    stop: OwnedFd,
    decider: Arc<dyn NetDecider>,
    cache: Mutex<Cache>,
    /// Held by the thread waiting for the next call.
    leader: Mutex<()>,
    threads: Mutex<Threads>,
    /// The box is gone or the supervisor stopped.
    done: std::sync::atomic::AtomicBool,
}

/// The serving threads.
#[derive(Default)]
struct Threads {
    /// Started (the first included).
    total: usize,
    /// Waiting to lead (not handling a call).
    waiting: usize,
}

/// The running supervisor; it ends when every process of the box is gone (or when dropped).
pub struct Supervisor {
    stop: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

impl Supervisor {
    /// Serves `listener` (the box's filter's) with `decider`.
    pub fn start(listener: OwnedFd, decider: Arc<dyn NetDecider>) -> io::Result<Supervisor> {
        let (stop_r, stop_w) = rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC)?;
        let shared = Arc::new(Shared {
            listener,
            stop: stop_r,
            decider,
            cache: Mutex::default(),
            leader: Mutex::new(()),
            threads: Mutex::new(Threads { total: 1, waiting: 0 }),
            done: std::sync::atomic::AtomicBool::new(false),
        });
        let thread = std::thread::Builder::new().name("hivebox-net".into()).spawn(move || serve(&shared))?;
        Ok(Supervisor { stop: Some(stop_w), thread: Some(thread) })
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The most threads serving one box (calls waiting at once beyond this wait their turn).
const MAX_THREADS: usize = 128;

/// Leader and followers: the thread holding `leader` waits for the next call and takes it,
/// then lets the next thread lead and handles the call itself, blocking connects and questions
/// included. When no thread is left waiting to lead, one more is started, so a call that waits
/// (a person's answer, a far end's SYN) never holds up the others, while a quick one costs no
/// hand-off between threads.
fn serve(shared: &Arc<Shared>) {
    lock(&shared.threads).waiting += 1;
    follow(shared);
}

/// Starts one more serving thread if none is waiting to lead.
fn more_if_needed(shared: &Arc<Shared>) {
    let mut t = lock(&shared.threads);
    if t.waiting == 0 && t.total < MAX_THREADS {
        let s = shared.clone();
        t.waiting += 1;
        let started = std::thread::Builder::new().name("hivebox-net".into()).spawn(move || follow(&s));
        match started {
            Ok(_) => t.total += 1,
            Err(_) => t.waiting -= 1,
        }
    }
}

/// One serving thread's loop (counted as waiting when it starts).
fn follow(shared: &Arc<Shared>) {
    use rustix::event::{PollFd, PollFlags, poll};
    let stop = shared.stop.as_fd();
    loop {
        let leading = lock(&shared.leader);
        if shared.done.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let mut fds = [PollFd::new(&shared.listener, PollFlags::IN), PollFd::new(&stop, PollFlags::IN)];
        let failed = match poll(&mut fds, None) {
            Ok(_) => false,
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => true,
        };
        let (l, s) = (fds[0].revents(), fds[1].revents());
        let received = if !failed && s.is_empty() && l.contains(PollFlags::IN) {
            match unotify::receive(shared.listener.as_fd()) {
                Ok(n) => n,
                Err(_) => {
                    shared.done.store(true, std::sync::atomic::Ordering::Release);
                    None
                }
            }
        } else {
            if failed || !s.is_empty() || l.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::NVAL) {
                // Stopped, or every process of the box is gone.
                shared.done.store(true, std::sync::atomic::Ordering::Release);
            }
            None
        };
        let Some(n) = received else { continue };
        let call = look_at(shared, n);
        if call.quick() {
            // Answered at once, still leading: no other thread wakes for it.
            call.finish(shared);
            continue;
        }
        drop(leading);
        lock(&shared.threads).waiting -= 1;
        more_if_needed(shared);
        call.finish(shared);
        lock(&shared.threads).waiting += 1;
    }
}

/// A received call, looked at.
struct Call {
    n: Notification,
    plan: Plan,
    /// For a destination: its remembered (or always) answer.
    known: Option<bool>,
}

fn look_at(shared: &Shared, n: Notification) -> Call {
    let plan = match look(shared, &n) {
        Ok(p) => p,
        Err(e) => Plan::Now(Answer::Error(e.raw_os_error().unwrap_or(libc::EFAULT))),
    };
    let known = match &plan {
        Plan::Decide(c, _) if is_loopback(c.dest.ip()) => Some(true),
        Plan::Decide(c, _) => lock(&shared.cache).get(&(c.exe.clone(), c.proto, c.dest)).copied(),
        Plan::Now(_) => None,
    };
    Call { n, plan, known }
}

impl Call {
    /// Whether it is answered without waiting: no question to ask, and no connection whose far
    /// end may take its time (a blocking socket to anywhere but the box's own loopback).
    fn quick(&self) -> bool {
        match &self.plan {
            Plan::Now(_) => true,
            Plan::Decide(c, act) => {
                self.known == Some(false)
                    || (self.known == Some(true)
                        && (is_loopback(c.dest.ip())
                            || !matches!(act, Act::Connect { sock, .. } if !is_nonblocking(sock))))
            }
        }
    }

    /// Decides if need be, does it, answers.
    fn finish(self, shared: &Shared) {
        let Call { n, plan, known } = self;
        match plan {
            Plan::Now(a) => finish(shared, &n, a),
            Plan::Decide(c, act) => {
                let allow = match known {
                    Some(a) => a,
                    None => {
                        let answer = shared.decider.decide(&c);
                        if answer.remember {
                            lock(&shared.cache).insert((c.exe.clone(), c.proto, c.dest), answer.allow);
                        }
                        answer.allow
                    }
                };
                let a = perform(shared, &n, &c, allow, act);
                finish(shared, &n, a);
            }
        }
    }
}

fn is_nonblocking(sock: &OwnedFd) -> bool {
    rustix::fs::fcntl_getfl(sock).is_ok_and(|f| f.contains(rustix::fs::OFlags::NONBLOCK))
}

/// What a stopped call is, once looked at.
enum Plan {
    /// Answer now.
    Now(Answer),
    /// A destination to decide, then this to do.
    Decide(Connection, Act),
}

/// What an allowed call does on the caller's behalf.
enum Act {
    Connect { sock: OwnedFd, name: Vec<u8> },
    Send { sock: OwnedFd, name: Vec<u8>, data: Vec<u8>, control: Vec<u8>, flags: i32 },
    SendMany { sock: OwnedFd, vec: u64, messages: Vec<Message>, flags: i32 },
}

/// One message of a `sendmmsg`.
struct Message {
    name: Vec<u8>,
    dest: Option<SocketAddr>,
    data: Vec<u8>,
    control: Vec<u8>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn finish(shared: &Shared, n: &Notification, a: Answer) {
    // ENOENT: the caller is gone or was interrupted; nothing to answer.
    let _ = unotify::answer(shared.listener.as_fd(), n.id, a);
}

fn is_loopback(ip: IpAddr) -> bool {
    ip.to_canonical().is_loopback()
}

/// The largest datagram sent on a caller's behalf (bigger ones fail with `EMSGSIZE`, as UDP
/// would).
const MAX_DATAGRAM: usize = 65_535;
/// The largest ancillary data copied.
const MAX_CONTROL: usize = 4096;
/// The most messages of one `sendmmsg` (the kernel's `UIO_MAXIOV`).
const MAX_MESSAGES: usize = 1024;

fn look(shared: &Shared, n: &Notification) -> io::Result<Plan> {
    let fd = n.args[0] as i32;
    let pid = rustix::process::Pid::from_raw(n.pid as i32).ok_or(io::Error::from_raw_os_error(libc::ESRCH))?;
    let pidfd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())?;
    // The pid read from the notification is the caller's only if the call is still waiting.
    if !unotify::still_valid(shared.listener.as_fd(), n.id) {
        return Err(io::Error::from_raw_os_error(libc::ESRCH));
    }
    let sock = match rustix::process::pidfd_getfd(&pidfd, fd, rustix::process::PidfdGetfdFlags::empty()) {
        Ok(s) => s,
        // Not a descriptor: let the kernel give the caller its own EBADF.
        Err(_) => return Ok(Plan::Now(Answer::Continue)),
    };
    let Some(proto) = network_proto(&sock) else { return Ok(Plan::Now(Answer::Continue)) };
    let stream = proto == Proto::Tcp;
    let exe = || std::fs::read_link(format!("/proc/{}/exe", n.pid)).map(|p| p.to_string_lossy().into_owned());
    // The box's own loopback is always allowed: nobody needs to know who calls it.
    let who = |dest: SocketAddr| if is_loopback(dest.ip()) { Ok(String::new()) } else { exe() };
    match n.nr {
        libc::SYS_connect => {
            let name = read_name(n.pid, n.args[1], n.args[2])?;
            let Some(dest) = destination(&name)? else {
                // AF_UNSPEC: dissolves the association; nothing to decide.
                return Ok(Plan::Now(on_behalf_connect(&sock, &name)));
            };
            Ok(Plan::Decide(Connection { pid: n.pid, exe: who(dest)?, proto, dest }, Act::Connect { sock, name }))
        }
        libc::SYS_sendto => {
            let flags = n.args[3] as i32;
            if stream {
                return Ok(Plan::Now(stream_send(flags)));
            }
            let name = read_name(n.pid, n.args[4], n.args[5])?;
            let Some(dest) = destination(&name)? else { return Ok(Plan::Now(Answer::Error(libc::EINVAL))) };
            let len = n.args[2] as usize;
            if len > MAX_DATAGRAM {
                return Ok(Plan::Now(Answer::Error(libc::EMSGSIZE)));
            }
            let mut data = vec![0u8; len];
            unotify::read_memory(n.pid, n.args[1], &mut data)?;
            let c = Connection { pid: n.pid, exe: who(dest)?, proto, dest };
            Ok(Plan::Decide(c, Act::Send { sock, name, data, control: Vec::new(), flags }))
        }
        libc::SYS_sendmsg => {
            let flags = n.args[2] as i32;
            let m = read_msghdr(n.pid, n.args[1])?;
            if m.name_ptr == 0 || m.name_len == 0 {
                return Ok(Plan::Now(Answer::Continue));
            }
            if stream {
                return Ok(Plan::Now(stream_send(flags)));
            }
            let message = read_message(n.pid, &m)?;
            let Some(dest) = message.dest else { return Ok(Plan::Now(Answer::Error(libc::EINVAL))) };
            let c = Connection { pid: n.pid, exe: who(dest)?, proto, dest };
            let Message { name, data, control, .. } = message;
            Ok(Plan::Decide(c, Act::Send { sock, name, data, control, flags }))
        }
        libc::SYS_sendmmsg => {
            let (vec, count, flags) = (n.args[1], (n.args[2] as usize).min(MAX_MESSAGES), n.args[3] as i32);
            let mut headers = Vec::with_capacity(count);
            for i in 0..count {
                headers.push(read_msghdr(n.pid, vec + (i * MMSGHDR_SIZE) as u64)?);
            }
            if headers.iter().all(|m| m.name_ptr == 0 || m.name_len == 0) {
                return Ok(Plan::Now(Answer::Continue));
            }
            if stream {
                return Ok(Plan::Now(stream_send(flags)));
            }
            let messages = headers.iter().map(|m| read_message(n.pid, m)).collect::<io::Result<Vec<_>>>()?;
            // Decided per destination; the first one's is the plan's, the others are decided
            // as they are sent.
            let first = messages.iter().find_map(|m| m.dest);
            let Some(dest) = first else { return Ok(Plan::Now(Answer::Continue)) };
            let c = Connection { pid: n.pid, exe: exe()?, proto, dest };
            Ok(Plan::Decide(c, Act::SendMany { sock, vec, messages, flags }))
        }
        _ => Ok(Plan::Now(Answer::Continue)),
    }
}

/// TCP or UDP for an `AF_INET`/`AF_INET6` socket; `None` for every other kind.
fn network_proto(sock: &OwnedFd) -> Option<Proto> {
    use rustix::net::{AddressFamily, SocketType, sockopt};
    let family = sockopt::socket_domain(sock).ok()?;
    if family != AddressFamily::INET && family != AddressFamily::INET6 {
        return None;
    }
    match sockopt::socket_type(sock).ok()? {
        SocketType::STREAM => Some(Proto::Tcp),
        SocketType::DGRAM => Some(Proto::Udp),
        // Raw sockets need a capability the box does not have.
        _ => None,
    }
}

/// A stream socket's send with an address: without `MSG_FASTOPEN` the address is ignored (or
/// the socket is not connected), so it goes on; `MSG_FASTOPEN` would open a connection
/// undecided, so it is refused as unsupported (programs then connect first).
fn stream_send(flags: i32) -> Answer {
    if flags & libc::MSG_FASTOPEN != 0 { Answer::Error(libc::EOPNOTSUPP) } else { Answer::Continue }
}

/// Reads a socket address (at most 128 bytes, `sockaddr_storage`).
fn read_name(pid: u32, addr: u64, len: u64) -> io::Result<Vec<u8>> {
    if addr == 0 {
        return Err(io::Error::from_raw_os_error(libc::EFAULT));
    }
    if !(2..=128).contains(&len) {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mut name = vec![0u8; len as usize];
    unotify::read_memory(pid, addr, &mut name)?;
    Ok(name)
}

/// The destination in a socket address copy: `None` for `AF_UNSPEC`. IPv4-mapped IPv6
/// addresses are given as IPv4 (rules are written for the address reached).
fn destination(name: &[u8]) -> io::Result<Option<SocketAddr>> {
    let family = u16::from_ne_bytes([name[0], name[1]]) as i32;
    let port = |n: &[u8]| u16::from_be_bytes([n[2], n[3]]);
    match family {
        libc::AF_UNSPEC => Ok(None),
        libc::AF_INET if name.len() >= 16 => {
            let ip = Ipv4Addr::new(name[4], name[5], name[6], name[7]);
            Ok(Some(SocketAddr::new(IpAddr::V4(ip), port(name))))
        }
        libc::AF_INET6 if name.len() >= 24 => {
            let mut b = [0u8; 16];
            b.copy_from_slice(&name[8..24]);
            Ok(Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(b)).to_canonical(), port(name))))
        }
        libc::AF_INET | libc::AF_INET6 => Err(io::Error::from_raw_os_error(libc::EINVAL)),
        _ => Err(io::Error::from_raw_os_error(libc::EAFNOSUPPORT)),
    }
}

/// The fields of a `struct msghdr` in the caller's memory.
struct MsgHdr {
    name_ptr: u64,
    name_len: u64,
    iov_ptr: u64,
    iov_len: u64,
    control_ptr: u64,
    control_len: u64,
}

/// `struct msghdr` (64-bit layout).
const MSGHDR_SIZE: usize = 56;
/// `struct mmsghdr`: a msghdr, the `msg_len` the kernel fills, padding.
const MMSGHDR_SIZE: usize = 64;

fn read_msghdr(pid: u32, addr: u64) -> io::Result<MsgHdr> {
    let mut b = [0u8; MSGHDR_SIZE];
    unotify::read_memory(pid, addr, &mut b)?;
    let u64_at = |o: usize| u64::from_ne_bytes(b[o..o + 8].try_into().expect("eight bytes"));
    let u32_at = |o: usize| u64::from(u32::from_ne_bytes(b[o..o + 4].try_into().expect("four bytes")));
    Ok(MsgHdr {
        name_ptr: u64_at(0),
        name_len: u32_at(8),
        iov_ptr: u64_at(16),
        iov_len: u64_at(24),
        control_ptr: u64_at(32),
        control_len: u64_at(40),
    })
}

/// Copies a message's destination, data (gathered) and ancillary data.
fn read_message(pid: u32, m: &MsgHdr) -> io::Result<Message> {
    let (name, dest) = if m.name_ptr == 0 || m.name_len == 0 {
        (Vec::new(), None)
    } else {
        let name = read_name(pid, m.name_ptr, m.name_len)?;
        let dest = destination(&name)?;
        (name, dest)
    };
    if m.iov_len > MAX_MESSAGES as u64 {
        return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
    }
    let mut data = Vec::new();
    for i in 0..m.iov_len {
        let mut iov = [0u8; 16];
        unotify::read_memory(pid, m.iov_ptr + i * 16, &mut iov)?;
        let base = u64::from_ne_bytes(iov[..8].try_into().expect("eight bytes"));
        let len = u64::from_ne_bytes(iov[8..].try_into().expect("eight bytes")) as usize;
        if data.len() + len > MAX_DATAGRAM {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        let start = data.len();
        data.resize(start + len, 0);
        unotify::read_memory(pid, base, &mut data[start..])?;
    }
    let mut control = Vec::new();
    if m.control_ptr != 0 && m.control_len > 0 {
        if m.control_len as usize > MAX_CONTROL {
            return Err(io::Error::from_raw_os_error(libc::ENOBUFS));
        }
        control.resize(m.control_len as usize, 0);
        unotify::read_memory(pid, m.control_ptr, &mut control)?;
    }
    Ok(Message { name, dest, data, control })
}

fn errno(e: &io::Error) -> Answer {
    Answer::Error(e.raw_os_error().unwrap_or(libc::EIO))
}

fn on_behalf_connect(sock: &OwnedFd, name: &[u8]) -> Answer {
    match unotify::connect_raw(sock.as_fd(), name) {
        Ok(()) => Answer::Value(0),
        Err(e) => errno(&e),
    }
}

/// Carries out an allowed call (or refuses a denied one) on the caller's behalf.
fn perform(shared: &Shared, n: &Notification, c: &Connection, allow: bool, act: Act) -> Answer {
    if !allow {
        return Answer::Error(libc::EACCES);
    }
    match act {
        Act::Connect { sock, name } => on_behalf_connect(&sock, &name),
        Act::Send { sock, name, data, control, flags } => {
            match unotify::send_message(sock.as_fd(), &name, &data, &control, flags) {
                Ok(sent) => Answer::Value(sent as i64),
                Err(e) => errno(&e),
            }
        }
        Act::SendMany { sock, vec, messages, flags } => {
            let mut sent = 0usize;
            let mut first_error = None;
            for (i, m) in messages.iter().enumerate() {
                if let Some(dest) = m.dest
                    && dest != c.dest
                    && !allowed(shared, &Connection { dest, ..c.clone() })
                {
                    first_error = Some(Answer::Error(libc::EACCES));
                    break;
                }
                match unotify::send_message(sock.as_fd(), &m.name, &m.data, &m.control, flags) {
                    Ok(len) => {
                        let at = vec + (i * MMSGHDR_SIZE + MSGHDR_SIZE) as u64;
                        let _ = unotify::write_memory(n.pid, at, &(len as u32).to_ne_bytes());
                        sent += 1;
                    }
                    Err(e) => {
                        first_error = Some(errno(&e));
                        break;
                    }
                }
            }
            match (sent, first_error) {
                (0, Some(e)) => e,
                _ => Answer::Value(sent as i64),
            }
        }
    }
}

/// Decides another destination of the same call (a `sendmmsg`'s later messages).
fn allowed(shared: &Shared, c: &Connection) -> bool {
    if is_loopback(c.dest.ip()) {
        return true;
    }
    let key = (c.exe.clone(), c.proto, c.dest);
    if let Some(a) = lock(&shared.cache).get(&key) {
        return *a;
    }
    let answer = shared.decider.decide(c);
    if answer.remember {
        lock(&shared.cache).insert(key, answer.allow);
    }
    answer.allow
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_read_from_the_copy() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&443u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(destination(&v4).unwrap(), Some("192.0.2.1:443".parse().unwrap()));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&53u16.to_be_bytes());
        v6[8..24].copy_from_slice(&"::ffff:198.51.100.9".parse::<Ipv6Addr>().unwrap().octets());
        assert_eq!(destination(&v6).unwrap(), Some("198.51.100.9:53".parse().unwrap()), "mapped is IPv4");
        assert!(destination(&v4[..8]).is_err(), "a short IPv4 address is invalid");
        let unspec = (libc::AF_UNSPEC as u16).to_ne_bytes();
        assert_eq!(destination(&unspec).unwrap(), None);
        let unix = (libc::AF_UNIX as u16).to_ne_bytes();
        assert!(destination(&unix).is_err());
    }
}
