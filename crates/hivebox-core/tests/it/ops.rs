//! Each registry operation on its own, without callbacks: statuses, access checks, names,
//! ordering, links, volatile keys, change notification and last-write times.

use crate::common::*;
use hivebox_core::access::*;
use hivebox_core::name::{MAX_KEY_NAME_LEN, MAX_PATH_DEPTH, MAX_VALUE_NAME_LEN};
use hivebox_core::{
    Caller, Clock, CreateOptions, Disposition, Handle, KeyImage, NtStatus, OpenOptions, Registry, Value, ValueType,
    WatchId,
};
use std::sync::{Arc, Mutex};

fn create_in(env: &Env, parent: Handle, name: &str) -> Result<(Handle, Disposition), NtStatus> {
    env.reg.create_key(&env.me, Some(parent), name, &CreateOptions::default())
}

fn subkey_names(env: &Env, h: Handle) -> Vec<String> {
    (0..).map_while(|i| env.reg.enumerate_key(&env.me, h, i).ok()).map(|s| s.name).collect()
}

fn find_in_image<'a>(image: &'a KeyImage, path: &[&str]) -> Option<&'a KeyImage> {
    let mut cur = image;
    for part in path {
        cur = cur.subkeys.iter().find(|k| k.name.eq_ignore_ascii_case(part))?;
    }
    Some(cur)
}

#[test]
fn create_reports_created_then_opened() {
    let env = env();
    let (h, d) = env.create("Alpha").unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    env.close(h);
    let (h, d) = env.create("ALPHA").unwrap();
    assert_eq!(d, Disposition::OpenedExistingKey, "names are case-insensitive");
    assert_eq!(env.name_of(h), format!(r"{ROOT}\Alpha"), "and case-preserving");
    env.close(h);
    // The absolute form and a trailing separator mean the same key.
    let (h, d) = env.reg.create_key(&env.me, None, &format!(r"{ROOT}\alpha\"), &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::OpenedExistingKey);
    env.close(h);
    // The root itself (already created by the setup).
    let (h, d) = env.reg.create_key(&env.me, None, ROOT, &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::OpenedExistingKey);
    env.close(h);
}

#[test]
fn create_needs_the_parent() {
    let env = env();
    assert_eq!(env.create(r"Missing\Child").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    let (h, d) = env.reg.create_key_path(&env.me, Some(env.root), r"Missing\Child", &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert_eq!(env.name_of(h), format!(r"{ROOT}\Missing\Child"));
    env.close(h);
    assert_eq!(env.reg.open_handles(), 1, "create_key_path closes the intermediate handles");
}

#[test]
fn bad_names_are_rejected() {
    let env = env();
    let bad_syntax = [r"REGISTRY\MACHINE", r"\REGISTRYX\MACHINE", r"\Foo"];
    for name in bad_syntax {
        assert_eq!(
            env.reg.open_key(&env.me, None, name, &OpenOptions::default()).err(),
            Some(NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD),
            "{name}"
        );
    }
    assert_eq!(
        env.reg.open_key(&env.me, Some(env.root), r"\Absolute", &OpenOptions::default()).err(),
        Some(NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD)
    );
    assert_eq!(env.create(r"A\\B").err(), Some(NtStatus::STATUS_OBJECT_NAME_INVALID));
}

#[test]
fn open_missing_is_name_not_found() {
    let env = env();
    assert_eq!(env.open("Nope").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(env.open(r"Nope\Deeper").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(
        env.reg.open_key(&env.me, None, &format!(r"{ROOT}\Nope"), &OpenOptions::default()).err(),
        Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)
    );
    // The empty relative name opens the root key again.
    let h = env.reg.open_key(&env.me, Some(env.root), "", &OpenOptions::default()).unwrap();
    assert_eq!(env.name_of(h), ROOT);
    env.close(h);
}

#[test]
fn delete_key_rules() {
    let env = env();
    let (parent, _) = env.create("Parent").unwrap();
    let (child, _) = create_in(&env, parent, "Child").unwrap();
    assert_eq!(env.reg.delete_key(&env.me, parent), Err(NtStatus::STATUS_CANNOT_DELETE));
    env.reg.delete_key(&env.me, child).unwrap();
    env.reg.delete_key(&env.me, parent).unwrap();
    assert_eq!(env.open("Parent").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(env.reg.delete_key(&env.me, parent), Err(NtStatus::STATUS_KEY_DELETED));
    env.close(child);
    env.close(parent);
    // Hive roots cannot be deleted.
    let system = Caller::system();
    for path in [r"\REGISTRY\MACHINE\SOFTWARE\Policies", r"\REGISTRY\MACHINE\SAM"] {
        let h = env.reg.open_key(&system, None, path, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
        let expected = if path.ends_with("Policies") { Ok(()) } else { Err(NtStatus::STATUS_CANNOT_DELETE) };
        assert_eq!(env.reg.delete_key(&system, h), expected, "{path}");
        env.reg.close_key(&system, h).unwrap();
    }
    // A deleted key can be created again: a new key.
    let (h, d) = env.create("Parent").unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    env.close(h);
}

#[test]
fn a_deleted_key_fails_every_operation() {
    let env = env();
    let (h, _) = env.create("Doomed").unwrap();
    let (other, _) = env.create("Doomed").unwrap();
    env.reg.set_value(&env.me, h, "v", Value::dword(1)).unwrap();
    env.reg.delete_key(&env.me, other).unwrap();
    let me = &env.me;
    let r = &env.reg;
    let deleted = Some(NtStatus::STATUS_KEY_DELETED);
    assert_eq!(r.set_value(me, h, "v", Value::dword(2)).err(), deleted, "set_value");
    assert_eq!(r.query_value(me, h, "v").err(), deleted, "query_value");
    assert_eq!(r.delete_value(me, h, "v").err(), deleted, "delete_value");
    assert_eq!(r.enumerate_key(me, h, 0).err(), deleted, "enumerate_key");
    assert_eq!(r.enumerate_value(me, h, 0).err(), deleted, "enumerate_value");
    assert_eq!(r.query_key(me, h).err(), deleted, "query_key");
    assert_eq!(r.query_key_name(me, h).err(), deleted, "query_key_name");
    assert_eq!(r.rename_key(me, h, "Other").err(), deleted, "rename_key");
    assert_eq!(r.delete_key(me, h).err(), deleted, "delete_key");
    assert_eq!(r.flush_key(me, h).err(), deleted, "flush_key");
    assert_eq!(r.set_last_write_time(me, h, 5).err(), deleted, "set_last_write_time");
    assert_eq!(r.notify_change_key(me, h, false, REG_NOTIFY_CHANGE_LAST_SET, None).err(), deleted, "notify_change_key");
    assert_eq!(r.open_key(me, Some(h), "", &OpenOptions::default()).err(), deleted, "open relative");
    assert_eq!(r.create_key(me, Some(h), "Sub", &CreateOptions::default()).err(), deleted, "create relative");
    assert_eq!(r.close_key(me, h), Ok(()), "close still works");
    assert_eq!(r.close_key(me, other), Ok(()));
    assert_eq!(r.close_key(me, other), Err(NtStatus::STATUS_INVALID_HANDLE), "a closed handle is gone");
}

#[test]
fn handle_access_is_checked() {
    let env = env();
    let (h, _) = env.create("Acl").unwrap();
    env.reg.set_value(&env.me, h, "v", Value::dword(1)).unwrap();
    env.close(h);
    let denied = Some(NtStatus::STATUS_ACCESS_DENIED);
    let me = &env.me;
    let r = &env.reg;

    let read = r.open_key(me, Some(env.root), "Acl", &OpenOptions::access(KEY_READ)).unwrap();
    assert_eq!(r.handle_access(read), Ok(KEY_READ));
    assert_eq!(r.set_value(me, read, "v", Value::dword(2)).err(), denied);
    assert_eq!(r.delete_value(me, read, "v").err(), denied);
    assert_eq!(r.delete_key(me, read).err(), denied);
    assert_eq!(r.rename_key(me, read, "Other").err(), denied);
    assert_eq!(r.set_last_write_time(me, read, 1).err(), denied);
    assert_eq!(r.query_value(me, read, "v"), Ok(Value::dword(1)));
    assert!(r.query_key(me, read).is_ok());
    assert!(r.notify_change_key(me, read, false, REG_NOTIFY_CHANGE_NAME, None).is_ok());
    r.close_key(me, read).unwrap();

    let write = r.open_key(me, Some(env.root), "Acl", &OpenOptions::access(KEY_SET_VALUE)).unwrap();
    r.set_value(me, write, "v", Value::dword(3)).unwrap();
    assert_eq!(r.query_value(me, write, "v").err(), denied);
    assert_eq!(r.enumerate_key(me, write, 0).err(), denied);
    assert_eq!(r.enumerate_value(me, write, 0).err(), denied);
    assert_eq!(r.query_key(me, write).err(), denied);
    assert_eq!(r.notify_change_key(me, write, false, REG_NOTIFY_CHANGE_NAME, None).err(), denied);
    assert!(r.query_key_name(me, write).is_ok(), "the name needs no access");
    r.close_key(me, write).unwrap();

    // Generic rights map to key rights.
    let g = r.open_key(me, Some(env.root), "Acl", &OpenOptions::access(GENERIC_READ)).unwrap();
    assert_eq!(r.handle_access(g), Ok(KEY_READ));
    r.close_key(me, g).unwrap();

    // Rights reserved to SYSTEM (ControlSet001\Enum).
    let enum_key = r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Enum";
    assert_eq!(r.open_key(me, None, enum_key, &OpenOptions::access(KEY_ALL_ACCESS)).err(), denied);
    assert_eq!(r.open_key(me, None, enum_key, &OpenOptions::access(DELETE)).err(), denied);
    let ro = r.open_key(me, None, enum_key, &OpenOptions::access(KEY_READ)).unwrap();
    assert_eq!(r.create_key(me, Some(ro), "Mine", &CreateOptions::default()).err(), denied);
    r.close_key(me, ro).unwrap();
    let max = r.open_key(me, None, enum_key, &OpenOptions::access(MAXIMUM_ALLOWED)).unwrap();
    assert_eq!(r.handle_access(max), Ok(KEY_ALL_ACCESS & !hivebox_core::fresh::ENUM_SYSTEM_ONLY));
    r.close_key(me, max).unwrap();
    let system = Caller::system();
    let all = r.open_key(&system, None, enum_key, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    r.close_key(&system, all).unwrap();
    // A kernel-mode caller is not checked unless it asks.
    let mut kernel = user();
    kernel.mode = hivebox_core::Mode::Kernel;
    let k = r.open_key(&kernel, None, enum_key, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    r.close_key(&kernel, k).unwrap();
    let forced = OpenOptions { desired_access: KEY_ALL_ACCESS, options: 0, attributes: OBJ_FORCE_ACCESS_CHECK };
    assert_eq!(r.open_key(&kernel, None, enum_key, &forced).err(), denied);
}

#[test]
fn enumeration_order_and_end() {
    let env = env();
    // Upcased order: '_' (0x5F) sorts after the letters, digits before them.
    for name in ["b", "A_", "ab", "Ac", "a1", "B2"] {
        let (h, _) = env.create(name).unwrap();
        env.close(h);
    }
    assert_eq!(subkey_names(&env, env.root), ["a1", "ab", "Ac", "A_", "b", "B2"]);
    assert_eq!(env.reg.enumerate_key(&env.me, env.root, 6).err(), Some(NtStatus::STATUS_NO_MORE_ENTRIES));
    assert_eq!(env.reg.enumerate_key(&env.me, env.root, u32::MAX).err(), Some(NtStatus::STATUS_NO_MORE_ENTRIES));

    // Values keep insertion order; setting an existing value keeps its place and name.
    for (name, v) in [("zeta", 1), ("Alpha", 2), ("", 3), ("mid", 4), ("ALPHA", 5)] {
        env.reg.set_value(&env.me, env.root, name, Value::dword(v)).unwrap();
    }
    let values: Vec<(String, Value)> =
        (0..).map_while(|i| env.reg.enumerate_value(&env.me, env.root, i).ok()).collect();
    assert_eq!(
        values,
        [
            ("zeta".to_owned(), Value::dword(1)),
            ("Alpha".to_owned(), Value::dword(5)),
            (String::new(), Value::dword(3)),
            ("mid".to_owned(), Value::dword(4)),
        ]
    );
    assert_eq!(env.reg.enumerate_value(&env.me, env.root, 4).err(), Some(NtStatus::STATUS_NO_MORE_ENTRIES));
    env.reg.delete_value(&env.me, env.root, "ALPHA").unwrap();
    assert_eq!(env.reg.enumerate_value(&env.me, env.root, 1).unwrap().0, "");
    assert_eq!(env.reg.delete_value(&env.me, env.root, "alpha"), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
}

#[test]
fn many_values_stay_case_insensitive() {
    // Past 16 values the key keeps a hash index; lookups must behave the same.
    let env = env();
    for i in 0..40 {
        env.reg.set_value(&env.me, env.root, &format!("Value{i}"), Value::dword(i)).unwrap();
    }
    for i in 0..40 {
        assert_eq!(env.reg.query_value(&env.me, env.root, &format!("VALUE{i}")), Ok(Value::dword(i)));
    }
    for i in (0..40).step_by(2) {
        env.reg.delete_value(&env.me, env.root, &format!("value{i}")).unwrap();
    }
    for i in 0..40 {
        let got = env.reg.query_value(&env.me, env.root, &format!("Value{i}")).ok();
        assert_eq!(got, (i % 2 == 1).then(|| Value::dword(i)), "Value{i}");
    }
    let names: Vec<String> =
        (0..).map_while(|i| env.reg.enumerate_value(&env.me, env.root, i).ok()).map(|v| v.0).collect();
    assert_eq!(names, (0..40).filter(|i| i % 2 == 1).map(|i| format!("Value{i}")).collect::<Vec<_>>());
}

#[test]
fn query_key_counts_and_lengths() {
    let env = env();
    let (h, _) = env.create("Info").unwrap();
    let info = env.reg.query_key(&env.me, h).unwrap();
    assert_eq!((info.name.as_str(), info.subkeys, info.values), ("Info", 0, 0));
    assert_eq!(
        (info.max_subkey_name_len, info.max_class_len, info.max_value_name_len, info.max_value_data_len),
        (0, 0, 0, 0)
    );

    let with_class = CreateOptions { class: Some("MyClass".into()), ..CreateOptions::default() };
    let (a, _) = env.reg.create_key(&env.me, Some(h), "Short", &with_class).unwrap();
    let (b, _) = create_in(&env, h, "AMuchLongerName").unwrap();
    env.reg.set_value(&env.me, h, "v", Value::binary(&[0; 10])).unwrap();
    env.reg.set_value(&env.me, h, "LongerValueName", Value::sz("é")).unwrap();
    env.reg.set_value(&env.me, h, "ünïcödé", Value::dword(1)).unwrap();
    let info = env.reg.query_key(&env.me, h).unwrap();
    assert_eq!(info.subkeys, 2);
    assert_eq!(info.values, 3);
    assert_eq!(info.max_subkey_name_len, 15);
    assert_eq!(info.max_class_len, 7);
    assert_eq!(info.max_value_name_len, 15);
    assert_eq!(info.max_value_data_len, 10);
    assert!(!info.volatile && !info.link);
    assert_eq!(env.reg.query_key(&env.me, a).unwrap().class.as_deref(), Some("MyClass"));
    assert_eq!(env.reg.enumerate_key(&env.me, h, 1).unwrap().class.as_deref(), Some("MyClass"));
    for k in [a, b] {
        env.reg.delete_key(&env.me, k).unwrap();
        env.close(k);
    }
    env.reg.delete_value(&env.me, h, "v").unwrap();
    let info = env.reg.query_key(&env.me, h).unwrap();
    assert_eq!((info.subkeys, info.values, info.max_subkey_name_len, info.max_value_data_len), (0, 2, 0, 4));
    env.close(h);
}

#[test]
fn rename_keeps_the_key() {
    let env = env();
    let (h, _) = env.create("Before").unwrap();
    let (child, _) = create_in(&env, h, "Child").unwrap();
    let (id, _) = env.reg.key_object_id(env.reg.handle_object(h).unwrap()).unwrap();
    env.reg.rename_key(&env.me, h, "After").unwrap();
    let (id2, name) = env.reg.key_object_id(env.reg.handle_object(h).unwrap()).unwrap();
    assert_eq!(id, id2, "the key keeps its id");
    assert_eq!(name, format!(r"{ROOT}\After"));
    assert_eq!(env.name_of(child), format!(r"{ROOT}\After\Child"), "handles below follow");
    assert_eq!(env.open("Before").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    let again = env.open("after").unwrap();
    assert_eq!(env.reg.key_object_id(env.reg.handle_object(again).unwrap()).unwrap().0, id);
    env.close(again);

    let (sib, _) = env.create("Sibling").unwrap();
    assert_eq!(env.reg.rename_key(&env.me, h, "SIBLING"), Err(NtStatus::STATUS_OBJECT_NAME_COLLISION));
    env.reg.rename_key(&env.me, h, "AFTER").unwrap();
    assert_eq!(subkey_names(&env, env.root), ["AFTER", "Sibling"], "a rename may change only the case");
    assert_eq!(env.reg.rename_key(&env.me, h, ""), Err(NtStatus::STATUS_OBJECT_NAME_INVALID));
    assert_eq!(env.reg.rename_key(&env.me, h, &"n".repeat(256)), Err(NtStatus::STATUS_INVALID_PARAMETER));
    assert_eq!(
        env.reg.rename_key(&env.me, h, r"Sub\Key"),
        Err(NtStatus::STATUS_OBJECT_NAME_INVALID),
        "a new name is one component"
    );
    assert_eq!(subkey_names(&env, env.root), ["AFTER", "Sibling"]);
    for k in [h, child, sib] {
        env.close(k);
    }
    // Hive roots cannot be renamed.
    let system = Caller::system();
    let sw =
        env.reg.open_key(&system, None, r"\REGISTRY\MACHINE\SOFTWARE", &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    assert_eq!(env.reg.rename_key(&system, sw, "SOFT"), Err(NtStatus::STATUS_ACCESS_DENIED));
    env.reg.close_key(&system, sw).unwrap();
}

#[test]
fn volatile_keys() {
    let env = env();
    let volatile = CreateOptions { options: REG_OPTION_VOLATILE, ..CreateOptions::default() };
    let (v, d) = env.reg.create_key(&env.me, Some(env.root), "Vol", &volatile).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert!(env.reg.query_key(&env.me, v).unwrap().volatile);
    assert_eq!(create_in(&env, v, "Stable").err(), Some(NtStatus::STATUS_CHILD_MUST_BE_VOLATILE));
    let (vc, _) = env.reg.create_key(&env.me, Some(v), "AlsoVol", &volatile).unwrap();
    env.reg.set_value(&env.me, vc, "x", Value::dword(1)).unwrap();
    let (stable, _) = env.create("Stable").unwrap();
    // Opening an existing persistent key with the volatile option does not change it.
    let (again, d) = env.reg.create_key(&env.me, Some(env.root), "Stable", &volatile).unwrap();
    assert_eq!(d, Disposition::OpenedExistingKey);
    assert!(!env.reg.query_key(&env.me, again).unwrap().volatile);

    let image = env.reg.image();
    let root_path = ["MACHINE", "SOFTWARE", "_RegFltrRoot"];
    let root_image = find_in_image(&image, &root_path).unwrap();
    assert!(root_image.subkeys.iter().any(|k| k.name == "Stable"));
    assert!(!root_image.subkeys.iter().any(|k| k.name == "Vol"), "volatile keys are not persisted");
    assert!(find_in_image(&image, &["MACHINE", "HARDWARE"]).is_none(), "HARDWARE is volatile");
    let hw =
        env.reg.open_key(&env.me, None, r"\REGISTRY\MACHINE\HARDWARE\DESCRIPTION", &OpenOptions::default()).unwrap();
    assert!(env.reg.query_key(&env.me, hw).unwrap().volatile);
    for h in [v, vc, stable, again, hw] {
        env.close(h);
    }
}

#[test]
fn symbolic_links() {
    let env = env();
    let services = env
        .reg
        .open_key(&env.me, None, r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services", &OpenOptions::default())
        .unwrap();
    assert_eq!(env.name_of(services), r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services");
    env.close(services);

    let link_opts = OpenOptions { options: REG_OPTION_OPEN_LINK, ..OpenOptions::default() };
    let link = env.reg.open_key(&env.me, None, r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet", &link_opts).unwrap();
    assert_eq!(env.name_of(link), r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet");
    assert!(env.reg.query_key(&env.me, link).unwrap().link);
    let target = env.reg.query_value(&env.me, link, "SymbolicLinkValue").unwrap();
    assert_eq!(target.ty, ValueType::REG_LINK);
    assert_eq!(target.as_string().unwrap(), r"\REGISTRY\MACHINE\SYSTEM\ControlSet001");
    env.close(link);
    let obj_openlink = OpenOptions { attributes: OBJ_CASE_INSENSITIVE | OBJ_OPENLINK, ..OpenOptions::default() };
    let link = env.reg.open_key(&env.me, None, r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet", &obj_openlink).unwrap();
    assert_eq!(env.name_of(link), r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet");
    env.close(link);
    // Without the option the link's own name resolves to the target.
    let followed = env
        .reg
        .open_key(&env.me, None, r"\REGISTRY\MACHINE\SYSTEM\currentcontrolset", &OpenOptions::default())
        .unwrap();
    assert_eq!(env.name_of(followed), r"\REGISTRY\MACHINE\SYSTEM\ControlSet001");
    env.close(followed);

    // Creates through the link land in the target.
    let system = Caller::system();
    let (h, d) = env
        .reg
        .create_key(
            &system,
            None,
            r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\hivebox",
            &CreateOptions::default(),
        )
        .unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert_eq!(env.reg.query_key_name(&system, h).unwrap(), r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\hivebox");
    env.reg.close_key(&system, h).unwrap();

    // A link created by a caller, and a dangling one.
    let create_link = CreateOptions { options: REG_OPTION_CREATE_LINK, ..CreateOptions::default() };
    let (l, _) = env.reg.create_key(&env.me, Some(env.root), "Link", &create_link).unwrap();
    env.reg.set_value(&env.me, l, "SymbolicLinkValue", Value::link(&format!(r"{ROOT}\Target"))).unwrap();
    env.close(l);
    assert_eq!(env.open("Link").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND), "dangling");
    let (t, _) = env.create("Target").unwrap();
    env.close(t);
    let through = env.open("Link").unwrap();
    assert_eq!(env.name_of(through), format!(r"{ROOT}\Target"));
    env.close(through);
}

#[test]
fn symbolic_link_loops_are_cut() {
    let env = env();
    let create_link = CreateOptions { options: REG_OPTION_CREATE_LINK, ..CreateOptions::default() };
    for (name, target) in [("L1", "L2"), ("L2", "L1")] {
        let (l, _) = env.reg.create_key(&env.me, Some(env.root), name, &create_link).unwrap();
        env.reg.set_value(&env.me, l, "SymbolicLinkValue", Value::link(&format!(r"{ROOT}\{target}"))).unwrap();
        env.close(l);
    }
    assert_eq!(env.open("L1").err(), Some(NtStatus::STATUS_REPARSE_POINT_NOT_RESOLVED));
}

fn status(env: &Env, w: WatchId) -> Option<NtStatus> {
    env.reg.watch_status(w).unwrap()
}

#[test]
fn change_notification_on_values() {
    let env = env();
    let (h, _) = env.create("Watched").unwrap();
    let fired: Arc<Mutex<Vec<(WatchId, NtStatus)>>> = Arc::default();
    let f = fired.clone();
    let notifier: hivebox_core::WatchNotifier = Arc::new(move |id, s| f.lock().unwrap().push((id, s)));
    let w = env.reg.notify_change_key(&env.me, h, false, REG_NOTIFY_CHANGE_LAST_SET, Some(notifier)).unwrap();
    let names_only = env.reg.notify_change_key(&env.me, h, false, REG_NOTIFY_CHANGE_NAME, None).unwrap();
    assert_eq!(status(&env, w), None);
    env.reg.set_value(&env.me, h, "v", Value::dword(1)).unwrap();
    env.reg.set_value(&env.me, h, "v", Value::dword(2)).unwrap();
    assert_eq!(*fired.lock().unwrap(), [(w, NtStatus::STATUS_SUCCESS)], "one-shot: fired once");
    assert_eq!(status(&env, w), Some(NtStatus::STATUS_SUCCESS));
    assert_eq!(env.reg.watch_status(w), Err(NtStatus::STATUS_INVALID_PARAMETER), "consumed");
    assert_eq!(status(&env, names_only), None, "a value change is not a name change");

    // A value deleted also counts as LAST_SET.
    let w = env.reg.notify_change_key(&env.me, h, false, REG_NOTIFY_CHANGE_LAST_SET, None).unwrap();
    env.reg.delete_value(&env.me, h, "v").unwrap();
    assert_eq!(status(&env, w), Some(NtStatus::STATUS_SUCCESS));

    assert_eq!(env.reg.notify_change_key(&env.me, h, false, 0, None).err(), Some(NtStatus::STATUS_INVALID_PARAMETER));
    assert_eq!(
        env.reg.notify_change_key(&env.me, h, false, 0x100, None).err(),
        Some(NtStatus::STATUS_INVALID_PARAMETER)
    );
    env.close(h);
    assert_eq!(status(&env, names_only), Some(NtStatus::STATUS_NOTIFY_CLEANUP), "closing the handle completes it");
}

#[test]
fn change_notification_on_subkeys() {
    let env = env();
    let (top, _) = env.create("Top").unwrap();
    let (mid, _) = create_in(&env, top, "Mid").unwrap();
    let shallow = env.reg.notify_change_key(&env.me, top, false, REG_NOTIFY_CHANGE_NAME, None).unwrap();
    let deep = env.reg.notify_change_key(&env.me, top, true, REG_NOTIFY_CHANGE_NAME, None).unwrap();
    let deep_values = env.reg.notify_change_key(&env.me, top, true, REG_NOTIFY_CHANGE_LAST_SET, None).unwrap();
    let (leaf, _) = create_in(&env, mid, "Leaf").unwrap();
    assert_eq!(status(&env, shallow), None, "a grandchild is outside a non-subtree watch");
    assert_eq!(status(&env, deep), Some(NtStatus::STATUS_SUCCESS));
    env.reg.set_value(&env.me, leaf, "v", Value::dword(1)).unwrap();
    assert_eq!(status(&env, deep_values), Some(NtStatus::STATUS_SUCCESS), "values anywhere in the subtree");
    // A direct subkey does fire a non-subtree watch.
    let (direct, _) = create_in(&env, top, "Direct").unwrap();
    assert_eq!(status(&env, shallow), Some(NtStatus::STATUS_SUCCESS));

    // Deleting and renaming subkeys are name changes too.
    let w = env.reg.notify_change_key(&env.me, top, false, REG_NOTIFY_CHANGE_NAME, None).unwrap();
    env.reg.rename_key(&env.me, direct, "Renamed").unwrap();
    assert_eq!(status(&env, w), Some(NtStatus::STATUS_SUCCESS));
    let w = env.reg.notify_change_key(&env.me, top, false, REG_NOTIFY_CHANGE_NAME, None).unwrap();
    env.reg.delete_key(&env.me, direct).unwrap();
    assert_eq!(status(&env, w), Some(NtStatus::STATUS_SUCCESS));

    // Deleting the watched key itself.
    let w = env.reg.notify_change_key(&env.me, leaf, false, REG_NOTIFY_CHANGE_LAST_SET, None).unwrap();
    env.reg.delete_key(&env.me, leaf).unwrap();
    assert_eq!(status(&env, w), Some(NtStatus::STATUS_KEY_DELETED));
    for h in [top, mid, leaf, direct] {
        env.close(h);
    }
}

#[test]
fn name_limits() {
    let env = env();
    let ok = "k".repeat(MAX_KEY_NAME_LEN);
    let (h, _) = env.create(&ok).unwrap();
    assert_eq!(env.reg.query_key(&env.me, h).unwrap().name.len(), 255);
    env.close(h);
    let long = "k".repeat(MAX_KEY_NAME_LEN + 1);
    assert_eq!(env.create(&long).err(), Some(NtStatus::STATUS_INVALID_PARAMETER));
    assert_eq!(env.open(&long).err(), Some(NtStatus::STATUS_INVALID_PARAMETER));
    // 255 UTF-16 code units, not bytes.
    let (h, _) = env.create(&"é".repeat(255)).unwrap();
    env.close(h);
    assert_eq!(env.create(&"😀".repeat(128)).err(), Some(NtStatus::STATUS_INVALID_PARAMETER));

    let name = "v".repeat(MAX_VALUE_NAME_LEN);
    env.reg.set_value(&env.me, env.root, &name, Value::dword(1)).unwrap();
    assert_eq!(env.reg.query_value(&env.me, env.root, &name.to_uppercase()), Ok(Value::dword(1)));
    assert_eq!(env.reg.query_key(&env.me, env.root).unwrap().max_value_name_len, 16_383);
    let too_long = "v".repeat(MAX_VALUE_NAME_LEN + 1);
    assert_eq!(
        env.reg.set_value(&env.me, env.root, &too_long, Value::dword(1)),
        Err(NtStatus::STATUS_INVALID_PARAMETER)
    );
    assert_eq!(env.reg.delete_value(&env.me, env.root, &too_long), Err(NtStatus::STATUS_INVALID_PARAMETER));
}

#[test]
fn depth_limit() {
    let env = env();
    // The root is at depth 3 (MACHINE, SOFTWARE, _RegFltrRoot); 509 more levels make 512.
    let below = MAX_PATH_DEPTH - 3;
    let rel = vec!["d"; below].join("\\");
    let (deepest, d) = env.reg.create_key_path(&env.me, Some(env.root), &rel, &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert_eq!(
        create_in(&env, deepest, "one-too-many").err(),
        Some(NtStatus::STATUS_NAME_TOO_LONG),
        "level 513 cannot be created"
    );
    env.close(deepest);
    let abs512 = format!(r"{ROOT}\{rel}");
    let h = env.reg.open_key(&env.me, None, &abs512, &OpenOptions::default()).unwrap();
    env.close(h);
    let abs513 = format!(r"{abs512}\x");
    assert_eq!(
        env.reg.open_key(&env.me, None, &abs513, &OpenOptions::default()).err(),
        Some(NtStatus::STATUS_NAME_TOO_LONG)
    );
    assert_eq!(
        env.reg.create_key_path(&env.me, None, &abs513, &CreateOptions::default()).err(),
        Some(NtStatus::STATUS_NAME_TOO_LONG)
    );
}

#[test]
fn last_write_times_come_from_the_clock() {
    let clock = Arc::new(hivebox_core::ManualClock::new(5_000));
    let reg = Registry::fresh_in_memory(clock.clone());
    let me = user();
    let (root, _) = reg.create_key(&me, None, ROOT, &CreateOptions::default()).unwrap();

    clock.advance(1_000_000);
    let before = clock.now();
    let (h, _) = reg.create_key(&me, Some(root), "Timed", &CreateOptions::default()).unwrap();
    let created = reg.query_key(&me, h).unwrap().last_write;
    assert_eq!(created, before + 1, "one clock reading per operation");
    assert_eq!(reg.query_key(&me, root).unwrap().last_write, created, "the parent changed too");
    assert_eq!(reg.enumerate_key(&me, root, 0).unwrap().last_write, created);

    clock.advance(1_000);
    let before = clock.now();
    reg.set_value(&me, h, "v", Value::dword(1)).unwrap();
    let set = reg.query_key(&me, h).unwrap().last_write;
    assert_eq!(set, before + 1);
    assert_eq!(reg.query_key(&me, root).unwrap().last_write, created, "a value change touches only its key");

    reg.query_value(&me, h, "v").unwrap();
    assert_eq!(reg.query_key(&me, h).unwrap().last_write, set, "reads change nothing");

    reg.set_last_write_time(&me, h, 42).unwrap();
    assert_eq!(reg.query_key(&me, h).unwrap().last_write, 42);

    clock.advance(1_000);
    let before = clock.now();
    reg.delete_key(&me, h).unwrap();
    assert_eq!(reg.query_key(&me, root).unwrap().last_write, before + 1, "deleting a subkey writes the parent");
    reg.close_key(&me, h).unwrap();
}

#[test]
fn flush_and_query_name() {
    let env = env();
    assert_eq!(env.reg.flush_key(&env.me, env.root), Ok(()));
    assert_eq!(env.name_of(env.root), ROOT);
    assert_eq!(env.reg.query_key_name(&env.me, Handle(0xdead)), Err(NtStatus::STATUS_INVALID_HANDLE));
    assert_eq!(env.reg.set_value(&env.me, Handle(0xdead), "v", Value::dword(1)), Err(NtStatus::STATUS_INVALID_HANDLE));
}

/// A store that refuses every change while `full` is set.
#[derive(Debug, Clone, Default)]
struct Flaky {
    full: Arc<std::sync::atomic::AtomicBool>,
    appended: Arc<std::sync::atomic::AtomicUsize>,
}

impl hivebox_core::Storage for Flaky {
    fn append(&mut self, _: &hivebox_core::Mutation) -> Result<(), hivebox_core::StorageError> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(hivebox_core::StorageError::Full("test".into()));
        }
        self.appended.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    fn flush(&mut self, _: &dyn Fn() -> KeyImage) -> Result<(), hivebox_core::StorageError> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(hivebox_core::StorageError::Io("test".into()));
        }
        Ok(())
    }
}

#[test]
fn a_refused_change_changes_nothing() {
    use std::sync::atomic::Ordering::SeqCst;
    let store = Flaky::default();
    let clock = Arc::new(hivebox_core::ManualClock::new(0));
    let reg = Registry::new(
        &hivebox_core::fresh::fresh_image(0),
        Box::new(store.clone()),
        clock,
        hivebox_core::RegistryOptions::default(),
    )
    .unwrap();
    let me = user();
    let (root, _) = reg.create_key(&me, None, ROOT, &CreateOptions::default()).unwrap();
    let (k, _) = reg.create_key(&me, Some(root), "Kept", &CreateOptions::default()).unwrap();
    reg.set_value(&me, k, "v", Value::dword(1)).unwrap();
    let volatile = CreateOptions { options: REG_OPTION_VOLATILE, ..CreateOptions::default() };
    let (vol, _) = reg.create_key(&me, Some(root), "Vol", &volatile).unwrap();
    let image = reg.image();
    let root_info = reg.query_key(&me, root).unwrap();
    let appended = store.appended.load(SeqCst);

    store.full.store(true, SeqCst);
    let full = Some(NtStatus::STATUS_DISK_FULL);
    assert_eq!(reg.create_key(&me, Some(root), "New", &CreateOptions::default()).err(), full);
    assert_eq!(reg.set_value(&me, k, "v", Value::dword(2)).err(), full);
    assert_eq!(reg.set_value(&me, k, "w", Value::dword(2)).err(), full);
    assert_eq!(reg.delete_value(&me, k, "v").err(), full);
    assert_eq!(reg.rename_key(&me, k, "Renamed").err(), full);
    assert_eq!(reg.set_last_write_time(&me, k, 7).err(), full);
    assert_eq!(reg.delete_key(&me, k).err(), full);
    // A volatile subkey's create, rename and delete write the persistent parent's time.
    assert_eq!(reg.create_key(&me, Some(root), "Vol2", &volatile).err(), full);
    assert_eq!(reg.rename_key(&me, vol, "Vol3").err(), full);
    assert_eq!(reg.delete_key(&me, vol).err(), full);
    assert_eq!(reg.flush_key(&me, k).err(), Some(NtStatus::STATUS_REGISTRY_IO_FAILED));
    // Changes that touch only volatile keys need no store.
    reg.set_value(&me, vol, "x", Value::dword(1)).unwrap();

    assert_eq!(reg.image(), image, "nothing persistent changed");
    assert_eq!(reg.query_key(&me, root).unwrap(), root_info, "nor in memory");
    assert_eq!(reg.query_value(&me, k, "v"), Ok(Value::dword(1)));
    assert_eq!(reg.query_key_name(&me, vol).unwrap(), format!(r"{ROOT}\Vol"));
    assert_eq!(store.appended.load(SeqCst), appended);

    store.full.store(false, SeqCst);
    reg.delete_key(&me, vol).unwrap();
    reg.rename_key(&me, k, "Renamed").unwrap();
    assert_eq!(reg.query_key_name(&me, k).unwrap(), format!(r"{ROOT}\Renamed"));
    for h in [root, k, vol] {
        reg.close_key(&me, h).unwrap();
    }
}
