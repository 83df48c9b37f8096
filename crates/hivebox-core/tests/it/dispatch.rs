//! Dispatch details beyond the numbered scenarios.

use crate::common::*;
use hivebox_core::access::*;
use hivebox_core::{Argument, NtStatus, ObjectContext, RegNotifyClass};
use std::sync::Arc;

use RegNotifyClass::*;

/// A context set on a create's new object is cleaned up even when a higher post turns the
/// create into a failure and drops the object before any handle to it existed.
#[test]
fn context_on_an_object_dropped_without_a_handle_is_cleaned_up() {
    let env = env();
    let t = trace();
    let high = env
        .reg
        .register(
            HIGH,
            traced("high", &t, |cx, class, arg| {
                let (RegNtPostCreateKeyEx, Argument::Post(post)) = (class, arg) else {
                    return NtStatus::STATUS_SUCCESS;
                };
                if post.status != NtStatus::STATUS_SUCCESS {
                    return NtStatus::STATUS_SUCCESS;
                }
                let object = post.object.take().unwrap();
                let h = open_object(cx, object, DELETE).unwrap();
                cx.registry().delete_key(&cx.nested(), h).unwrap();
                cx.registry().close_key(&cx.nested(), h).unwrap();
                cx.dereference_object(object);
                post.pre_information.create_info().unwrap().result_object = None;
                post.return_status = NtStatus::STATUS_ACCESS_DENIED;
                NtStatus::STATUS_CALLBACK_BYPASS
            }),
        )
        .unwrap();
    let low = env
        .reg
        .register(
            LOW,
            traced("low", &t, |cx, class, arg| {
                if let (RegNtPostCreateKeyEx, Argument::Post(post)) = (class, arg)
                    && post.status == NtStatus::STATUS_SUCCESS
                {
                    let ctx: ObjectContext = Arc::new("low's");
                    cx.set_object_context(post.object.unwrap(), ctx).unwrap();
                }
                NtStatus::STATUS_SUCCESS
            }),
        )
        .unwrap();

    assert_eq!(env.create(KEY).err(), Some(NtStatus::STATUS_ACCESS_DENIED));
    let cleanups = |t: &Trace| {
        t.lock()
            .unwrap()
            .iter()
            .filter(|e| e.class == RegNtCallbackObjectContextCleanup)
            .map(|e| e.filter)
            .collect::<Vec<_>>()
    };
    assert_eq!(cleanups(&t), ["low"], "the context is released with its object");
    env.reg.unregister(high).unwrap();
    env.reg.unregister(low).unwrap();
    assert_eq!(cleanups(&t), ["low"], "and only once");
    assert!(!env.exists(KEY));
}
