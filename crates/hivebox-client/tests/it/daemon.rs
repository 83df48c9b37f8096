//! Against a real daemon, over its socket.

use super::*;
use std::os::unix::ffi::OsStrExt;

#[test]
fn a_ported_program_runs() {
    let d = TestDaemon::start();
    ported_program(&d.registry(), r"SOFTWARE\winreg-it\ported");
}

#[test]
fn every_value_kind_round_trips() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let (key, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\values").unwrap();
    value_round_trips(&key);
    // Read back through another connection, with read rights only.
    let other = RegKey::predef_on(&d.registry(), HKEY_LOCAL_MACHINE);
    let ro = other.open_subkey(r"SOFTWARE\winreg-it\values").unwrap();
    assert_eq!(ro.get_value::<Vec<String>, _>("multi").unwrap(), ["one", "two"]);
    assert_eq!(ro.get_value::<u64, _>("qword").unwrap(), 0x0123_4567_89AB_CDEF);
}

#[test]
fn enumeration_order_and_query_info_agree() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let (key, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\enum").unwrap();
    for name in ["beta", "Alpha", "gamma_long_name", "Delta"] {
        key.create_subkey(name).unwrap();
    }
    key.set_value("zeta", &1u32).unwrap();
    key.set_value("a_longer_value_name", &"0123456789").unwrap();
    key.set_value("m", &vec!["x"]).unwrap();

    // Subkeys in the registry's order (case-insensitive), values in the order they were made.
    let keys: Vec<String> = key.enum_keys().collect::<io::Result<_>>().unwrap();
    assert_eq!(keys, ["Alpha", "beta", "Delta", "gamma_long_name"]);
    let values: Vec<(String, RegValue)> = key.enum_values().collect::<io::Result<_>>().unwrap();
    let names: Vec<&str> = values.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["zeta", "a_longer_value_name", "m"]);
    assert_eq!(values[0].1, RegValue { bytes: vec![1, 0, 0, 0], vtype: REG_DWORD });

    let info = key.query_info().unwrap();
    assert_eq!(info.sub_keys as usize, keys.len());
    assert_eq!(info.values as usize, values.len());
    assert_eq!(info.max_sub_key_len as usize, keys.iter().map(String::len).max().unwrap());
    assert_eq!(info.max_value_name_len as usize, names.iter().map(|n| n.len()).max().unwrap());
    assert_eq!(info.max_value_len as usize, values.iter().map(|(_, v)| v.bytes.len()).max().unwrap());
    let written = info.last_write_time.to_system_time();
    let age = std::time::SystemTime::now().duration_since(written).unwrap_or_default();
    assert!(age.as_secs() < 600, "last write {written:?}");
    assert!(info.get_last_write_time_system().wYear >= 2024);

    // `nth` skips; an empty key enumerates nothing, without an error.
    assert_eq!(key.enum_keys().nth(2).unwrap().unwrap(), "Delta");
    assert!(key.enum_keys().nth(4).is_none());
    let empty = key.open_subkey("Alpha").unwrap();
    assert_eq!(empty.enum_keys().count(), 0);
    assert_eq!(empty.enum_values().count(), 0);
    let info = empty.query_info().unwrap();
    assert_eq!((info.sub_keys, info.values, info.max_sub_key_len, info.max_value_len), (0, 0, 0, 0));

    // A predefined key enumerates too.
    let top: Vec<String> = hklm.enum_keys().collect::<io::Result<_>>().unwrap();
    for expected in ["SOFTWARE", "SYSTEM"] {
        assert!(top.iter().any(|k| k == expected), "{top:?}");
    }
    assert_eq!(hklm.query_info().unwrap().sub_keys as usize, top.len());
}

#[test]
fn delete_subkey_all_removes_a_tree() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let (root, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\tree").unwrap();
    for path in [r"a\b\c\d", r"a\b\e", r"f", r"g\h"] {
        let (k, _) = root.create_subkey(path).unwrap();
        k.set_value("v", &path).unwrap();
    }
    root.set_value("top", &1u32).unwrap();

    // A key with subkeys cannot be deleted alone.
    let e = root.delete_subkey("a").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::DirectoryNotEmpty, "{e}");
    assert!(matches!(status_of(&e), Some(NtStatus::STATUS_CANNOT_DELETE | NtStatus::STATUS_KEY_HAS_CHILDREN)), "{e}");

    // A leaf can.
    root.delete_subkey(r"a\b\e").unwrap();
    assert_fails(root.open_subkey(r"a\b\e"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);

    // A subtree goes with everything under it.
    root.delete_subkey_all("a").unwrap();
    let left: Vec<String> = root.enum_keys().collect::<io::Result<_>>().unwrap();
    assert_eq!(left, ["f", "g"]);

    // An empty path empties the key itself: subkeys and values, the key stays.
    root.delete_subkey_all("").unwrap();
    let info = root.query_info().unwrap();
    assert_eq!((info.sub_keys, info.values), (0, 0));
    hklm.open_subkey(r"SOFTWARE\winreg-it\tree").unwrap();

    hklm.delete_subkey_all(r"SOFTWARE\winreg-it").unwrap();
    assert_fails(
        hklm.open_subkey(r"SOFTWARE\winreg-it"),
        io::ErrorKind::NotFound,
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    );
    assert_fails(
        hklm.delete_subkey_all(r"SOFTWARE\winreg-it"),
        io::ErrorKind::NotFound,
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    );
}

#[test]
fn rename_and_copy() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let (base, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\rename").unwrap();
    let (old, _) = base.create_subkey(r"old\child").unwrap();
    old.set_value("kept", &7u32).unwrap();
    base.create_subkey("taken").unwrap();

    base.rename_subkey("old", "new").unwrap();
    assert_fails(base.open_subkey("old"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_eq!(base.open_subkey(r"new\child").unwrap().get_value::<u32, _>("kept").unwrap(), 7);
    // The open handle follows the key.
    assert_eq!(old.get_value::<u32, _>("kept").unwrap(), 7);
    assert!(old.native_name().unwrap().ends_with(r"\rename\new\child"), "{}", old.native_name().unwrap());
    // A name in use is refused.
    let e = base.rename_subkey("new", "taken").unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::AlreadyExists, "{e}");
    assert_fails(base.rename_subkey("missing", "x"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);

    // copy_tree: values and subkeys, recursively, into another key (here of another connection).
    let other = d.registry();
    let (dest, _) = RegKey::predef_on(&other, HKEY_LOCAL_MACHINE).create_subkey(r"SOFTWARE\winreg-it\copy").unwrap();
    base.set_value("top", &"here").unwrap();
    base.copy_tree("", &dest).unwrap();
    assert_eq!(dest.get_value::<String, _>("top").unwrap(), "here");
    assert_eq!(dest.open_subkey(r"new\child").unwrap().get_value::<u32, _>("kept").unwrap(), 7);
    let copied: Vec<String> = dest.enum_keys().collect::<io::Result<_>>().unwrap();
    assert_eq!(copied, ["new", "taken"]);
}

/// `HKEY_CURRENT_USER` is `HKEY_USERS\<the caller's SID>`, the SID of this process's uid.
#[test]
fn hkcu_is_the_callers_own_hive() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let sid = reg.transport().identity().sid.clone();
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let euid = status.lines().find_map(|l| l.strip_prefix("Uid:")).unwrap().split_whitespace().nth(1).unwrap();
    assert_eq!(sid, format!("S-1-22-1-{euid}"));

    let hkcu = RegKey::predef_on(&reg, HKEY_CURRENT_USER);
    let (mine, _) = hkcu.create_subkey(r"Software\winreg-it").unwrap();
    mine.set_value("owner", &"me").unwrap();
    assert_eq!(mine.native_name().unwrap(), format!(r"\REGISTRY\USER\{sid}\Software\winreg-it"));
    let via_users = RegKey::predef_on(&reg, HKEY_USERS).open_subkey(format!(r"{sid}\Software\winreg-it")).unwrap();
    assert_eq!(via_users.get_value::<String, _>("owner").unwrap(), "me");

    // The predefined key itself takes values, and enumerates.
    hkcu.set_value("at-the-root", &1u32).unwrap();
    assert_eq!(hkcu.get_value::<u32, _>("at-the-root").unwrap(), 1);
    assert!(hkcu.enum_keys().map(Result::unwrap).any(|k| k == "Software"));
    assert!(hkcu.enum_values().map(Result::unwrap).any(|(n, _)| n == "at-the-root"));
    hkcu.delete_value("at-the-root").unwrap();
    assert_eq!(hkcu.native_name().unwrap(), format!(r"\REGISTRY\USER\{sid}"));
    assert!(RegKey::predef_on(&reg, HKEY_CLASSES_ROOT).native_name().unwrap().ends_with(r"\SOFTWARE\Classes"));
}

#[test]
fn transactions_commit_roll_back_and_drop() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let observer = RegKey::predef_on(&d.registry(), HKEY_LOCAL_MACHINE);
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let (base, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\txn").unwrap();
    base.set_value("before", &1u32).unwrap();

    // Commit: nothing shows until then, everything after.
    let t = Transaction::new_on(&reg).unwrap();
    let (k, disp) = base.create_subkey_transacted(r"made\deep", &t).unwrap();
    assert_eq!(disp, REG_CREATED_NEW_KEY);
    k.set_value("v", &"inside").unwrap();
    let tbase = hklm.open_subkey_transacted_with_flags(r"SOFTWARE\winreg-it\txn", &t, KEY_ALL_ACCESS).unwrap();
    tbase.set_value("before", &2u32).unwrap();
    assert_eq!(tbase.get_value::<u32, _>("before").unwrap(), 2, "the transaction sees its own change");
    assert_eq!(base.get_value::<u32, _>("before").unwrap(), 1, "outside, the change is invisible");
    let seen = hklm.open_subkey_transacted(r"SOFTWARE\winreg-it\txn\made\deep", &t).unwrap();
    assert_eq!(seen.get_value::<String, _>("v").unwrap(), "inside");
    assert_fails(
        observer.open_subkey(r"SOFTWARE\winreg-it\txn\made"),
        io::ErrorKind::NotFound,
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    );
    t.commit().unwrap();
    let made = observer.open_subkey(r"SOFTWARE\winreg-it\txn\made\deep").unwrap();
    assert_eq!(made.get_value::<String, _>("v").unwrap(), "inside");
    assert_eq!(base.get_value::<u32, _>("before").unwrap(), 2);
    drop((k, tbase, seen));

    // Rollback: the changes vanish.
    let t = Transaction::new_on(&reg).unwrap();
    let (k, _) = base.create_subkey_transacted("rolled", &t).unwrap();
    k.set_value("v", &1u32).unwrap();
    base.delete_subkey_transacted(r"made\deep", &t).unwrap();
    t.rollback().unwrap();
    assert_fails(base.open_subkey("rolled"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    observer.open_subkey(r"SOFTWARE\winreg-it\txn\made\deep").unwrap();
    // The transaction is over: using it fails.
    let e = base.create_subkey_transacted("late", &t).unwrap_err();
    assert!(
        matches!(status_of(&e), Some(NtStatus::STATUS_INVALID_TRANSACTION | NtStatus::STATUS_TRANSACTION_NOT_ACTIVE)),
        "{e}"
    );
    drop((k, t));

    // Dropped without commit: rolled back.
    {
        let t = Transaction::new_on(&reg).unwrap();
        let (k, _) = base.create_subkey_transacted("dropped", &t).unwrap();
        k.set_value("v", &1u32).unwrap();
    }
    assert_fails(base.open_subkey("dropped"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);

    // A transaction of another connection cannot be used with this one's keys.
    let foreign = Transaction::new_on(&d.registry()).unwrap();
    assert_fails(
        base.create_subkey_transacted("x", &foreign),
        io::ErrorKind::InvalidInput,
        NtStatus::STATUS_INVALID_TRANSACTION,
    );
}

#[test]
fn errors_map_to_io_kinds_with_the_status_inside() {
    let mut d = TestDaemon::start();
    let reg = d.registry();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    assert_fails(
        hklm.open_subkey(r"SOFTWARE\no\such\key"),
        io::ErrorKind::NotFound,
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    );

    let (key, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\errors").unwrap();
    key.set_value("s", &"text").unwrap();
    assert_fails(key.get_value::<u32, _>("missing"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_fails(key.get_value::<u64, _>("s"), io::ErrorKind::InvalidData, NtStatus::STATUS_OBJECT_TYPE_MISMATCH);

    // Rights are those the handle was opened with.
    let ro = hklm.open_subkey(r"SOFTWARE\winreg-it\errors").unwrap();
    assert_fails(ro.set_value("s", &"other"), io::ErrorKind::PermissionDenied, NtStatus::STATUS_ACCESS_DENIED);
    let wo = hklm.open_subkey_with_flags(r"SOFTWARE\winreg-it\errors", KEY_SET_VALUE).unwrap();
    assert_fails(wo.get_value::<String, _>("s"), io::ErrorKind::PermissionDenied, NtStatus::STATUS_ACCESS_DENIED);
    wo.set_value("s", &"written").unwrap();

    // Names.
    let bad = OsStr::from_bytes(b"not-utf8-\xff");
    assert_fails(key.open_subkey(bad), io::ErrorKind::InvalidInput, NtStatus::STATUS_OBJECT_NAME_INVALID);
    assert_fails(key.get_raw_value(bad), io::ErrorKind::InvalidInput, NtStatus::STATUS_OBJECT_NAME_INVALID);
    let e = key.create_subkey("x".repeat(300)).unwrap_err();
    let status = status_of(&e).unwrap();
    assert_eq!(e.kind(), hivebox_client::winreg::error_kind(status), "{e}");
    assert!(matches!(e.kind(), io::ErrorKind::InvalidFilename | io::ErrorKind::InvalidInput), "{e}");

    // The daemon gone: the connection is lost.
    d.stop();
    assert_fails(
        key.get_value::<String, _>("s"),
        io::ErrorKind::ConnectionAborted,
        NtStatus::STATUS_CONNECTION_DISCONNECTED,
    );
    assert_fails(
        hklm.open_subkey("SOFTWARE"),
        io::ErrorKind::ConnectionAborted,
        NtStatus::STATUS_CONNECTION_DISCONNECTED,
    );
    let mut keys = key.enum_keys();
    assert!(matches!(keys.next(), Some(Err(e)) if e.kind() == io::ErrorKind::ConnectionAborted));
    assert!(keys.next().is_none(), "an enumeration ends after an error");
}

/// Keys opened and dropped in a loop leave nothing open: the tree can then be deleted, and
/// the connection still works.
#[test]
fn dropped_keys_close_their_handles() {
    let d = TestDaemon::start();
    let reg = d.registry();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let (base, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\handles").unwrap();
    for i in 0..50 {
        base.create_subkey(format!("k{i}")).unwrap();
    }
    for round in 0..40 {
        for i in 0..50 {
            let k = base.open_subkey(format!("k{i}")).unwrap();
            if round == 0 {
                assert!(k.get_value::<u32, _>("nothing").is_err());
            }
        }
        assert_eq!(hklm.enum_keys().count(), hklm.query_info().unwrap().sub_keys as usize);
    }
    let raw = base.open_subkey("k0").unwrap().into_raw_handle();
    reg.close_key(raw).unwrap();
    drop(base);
    hklm.delete_subkey_all(r"SOFTWARE\winreg-it").unwrap();
    assert_eq!(
        hklm.open_subkey("SOFTWARE").unwrap().enum_keys().filter(|k| k.as_ref().unwrap() == "winreg-it").count(),
        0
    );
}

/// The `winreg_port` example, run as a client process of its own (twice, then with
/// `--clean`). `cargo test` builds examples before running tests; `cargo test --test it`
/// alone does not, and then this test fails saying so.
#[test]
fn the_example_runs_against_the_daemon() {
    let deps = std::env::current_exe().unwrap();
    let example = deps.parent().unwrap().parent().unwrap().join("examples").join("winreg_port");
    assert!(
        example.exists(),
        "{} is not built: run `cargo test -p hivebox-client`, which builds the examples first",
        example.display()
    );
    let d = TestDaemon::start();
    let socket = d.daemon.as_ref().unwrap().socket().to_owned();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&example).args(args).env("HIVEBOX_SOCKET", &socket).output().unwrap();
        let stdout = String::from_utf8(out.stdout).unwrap();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let first = run(&[]);
    assert!(first.contains("first run") && first.contains("run number 1"), "{first}");
    assert!(first.contains("server www.example.com:8080"), "{first}");
    assert!(first.contains("NotFound, STATUS_OBJECT_NAME_NOT_FOUND"), "{first}");
    let second = run(&[]);
    assert!(!second.contains("first run") && second.contains("run number 2"), "{second}");
    // What the example stored is this user's, seen from here too.
    let reg = d.registry();
    let state = RegKey::predef_on(&reg, HKEY_CURRENT_USER).open_subkey(r"Software\WinregPort\State").unwrap();
    assert_eq!(state.get_value::<u64, _>("runs").unwrap(), 2);
    drop(state);
    assert!(run(&["--clean"]).contains(r"removed HKCU\Software\WinregPort"));
    assert!(run(&["--clean"]).contains("nothing to remove"));
}
