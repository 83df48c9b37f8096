//! Shared setup for the integration tests: regfltr's names and altitudes, a traced callback
//! wrapper, and the registry calls a filter makes from inside a callback.

#![allow(dead_code)]

use hivebox_core::access::*;
use hivebox_core::{
    Argument, CallbackCx, Caller, CreateKeyInfo, CreateOptions, Disposition, Handle, ManualClock, NtStatus,
    ObjectContext, ObjectId, OpenOptions, ProcessInfo, RegNotifyClass, Registry, RegistryCallback, Token, Value,
};
use std::sync::{Arc, Mutex};

/// A store that keeps every mutation it is given.
#[derive(Clone, Default)]
pub struct Log(pub Arc<Mutex<Vec<hivebox_core::Mutation>>>);

impl hivebox_core::Storage for Log {
    fn append(&mut self, m: &hivebox_core::Mutation) -> Result<(), hivebox_core::StorageError> {
        self.0.lock().unwrap().push(m.clone());
        Ok(())
    }

    fn flush(&mut self, _: &dyn Fn() -> hivebox_core::KeyImage) -> Result<(), hivebox_core::StorageError> {
        Ok(())
    }
}

/// regfltr's test root, `HKLM\Software\_RegFltrRoot`.
pub const ROOT: &str = r"\REGISTRY\MACHINE\SOFTWARE\_RegFltrRoot";
/// The key the samples act on.
pub const KEY: &str = "_RegFltrKey";
/// The key a filter substitutes.
pub const MODIFIED_KEY: &str = "_RegFltrModifiedKey";
/// A key no filter touches.
pub const NOT_MODIFIED_KEY: &str = "_RegFltrNotModifiedKey";
/// The value the samples act on.
pub const VALUE: &str = "_RegFltrValue";
/// The value a filter substitutes.
pub const MODIFIED_VALUE: &str = "_RegFltrModifiedValue";
/// A value no filter touches.
pub const NOT_MODIFIED_VALUE: &str = "_RegFltrNotModifiedValue";

/// regfltr's altitudes.
pub const HIGH: &str = "380020";
/// regfltr's altitudes.
pub const MID: &str = "380010";
/// regfltr's altitudes.
pub const LOW: &str = "380000";

/// The SID of the user-mode test caller.
pub const USER_SID: &str = "S-1-5-21-1111111111-2222222222-3333333333-1001";

/// The user-mode caller every scenario's operations come from.
pub fn user() -> Caller {
    Caller::user(Token { user_sid: USER_SID.into(), system: false }, ProcessInfo::default())
}

/// A fresh registry with the test root created.
pub struct Env {
    pub reg: Registry,
    pub clock: Arc<ManualClock>,
    pub me: Caller,
    /// A `KEY_ALL_ACCESS` handle to [`ROOT`], opened before any callback is registered.
    pub root: Handle,
}

pub fn env() -> Env {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let reg = Registry::fresh_in_memory(clock.clone());
    let me = user();
    let (root, _) = reg.create_key(&me, None, ROOT, &CreateOptions::default()).unwrap();
    Env { reg, clock, me, root }
}

impl Env {
    /// `ZwCreateKey` of a subkey of the root.
    pub fn create(&self, name: &str) -> Result<(Handle, Disposition), NtStatus> {
        self.reg.create_key(&self.me, Some(self.root), name, &CreateOptions::default())
    }

    /// `ZwOpenKey` of a subkey of the root.
    pub fn open(&self, name: &str) -> Result<Handle, NtStatus> {
        self.reg.open_key(&self.me, Some(self.root), name, &OpenOptions::access(KEY_ALL_ACCESS))
    }

    /// Whether a subkey of the root exists (checked with the system identity, no callbacks
    /// registered at that point in the tests).
    pub fn exists(&self, name: &str) -> bool {
        match self.open(name) {
            Ok(h) => {
                self.reg.close_key(&self.me, h).unwrap();
                true
            }
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => false,
            Err(e) => panic!("open {name}: {e}"),
        }
    }

    /// Sets a value on the root.
    pub fn set(&self, name: &str) -> Result<(), NtStatus> {
        self.reg.set_value(&self.me, self.root, name, Value::dword(0x1234))
    }

    /// Queries a value on the root.
    pub fn value(&self, name: &str) -> Result<Value, NtStatus> {
        self.reg.query_value(&self.me, self.root, name)
    }

    /// The full name of the key behind a handle.
    pub fn name_of(&self, h: Handle) -> String {
        self.reg.query_key_name(&self.me, h).unwrap()
    }

    pub fn close(&self, h: Handle) {
        self.reg.close_key(&self.me, h).unwrap();
    }
}

/// One notification a traced callback received.
#[derive(Clone)]
pub struct Event {
    pub filter: &'static str,
    pub class: RegNotifyClass,
    /// The operation was issued from inside a callback.
    pub nested: bool,
    /// Post: `Status` as the callback received it.
    pub status: Option<NtStatus>,
    /// Post: `Object` as the callback received it.
    pub object: Option<ObjectId>,
    /// The callback's object context (cleanup: the context being released).
    pub object_context: Option<ObjectContext>,
}

impl std::fmt::Debug for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:?}{}", self.filter, self.class, if self.nested { "(nested)" } else { "" })?;
        if let Some(s) = self.status {
            write!(f, "[{s}]")?;
        }
        Ok(())
    }
}

pub type Trace = Arc<Mutex<Vec<Event>>>;

pub fn trace() -> Trace {
    Arc::default()
}

/// Gives a closure the callback signature (so its parameter lifetimes are inferred).
pub fn callback<F>(f: F) -> Arc<dyn RegistryCallback>
where
    F: Fn(&CallbackCx<'_>, RegNotifyClass, Argument<'_, '_>) -> NtStatus + Send + Sync + 'static,
{
    Arc::new(f)
}

/// A callback that records every notification in `trace`, then runs `f`.
pub fn traced<F>(name: &'static str, trace: &Trace, f: F) -> Arc<dyn RegistryCallback>
where
    F: Fn(&CallbackCx<'_>, RegNotifyClass, Argument<'_, '_>) -> NtStatus + Send + Sync + 'static,
{
    let trace = trace.clone();
    callback(move |cx, class, arg| {
        let (status, object, object_context) = match &arg {
            Argument::Pre(p) => (None, None, p.object_context.clone()),
            Argument::Post(p) => (Some(p.status), p.object, p.object_context.clone()),
            Argument::ContextCleanup { object, object_context } => (None, Some(*object), Some(object_context.clone())),
        };
        let nested = cx.caller().is_nested();
        trace.lock().unwrap().push(Event { filter: name, class, nested, status, object, object_context });
        f(cx, class, arg)
    })
}

/// A traced callback that only watches.
pub fn monitor(name: &'static str, trace: &Trace) -> Arc<dyn RegistryCallback> {
    traced(name, trace, |_, _, _| NtStatus::STATUS_SUCCESS)
}

/// The events of one filter.
pub fn events(trace: &Trace, filter: &str) -> Vec<Event> {
    trace.lock().unwrap().iter().filter(|e| e.filter == filter).cloned().collect()
}

/// (pre, post) notifications `filter` received, nested calls included.
pub fn counts(trace: &Trace, filter: &str) -> (usize, usize) {
    let ev = events(trace, filter);
    (ev.iter().filter(|e| e.class.is_pre()).count(), ev.iter().filter(|e| e.class.is_post()).count())
}

/// (pre, post) notifications `filter` received for the caller's own operations.
pub fn outer_counts(trace: &Trace, filter: &str) -> (usize, usize) {
    let ev: Vec<Event> = events(trace, filter).into_iter().filter(|e| !e.nested).collect();
    (ev.iter().filter(|e| e.class.is_pre()).count(), ev.iter().filter(|e| e.class.is_post()).count())
}

/// The classes `filter` received, in order.
pub fn classes(trace: &Trace, filter: &str) -> Vec<RegNotifyClass> {
    events(trace, filter).iter().map(|e| e.class).collect()
}

/// The create/open information of a create/open notification (pre or post).
pub fn create_info<'a>(arg: &'a mut Argument<'_, '_>) -> Option<&'a mut CreateKeyInfo> {
    match arg {
        Argument::Pre(p) => p.op.create_info(),
        Argument::Post(p) => p.pre_information.create_info(),
        Argument::ContextCleanup { .. } => None,
    }
}

/// The full native name a create/open refers to: an absolute `CompleteName` as is, a relative
/// one appended to the root object's name.
pub fn full_name(cx: &CallbackCx<'_>, info: &CreateKeyInfo) -> String {
    if info.complete_name.starts_with('\\') {
        return info.complete_name.clone();
    }
    let (_, root) = cx.key_object_id(info.root_object).unwrap();
    if info.remaining_name.is_empty() { root } else { format!("{root}\\{}", info.remaining_name) }
}

/// Opens the key behind `object` from inside a callback (by its current name).
pub fn open_object(cx: &CallbackCx<'_>, object: ObjectId, access: u32) -> Result<Handle, NtStatus> {
    let (_, path) = cx.key_object_id(object)?;
    cx.registry().open_key(&cx.nested(), None, &path, &OpenOptions::access(access))
}

/// Turns a handle a callback opened into a referenced result object: returns the object and
/// the access granted to the handle, and closes the handle.
pub fn into_result_object(cx: &CallbackCx<'_>, h: Handle) -> (ObjectId, u32) {
    let granted = cx.registry().handle_access(h).unwrap();
    let object = cx.reference_object_by_handle(h).unwrap();
    cx.registry().close_key(&cx.nested(), h).unwrap();
    (object, granted)
}

/// The options of a create replayed by a filter: the caller's access, options, class and
/// attributes.
pub fn replay_options(info: &CreateKeyInfo) -> CreateOptions {
    CreateOptions {
        desired_access: info.desired_access,
        options: info.options,
        class: info.class.clone(),
        attributes: info.attributes,
    }
}

/// True when `ctx` is the very context `expected` (pointer identity).
pub fn same_context(ctx: &Option<ObjectContext>, expected: &ObjectContext) -> bool {
    ctx.as_ref().is_some_and(|c| Arc::ptr_eq(c, expected))
}

/// Sets a value on the key behind `object` from inside a callback.
pub fn set_on_object(cx: &CallbackCx<'_>, object: ObjectId, name: &str, value: Value) -> Result<(), NtStatus> {
    let h = open_object(cx, object, KEY_SET_VALUE)?;
    let r = cx.registry().set_value(&cx.nested(), h, name, value);
    cx.registry().close_key(&cx.nested(), h)?;
    r
}

/// Deletes a value on the key behind `object` from inside a callback.
pub fn delete_on_object(cx: &CallbackCx<'_>, object: ObjectId, name: &str) -> Result<(), NtStatus> {
    let h = open_object(cx, object, KEY_SET_VALUE)?;
    let r = cx.registry().delete_value(&cx.nested(), h, name);
    cx.registry().close_key(&cx.nested(), h)?;
    r
}
