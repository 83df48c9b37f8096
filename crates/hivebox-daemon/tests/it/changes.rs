//! A box's contents (`hivebox_daemon::changes`): diff, export, commit, conflicts, crash
//! recovery and protection. Each box state is built directly in a private hive mounted on an
//! in-memory registry, with the markers of `docs/boxes.md`, so these tests do not depend on
//! the isolation filter that normally writes them.

use hivebox_core::isolate::box_mount;
use hivebox_core::isolate::markers::{self, Stored};
use hivebox_core::protect::{EventSink, ProtectionEvent, ProtectionFilter};
use hivebox_core::{
    Caller, CreateOptions, KeyId, KeyImage, KeyPath, ManualClock, MemoryStorage, NtStatus, OpenOptions, ProcessInfo,
    Registry, Token, Tree, UNIX_EPOCH_FILETIME, Value,
};
use hivebox_daemon::changes::{self, ChangeKind, CrashAt};
use hivebox_hive::regfile::{self, RegEntry};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;

const BOX: &str = "trial";
const SW: &str = r"\REGISTRY\MACHINE\SOFTWARE";

fn system() -> Caller {
    Caller::system()
}

/// The user who commits: a host process (in no box).
fn user() -> Caller {
    Caller::user(
        Token { user_sid: "S-1-22-1-1000".into(), system: false },
        ProcessInfo { pid: 4242, image: "/usr/bin/hivebox".into(), uid: Some(1000), ..ProcessInfo::default() },
    )
}

/// Creates `native` (and the keys on the way) with these values.
fn put(reg: &Registry, native: &str, values: &[(&str, Value)]) {
    let (h, _) = reg.create_key_path(&system(), None, native, &CreateOptions::default()).unwrap();
    for (name, v) in values {
        reg.set_value(&system(), h, name, v.clone()).unwrap();
    }
    reg.close_key(&system(), h).unwrap();
}

fn last_write(reg: &Registry, native: &str) -> u64 {
    let h = reg.open_key(&system(), None, native, &OpenOptions::default()).unwrap();
    let t = reg.query_key(&system(), h).unwrap().last_write;
    reg.close_key(&system(), h).unwrap();
    t
}

fn exists(reg: &Registry, native: &str) -> bool {
    match reg.open_key(&system(), None, native, &OpenOptions::default()) {
        Ok(h) => {
            reg.close_key(&system(), h).unwrap();
            true
        }
        Err(_) => false,
    }
}

/// A box key (`rel` below the box hive's root), created with these stored values.
fn boxed(reg: &Registry, rel: &str, values: &[(&str, Value)]) {
    put(reg, &format!(r"{}\{rel}", box_mount(BOX)), values);
}

/// The private key of `host` (a native `\REGISTRY\...` path), stamped with the host key's
/// time as the filter stamps a key it first changes.
fn boxed_stamped(reg: &Registry, host: &str, values: &[(&str, Value)]) {
    let stamp = last_write(reg, host);
    let mut all: Vec<(&str, Value)> = vec![(markers::BASE_TIME, Value::qword(stamp))];
    all.extend(values.iter().cloned());
    boxed(reg, &host["\\REGISTRY\\".len()..], &all);
}

fn marker() -> Value {
    Value::new(hivebox_core::ValueType::REG_NONE, Vec::new())
}

/// The host registry of every test.
fn host() -> Registry {
    let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(UNIX_EPOCH_FILETIME)));
    put(
        &reg,
        &format!(r"{SW}\App"),
        &[("Version", Value::sz("1.0")), ("Port", Value::dword(80)), ("Keep", Value::sz("same"))],
    );
    put(&reg, &format!(r"{SW}\App\Plugins\P1"), &[("v", Value::dword(1))]);
    put(&reg, &format!(r"{SW}\Gone"), &[("a", Value::dword(1))]);
    put(&reg, &format!(r"{SW}\Gone\Child"), &[("b", Value::dword(2))]);
    put(&reg, &format!(r"{SW}\OldName"), &[("n", Value::sz("n")), ("", Value::sz("default"))]);
    put(&reg, &format!(r"{SW}\OldName\Sub"), &[("s", Value::dword(1))]);
    put(&reg, &format!(r"{SW}\Reborn"), &[("r", Value::dword(1))]);
    put(&reg, &format!(r"{SW}\Reborn\Kid"), &[]);
    put(&reg, r"\REGISTRY\USER\.DEFAULT\Software\Pref", &[("theme", Value::sz("dark"))]);
    reg
}

/// Mounts an empty private hive for the box.
fn mount(reg: &Registry) {
    let image = KeyImage { name: BOX.into(), ..KeyImage::default() };
    reg.load_key(&system(), &box_mount(BOX), "mem", image, Box::new(MemoryStorage)).unwrap();
}

/// The host with the box of every test: one change of each kind.
fn scene() -> Registry {
    let reg = host();
    mount(&reg);
    // Values modified, deleted (a tombstone), added; one set to what the host has; a program's
    // value whose name looks like a marker (stored with the prefix doubled).
    boxed_stamped(
        &reg,
        &format!(r"{SW}\App"),
        &[
            ("Version", Value::sz("2.0")),
            ("Port", markers::tombstone()),
            ("New", Value::dword(5)),
            ("Keep", Value::sz("same")),
            ("hivebox:hivebox:odd", Value::sz("escaped")),
        ],
    );
    // A container on the way to a new key gives nothing itself.
    boxed(&reg, r"MACHINE\SOFTWARE\App\Plugins\P2", &[("w", Value::sz("new plugin"))]);
    // Keys added (two levels).
    boxed(&reg, r"MACHINE\SOFTWARE\Brand", &[("x", Value::binary(&[1, 2, 3]))]);
    boxed(&reg, r"MACHINE\SOFTWARE\Brand\New", &[]);
    // A key deleted (with its subtree), and a deletion of a key the host does not have.
    boxed(&reg, r"MACHINE\SOFTWARE\Gone", &[(markers::DELETED, marker())]);
    boxed(&reg, r"MACHINE\SOFTWARE\Ghost", &[(markers::DELETED, marker())]);
    // OldName renamed to NewName: the new key holds the old one's content, changed since.
    boxed(&reg, r"MACHINE\SOFTWARE\OldName", &[(markers::DELETED, marker())]);
    boxed(
        &reg,
        r"MACHINE\SOFTWARE\NewName",
        &[
            (markers::RENAMED_FROM, Value::sz(&format!(r"{SW}\OldName"))),
            ("n", Value::sz("n")),
            ("", Value::sz("default")),
            ("extra", Value::sz("after the rename")),
        ],
    );
    boxed(&reg, r"MACHINE\SOFTWARE\NewName\Sub", &[("s", Value::dword(2))]);
    // Deleted and created again.
    boxed(&reg, r"MACHINE\SOFTWARE\Reborn", &[(markers::OPAQUE, marker()), ("fresh", Value::qword(7))]);
    // Under HKEY_USERS.
    boxed_stamped(&reg, r"\REGISTRY\USER\.DEFAULT\Software\Pref", &[("theme", Value::sz("light"))]);
    reg
}

/// A key and its values, sorted by name, one line each.
fn dump_key(path: &str, values: BTreeMap<String, (String, Value)>, out: &mut String) {
    let _ = writeln!(out, "{path}");
    for (name, v) in values.values() {
        let _ = writeln!(out, "    {name:?} = {v:?}");
    }
}

fn has(t: &Tree, k: KeyId, marker: &str) -> bool {
    t.value(k, marker).is_some()
}

/// The merged view of `docs/boxes.md`, computed independently of the code under test: the
/// box's values over the base's (tombstones hiding), subkeys merged, deleted keys hidden,
/// opaque and renamed keys hiding the base below them.
fn merged(t: &Tree, path: &str, base: Option<KeyId>, private: Option<KeyId>, out: &mut String) {
    let mut values = BTreeMap::new();
    if let Some(b) = base {
        for (n, v) in t.values(b) {
            values.insert(n.to_uppercase(), (n.to_owned(), v.clone()));
        }
    }
    if let Some(p) = private {
        for (stored, v) in t.values(p) {
            let Stored::Value(n) = markers::unescape(stored) else { continue };
            if markers::is_tombstone(v) {
                values.remove(&n.to_uppercase());
            } else {
                values.insert(n.to_uppercase(), (n.to_owned(), v.clone()));
            }
        }
    }
    dump_key(path, values, out);
    let mut names = BTreeMap::new();
    for k in base.iter().chain(private.iter()) {
        for c in t.children(*k) {
            names.entry(t.name(c).to_uppercase()).or_insert_with(|| t.name(c).to_owned());
        }
    }
    for name in names.values() {
        let p = private.and_then(|p| t.child(p, name));
        let mut b = base.and_then(|b| t.child(b, name));
        if let Some(p) = p {
            if has(t, p, markers::DELETED) {
                continue;
            }
            if has(t, p, markers::OPAQUE) || has(t, p, markers::RENAMED_FROM) {
                b = None;
            }
        }
        // The private key's own name (a rename's new case), else the base's.
        let shown = p.or(b).map(|k| t.name(k).to_owned()).unwrap_or_else(|| name.clone());
        merged(t, &format!(r"{path}\{shown}"), b, p, out);
    }
}

/// What the box sees of `MACHINE\SOFTWARE` and `USER`.
fn view(reg: &Registry) -> String {
    reg.with_tree(|t| {
        let root = t.child(t.child(t.root(), "A").unwrap(), BOX).unwrap();
        let mut out = String::new();
        for top in [["MACHINE", "SOFTWARE"].as_slice(), ["USER"].as_slice()] {
            let base = top.iter().try_fold(t.root(), |k, c| t.child(k, c));
            let private = top.iter().try_fold(root, |k, c| t.child(k, c));
            merged(t, &format!(r"\REGISTRY\{}", top.join("\\")), base, private, &mut out);
        }
        out
    })
}

/// What the host has of `MACHINE\SOFTWARE` and `USER`.
fn host_view(reg: &Registry) -> String {
    reg.with_tree(|t| {
        let mut out = String::new();
        for top in [["MACHINE", "SOFTWARE"].as_slice(), ["USER"].as_slice()] {
            let base = top.iter().try_fold(t.root(), |k, c| t.child(k, c));
            merged(t, &format!(r"\REGISTRY\{}", top.join("\\")), base, None, &mut out);
        }
        out
    })
}

/// Applies a `.reg` file as `reg import` does (as the registry itself).
fn import(reg: &Registry, text: &str) {
    let file = regfile::parse_text(text).unwrap();
    let sys = system();
    let native = |p: &str| KeyPath::parse(p).unwrap().native("S-1-5-18");
    let mut current = None;
    for e in &file.entries {
        match e {
            RegEntry::Key { path, delete: true, .. } => {
                current = None;
                delete_tree(reg, &native(path));
            }
            RegEntry::Key { path, delete: false, .. } => {
                if let Some(h) = current.take() {
                    reg.close_key(&sys, h).unwrap();
                }
                current = Some(reg.create_key_path(&sys, None, &native(path), &CreateOptions::default()).unwrap().0);
            }
            RegEntry::Value { name, action, .. } => {
                let h = current.unwrap();
                match action {
                    Some(v) => reg.set_value(&sys, h, name, v.clone()).unwrap(),
                    None => match reg.delete_value(&sys, h, name) {
                        Ok(()) | Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => {}
                        Err(s) => panic!("{s}"),
                    },
                }
            }
        }
    }
    if let Some(h) = current {
        reg.close_key(&sys, h).unwrap();
    }
}

fn delete_tree(reg: &Registry, native: &str) {
    let sys = system();
    let Ok(h) = reg.open_key(&sys, None, native, &OpenOptions::access(hivebox_core::access::KEY_ALL_ACCESS)) else {
        return;
    };
    let mut names = Vec::new();
    while let Ok(s) = reg.enumerate_key(&sys, h, names.len() as u32) {
        names.push(s.name);
    }
    for n in names {
        delete_tree(reg, &format!(r"{native}\{n}"));
    }
    reg.delete_key(&sys, h).unwrap();
    reg.close_key(&sys, h).unwrap();
}

fn journal(dir: &Path) -> std::path::PathBuf {
    dir.join(BOX).join("commit.journal")
}

const DIFF: &str = r#"Box "trial": 17 changes (3 keys added, 2 keys deleted, 1 key renamed, 6 values added, 3 values modified, 2 values deleted)

  HKEY_LOCAL_MACHINE
    SOFTWARE
~     App
+         hivebox:odd    REG_SZ    escaped
+         New    REG_DWORD    0x5
-         Port    REG_DWORD    0x50
~         Version    REG_SZ    1.0 -> 2.0
        Plugins
+         P2
+             w    REG_SZ    new plugin
+     Brand
+         x    REG_BINARY    010203
+       New
-     Gone
>     NewName    (renamed from HKEY_LOCAL_MACHINE\SOFTWARE\OldName)
+         extra    REG_SZ    after the rename
~       Sub
~           s    REG_DWORD    0x1 -> 0x2
~     Reborn
+         fresh    REG_QWORD    0x7
-         r    REG_DWORD    0x1
-       Kid
  HKEY_USERS
    .DEFAULT
      Software
~       Pref
~           theme    REG_SZ    dark -> light
"#;

#[test]
fn diff_lists_every_kind_of_change_as_a_tree() {
    let reg = scene();
    let text = changes::diff_text(&reg, BOX).unwrap();
    assert_eq!(text, DIFF, "\n{text}");
    // Nothing of the rename's old key but the rename: no deletion of OldName, no additions of
    // the content NewName took over.
    let list = changes::changes(&reg, BOX).unwrap();
    assert!(!list.iter().any(|c| c.key.contains("OldName")));
    assert!(
        !list
            .iter()
            .any(|c| c.key.ends_with("NewName") && c.kind == ChangeKind::ValueAdded && c.value.as_deref() == Some("n"))
    );
    let renamed: Vec<_> = list.iter().filter(|c| c.kind == ChangeKind::KeyRenamed).collect();
    assert_eq!(renamed.len(), 1);
    assert_eq!(renamed[0].from.as_deref(), Some(r"HKEY_LOCAL_MACHINE\SOFTWARE\OldName"));
    assert_eq!(renamed[0].from_native.as_deref(), Some(r"\REGISTRY\MACHINE\SOFTWARE\OldName"));
    assert_eq!(&*renamed[0].native, r"\REGISTRY\MACHINE\SOFTWARE\NewName");
    // Diffing reads only.
    assert_eq!(changes::diff_text(&reg, BOX).unwrap(), DIFF);
    assert_eq!(reg.open_handles(), 0);
}

#[test]
fn diff_as_json() {
    let reg = scene();
    let json: serde_json::Value = serde_json::from_str(&changes::diff_json(&reg, BOX).unwrap()).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 17);
    let find = |kind: &str, key: &str, value: Option<&str>| {
        list.iter()
            .find(|c| c["kind"] == kind && c["key"] == key && c.get("value").and_then(|v| v.as_str()) == value)
            .unwrap_or_else(|| panic!("no {kind} {key} {value:?} in {json:#}"))
    };
    let app = r"HKEY_LOCAL_MACHINE\SOFTWARE\App";
    let v = find("value-modified", app, Some("Version"));
    assert_eq!(v["old"], serde_json::json!({"type": "REG_SZ", "data": "1.0", "raw": "31002E0030000000"}));
    assert_eq!(v["new"]["data"], "2.0");
    let v = find("value-deleted", app, Some("Port"));
    assert_eq!(v["old"]["type"], "REG_DWORD");
    assert!(v.get("new").is_none());
    assert_eq!(find("value-added", app, Some("New"))["new"]["data"], "0x5");
    assert_eq!(find("value-added", app, Some("hivebox:odd"))["new"]["data"], "escaped");
    find("key-added", r"HKEY_LOCAL_MACHINE\SOFTWARE\Brand\New", None);
    find("key-deleted", r"HKEY_LOCAL_MACHINE\SOFTWARE\Gone", None);
    find("key-deleted", r"HKEY_LOCAL_MACHINE\SOFTWARE\Reborn\Kid", None);
    let r = find("key-renamed", r"HKEY_LOCAL_MACHINE\SOFTWARE\NewName", None);
    assert_eq!(r["from"], r"HKEY_LOCAL_MACHINE\SOFTWARE\OldName");
    let s = find("value-modified", r"HKEY_LOCAL_MACHINE\SOFTWARE\NewName\Sub", Some("s"));
    assert_eq!((s["old"]["data"].as_str(), s["new"]["data"].as_str()), (Some("0x1"), Some("0x2")));
    find("value-modified", r"HKEY_USERS\.DEFAULT\Software\Pref", Some("theme"));
    // In the same order as the text.
    let kinds: Vec<&str> = list.iter().map(|c| c["kind"].as_str().unwrap()).collect();
    let expected: Vec<&str> = changes::changes(&reg, BOX).unwrap().iter().map(|c| c.kind.as_str()).collect();
    assert_eq!(kinds, expected);
}

#[test]
fn an_empty_box_and_a_missing_one() {
    let reg = host();
    mount(&reg);
    // Copied-up containers and stamps alone are no change.
    boxed_stamped(&reg, &format!(r"{SW}\App"), &[("Keep", Value::sz("same"))]);
    boxed(&reg, r"MACHINE\SOFTWARE\App\Plugins\P1", &[]);
    boxed(&reg, r"MACHINE\SOFTWARE\Ghost", &[(markers::DELETED, marker())]);
    assert_eq!(changes::changes(&reg, BOX).unwrap(), vec![]);
    assert_eq!(changes::diff_text(&reg, BOX).unwrap(), "Box \"trial\" has no registry changes.\n");
    assert_eq!(changes::diff_json(&reg, BOX).unwrap(), "[]\n");
    let dir = tempfile::tempdir().unwrap();
    let report = changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap();
    assert!(report.contains("no changes"), "{report}");
    let e = changes::diff_text(&reg, "other").unwrap_err();
    assert_eq!(e.status, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_eq!(changes::diff_text(&reg, r"a\b").unwrap_err().status, NtStatus::STATUS_OBJECT_NAME_INVALID);
}

#[test]
fn export_then_import_on_a_copy_of_the_host_equals_commit() {
    // Two identical worlds: one imports the export, the other commits.
    let (imported, committed) = (scene(), scene());
    let seen = view(&committed);
    assert_eq!(view(&imported), seen);
    assert_ne!(host_view(&committed), seen);

    let text = changes::export_reg(&imported, BOX).unwrap();
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n\r\n"), "{text}");
    for line in [
        r"[-HKEY_LOCAL_MACHINE\SOFTWARE\Gone]",
        r"[-HKEY_LOCAL_MACHINE\SOFTWARE\OldName]",
        r"[-HKEY_LOCAL_MACHINE\SOFTWARE\Reborn]",
        r#""Port"=-"#,
        r#""extra"="after the rename""#,
        r#""s"=dword:00000002"#,
        r#""hivebox:odd"="escaped""#,
    ] {
        assert!(text.contains(&format!("{line}\r\n")), "{line} missing from\n{text}");
    }
    import(&imported, &text);
    assert_eq!(host_view(&imported), seen, "import");

    let dir = tempfile::tempdir().unwrap();
    let report = changes::commit(&committed, &user(), dir.path(), BOX, None, false).unwrap();
    assert_eq!(report, "17 changes committed to the host.\n");
    assert_eq!(host_view(&committed), seen, "commit");
    assert_eq!(host_view(&committed), host_view(&imported));
    // The box is empty again, and sees what it saw.
    assert_eq!(changes::changes(&committed, BOX).unwrap(), vec![]);
    assert_eq!(view(&committed), seen);
    assert!(!journal(dir.path()).exists());
    assert_eq!(committed.open_handles(), 0);
}

#[test]
fn commit_of_one_key_leaves_the_rest_in_the_box() {
    let reg = scene();
    let seen = view(&reg);
    let before = changes::changes(&reg, BOX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let report = changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software\App"), false).unwrap();
    assert_eq!(report, "6 changes committed to the host (at or below HKEY_LOCAL_MACHINE\\SOFTWARE\\App).\n");
    let app = r"HKEY_LOCAL_MACHINE\SOFTWARE\App";
    let after = changes::changes(&reg, BOX).unwrap();
    let rest: Vec<_> = before.iter().filter(|c| !c.key.starts_with(app)).cloned().collect();
    assert_eq!(after, rest);
    assert_eq!(view(&reg), seen);
    // The host has App's changes, and only those.
    let h = reg.open_key(&system(), None, &format!(r"{SW}\App"), &OpenOptions::default()).unwrap();
    assert_eq!(reg.query_value(&system(), h, "Version").unwrap(), Value::sz("2.0"));
    assert_eq!(reg.query_value(&system(), h, "Port"), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    reg.close_key(&system(), h).unwrap();
    assert!(exists(&reg, &format!(r"{SW}\App\Plugins\P2")));
    assert!(exists(&reg, &format!(r"{SW}\Gone")) && exists(&reg, &format!(r"{SW}\OldName")));

    // Part of a key the box replaced whole cannot be taken alone.
    let e = changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software\NewName\Sub"), false).unwrap_err();
    assert_eq!(e.status, NtStatus::STATUS_INVALID_PARAMETER);
    assert!(e.message.contains(r"commit HKEY_LOCAL_MACHINE\SOFTWARE\NewName instead"), "{}", e.message);
    // The rename's new key alone: created on the host; the old one stays deleted in the box.
    let report = changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software\NewName"), false).unwrap();
    assert_eq!(report, "3 changes committed to the host (at or below HKEY_LOCAL_MACHINE\\SOFTWARE\\NewName).\n");
    assert_eq!(view(&reg), seen);
    let left = changes::changes(&reg, BOX).unwrap();
    assert!(left.iter().any(|c| c.kind == ChangeKind::KeyDeleted && c.key.ends_with("OldName")), "{left:#?}");
    // Part of a key the box deleted: that part of the deletion.
    let report = changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software\Gone\Child"), false).unwrap();
    assert!(report.starts_with("1 change committed"), "{report}");
    assert!(!exists(&reg, &format!(r"{SW}\Gone\Child")) && exists(&reg, &format!(r"{SW}\Gone")));
    assert_eq!(view(&reg), seen);
    // The rest.
    changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap();
    assert_eq!(host_view(&reg), seen);
    assert_eq!(changes::changes(&reg, BOX).unwrap(), vec![]);
}

#[test]
fn commit_of_a_key_named_through_a_link_and_of_a_new_key_below_a_changed_one() {
    let reg = host();
    mount(&reg);
    let svc = r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services";
    put(&reg, &format!(r"{svc}\Svc"), &[("Start", Value::dword(3))]);
    boxed_stamped(&reg, &format!(r"{svc}\Svc"), &[("Start", Value::dword(2))]);
    // App's values changed (stamped), and a new key below it.
    boxed_stamped(&reg, &format!(r"{SW}\App"), &[("Version", Value::sz("3.0"))]);
    boxed(&reg, r"MACHINE\SOFTWARE\App\Child", &[("c", Value::dword(1))]);
    let seen = view(&reg);
    let dir = tempfile::tempdir().unwrap();
    // The box names keys by their resolved paths; --key may name them through the link.
    let r = changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\SYSTEM\CurrentControlSet\Services\Svc"), false);
    assert_eq!(
        r.unwrap(),
        "1 change committed to the host (at or below HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Svc).\n"
    );
    // Creating App\Child on the host changes App's last write time: App's stamp follows, so
    // committing App's own values afterwards is no conflict.
    changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software\App\Child"), false).unwrap();
    let report = changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap();
    assert_eq!(report, "1 change committed to the host.\n");
    assert_eq!(view(&reg), seen);
    assert_eq!(host_view(&reg), seen);
}

#[test]
fn conflicts_are_reported_per_key_and_nothing_is_applied_unless_forced() {
    let reg = scene();
    let seen = view(&reg);
    // The host changes App and deletes Pref after the box changed them.
    put(&reg, &format!(r"{SW}\App"), &[("Version", Value::sz("1.1"))]);
    delete_tree(&reg, r"\REGISTRY\USER\.DEFAULT\Software\Pref");
    let host_before = host_view(&reg);
    let diff_before = changes::diff_text(&reg, BOX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap_err();
    assert_eq!(e.status, NtStatus::STATUS_TRANSACTIONAL_CONFLICT);
    assert_eq!(
        e.message,
        "2 conflicting keys: changed on the host since the box first changed them; nothing was committed \
         (--force overwrites them):\n  \
         HKEY_LOCAL_MACHINE\\SOFTWARE\\App: changed on the host since the box changed it\n  \
         HKEY_USERS\\.DEFAULT\\Software\\Pref: deleted on the host since the box changed it"
    );
    assert_eq!(host_view(&reg), host_before);
    assert_eq!(changes::diff_text(&reg, BOX).unwrap(), diff_before);
    assert!(!journal(dir.path()).exists());
    // A part without conflicts goes through.
    changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software\Brand"), false).unwrap();
    // Forced: the box's version wins.
    let report = changes::commit(&reg, &user(), dir.path(), BOX, None, true).unwrap();
    // Pref went from the host, so the box's Pref is now a key added with its value.
    assert!(report.starts_with("15 changes committed to the host.\n"), "{report}");
    assert!(report.contains("Overwritten although the host changed them since the box did:\n"), "{report}");
    assert!(report.contains(r"HKEY_USERS\.DEFAULT\Software\Pref: deleted on the host"), "{report}");
    assert_eq!(host_view(&reg), seen);
    assert_eq!(changes::changes(&reg, BOX).unwrap(), vec![]);
}

#[test]
fn a_journal_left_by_a_crash_is_finished_at_the_next_start() {
    for crash in [CrashAt::AfterJournal, CrashAt::HostApplied, CrashAt::AfterCommit] {
        let reg = scene();
        let seen = view(&reg);
        let host_before = host_view(&reg);
        let dir = tempfile::tempdir().unwrap();
        changes::commit_until(&reg, &user(), dir.path(), BOX, None, false, crash).unwrap();
        assert!(journal(dir.path()).exists(), "{crash:?}");
        match crash {
            CrashAt::AfterJournal => assert_eq!(host_view(&reg), host_before),
            _ => assert_eq!(host_view(&reg), seen),
        }
        changes::recover_commits(&reg, dir.path()).unwrap();
        assert!(!journal(dir.path()).exists(), "{crash:?}");
        assert_eq!(host_view(&reg), seen, "{crash:?}");
        assert_eq!(changes::changes(&reg, BOX).unwrap(), vec![], "{crash:?}");
        assert_eq!(view(&reg), seen, "{crash:?}");
        // Nothing left to do.
        changes::recover_commits(&reg, dir.path()).unwrap();
        assert_eq!(host_view(&reg), seen, "{crash:?}");
        assert_eq!(reg.open_handles(), 0);
    }
}

#[test]
fn a_damaged_journal_is_set_aside_and_nothing_applied() {
    let reg = scene();
    let host_before = host_view(&reg);
    let diff_before = changes::diff_text(&reg, BOX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    changes::commit_until(&reg, &user(), dir.path(), BOX, None, false, CrashAt::AfterJournal).unwrap();
    let file = journal(dir.path());
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0x20;
    std::fs::write(&file, &bytes).unwrap();
    let e = changes::recover_commits(&reg, dir.path()).unwrap_err();
    assert!(e.message.contains("the commit journal is damaged"), "{}", e.message);
    assert!(!file.exists() && file.with_extension("journal.damaged").exists());
    assert_eq!(host_view(&reg), host_before);
    assert_eq!(changes::diff_text(&reg, BOX).unwrap(), diff_before);
    // No directory, no journal: nothing to do.
    changes::recover_commits(&reg, &dir.path().join("missing")).unwrap();
}

#[test]
fn an_unfinished_commit_blocks_the_next_one_until_it_is_finished() {
    let reg = scene();
    let seen = view(&reg);
    let dir = tempfile::tempdir().unwrap();
    changes::commit_until(&reg, &user(), dir.path(), BOX, None, false, CrashAt::HostApplied).unwrap();
    let e = changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap_err();
    assert_eq!(e.status, NtStatus::STATUS_TRANSACTIONAL_CONFLICT);
    assert!(e.message.contains("has an unfinished commit"), "{}", e.message);
    changes::recover_commits(&reg, dir.path()).unwrap();
    assert_eq!(
        changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap(),
        "Box \"trial\" has no changes: nothing was committed.\n"
    );
    assert_eq!(host_view(&reg), seen);
}

#[derive(Default)]
struct Events(Mutex<Vec<ProtectionEvent>>);

impl EventSink for Events {
    fn submit(&self, event: ProtectionEvent, _high: bool) {
        self.0.lock().push(event);
    }
}

#[test]
fn a_change_the_protection_policy_denies_fails_the_commit_and_applies_nothing() {
    let reg = scene();
    let policy = r#"
[[rule]]
id = "pref"
key = 'HKU\.DEFAULT\Software\Pref'
deny = ["set-value"]
"#;
    let events = Arc::new(Events::default());
    let clock = Arc::new(ManualClock::new(UNIX_EPOCH_FILETIME));
    ProtectionFilter::new(hivebox_policy::compile("t.toml", policy).unwrap(), events.clone(), clock)
        .register(&reg)
        .unwrap();
    let host_before = host_view(&reg);
    let diff_before = changes::diff_text(&reg, BOX).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let e = changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap_err();
    assert_eq!(e.status, NtStatus::STATUS_ACCESS_DENIED);
    assert_eq!(
        e.message,
        r"access denied (STATUS_ACCESS_DENIED) at HKEY_USERS\.DEFAULT\Software\Pref\theme; nothing was committed"
    );
    assert_eq!(host_view(&reg), host_before);
    assert_eq!(changes::diff_text(&reg, BOX).unwrap(), diff_before);
    assert!(!journal(dir.path()).exists());
    let denied = events.0.lock().clone();
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(reg.open_handles(), 0);
    // Without that change, the rest commits.
    changes::commit(&reg, &user(), dir.path(), BOX, Some(r"HKLM\Software"), false).unwrap();
    assert_eq!(changes::changes(&reg, BOX).unwrap().len(), 1);
}

#[test]
fn a_boxed_caller_cannot_commit() {
    let reg = scene();
    let boxed = Caller::user(
        Token { user_sid: "S-1-22-1-1000".into(), system: false },
        ProcessInfo { pid: 7, image: "/bin/sh".into(), box_name: Some(BOX.into()), ..ProcessInfo::default() },
    );
    let dir = tempfile::tempdir().unwrap();
    let e = changes::commit(&reg, &boxed, dir.path(), BOX, None, false).unwrap_err();
    assert_eq!(e.status, NtStatus::STATUS_ACCESS_DENIED);
}

/// What a caller sees below `native`, in the form of `merged`.
fn seen_by(reg: &Registry, who: &Caller, native: &str, out: &mut String) {
    let h = reg.open_key(who, None, native, &OpenOptions::default()).unwrap();
    let mut values = BTreeMap::new();
    while let Ok((n, v)) = reg.enumerate_value(who, h, values.len() as u32) {
        values.insert(n.to_uppercase(), (n, v));
    }
    let mut subkeys = Vec::new();
    while let Ok(s) = reg.enumerate_key(who, h, subkeys.len() as u32) {
        subkeys.push(s.name);
    }
    reg.close_key(who, h).unwrap();
    dump_key(native, values, out);
    for s in subkeys {
        seen_by(reg, who, &format!(r"{native}\{s}"), out);
    }
}

fn seen(reg: &Registry, who: &Caller) -> String {
    let mut out = String::new();
    seen_by(reg, who, SW, &mut out);
    seen_by(reg, who, r"\REGISTRY\USER", &mut out);
    out
}

#[test]
fn a_box_the_isolation_filter_wrote_diffs_and_commits_the_same() {
    use hivebox_core::isolate::IsolationFilter;
    let reg = host();
    mount(&reg);
    let filter = IsolationFilter::new();
    filter.register(&reg).unwrap();
    filter.add_box(BOX);
    let boxed = Caller::user(
        Token { user_sid: "S-1-22-1-1000".into(), system: false },
        ProcessInfo { pid: 9, image: "/opt/trial/setup".into(), box_name: Some(BOX.into()), ..ProcessInfo::default() },
    );
    let open = |path: &str| {
        reg.open_key(&boxed, None, path, &OpenOptions::access(hivebox_core::access::KEY_ALL_ACCESS)).unwrap()
    };
    let create = |path: &str| reg.create_key_path(&boxed, None, path, &CreateOptions::default()).unwrap().0;
    let close = |h| reg.close_key(&boxed, h).unwrap();
    // The same changes as `scene`, made by a program in the box.
    let h = open(&format!(r"{SW}\App"));
    reg.set_value(&boxed, h, "Version", Value::sz("2.0")).unwrap();
    reg.delete_value(&boxed, h, "Port").unwrap();
    reg.set_value(&boxed, h, "New", Value::dword(5)).unwrap();
    reg.set_value(&boxed, h, "Keep", Value::sz("same")).unwrap();
    reg.set_value(&boxed, h, "hivebox:odd", Value::sz("escaped")).unwrap();
    close(h);
    let h = create(&format!(r"{SW}\App\Plugins\P2"));
    reg.set_value(&boxed, h, "w", Value::sz("new plugin")).unwrap();
    close(h);
    let h = create(&format!(r"{SW}\Brand"));
    reg.set_value(&boxed, h, "x", Value::binary(&[1, 2, 3])).unwrap();
    close(h);
    close(create(&format!(r"{SW}\Brand\New")));
    for k in [r"Gone\Child", "Gone", r"Reborn\Kid", "Reborn"] {
        let h = open(&format!(r"{SW}\{k}"));
        reg.delete_key(&boxed, h).unwrap();
        close(h);
    }
    let h = create(&format!(r"{SW}\Reborn"));
    reg.set_value(&boxed, h, "fresh", Value::qword(7)).unwrap();
    close(h);
    let h = open(&format!(r"{SW}\OldName"));
    reg.rename_key(&boxed, h, "NewName").unwrap();
    close(h);
    let h = open(&format!(r"{SW}\NewName"));
    reg.set_value(&boxed, h, "extra", Value::sz("after the rename")).unwrap();
    close(h);
    let h = open(&format!(r"{SW}\NewName\Sub"));
    reg.set_value(&boxed, h, "s", Value::dword(2)).unwrap();
    close(h);
    let h = open(r"\REGISTRY\USER\.DEFAULT\Software\Pref");
    reg.set_value(&boxed, h, "theme", Value::sz("light")).unwrap();
    close(h);

    // The view the filter serves is the one `docs/boxes.md` describes (this file's model).
    let before = seen(&reg, &boxed);
    assert_eq!(before, view(&reg));
    assert_eq!(changes::diff_text(&reg, BOX).unwrap(), DIFF);

    let dir = tempfile::tempdir().unwrap();
    assert_eq!(
        changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap(),
        "17 changes committed to the host.\n"
    );
    assert_eq!(seen(&reg, &user()), before);
    assert_eq!(seen(&reg, &boxed), before);
    assert_eq!(changes::changes(&reg, BOX).unwrap(), vec![]);
    assert_eq!(reg.open_handles(), 0);
}

#[test]
fn a_key_renamed_away_and_back_is_compared_with_itself() {
    let reg = host();
    mount(&reg);
    boxed(
        &reg,
        r"MACHINE\SOFTWARE\OldName",
        &[
            (markers::RENAMED_FROM, Value::sz(&format!(r"{SW}\OldName"))),
            ("n", Value::sz("changed")),
            ("", Value::sz("default")),
        ],
    );
    boxed(&reg, r"MACHINE\SOFTWARE\OldName\Sub", &[("s", Value::dword(1))]);
    let list = changes::changes(&reg, BOX).unwrap();
    assert_eq!(list.len(), 1, "{list:#?}");
    assert_eq!((list[0].kind, list[0].value.as_deref()), (ChangeKind::ValueModified, Some("n")));
    let seen = view(&reg);
    let dir = tempfile::tempdir().unwrap();
    changes::commit(&reg, &user(), dir.path(), BOX, None, false).unwrap();
    assert_eq!(host_view(&reg), seen);
}
