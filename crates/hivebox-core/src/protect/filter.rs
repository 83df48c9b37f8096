//! The protection filter on the CM stack (WdFilter's `MpRegCallback`).
//!
//! Pre handlers judge the operation with the current policy: a denial is notified at once
//! (high priority) and fails the operation with `STATUS_ACCESS_DENIED`; a notified operation
//! leaves a call context whose post turns it into an event when the operation succeeded.
//! WdFilter keeps its contexts in a list keyed by thread; hivebox uses the CM's per-callback
//! `CallContext`, which the dispatcher hands to exactly the post of the same operation, even
//! when a lower filter blocks or bypasses it, so a context can neither be found by another
//! operation nor outlive its own.

use super::bits::RegOp;
use super::event::{EventVerdict, ProtectionEvent, render_details};
use super::path::{render_key, render_target};
use super::policy::{Actor, CompiledPolicy, DenyReason, Details, Judgement, Subject, SyncDefault};
use super::queue::{Decider, Decision, EventSink};
use crate::access::KEY_QUERY_VALUE;
use crate::cm::{Argument, CallbackCx, Caller, Cookie, ObjectId, OpenOptions, Operation, Registry, RegistryCallback};
use crate::{Clock, NtStatus, RegNotifyClass, Value};
use arc_swap::ArcSwap;
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// The altitude hivebox registers the protection filter at: WdFilter's, in the anti-virus
/// range (320000-329999).
pub const PROTECTION_ALTITUDE: &str = "328010";

/// Counters of what the filter did.
#[derive(Debug, Default)]
pub struct FilterStats {
    /// Operations judged.
    pub judged: AtomicU64,
    /// Operations denied.
    pub denied: AtomicU64,
    /// Events sent.
    pub events: AtomicU64,
    /// Sync notifications that got no answer in time.
    pub sync_timeouts: AtomicU64,
}

/// The protection filter.
pub struct ProtectionFilter {
    policy: ArcSwap<CompiledPolicy>,
    sink: Arc<dyn EventSink>,
    decider: RwLock<Option<Arc<dyn Decider>>>,
    clock: Arc<dyn Clock>,
    live: Arc<AtomicUsize>,
    stats: FilterStats,
}

impl std::fmt::Debug for ProtectionFilter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProtectionFilter")
            .field("policy_generation", &self.policy.load().generation())
            .field("live_contexts", &self.live_contexts())
            .finish()
    }
}

/// What a pre leaves for its post.
struct CallCtx {
    policy: Arc<CompiledPolicy>,
    judgement: Judgement,
    op: RegOp,
    key: String,
    value_name: Option<String>,
    new_key: Option<String>,
    details: Option<String>,
    old: Option<Value>,
    decided_by: Option<&'static str>,
    live: Arc<AtomicUsize>,
}

impl Drop for CallCtx {
    fn drop(&mut self) {
        self.live.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The parts of an operation the filter judges.
struct Parts {
    object: ObjectId,
    key: String,
    value_name: Option<String>,
    new_key: Option<String>,
    value: Option<Value>,
    /// For a create: the name relative to `object`.
    remaining: Option<String>,
}

fn parent_of(path: &str) -> &str {
    path.rfind('\\').map_or("", |i| &path[..i])
}

impl ProtectionFilter {
    /// A filter with `policy`, sending events to `sink`, timestamping with `clock`.
    pub fn new(policy: CompiledPolicy, sink: Arc<dyn EventSink>, clock: Arc<dyn Clock>) -> Arc<Self> {
        Arc::new(ProtectionFilter {
            policy: ArcSwap::from_pointee(policy),
            sink,
            decider: RwLock::new(None),
            clock,
            live: Arc::new(AtomicUsize::new(0)),
            stats: FilterStats::default(),
        })
    }

    /// Registers the filter on `registry` at [`PROTECTION_ALTITUDE`].
    pub fn register(self: &Arc<Self>, registry: &Registry) -> Result<Cookie, NtStatus> {
        registry.register(PROTECTION_ALTITUDE, self.clone())
    }

    /// Sets who answers sync notifications.
    pub fn set_decider(&self, decider: Option<Arc<dyn Decider>>) {
        *self.decider.write() = decider;
    }

    /// `REG_UPDATE_DATA`: installs a new policy atomically. An operation is judged, from pre
    /// to post, by the policy that was current when its pre ran. Returns the old one.
    pub fn swap_policy(&self, policy: impl Into<Arc<CompiledPolicy>>) -> Arc<CompiledPolicy> {
        self.policy.swap(policy.into())
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.policy.load_full()
    }

    /// Call contexts alive: pres whose post has not run yet.
    pub fn live_contexts(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// The counters.
    pub fn stats(&self) -> &FilterStats {
        &self.stats
    }

    fn parts(cx: &CallbackCx<'_>, arg: &Operation) -> Option<Parts> {
        let name = |object: ObjectId| cx.key_object_id(object).ok().map(|(_, n)| n);
        let mut p = Parts {
            object: arg.object(),
            key: String::new(),
            value_name: None,
            new_key: None,
            value: None,
            remaining: None,
        };
        match arg {
            Operation::CreateKey(info) => {
                let root = name(info.root_object)?;
                p.key = if info.remaining_name.is_empty() {
                    root
                } else {
                    format!("{}\\{}", root.trim_end_matches('\\'), info.remaining_name)
                };
                p.remaining = Some(info.remaining_name.clone());
            }
            Operation::SetValueKey { object, value_name, value, .. } => {
                p.key = name(*object)?;
                p.value_name = Some(value_name.clone());
                p.value = Some(value.clone());
            }
            Operation::DeleteValueKey { object, value_name } => {
                p.key = name(*object)?;
                p.value_name = Some(value_name.clone());
            }
            Operation::RenameKey { object, new_name } => {
                p.key = name(*object)?;
                p.new_key = Some(format!("{}\\{}", parent_of(&p.key), new_name));
            }
            _ => p.key = name(arg.object())?,
        }
        Some(p)
    }

    fn actor<'a>(caller: &'a Caller) -> Actor<'a> {
        let p = &caller.process;
        Actor {
            image: &p.image,
            pid: p.pid,
            uid: p.uid,
            box_name: p.box_name.as_deref(),
            flags: p.flags,
            rules: p.rules,
            system: caller.token.system && p.pid == 0,
        }
    }

    /// True if the key a create names exists already (`MpRegpCheckExistingKey`).
    fn exists(cx: &CallbackCx<'_>, root: ObjectId, remaining: &str) -> bool {
        let reg = cx.registry();
        let nested = cx.nested();
        let Ok(r) = reg.open_object_by_pointer(root, 0) else { return false };
        let found = reg.open_key(&nested, Some(r), remaining, &OpenOptions::default());
        if let Ok(h) = &found {
            let _ = reg.close_key(&nested, *h);
        }
        let _ = reg.close_key(&nested, r);
        found.is_ok()
    }

    /// `MpRegpQueryValueKeyByPointer`: the value an operation is about to overwrite or delete.
    fn old_value(cx: &CallbackCx<'_>, object: ObjectId, name: &str) -> Option<Value> {
        let reg = cx.registry();
        let nested = cx.nested();
        let h = reg.open_object_by_pointer(object, KEY_QUERY_VALUE).ok()?;
        let v = reg.query_value(&nested, h, name).ok();
        let _ = reg.close_key(&nested, h);
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn event(
        &self,
        policy: &CompiledPolicy,
        caller: &Caller,
        j: &Judgement,
        op: RegOp,
        key: &str,
        value_name: Option<&str>,
        new_key: Option<&str>,
        details: Option<String>,
        verdict: EventVerdict,
    ) -> ProtectionEvent {
        let ccs = policy.spec().current_control_set;
        ProtectionEvent {
            op,
            target_object: render_target(key, value_name, ccs),
            details,
            new_name: new_key.map(|k| render_key(k, ccs)),
            image: caller.process.image.clone(),
            process_id: caller.process.pid,
            time: self.clock.now(),
            box_name: caller.process.box_name.clone(),
            verdict,
            reason: j.denied.map(DenyReason::name),
            rules: policy.rule_ids(j),
            final_key_rules: j.final_rules,
            old: None,
            sync: j.sync,
            decided_by: None,
        }
    }

    fn pre(&self, cx: &CallbackCx<'_>, op: RegOp, info: &mut crate::cm::PreInfo<'_>) -> NtStatus {
        let Some(parts) = Self::parts(cx, info.op) else { return NtStatus::STATUS_SUCCESS };
        let policy = self.policy.load_full();
        let caller = cx.caller();
        let subject = Subject {
            op,
            key: &parts.key,
            value_name: parts.value_name.as_deref(),
            new_key: parts.new_key.as_deref(),
            details: parts.value.as_ref().map(Details::Value),
        };
        let mut j = policy.judge(&subject, &Self::actor(caller));
        self.stats.judged.fetch_add(1, Ordering::Relaxed);
        if !j.is_event() {
            return NtStatus::STATUS_SUCCESS;
        }
        // Only keys that do not exist yet count as created (hardening applies regardless).
        if let Some(remaining) = &parts.remaining
            && !matches!(j.denied, Some(DenyReason::Hardening(_)))
            && Self::exists(cx, parts.object, remaining)
        {
            return NtStatus::STATUS_SUCCESS;
        }
        let details = parts.value.as_ref().map(render_details);
        let mut old = None;
        if j.retrieve_old
            && let Some(name) = &parts.value_name
        {
            old = Self::old_value(cx, parts.object, name);
        }
        let event = |j: &Judgement, verdict| {
            let mut e = self.event(
                &policy,
                caller,
                j,
                op,
                &parts.key,
                parts.value_name.as_deref(),
                parts.new_key.as_deref(),
                details.clone(),
                verdict,
            );
            e.old = old.clone();
            e
        };
        let mut decided_by = None;
        if j.denied.is_none() && j.sync {
            let decider = self.decider.read().clone();
            let timeout = policy.spec().sync_timeout_ms;
            let answer = decider.and_then(|d| d.decide(&event(&j, EventVerdict::Allowed), timeout));
            let decision = answer.unwrap_or_else(|| {
                self.stats.sync_timeouts.fetch_add(1, Ordering::Relaxed);
                match policy.spec().sync_default {
                    SyncDefault::Allow => Decision::Allow,
                    SyncDefault::Deny => Decision::Deny,
                }
            });
            decided_by = Some(if answer.is_some() { "service" } else { "default" });
            if decision == Decision::Deny {
                j.denied = Some(DenyReason::Service);
            }
        }
        if j.denied.is_some() {
            let mut e = event(&j, EventVerdict::Denied);
            e.decided_by = decided_by;
            self.stats.denied.fetch_add(1, Ordering::Relaxed);
            self.stats.events.fetch_add(1, Ordering::Relaxed);
            self.sink.submit(e, true);
            return NtStatus::STATUS_ACCESS_DENIED;
        }
        if j.notify {
            self.live.fetch_add(1, Ordering::SeqCst);
            info.call_context = Some(Box::new(CallCtx {
                policy,
                judgement: j,
                op,
                key: parts.key,
                value_name: parts.value_name,
                new_key: parts.new_key,
                details,
                old,
                decided_by,
                live: self.live.clone(),
            }));
        }
        NtStatus::STATUS_SUCCESS
    }

    fn post(&self, cx: &CallbackCx<'_>, info: &mut crate::cm::PostInfo<'_>) {
        let Some(ctx) = info.call_context.take() else { return };
        let Ok(ctx) = ctx.downcast::<CallCtx>() else { return };
        if !info.status.is_success() {
            return;
        }
        let mut e = self.event(
            &ctx.policy,
            cx.caller(),
            &ctx.judgement,
            ctx.op,
            &ctx.key,
            ctx.value_name.as_deref(),
            ctx.new_key.as_deref(),
            ctx.details.clone(),
            EventVerdict::Allowed,
        );
        e.old = ctx.old.clone();
        e.decided_by = ctx.decided_by;
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        self.sink.submit(e, false);
    }
}

impl RegistryCallback for ProtectionFilter {
    fn notify(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        match arg {
            Argument::Pre(info) => match RegOp::from_pre_class(class) {
                Some(op) => self.pre(cx, op, info),
                None => NtStatus::STATUS_SUCCESS,
            },
            Argument::Post(info) => {
                self.post(cx, info);
                NtStatus::STATUS_SUCCESS
            }
            Argument::ContextCleanup { .. } => NtStatus::STATUS_SUCCESS,
        }
    }
}
