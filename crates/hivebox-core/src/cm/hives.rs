//! Hives in the registry: load (mount), unload, save, restore and replace.
//!
//! A hive is a subtree with its own store. Hives are mounted directly below the master keys
//! `\REGISTRY\MACHINE` and `\REGISTRY\USER`, as `RegLoadKey` allows. What a hive is stored in
//! (a regf file and its log, or memory) is the caller's business: it hands in the hive's
//! contents and a [`Storage`].

use super::callback::Operation;
use super::watch::{Fired, deliver};
use super::{Caller, Handle, HiveSlot, KeyObject, ObjectId, Registry, State};
use crate::NtStatus;
use crate::access::{REG_NOTIFY_CHANGE_LAST_SET, REG_NOTIFY_CHANGE_NAME};
use crate::storage::{KeyImage, Mutation, Storage};
use crate::tree::{KeyId, Tree};

fn status_of<T>(r: &Result<T, NtStatus>) -> NtStatus {
    match r {
        Ok(_) => NtStatus::STATUS_SUCCESS,
        Err(s) => *s,
    }
}

/// True if an open handle refers to a key in the subtree at `root` (`root` itself counted
/// unless `below_only`).
fn handles_within(st: &State, root: KeyId, below_only: bool) -> bool {
    st.handles.iter().any(|(_, h)| {
        st.objects.get(h.object.0).is_some_and(|o| {
            !st.tree.is_deleted(o.key) && st.tree.is_within(o.key, root) && !(below_only && o.key == root)
        })
    })
}

fn is_hive_root(tree: &Tree, key: KeyId) -> bool {
    let hive = tree.hive_of(key);
    hive != 0 && tree.parent(key).is_none_or(|p| tree.hive_of(p) != hive)
}

impl Registry {
    /// `NtLoadKey`: mounts a hive with contents `image`, persisting to `storage`, at `path`
    /// (a native path directly below `\REGISTRY\MACHINE` or `\REGISTRY\USER`, which must not
    /// exist yet). `source_file` is what callbacks are told it comes from.
    pub fn load_key(
        &self,
        caller: &Caller,
        path: &str,
        source_file: &str,
        image: KeyImage,
        storage: Box<dyn Storage>,
    ) -> Result<(), NtStatus> {
        let mut op = Operation::LoadKey {
            object: self.inner.root_object,
            key_name: path.to_owned(),
            source_file: source_file.to_owned(),
        };
        let mut pending = Some((image, storage));
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::LoadKey { key_name, .. } = op else { unreachable!("the operation stays a load") };
            let mut fired = Fired::new();
            let mut st = self.inner.state.lock();
            let r = (|| {
                let (parent, name) =
                    super::mount_point(&st.tree, key_name).map_err(|_| NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD)?;
                if st.tree.hive_of(parent) != 0 || st.tree.parent(parent) != Some(st.tree.root()) {
                    return Err(NtStatus::STATUS_INVALID_PARAMETER);
                }
                if st.tree.child(parent, &name).is_some() {
                    return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
                }
                let (image, storage) = pending.take().ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
                let slot = st.hives.iter().position(Option::is_none).unwrap_or(st.hives.len());
                let hive = slot as u32 + 1;
                let root = st.tree.graft(parent, &name, image, hive).map_err(|_| NtStatus::STATUS_REGISTRY_CORRUPT)?;
                if slot == st.hives.len() {
                    st.hives.push(None);
                }
                st.hives[slot] = Some(HiveSlot { root, storage, replaced: false });
                st.version.bump();
                st.fire(parent, REG_NOTIFY_CHANGE_NAME, &mut fired);
                Ok(())
            })();
            drop(st);
            deliver(fired);
            (status_of(&r), None)
        });
        outcome.status.ok()
    }

    /// `NtUnloadKey`: flushes the hive mounted at `path` to its store and unmounts it. Fails
    /// with `STATUS_CANNOT_DELETE` while a handle to a key in it is open, and with
    /// `STATUS_INVALID_PARAMETER` if `path` is not a hive's root.
    pub fn unload_key(&self, caller: &Caller, path: &str) -> Result<(), NtStatus> {
        let object = {
            let mut st = self.inner.state.lock();
            let (parent, name) =
                super::mount_point(&st.tree, path).map_err(|_| NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD)?;
            let key = st.tree.child(parent, &name).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
            if !is_hive_root(&st.tree, key) {
                return Err(NtStatus::STATUS_INVALID_PARAMETER);
            }
            if handles_within(&st, key, false) {
                return Err(NtStatus::STATUS_CANNOT_DELETE);
            }
            ObjectId(st.objects.insert(KeyObject {
                key,
                handles: 0,
                refs: 1,
                contexts: Vec::new(),
                permanent: false,
                txn: None,
            }))
        };
        let mut op = Operation::UnLoadKey { object };
        let outcome = self.dispatch(caller, &mut op, |_| {
            let mut fired = Fired::new();
            let mut st = self.inner.state.lock();
            let now = self.now();
            let r = (|| {
                let key = st.objects.get(object.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?.key;
                if st.tree.is_deleted(key) {
                    return Err(NtStatus::STATUS_KEY_DELETED);
                }
                if handles_within(&st, key, false) {
                    return Err(NtStatus::STATUS_CANNOT_DELETE);
                }
                let hive = st.tree.hive_of(key) as usize;
                let State { tree, hives, .. } = &mut *st;
                let slot = hives.get_mut(hive - 1).and_then(Option::take).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
                let mut storage = slot.storage;
                if let Err(e) = storage.flush(&|| tree.image_at(key)) {
                    hives[hive - 1] = Some(HiveSlot { root: key, storage, replaced: slot.replaced });
                    return Err(e.status());
                }
                let parent = tree.parent(key);
                let parent_time = parent.map(|p| tree.node(p).last_write);
                for w in st.watches.iter().map(|(id, _)| id).collect::<Vec<_>>() {
                    let within = st.watches.get(w).is_some_and(|w| st.tree.is_within(w.key, key));
                    if within {
                        st.complete(w, NtStatus::STATUS_KEY_DELETED, &mut fired);
                    }
                }
                st.tree.prune(key, now);
                st.version.bump();
                if let (Some(p), Some(t)) = (parent, parent_time) {
                    st.tree.node_mut(p).last_write = t;
                    st.fire(p, REG_NOTIFY_CHANGE_NAME, &mut fired);
                }
                Ok(())
            })();
            drop(st);
            deliver(fired);
            (status_of(&r), None)
        });
        self.dereference_object(object);
        outcome.status.ok()
    }

    /// `NtSaveKey`: the persistent contents of the key behind `handle` and its subtree.
    pub fn save_key(&self, caller: &Caller, handle: Handle) -> Result<KeyImage, NtStatus> {
        let object = self.handle_object(handle)?;
        let mut op = Operation::SaveKey { object, result: None };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::SaveKey { result, .. } = op else { unreachable!("the operation stays a save") };
            let Ok(st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = super::ops::live_key(&st, object).map(|key| st.tree.image_at(key));
            let status = status_of(&r);
            *result = r.ok();
            (status, Some(object))
        });
        let Operation::SaveKey { result, .. } = op else { unreachable!("the operation stays a save") };
        outcome.status.ok()?;
        result.ok_or(NtStatus::STATUS_INVALID_PARAMETER)
    }

    /// `NtRestoreKey`: replaces the values and subkeys of the key behind `handle` with those
    /// of `image` (the key keeps its name). Fails with `STATUS_CANNOT_DELETE` while a handle
    /// to a key below it is open; an image with duplicate names fails with
    /// `STATUS_REGISTRY_CORRUPT` and changes nothing.
    pub fn restore_key(&self, caller: &Caller, handle: Handle, image: KeyImage) -> Result<(), NtStatus> {
        let object = self.handle_object(handle)?;
        Tree::from_image(&image).map_err(|_| NtStatus::STATUS_REGISTRY_CORRUPT)?;
        let mut op = Operation::RestoreKey { object, image };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::RestoreKey { image, .. } = op else { unreachable!("the operation stays a restore") };
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let now = self.now();
            let r = (|| {
                let key = super::ops::live_key(&st, object)?;
                if handles_within(&st, key, true) {
                    return Err(NtStatus::STATUS_CANNOT_DELETE);
                }
                let logged = image.clone();
                super::ops::persist(&mut st, key, |path| Mutation::ReplaceKey { path, image: logged, time: now })?;
                st.tree.replace_contents(key, image, now).map_err(|_| NtStatus::STATUS_REGISTRY_CORRUPT)?;
                st.fire(key, REG_NOTIFY_CHANGE_NAME | REG_NOTIFY_CHANGE_LAST_SET, &mut fired);
                Ok(())
            })();
            let r = super::ops::release(Some(caller), st, fired, r);
            (status_of(&r), Some(object))
        });
        outcome.status.ok()
    }

    /// `NtReplaceKey`: from the next time it is loaded, the hive holding the key behind
    /// `handle` is read from `new_file`, and its current file is kept as `old_file`. The live
    /// contents do not change now.
    ///
    /// The core touches no file: after the callbacks have allowed the operation, `stage` is
    /// called with the native path of the hive's root and does the staging (checks
    /// `new_file`, arranges the swap); its error is the operation's. It runs without the
    /// registry lock held.
    ///
    /// As `RegReplaceKey` documents, a key below a hive's root stands for its hive. A key in
    /// no hive (`\REGISTRY` and the master keys, which have no file) fails with
    /// `STATUS_INVALID_PARAMETER` (hivebox's choice: Windows has no such key to refuse). A
    /// second replace of a hive fails with `STATUS_FILE_RENAMED` until the hive is loaded
    /// again, as Windows refuses a hive marked `HIVE_HAS_BEEN_REPLACED`.
    pub fn replace_key(
        &self,
        caller: &Caller,
        handle: Handle,
        new_file: &str,
        old_file: &str,
        stage: impl FnOnce(&str) -> Result<(), NtStatus>,
    ) -> Result<(), NtStatus> {
        let object = self.handle_object(handle)?;
        let mut op =
            Operation::ReplaceKey { object, old_file_name: old_file.to_owned(), new_file_name: new_file.to_owned() };
        let outcome = self.dispatch(caller, &mut op, |_| {
            // The hive is marked replaced under the lock (so a concurrent replace of it
            // fails), staged without it, and unmarked if staging fails.
            let reserved = (|| {
                let mut st = self.lock_for(object)?;
                let key = super::ops::live_key(&st, object)?;
                let index = (st.tree.hive_of(key) as usize).checked_sub(1).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
                let slot =
                    st.hives.get_mut(index).and_then(Option::as_mut).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
                if slot.replaced {
                    return Err(NtStatus::STATUS_FILE_RENAMED);
                }
                slot.replaced = true;
                let root = slot.root;
                Ok((index, root, st.tree.path(root)))
            })();
            let r = reserved.and_then(|(index, root, path)| {
                let staged = stage(&path);
                if staged.is_err() {
                    let mut st = self.inner.state.lock();
                    if let Some(Some(slot)) = st.hives.get_mut(index)
                        && slot.root == root
                    {
                        slot.replaced = false;
                    }
                }
                staged
            });
            (status_of(&r), Some(object))
        });
        outcome.status.ok()
    }
}
