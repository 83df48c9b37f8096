//! Identity from kernel facts: a process placed in a `hivebox/<box>` cgroup is that box's,
//! a host process is not, and a process that reuses a boxed process's pid does not inherit
//! its box.

use super::*;
use hivebox_core::Value;
use hivebox_core::access::KEY_ALL_ACCESS;
use hivebox_proto::HKEY_LOCAL_MACHINE;
use std::io::{BufRead, Write};

/// The cgroup v2 mount (the unified hierarchy), from this process's mount table.
fn cgroup2_root() -> PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir = mounts.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        post.starts_with("cgroup2 ").then(|| pre.split(' ').nth(4).map(PathBuf::from))?
    });
    dir.expect("a cgroup v2 hierarchy is mounted (the box tests need one)")
}

/// Creates box `name` (a boxed process is served only once its box exists).
fn create_box(d: &TestDaemon, name: &str) {
    let reply =
        d.registry().transport().call(hivebox_proto::Request::BoxCreate { name: name.into(), ephemeral: false });
    assert_eq!(reply, hivebox_proto::Reply::Done, "creating box {name}");
}

/// A cgroup `hivebox/<name>`, removed when dropped.
pub struct BoxCgroup {
    pub dir: PathBuf,
}

impl BoxCgroup {
    pub fn new(name: &str) -> Self {
        let dir = cgroup2_root().join("hivebox").join(name);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        BoxCgroup { dir }
    }

    pub fn add(&self, pid: u32) {
        std::fs::write(self.dir.join("cgroup.procs"), pid.to_string()).unwrap();
    }
}

impl Drop for BoxCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Client side: waits for "go" on stdin, connects, prints what the daemon says it is, and
/// with `write` sets a value under the Run key (a default-policy notify rule).
pub fn child_identity(socket: &Path, args: &[String]) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let c = Connection::connect(socket).unwrap();
    let i = c.identity().clone();
    println!("@{} {} {} {}", i.pid, i.uid, i.box_name.as_deref().unwrap_or("-"), i.image);
    if args.first().map(String::as_str) == Some("write") {
        let reg = Registry::new(Arc::new(Client::from_connection(c).unwrap()));
        let path = r"SOFTWARE\Microsoft\Windows\CurrentVersion\Run";
        let (h, _) = reg.create_key(HKEY_LOCAL_MACHINE, path, None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
        reg.set_value(h, "boxed-probe", Value::sz("/tmp/x")).unwrap();
        println!("@written");
    }
}

struct Seen {
    pid: u32,
    uid: u32,
    box_name: Option<String>,
    image: String,
}

fn run_identity_child(d: &TestDaemon, cgroup: Option<&BoxCgroup>, args: &[&str]) -> (Seen, Vec<String>) {
    let mut child = spawn_child("identity", &d.socket(), args);
    let pid = child.id();
    if let Some(cg) = cgroup {
        cg.add(pid);
    }
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let lines = child_output(child);
    let f: Vec<&str> = lines[0].splitn(4, ' ').collect();
    let seen = Seen {
        pid: f[0].parse().unwrap(),
        uid: f[1].parse().unwrap(),
        box_name: (f[2] != "-").then(|| f[2].to_owned()),
        image: f[3].to_owned(),
    };
    assert_eq!(seen.pid, pid, "the daemon names the process that connected");
    (seen, lines)
}

fn events(d: &TestDaemon) -> Vec<serde_json::Value> {
    let log = d.home.path().join("events/events.jsonl");
    std::fs::read_to_string(log).unwrap_or_default().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

#[test]
fn a_host_process_is_known_by_kernel_facts() {
    let d = TestDaemon::start();
    let (seen, _) = run_identity_child(&d, None, &[]);
    assert_eq!(seen.box_name, None);
    assert_eq!(seen.uid, rustix::process::geteuid().as_raw());
    assert_eq!(seen.image, std::env::current_exe().unwrap().display().to_string());
}

#[test]
fn a_process_in_a_hivebox_cgroup_is_boxed_and_its_events_say_so() {
    let d = TestDaemon::start();
    let name = format!("it-{}-cg", std::process::id());
    create_box(&d, &name);
    let cg = BoxCgroup::new(&name);
    let (seen, lines) = run_identity_child(&d, Some(&cg), &["write"]);
    assert_eq!(seen.box_name.as_deref(), Some(name.as_str()));
    assert_eq!(lines.last().map(String::as_str), Some("written"));
    // The event names the box, the executable and the pid the kernel gave.
    wait_for("the boxed write's event", || events(&d).iter().any(|e| e["box"] == name.as_str()));
    let e = events(&d).into_iter().find(|e| e["box"] == name.as_str()).unwrap();
    assert_eq!(e["ProcessId"], seen.pid);
    assert_eq!(e["Image"], seen.image.as_str());
    assert!(e["TargetObject"].as_str().unwrap().ends_with(r"CurrentVersion\Run\boxed-probe"), "{e}");
}

#[test]
fn a_process_reusing_a_boxed_pid_does_not_inherit_the_box() {
    let d = TestDaemon::start();
    let name = format!("it-{}-reuse", std::process::id());
    create_box(&d, &name);
    let cg = BoxCgroup::new(&name);
    let (boxed, _) = run_identity_child(&d, Some(&cg), &[]);
    assert_eq!(boxed.box_name.as_deref(), Some(name.as_str()));
    // Make the kernel hand the same pid to a host process, then let it connect.
    let mut reused = None;
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (boxed.pid - 1).to_string())
            .expect("writing ns_last_pid needs root (CI runs as root)");
        let (host, _) = run_identity_child(&d, None, &[]);
        if host.pid == boxed.pid {
            reused = Some(host);
            break;
        }
    }
    let host = reused.expect("the kernel never gave the boxed pid to a new process");
    assert_eq!(host.box_name, None, "pid {} was boxed before it was reused", host.pid);
}
