//! Change notification (`NtNotifyChangeKey`): one-shot watches on a key or its subtree.

use super::{Caller, Handle, Registry, State};
use crate::NtStatus;
use crate::access::KEY_NOTIFY;
use crate::tree::KeyId;
use std::sync::Arc;

/// A pending change notification.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct WatchId(pub u64);

/// Called (outside any registry lock) when a watch completes, with its status:
/// `STATUS_SUCCESS` for a change, `STATUS_KEY_DELETED` when the watched key was deleted,
/// `STATUS_NOTIFY_CLEANUP` when its handle was closed.
pub type WatchNotifier = Arc<dyn Fn(WatchId, NtStatus) + Send + Sync>;

pub(crate) struct Watch {
    pub handle: Handle,
    pub key: KeyId,
    pub subtree: bool,
    pub filter: u32,
    pub completed: Option<NtStatus>,
    pub notifier: Option<WatchNotifier>,
}

/// Notifiers to call once the state lock is released.
pub(crate) type Fired = Vec<(WatchNotifier, WatchId, NtStatus)>;

impl State {
    /// Completes every armed watch that `kind` changes on `key` satisfy.
    pub(crate) fn fire(&mut self, key: KeyId, kind: u32, fired: &mut Fired) {
        if self.recording.is_some() {
            // A transaction's private tree: nobody watches it (its keys are not the watched ones).
            return;
        }
        let ids: Vec<u64> = self.watches.iter().filter(|(_, w)| w.completed.is_none()).map(|(id, _)| id).collect();
        for id in ids {
            let hit = {
                // Invariant: `id` was collected from `self.watches` above, under the same `&mut self`.
                let w = self.watches.get(id).expect("listed above");
                w.filter & kind != 0 && (w.key == key || (w.subtree && self.tree.is_within(key, w.key)))
            };
            if hit {
                self.complete(id, NtStatus::STATUS_SUCCESS, fired);
            }
        }
    }

    /// Completes the watches on a deleted key.
    pub(crate) fn fire_deleted(&mut self, key: KeyId, fired: &mut Fired) {
        let ids: Vec<u64> =
            self.watches.iter().filter(|(_, w)| w.completed.is_none() && w.key == key).map(|(id, _)| id).collect();
        for id in ids {
            self.complete(id, NtStatus::STATUS_KEY_DELETED, fired);
        }
    }

    pub(crate) fn complete(&mut self, id: u64, status: NtStatus, fired: &mut Fired) {
        if let Some(w) = self.watches.get_mut(id) {
            w.completed = Some(status);
            if let Some(n) = &w.notifier {
                fired.push((n.clone(), WatchId(id), status));
            }
        }
    }

    /// Cancels the watches of a closed handle.
    pub(crate) fn cancel_watches(&mut self, handle: Handle, fired: &mut Fired) {
        let ids: Vec<u64> = self.watches.iter().filter(|(_, w)| w.handle == handle).map(|(id, _)| id).collect();
        for id in ids {
            if self.watches.get(id).is_some_and(|w| w.completed.is_none()) {
                self.complete(id, NtStatus::STATUS_NOTIFY_CLEANUP, fired);
            }
        }
    }
}

pub(crate) fn deliver(fired: Fired) {
    for (notifier, id, status) in fired {
        notifier(id, status);
    }
}

impl Registry {
    /// `NtNotifyChangeKey`: arms a one-shot watch on the key behind `handle` (and its subtree
    /// when `watch_subtree`), for the `REG_NOTIFY_CHANGE_*` kinds in `filter`. Poll it with
    /// [`Registry::watch_status`] or pass a notifier. Needs `KEY_NOTIFY`.
    pub fn notify_change_key(
        &self,
        _caller: &Caller,
        handle: Handle,
        watch_subtree: bool,
        filter: u32,
        notifier: Option<WatchNotifier>,
    ) -> Result<WatchId, NtStatus> {
        let mut st = self.inner.state.lock();
        let h = st.handles.get(handle.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if h.access & KEY_NOTIFY == 0 {
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        let key = st.objects.get(h.object.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?.key;
        if st.tree.is_deleted(key) {
            return Err(NtStatus::STATUS_KEY_DELETED);
        }
        if filter & 0xF == 0 || filter & !0x1000_000F != 0 {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let id = st.watches.insert(Watch { handle, key, subtree: watch_subtree, filter, completed: None, notifier });
        Ok(WatchId(id))
    }

    /// The watch's status: `None` while it waits, `Some(status)` once it completed. A
    /// completed watch is consumed by this call.
    pub fn watch_status(&self, watch: WatchId) -> Result<Option<NtStatus>, NtStatus> {
        let mut st = self.inner.state.lock();
        let w = st.watches.get(watch.0).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        match w.completed {
            None => Ok(None),
            Some(status) => {
                st.watches.remove(watch.0);
                Ok(Some(status))
            }
        }
    }
}
