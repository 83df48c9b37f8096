//! `export` and `import` in-process: what the binary's tests cannot set up (links, volatile
//! keys and classes around a failed import; questions answered).

use super::super::session::tests::registry;
use super::super::tests::{answering, fails, ok};
use hivebox_core::access::{KEY_READ, REG_OPTION_CREATE_LINK, REG_OPTION_OPEN_LINK, REG_OPTION_VOLATILE};
use hivebox_core::{Caller, CreateOptions, NtStatus, OpenOptions, Registry, Value};
use std::fmt::Write;

const TREE: &str = r"\REGISTRY\MACHINE\SOFTWARE\Tree";

/// Everything about a key and its subtree that a failed import must leave as it was (links
/// are described, not followed).
fn dump(r: &Registry, native: &str) -> String {
    let system = Caller::system();
    let opts = OpenOptions { options: REG_OPTION_OPEN_LINK, ..OpenOptions::access(KEY_READ) };
    let key = r.open_key(&system, None, native, &opts).unwrap();
    let info = r.query_key(&system, key).unwrap();
    let mut out = format!("{native} class={:?} volatile={} link={}\n", info.class, info.volatile, info.link);
    for i in 0.. {
        match r.enumerate_value(&system, key, i) {
            Ok((name, value)) => {
                let _ = writeln!(out, "  {name:?} = {value:?}");
            }
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
            Err(s) => panic!("{s}"),
        }
    }
    let mut names = Vec::new();
    for i in 0.. {
        match r.enumerate_key(&system, key, i) {
            Ok(sub) => names.push(sub.name),
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
            Err(s) => panic!("{s}"),
        }
    }
    r.close_key(&system, key).unwrap();
    for name in names {
        out.push_str(&dump(r, &format!("{native}\\{name}")));
    }
    out
}

fn create(r: &Registry, native: &str, options: u32, class: Option<&str>, values: &[(&str, Value)]) {
    let system = Caller::system();
    let opts = CreateOptions { options, class: class.map(str::to_owned), ..CreateOptions::default() };
    let (key, _) = r.create_key(&system, None, native, &opts).unwrap();
    for (name, value) in values {
        r.set_value(&system, key, name, value.clone()).unwrap();
    }
    r.close_key(&system, key).unwrap();
}

#[test]
fn a_failed_import_leaves_links_classes_and_value_order_as_they_were() {
    let r = registry();
    ok(&r, r"add HKLM\SOFTWARE\Target\Kept /v k /d 1");
    create(&r, TREE, 0, None, &[("a", Value::sz("1")), ("b", Value::dword(2)), ("c", Value::binary(&[3]))]);
    create(&r, &format!(r"{TREE}\Classy"), 0, Some("MyClass"), &[("", Value::sz("default"))]);
    let target = Value::link(r"\REGISTRY\MACHINE\SOFTWARE\Target");
    create(&r, &format!(r"{TREE}\Classy\Link"), REG_OPTION_CREATE_LINK, None, &[("SymbolicLinkValue", target)]);
    create(&r, &format!(r"{TREE}\Plain"), 0, None, &[("v", Value::qword(7))]);
    let before = dump(&r, TREE);
    let target_before = dump(&r, r"\REGISTRY\MACHINE\SOFTWARE\Target");
    assert!(before.contains("link=true") && before.contains("MyClass"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.reg");
    let text = "REGEDIT4\n[HKLM\\SOFTWARE\\Tree]\n\"b\"=-\n\"a\"=\"changed\"\n\"d\"=\"new\"\n\
                [-HKLM\\SOFTWARE\\Tree\\Classy]\n[-HKLM\\SOFTWARE\\Tree\\Plain]\n[-HKLM\\SOFTWARE\\Tree]\n\
                [HKLM\\SYSTEM\\ControlSet001\\Enum\\Foo]\n";
    std::fs::write(&file, text).unwrap();
    let err = fails(&r, &format!("import {}", file.display()));
    assert_eq!(
        err,
        format!(
            "ERROR: {}:9: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Foo",
            file.display()
        )
    );
    assert_eq!(dump(&r, TREE), before);
    assert_eq!(dump(&r, r"\REGISTRY\MACHINE\SOFTWARE\Target"), target_before);
    assert!(ok(&r, r"query HKLM\SOFTWARE\Tree\Classy\Link").contains("Kept"));
    assert_eq!(r.open_handles(), 0);

    // Without the failing line it all goes through, and the link's target is untouched.
    std::fs::write(&file, text.replace("[HKLM\\SYSTEM\\ControlSet001\\Enum\\Foo]\n", "")).unwrap();
    ok(&r, &format!("import {}", file.display()));
    fails(&r, r"query HKLM\SOFTWARE\Tree");
    assert_eq!(dump(&r, r"\REGISTRY\MACHINE\SOFTWARE\Target"), target_before);
    assert_eq!(r.open_handles(), 0);
}

#[test]
fn volatile_keys_cannot_be_changed_by_an_import() {
    let r = registry();
    create(&r, TREE, 0, None, &[("a", Value::sz("1"))]);
    let vol = r"\REGISTRY\MACHINE\SOFTWARE\Vol";
    create(&r, vol, REG_OPTION_VOLATILE, None, &[("v", Value::qword(7))]);
    create(&r, &format!(r"{vol}\Kid"), REG_OPTION_VOLATILE, None, &[]);
    let before = (dump(&r, TREE), dump(&r, vol));
    assert!(before.1.contains("volatile=true"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("v.reg");
    let refused = "a volatile key cannot be changed by an import (it runs in one registry transaction) \
                   (STATUS_INVALID_PARAMETER) at HKEY_LOCAL_MACHINE\\SOFTWARE\\Vol";
    for (text, line) in [
        ("REGEDIT4\n[HKLM\\SOFTWARE\\Tree]\n\"a\"=\"2\"\n[-HKLM\\SOFTWARE\\Vol]\n", 4),
        ("REGEDIT4\n[HKLM\\SOFTWARE\\Tree]\n\"a\"=\"2\"\n[HKLM\\SOFTWARE\\Vol]\n\"v\"=-\n", 4),
    ] {
        std::fs::write(&file, text).unwrap();
        let err = fails(&r, &format!("import {}", file.display()));
        assert_eq!(err, format!("ERROR: {}:{line}: {refused}", file.display()));
        assert_eq!((dump(&r, TREE), dump(&r, vol)), before);
        assert_eq!(r.open_handles(), 0);
    }
    // Opening one without changing it is fine.
    std::fs::write(&file, "REGEDIT4\n[HKLM\\SOFTWARE\\Vol\\Kid]\n[HKLM\\SOFTWARE\\Tree]\n\"a\"=\"2\"\n").unwrap();
    ok(&r, &format!("import {}", file.display()));
    assert!(ok(&r, r"query HKLM\SOFTWARE\Tree /v a").contains("    a    REG_SZ    2\n"));
    assert_eq!(dump(&r, vol), before.1);
}

#[test]
fn export_asks_before_overwriting() {
    let r = registry();
    ok(&r, r"add HKCU\E /v v /d 1");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.reg");
    std::fs::write(&file, "old").unwrap();
    let line = format!(r"export HKCU\E {}", file.display());
    let ((code, out, _), asked) = answering(&r, &line, &[false]);
    assert_eq!((code, out.as_str()), (0, "The operation was cancelled.\n"));
    assert_eq!(asked, [format!("File {} already exists. Overwrite (Yes/No)?", file.display())]);
    assert_eq!(std::fs::read(&file).unwrap(), b"old");
    let ((code, out, _), _) = answering(&r, &line, &[true]);
    assert_eq!((code, out.as_str()), (0, "The operation completed successfully.\n"));
    assert_eq!(std::fs::read(&file).unwrap()[..2], [0xFF, 0xFE]);
    // With /y nobody is asked.
    let ((code, _, _), asked) = answering(&r, &format!("{line} /y"), &[]);
    assert_eq!((code, asked.len()), (0, 0));
    // A key name a .reg file cannot hold.
    ok(&r, "add HKCU\\E\\two\nlines");
    let err = fails(&r, &format!("{line} /y"));
    assert_eq!(
        err,
        "ERROR: a .reg file cannot hold this key: the path contains a line break (STATUS_OBJECT_NAME_INVALID) at \
         HKEY_CURRENT_USER\\E\\two\\u{a}lines"
    );
}

#[test]
fn exported_links_are_followed_as_query_follows_them() {
    let r = registry();
    ok(&r, r"add HKLM\SOFTWARE\Target /v t /d 1");
    ok(&r, r"add HKLM\SOFTWARE\Holder");
    let target = Value::link(r"\REGISTRY\MACHINE\SOFTWARE\Target");
    create(
        &r,
        r"\REGISTRY\MACHINE\SOFTWARE\Holder\Link",
        REG_OPTION_CREATE_LINK,
        None,
        &[("SymbolicLinkValue", target)],
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("l.reg");
    ok(&r, &format!(r"export HKLM\SOFTWARE\Holder {}", file.display()));
    let text = String::from_utf16(
        &std::fs::read(&file).unwrap()[2..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect::<Vec<_>>(),
    )
    .unwrap();
    assert_eq!(
        text,
        "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Holder]\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Holder\\Link]\r\n\"t\"=\"1\"\r\n\r\n"
    );
}
