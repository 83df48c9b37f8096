//! End-to-end tests of the daemon with real client processes: this test binary re-runs
//! itself as a client (the `child` test is their entry point) so that each client is a
//! process of its own, with its own pid, cgroup and connection.

mod boxes;
mod changes;
mod decisions;
mod faults;
mod identity;
mod isolation;
mod linearizable;
mod netdecide;
mod protocol;

use hivebox_client::{Client, Connection, Registry, Transport};
use hivebox_daemon::{Daemon, DaemonOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A daemon running in this process on a fresh home.
#[derive(Debug)]
pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub home: tempfile::TempDir,
}

impl TestDaemon {
    pub fn start() -> Self {
        let home = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(&DaemonOptions { home: home.path().to_owned(), socket: None }).unwrap();
        TestDaemon { daemon: Some(daemon), home }
    }

    pub fn socket(&self) -> PathBuf {
        self.home.path().join("hivebox.sock")
    }

    pub fn registry(&self) -> Registry {
        let c: Arc<dyn Transport> = Arc::new(Client::connect(&self.socket()).unwrap());
        Registry::new(c)
    }

    pub fn connection(&self) -> Connection {
        Connection::connect(&self.socket()).unwrap()
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().unwrap();
        }
    }
}

/// Starts this test binary as a client process running `mode` (see `child`).
pub fn spawn_child(mode: &str, socket: &Path, args: &[&str]) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child", "--nocapture", "--test-threads=1", "-q"])
        .env("HIVEBOX_TEST_CHILD", mode)
        .env("HIVEBOX_TEST_SOCKET", socket)
        .env("HIVEBOX_TEST_ARGS", args.join("\u{1f}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// The lines a child printed with the `@` prefix (libtest prints its own lines too).
pub fn child_output(child: Child) -> Vec<String> {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "child failed: {:?}", out.status);
    String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| l.strip_prefix('@').map(str::to_owned)).collect()
}

/// Waits until `f` holds, for at most 10 seconds.
pub fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The entry point of client processes (`spawn_child`, which sets `HIVEBOX_TEST_CHILD`). Run
/// as an ordinary test, it checks that very mechanism: this binary started again as a
/// client process answers in its own process.
#[test]
fn child() {
    let Ok(mode) = std::env::var("HIVEBOX_TEST_CHILD") else {
        let child = spawn_child("echo", Path::new("/nonexistent"), &["ping"]);
        let pid = child.id();
        assert_eq!(child_output(child), [format!("pong {pid}")]);
        return;
    };
    let socket = PathBuf::from(std::env::var("HIVEBOX_TEST_SOCKET").unwrap());
    let args: Vec<String> = std::env::var("HIVEBOX_TEST_ARGS").unwrap().split('\u{1f}').map(str::to_owned).collect();
    match mode.as_str() {
        "identity" => identity::child_identity(&socket, &args),
        "box" => boxes::child_box(&socket, &args),
        "box-admin" => boxes::child_box_admin(&socket, &args),
        "worker" => linearizable::child_worker(&socket, &args),
        "daemon" => faults::child_daemon(&args),
        "isolation" => isolation::child_isolation(&socket, &args),
        "net" => netdecide::child_net(&socket, &args),
        "echo" => println!("@pong {}", std::process::id()),
        other => panic!("unknown child mode {other}"),
    }
}
