//! The extra conformance cases E1..E13 of `reference/cm-callbacks.md` section 3, derived from
//! the dispatch algorithm of section 2 (E14, application hives, is not modelled yet).

use crate::common::*;
use hivebox_core::access::*;
use hivebox_core::{
    Argument, CreateKeyInfo, CreateOptions, Disposition, MemoryStorage, NtStatus, ObjectContext, OpenOptions,
    RegNotifyClass, Registry, RegistryOptions, Value,
};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use RegNotifyClass::*;

/// E1: a bypass in the middle: the higher callback gets a post with `Status = SUCCESS` (for a
/// create, `Object` = the filter's `*ResultObject`); the lower one gets nothing.
#[test]
fn e1_mid_level_bypass() {
    let env = env();
    let t = trace();
    let high = env.reg.register(HIGH, monitor("high", &t)).unwrap();
    let mid = env
        .reg
        .register(
            MID,
            traced("mid", &t, |cx, class, mut arg| match class {
                RegNtPreSetValueKey => NtStatus::STATUS_CALLBACK_BYPASS,
                RegNtPreCreateKeyEx => {
                    let info = create_info(&mut arg).unwrap();
                    let (_, root) = cx.key_object_id(info.root_object).unwrap();
                    let (h, d) = cx
                        .registry()
                        .create_key(&cx.nested(), None, &format!("{root}\\{MODIFIED_KEY}"), &replay_options(info))
                        .unwrap();
                    let (object, granted) = into_result_object(cx, h);
                    info.result_object = Some(object);
                    info.granted_access = granted;
                    info.disposition = Some(d);
                    NtStatus::STATUS_CALLBACK_BYPASS
                }
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();
    let low = env.reg.register(LOW, monitor("low", &t)).unwrap();

    // A bypassed set: success, nothing written.
    assert_eq!(env.set(VALUE), Ok(()));
    assert_eq!(outer_counts(&t, "high"), (1, 1));
    assert_eq!(outer_counts(&t, "mid"), (1, 0), "the bypassing callback gets no post");
    assert_eq!(counts(&t, "low"), (0, 0));
    let post = events(&t, "high").pop().unwrap();
    assert_eq!((post.class, post.status), (RegNtPostSetValueKey, Some(NtStatus::STATUS_SUCCESS)));
    assert_eq!(post.object, Some(env.reg.handle_object(env.root).unwrap()));

    // A bypassed create: the post Object is the filter's result object.
    t.lock().unwrap().clear();
    let (h, d) = env.create(KEY).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert_eq!(outer_counts(&t, "high"), (1, 1));
    assert_eq!(outer_counts(&t, "mid"), (1, 0));
    assert_eq!(outer_counts(&t, "low"), (0, 0), "low sees only mid's own create and close");
    assert_eq!(
        classes(&t, "low"),
        [RegNtPreCreateKeyEx, RegNtPostCreateKeyEx, RegNtPreKeyHandleClose, RegNtPostKeyHandleClose]
    );
    let post = events(&t, "high").pop().unwrap();
    assert_eq!((post.class, post.status), (RegNtPostCreateKeyEx, Some(NtStatus::STATUS_SUCCESS)));
    assert_eq!(post.object, Some(env.reg.handle_object(h).unwrap()), "Object = *ResultObject");

    for c in [high, mid, low] {
        env.reg.unregister(c).unwrap();
    }
    env.close(h);
    assert_eq!(env.value(VALUE).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert!(!env.exists(KEY));
    assert!(env.exists(MODIFIED_KEY));
}

/// E2: a lower callback blocks; a higher post returns BYPASS with `ReturnStatus = SUCCESS`:
/// the caller gets success and the operation is not performed.
#[test]
fn e2_post_overrides_lower_block() {
    let env = env();
    let t = trace();
    let high = env
        .reg
        .register(
            HIGH,
            traced("high", &t, |_, class, arg| match (class, arg) {
                (RegNtPostSetValueKey, Argument::Post(post)) => {
                    assert_eq!(post.status, NtStatus::STATUS_ACCESS_DENIED);
                    post.return_status = NtStatus::STATUS_SUCCESS;
                    NtStatus::STATUS_CALLBACK_BYPASS
                }
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();
    let mid = env.reg.register(MID, monitor("mid", &t)).unwrap();
    let low = env
        .reg
        .register(
            LOW,
            traced("low", &t, |_, class, _| match class {
                RegNtPreSetValueKey => NtStatus::STATUS_ACCESS_DENIED,
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();

    assert_eq!(env.set(VALUE), Ok(()), "the caller gets the overriding success");
    assert_eq!(counts(&t, "high"), (1, 1));
    assert_eq!(counts(&t, "mid"), (1, 1));
    assert_eq!(counts(&t, "low"), (1, 0));
    assert_eq!(events(&t, "mid")[1].status, Some(NtStatus::STATUS_ACCESS_DENIED));
    for c in [high, mid, low] {
        env.reg.unregister(c).unwrap();
    }
    assert_eq!(env.value(VALUE).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND), "nothing was performed");
}

fn e3_stack(reg: &Registry, t: &Trace) -> Vec<hivebox_core::Cookie> {
    let high = reg.register(HIGH, monitor("high", t)).unwrap();
    let mid = reg
        .register(
            MID,
            traced("mid", t, |_, class, arg| {
                if let (RegNtPostSetValueKey, Argument::Post(post)) = (class, arg) {
                    // Written without returning BYPASS.
                    post.return_status = NtStatus::STATUS_OBJECT_NAME_NOT_FOUND;
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();
    let low = reg
        .register(
            LOW,
            traced("low", t, |_, class, arg| {
                if let (RegNtPostSetValueKey, Argument::Post(post)) = (class, arg) {
                    post.return_status = NtStatus::STATUS_ACCESS_DENIED;
                    return NtStatus::STATUS_CALLBACK_BYPASS;
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();
    vec![high, mid, low]
}

/// E3: posts run low to high; each sees the `Status` an earlier post changed with BYPASS; a
/// `ReturnStatus` written without BYPASS is ignored (the documented contract, the default).
#[test]
fn e3_post_order_and_status_propagation() {
    let env = env();
    let t = trace();
    let cookies = e3_stack(&env.reg, &t);
    assert_eq!(env.set(VALUE), Err(NtStatus::STATUS_ACCESS_DENIED));
    let all: Vec<(&str, RegNotifyClass, Option<NtStatus>)> =
        t.lock().unwrap().iter().map(|e| (e.filter, e.class, e.status)).collect();
    let ok = Some(NtStatus::STATUS_SUCCESS);
    let denied = Some(NtStatus::STATUS_ACCESS_DENIED);
    assert_eq!(
        all,
        [
            ("high", RegNtPreSetValueKey, None),
            ("mid", RegNtPreSetValueKey, None),
            ("low", RegNtPreSetValueKey, None),
            ("low", RegNtPostSetValueKey, ok),
            ("mid", RegNtPostSetValueKey, denied),
            ("high", RegNtPostSetValueKey, denied),
        ]
    );
    for c in cookies {
        env.reg.unregister(c).unwrap();
    }
    // The operation itself was performed; only its status was overridden (the filter would
    // have to undo it, as K3 does).
    assert!(env.value(VALUE).is_ok());
}

/// E3, compatibility switch: with `return_status_without_bypass` a `ReturnStatus` written by a
/// post that returns success also reaches the caller (the decompiled kernel's behaviour), but
/// does not change the `Status` the higher posts see.
#[test]
fn e3_return_status_without_bypass_switch() {
    let clock = Arc::new(hivebox_core::ManualClock::new(0));
    let options = RegistryOptions { return_status_without_bypass: true, ..RegistryOptions::default() };
    let reg = Registry::new(&hivebox_core::fresh::fresh_image(0), Box::new(MemoryStorage), clock, options).unwrap();
    let me = user();
    let (root, _) = reg.create_key(&me, None, ROOT, &CreateOptions::default()).unwrap();
    let t = trace();
    let _cookies = e3_stack(&reg, &t);
    assert_eq!(reg.set_value(&me, root, VALUE, Value::dword(1)), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(events(&t, "high")[1].status, Some(NtStatus::STATUS_ACCESS_DENIED));
}

/// E4: an error returned from `RegNtPreKeyHandleClose` has no effect: the lower callbacks still
/// get the close, the handle is closed, and the callback gets its post.
#[test]
fn e4_pre_close_error_has_no_effect() {
    let env = env();
    let t = trace();
    let (h, _) = env.create(KEY).unwrap();
    let high = env
        .reg
        .register(
            HIGH,
            traced("high", &t, |_, class, _| match class {
                RegNtPreKeyHandleClose => NtStatus::STATUS_ACCESS_DENIED,
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();
    let low = env.reg.register(LOW, monitor("low", &t)).unwrap();
    assert_eq!(env.reg.close_key(&env.me, h), Ok(()));
    assert_eq!(env.reg.handle_object(h), Err(NtStatus::STATUS_INVALID_HANDLE), "the handle is gone");
    assert_eq!(classes(&t, "high"), [RegNtPreKeyHandleClose, RegNtPostKeyHandleClose]);
    assert_eq!(classes(&t, "low"), [RegNtPreKeyHandleClose, RegNtPostKeyHandleClose]);
    assert_eq!(events(&t, "high")[1].status, Some(NtStatus::STATUS_SUCCESS));
    env.reg.unregister(high).unwrap();
    env.reg.unregister(low).unwrap();
}

/// E5: call contexts are private to each callback.
#[test]
fn e5_call_context_isolation() {
    let env = env();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let make = |name: &'static str, mine: Option<&'static str>| {
        let seen = seen.clone();
        callback(move |_, class, arg| {
            match (class, arg) {
                (RegNtPreSetValueKey, Argument::Pre(pre)) => {
                    assert!(pre.call_context.is_none(), "{name} starts with no call context");
                    if let Some(m) = mine {
                        pre.call_context = Some(Box::new(m));
                    }
                }
                (RegNtPostSetValueKey, Argument::Post(post)) => {
                    let got = post.call_context.as_ref().and_then(|c| c.downcast_ref::<&'static str>()).copied();
                    seen.lock().unwrap().push((name, got));
                }
                _ => {}
            }
            NtStatus::STATUS_SUCCESS
        })
    };
    let cookies = [
        env.reg.register(HIGH, make("high", Some("high's"))).unwrap(),
        env.reg.register(MID, make("mid", None)).unwrap(),
        env.reg.register(LOW, make("low", Some("low's"))).unwrap(),
    ];
    env.set(VALUE).unwrap();
    for c in cookies {
        env.reg.unregister(c).unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), [("low", Some("low's")), ("mid", None), ("high", Some("high's"))]);
}

/// E6: the last close runs pre-close, then the object-context cleanups, then post-close.
#[test]
fn e6_close_sequence() {
    let env = env();
    let t = trace();
    let tagging = |name: &'static str| {
        traced(name, &t, move |cx, class, arg| {
            if let (RegNtPostOpenKeyEx, Argument::Post(post)) = (class, arg)
                && post.status == NtStatus::STATUS_SUCCESS
            {
                let ctx: ObjectContext = Arc::new(name);
                cx.set_object_context(post.object.unwrap(), ctx).unwrap();
            }
            NtStatus::STATUS_SUCCESS
        })
    };
    let high = env.reg.register(HIGH, tagging("high")).unwrap();
    let low = env.reg.register(LOW, tagging("low")).unwrap();
    let h = env.reg.open_key(&env.me, None, ROOT, &OpenOptions::default()).unwrap();
    t.lock().unwrap().clear();
    env.close(h);
    let seq: Vec<(&str, RegNotifyClass, bool)> =
        t.lock().unwrap().iter().map(|e| (e.filter, e.class, e.object_context.is_some())).collect();
    assert_eq!(seq.len(), 6, "{seq:?}");
    assert_eq!(seq[..2], [("high", RegNtPreKeyHandleClose, true), ("low", RegNtPreKeyHandleClose, true)]);
    let mut cleanups: Vec<_> = seq[2..4].to_vec();
    cleanups.sort();
    assert_eq!(
        cleanups,
        [("high", RegNtCallbackObjectContextCleanup, true), ("low", RegNtCallbackObjectContextCleanup, true)]
    );
    assert_eq!(seq[4..], [("low", RegNtPostKeyHandleClose, false), ("high", RegNtPostKeyHandleClose, false)]);
    env.reg.unregister(high).unwrap();
    env.reg.unregister(low).unwrap();
    assert_eq!(t.lock().unwrap().len(), 6, "no second cleanup at unregistration");
}

/// E7: one Ex callback per altitude; legacy registrations share 425000 in FIFO order.
#[test]
fn e7_altitude_collision_and_legacy_order() {
    let env = env();
    let t = trace();
    let mid = env.reg.register(MID, monitor("mid", &t)).unwrap();
    assert_eq!(env.reg.register(MID, monitor("dup", &t)), Err(NtStatus::STATUS_FLT_INSTANCE_ALTITUDE_COLLISION));
    assert_eq!(
        env.reg.register("380010.000", monitor("dup", &t)).err().map(|s| s.0),
        Some(0xC01C_0011),
        "equal numerically is equal"
    );
    let above = env.reg.register("425001", monitor("above", &t)).unwrap();
    let a = env.reg.register_legacy(monitor("legacy-a", &t));
    let below = env.reg.register("424999", monitor("below", &t)).unwrap();
    let b = env.reg.register_legacy(monitor("legacy-b", &t));
    let c = env.reg.register_legacy(monitor("legacy-c", &t));
    assert_eq!(
        env.reg.callbacks().iter().map(|(_, alt)| alt.as_str()).collect::<Vec<_>>(),
        ["425001", "425000", "425000", "425000", "424999", MID]
    );

    let pre_order = |t: &Trace| -> Vec<&'static str> {
        t.lock().unwrap().iter().filter(|e| e.class == RegNtPreSetValueKey).map(|e| e.filter).collect()
    };
    env.set(VALUE).unwrap();
    assert_eq!(pre_order(&t), ["above", "legacy-a", "legacy-b", "legacy-c", "below", "mid"]);

    // A newcomer goes after the existing legacy registrations.
    env.reg.unregister(b).unwrap();
    let d = env.reg.register_legacy(monitor("legacy-d", &t));
    t.lock().unwrap().clear();
    env.set(VALUE).unwrap();
    assert_eq!(pre_order(&t), ["above", "legacy-a", "legacy-c", "legacy-d", "below", "mid"]);
    for cookie in [mid, above, a, below, c, d] {
        env.reg.unregister(cookie).unwrap();
    }
    assert_eq!(env.reg.unregister(b), Err(NtStatus::STATUS_INVALID_PARAMETER), "already unregistered");
}

/// E8: fractional altitudes order numerically, highest first.
#[test]
fn e8_fractional_altitudes() {
    let env = env();
    let t = trace();
    let mut cookies = Vec::new();
    for (alt, name) in [
        ("380000.25", "380000.25"),
        ("38000", "38000"),
        ("380000.5", "380000.5"),
        ("380001", "380001"),
        ("380000.3", "380000.3"),
        ("380000.123456789012345678901234567890", "380000.1234..."),
        ("0380000", "380000"),
    ] {
        cookies.push(env.reg.register(alt, monitor(name, &t)).unwrap());
    }
    assert_eq!(
        env.reg.register("380000.30", monitor("dup", &t)),
        Err(NtStatus::STATUS_FLT_INSTANCE_ALTITUDE_COLLISION)
    );
    assert_eq!(env.reg.register("1e5", monitor("bad", &t)), Err(NtStatus::STATUS_INVALID_PARAMETER));
    env.set(VALUE).unwrap();
    let order: Vec<&str> = t.lock().unwrap().iter().filter(|e| e.class.is_pre()).map(|e| e.filter).collect();
    assert_eq!(order, ["380001", "380000.5", "380000.3", "380000.25", "380000.1234...", "380000", "38000"]);
    for c in cookies {
        env.reg.unregister(c).unwrap();
    }
}

/// E9: absolute names come with `RootObject = \REGISTRY`; relative names with the handle's
/// object; `RemainingName` is always relative to `RootObject`.
#[test]
fn e9_complete_and_remaining_names() {
    let env = env();
    let seen: Arc<Mutex<Vec<(RegNotifyClass, CreateKeyInfo, bool)>>> = Arc::default();
    let tag: ObjectContext = Arc::new("root tag");
    let (s, tg) = (seen.clone(), tag.clone());
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |cx, class, mut arg| {
                match (class, &mut arg) {
                    (RegNtPreCreateKeyEx | RegNtPreOpenKeyEx, Argument::Pre(pre)) => {
                        let has_root_ctx = same_context(&pre.object_context, &tg);
                        let info = pre.op.create_info().unwrap().clone();
                        s.lock().unwrap().push((class, info, has_root_ctx));
                    }
                    (RegNtPostOpenKeyEx, Argument::Post(post)) if post.status == NtStatus::STATUS_SUCCESS => {
                        let info = post.pre_information.create_info().unwrap();
                        if info.complete_name == ROOT {
                            cx.set_object_context(post.object.unwrap(), tg.clone()).unwrap();
                        }
                    }
                    _ => {}
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    let abs = env.reg.open_key(&env.me, None, ROOT, &OpenOptions::default()).unwrap();
    let (child, _) = env.reg.create_key(&env.me, Some(abs), KEY, &CreateOptions::default()).unwrap();
    let absolute_create = format!(r"{ROOT}\{NOT_MODIFIED_KEY}");
    let (other, _) = env.reg.create_key(&env.me, None, &absolute_create, &CreateOptions::default()).unwrap();
    assert_eq!(
        env.reg.open_key(&env.me, Some(env.root), r"Missing\Deeper", &OpenOptions::default()).err(),
        Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)
    );
    env.reg.unregister(cookie).unwrap();

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 4);
    let (class, info, ctx) = &seen[0];
    assert_eq!(*class, RegNtPreOpenKeyEx);
    assert_eq!(info.root_object, env.reg.root_object());
    assert_eq!(info.complete_name, ROOT);
    assert_eq!(info.remaining_name, r"MACHINE\SOFTWARE\_RegFltrRoot");
    assert_eq!((info.version, info.desired_access, *ctx), (1, KEY_READ, false));

    let (class, info, ctx) = &seen[1];
    assert_eq!(*class, RegNtPreCreateKeyEx);
    assert_eq!(info.root_object, env.reg.handle_object(abs).unwrap());
    assert_eq!((info.complete_name.as_str(), info.remaining_name.as_str()), (KEY, KEY));
    assert!(*ctx, "the root object's context arrives as RootObjectContext");

    let (class, info, ctx) = &seen[2];
    assert_eq!(*class, RegNtPreCreateKeyEx);
    assert_eq!(info.root_object, env.reg.root_object());
    assert_eq!(info.complete_name, absolute_create);
    assert_eq!(info.remaining_name, format!(r"MACHINE\SOFTWARE\_RegFltrRoot\{NOT_MODIFIED_KEY}"));
    assert!(!*ctx);

    let (class, info, _) = &seen[3];
    assert_eq!(*class, RegNtPreOpenKeyEx);
    assert_eq!(info.root_object, env.reg.handle_object(env.root).unwrap());
    assert_eq!((info.complete_name.as_str(), info.remaining_name.as_str()), (r"Missing\Deeper", r"Missing\Deeper"));
    drop(seen);
    for h in [abs, child, other] {
        env.close(h);
    }
}

/// E10: a bypassing filter opens its target with `MAXIMUM_ALLOWED` and hands the caller the
/// concrete access it was granted; the caller's handle works.
#[test]
fn e10_bypass_with_maximum_allowed() {
    let env = env();
    let (h, _) = env.create(MODIFIED_KEY).unwrap();
    env.close(h);
    let cookie = env
        .reg
        .register(
            LOW,
            callback(|cx, class, mut arg| {
                if class != RegNtPreOpenKeyEx {
                    return NtStatus::STATUS_SUCCESS;
                }
                let info = create_info(&mut arg).unwrap();
                if !info.complete_name.eq_ignore_ascii_case(KEY) {
                    return NtStatus::STATUS_SUCCESS;
                }
                assert_eq!(info.desired_access, MAXIMUM_ALLOWED);
                let (_, root) = cx.key_object_id(info.root_object).unwrap();
                let h = cx
                    .registry()
                    .open_key(
                        &cx.nested(),
                        None,
                        &format!("{root}\\{MODIFIED_KEY}"),
                        &OpenOptions::access(info.desired_access),
                    )
                    .unwrap();
                let (object, granted) = into_result_object(cx, h);
                info.result_object = Some(object);
                info.granted_access = granted;
                NtStatus::STATUS_CALLBACK_BYPASS
            }),
        )
        .unwrap();

    let h = env.reg.open_key(&env.me, Some(env.root), KEY, &OpenOptions::access(MAXIMUM_ALLOWED)).unwrap();
    let access = env.reg.handle_access(h).unwrap();
    assert_ne!(access, 0);
    assert_eq!(access & MAXIMUM_ALLOWED, 0, "a concrete mask, not MAXIMUM_ALLOWED");
    assert_eq!(access, KEY_ALL_ACCESS);
    env.reg.set_value(&env.me, h, VALUE, Value::sz("through the redirected handle")).unwrap();
    env.close(h);
    env.reg.unregister(cookie).unwrap();
    let m = env.open(MODIFIED_KEY).unwrap();
    assert_eq!(env.reg.query_value(&env.me, m, VALUE).unwrap(), Value::sz("through the redirected handle"));
    env.close(m);
}

const REDIRECTED: &str = r"\REGISTRY\MACHINE\SOFTWARE\_RegFltrRoot\Redirected";
const PRIVATE: &str = r"\REGISTRY\MACHINE\SOFTWARE\_RegFltrPrivate";

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    let rest = &s[prefix.len()..];
    (head.eq_ignore_ascii_case(prefix) && (rest.is_empty() || rest.starts_with('\\'))).then_some(rest)
}

/// An isolation filter: creates and opens under `_RegFltrRoot\Redirected` go to a private
/// location, and so do creates and opens relative to an object it redirected (tracked with
/// object contexts holding the private path).
fn redirector(by_name: Arc<AtomicUsize>, by_context: Arc<AtomicUsize>) -> Arc<dyn hivebox_core::RegistryCallback> {
    callback(move |cx, class, arg| {
        if !matches!(class, RegNtPreCreateKeyEx | RegNtPreOpenKeyEx) {
            return NtStatus::STATUS_SUCCESS;
        }
        let Argument::Pre(pre) = arg else { unreachable!() };
        let parent = pre.object_context.as_ref().and_then(|c| c.downcast_ref::<String>()).cloned();
        let info = pre.op.create_info().unwrap();
        let target = match parent {
            Some(private_parent) => {
                by_context.fetch_add(1, Ordering::SeqCst);
                if info.remaining_name.is_empty() {
                    private_parent
                } else {
                    format!("{private_parent}\\{}", info.remaining_name)
                }
            }
            None => match strip_prefix_ci(&full_name(cx, info), REDIRECTED) {
                Some(rest) => {
                    by_name.fetch_add(1, Ordering::SeqCst);
                    format!("{PRIVATE}{rest}")
                }
                None => return NtStatus::STATUS_SUCCESS,
            },
        };
        let registry = cx.registry();
        let h = if class == RegNtPreCreateKeyEx {
            match registry.create_key(&cx.nested(), None, &target, &replay_options(info)) {
                Ok((h, d)) => {
                    info.disposition = Some(d);
                    h
                }
                Err(e) => return e,
            }
        } else {
            let opts =
                OpenOptions { desired_access: info.desired_access, options: info.options, attributes: info.attributes };
            match registry.open_key(&cx.nested(), None, &target, &opts) {
                Ok(h) => h,
                Err(e) => return e,
            }
        };
        let (object, granted) = into_result_object(cx, h);
        info.result_object = Some(object);
        info.granted_access = granted;
        cx.set_object_context(object, Arc::new(target)).unwrap();
        NtStatus::STATUS_CALLBACK_BYPASS
    })
}

/// E11: `RegCreateKeyEx` of a multi-level path under a redirected key: every level is created
/// relative to the previous one, which exists only in the private location.
#[test]
fn e11_redirected_multi_level_create() {
    let env = env();
    let (by_name, by_context) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let cookie = env.reg.register(LOW, redirector(by_name.clone(), by_context.clone())).unwrap();

    // Relative to the root handle: Redirected\Level1\Level2 (three levels).
    let (h, d) = env
        .reg
        .create_key_path(&env.me, Some(env.root), r"Redirected\Level1\Level2", &CreateOptions::default())
        .unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert_eq!(env.name_of(h), format!(r"{PRIVATE}\Level1\Level2"));
    assert_eq!((by_name.load(Ordering::SeqCst), by_context.load(Ordering::SeqCst)), (1, 2));
    env.reg.set_value(&env.me, h, VALUE, Value::dword(7)).unwrap();
    env.close(h);

    // Absolute: every level from \REGISTRY\MACHINE down, three of them below Redirected.
    let (h, d) =
        env.reg.create_key_path(&env.me, None, &format!(r"{REDIRECTED}\A\B\C"), &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert_eq!(env.name_of(h), format!(r"{PRIVATE}\A\B\C"));
    env.close(h);

    // Opens through the redirected name and relative to a redirected handle land there too.
    let h = env.reg.open_key(&env.me, None, &format!(r"{REDIRECTED}\Level1"), &OpenOptions::default()).unwrap();
    assert_eq!(env.name_of(h), format!(r"{PRIVATE}\Level1"));
    let inner = env.reg.open_key(&env.me, Some(h), "Level2", &OpenOptions::default()).unwrap();
    assert_eq!(env.reg.query_value(&env.me, inner, VALUE), Ok(Value::dword(7)));
    env.close(inner);
    env.close(h);
    env.reg.unregister(cookie).unwrap();

    assert!(!env.exists("Redirected"), "nothing was created in the real location");
    let system = hivebox_core::Caller::system();
    for path in [format!(r"{PRIVATE}\Level1\Level2"), format!(r"{PRIVATE}\A\B\C")] {
        let h = env.reg.open_key(&system, None, &path, &OpenOptions::default()).unwrap();
        env.reg.close_key(&system, h).unwrap();
    }
}

/// E12: `CmUnRegisterCallback` waits for the operations inside the callback: it returns only
/// after the in-flight operation's post completed; operations started meanwhile skip it.
#[test]
fn e12_unregister_waits_for_inflight_operation() {
    let env = env();
    let (entered_tx, entered_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let log: Arc<Mutex<Vec<&'static str>>> = Arc::default();
    let l = log.clone();
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |_, class, _| {
                match class {
                    RegNtPreSetValueKey => {
                        l.lock().unwrap().push("pre");
                        entered_tx.lock().unwrap().send(()).unwrap();
                        release_rx.lock().unwrap().recv_timeout(Duration::from_secs(30)).expect("released");
                    }
                    RegNtPostSetValueKey => {
                        std::thread::sleep(Duration::from_millis(20));
                        l.lock().unwrap().push("post");
                    }
                    _ => {}
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    std::thread::scope(|s| {
        let op = s.spawn(|| env.set(VALUE));
        entered_rx.recv_timeout(Duration::from_secs(30)).expect("the operation entered the callback");
        let unregistering = s.spawn(|| {
            let r = env.reg.unregister(cookie);
            log.lock().unwrap().push("unregistered");
            r
        });
        while !env.reg.callbacks().is_empty() {
            std::thread::yield_now();
        }
        std::thread::sleep(Duration::from_millis(100));
        assert!(!unregistering.is_finished(), "unregister waits for the operation in flight");
        // An operation that starts now no longer reaches the callback (it would block).
        env.set(NOT_MODIFIED_VALUE).unwrap();
        release_tx.send(()).unwrap();
        assert_eq!(op.join().unwrap(), Ok(()));
        assert_eq!(unregistering.join().unwrap(), Ok(()));
    });
    assert_eq!(*log.lock().unwrap(), ["pre", "post", "unregistered"]);
    assert!(env.value(VALUE).is_ok());
}

/// E12 under contention: operations racing with unregistration never enter the callback after
/// `unregister` returned.
#[test]
fn e12_no_callback_after_unregister_returns() {
    for _ in 0..50 {
        let env = env();
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let late = Arc::new(AtomicUsize::new(0));
        let (d, lt) = (done.clone(), late.clone());
        let cookie = env
            .reg
            .register(
                LOW,
                callback(move |_, _, _| {
                    if d.load(Ordering::SeqCst) {
                        lt.fetch_add(1, Ordering::SeqCst);
                    }
                    NtStatus::STATUS_SUCCESS
                }),
            )
            .unwrap();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        env.set(VALUE).unwrap();
                    }
                });
            }
            std::thread::sleep(Duration::from_micros(200));
            env.reg.unregister(cookie).unwrap();
            done.store(true, Ordering::SeqCst);
        });
        assert_eq!(late.load(Ordering::SeqCst), 0, "a callback ran after unregister returned");
    }
}

/// E13: when a call record cannot be allocated the pre phase stops as if blocked with
/// `STATUS_INSUFFICIENT_RESOURCES`; the callbacks above get synthetic posts.
#[test]
fn e13_insufficient_resources_in_pre_phase() {
    let clock = Arc::new(hivebox_core::ManualClock::new(0));
    let options = RegistryOptions { max_call_records: 2, ..RegistryOptions::default() };
    let reg = Registry::new(&hivebox_core::fresh::fresh_image(0), Box::new(MemoryStorage), clock, options).unwrap();
    let me = user();
    let (root, _) = reg.create_key(&me, None, ROOT, &CreateOptions::default()).unwrap();
    let t = trace();
    let high = reg.register(HIGH, monitor("high", &t)).unwrap();
    let mid = reg.register(MID, monitor("mid", &t)).unwrap();
    let low = reg.register(LOW, monitor("low", &t)).unwrap();

    assert_eq!(reg.set_value(&me, root, VALUE, Value::dword(1)), Err(NtStatus::STATUS_INSUFFICIENT_RESOURCES));
    assert_eq!(counts(&t, "high"), (1, 1));
    assert_eq!(counts(&t, "mid"), (1, 1));
    assert_eq!(counts(&t, "low"), (0, 0));
    let insufficient = Some(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
    assert_eq!(events(&t, "mid")[1].status, insufficient);
    assert_eq!(events(&t, "high")[1].status, insufficient);
    assert_eq!(events(&t, "high")[1].object, Some(reg.handle_object(root).unwrap()));

    t.lock().unwrap().clear();
    assert_eq!(
        reg.create_key(&me, Some(root), KEY, &CreateOptions::default()).err(),
        Some(NtStatus::STATUS_INSUFFICIENT_RESOURCES),
        "the records of the first operation were released, and the create fails the same way"
    );
    assert_eq!(events(&t, "high")[1].object, None, "a failed create has no post Object");

    // With two callbacks there are enough records.
    reg.unregister(low).unwrap();
    reg.set_value(&me, root, VALUE, Value::dword(2)).unwrap();
    reg.unregister(high).unwrap();
    reg.unregister(mid).unwrap();
    assert_eq!(reg.query_value(&me, root, VALUE), Ok(Value::dword(2)));
    assert_eq!(
        reg.open_key(&me, Some(root), KEY, &OpenOptions::default()).err(),
        Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)
    );
}
