//! The registry operations, each dispatched through the callback list.
//!
//! Every public operation checks the handle's granted access first (as the object manager
//! does before the Configuration Manager sees the call), then runs the pre callbacks, performs
//! the operation under the state lock (persisting before changing memory), and runs the posts.

use super::callback::{CreateKeyInfo, Mode, Operation};
use super::watch::{Fired, deliver};
use super::{Caller, Handle, HandleEntry, KeyObject, ObjectId, Registry, State};
use crate::access::*;
use crate::name::{MAX_PATH_DEPTH, check_key_name, check_path, check_value_name, split_path};
use crate::storage::Mutation;
use crate::tree::{KeyId, KeyInfo, SubkeyInfo, Tree};
use crate::{NtStatus, RegNotifyClass, Value, ValueType};
use std::sync::atomic::Ordering;

/// Arguments of [`Registry::open_key`] besides the name.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Requested access (`KEY_*`, generic rights or `MAXIMUM_ALLOWED`).
    pub desired_access: u32,
    /// `REG_OPTION_OPEN_LINK` to open a link key itself.
    pub options: u32,
    /// `OBJ_*` attributes.
    pub attributes: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        Self { desired_access: KEY_READ, options: 0, attributes: OBJ_CASE_INSENSITIVE }
    }
}

impl OpenOptions {
    /// Open with this access.
    pub fn access(desired_access: u32) -> Self {
        Self { desired_access, ..Self::default() }
    }
}

/// Arguments of [`Registry::create_key`] besides the name.
#[derive(Clone, Debug)]
pub struct CreateOptions {
    /// Requested access.
    pub desired_access: u32,
    /// `REG_OPTION_VOLATILE`, `REG_OPTION_CREATE_LINK`, `REG_OPTION_OPEN_LINK`.
    pub options: u32,
    /// Class name of a new key.
    pub class: Option<String>,
    /// `OBJ_*` attributes.
    pub attributes: u32,
}

impl Default for CreateOptions {
    fn default() -> Self {
        Self { desired_access: KEY_ALL_ACCESS, options: 0, class: None, attributes: OBJ_CASE_INSENSITIVE }
    }
}

/// Most symbolic links followed while resolving one name.
const MAX_LINK_HOPS: u32 = 16;
/// The `SymbolicLinkValue` value of a link key.
pub(crate) const LINK_VALUE: &str = "SymbolicLinkValue";

/// Checks a relative path (as `split_path` does) and walks it from `start`.
///
/// An ASCII path that meets no link takes a faster route with the same outcome: it is walked
/// first and checked only if the walk fails. A component that matches an existing key is a
/// valid name (an ASCII name equal to a valid one, case-insensitively, is no longer and
/// holds no NUL), so a successful walk of at most `MAX_PATH_DEPTH` components means the
/// check would have passed and `walk` would have found the same key.
fn resolve(tree: &Tree, start: KeyId, path: &str, open_link_last: bool) -> Result<KeyId, NtStatus> {
    if path.is_ascii()
        && let Some(key) = walk_plain(tree, start, path)
    {
        return Ok(key);
    }
    let comps: Vec<&str> = split_path(path).map_err(|e| e.status())?;
    walk(tree, start, &comps, open_link_last, 0)
}

/// Walks an ASCII path unchecked; `None` if a component is missing (or empty), a link is
/// met, or the path is deeper than `MAX_PATH_DEPTH`.
fn walk_plain(tree: &Tree, start: KeyId, path: &str) -> Option<KeyId> {
    let trimmed = path.strip_suffix('\\').unwrap_or(path);
    if trimmed.is_empty() {
        return Some(start);
    }
    let mut cur = start;
    for (depth, component) in trimmed.as_bytes().split(|&b| b == b'\\').enumerate() {
        if depth >= MAX_PATH_DEPTH {
            return None;
        }
        cur = tree.child_ascii(cur, component)?;
        if tree.node(cur).link {
            return None;
        }
    }
    Some(cur)
}

fn walk(tree: &Tree, start: KeyId, comps: &[&str], open_link_last: bool, hops: u32) -> Result<KeyId, NtStatus> {
    let mut cur = start;
    for (i, c) in comps.iter().enumerate() {
        let next = tree.child(cur, c).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
        let last = i + 1 == comps.len();
        if tree.node(next).link && !(last && open_link_last) {
            if hops >= MAX_LINK_HOPS {
                return Err(NtStatus::STATUS_REPARSE_POINT_NOT_RESOLVED);
            }
            let target = link_target(tree, next)?;
            let mut all: Vec<&str> = target.split('\\').skip(2).collect();
            all.extend_from_slice(&comps[i + 1..]);
            return walk(tree, tree.root(), &all, open_link_last, hops + 1);
        }
        cur = next;
    }
    Ok(cur)
}

fn link_target(tree: &Tree, link: KeyId) -> Result<String, NtStatus> {
    let value = tree.value(link, LINK_VALUE).ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
    if value.ty != ValueType::REG_LINK {
        return Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    }
    let target = value.as_string().map_err(|_| NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)?;
    let rest = target.get(..9).filter(|p| p.eq_ignore_ascii_case("\\REGISTRY"));
    if rest.is_none()
        || !(target.len() == 9 || target[9..].starts_with('\\'))
        || split_path(target[9..].trim_start_matches('\\')).is_err()
    {
        return Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    }
    Ok(target)
}

fn check_access(tree: &Tree, key: KeyId, caller: &Caller, attributes: u32, desired: u32) -> Result<u32, NtStatus> {
    let mut granted = map_generic(desired);
    let checked = caller.mode == Mode::User || attributes & OBJ_FORCE_ACCESS_CHECK != 0;
    if checked && !caller.token.system {
        let reserved = tree.node(key).system_only;
        if reserved & granted != 0 {
            if desired & MAXIMUM_ALLOWED != 0 {
                granted &= !reserved;
            } else {
                return Err(NtStatus::STATUS_ACCESS_DENIED);
            }
        }
    }
    Ok(granted)
}

pub(crate) fn live_key(st: &State, object: ObjectId) -> Result<KeyId, NtStatus> {
    st.check_txn_active(object)?;
    let key = st.objects.get(object.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?.key;
    if st.tree.is_deleted(key) { Err(NtStatus::STATUS_KEY_DELETED) } else { Ok(key) }
}

/// Releases the state lock, wakes the watchers, then waits until the changes the operation
/// logged are durable (group commit: other writers append while this one waits), or leaves
/// that wait to a caller that defers its syncs. A failed sync fails the operation; the store
/// refuses later writes.
pub(crate) fn release<T>(
    caller: Option<&Caller>,
    mut st: impl std::ops::DerefMut<Target = State>,
    fired: Fired,
    r: Result<T, NtStatus>,
) -> Result<T, NtStatus> {
    let pending = std::mem::take(&mut st.pending);
    drop(st);
    deliver(fired);
    if let Some(d) = caller.and_then(|c| c.deferred.as_ref()) {
        d.0.lock().extend(pending);
        return r;
    }
    for p in pending {
        p.wait().map_err(|e| e.status())?;
    }
    r
}

/// Hands a change of `key` to its hive's store (nothing for volatile keys). Master keys have
/// no store: a persistent change to one is refused, as Windows refuses keys directly in HKLM.
pub(crate) fn persist(st: &mut State, key: KeyId, mutation: impl FnOnce(String) -> Mutation) -> Result<(), NtStatus> {
    let volatile = st.tree.node(key).volatile;
    if let Some(t) = st.recording {
        // In a transaction: recorded, for the commit to apply (a volatile change could not be).
        if volatile {
            return Err(NtStatus::STATUS_INVALID_PARAMETER);
        }
        let hive = st.tree.hive_of(key);
        let State { tree, hives, txns, .. } = st;
        let slot = hive_slot(hives, hive).ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
        let m = mutation(tree.relative_path(slot.root, key));
        txns.get_mut(&t).ok_or(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE)?.log.push((hive, m));
        return Ok(());
    }
    st.version.bump();
    if volatile {
        return Ok(());
    }
    let hive = st.tree.hive_of(key);
    let State { tree, hives, .. } = st;
    let slot = hive_slot(hives, hive).ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
    let m = mutation(tree.relative_path(slot.root, key));
    slot.storage.append(&m).map_err(|e| e.status())?;
    if let Some(p) = slot.storage.pending() {
        st.pending.push(p);
    }
    Ok(())
}

fn hive_slot(hives: &mut [Option<super::HiveSlot>], hive: u32) -> Option<&mut super::HiveSlot> {
    hives.get_mut((hive as usize).checked_sub(1)?)?.as_mut()
}

/// The hive-relative path of a new subkey `name` of `parent`.
fn child_path(parent_path: String, name: &str) -> String {
    if parent_path.is_empty() { name.to_owned() } else { format!("{parent_path}\\{name}") }
}

/// Creating, deleting or renaming a volatile subkey writes its parent's last write time; when
/// the parent is persistent that change is persistent too (the subkey's own mutation, which
/// would carry it, is never logged).
fn persist_parent_time(st: &mut State, parent: KeyId, now: u64) -> Result<(), NtStatus> {
    persist(st, parent, |path| Mutation::SetLastWrite { path, time: now })
}

/// Checks the new name of a rename: one key name component. A separator in it would make a
/// key whose name is not a path component (unreachable by name, and logged under a path that
/// replays to a different key).
fn check_new_name(name: &str) -> Result<(), NtStatus> {
    check_key_name(name).map_err(|e| e.status())?;
    if name.contains('\\') {
        return Err(NtStatus::STATUS_OBJECT_NAME_INVALID);
    }
    Ok(())
}

/// The part of an absolute name below `\REGISTRY`.
fn below_registry(name: &str) -> Result<&str, NtStatus> {
    let head = name.get(..9).filter(|p| p.eq_ignore_ascii_case("\\REGISTRY"));
    match (head, name.get(9..)) {
        (Some(_), Some("")) => Ok(""),
        (Some(_), Some(rest)) if rest.starts_with('\\') => Ok(&rest[1..]),
        _ => Err(NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD),
    }
}

fn status_of<T>(r: Result<T, NtStatus>) -> NtStatus {
    match r {
        Ok(_) => NtStatus::STATUS_SUCCESS,
        Err(s) => s,
    }
}

/// [`status_of`] without consuming the result (so its value can be moved out afterwards).
fn status_ref<T>(r: &Result<T, NtStatus>) -> NtStatus {
    r.as_ref().err().copied().unwrap_or(NtStatus::STATUS_SUCCESS)
}

impl Registry {
    fn handle_object_with(&self, handle: Handle, need: u32) -> Result<ObjectId, NtStatus> {
        Self::handle_object_in(&self.inner.state.lock(), handle, need)
    }

    fn handle_object_in(st: &State, handle: Handle, need: u32) -> Result<ObjectId, NtStatus> {
        let h = st.handles.get(handle.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        if h.access & need != need {
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        Ok(h.object)
    }

    /// True when no callback is registered. An operation then has no observer, so the hot
    /// paths below perform it directly, exactly as `dispatch` would with the empty list, but
    /// without building its `Operation` (copies of the names) or taking the lock twice.
    fn unfiltered(&self) -> bool {
        self.inner.callbacks.read().is_empty()
    }

    /// [`Registry::open_key`] with no callback registered: `create_info`, `perform` and
    /// `finish_open` in one critical section, without copying the name. The checks and their
    /// precedence are the same: syntax and root handle, the name, the root key, the walk, access.
    fn open_key_unfiltered(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &OpenOptions,
    ) -> Option<Result<Handle, NtStatus>> {
        let mut st = self.inner.state.lock();
        // A root key bound to a transaction: the full path works in the transaction's tree.
        if let Some(h) = root
            && st.handles.get(h.0).is_some_and(|e| st.bound_txn(e.object).is_some())
        {
            return None;
        }
        Some((|| {
            let (root_object, remaining) = match root {
                Some(h) => {
                    if name.starts_with('\\') {
                        return Err(NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD);
                    }
                    (st.handles.get(h.0).map(|h| h.object).ok_or(NtStatus::STATUS_INVALID_HANDLE)?, name)
                }
                None => (self.inner.root_object, below_registry(name)?),
            };
            let root_key = match live_key(&st, root_object) {
                Ok(key) => key,
                Err(e) => {
                    // `create_info` checks the name before the root key is looked at.
                    check_path(remaining).map_err(|n| n.status())?;
                    return Err(e);
                }
            };
            let open_link = opts.options & REG_OPTION_OPEN_LINK != 0 || opts.attributes & OBJ_OPENLINK != 0;
            // `resolve` checks the name before reporting a failed walk, so a bad name still wins.
            let key = resolve(&st.tree, root_key, remaining, open_link)?;
            let granted = check_access(&st.tree, key, caller, opts.attributes, opts.desired_access)?;
            // `new_object` then `finish_open`: one handle, the result object's reference dropped.
            let object = ObjectId(st.objects.insert(KeyObject {
                key,
                handles: 1,
                refs: 0,
                contexts: Vec::new(),
                permanent: false,
                txn: None,
            }));
            Ok(Handle(st.handles.insert(HandleEntry { object, access: granted })))
        })())
    }

    /// Splits a name into its root object and the part relative to it.
    fn root_and_remaining(&self, root: Option<Handle>, name: &str) -> Result<(ObjectId, String), NtStatus> {
        let remaining = match root {
            Some(h) => {
                if name.starts_with('\\') {
                    return Err(NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD);
                }
                let object = self.handle_object(h)?;
                check_path(name).map_err(|e| e.status())?;
                return Ok((object, name.to_owned()));
            }
            None => below_registry(name)?.to_owned(),
        };
        check_path(&remaining).map_err(|e| e.status())?;
        Ok((self.inner.root_object, remaining))
    }

    fn new_object(st: &mut State, key: KeyId) -> ObjectId {
        let txn = st.recording;
        ObjectId(st.objects.insert(KeyObject { key, handles: 0, refs: 1, contexts: Vec::new(), permanent: false, txn }))
    }

    /// Turns the result object of a successful create/open into a handle for the caller.
    fn finish_open(&self, status: NtStatus, info: &CreateKeyInfo) -> Result<Handle, NtStatus> {
        if !status.is_success() {
            return Err(status);
        }
        let object = info.result_object.ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        let mut st = self.inner.state.lock();
        let obj = st.objects.get_mut(object.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        obj.handles += 1;
        obj.refs = obj.refs.saturating_sub(1);
        Ok(Handle(st.handles.insert(HandleEntry { object, access: info.granted_access })))
    }

    /// The create/open information for a name: the caller's arguments (an open's have no class).
    fn create_info(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
    ) -> Result<CreateKeyInfo, NtStatus> {
        let (root_object, remaining_name) = self.root_and_remaining(root, name)?;
        Ok(CreateKeyInfo {
            complete_name: name.to_owned(),
            root_object,
            remaining_name,
            options: opts.options,
            class: opts.class.clone(),
            desired_access: opts.desired_access,
            granted_access: 0,
            disposition: None,
            result_object: None,
            attributes: opts.attributes,
            version: 1,
            check_access_mode: caller.mode,
            transaction: None,
        })
    }

    /// `NtOpenKeyEx`: opens an existing key by absolute name (`root = None`, name starting
    /// `\REGISTRY`) or relative to an open key.
    pub fn open_key(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &OpenOptions,
    ) -> Result<Handle, NtStatus> {
        self.open_key_in(caller, root, name, opts, None)
    }

    /// `RegOpenKeyTransacted`: [`Registry::open_key`] in transaction `txn`; the handle is bound
    /// to it.
    pub fn open_key_transacted(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &OpenOptions,
        txn: super::TxnId,
    ) -> Result<Handle, NtStatus> {
        self.open_key_in(caller, root, name, opts, Some(txn))
    }

    fn open_key_in(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &OpenOptions,
        txn: Option<super::TxnId>,
    ) -> Result<Handle, NtStatus> {
        if self.unfiltered()
            && txn.is_none()
            && let Some(r) = self.open_key_unfiltered(caller, root, name, opts)
        {
            return r;
        }
        let fields = CreateOptions {
            desired_access: opts.desired_access,
            options: opts.options,
            class: None,
            attributes: opts.attributes,
        };
        let mut info = self.create_info(caller, root, name, &fields)?;
        info.transaction = txn;
        let mut op = Operation::OpenKey(info);
        let outcome = self.dispatch(caller, &mut op, |op| {
            // Invariant: `op` is the `Operation::OpenKey` built just above.
            let info = op.create_info().expect("open carries create info");
            let Ok(mut st) = self.lock_for_open(info.transaction, info.root_object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, None);
            };
            let r = (|| {
                let root_key = live_key(&st, info.root_object)?;
                let open_link = info.options & REG_OPTION_OPEN_LINK != 0 || info.attributes & OBJ_OPENLINK != 0;
                let key = resolve(&st.tree, root_key, &info.remaining_name, open_link)?;
                let granted = check_access(&st.tree, key, caller, info.attributes, info.desired_access)?;
                let object = Self::new_object(&mut st, key);
                info.granted_access = granted;
                info.result_object = Some(object);
                Ok(object)
            })();
            (status_of(r), r.ok())
        });
        let Operation::OpenKey(info) = &op else { unreachable!("the operation stays an open") };
        self.finish_open(outcome.status, info)
    }

    /// `NtCreateKey`: creates the last component of `name` (its parent must exist) or opens
    /// it if it exists, reporting which.
    pub fn create_key(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
    ) -> Result<(Handle, Disposition), NtStatus> {
        self.create_key_in(caller, root, name, opts, None)
    }

    /// `RegCreateKeyTransacted`: [`Registry::create_key`] in transaction `txn`; the handle is
    /// bound to it.
    pub fn create_key_transacted(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
        txn: super::TxnId,
    ) -> Result<(Handle, Disposition), NtStatus> {
        self.create_key_in(caller, root, name, opts, Some(txn))
    }

    fn create_key_in(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
        txn: Option<super::TxnId>,
    ) -> Result<(Handle, Disposition), NtStatus> {
        let mut info = self.create_info(caller, root, name, opts)?;
        info.transaction = txn;
        let mut op = Operation::CreateKey(info);
        let outcome = self.dispatch(caller, &mut op, |op| {
            // Invariant: `op` is the `Operation::CreateKey` built just above.
            let info = op.create_info().expect("create carries create info");
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for_open(info.transaction, info.root_object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, None);
            };
            let r = Self::perform_create(&mut st, caller, info, self.now(), &mut fired);
            let r = release(Some(caller), st, fired, r);
            (status_of(r), r.ok())
        });
        let Operation::CreateKey(info) = &op else { unreachable!("the operation stays a create") };
        let disposition = info.disposition.unwrap_or(Disposition::OpenedExistingKey);
        self.finish_open(outcome.status, info).map(|h| (h, disposition))
    }

    fn perform_create(
        st: &mut State,
        caller: &Caller,
        info: &mut CreateKeyInfo,
        now: u64,
        fired: &mut Fired,
    ) -> Result<ObjectId, NtStatus> {
        let root_key = live_key(st, info.root_object)?;
        let comps: Vec<&str> = split_path(&info.remaining_name).map_err(|e| e.status())?;
        let open_link = info.options & REG_OPTION_OPEN_LINK != 0 || info.attributes & OBJ_OPENLINK != 0;
        let (key, disposition) = match comps.split_last() {
            None => (root_key, Disposition::OpenedExistingKey),
            Some((last, parents)) => {
                let parent = walk(&st.tree, root_key, parents, false, 0)?;
                match st.tree.child(parent, last) {
                    Some(existing) => {
                        let key = if st.tree.node(existing).link && !open_link {
                            walk(&st.tree, parent, &[last], false, 0)?
                        } else {
                            existing
                        };
                        (key, Disposition::OpenedExistingKey)
                    }
                    None => {
                        check_key_name(last).map_err(|e| e.status())?;
                        if st.tree.depth(parent) + 1 > MAX_PATH_DEPTH {
                            return Err(NtStatus::STATUS_NAME_TOO_LONG);
                        }
                        let checked = caller.mode == Mode::User || info.attributes & OBJ_FORCE_ACCESS_CHECK != 0;
                        if checked && !caller.token.system && st.tree.node(parent).system_only & KEY_CREATE_SUB_KEY != 0
                        {
                            return Err(NtStatus::STATUS_ACCESS_DENIED);
                        }
                        let volatile = info.options & REG_OPTION_VOLATILE != 0;
                        if volatile && st.recording.is_some() {
                            return Err(NtStatus::STATUS_INVALID_PARAMETER);
                        }
                        if st.tree.node(parent).volatile && !volatile {
                            return Err(NtStatus::STATUS_CHILD_MUST_BE_VOLATILE);
                        }
                        let link = info.options & REG_OPTION_CREATE_LINK != 0;
                        if !volatile {
                            let class = info.class.clone().filter(|c| !c.is_empty());
                            persist(st, parent, |path| Mutation::CreateKey {
                                path: child_path(path, last),
                                class,
                                link,
                                time: now,
                            })?;
                        } else {
                            persist_parent_time(st, parent, now)?;
                        }
                        let id = st.tree.insert_child(parent, last, info.class.clone(), now);
                        let node = st.tree.node_mut(id);
                        node.volatile = volatile;
                        node.link = link;
                        st.fire(parent, REG_NOTIFY_CHANGE_NAME, fired);
                        (id, Disposition::CreatedNewKey)
                    }
                }
            }
        };
        let granted = check_access(&st.tree, key, caller, info.attributes, info.desired_access)?;
        let object = Self::new_object(st, key);
        info.granted_access = granted;
        info.disposition = Some(disposition);
        info.result_object = Some(object);
        Ok(object)
    }

    /// `RegCreateKeyEx`: creates every missing level of a relative or absolute path, one level
    /// at a time (so filters see each level's create relative to the previous one).
    pub fn create_key_path(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
    ) -> Result<(Handle, Disposition), NtStatus> {
        self.create_key_path_in(caller, root, name, opts, None)
    }

    /// [`Registry::create_key_path`] in transaction `txn`.
    pub fn create_key_path_transacted(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
        txn: super::TxnId,
    ) -> Result<(Handle, Disposition), NtStatus> {
        self.create_key_path_in(caller, root, name, opts, Some(txn))
    }

    fn create_key_path_in(
        &self,
        caller: &Caller,
        root: Option<Handle>,
        name: &str,
        opts: &CreateOptions,
        txn: Option<super::TxnId>,
    ) -> Result<(Handle, Disposition), NtStatus> {
        let relative = match root {
            Some(_) => name.to_owned(),
            None => self.root_and_remaining(None, name)?.1,
        };
        let comps: Vec<&str> = split_path(&relative).map_err(|e| e.status())?;
        if comps.is_empty() {
            return self.create_key_in(caller, root, name, opts, txn);
        }
        let step_opts = CreateOptions { desired_access: KEY_CREATE_SUB_KEY | KEY_QUERY_VALUE, ..opts.clone() };
        let mut parent: Option<Handle> = None;
        for (i, comp) in comps.iter().enumerate() {
            let last = i + 1 == comps.len();
            let o = if last { opts } else { &step_opts };
            let r = match (parent, root) {
                (Some(p), _) | (None, Some(p)) => self.create_key_in(caller, Some(p), comp, o, txn),
                (None, None) => self.create_key_in(caller, None, &format!("\\REGISTRY\\{comp}"), o, txn),
            };
            if let Some(p) = parent.take() {
                let _ = self.close_key(caller, p);
            }
            let (h, d) = r?;
            if last {
                return Ok((h, d));
            }
            parent = Some(h);
        }
        Err(NtStatus::STATUS_INVALID_PARAMETER)
    }

    /// `NtClose` on a key handle. When the last handle to the object closes, callbacks get
    /// `RegNtPreKeyHandleClose`, then `RegNtCallbackObjectContextCleanup` for each object
    /// context, then `RegNtPostKeyHandleClose`. Watches on the handle complete with
    /// `STATUS_NOTIFY_CLEANUP`.
    pub fn close_key(&self, caller: &Caller, handle: Handle) -> Result<(), NtStatus> {
        let mut fired = Fired::new();
        let unfiltered = self.unfiltered();
        let (object, last) = {
            let mut st = self.inner.state.lock();
            let h = st.handles.remove(handle.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
            st.cancel_watches(handle, &mut fired);
            let obj = st.objects.get_mut(h.object.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
            obj.handles = obj.handles.saturating_sub(1);
            let last = obj.handles == 0 && !obj.permanent;
            if last && unfiltered && obj.refs == 0 && self.inner.contexts_in_use.load(Ordering::Relaxed) == 0 {
                // No callback to tell and no context to clean up: the dispatch below would
                // only come back to remove the object, so remove it now.
                st.objects.remove(h.object.0);
                drop(st);
                deliver(fired);
                return Ok(());
            }
            (h.object, last)
        };
        deliver(fired);
        if !last {
            return Ok(());
        }
        let mut cleaned = false;
        let mut op = Operation::KeyHandleClose { object };
        self.dispatch(caller, &mut op, |_| {
            self.cleanup_contexts(caller, object);
            cleaned = true;
            (NtStatus::STATUS_SUCCESS, Some(object))
        });
        if !cleaned {
            self.cleanup_contexts(caller, object);
        }
        let mut st = self.inner.state.lock();
        if st.objects.get(object.0).is_some_and(|o| o.handles == 0 && o.refs == 0) {
            st.objects.remove(object.0);
        }
        Ok(())
    }

    fn cleanup_contexts(&self, caller: &Caller, object: ObjectId) {
        // No object holds a context (the common case): skip the state lock, as `object_context` does.
        if self.inner.contexts_in_use.load(Ordering::Relaxed) == 0 {
            return;
        }
        let contexts = {
            let mut st = self.inner.state.lock();
            match st.objects.get_mut(object.0) {
                Some(obj) if !obj.contexts.is_empty() => std::mem::take(&mut obj.contexts),
                _ => return,
            }
        };
        self.inner.contexts_in_use.fetch_sub(contexts.len(), Ordering::Relaxed);
        self.send_cleanups(caller, object, contexts);
    }

    /// Sends `RegNtCallbackObjectContextCleanup` for contexts already taken off `object` (and
    /// already subtracted from `contexts_in_use`).
    pub(crate) fn send_cleanups(
        &self,
        caller: &Caller,
        object: ObjectId,
        contexts: Vec<(super::Cookie, super::ObjectContext)>,
    ) {
        let list = self.inner.callbacks.read().clone();
        for (cookie, object_context) in contexts {
            if let Some(entry) = list.iter().find(|e| e.cookie == cookie) {
                let cx = super::CallbackCx { registry: self, caller, entry };
                entry.callback.notify(
                    &cx,
                    RegNotifyClass::RegNtCallbackObjectContextCleanup,
                    super::Argument::ContextCleanup { object, object_context },
                );
            }
        }
    }

    /// `NtDeleteKey`: deletes a key that has no subkeys (needs `DELETE`). Open handles to it
    /// then fail with `STATUS_KEY_DELETED`.
    pub fn delete_key(&self, caller: &Caller, handle: Handle) -> Result<(), NtStatus> {
        let object = self.handle_object_with(handle, DELETE)?;
        let mut op = Operation::DeleteKey { object };
        let outcome = self.dispatch(caller, &mut op, |_| {
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let now = self.now();
            let r = (|| {
                let key = live_key(&st, object)?;
                if !st.tree.node(key).children.is_empty() || st.tree.depth(key) <= 2 {
                    return Err(NtStatus::STATUS_CANNOT_DELETE);
                }
                persist(&mut st, key, |path| Mutation::DeleteKey { path, time: now })?;
                let parent = st.tree.parent(key);
                if let Some(p) = parent
                    && st.tree.node(key).volatile
                {
                    persist_parent_time(&mut st, p, now)?;
                }
                st.fire_deleted(key, &mut fired);
                st.tree.remove(key, now);
                if let Some(p) = parent {
                    st.fire(p, REG_NOTIFY_CHANGE_NAME, &mut fired);
                }
                Ok(())
            })();
            let r = release(Some(caller), st, fired, r);
            (status_of(r), Some(object))
        });
        outcome.status.ok()
    }

    /// `NtSetValueKey` (needs `KEY_SET_VALUE`).
    pub fn set_value(&self, caller: &Caller, handle: Handle, name: &str, value: Value) -> Result<(), NtStatus> {
        check_value_name(name).map_err(|e| e.status())?;
        let object = self.handle_object_with(handle, KEY_SET_VALUE)?;
        let mut op = Operation::SetValueKey { object, value_name: name.to_owned(), title_index: 0, value };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::SetValueKey { value_name, value, .. } = op else { unreachable!() };
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let now = self.now();
            let r = (|| {
                check_value_name(value_name).map_err(|e| e.status())?;
                let key = live_key(&st, object)?;
                persist(&mut st, key, |path| Mutation::SetValue {
                    path,
                    name: value_name.clone(),
                    value: value.clone(),
                    time: now,
                })?;
                st.tree.set_value(key, value_name, value.clone(), now);
                st.fire(key, REG_NOTIFY_CHANGE_LAST_SET, &mut fired);
                Ok(())
            })();
            let r = release(Some(caller), st, fired, r);
            (status_of(r), Some(object))
        });
        outcome.status.ok()
    }

    /// `NtDeleteValueKey` (needs `KEY_SET_VALUE`).
    pub fn delete_value(&self, caller: &Caller, handle: Handle, name: &str) -> Result<(), NtStatus> {
        check_value_name(name).map_err(|e| e.status())?;
        let object = self.handle_object_with(handle, KEY_SET_VALUE)?;
        let mut op = Operation::DeleteValueKey { object, value_name: name.to_owned() };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::DeleteValueKey { value_name, .. } = op else { unreachable!() };
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let now = self.now();
            let r = (|| {
                let key = live_key(&st, object)?;
                if st.tree.value(key, value_name).is_none() {
                    return Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
                }
                persist(&mut st, key, |path| Mutation::DeleteValue { path, name: value_name.clone(), time: now })?;
                st.tree.delete_value(key, value_name, now);
                st.fire(key, REG_NOTIFY_CHANGE_LAST_SET, &mut fired);
                Ok(())
            })();
            let r = release(Some(caller), st, fired, r);
            (status_of(r), Some(object))
        });
        outcome.status.ok()
    }

    /// `NtQueryValueKey` (needs `KEY_QUERY_VALUE`).
    pub fn query_value(&self, caller: &Caller, handle: Handle, name: &str) -> Result<Value, NtStatus> {
        if self.unfiltered() {
            // As below with no callback: one critical section, no copy of the name.
            let st = self.inner.state.lock();
            let object = Self::handle_object_in(&st, handle, KEY_QUERY_VALUE)?;
            if st.bound_txn(object).is_none() {
                let key = live_key(&st, object)?;
                return st.tree.value(key, name).cloned().ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
            }
        }
        let object = self.handle_object_with(handle, KEY_QUERY_VALUE)?;
        let mut op = Operation::QueryValueKey { object, value_name: name.to_owned(), result: None };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::QueryValueKey { value_name, result, .. } = op else { unreachable!() };
            let Ok(st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = live_key(&st, object)
                .and_then(|key| st.tree.value(key, value_name).cloned().ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
            let status = status_ref(&r);
            *result = r.ok();
            (status, Some(object))
        });
        let Operation::QueryValueKey { result, .. } = op else { unreachable!() };
        outcome.status.ok()?;
        result.ok_or(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND)
    }

    /// `NtEnumerateKey` (needs `KEY_ENUMERATE_SUB_KEYS`): `STATUS_NO_MORE_ENTRIES` past the end.
    pub fn enumerate_key(&self, caller: &Caller, handle: Handle, index: u32) -> Result<SubkeyInfo, NtStatus> {
        let object = self.handle_object_with(handle, KEY_ENUMERATE_SUB_KEYS)?;
        let mut op = Operation::EnumerateKey { object, index, result: None };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::EnumerateKey { index, result, .. } = op else { unreachable!() };
            let Ok(st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = live_key(&st, object)
                .and_then(|key| st.tree.subkey_at(key, *index as usize).ok_or(NtStatus::STATUS_NO_MORE_ENTRIES));
            let status = status_ref(&r);
            *result = r.ok();
            (status, Some(object))
        });
        let Operation::EnumerateKey { result, .. } = op else { unreachable!() };
        outcome.status.ok()?;
        result.ok_or(NtStatus::STATUS_NO_MORE_ENTRIES)
    }

    /// `NtEnumerateValueKey` (needs `KEY_QUERY_VALUE`): `STATUS_NO_MORE_ENTRIES` past the end.
    pub fn enumerate_value(&self, caller: &Caller, handle: Handle, index: u32) -> Result<(String, Value), NtStatus> {
        let object = self.handle_object_with(handle, KEY_QUERY_VALUE)?;
        let mut op = Operation::EnumerateValueKey { object, index, result: None };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::EnumerateValueKey { index, result, .. } = op else { unreachable!() };
            let Ok(st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = live_key(&st, object).and_then(|key| {
                st.tree
                    .value_at(key, *index as usize)
                    .map(|(n, v)| (n.to_owned(), v.clone()))
                    .ok_or(NtStatus::STATUS_NO_MORE_ENTRIES)
            });
            let status = status_ref(&r);
            *result = r.ok();
            (status, Some(object))
        });
        let Operation::EnumerateValueKey { result, .. } = op else { unreachable!() };
        outcome.status.ok()?;
        result.ok_or(NtStatus::STATUS_NO_MORE_ENTRIES)
    }

    /// `NtQueryKey(KeyFullInformation)` (needs `KEY_QUERY_VALUE`).
    pub fn query_key(&self, caller: &Caller, handle: Handle) -> Result<KeyInfo, NtStatus> {
        let object = self.handle_object_with(handle, KEY_QUERY_VALUE)?;
        let mut op = Operation::QueryKey { object, result: None };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::QueryKey { result, .. } = op else { unreachable!() };
            let Ok(st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = live_key(&st, object).map(|key| st.tree.info(key));
            let status = status_ref(&r);
            *result = r.ok();
            (status, Some(object))
        });
        let Operation::QueryKey { result, .. } = op else { unreachable!() };
        outcome.status.ok()?;
        result.ok_or(NtStatus::STATUS_INVALID_PARAMETER)
    }

    /// `NtQueryObject(ObjectNameInformation)` on a key: its full native name.
    pub fn query_key_name(&self, caller: &Caller, handle: Handle) -> Result<String, NtStatus> {
        let object = self.handle_object(handle)?;
        let mut op = Operation::QueryKeyName { object, result: None };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::QueryKeyName { result, .. } = op else { unreachable!() };
            let Ok(st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = live_key(&st, object).map(|key| st.tree.path(key));
            let status = status_ref(&r);
            *result = r.ok();
            (status, Some(object))
        });
        let Operation::QueryKeyName { result, .. } = op else { unreachable!() };
        outcome.status.ok()?;
        result.ok_or(NtStatus::STATUS_INVALID_PARAMETER)
    }

    /// `NtRenameKey` (needs `KEY_WRITE`): gives the key a new last component. The key keeps
    /// its id; a sibling with the new name fails with `STATUS_OBJECT_NAME_COLLISION`.
    pub fn rename_key(&self, caller: &Caller, handle: Handle, new_name: &str) -> Result<(), NtStatus> {
        check_new_name(new_name)?;
        let object = self.handle_object_with(handle, KEY_WRITE & !READ_CONTROL)?;
        let mut op = Operation::RenameKey { object, new_name: new_name.to_owned() };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::RenameKey { new_name, .. } = op else { unreachable!() };
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let now = self.now();
            let r = (|| {
                check_new_name(new_name)?;
                let key = live_key(&st, object)?;
                let parent = st.tree.parent(key).ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
                if st.tree.depth(key) <= 2 {
                    return Err(NtStatus::STATUS_ACCESS_DENIED);
                }
                if st.tree.child(parent, new_name).is_some_and(|c| c != key) {
                    return Err(NtStatus::STATUS_OBJECT_NAME_COLLISION);
                }
                persist(&mut st, key, |path| Mutation::RenameKey { path, new_name: new_name.clone(), time: now })?;
                if st.tree.node(key).volatile {
                    persist_parent_time(&mut st, parent, now)?;
                }
                st.tree.rename(key, new_name, now);
                st.fire(parent, REG_NOTIFY_CHANGE_NAME, &mut fired);
                Ok(())
            })();
            let r = release(Some(caller), st, fired, r);
            (status_of(r), Some(object))
        });
        outcome.status.ok()
    }

    /// `NtSetInformationKey(KeyWriteTimeInformation)` (needs `KEY_SET_VALUE`).
    pub fn set_last_write_time(&self, caller: &Caller, handle: Handle, time: u64) -> Result<(), NtStatus> {
        let object = self.handle_object_with(handle, KEY_SET_VALUE)?;
        let mut op = Operation::SetInformationKey { object, last_write: time };
        let outcome = self.dispatch(caller, &mut op, |op| {
            let Operation::SetInformationKey { last_write, .. } = op else { unreachable!() };
            let mut fired = Fired::new();
            let Ok(mut st) = self.lock_for(object) else {
                return (NtStatus::STATUS_TRANSACTION_NOT_ACTIVE, Some(object));
            };
            let r = (|| {
                let key = live_key(&st, object)?;
                persist(&mut st, key, |path| Mutation::SetLastWrite { path, time: *last_write })?;
                st.tree.node_mut(key).last_write = *last_write;
                st.fire(key, REG_NOTIFY_CHANGE_ATTRIBUTES, &mut fired);
                Ok(())
            })();
            let r = release(Some(caller), st, fired, r);
            (status_of(r), Some(object))
        });
        outcome.status.ok()
    }

    /// `NtFlushKey`: makes everything acknowledged so far durable in the store (which may
    /// checkpoint).
    pub fn flush_key(&self, caller: &Caller, handle: Handle) -> Result<(), NtStatus> {
        let object = self.handle_object(handle)?;
        let mut op = Operation::FlushKey { object };
        let outcome = self.dispatch(caller, &mut op, |_| {
            let mut st = self.inner.state.lock();
            if st.bound_txn(object).is_some() {
                // A key in a transaction: nothing of it is in a store until the commit.
                return (status_of(st.check_txn_active(object)), Some(object));
            }
            let r = live_key(&st, object).and_then(|key| {
                let hive = st.tree.hive_of(key);
                let State { tree, hives, .. } = &mut *st;
                // A master key belongs to no hive: flushing it flushes them all.
                for (i, slot) in hives.iter_mut().enumerate() {
                    if let Some(slot) = slot
                        && (hive == 0 || hive as usize == i + 1)
                    {
                        let root = slot.root;
                        slot.storage.flush(&|| tree.image_at(root)).map_err(|e| e.status())?;
                    }
                }
                Ok(())
            });
            (status_of(r), Some(object))
        });
        outcome.status.ok()
    }
}
