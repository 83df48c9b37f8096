//! With no callback registered, `open_key`, `query_value` and `close_key` take a direct path
//! that skips building the `Operation`. It must answer exactly as the dispatched path does:
//! the same registry with one pass-through callback takes the dispatched path, and every
//! case below must come out the same on both.

use hivebox_core::access::*;
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, Handle, ManualClock, NtStatus, OpenOptions, ProcessInfo,
    RegNotifyClass, Registry, Token, Value,
};
use std::sync::Arc;

const BASE: &str = r"\REGISTRY\MACHINE\SOFTWARE\Fast";

struct Fixture {
    registry: Registry,
    base: Handle,
    deleted: Handle,
    write_only: Handle,
}

fn fixture(filtered: bool) -> Fixture {
    let registry = Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
    let me = Caller::system();
    let create = CreateOptions::default();
    let (base, _) = registry.create_key_path(&me, None, &format!(r"{BASE}\A\B\C"), &create).unwrap();
    registry.set_value(&me, base, "Data", Value::sz("x")).unwrap();
    registry.close_key(&me, base).unwrap();
    let (base, _) = registry.create_key(&me, None, BASE, &create).unwrap();
    for name in ["Ärger", "ſtraße", "Zed", "ſ"] {
        let (k, _) = registry.create_key(&me, Some(base), name, &create).unwrap();
        registry.close_key(&me, k).unwrap();
    }
    let (deleted, _) = registry.create_key(&me, Some(base), "Gone", &create).unwrap();
    registry.delete_key(&me, deleted).unwrap();
    let write_only = registry.open_key(&me, Some(base), r"A\B\C", &OpenOptions::access(KEY_SET_VALUE)).unwrap();
    if filtered {
        let pass = |_: &CallbackCx<'_>, _: RegNotifyClass, _: Argument<'_, '_>| NtStatus::STATUS_SUCCESS;
        registry.register("380000", Arc::new(pass)).unwrap();
    }
    Fixture { registry, base, deleted, write_only }
}

fn user() -> Caller {
    Caller::user(Token { user_sid: "S-1-22-1-1000".into(), system: false }, ProcessInfo::default())
}

/// What an open answers: the status, or the access granted and what the key holds.
fn open_outcome(fx: &Fixture, caller: &Caller, root: Option<Handle>, name: &str, opts: &OpenOptions) -> String {
    let r = &fx.registry;
    match r.open_key(caller, root, name, opts) {
        Err(status) => format!("{status:?}"),
        Ok(h) => {
            let access = r.handle_access(h).unwrap();
            let name = r.query_key_name(&Caller::system(), h).unwrap();
            let data = r.query_value(caller, h, "data");
            r.close_key(caller, h).unwrap();
            format!("ok {access:#x} {name} {data:?} handles={}", r.open_handles())
        }
    }
}

#[test]
fn open_query_close_answer_as_the_dispatched_path_does() {
    let plain = fixture(false);
    let filtered = fixture(true);
    let long = format!(r"{BASE}\{}", "k".repeat(256));
    let deep = format!(r"\REGISTRY\{}", vec!["k"; 513].join("\\"));
    let names = [
        format!(r"{BASE}\A\B\C"),
        format!(r"{BASE}\a\b\c\"),
        format!(r"{BASE}\A\\B"),
        format!(r"{BASE}\A\Missing"),
        format!(r"{BASE}\Missing\\X"),
        format!(r"{BASE}\ärger"),
        format!(r"{BASE}\STRASSE"),
        format!(r"{BASE}\Straße"),
        format!(r"{BASE}\Gone"),
        // An ASCII name that matches a non-ASCII one (LATIN SMALL LETTER LONG S upcases to S).
        format!(r"{BASE}\S"),
        format!(r"{BASE}\s\"),
        format!("{BASE}\\A\0"),
        r"\REGISTRY".to_owned(),
        r"\REGISTRY\".to_owned(),
        r"\registry\machine".to_owned(),
        r"\REGISTRYX\MACHINE".to_owned(),
        r"REGISTRY\MACHINE".to_owned(),
        String::new(),
        r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Control".to_owned(),
        r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet".to_owned(),
        r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Enum".to_owned(),
        long,
        deep,
    ];
    let options = [
        OpenOptions::access(KEY_READ),
        OpenOptions::access(KEY_ALL_ACCESS),
        OpenOptions::access(MAXIMUM_ALLOWED),
        OpenOptions { options: REG_OPTION_OPEN_LINK, ..OpenOptions::access(KEY_READ) },
        OpenOptions { attributes: OBJ_FORCE_ACCESS_CHECK, ..OpenOptions::access(KEY_ALL_ACCESS) },
    ];
    for caller in [Caller::system(), user()] {
        for opts in &options {
            for name in &names {
                let a = open_outcome(&plain, &caller, None, name, opts);
                let b = open_outcome(&filtered, &caller, None, name, opts);
                assert_eq!(a, b, "{name:?} {opts:?}");
            }
            for (root, rel) in [
                (Some(plain.base), r"A\B\C"),
                (Some(plain.base), r"\A"),
                (Some(plain.base), r"A\\B"),
                (Some(plain.base), ""),
                (Some(plain.deleted), "X"),
                (Some(plain.deleted), r"X\\Y"),
                (Some(Handle(12345)), "A"),
            ] {
                // The fixtures are built alike, so a handle means the same in both.
                let a = open_outcome(&plain, &caller, root, rel, opts);
                let b = open_outcome(&filtered, &caller, root, rel, opts);
                assert_eq!(a, b, "{root:?} {rel:?} {opts:?}");
            }
        }
    }
    for (fx_h, name) in
        [(plain.write_only, "Data"), (plain.deleted, "Data"), (Handle(12345), "Data"), (plain.base, "Data")]
    {
        let a = plain.registry.query_value(&user(), fx_h, name);
        let b = filtered.registry.query_value(&user(), fx_h, name);
        assert_eq!(a, b, "{fx_h:?} {name:?}");
    }
    assert_eq!(plain.registry.close_key(&user(), Handle(12345)), filtered.registry.close_key(&user(), Handle(12345)));
    assert_eq!(plain.registry.open_handles(), filtered.registry.open_handles());
}

#[test]
fn a_referenced_object_outlives_its_last_handle() {
    let fx = fixture(false);
    let me = Caller::system();
    let h = fx.registry.open_key(&me, Some(fx.base), "A", &OpenOptions::default()).unwrap();
    let object = fx.registry.reference_object_by_handle(h).unwrap();
    fx.registry.close_key(&me, h).unwrap();
    // The pointer reference keeps the object (and its name) alive after the handle is gone.
    assert!(fx.registry.key_object_id(object).unwrap().1.ends_with(r"\Fast\A"));
    fx.registry.dereference_object(object);
    assert_eq!(fx.registry.key_object_id(object), Err(NtStatus::STATUS_INVALID_PARAMETER));
}
