//! Registry transactions (`NtCreateTransaction` + `RegCreateKeyTransacted`/`RegOpenKeyTransacted`,
//! `CommitTransaction`, `RollbackTransaction`).
//!
//! A transaction begins with a private copy of the key tree. Keys opened or created *in* the
//! transaction (with [`Registry::create_key_transacted`], [`Registry::open_key_transacted`],
//! or relative to a key opened in it) are bound to it, as Windows binds a transacted handle:
//! every operation on them runs against the private tree, so their changes are seen only
//! through the transaction until it commits. The changes it makes are recorded, hive by
//! hive, as mutations.
//!
//! Commit applies the recorded changes to the registry in order, in one critical section. When
//! nothing changed outside the transaction since it began, they apply as they did inside it;
//! otherwise they are replayed onto a copy of the current tree first, and any that no longer
//! applies (a key deleted meanwhile, a name taken) fails the commit with
//! `STATUS_TRANSACTIONAL_CONFLICT`, changing nothing. Each hive's changes travel to its store in
//! one log record (a [`Mutation::Batch`]), so recovery replays all of them or none. Enlisted
//! resource managers ([`Registry::enlist_transaction`]) hear `Commit` or `Rollback`.
//!
//! Keys bound to a transaction that has ended answer `STATUS_TRANSACTION_NOT_ACTIVE` (they can
//! still be closed). Volatile keys cannot be created in a transaction, and change
//! notifications do not fire for changes inside one.

use super::watch::Fired;
use super::{ObjectId, Registry, State};
use crate::storage::Mutation;
use crate::{KeyId, NtStatus, Tree};
use parking_lot::MutexGuard;
use std::ops::{Deref, DerefMut};

/// A transaction, as `NtCreateTransaction` returns a handle to one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TxnId(pub u64);

/// What an enlisted resource manager is told when the transaction ends
/// (`TRANSACTION_NOTIFY_COMMIT` / `TRANSACTION_NOTIFY_ROLLBACK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxnOutcome {
    /// The transaction committed.
    Commit,
    /// The transaction was rolled back (explicitly, or because its commit failed).
    Rollback,
}

/// A resource manager's notification routine.
pub type Enlistment = Box<dyn FnOnce(TxnOutcome) + Send>;

pub(crate) struct Txn {
    /// The private tree; inside the state (swapped with the registry's) while an operation
    /// of the transaction runs.
    tree: Tree,
    /// `State::version` when the transaction began.
    base_version: u64,
    /// The changes made in it: (hive, mutation relative to the hive's root).
    pub(crate) log: Vec<(u32, Mutation)>,
    enlisted: Vec<Enlistment>,
}

/// The state lock, with a transaction's private tree swapped in while it is held for an
/// operation of that transaction.
pub(crate) struct StateGuard<'a> {
    st: MutexGuard<'a, State>,
    txn: Option<u64>,
}

impl Deref for StateGuard<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        &self.st
    }
}

impl DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut State {
        &mut self.st
    }
}

impl Drop for StateGuard<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.txn.take() {
            let State { tree, txns, .. } = &mut *self.st;
            if let Some(txn) = txns.get_mut(&t) {
                std::mem::swap(tree, &mut txn.tree);
            }
            self.st.recording = None;
        }
    }
}

impl State {
    /// The transaction `object` is bound to.
    pub(crate) fn bound_txn(&self, object: ObjectId) -> Option<u64> {
        self.objects.get(object.0).and_then(|o| o.txn)
    }

    /// Fails for an object bound to a transaction that has ended, and for an object from
    /// another tree (a key opened outside the transaction, or in another one, named as the
    /// root of an operation in this one) whose key is not the same key here.
    pub(crate) fn check_txn_active(&self, object: ObjectId) -> Result<(), NtStatus> {
        let bound = self.bound_txn(object);
        if let Some(t) = bound
            && !self.txns.contains_key(&t)
        {
            return Err(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE);
        }
        let Some(current) = self.recording else { return Ok(()) };
        if bound == Some(current) {
            return Ok(());
        }
        // While `current` runs, the registry's own tree is parked in its entry.
        let home = match bound {
            None => self.txns.get(&current).map(|t| &t.tree),
            Some(other) => self.txns.get(&other).map(|t| &t.tree),
        };
        let key = self.objects.get(object.0).map(|o| o.key).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        match home {
            Some(home) if same_key(home, &self.tree, key) => Ok(()),
            _ => Err(NtStatus::STATUS_TRANSACTIONAL_CONFLICT),
        }
    }
}

/// Whether `key` names the same live key in both trees (ids are shared by a tree and its copy,
/// but keys created after the copy may reuse an id for another key).
fn same_key(a: &Tree, b: &Tree, key: KeyId) -> bool {
    let (mut x, mut y) = (key, key);
    loop {
        if x.0 as usize >= a.len() || y.0 as usize >= b.len() || a.is_deleted(x) || b.is_deleted(y) {
            return false;
        }
        if a.name(x) != b.name(y) {
            return false;
        }
        match (a.parent(x), b.parent(y)) {
            (None, None) => return true,
            (Some(px), Some(py)) if px == py => (x, y) = (px, py),
            _ => return false,
        }
    }
}

impl Registry {
    /// Swaps transaction `txn`'s tree into the locked state (nothing for `None`).
    fn enter(mut st: MutexGuard<'_, State>, txn: Option<u64>) -> Result<StateGuard<'_>, NtStatus> {
        let Some(t) = txn else {
            return Ok(StateGuard { st, txn: None });
        };
        let State { tree, txns, .. } = &mut *st;
        let active = txns.get_mut(&t).ok_or(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE)?;
        std::mem::swap(tree, &mut active.tree);
        st.recording = Some(t);
        Ok(StateGuard { st, txn: Some(t) })
    }

    /// Locks the state for an operation on `object`, in its transaction if it is bound to one.
    pub(crate) fn lock_for(&self, object: ObjectId) -> Result<StateGuard<'_>, NtStatus> {
        self.lock_for_open(None, object)
    }

    /// Locks the state for a create/open relative to `root`: in `txn` if given, else in the
    /// transaction `root` is bound to (as the CM checks `CmGetBoundTransaction(RootObject)`).
    pub(crate) fn lock_for_open(&self, txn: Option<TxnId>, root: ObjectId) -> Result<StateGuard<'_>, NtStatus> {
        let st = self.inner.state.lock();
        let txn = txn.map(|t| t.0).or_else(|| st.bound_txn(root));
        Self::enter(st, txn)
    }

    /// `NtCreateTransaction`: a new transaction seeing the registry as it is now.
    pub fn begin_transaction(&self) -> TxnId {
        let mut st = self.inner.state.lock();
        st.next_txn += 1;
        let id = st.next_txn;
        let txn = Txn { tree: st.tree.clone(), base_version: st.version.get(), log: Vec::new(), enlisted: Vec::new() };
        st.txns.insert(id, txn);
        TxnId(id)
    }

    /// `CmGetBoundTransaction`: the transaction a key object is bound to.
    pub fn bound_transaction(&self, object: ObjectId) -> Option<TxnId> {
        self.inner.state.lock().bound_txn(object).map(TxnId)
    }

    /// Enlists a resource manager: `notify` runs once, with the outcome, when `txn` ends.
    pub fn enlist_transaction(&self, txn: TxnId, notify: Enlistment) -> Result<(), NtStatus> {
        let mut st = self.inner.state.lock();
        let t = st.txns.get_mut(&txn.0).ok_or(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE)?;
        t.enlisted.push(notify);
        Ok(())
    }

    /// `NtRollbackTransaction`: throws the transaction's changes away.
    pub fn rollback_transaction(&self, txn: TxnId) -> Result<(), NtStatus> {
        let ended = self.inner.state.lock().txns.remove(&txn.0).ok_or(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE)?;
        for notify in ended.enlisted {
            notify(TxnOutcome::Rollback);
        }
        Ok(())
    }

    /// `NtCommitTransaction`: applies the transaction's changes atomically and durably, or
    /// none of them (the transaction is then rolled back and the error returned).
    pub fn commit_transaction(&self, txn: TxnId) -> Result<(), NtStatus> {
        let mut st = self.inner.state.lock();
        let ended = st.txns.remove(&txn.0).ok_or(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE)?;
        let r = Self::apply_commit(&mut st, &ended);
        let r = super::ops::release(None, st, Fired::new(), r);
        let outcome = if r.is_ok() { TxnOutcome::Commit } else { TxnOutcome::Rollback };
        for notify in ended.enlisted {
            notify(outcome);
        }
        r
    }

    fn apply_commit(st: &mut State, txn: &Txn) -> Result<(), NtStatus> {
        if txn.log.is_empty() {
            return Ok(());
        }
        // One batch per hive, in the order the hives were first touched.
        let mut batches: Vec<(u32, Vec<Mutation>)> = Vec::new();
        for (hive, m) in &txn.log {
            match batches.iter_mut().find(|(h, _)| h == hive) {
                Some((_, ms)) => ms.push(m.clone()),
                None => batches.push((*hive, vec![m.clone()])),
            }
        }
        let mut roots = Vec::with_capacity(batches.len());
        for (hive, _) in &batches {
            let slot = st.hives.get((*hive as usize).wrapping_sub(1)).and_then(Option::as_ref);
            // The hive was unloaded since the transaction changed it.
            roots.push((*hive, slot.ok_or(NtStatus::STATUS_TRANSACTIONAL_CONFLICT)?.root));
        }
        let root_of = |hive: u32| roots.iter().find(|(h, _)| *h == hive).map_or(KeyId(0), |(_, r)| *r);
        // Something changed outside the transaction: check that every change still applies.
        let replayed = if st.version.get() == txn.base_version {
            None
        } else {
            let mut scratch = st.tree.clone();
            for (hive, m) in &txn.log {
                scratch.replay_under(root_of(*hive), m).map_err(|_| NtStatus::STATUS_TRANSACTIONAL_CONFLICT)?;
            }
            Some(scratch)
        };
        for (hive, mutations) in batches {
            let slot = st.hives[hive as usize - 1].as_mut().ok_or(NtStatus::STATUS_TRANSACTIONAL_CONFLICT)?;
            let batch = if mutations.len() == 1 {
                mutations.into_iter().next().unwrap_or(Mutation::Batch { mutations: Vec::new() })
            } else {
                Mutation::Batch { mutations }
            };
            slot.storage.append(&batch).map_err(|e| e.status())?;
            if let Some(p) = slot.storage.pending() {
                st.pending.push(p);
            }
        }
        st.version.bump();
        match replayed {
            Some(tree) => st.tree = tree,
            None => {
                for (hive, m) in &txn.log {
                    // Invariant: the tree is as the transaction found it, and these changes
                    // applied to that tree inside the transaction.
                    st.tree.replay_under(root_of(*hive), m).map_err(|_| NtStatus::STATUS_REGISTRY_CORRUPT)?;
                }
            }
        }
        Ok(())
    }
}
