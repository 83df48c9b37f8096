//! Helpers the escape tests share: a cgroup of a test's own, running a box to its end, the
//! host's outside address.

use hivebox_sandbox::BoxSpec;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

/// A cgroup of the test's own, removed (once empty) when dropped.
pub struct TestCgroup(pub PathBuf);

impl TestCgroup {
    pub fn new(tag: &str) -> TestCgroup {
        static N: AtomicU32 = AtomicU32::new(0);
        assert!(rustix::process::geteuid().is_root(), "the escape tests need root (CI runs them as root)");
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let root = info
            .lines()
            .find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                if post.starts_with("cgroup2 ") { pre.split(' ').nth(4) } else { None }
            })
            .expect("a cgroup v2 hierarchy is mounted");
        let dir = Path::new(root).join(format!(
            "hivebox-escape-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TestCgroup(dir)
    }

    /// The host pids in it whose command name is `comm`.
    pub fn pids(&self, comm: &str) -> Vec<u32> {
        let procs = std::fs::read_to_string(self.0.join("cgroup.procs")).unwrap();
        procs
            .lines()
            .filter_map(|p| p.parse().ok())
            .filter(|p| std::fs::read_to_string(format!("/proc/{p}/comm")).is_ok_and(|c| c.trim() == comm))
            .collect()
    }

    /// The one process named `comm` in it, once there is exactly one (a shell's child is
    /// another `sh` until it has `exec`ed; 5 s at most).
    pub fn pid(&self, comm: &str) -> u32 {
        let mut pids = Vec::new();
        for _ in 0..250 {
            pids = self.pids(comm);
            if pids.len() == 1 {
                return pids[0];
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        panic!("processes named {comm} in {}: {pids:?}", self.0.display());
    }
}

impl Drop for TestCgroup {
    fn drop(&mut self) {
        // A failed test may leave its box running: end whatever is left (this write is not a
        // signal a process sends, so no protection refuses it).
        let _ = std::fs::write(self.0.join("cgroup.kill"), "1");
        for _ in 0..100 {
            if std::fs::remove_dir(&self.0).is_ok() || !self.0.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Starts `spec` with its output captured, waits for it: its exit status and output.
pub fn run_to_end(mut spec: BoxSpec) -> (std::process::ExitStatus, String) {
    let (mut reader, writer) = std::io::pipe().unwrap();
    spec.output = Some(Arc::new(writer.into()));
    let child = hivebox_sandbox::spawn_boxed(&spec).unwrap_or_else(|e| panic!("the box starts: {e}"));
    drop(spec);
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    (child.wait().unwrap(), out)
}

/// The host's first global IPv4 address (`ip -4 -o addr show scope global`): what a box
/// reaches through pasta.
pub fn host_address() -> IpAddr {
    let out = std::process::Command::new("ip").args(["-4", "-o", "addr", "show", "scope", "global"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let word = text.split_whitespace().skip_while(|w| *w != "inet").nth(1);
    word.and_then(|w| w.split('/').next()?.parse().ok())
        .expect("the machine needs a global IPv4 address for the network tests (ip -4 addr show scope global)")
}
