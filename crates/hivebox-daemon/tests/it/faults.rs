//! Faults and bad input: garbage, a huge length, half a message, a request before the hello,
//! a client gone mid-transaction, a daemon killed with SIGKILL, a full disk. Each closes only
//! the offending connection, loses nothing acknowledged and corrupts nothing.

use super::*;
use hivebox_core::access::KEY_ALL_ACCESS;
use hivebox_core::{NtStatus, Value};
use hivebox_proto::{HKEY_LOCAL_MACHINE, Request, VERSION};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// A healthy client's key, used before and after each fault.
fn healthy(d: &TestDaemon) -> (Registry, u64) {
    let reg = d.registry();
    let (h, _) = reg.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\healthy", None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    reg.set_value(h, "v", Value::dword(1)).unwrap();
    (reg, h)
}

fn still_healthy(reg: &Registry, h: u64) {
    assert_eq!(reg.query_value(h, "v").unwrap(), Value::dword(1));
    reg.set_value(h, "w", Value::dword(2)).unwrap();
}

/// Reads until the daemon closes the connection; returns what it sent.
fn read_to_close(s: &mut UnixStream) -> Vec<u8> {
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    match s.read_to_end(&mut got) {
        Ok(_) => got,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => got,
        Err(e) => panic!("the daemon did not close the connection: {e}"),
    }
}

fn hello_bytes() -> Vec<u8> {
    let mut b = Vec::new();
    Request::Hello { version: VERSION }.encode(1, &mut b);
    b
}

#[test]
fn garbage_closes_only_that_connection() {
    let d = TestDaemon::start();
    let (reg, h) = healthy(&d);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(&hello_bytes()).unwrap();
    // A frame whose body is not a request.
    s.write_all(&[6, 0, 0, 0, 9, 0, 0, 0, 0xEE, 0x42]).unwrap();
    let got = read_to_close(&mut s);
    assert!(!got.is_empty(), "the hello was answered and the bad request got an error before the close");
    still_healthy(&reg, h);
}

#[test]
fn a_huge_length_closes_at_once() {
    let d = TestDaemon::start();
    let (reg, h) = healthy(&d);
    let mut s = UnixStream::connect(d.socket()).unwrap();
    s.write_all(&hello_bytes()).unwrap();
    s.write_all(&u32::MAX.to_le_bytes()).unwrap();
    // Closed without waiting for 4 GiB to arrive.
    read_to_close(&mut s);
    still_healthy(&reg, h);
}

#[test]
fn a_request_before_the_hello_closes() {
    let d = TestDaemon::start();
    let mut s = UnixStream::connect(d.socket()).unwrap();
    let mut b = Vec::new();
    Request::Ping.encode(1, &mut b);
    s.write_all(&b).unwrap();
    assert!(read_to_close(&mut s).is_empty(), "nothing is answered before the hello");
}

#[test]
fn half_a_message_then_gone_changes_nothing() {
    let d = TestDaemon::start();
    let (reg, h) = healthy(&d);
    let mut c = d.connection();
    let mut b = Vec::new();
    let handle = match c.call(&Request::OpenKey {
        parent: HKEY_LOCAL_MACHINE,
        path: r"SOFTWARE\healthy".into(),
        options: 0,
        access: KEY_ALL_ACCESS,
        txn: 0,
    }) {
        Ok(hivebox_proto::Reply::Handle(h)) => h,
        other => panic!("{other:?}"),
    };
    Request::SetValue { handle, name: "half".into(), value: Value::dword(7) }.encode(2, &mut b);
    let mut s = c.stream().try_clone().unwrap();
    s.write_all(&b[..b.len() / 2]).unwrap();
    drop(s);
    drop(c);
    wait_for("the half-sent connection's handle to close", || {
        d.daemon.as_ref().unwrap().registry().open_handles() <= 1
    });
    assert_eq!(reg.query_value(h, "half").unwrap_err().status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    still_healthy(&reg, h);
}

#[test]
fn a_client_gone_mid_transaction_is_rolled_back_and_its_handles_closed() {
    let d = TestDaemon::start();
    let (reg, h) = healthy(&d);
    let before = d.daemon.as_ref().unwrap().registry().open_handles();
    {
        let gone = d.registry();
        let t = gone.begin_transaction().unwrap();
        let (k, _) = gone.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\txn", None, 0, KEY_ALL_ACCESS, t, true).unwrap();
        gone.set_value(k, "v", Value::dword(9)).unwrap();
        for _ in 0..50 {
            gone.open_key(HKEY_LOCAL_MACHINE, "SOFTWARE", 0, KEY_ALL_ACCESS, 0).unwrap();
        }
        assert!(d.daemon.as_ref().unwrap().registry().open_handles() > before + 50);
    }
    wait_for("the gone client's handles to close", || d.daemon.as_ref().unwrap().registry().open_handles() == before);
    let missing = reg.open_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\txn", 0, KEY_ALL_ACCESS, 0).unwrap_err();
    assert_eq!(missing.status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    // Nothing of it stands in anyone's way.
    let (k, disp) = reg.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\txn", None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    assert_eq!(disp, hivebox_core::Disposition::CreatedNewKey);
    reg.close_key(k).unwrap();
    still_healthy(&reg, h);
}

/// Client-process side of the SIGKILL test: a daemon on the home in `args[0]`.
pub fn child_daemon(args: &[String]) {
    let home = PathBuf::from(&args[0]);
    let d = Daemon::start(&DaemonOptions { home, socket: None }).unwrap();
    println!("@ready {}", d.socket().display());
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park();
    }
}

#[test]
fn sigkill_loses_nothing_acknowledged() {
    let home = tempfile::tempdir().unwrap();
    let socket = home.path().join("hivebox.sock");
    let daemon = spawn_child("daemon", &socket, &[home.path().to_str().unwrap()]);
    wait_for("the daemon's socket", || Connection::connect(&socket).is_ok());
    let pid = daemon.id();
    let writers: Vec<_> = (0..4)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let reg = Registry::new(Arc::new(Client::connect(&socket).unwrap()));
                let path = format!(r"SOFTWARE\kill\w{i}");
                let (h, _) = reg.create_key(HKEY_LOCAL_MACHINE, &path, None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
                let mut acked = 0u32;
                loop {
                    match reg.set_value(h, "seq", Value::dword(acked + 1)) {
                        Ok(()) => acked += 1,
                        Err(e) => {
                            assert_eq!(e.status, NtStatus::STATUS_CONNECTION_DISCONNECTED, "{e}");
                            return acked;
                        }
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    rustix::process::kill_process(rustix::process::Pid::from_raw(pid as i32).unwrap(), rustix::process::Signal::KILL)
        .unwrap();
    let mut daemon = daemon;
    daemon.wait().unwrap();
    let acked: Vec<u32> = writers.into_iter().map(|w| w.join().unwrap()).collect();
    assert!(acked.iter().all(|a| *a > 0), "every writer got writes acknowledged: {acked:?}");
    // Restart on the same home: the kernel released the dead daemon's lock.
    let d = Daemon::start(&DaemonOptions { home: home.path().to_owned(), socket: None }).unwrap();
    let reg = Registry::new(Arc::new(Client::connect(d.socket()).unwrap()));
    for (i, a) in acked.iter().enumerate() {
        let h = reg.open_key(HKEY_LOCAL_MACHINE, &format!(r"SOFTWARE\kill\w{i}"), 0, KEY_ALL_ACCESS, 0).unwrap();
        let Value { data, .. } = reg.query_value(h, "seq").unwrap();
        let got = u32::from_le_bytes(data[..4].try_into().unwrap());
        // The write in flight at the kill may or may not have landed; nothing acknowledged is lost.
        assert!(got == *a || got == a + 1, "writer {i}: acknowledged {a}, found {got}");
    }
    drop(reg);
    d.stop().unwrap();
}

/// A small tmpfs mounted on a temporary directory (needs root), unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn new(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(st.success(), "mounting a tmpfs needs root (CI runs as root)");
        SmallDisk { dir }
    }
}

impl SmallDisk {
    fn grow(&self, size: &str) {
        let st =
            Command::new("mount").args(["-o", &format!("remount,size={size}")]).arg(self.dir.path()).status().unwrap();
        assert!(st.success());
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

#[test]
fn a_full_disk_fails_writes_clearly_and_corrupts_nothing() {
    let disk = SmallDisk::new("4m");
    let home = disk.dir.path().join("home");
    let d = Daemon::start(&DaemonOptions { home: home.clone(), socket: None }).unwrap();
    let reg = Registry::new(Arc::new(Client::connect(d.socket()).unwrap()));
    let (h, _) = reg.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\full", None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    let blob = Value { ty: hivebox_core::ValueType::REG_BINARY, data: vec![0xAB; 64 << 10] };
    let mut acked = 0;
    let failure = loop {
        match reg.set_value(h, &format!("v{acked}"), blob.clone()) {
            Ok(()) => acked += 1,
            Err(e) => break e,
        }
        assert!(acked < 1000, "a 4 MiB disk never filled");
    };
    assert_eq!(failure.status, NtStatus::STATUS_DISK_FULL, "{failure}");
    assert!(acked > 0);
    // Reads go on; what was acknowledged is there.
    assert_eq!(reg.query_value(h, "v0").unwrap(), blob);
    drop(reg);
    d.stop().unwrap();
    // Make room, open again: everything acknowledged, nothing else, no damage.
    disk.grow("64m");
    let d = Daemon::start(&DaemonOptions { home, socket: None }).unwrap();
    let reg = Registry::new(Arc::new(Client::connect(d.socket()).unwrap()));
    let h = reg.open_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\full", 0, KEY_ALL_ACCESS, 0).unwrap();
    for i in 0..acked {
        assert_eq!(reg.query_value(h, &format!("v{i}")).unwrap(), blob, "v{i}");
    }
    assert_eq!(reg.query_value(h, &format!("v{acked}")).unwrap_err().status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    drop(reg);
    d.stop().unwrap();
}

#[test]
fn a_second_daemon_on_the_same_store_is_refused_naming_the_holder() {
    let d = TestDaemon::start();
    let e = Daemon::start(&DaemonOptions { home: d.home.path().to_owned(), socket: None }).unwrap_err();
    let message = format!("{e:#}");
    assert!(message.contains(&format!("locked by process {}", std::process::id())), "{message}");
    // The first one still serves.
    let (reg, h) = healthy(&d);
    still_healthy(&reg, h);
}
