//! Boxes through the real daemon: names, create / list / discard / delete, a damaged box hive
//! refusing service, boxed processes served only once their box is mounted (and refused for a
//! box that does not exist), ephemeral boxes removed after their last process exits.
//!
//! These need root and a cgroup v2 hierarchy (CI has both); without them they fail loudly.

use super::*;
use crate::identity::BoxCgroup;
use hivebox_core::access::KEY_ALL_ACCESS;
use hivebox_core::{Caller, NtStatus, OpenOptions, Value};
use hivebox_daemon::boxes::BoxInfo;
use hivebox_proto::{HKEY_LOCAL_MACHINE, Reply, Request};
use std::io::{BufRead, Write};

/// Where the boxed children write.
const KEY: &str = r"SOFTWARE\HiveboxBoxTest";

/// A box name unique to this test process (cgroups are machine-wide).
fn unique(tag: &str) -> String {
    format!("it-{}-{tag}", std::process::id())
}

/// Client side: waits for "go", connects, prints `@served BOX` or `@refused MESSAGE`; with
/// `write DATA`, sets `v` = DATA under [`KEY`] and prints `@written`.
pub fn child_box(socket: &Path, args: &[String]) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let c = match Connection::connect(socket) {
        Ok(c) => c,
        Err(e) => {
            println!("@refused {e}");
            return;
        }
    };
    println!("@served {}", c.identity().box_name.as_deref().unwrap_or("-"));
    if args.first().map(String::as_str) == Some("write") {
        let reg = Registry::new(Arc::new(Client::from_connection(c).unwrap()));
        let (h, _) = reg.create_key(HKEY_LOCAL_MACHINE, KEY, None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
        reg.set_value(h, "v", Value::sz(&args[1])).unwrap();
        println!("@written");
    }
}

/// Runs a `box` child in `cgroup` (after placing it there) and returns its `@` lines.
fn run_boxed(d: &TestDaemon, cgroup: &BoxCgroup, args: &[&str]) -> Vec<String> {
    let mut child = spawn_child("box", &d.socket(), args);
    cgroup.add(child.id());
    child.stdin.take().unwrap().write_all(b"go\n").unwrap();
    child_output(child)
}

fn call(d: &TestDaemon, request: Request) -> Reply {
    d.registry().transport().call(request)
}

fn done(d: &TestDaemon, request: Request) {
    let r = call(d, request.clone());
    assert_eq!(r, Reply::Done, "{request:?}");
}

fn refused(d: &TestDaemon, request: Request) -> (NtStatus, String) {
    match call(d, request.clone()) {
        Reply::Error { status, message } => (status, message),
        other => panic!("{request:?} was answered {other:?}"),
    }
}

fn list(d: &TestDaemon) -> Vec<BoxInfo> {
    match call(d, Request::BoxList) {
        Reply::Text(t) => serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}")),
        other => panic!("BoxList: {other:?}"),
    }
}

fn listed(d: &TestDaemon, name: &str) -> Option<BoxInfo> {
    list(d).into_iter().find(|b| b.name == name)
}

/// The host's value `v` under [`KEY`], read in-process as the registry itself.
fn host_value(d: &TestDaemon) -> Option<Value> {
    let reg = d.daemon.as_ref().unwrap().registry();
    let me = Caller::system();
    let h = reg.open_key(&me, None, &format!(r"\REGISTRY\MACHINE\{KEY}"), &OpenOptions::default()).ok()?;
    let v = reg.query_value(&me, h, "v").ok();
    reg.close_key(&me, h).unwrap();
    v
}

/// Stops the daemon and starts another on the same home (nothing mounted but the base).
fn restart(d: &mut TestDaemon) {
    d.daemon.take().unwrap().stop().unwrap();
    d.daemon = Some(Daemon::start(&DaemonOptions { home: d.home.path().to_owned(), socket: None }).unwrap());
}

#[test]
fn box_names_are_checked_and_the_bad_character_named() {
    let d = TestDaemon::start();
    for (name, says) in [
        ("", "empty"),
        ("a/b", "'/' at position 2"),
        (r"..\x", "'\\\\' at position 3"),
        ("a b", "' ' at position 2"),
        (".hidden", "starts with '.'"),
        ("-x", "starts with '-'"),
        ("tr\u{e9}s", "'\u{e9}' at position 3"),
    ] {
        let (status, message) = refused(&d, Request::BoxCreate { name: name.into(), ephemeral: false });
        assert_eq!(status, NtStatus::STATUS_OBJECT_NAME_INVALID, "{name:?}: {message}");
        assert!(message.contains(says), "{name:?}: {message}");
    }
    let long = "a".repeat(65);
    let (_, message) = refused(&d, Request::BoxCreate { name: long, ephemeral: false });
    assert!(message.contains("65 characters") && message.contains("64"), "{message}");
    // Nothing was created for any of them.
    assert!(list(&d).is_empty());
    assert!(std::fs::read_dir(d.home.path().join("boxes")).map_or(true, |mut e| e.next().is_none()));
    // Every request naming a box checks the name.
    for r in [
        Request::BoxDelete { name: "../hives".into() },
        Request::BoxDiscard { name: "../hives".into() },
        Request::BoxDiff { name: "a/b".into(), json: false },
    ] {
        assert_eq!(refused(&d, r).0, NtStatus::STATUS_OBJECT_NAME_INVALID);
    }
    assert!(d.home.path().join("hives").is_dir(), "nothing outside boxes/ is touched");
}

#[test]
fn create_list_discard_delete() {
    let d = TestDaemon::start();
    let name = unique("life");
    done(&d, Request::BoxCreate { name: name.clone(), ephemeral: false });
    // (Creating a box removes an empty cgroup an earlier box of that name left.)
    let cg = BoxCgroup::new(&name);
    let dir = d.home.path().join("boxes").join(&name);
    assert!(dir.join("registry.hiv").is_file() && dir.join("registry.hiv.wal").is_file());
    assert_eq!(std::fs::read_to_string(dir.join("box.toml")).unwrap().lines().last(), Some("ephemeral = false"));
    assert!(d.daemon.as_ref().unwrap().boxes().is_mounted(&name), "a new box is served at once");
    // The same name again, in any case, is a collision.
    for again in [name.clone(), name.to_uppercase()] {
        let (status, message) = refused(&d, Request::BoxCreate { name: again, ephemeral: true });
        assert_eq!(status, NtStatus::STATUS_OBJECT_NAME_COLLISION, "{message}");
        assert!(message.contains(&name), "{message}");
    }
    let b = listed(&d, &name).unwrap();
    assert_eq!((b.ephemeral, b.processes, b.changes, b.error.as_deref()), (false, 0, Some(0), None));
    assert!(b.bytes > 4096, "the empty hive and its log take room: {b:?}");

    // A boxed process writes: the box has a change, the host has none.
    let lines = run_boxed(&d, &cg, &["write", "boxed"]);
    assert_eq!(lines, [format!("served {name}"), "written".to_owned()]);
    assert_eq!(host_value(&d), None, "the host registry is untouched");
    // As `box diff` lists them: the key added, and its value.
    assert_eq!(listed(&d, &name).unwrap().changes, Some(2));

    // While a process runs in the box, discard and delete are refused.
    let mut waiting = spawn_child("box", &d.socket(), &[]);
    cg.add(waiting.id());
    assert_eq!(listed(&d, &name).unwrap().processes, 1);
    for r in [Request::BoxDiscard { name: name.clone() }, Request::BoxDelete { name: name.clone() }] {
        let (status, message) = refused(&d, r);
        assert_eq!(status, NtStatus::STATUS_CANNOT_DELETE);
        assert!(message.contains("1 process is running"), "{message}");
    }
    waiting.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(child_output(waiting), [format!("served {name}")]);
    wait_for("the box to empty", || listed(&d, &name).unwrap().processes == 0);

    done(&d, Request::BoxDiscard { name: name.clone() });
    let b = listed(&d, &name).unwrap();
    assert_eq!((b.changes, b.ephemeral), (Some(0), false), "discarded; the settings stay");
    // The box still serves, from a fresh hive.
    assert_eq!(run_boxed(&d, &cg, &["write", "again"]), [format!("served {name}"), "written".to_owned()]);
    // As `box diff` lists them: the key added, and its value.
    assert_eq!(listed(&d, &name).unwrap().changes, Some(2));

    wait_for("the box to empty", || listed(&d, &name).unwrap().processes == 0);
    done(&d, Request::BoxDelete { name: name.clone() });
    assert!(!dir.exists(), "the box's directory is gone");
    assert!(!cg.dir.exists(), "its cgroup is gone");
    assert_eq!(listed(&d, &name), None);
    assert!(!d.daemon.as_ref().unwrap().boxes().is_mounted(&name));
    let (status, _) = refused(&d, Request::BoxDelete { name: name.clone() });
    assert_eq!(status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_eq!(host_value(&d), None);
}

#[test]
fn a_boxed_process_is_served_once_its_box_is_mounted_and_an_unknown_box_is_refused() {
    let mut d = TestDaemon::start();
    let name = unique("lazy");
    done(&d, Request::BoxCreate { name: name.clone(), ephemeral: false });
    restart(&mut d);
    let boxes = d.daemon.as_ref().unwrap().boxes().clone();
    assert!(!boxes.is_mounted(&name), "boxes are mounted when first needed");
    assert!(!boxes.filter().has_box(&name));
    let cg = BoxCgroup::new(&name);
    assert_eq!(run_boxed(&d, &cg, &["write", "x"]), [format!("served {name}"), "written".to_owned()]);
    assert!(boxes.is_mounted(&name) && boxes.filter().has_box(&name));
    assert_eq!(host_value(&d), None);

    let ghost = unique("ghost");
    let ghost_cg = BoxCgroup::new(&ghost);
    let lines = run_boxed(&d, &ghost_cg, &["write", "x"]);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("refused "), "{lines:?}");
    assert!(lines[0].contains("STATUS_ACCESS_DENIED") && lines[0].contains(&format!("there is no box named {ghost}")));
    assert!(!d.home.path().join("boxes").join(&ghost).exists(), "no box is made up for it");
    // Processes may not manage boxes, from inside a box: its own or another.
    let mut admin = spawn_child("box-admin", &d.socket(), &[&ghost]);
    cg.add(admin.id());
    admin.stdin.take().unwrap().write_all(b"go\n").unwrap();
    let lines = child_output(admin);
    assert!(lines[0].contains("STATUS_ACCESS_DENIED") && lines[0].contains("may not manage boxes"), "{lines:?}");
}

/// Client side for the test above: a boxed process trying to create a box.
pub fn child_box_admin(socket: &Path, args: &[String]) {
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).unwrap();
    let c = Client::connect(socket).unwrap();
    match c.call(Request::BoxCreate { name: args[0].clone(), ephemeral: false }) {
        Reply::Error { status, message } => println!("@{} {message}", status.name().unwrap_or("?")),
        other => println!("@{other:?}"),
    }
}

#[test]
fn a_damaged_box_hive_refuses_service_naming_the_file() {
    let mut d = TestDaemon::start();
    let name = unique("dmg");
    done(&d, Request::BoxCreate { name: name.clone(), ephemeral: false });
    d.daemon.take().unwrap().stop().unwrap();
    let image = d.home.path().join("boxes").join(&name).join("registry.hiv");
    let mut bytes = std::fs::read(&image).unwrap();
    let at = bytes.len() - 64;
    bytes[at] ^= 0xA5;
    std::fs::write(&image, &bytes).unwrap();
    d.daemon = Some(Daemon::start(&DaemonOptions { home: d.home.path().to_owned(), socket: None }).unwrap());

    let cg = BoxCgroup::new(&name);
    let lines = run_boxed(&d, &cg, &["write", "x"]);
    assert_eq!(lines.len(), 1, "a boxed process of a damaged box is not served: {lines:?}");
    let line = &lines[0];
    assert!(line.starts_with("refused ") && line.contains("STATUS_ACCESS_DENIED"), "{line}");
    assert!(line.contains(&image.display().to_string()) && line.contains("is corrupt at byte"), "{line}");
    assert_eq!(host_value(&d), None, "nothing reached the host registry");
    assert!(!d.daemon.as_ref().unwrap().boxes().is_mounted(&name));
    // The list says what is wrong; the file is left as it was.
    let b = listed(&d, &name).unwrap();
    assert_eq!(b.changes, None);
    assert!(b.error.as_deref().is_some_and(|e| e.contains("registry.hiv is corrupt")), "{b:?}");
    let (status, message) = refused(&d, Request::BoxDiff { name: name.clone(), json: false });
    assert_eq!(status, NtStatus::STATUS_REGISTRY_CORRUPT, "{message}");
    assert_eq!(std::fs::read(&image).unwrap(), bytes);
    // Deleting it is how to get rid of it.
    done(&d, Request::BoxDelete { name: name.clone() });
    assert_eq!(listed(&d, &name), None);
}

#[test]
fn an_ephemeral_box_goes_after_its_last_process_exits() {
    let d = TestDaemon::start();
    let name = unique("eph");
    done(&d, Request::BoxCreate { name: name.clone(), ephemeral: true });
    let dir = d.home.path().join("boxes").join(&name);
    assert_eq!(std::fs::read_to_string(dir.join("box.toml")).unwrap().lines().last(), Some("ephemeral = true"));
    // Unused, it stays.
    std::thread::sleep(Duration::from_millis(600));
    assert!(dir.is_dir(), "an ephemeral box nobody entered yet stays");
    let cg = BoxCgroup::new(&name);
    let mut first = spawn_child("box", &d.socket(), &[]);
    cg.add(first.id());
    let mut second = spawn_child("box", &d.socket(), &[]);
    cg.add(second.id());
    std::thread::sleep(Duration::from_millis(600));
    first.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(child_output(first), [format!("served {name}")]);
    std::thread::sleep(Duration::from_millis(600));
    assert!(dir.is_dir(), "one process is still in the box");
    second.stdin.take().unwrap().write_all(b"go\n").unwrap();
    assert_eq!(child_output(second), [format!("served {name}")]);
    wait_for("the ephemeral box to be removed", || !dir.exists());
    assert_eq!(listed(&d, &name), None);
    assert!(!d.daemon.as_ref().unwrap().boxes().is_mounted(&name));
}

#[test]
fn an_ephemeral_box_whose_process_exits_at_once_still_goes() {
    // The process connects and exits well within one look of the watcher: the connection
    // itself tells the daemon the box was entered.
    let d = TestDaemon::start();
    let name = unique("quick");
    done(&d, Request::BoxCreate { name: name.clone(), ephemeral: true });
    let cg = BoxCgroup::new(&name);
    assert_eq!(run_boxed(&d, &cg, &[]), [format!("served {name}")]);
    let dir = d.home.path().join("boxes").join(&name);
    wait_for("the ephemeral box to be removed", || !dir.exists());
}

#[test]
fn a_broken_box_toml_is_reported_and_the_box_not_served() {
    let mut d = TestDaemon::start();
    let name = unique("toml");
    done(&d, Request::BoxCreate { name: name.clone(), ephemeral: false });
    d.daemon.take().unwrap().stop().unwrap();
    let settings = d.home.path().join("boxes").join(&name).join("box.toml");
    std::fs::write(&settings, "ephemeral = true\ncolour = \"blue\"\n").unwrap();
    d.daemon = Some(Daemon::start(&DaemonOptions { home: d.home.path().to_owned(), socket: None }).unwrap());
    let b = listed(&d, &name).unwrap();
    let error = b.error.unwrap_or_default();
    assert!(error.contains("box.toml") && error.contains("colour") && error.contains("line 2"), "{error}");
    assert_eq!(error.matches("box.toml").count(), 1, "said once: {error}");
    let cg = BoxCgroup::new(&name);
    let lines = run_boxed(&d, &cg, &[]);
    assert!(lines[0].starts_with("refused ") && lines[0].contains("box.toml"), "{lines:?}");
}
