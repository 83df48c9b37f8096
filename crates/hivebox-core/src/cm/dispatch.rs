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
use super::{Caller, Entry, ObjectId, Registry};
use crate::{NtStatus, RegNotifyClass};
use std::sync::Arc;
use std::sync::atomic::Ordering;

struct Record {
    entry: Arc<Entry>,
    call_context: Option<CallContext>,
}

/// How an operation ended.
pub(crate) struct Outcome {
    /// The status for the caller.
    pub status: NtStatus,
}

impl Registry {
    /// Frees a call record and the reference on its entry.
    fn release(&self, entry: &Entry) {
        self.inner.live_records.fetch_sub(1, Ordering::Relaxed);
        self.drop_reference(entry);
    }

    /// Drops a reference on an entry, waking an `unregister` waiting for the last one.
    fn drop_reference(&self, entry: &Entry) {
        if entry.inflight.fetch_sub(1, Ordering::SeqCst) == 1 && entry.unregistering.load(Ordering::SeqCst) {
            let _guard = self.inner.idle_lock.lock();
            self.inner.idle.notify_all();
        }
    }

    /// Runs `op` through the callback list, calling `perform` when no pre callback stopped it.
    /// `perform` returns the operation's status and the post `Object`.
    pub(crate) fn dispatch(
        &self,
        caller: &Caller,
        op: &mut Operation,
        perform: impl FnOnce(&mut Operation) -> (NtStatus, Option<ObjectId>),
    ) -> Outcome {
        let list = self.inner.callbacks.read().clone();
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
        let post_class = pre_class.post_class().expect("every dispatched operation has a post class");
        let key_object = Some(op.object());
        let mut records: Vec<Record> = Vec::with_capacity(list.len() - start);
        let mut stopped = None;
        for entry in &list[start..] {
            // Take the reference *before* looking at the unregistering mark: `unregister` sets
            // the mark and then waits for `inflight` to drop to zero, so (both SeqCst) either
            // it sees this reference and waits, or this sees the mark and skips the entry.
            // Checking the mark first left a window in which `unregister` could return and
            // the callback still be called.
            entry.inflight.fetch_add(1, Ordering::SeqCst);
            if entry.unregistering.load(Ordering::SeqCst) {
                self.drop_reference(entry);
                continue;
            }
            if self.inner.live_records.fetch_add(1, Ordering::Relaxed) >= self.inner.options.max_call_records {
                self.inner.live_records.fetch_sub(1, Ordering::Relaxed);
                self.drop_reference(entry);
                stopped = Some(NtStatus::STATUS_INSUFFICIENT_RESOURCES);
                break;
            }
            let mut pre = PreInfo { op: &mut *op, call_context: None, object_context: self.object_context(entry.cookie, key_object) };
            let cx = CallbackCx { registry: self, caller, entry };
            let mut status = entry.callback.notify(&cx, pre_class, Argument::Pre(&mut pre));
            if pre_class == RegNotifyClass::RegNtPreKeyHandleClose {
                status = NtStatus::STATUS_SUCCESS;
            }
            let call_context = pre.call_context.take();
            if !status.is_success() {
                self.release(entry);
                stopped = Some(status);
                break;
            }
            records.push(Record { entry: entry.clone(), call_context });
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
        for record in records.into_iter().rev() {
            post.call_context = record.call_context;
            post.object_context = self.object_context(record.entry.cookie, post.object);
            let before = post.return_status;
            let cx = CallbackCx { registry: self, caller, entry: &record.entry };
            let result = record.entry.callback.notify(&cx, post_class, Argument::Post(&mut post));
            if result == NtStatus::STATUS_CALLBACK_BYPASS {
                post.status = post.return_status;
            } else if !self.inner.options.return_status_without_bypass {
                post.return_status = before;
            }
            post.call_context = None;
            post.object_context = None;
            self.release(&record.entry);
        }
        Outcome { status: post.return_status }
    }
}
