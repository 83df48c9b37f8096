//! Transactions: isolation until commit, atomic commit and rollback, conflicts with changes
//! made outside, keys bound to an ended transaction, and what reaches the store.

use crate::common::Log;
use hivebox_core::access::*;
use hivebox_core::{
    Caller, CreateOptions, Handle, HiveMount, ManualClock, Mutation, NtStatus, OpenOptions, Registry, Storage, TxnId,
    Value,
};
use std::sync::Arc;

const APP: &str = r"\REGISTRY\MACHINE\SOFTWARE\App";

struct Env {
    reg: Registry,
    me: Caller,
    log: Log,
}

/// A registry whose SOFTWARE hive logs to `log`, with `APP` holding `Old = 1`.
fn env() -> Env {
    let log = Log::default();
    let hives = hivebox_core::fresh::fresh_hives(1000)
        .into_iter()
        .map(|(path, image)| {
            let storage: Box<dyn Storage> =
                if path.ends_with("SOFTWARE") { Box::new(log.clone()) } else { Box::new(hivebox_core::MemoryStorage) };
            HiveMount { path, image, storage }
        })
        .collect();
    let reg = Registry::with_hives(hives, Arc::new(ManualClock::new(1000)), Default::default()).unwrap();
    let me = Caller::system();
    let (h, _) = reg.create_key(&me, None, APP, &CreateOptions::default()).unwrap();
    reg.set_value(&me, h, "Old", Value::dword(1)).unwrap();
    reg.close_key(&me, h).unwrap();
    log.0.lock().unwrap().clear();
    Env { reg, me, log }
}

impl Env {
    fn open(&self, path: &str) -> Result<Handle, NtStatus> {
        self.reg.open_key(&self.me, None, path, &OpenOptions::access(KEY_ALL_ACCESS))
    }

    fn value(&self, path: &str, name: &str) -> Result<Value, NtStatus> {
        let h = self.open(path)?;
        let v = self.reg.query_value(&self.me, h, name);
        self.reg.close_key(&self.me, h).unwrap();
        v
    }

    /// In `txn`: creates `APP\New` with `N = 2`, sets `APP\Old = 3`; returns the handle to `APP`.
    fn change(&self, txn: TxnId) -> Handle {
        let app = self.reg.open_key_transacted(&self.me, None, APP, &OpenOptions::access(KEY_ALL_ACCESS), txn).unwrap();
        let (new, _) = self.reg.create_key(&self.me, Some(app), "New", &CreateOptions::default()).unwrap();
        self.reg.set_value(&self.me, new, "N", Value::dword(2)).unwrap();
        self.reg.close_key(&self.me, new).unwrap();
        self.reg.set_value(&self.me, app, "Old", Value::dword(3)).unwrap();
        app
    }
}

#[test]
fn changes_are_seen_only_through_the_transaction_until_commit() {
    let env = env();
    let txn = env.reg.begin_transaction();
    let app = env.change(txn);
    assert_eq!(env.reg.query_value(&env.me, app, "Old"), Ok(Value::dword(3)), "seen through the transaction");
    assert_eq!(env.value(APP, "Old"), Ok(Value::dword(1)), "not seen outside before commit");
    assert_eq!(env.open(&format!(r"{APP}\New")).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert_eq!(env.reg.query_key(&env.me, app).unwrap().subkeys, 1, "the transaction counts its new subkey");
    assert!(env.log.0.lock().unwrap().is_empty(), "nothing reaches the store before commit");

    env.reg.commit_transaction(txn).unwrap();
    assert_eq!(env.value(APP, "Old"), Ok(Value::dword(3)));
    assert_eq!(env.value(&format!(r"{APP}\New"), "N"), Ok(Value::dword(2)));
    let log = env.log.0.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "one record for the whole transaction: {log:?}");
    let Mutation::Batch { mutations } = &log[0] else { panic!("a batch: {log:?}") };
    assert_eq!(mutations.len(), 3, "create, set, set: {mutations:?}");

    assert_eq!(
        env.reg.query_value(&env.me, app, "Old"),
        Err(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE),
        "a handle bound to a committed transaction"
    );
    env.reg.close_key(&env.me, app).unwrap();
    assert_eq!(env.reg.commit_transaction(txn), Err(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE), "committed once");
}

#[test]
fn rollback_leaves_everything_as_it_was() {
    let env = env();
    let txn = env.reg.begin_transaction();
    let app = env.change(txn);
    env.reg.rollback_transaction(txn).unwrap();
    assert_eq!(env.value(APP, "Old"), Ok(Value::dword(1)));
    assert_eq!(env.open(&format!(r"{APP}\New")).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    assert!(env.log.0.lock().unwrap().is_empty());
    assert_eq!(env.reg.set_value(&env.me, app, "x", Value::dword(0)), Err(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE));
    env.reg.close_key(&env.me, app).unwrap();
}

#[test]
fn commit_applies_over_unrelated_changes_made_meanwhile() {
    let env = env();
    let txn = env.reg.begin_transaction();
    let app = env.change(txn);
    env.reg.close_key(&env.me, app).unwrap();
    let h = env.open(APP).unwrap();
    env.reg.set_value(&env.me, h, "Outside", Value::sz("kept")).unwrap();
    env.reg.close_key(&env.me, h).unwrap();

    env.reg.commit_transaction(txn).unwrap();
    assert_eq!(env.value(APP, "Outside"), Ok(Value::sz("kept")), "the outside change stays");
    assert_eq!(env.value(APP, "Old"), Ok(Value::dword(3)));
    assert_eq!(env.value(&format!(r"{APP}\New"), "N"), Ok(Value::dword(2)));
}

#[test]
fn commit_that_no_longer_applies_changes_nothing() {
    let env = env();
    let txn = env.reg.begin_transaction();
    let app = env.change(txn);
    env.reg.close_key(&env.me, app).unwrap();
    // Outside the transaction, the key its changes need is deleted.
    let h = env.open(APP).unwrap();
    env.reg.delete_key(&env.me, h).unwrap();
    env.reg.close_key(&env.me, h).unwrap();
    let before = env.log.0.lock().unwrap().len();

    assert_eq!(env.reg.commit_transaction(txn), Err(NtStatus::STATUS_TRANSACTIONAL_CONFLICT));
    assert_eq!(env.open(APP).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND), "not recreated");
    assert_eq!(env.log.0.lock().unwrap().len(), before, "nothing logged by the failed commit");
    assert_eq!(env.reg.rollback_transaction(txn), Err(NtStatus::STATUS_TRANSACTION_NOT_ACTIVE), "it has ended");
}

#[test]
fn transactions_do_not_see_each_other() {
    let env = env();
    let (a, b) = (env.reg.begin_transaction(), env.reg.begin_transaction());
    let ha = env.reg.open_key_transacted(&env.me, None, APP, &OpenOptions::access(KEY_ALL_ACCESS), a).unwrap();
    let hb = env.reg.open_key_transacted(&env.me, None, APP, &OpenOptions::access(KEY_ALL_ACCESS), b).unwrap();
    env.reg.set_value(&env.me, ha, "A", Value::dword(1)).unwrap();
    assert_eq!(env.reg.query_value(&env.me, hb, "A"), Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
    env.reg.set_value(&env.me, hb, "B", Value::dword(2)).unwrap();
    env.reg.commit_transaction(a).unwrap();
    env.reg.commit_transaction(b).unwrap();
    assert_eq!(env.value(APP, "A"), Ok(Value::dword(1)));
    assert_eq!(env.value(APP, "B"), Ok(Value::dword(2)));
    env.reg.close_key(&env.me, ha).unwrap();
    env.reg.close_key(&env.me, hb).unwrap();
}

#[test]
fn volatile_keys_cannot_be_created_in_a_transaction() {
    let env = env();
    let txn = env.reg.begin_transaction();
    let opts = CreateOptions { options: REG_OPTION_VOLATILE, ..CreateOptions::default() };
    let r = env.reg.create_key_transacted(&env.me, None, &format!(r"{APP}\Vol"), &opts, txn);
    assert_eq!(r.err(), Some(NtStatus::STATUS_INVALID_PARAMETER));
    env.reg.rollback_transaction(txn).unwrap();
}

#[test]
fn a_key_opened_outside_is_a_root_in_the_transaction_only_if_it_is_the_same_key_there() {
    let env = env();
    let before = env.open(APP).unwrap();
    let txn = env.reg.begin_transaction();
    // The same id is handed out twice: to a key created outside, and to one created inside.
    let (outside, _) = env.reg.create_key(&env.me, Some(before), "Outside", &CreateOptions::default()).unwrap();
    let (inside, _) = env
        .reg
        .create_key_transacted(&env.me, None, &format!(r"{APP}\Inside"), &CreateOptions::default(), txn)
        .unwrap();
    let r = env.reg.create_key_transacted(&env.me, Some(outside), "Sub", &CreateOptions::default(), txn);
    assert_eq!(r.err(), Some(NtStatus::STATUS_TRANSACTIONAL_CONFLICT), "not created under another key");
    // A key that existed when the transaction began is the same key in it.
    let (sub, _) = env.reg.create_key_transacted(&env.me, Some(before), "Sub", &CreateOptions::default(), txn).unwrap();
    for h in [sub, inside, outside, before] {
        env.reg.close_key(&env.me, h).unwrap();
    }
    env.reg.commit_transaction(txn).unwrap();
    for name in ["Outside", "Inside", "Sub"] {
        assert!(env.open(&format!(r"{APP}\{name}")).is_ok(), "{name} after commit");
    }
}
