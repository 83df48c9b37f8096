//! regfltr's kernel-mode samples K1..K11 (`reference/cm-callbacks.md` section 3), including
//! transaction samples K5 and K6. Each test registers its callback, performs the operations
//! as a user-mode caller, unregisters, then checks the results, as regctrl does.

use crate::common::*;
use hivebox_core::access::*;
use hivebox_core::{Argument, NtStatus, ObjectContext, OpenOptions, Operation, RegNotifyClass, TxnOutcome, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use RegNotifyClass::*;

/// K1 PreNotificationBlock: a pre callback returning an error blocks the operation.
#[test]
fn k1_pre_notification_block() {
    let env = env();
    let cookie = env
        .reg
        .register(
            LOW,
            callback(|_, class, mut arg| match (class, &mut arg) {
                (RegNtPreCreateKeyEx, Argument::Pre(p)) => match &*p.op {
                    Operation::CreateKey(info) if info.complete_name.eq_ignore_ascii_case(KEY) => {
                        NtStatus::STATUS_ACCESS_DENIED
                    }
                    _ => NtStatus::STATUS_SUCCESS,
                },
                (RegNtPreSetValueKey, Argument::Pre(p)) => match &*p.op {
                    Operation::SetValueKey { value_name, .. } if value_name.eq_ignore_ascii_case(VALUE) => {
                        NtStatus::STATUS_ACCESS_DENIED
                    }
                    _ => NtStatus::STATUS_SUCCESS,
                },
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();

    let (h, _) = env.create(NOT_MODIFIED_KEY).expect("the not-modified key is created");
    env.close(h);
    assert_eq!(env.create(KEY).err(), Some(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(env.set(NOT_MODIFIED_VALUE), Ok(()));
    assert_eq!(env.set(VALUE), Err(NtStatus::STATUS_ACCESS_DENIED));
    env.reg.unregister(cookie).unwrap();

    assert!(env.exists(NOT_MODIFIED_KEY));
    assert!(!env.exists(KEY), "a blocked create creates nothing");
    assert!(env.value(NOT_MODIFIED_VALUE).is_ok());
    assert_eq!(env.value(VALUE).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
}

/// K2 PreNotificationBypass: the filter performs a different operation itself and returns
/// `STATUS_CALLBACK_BYPASS`; the caller sees success and the filter's result.
#[test]
fn k2_pre_notification_bypass() {
    let env = env();
    let cookie = env
        .reg
        .register(
            LOW,
            callback(|cx, class, mut arg| match class {
                RegNtPreCreateKeyEx => {
                    let info = create_info(&mut arg).unwrap();
                    if !info.complete_name.eq_ignore_ascii_case(KEY) {
                        return NtStatus::STATUS_SUCCESS;
                    }
                    // Create the modified key under the same root, with the caller's options.
                    let (_, root) = cx.key_object_id(info.root_object).unwrap();
                    let (h, disposition) = cx
                        .registry()
                        .create_key(&cx.nested(), None, &format!("{root}\\{MODIFIED_KEY}"), &replay_options(info))
                        .unwrap();
                    let (object, granted) = into_result_object(cx, h);
                    info.result_object = Some(object);
                    info.granted_access = granted;
                    info.disposition = Some(disposition);
                    NtStatus::STATUS_CALLBACK_BYPASS
                }
                RegNtPreSetValueKey => {
                    let Argument::Pre(p) = arg else { unreachable!() };
                    let Operation::SetValueKey { object, value_name, value, .. } = &*p.op else { unreachable!() };
                    if !value_name.eq_ignore_ascii_case(VALUE) {
                        return NtStatus::STATUS_SUCCESS;
                    }
                    set_on_object(cx, *object, MODIFIED_VALUE, value.clone()).unwrap();
                    NtStatus::STATUS_CALLBACK_BYPASS
                }
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();

    let (h, disposition) = env.create(KEY).expect("a bypassed create succeeds");
    assert_eq!(disposition, hivebox_core::Disposition::CreatedNewKey);
    assert_eq!(env.name_of(h), format!("{ROOT}\\{MODIFIED_KEY}"), "the handle is the filter's key");
    env.close(h);
    assert_eq!(env.set(VALUE), Ok(()));
    env.reg.unregister(cookie).unwrap();

    assert_eq!(env.open(KEY).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    let h = env.open(MODIFIED_KEY).expect("the modified key exists");
    env.close(h);
    assert_eq!(env.reg.delete_value(&env.me, env.root, VALUE), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(env.reg.delete_value(&env.me, env.root, MODIFIED_VALUE), Ok(()));
}

/// K3 PostNotificationOverrideSuccess: a post callback undoes a successful operation and
/// turns it into a failure.
#[test]
fn k3_post_notification_override_success() {
    let env = env();
    let cookie = env
        .reg
        .register(
            LOW,
            callback(|cx, class, arg| {
                let Argument::Post(post) = arg else { return NtStatus::STATUS_SUCCESS };
                if post.status != NtStatus::STATUS_SUCCESS {
                    return NtStatus::STATUS_SUCCESS;
                }
                match class {
                    RegNtPostSetValueKey => {
                        let Operation::SetValueKey { object, value_name, .. } = &*post.pre_information else {
                            unreachable!()
                        };
                        if !value_name.eq_ignore_ascii_case(VALUE) {
                            return NtStatus::STATUS_SUCCESS;
                        }
                        delete_on_object(cx, *object, VALUE).unwrap();
                    }
                    RegNtPostCreateKeyEx => {
                        let info = post.pre_information.create_info().unwrap();
                        if !info.complete_name.eq_ignore_ascii_case(KEY) {
                            return NtStatus::STATUS_SUCCESS;
                        }
                        let object = post.object.expect("a successful create has an object");
                        let h = open_object(cx, object, DELETE).unwrap();
                        cx.registry().delete_key(&cx.nested(), h).unwrap();
                        cx.registry().close_key(&cx.nested(), h).unwrap();
                        cx.dereference_object(object);
                        info.result_object = None;
                        post.object = None;
                    }
                    _ => return NtStatus::STATUS_SUCCESS,
                }
                post.return_status = NtStatus::STATUS_ACCESS_DENIED;
                NtStatus::STATUS_CALLBACK_BYPASS
            }),
        )
        .unwrap();

    assert_eq!(env.set(NOT_MODIFIED_VALUE), Ok(()));
    assert_eq!(env.set(VALUE), Err(NtStatus::STATUS_ACCESS_DENIED));
    let (h, _) = env.create(NOT_MODIFIED_KEY).unwrap();
    env.close(h);
    assert_eq!(env.create(KEY).err(), Some(NtStatus::STATUS_ACCESS_DENIED));
    env.reg.unregister(cookie).unwrap();

    assert!(env.value(NOT_MODIFIED_VALUE).is_ok());
    assert_eq!(env.reg.delete_value(&env.me, env.root, VALUE), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert!(env.exists(NOT_MODIFIED_KEY));
    assert!(!env.exists(KEY), "the post callback deleted the created key");
    assert_eq!(env.reg.open_handles(), 1, "only the root handle is open");
}

/// K4 PostNotificationOverrideError: a post callback turns a failed open into a success by
/// opening another key.
#[test]
fn k4_post_notification_override_error() {
    let env = env();
    let (h, _) = env.create(MODIFIED_KEY).unwrap();
    env.close(h);
    assert_eq!(env.open(KEY).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND), "before registering");

    let cookie = env
        .reg
        .register(
            LOW,
            callback(|cx, class, arg| {
                let (RegNtPostOpenKeyEx, Argument::Post(post)) = (class, arg) else { return NtStatus::STATUS_SUCCESS };
                if post.status != NtStatus::STATUS_OBJECT_NAME_NOT_FOUND {
                    return NtStatus::STATUS_SUCCESS;
                }
                let info = post.pre_information.create_info().unwrap();
                if !info.complete_name.eq_ignore_ascii_case(KEY) {
                    return NtStatus::STATUS_SUCCESS;
                }
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
                post.object = Some(object);
                post.return_status = NtStatus::STATUS_SUCCESS;
                NtStatus::STATUS_CALLBACK_BYPASS
            }),
        )
        .unwrap();

    let h = env.open(KEY).expect("the failed open is turned into a success");
    assert_eq!(env.name_of(h), format!("{ROOT}\\{MODIFIED_KEY}"), "the handle refers to the modified key");
    assert_eq!(env.reg.handle_access(h), Ok(KEY_ALL_ACCESS));
    env.reg.set_value(&env.me, h, "x", Value::dword(1)).unwrap();
    env.close(h);
    env.reg.unregister(cookie).unwrap();
    assert_eq!(env.open(KEY).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND), "after unregistering");
}

/// K7 MultipleAltitudeBlockDuringPre: a block in the middle stops the lower callbacks and the
/// blocking callback's own post; the higher callback still gets its post.
#[test]
fn k7_multiple_altitude_block_during_pre() {
    let env = env();
    let t = trace();
    let high = env.reg.register(HIGH, monitor("high", &t)).unwrap();
    let mid = env
        .reg
        .register(
            MID,
            traced("mid", &t, |_, class, _| match class {
                RegNtPreCreateKeyEx | RegNtPreSetValueKey => NtStatus::STATUS_ACCESS_DENIED,
                _ => NtStatus::STATUS_SUCCESS,
            }),
        )
        .unwrap();
    let low = env.reg.register(LOW, monitor("low", &t)).unwrap();

    assert_eq!(env.create(KEY).err(), Some(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(counts(&t, "high"), (1, 1));
    assert_eq!(counts(&t, "mid"), (1, 0));
    assert_eq!(counts(&t, "low"), (0, 0));
    let post = &events(&t, "high")[1];
    assert_eq!(post.class, RegNtPostCreateKeyEx);
    assert_eq!(post.status, Some(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(post.object, None, "after a block the post-create Object is NULL");

    t.lock().unwrap().clear();
    assert_eq!(env.set(VALUE), Err(NtStatus::STATUS_ACCESS_DENIED));
    assert_eq!(counts(&t, "high"), (1, 1));
    assert_eq!(counts(&t, "mid"), (1, 0));
    assert_eq!(counts(&t, "low"), (0, 0));

    for c in [high, mid, low] {
        env.reg.unregister(c).unwrap();
    }
    assert!(!env.exists(KEY));
    assert_eq!(env.value(VALUE).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
}

/// K8 MultipleAltitudeInternalInvocation: registry calls made by a callback are seen only by
/// the callbacks below it.
#[test]
fn k8_multiple_altitude_internal_invocation() {
    let env = env();
    let t = trace();
    let high = env.reg.register(HIGH, monitor("high", &t)).unwrap();
    let mid = env
        .reg
        .register(
            MID,
            traced("mid", &t, |cx, class, mut arg| {
                let object = match (class, &mut arg) {
                    (RegNtPreCreateKeyEx, _) => create_info(&mut arg).unwrap().root_object,
                    (RegNtPostCreateKeyEx, Argument::Post(post)) if post.status == NtStatus::STATUS_SUCCESS => {
                        post.object.unwrap()
                    }
                    _ => return NtStatus::STATUS_SUCCESS,
                };
                // CmCallbackGetKeyObjectIDEx, ZwOpenKey, ZwClose.
                let h = open_object(cx, object, KEY_READ).unwrap();
                cx.registry().close_key(&cx.nested(), h).unwrap();
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();
    let low = env.reg.register(LOW, monitor("low", &t)).unwrap();

    let (h, _) = env.create(KEY).expect("the create succeeds");
    assert_eq!(counts(&t, "high"), (1, 1));
    assert_eq!(counts(&t, "mid"), (1, 1));
    assert_eq!(counts(&t, "low"), (5, 5));
    assert_eq!(
        classes(&t, "low"),
        [
            // mid's pre: open and close the root.
            RegNtPreOpenKeyEx,
            RegNtPostOpenKeyEx,
            RegNtPreKeyHandleClose,
            RegNtPostKeyHandleClose,
            // the caller's create.
            RegNtPreCreateKeyEx,
            RegNtPostCreateKeyEx,
            // mid's post: open and close the new key.
            RegNtPreOpenKeyEx,
            RegNtPostOpenKeyEx,
            RegNtPreKeyHandleClose,
            RegNtPostKeyHandleClose,
        ]
    );
    assert_eq!(outer_counts(&t, "low"), (1, 1), "four of low's notifications come from mid's calls");
    for c in [high, mid, low] {
        env.reg.unregister(c).unwrap();
    }
    env.close(h);
    assert!(env.exists(KEY));
}

/// K9 SetCallContext: the call context set in a pre comes back in the post.
#[test]
fn k9_set_call_context() {
    let env = env();
    let matched = Arc::new(AtomicUsize::new(0));
    let m = matched.clone();
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |_, class, arg| {
                match (class, arg) {
                    (RegNtPreCreateKeyEx | RegNtPreSetValueKey, Argument::Pre(pre)) => {
                        pre.call_context = Some(Box::new(0x5EED_u64 + class as u64));
                    }
                    (RegNtPostCreateKeyEx | RegNtPostSetValueKey, Argument::Post(post)) => {
                        let pre_class =
                            if class == RegNtPostCreateKeyEx { RegNtPreCreateKeyEx } else { RegNtPreSetValueKey }
                                as u64;
                        if post.call_context.as_ref().and_then(|c| c.downcast_ref::<u64>())
                            == Some(&(0x5EED + pre_class))
                        {
                            m.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    _ => {}
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    let (h, _) = env.create(KEY).unwrap();
    env.set(VALUE).unwrap();
    env.reg.unregister(cookie).unwrap();
    env.close(h);
    assert_eq!(matched.load(Ordering::SeqCst), 2);
}

/// K10 SetObjectContext: an object context is per key object (per open), comes with every
/// notification on that object, and is cleaned up exactly once, at unregistration here.
#[test]
fn k10_set_object_context() {
    let env = env();
    let ctx: ObjectContext = Arc::new("regfltr object context");
    let with_ctx = Arc::new(AtomicUsize::new(0));
    let without_ctx = Arc::new(AtomicUsize::new(0));
    let cleanups = Arc::new(Mutex::new(Vec::<bool>::new()));
    let (c, w, wo, cl) = (ctx.clone(), with_ctx.clone(), without_ctx.clone(), cleanups.clone());
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |cx, class, arg| {
                match (class, arg) {
                    (RegNtPostOpenKeyEx, Argument::Post(post)) if post.status == NtStatus::STATUS_SUCCESS => {
                        assert!(cx.set_object_context(post.object.unwrap(), c.clone()).unwrap().is_none());
                    }
                    (RegNtPreSetValueKey, Argument::Pre(pre)) => {
                        let counter = if same_context(&pre.object_context, &c) { &w } else { &wo };
                        assert!(pre.object_context.is_none() || same_context(&pre.object_context, &c));
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    (RegNtPostSetValueKey, Argument::Post(post)) => {
                        let counter = if same_context(&post.object_context, &c) { &w } else { &wo };
                        assert!(post.object_context.is_none() || same_context(&post.object_context, &c));
                        counter.fetch_add(1, Ordering::SeqCst);
                    }
                    (RegNtCallbackObjectContextCleanup, Argument::ContextCleanup { object_context, .. }) => {
                        cl.lock().unwrap().push(Arc::ptr_eq(&object_context, &c));
                    }
                    _ => {}
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    // The old handle (opened before registering) has no context; the new one has.
    let new = env.reg.open_key(&env.me, None, ROOT, &OpenOptions::access(KEY_ALL_ACCESS)).unwrap();
    env.reg.set_value(&env.me, env.root, VALUE, Value::dword(1)).unwrap();
    env.reg.set_value(&env.me, new, VALUE, Value::dword(2)).unwrap();
    assert_eq!(with_ctx.load(Ordering::SeqCst), 2);
    assert_eq!(without_ctx.load(Ordering::SeqCst), 2);
    assert!(cleanups.lock().unwrap().is_empty(), "no cleanup while the handle is open");

    env.reg.unregister(cookie).unwrap();
    assert_eq!(*cleanups.lock().unwrap(), [true], "exactly one cleanup, delivered at unregistration");
    env.close(new);
    assert_eq!(cleanups.lock().unwrap().len(), 1, "closing after unregistration sends nothing");
}

/// K11 CreateOpenV1: a V1 open replayed relative to `RootObject` with `RemainingName`: with
/// the caller's attributes (forced access check) it is denied, without them it succeeds; the
/// caller's own open is denied.
#[test]
fn k11_create_open_v1() {
    let env = env();
    let results = Arc::new(Mutex::new(Vec::new()));
    let r = results.clone();
    let target = r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Enum";
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |cx, class, mut arg| {
                if class != RegNtPreOpenKeyEx || cx.caller().is_nested() {
                    return NtStatus::STATUS_SUCCESS;
                }
                let info = create_info(&mut arg).unwrap();
                if info.version != 1 || !info.complete_name.eq_ignore_ascii_case(target) {
                    return NtStatus::STATUS_SUCCESS;
                }
                assert_eq!(info.root_object, cx.registry().root_object());
                assert_eq!(info.remaining_name, r"MACHINE\SYSTEM\CurrentControlSet\Enum");
                // RootObject is \REGISTRY: replay the open relative to it.
                let name = format!(r"\REGISTRY\{}", info.remaining_name);
                let mut opts = OpenOptions::access(info.desired_access);
                opts.attributes = info.attributes | OBJ_KERNEL_HANDLE;
                let forced = cx.registry().open_key(&cx.nested(), None, &name, &opts);
                opts.attributes = OBJ_KERNEL_HANDLE;
                let plain = cx.registry().open_key(&cx.nested(), None, &name, &opts);
                if let Ok(h) = plain {
                    cx.registry().close_key(&cx.nested(), h).unwrap();
                }
                r.lock().unwrap().push((forced.err(), plain.is_ok()));
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    let opts =
        OpenOptions { desired_access: DELETE, options: 0, attributes: OBJ_CASE_INSENSITIVE | OBJ_FORCE_ACCESS_CHECK };
    assert_eq!(env.reg.open_key(&env.me, None, target, &opts).err(), Some(NtStatus::STATUS_ACCESS_DENIED));
    env.reg.unregister(cookie).unwrap();
    assert_eq!(*results.lock().unwrap(), [(Some(NtStatus::STATUS_ACCESS_DENIED), true)]);
}

/// K5 TransactionReplay: in pre-create, the transaction is `info.transaction`, or else the one
/// bound to the root object (`CmGetBoundTransaction`); the callback replays a create of the
/// modified key in that same transaction. Inside the transaction both keys exist; after a
/// rollback neither does.
#[test]
fn k5_transaction_replay() {
    let env = env();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_in = Arc::clone(&seen);
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |cx, class, mut arg| {
                if class != RegNtPreCreateKeyEx {
                    return NtStatus::STATUS_SUCCESS;
                }
                let info = create_info(&mut arg).unwrap();
                if !info.complete_name.eq_ignore_ascii_case(KEY) {
                    return NtStatus::STATUS_SUCCESS;
                }
                let txn = info.transaction.or_else(|| cx.registry().bound_transaction(info.root_object));
                seen_in.lock().unwrap().push(txn);
                let Some(txn) = txn else { return NtStatus::STATUS_SUCCESS };
                let (_, root) = cx.key_object_id(info.root_object).unwrap();
                let (h, _) = cx
                    .registry()
                    .create_key_transacted(
                        &cx.nested(),
                        None,
                        &format!("{root}\\{MODIFIED_KEY}"),
                        &replay_options(info),
                        txn,
                    )
                    .unwrap();
                cx.registry().close_key(&cx.nested(), h).unwrap();
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    // The root opened in the transaction: the create below is transacted through it.
    let txn = env.reg.begin_transaction();
    let troot = env.reg.open_key_transacted(&env.me, None, ROOT, &OpenOptions::access(KEY_ALL_ACCESS), txn).unwrap();
    let (h, _) = env.reg.create_key(&env.me, Some(troot), KEY, &Default::default()).expect("transacted create");
    env.reg.close_key(&env.me, h).unwrap();
    for name in [KEY, MODIFIED_KEY] {
        let k = env.reg.open_key(&env.me, Some(troot), name, &OpenOptions::access(KEY_READ));
        assert!(k.is_ok(), "{name} exists inside the transaction");
        env.reg.close_key(&env.me, k.unwrap()).unwrap();
        assert!(!env.exists(name), "{name} is not seen outside the transaction before commit");
    }
    env.reg.rollback_transaction(txn).unwrap();
    env.reg.unregister(cookie).unwrap();

    assert_eq!(*seen.lock().unwrap(), vec![Some(txn)], "the callback found the bound transaction");
    for name in [KEY, MODIFIED_KEY] {
        assert_eq!(env.open(name).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND), "{name} after rollback");
    }
    assert_eq!(
        env.reg.open_key(&env.me, Some(troot), KEY, &OpenOptions::access(KEY_READ)).err(),
        Some(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE),
        "a key bound to an ended transaction"
    );
    env.reg.close_key(&env.me, troot).expect("a handle of an ended transaction still closes");
}

/// K6 TransactionEnlist: in pre-create a resource manager enlists in the operation's
/// transaction for commit and rollback; `ZwCreateKeyTransacted` and the commit succeed, and
/// the resource manager hears exactly `Commit`.
#[test]
fn k6_transaction_enlist() {
    let env = env();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let heard_in = Arc::clone(&heard);
    let cookie = env
        .reg
        .register(
            LOW,
            callback(move |cx, class, mut arg| {
                if class != RegNtPreCreateKeyEx {
                    return NtStatus::STATUS_SUCCESS;
                }
                let info = create_info(&mut arg).unwrap();
                let Some(txn) = info.transaction.or_else(|| cx.registry().bound_transaction(info.root_object)) else {
                    return NtStatus::STATUS_SUCCESS;
                };
                let heard = Arc::clone(&heard_in);
                cx.registry()
                    .enlist_transaction(txn, Box::new(move |outcome| heard.lock().unwrap().push(outcome)))
                    .unwrap();
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    let txn = env.reg.begin_transaction();
    let (h, _) = env
        .reg
        .create_key_transacted(&env.me, Some(env.root), KEY, &Default::default(), txn)
        .expect("ZwCreateKeyTransacted succeeds");
    env.reg.set_value(&env.me, h, VALUE, Value::dword(7)).unwrap();
    env.reg.close_key(&env.me, h).unwrap();
    assert!(heard.lock().unwrap().is_empty(), "nothing heard before the commit");
    env.reg.commit_transaction(txn).expect("the commit succeeds");
    env.reg.unregister(cookie).unwrap();

    assert_eq!(*heard.lock().unwrap(), vec![TxnOutcome::Commit], "the resource manager saw exactly the commit");
    let h = env.open(KEY).expect("the committed key exists");
    assert_eq!(env.reg.query_value(&env.me, h, VALUE), Ok(Value::dword(7)));
    env.close(h);
}
