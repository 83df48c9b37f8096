//! `network = "decide"`: every new TCP or UDP destination is decided; what the rules deny is
//! never reached, whatever the boxed program does: race the address, slip a send past the
//! seccomp filter, open another IP protocol, or aim at the host's loopback. What they allow
//! works, and the box's own loopback and unix sockets are untouched.
//!
//! The boxes use the rules alone ([`hivebox_sandbox::netdecide::RulesDecider`]); asking a person
//! through the daemon is tested in `hivebox-daemon` (`tests/it/netdecide.rs`) and end to end with
//! the CLI (`hivebox-cli`, `tests/it/boxes.rs`).

use crate::common::{TestCgroup, host_address, run_to_end};
use hivebox_sandbox::BoxSpec;
use hivebox_sandbox::net::NetworkMode;
use hivebox_sandbox::netrules::NetRules;
use std::io::Read;
use std::net::{IpAddr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

const HELPERS: &str = r#"
import ctypes, os, socket, sys, threading, time
sys.stdout.reconfigure(line_buffering=True)
def tcp(host, port):
    s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
    s.settimeout(5)
    try:
        s.connect((host, port)); s.sendall(b'hello'); print(0)
    except OSError as e:
        print(e.errno)
    s.close()
def udp(host, port, how):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if how == 'sendto':
            print(s.sendto(b'ping', (host, port)))
        elif how == 'sendmsg':
            print(s.sendmsg([b'pi', b'ng'], [], 0, (host, port)))
        else:
            s.connect((host, port)); print(s.send(b'ping'))
    except OSError as e:
        print(e.errno)
    s.close()
"#;

/// Runs `script` in a decide-mode box with `rules`; returns its output.
fn run(rules: &str, script: &str) -> String {
    assert!(rustix::process::geteuid().is_root(), "the escape tests need root (CI runs them as root)");
    #[derive(serde::Deserialize)]
    struct T {
        net: NetRules,
    }
    let rules = toml::from_str::<T>(rules).expect("test rules parse").net;
    let home = tempfile::Builder::new().prefix("hivebox-escape-").tempdir_in("/var/tmp").unwrap();
    let dir: PathBuf = home.path().join("boxes").join("decide");
    std::fs::create_dir_all(&dir).unwrap();
    let cgroup = TestCgroup::new("decide");
    let code = format!("{HELPERS}\n{script}");
    let mut spec = BoxSpec::new("decide", &dir, vec!["/usr/bin/python3".into(), "-c".into(), code.into()]);
    spec.hide = vec![home.path().to_owned()];
    spec.network = NetworkMode::Decide;
    spec.net_rules = rules;
    spec.cgroup = Some(cgroup.0.clone());
    let (status, out) = run_to_end(spec);
    assert!(status.success(), "the box's script failed ({status}): {out}");
    out
}

/// Counts the connections a listener gets (each read to its end) until `stop` is dropped.
fn count_connections(listener: TcpListener) -> (std::thread::JoinHandle<Vec<Vec<u8>>>, TcpListener) {
    let probe = listener.try_clone().unwrap();
    let handle = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            match listener.accept() {
                Ok((mut s, _)) => {
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut data = Vec::new();
                    let _ = s.read_to_end(&mut data);
                    if data == b"stop" {
                        break;
                    }
                    got.push(data);
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
        got
    });
    (handle, probe)
}

/// Ends a [`count_connections`] thread.
fn stop(listener: &TcpListener) {
    let mut s = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    std::io::Write::write_all(&mut s, b"stop").unwrap();
}

fn rules_allowing(addr: IpAddr, port: u16, proto: &str) -> String {
    format!(
        "[net]\nunmatched = \"deny\"\n[[net.rule]]\naction = \"allow\"\nto = \"{addr}\"\nport = {port}\nproto = \"{proto}\"\n"
    )
}

#[test]
fn an_allowed_connection_works_and_the_rest_are_refused() {
    let addr = host_address();
    let (allowed, a) = count_connections(TcpListener::bind((addr, 0)).unwrap());
    let (denied, d) = count_connections(TcpListener::bind((addr, 0)).unwrap());
    let (pa, pd) = (a.local_addr().unwrap().port(), d.local_addr().unwrap().port());
    let out = run(
        &rules_allowing(addr, pa, "tcp"),
        &format!("tcp('{addr}', {pa})\ntcp('{addr}', {pd})\ntcp('{addr}', {pa})\ntcp('::ffff:{addr}', {pd})"),
    );
    let eacces = libc::EACCES.to_string();
    assert_eq!(out.lines().collect::<Vec<_>>(), ["0", &eacces, "0", &eacces], "{out}");
    stop(&a);
    stop(&d);
    assert_eq!(allowed.join().unwrap(), vec![b"hello".to_vec(); 2]);
    assert_eq!(denied.join().unwrap(), Vec::<Vec<u8>>::new(), "a denied destination was reached");
}

#[test]
fn udp_datagrams_are_decided_per_destination() {
    let addr = host_address();
    let allowed = UdpSocket::bind((addr, 0)).unwrap();
    let denied = UdpSocket::bind((addr, 0)).unwrap();
    let (pa, pd) = (allowed.local_addr().unwrap().port(), denied.local_addr().unwrap().port());
    let out = run(
        &rules_allowing(addr, pa, "udp"),
        &format!(
            "for how in ['sendto', 'sendmsg', 'connect']:\n    udp('{addr}', {pa}, how)\n    udp('{addr}', {pd}, how)"
        ),
    );
    let eacces = libc::EACCES.to_string();
    assert_eq!(out.lines().collect::<Vec<_>>(), ["4", &eacces, "4", &eacces, "4", &eacces], "{out}");
    allowed.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 16];
    for _ in 0..3 {
        let n = allowed.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"ping");
    }
    denied.set_nonblocking(true).unwrap();
    assert!(denied.recv(&mut buf).is_err(), "a datagram reached a denied destination");
}

#[test]
fn the_connect_race_never_reaches_a_denied_destination() {
    // One thread connects in a loop while another rewrites the address it passes, between an
    // allowed destination and a denied one: the supervisor decides on, and connects to, its own
    // copy, so the denied listener never sees a connection.
    let addr = host_address();
    let (allowed, a) = count_connections(TcpListener::bind((addr, 0)).unwrap());
    let (denied, d) = count_connections(TcpListener::bind((addr, 0)).unwrap());
    let (pa, pd) = (a.local_addr().unwrap().port(), d.local_addr().unwrap().port());
    let script = format!(
        r#"
libc = ctypes.CDLL(None, use_errno=True)
def sockaddr(port):
    return (2).to_bytes(2, 'little') + port.to_bytes(2, 'big') + socket.inet_aton('{addr}') + bytes(8)
good, bad = sockaddr({pa}), sockaddr({pd})
buf = ctypes.create_string_buffer(good, 16)
done = False
def flip():
    while not done:
        ctypes.memmove(buf, bad, 16)
        ctypes.memmove(buf, good, 16)
t = threading.Thread(target=flip); t.start()
ok = refused = 0
for i in range(300):
    s = socket.socket()
    r = libc.connect(s.fileno(), buf, 16)
    if r == 0:
        ok += 1
    elif ctypes.get_errno() == 13:
        refused += 1
    s.close()
done = True; t.join()
print(ok, refused)
"#
    );
    let out = run(&rules_allowing(addr, pa, "tcp"), &script);
    let counts: Vec<u32> = out.split_whitespace().map(|w| w.parse().unwrap()).collect();
    assert_eq!(counts.len(), 2, "{out}");
    eprintln!("connect race: {} connected, {} refused", counts[0], counts[1]);
    assert_eq!(counts[0] + counts[1], 300, "every attempt either connected to the allowed one or was refused");
    stop(&a);
    stop(&d);
    assert_eq!(allowed.join().unwrap().len() as u32, counts[0]);
    assert_eq!(denied.join().unwrap().len(), 0, "the race reached the denied destination");
}

#[test]
fn a_send_slipped_past_the_filter_meets_the_kernel_backstop() {
    // The filter lets sendmsg through on one descriptor number (the listener's hand-off); a
    // program that puts a UDP socket there sends undecided, and the cgroup hook refuses it.
    let addr = host_address();
    let target = UdpSocket::bind((addr, 0)).unwrap();
    let port = target.local_addr().unwrap().port();
    let out = run(
        "[net]\nunmatched = \"deny\"\n",
        &format!(
            r#"
import resource
soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
slot = min(max(soft, 64), 1024) - 1
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
os.dup2(s.fileno(), slot)
t = socket.socket(fileno=slot)
try:
    t.sendmsg([b'ping'], [], 0, ('{addr}', {port})); print('sent')
except OSError as e:
    print(e.errno)
"#
        ),
    );
    assert_eq!(out.trim(), libc::EPERM.to_string(), "{out}");
    target.set_nonblocking(true).unwrap();
    assert!(target.recv(&mut [0u8; 16]).is_err(), "the slipped datagram was delivered");
}

#[test]
fn other_ip_protocols_cannot_be_opened() {
    let out = run(
        "[net]\nunmatched = \"allow\"\n",
        "for proto in [132, 262, 136]:\n    try:\n        socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto != 136 else socket.SOCK_DGRAM, proto); print('opened')\n    except OSError as e:\n        print(e.errno)",
    );
    assert_eq!(out.lines().collect::<Vec<_>>(), vec![libc::EPROTONOSUPPORT.to_string(); 3], "{out}");
}

#[test]
fn host_loopback_stays_unreachable_even_when_allowed() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run("[net]\nunmatched = \"allow\"\n", &format!("tcp('127.0.0.1', {port})\ntcp('::1', {port})"));
    // Allowed, but the box's loopback is its own: nobody listens there.
    assert_eq!(out.lines().collect::<Vec<_>>(), vec![libc::ECONNREFUSED.to_string(); 2], "{out}");
    listener.set_nonblocking(true).unwrap();
    assert!(listener.accept().is_err(), "the host's loopback service was reached from the box");
}

#[test]
fn the_box_s_own_loopback_and_unix_sockets_are_untouched() {
    let out = run(
        "[net]\nunmatched = \"deny\"\n",
        "l = socket.socket(); l.bind(('127.0.0.1', 0)); l.listen()\nport = l.getsockname()[1]\n\
         a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)\na.sendmsg([b'unix'])\n\
         u = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); u.bind('/tmp/hivebox-decide.sock')\n\
         socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'path', '/tmp/hivebox-decide.sock')\n\
         if os.fork() == 0:\n    socket.create_connection(('127.0.0.1', port)).sendall(b'hello'); os._exit(0)\n\
         c, _ = l.accept(); print(c.recv(5).decode(), b.recv(4).decode(), u.recv(4).decode(), os.wait()[1])",
    );
    assert_eq!(out.trim(), "hello unix path 0", "{out}");
}
