//! Box hives: `Home::mount_box` mounts `boxes/<name>/registry.hiv` (with its log) at
//! `\REGISTRY\A\<name>`, durable like the base hives, readable by hivex after a checkpoint; a
//! damaged one is refused, never recreated; `unmount_box` refuses while keys are open.

use crate::{get, open, reopen, set};
use hivebox_core::isolate::box_mount;
use hivebox_core::{Caller, OpenOptions, Value};
use hivebox_hive::{BOX_HIVE, StoreError};
use std::io::Write;
use std::process::{Command, Stdio};

fn key(name: &str) -> String {
    format!(r"{}\MACHINE\SOFTWARE\Vendor", box_mount(name))
}

#[test]
fn a_box_hive_is_created_mounted_and_keeps_its_data_across_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let home = open(dir.path()).unwrap();
    let boxdir = home.box_dir("Trial");
    assert_eq!(boxdir, dir.path().join("boxes").join("Trial"));
    home.mount_box("Trial").unwrap();
    assert!(boxdir.join(format!("{BOX_HIVE}.hiv")).is_file());
    assert!(boxdir.join(format!("{BOX_HIVE}.hiv.wal")).is_file());
    // Its root is named after the box, and it is a hive of its own below \REGISTRY\A.
    let me = Caller::system();
    let root = home.registry.open_key(&me, None, &box_mount("Trial"), &OpenOptions::default()).unwrap();
    assert_eq!(home.registry.query_key_name(&me, root).unwrap(), box_mount("Trial"));
    home.registry.close_key(&me, root).unwrap();
    set(&home.registry, &key("Trial"), "Port", Value::dword(8080)).unwrap();
    // Mounting it twice is refused.
    assert!(matches!(home.mount_box("Trial"), Err(StoreError::Mount { .. })));
    drop(home);

    // The change was acknowledged, so it is in the log and comes back.
    let home = reopen(dir.path());
    assert_eq!(get(&home.registry, &key("Trial"), "Port"), None, "not mounted until asked");
    home.mount_box("Trial").unwrap();
    assert_eq!(get(&home.registry, &key("Trial"), "Port"), Some(Value::dword(8080)));
    // The base registry is untouched.
    assert_eq!(get(&home.registry, r"\REGISTRY\MACHINE\SOFTWARE\Vendor", "Port"), None);
}

#[test]
fn unmount_refuses_while_keys_are_open_and_checkpoints_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let home = open(dir.path()).unwrap();
    home.mount_box("b1").unwrap();
    set(&home.registry, &key("b1"), "Name", Value::sz("contoso")).unwrap();
    let me = Caller::system();
    let open_key = home.registry.open_key(&me, None, &key("b1"), &OpenOptions::default()).unwrap();
    match home.unmount_box("b1") {
        Err(e @ StoreError::Busy { .. }) => {
            let text = e.to_string();
            assert!(text.contains("registry.hiv") && text.contains("keys of it are open"), "{text}");
        }
        other => panic!("unmount with an open key: {other:?}"),
    }
    // Still mounted and usable.
    assert_eq!(get(&home.registry, &key("b1"), "Name"), Some(Value::sz("contoso")));
    home.registry.close_key(&me, open_key).unwrap();
    home.unmount_box("b1").unwrap();
    assert_eq!(get(&home.registry, &key("b1"), "Name"), None);
    assert!(matches!(home.unmount_box("b1"), Err(StoreError::Mount { .. })), "not mounted any more");

    // The unmount checkpointed: the log is only its header, and hivex reads the image.
    let boxdir = home.box_dir("b1");
    let wal = std::fs::metadata(boxdir.join("registry.hiv.wal")).unwrap().len();
    assert_eq!(wal, 24, "the log is emptied by the checkpoint");
    let image = boxdir.join("registry.hiv");
    let listed = hivexsh(&image, "cd MACHINE\\SOFTWARE\\Vendor\nlsval\nquit\n");
    assert!(listed.contains("\"Name\"=\"contoso\""), "{listed}");

    home.mount_box("b1").unwrap();
    assert_eq!(get(&home.registry, &key("b1"), "Name"), Some(Value::sz("contoso")));
}

#[test]
fn a_damaged_box_hive_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let home = open(dir.path()).unwrap();
    home.mount_box("dmg").unwrap();
    set(&home.registry, &key("dmg"), "v", Value::sz("x")).unwrap();
    home.unmount_box("dmg").unwrap();
    let image = home.box_dir("dmg").join("registry.hiv");
    let mut bytes = std::fs::read(&image).unwrap();
    // A byte in the hive bins: hivebox's checksum of them no longer matches.
    let at = bytes.len() - 100;
    bytes[at] ^= 0x5A;
    std::fs::write(&image, &bytes).unwrap();
    match home.mount_box("dmg") {
        Err(e @ StoreError::Corrupt { .. }) => {
            let StoreError::Corrupt { path, offset, .. } = &e else { unreachable!() };
            assert_eq!(path, &image);
            assert!(*offset > 0, "{e}");
            assert!(e.to_string().contains("registry.hiv is corrupt at byte"), "{e}");
        }
        other => panic!("a damaged box hive mounted: {other:?}"),
    }
    assert_eq!(std::fs::read(&image).unwrap(), bytes, "the damaged file is kept as it was");
    assert_eq!(get(&home.registry, &key("dmg"), "v"), None, "nothing is mounted");
    // A damaged log is refused too.
    let dir2 = tempfile::tempdir().unwrap();
    let home2 = open(dir2.path()).unwrap();
    home2.mount_box("w").unwrap();
    set(&home2.registry, &key("w"), "v", Value::sz("x")).unwrap();
    drop(home2);
    let wal = dir2.path().join("boxes/w/registry.hiv.wal");
    let mut log = std::fs::read(&wal).unwrap();
    log[10] ^= 0xFF; // the header's version
    std::fs::write(&wal, &log).unwrap();
    let home2 = reopen(dir2.path());
    let e = home2.mount_box("w").unwrap_err();
    assert!(matches!(e, StoreError::Corrupt { .. }) && e.to_string().contains("registry.hiv.wal"), "{e}");
}

#[test]
fn box_names_that_are_not_one_directory_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let home = open(dir.path()).unwrap();
    for bad in ["", ".", "..", "a/b", r"a\b", "a\0b"] {
        assert!(matches!(home.mount_box(bad), Err(StoreError::Mount { .. })), "{bad:?}");
    }
    assert!(!dir.path().join("boxes").join("a").exists());
}

/// `hivexsh FILE` with `script` on stdin; its stdout (it must succeed quietly).
fn hivexsh(file: &std::path::Path, script: &str) -> String {
    let mut child = Command::new("hivexsh")
        .arg(file)
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hivexsh is installed (apt-get install -y libhivex-bin)");
    child.stdin.take().unwrap().write_all(script.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "hivexsh {}: {stderr}", file.display());
    String::from_utf8_lossy(&out.stdout).into_owned()
}
