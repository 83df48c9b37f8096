//! `NtReplaceKey`: the callbacks see it (pre and post, with both file names) and can block it;
//! the core hands the staging to the caller and changes nothing in the live tree.

use hivebox_core::access::KEY_READ;
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateOptions, ManualClock, NtStatus, OpenOptions, Operation, RegNotifyClass,
    Registry, Value,
};
use std::sync::{Arc, Mutex};

const SOFTWARE: &str = r"\REGISTRY\MACHINE\SOFTWARE";

fn registry() -> Registry {
    Registry::fresh_in_memory(Arc::new(ManualClock::new(1000)))
}

/// Registers a callback that records the replace notifications (class, file names, status)
/// and answers the pre with `verdict`.
fn watch(reg: &Registry, verdict: NtStatus) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    reg.register(
        "385000",
        Arc::new(move |cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>| match arg {
            Argument::Pre(p) => {
                if let Operation::ReplaceKey { object, old_file_name, new_file_name } = &*p.op {
                    let (_, name) = cx.key_object_id(*object).unwrap();
                    s.lock().unwrap().push(format!("{class:?} {name} new={new_file_name} old={old_file_name}"));
                    return verdict;
                }
                NtStatus::STATUS_SUCCESS
            }
            Argument::Post(p) => {
                if matches!(p.pre_information, Operation::ReplaceKey { .. }) {
                    s.lock().unwrap().push(format!("{class:?} {:?}", p.status));
                }
                NtStatus::STATUS_SUCCESS
            }
            Argument::ContextCleanup { .. } => NtStatus::STATUS_SUCCESS,
        }),
    )
    .unwrap();
    seen
}

#[test]
fn callbacks_see_pre_and_post_replace_and_stage_gets_the_hive_root() {
    let reg = registry();
    let sys = Caller::system();
    let seen = watch(&reg, NtStatus::STATUS_SUCCESS);
    let (k, _) = reg.create_key(&sys, None, &format!(r"{SOFTWARE}\Contoso"), &CreateOptions::default()).unwrap();
    reg.set_value(&sys, k, "v", Value::dword(1)).unwrap();
    let before = reg.image();
    let mut staged = Vec::new();
    reg.replace_key(&sys, k, "/new.hiv", "/old.hiv", |root| {
        staged.push(root.to_owned());
        Ok(())
    })
    .unwrap();
    // A key below the root stands for its hive, as RegReplaceKey documents.
    assert_eq!(staged, [SOFTWARE]);
    assert_eq!(reg.image(), before, "the live contents do not change");
    assert_eq!(reg.query_value(&sys, k, "v").unwrap(), Value::dword(1));
    assert_eq!(
        *seen.lock().unwrap(),
        [
            format!(r"RegNtPreReplaceKey {SOFTWARE}\Contoso new=/new.hiv old=/old.hiv"),
            "RegNtPostReplaceKey STATUS_SUCCESS".to_owned(),
        ]
    );
    // The hive is replaced already: a second replace is refused, as Windows refuses it.
    let root = reg.open_key(&sys, None, SOFTWARE, &OpenOptions::access(KEY_READ)).unwrap();
    let r = reg.replace_key(&sys, root, "/n2", "/o2", |_| panic!("not staged twice"));
    assert_eq!(r, Err(NtStatus::STATUS_FILE_RENAMED));
    assert_eq!(seen.lock().unwrap().last().unwrap(), "RegNtPostReplaceKey STATUS_FILE_RENAMED");
    // Another hive is not affected.
    let system = reg.open_key(&sys, None, r"\REGISTRY\MACHINE\SYSTEM", &OpenOptions::access(KEY_READ)).unwrap();
    let mut staged = None;
    reg.replace_key(&sys, system, "/n3", "/o3", |root| {
        staged = Some(root.to_owned());
        Ok(())
    })
    .unwrap();
    assert_eq!(staged.as_deref(), Some(r"\REGISTRY\MACHINE\SYSTEM"));
    for h in [k, root, system] {
        reg.close_key(&sys, h).unwrap();
    }
}

#[test]
fn a_blocking_callback_stops_it_before_staging() {
    let reg = registry();
    let sys = Caller::system();
    let seen = watch(&reg, NtStatus::STATUS_ACCESS_DENIED);
    let root = reg.open_key(&sys, None, SOFTWARE, &OpenOptions::access(KEY_READ)).unwrap();
    let r = reg.replace_key(&sys, root, "/new.hiv", "/old.hiv", |_| panic!("a blocked replace is not staged"));
    assert_eq!(r, Err(NtStatus::STATUS_ACCESS_DENIED));
    // The callback that blocked the pre gets no post.
    assert_eq!(*seen.lock().unwrap(), [format!("RegNtPreReplaceKey {SOFTWARE} new=/new.hiv old=/old.hiv")]);
    reg.close_key(&sys, root).unwrap();
}

#[test]
fn a_failed_stage_fails_the_replace_and_can_be_retried() {
    let reg = registry();
    let sys = Caller::system();
    let seen = watch(&reg, NtStatus::STATUS_SUCCESS);
    let root = reg.open_key(&sys, None, SOFTWARE, &OpenOptions::access(KEY_READ)).unwrap();
    let r = reg.replace_key(&sys, root, "/bad.hiv", "/old.hiv", |_| Err(NtStatus::STATUS_REGISTRY_CORRUPT));
    assert_eq!(r, Err(NtStatus::STATUS_REGISTRY_CORRUPT));
    assert_eq!(seen.lock().unwrap().last().unwrap(), "RegNtPostReplaceKey STATUS_REGISTRY_CORRUPT");
    reg.replace_key(&sys, root, "/good.hiv", "/old.hiv", |_| Ok(())).unwrap();
    reg.close_key(&sys, root).unwrap();
}

#[test]
fn keys_outside_every_hive_and_deleted_keys_fail() {
    let reg = registry();
    let sys = Caller::system();
    let seen = watch(&reg, NtStatus::STATUS_SUCCESS);
    for path in [r"\REGISTRY\MACHINE", r"\REGISTRY\USER", r"\REGISTRY\MACHINE\HARDWARE"] {
        let k = reg.open_key(&sys, None, path, &OpenOptions::access(KEY_READ)).unwrap();
        let r = reg.replace_key(&sys, k, "/new.hiv", "/old.hiv", |_| panic!("{path} has no hive file"));
        assert_eq!(r, Err(NtStatus::STATUS_INVALID_PARAMETER), "{path}");
        reg.close_key(&sys, k).unwrap();
    }
    assert_eq!(seen.lock().unwrap().last().unwrap(), "RegNtPostReplaceKey STATUS_INVALID_PARAMETER");
    let (gone, _) = reg.create_key(&sys, None, &format!(r"{SOFTWARE}\Gone"), &CreateOptions::default()).unwrap();
    reg.delete_key(&sys, gone).unwrap();
    let r = reg.replace_key(&sys, gone, "/new.hiv", "/old.hiv", |_| panic!("a deleted key is not staged"));
    assert_eq!(r, Err(NtStatus::STATUS_KEY_DELETED));
    reg.close_key(&sys, gone).unwrap();
}
