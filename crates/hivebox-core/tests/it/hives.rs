//! Hives in the registry: master keys, load, unload, save, restore, and hive-relative logs.

use crate::common::Log;
use hivebox_core::access::*;
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, KeyImage, ManualClock, MemoryStorage, Mutation, NtStatus, OpenOptions,
    RegNotifyClass, Registry, Tree, Value,
};
use std::sync::{Arc, Mutex};

const OFFLINE: &str = r"\REGISTRY\MACHINE\OFFLINE";

fn hive_image() -> KeyImage {
    let leaf = KeyImage { name: "Leaf".into(), values: vec![("v".into(), Value::dword(7))], ..KeyImage::default() };
    KeyImage {
        name: "whatever".into(),
        values: vec![("Top".into(), Value::sz("top"))],
        subkeys: vec![KeyImage { name: "A".into(), subkeys: vec![leaf], ..KeyImage::default() }],
        ..KeyImage::default()
    }
}

fn registry() -> Registry {
    Registry::fresh_in_memory(Arc::new(ManualClock::new(1000)))
}

#[test]
fn master_keys_take_no_keys_or_values() {
    let reg = registry();
    let sys = Caller::system();
    assert_eq!(
        reg.create_key(&sys, None, r"\REGISTRY\MACHINE\Stray", &CreateOptions::default()).err(),
        Some(NtStatus::STATUS_ACCESS_DENIED)
    );
    let machine = reg.open_key(&sys, None, r"\REGISTRY\MACHINE", &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    assert_eq!(reg.set_value(&sys, machine, "x", Value::dword(1)), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(reg.delete_key(&sys, machine), Err(NtStatus::STATUS_CANNOT_DELETE));
    reg.close_key(&sys, machine).unwrap();
    // Inside a hive everything works as usual.
    let (k, _) = reg.create_key(&sys, None, r"\REGISTRY\MACHINE\SOFTWARE\Fine", &CreateOptions::default()).unwrap();
    reg.set_value(&sys, k, "x", Value::dword(1)).unwrap();
    reg.close_key(&sys, k).unwrap();
}

#[test]
fn load_save_unload() {
    let reg = registry();
    let sys = Caller::system();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let cookie = reg
        .register(
            "385000",
            Arc::new(move |_: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>| {
                if let Argument::Pre(p) = &arg
                    && let hivebox_core::Operation::LoadKey { key_name, source_file, .. } = &*p.op
                {
                    s2.lock().unwrap().push(format!("{class:?} {key_name} {source_file}"));
                } else if matches!(class, RegNotifyClass::RegNtPostLoadKey | RegNotifyClass::RegNtPreUnLoadKey) {
                    s2.lock().unwrap().push(format!("{class:?}"));
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();
    let log = Log::default();
    reg.load_key(&sys, OFFLINE, "/tmp/x.hiv", hive_image(), Box::new(log.clone())).unwrap();
    assert_eq!(
        reg.load_key(&sys, OFFLINE, "/tmp/x.hiv", hive_image(), Box::new(MemoryStorage)),
        Err(NtStatus::STATUS_OBJECT_NAME_COLLISION)
    );
    assert_eq!(
        reg.load_key(&sys, r"\REGISTRY\MACHINE\SOFTWARE\Deeper", "f", hive_image(), Box::new(MemoryStorage)),
        Err(NtStatus::STATUS_INVALID_PARAMETER),
        "hives mount directly below MACHINE or USER"
    );

    let leaf = reg.open_key(&sys, None, &format!(r"{OFFLINE}\A\Leaf"), &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    assert_eq!(reg.query_value(&sys, leaf, "v").unwrap(), Value::dword(7));
    reg.set_value(&sys, leaf, "w", Value::sz("new")).unwrap();
    let (sub, _) = reg.create_key(&sys, Some(leaf), "Sub", &CreateOptions::default()).unwrap();
    // The hive's log names keys relative to the hive's root.
    let logged = log.0.lock().unwrap().clone();
    assert!(matches!(&logged[0], Mutation::SetValue { path, name, .. } if path == r"A\Leaf" && name == "w"));
    assert!(matches!(&logged[1], Mutation::CreateKey { path, .. } if path == r"A\Leaf\Sub"));

    assert_eq!(reg.unload_key(&sys, OFFLINE), Err(NtStatus::STATUS_CANNOT_DELETE), "handles are open in it");
    reg.close_key(&sys, sub).unwrap();
    let saved = reg.save_key(&sys, leaf).unwrap();
    assert_eq!(saved.subkeys.len(), 1);
    assert_eq!(saved.values.len(), 2);
    reg.close_key(&sys, leaf).unwrap();
    reg.unload_key(&sys, OFFLINE).unwrap();
    assert_eq!(
        reg.open_key(&sys, None, OFFLINE, &OpenOptions::default()).err(),
        Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)
    );
    reg.unregister(cookie).unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen[0], format!("RegNtPreLoadKey {OFFLINE} /tmp/x.hiv"));
    assert_eq!(seen[1], "RegNtPostLoadKey");
    assert!(seen.contains(&"RegNtPreUnLoadKey".to_owned()));

    // Replaying the hive's log onto its image gives what the registry held.
    let mut tree = Tree::from_image(&hive_image()).unwrap();
    for m in &logged {
        tree.replay(m).unwrap();
    }
    assert_eq!(tree.image().subkeys[0].subkeys[0].values, saved.values);
}

#[test]
fn unload_needs_a_hive_root() {
    let reg = registry();
    let sys = Caller::system();
    assert_eq!(reg.unload_key(&sys, r"\REGISTRY\MACHINE\SOFTWARE\Microsoft"), Err(NtStatus::STATUS_INVALID_PARAMETER));
    assert_eq!(reg.unload_key(&sys, r"\REGISTRY\MACHINE\NOPE"), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
}

#[test]
fn restore_replaces_contents_durably() {
    let reg = registry();
    let sys = Caller::system();
    let log = Log::default();
    reg.load_key(&sys, OFFLINE, "f", KeyImage { name: "x".into(), ..KeyImage::default() }, Box::new(log.clone()))
        .unwrap();
    let (k, _) = reg.create_key(&sys, None, &format!(r"{OFFLINE}\Target"), &CreateOptions::default()).unwrap();
    reg.set_value(&sys, k, "old", Value::dword(1)).unwrap();
    let (child, _) = reg.create_key(&sys, Some(k), "OldChild", &CreateOptions::default()).unwrap();
    assert_eq!(reg.restore_key(&sys, k, hive_image()), Err(NtStatus::STATUS_CANNOT_DELETE), "a handle below is open");
    reg.close_key(&sys, child).unwrap();
    let dup = KeyImage {
        name: "d".into(),
        subkeys: vec![
            KeyImage { name: "S".into(), ..KeyImage::default() },
            KeyImage { name: "s".into(), ..KeyImage::default() },
        ],
        ..KeyImage::default()
    };
    assert_eq!(reg.restore_key(&sys, k, dup), Err(NtStatus::STATUS_REGISTRY_CORRUPT));
    assert_eq!(reg.query_value(&sys, k, "old").unwrap(), Value::dword(1), "a refused restore changes nothing");

    reg.restore_key(&sys, k, hive_image()).unwrap();
    assert_eq!(reg.query_value(&sys, k, "old").err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(reg.query_value(&sys, k, "Top").unwrap(), Value::sz("top"));
    assert_eq!(reg.query_key_name(&sys, k).unwrap(), format!(r"{OFFLINE}\Target"));
    let leaf = reg.open_key(&sys, Some(k), r"A\Leaf", &OpenOptions::default()).unwrap();
    assert_eq!(reg.query_value(&sys, leaf, "v").unwrap(), Value::dword(7));
    reg.close_key(&sys, leaf).unwrap();
    let saved = reg.save_key(&sys, k).unwrap();
    reg.close_key(&sys, k).unwrap();

    let mut tree = Tree::from_image(&KeyImage { name: "x".into(), ..KeyImage::default() }).unwrap();
    for m in log.0.lock().unwrap().iter() {
        tree.replay(m).unwrap();
    }
    let replayed = tree.image().subkeys.into_iter().find(|s| s.name == "Target").unwrap();
    assert_eq!(replayed.values, saved.values);
    assert_eq!(replayed.subkeys.len(), saved.subkeys.len());
}
