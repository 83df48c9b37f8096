//! The dispatch algorithm of `CmpCallCallBacksEx` / `CmPostCallbackNotification`.
//!
//! Pre phase: from the highest altitude down (or from just below the callback that issued a
//! nested call), each callback gets the pre notification with its own object context and a
//! fresh call context. Success continues; a failure or `STATUS_CALLBACK_BYPASS` stops the
//! phase and that callback gets no post. If every pre succeeded the operation is performed.
//! Post phase: the callbacks that got a pre (and did not stop it) get the post in reverse
//! order, each with the call context it set. A post returning `STATUS_CALLBACK_BYPASS` makes
//! `return_status` the new `status`. After an early stop, a final success means the operation
//! is treated as bypassed: the caller gets success and nothing is performed.

use super::callback::{Argument, CallContext, CallbackCx, Operation, PostInfo, PreInfo};
use super::{Caller, ObjectId, Registry};
use crate::{NtStatus, RegNotifyClass};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// How an operation ended.
pub(crate) struct Outcome {
    /// The status for the caller.
    pub status: NtStatus,
}

impl Registry {
    /// Runs `op` through the callback list, calling `perform` when no pre callback stopped it.
    /// `perform` returns the operation's status and the post `Object`.
    pub(crate) fn dispatch(
        &self,
        caller: &Caller,
        op: &mut Operation,
        perform: impl FnOnce(&mut Operation) -> (NtStatus, Option<ObjectId>),
    ) -> Outcome {
        // The generation is held until the last post has run: `unregister` waits for it.
        let list = {
            let list = self.inner.callbacks.read();
            if list.is_empty() {
                drop(list);
                let (status, _) = perform(op);
                return Outcome { status };
            }
            list.clone()
        };
        let start = match caller.stack.last() {
            None => 0,
            Some(top) => list
                .iter()
                .position(|e| Arc::ptr_eq(e, top))
                .map(|i| i + 1)
                .unwrap_or_else(|| list.iter().position(|e| e.after(top)).unwrap_or(list.len())),
        };
        if start >= list.len() {
            let (status, _) = perform(op);
            return Outcome { status };
        }

        let pre_class = op.pre_class();
        // Invariant: `Operation::pre_class` only returns pre classes that have a post class
        // (checked for every variant by `notify::tests::pairs_match_the_kernel_callers`).
        let post_class = pre_class.post_class().expect("every dispatched operation has a post class");
        let key_object = Some(op.object());
        // Call records for every callback this operation may call are reserved at once; the
        // ones past the limit are the allocations that fail.
        // With no limit configured (the default) nothing is counted.
        let wanted = list.len() - start;
        let limited = self.inner.options.max_call_records != usize::MAX;
        let allowed = if limited {
            let before = self.inner.live_records.fetch_add(wanted, Ordering::Relaxed);
            self.inner.options.max_call_records.saturating_sub(before).min(wanted)
        } else {
            wanted
        };
        // The call records are the entries in `start..end` except those in `skipped`, and
        // hold the call contexts in `contexts`. Both vectors stay empty (unallocated) unless
        // an entry is skipped or sets a call context.
        let mut end = start;
        let mut called = 0;
        let mut skipped: Vec<usize> = Vec::new();
        let mut contexts: Vec<(usize, CallContext)> = Vec::new();
        let mut stopped = None;
        for (i, entry) in list.iter().enumerate().skip(start) {
            end = i;
            // This operation holds `list`, so `unregister` waits for it: the callback cannot
            // be called after `unregister` returns, and from its start on it is skipped.
            if entry.unregistering.load(Ordering::Acquire) {
                skipped.push(i);
                continue;
            }
            if called == allowed {
                stopped = Some(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
                break;
            }
            called += 1;
            let mut pre = PreInfo {
                op: &mut *op,
                call_context: None,
                object_context: self.object_context(entry.cookie, key_object),
            };
            let cx = CallbackCx { registry: self, caller, entry };
            let mut status = entry.callback.notify(&cx, pre_class, Argument::Pre(&mut pre));
            if pre_class == RegNotifyClass::RegNtPreKeyHandleClose {
                status = NtStatus::STATUS_SUCCESS;
            }
            // Taken apart rather than dropped whole: the drop glue is an out-of-line call.
            let PreInfo { call_context, object_context, .. } = pre;
            drop(object_context);
            if !status.is_success() {
                stopped = Some(status);
                break;
            }
            if let Some(call_context) = call_context {
                contexts.push((i, call_context));
            }
        }
        if stopped.is_none() {
            end = list.len();
        }

        let (status, object) = match stopped {
            None => perform(op),
            Some(stop) => {
                let bypassed = stop == NtStatus::STATUS_CALLBACK_BYPASS;
                let object = match op.create_info() {
                    Some(info) if bypassed => info.result_object,
                    Some(_) => None,
                    None => key_object,
                };
                (if bypassed { NtStatus::STATUS_SUCCESS } else { stop }, object)
            }
        };

        let mut post = PostInfo {
            object,
            status,
            pre_information: op,
            return_status: status,
            call_context: None,
            object_context: None,
        };
        for i in (start..end).rev() {
            if skipped.last() == Some(&i) {
                skipped.pop();
                continue;
            }
            let entry = &list[i];
            post.call_context = match contexts.last() {
                Some((j, _)) if *j == i => contexts.pop().map(|(_, c)| c),
                _ => None,
            };
            post.object_context = self.object_context(entry.cookie, post.object);
            let before = post.return_status;
            let cx = CallbackCx { registry: self, caller, entry };
            let result = entry.callback.notify(&cx, post_class, Argument::Post(&mut post));
            if result == NtStatus::STATUS_CALLBACK_BYPASS {
                post.status = post.return_status;
            } else if !self.inner.options.return_status_without_bypass {
                post.return_status = before;
            }
            post.call_context = None;
            post.object_context = None;
        }
        if limited {
            self.inner.live_records.fetch_sub(wanted, Ordering::Relaxed);
        }
        Outcome { status: post.return_status }
    }
}
