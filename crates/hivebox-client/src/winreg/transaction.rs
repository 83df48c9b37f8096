//! Registry transactions, as winreg's `transaction` module.
//!
//! Keys opened or created with a transaction (`open_subkey_transacted`,
//! `create_subkey_transacted`) see the registry as the transaction does, and what is done
//! through them (values set, subkeys created or deleted) becomes visible to others only at
//! [`Transaction::commit`]. [`Transaction::rollback`], or dropping the transaction without
//! committing it, throws the changes away.
//!
//! ```no_run
//! use hivebox_client::winreg::enums::*;
//! use hivebox_client::winreg::transaction::Transaction;
//! use hivebox_client::winreg::RegKey;
//!
//! let t = Transaction::new()?;
//! let hkcu = RegKey::predef(HKEY_CURRENT_USER);
//! let (key, _) = hkcu.create_subkey_transacted(r"Software\RustTransaction", &t)?;
//! key.set_value("TestQWORD", &1234567891011121314u64)?;
//! key.set_value("TestDWORD", &1234567890u32)?;
//! t.commit()?;
//! # Ok::<(), std::io::Error>(())
//! ```

use super::{default_registry, io_error};
use crate::Registry;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

/// A transaction of one connection. Rolled back when dropped unless committed or rolled
/// back already.
pub struct Transaction {
    registry: Registry,
    id: u64,
    ended: AtomicBool,
}

impl std::fmt::Debug for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transaction").field("id", &self.id).field("ended", &self.ended).finish()
    }
}

impl Transaction {
    /// Starts a transaction on the default connection (see [`super::default_registry`]).
    pub fn new() -> io::Result<Transaction> {
        Transaction::new_on(&default_registry()?)
    }

    /// Starts a transaction on `registry`'s connection. Only keys of the same connection can
    /// take part in it.
    pub fn new_on(registry: &Registry) -> io::Result<Transaction> {
        let id = registry.begin_transaction().map_err(io_error)?;
        Ok(Transaction { registry: registry.clone(), id, ended: AtomicBool::new(false) })
    }

    /// Makes the transaction's changes visible to everyone, all at once. It fails with
    /// `STATUS_TRANSACTIONAL_CONFLICT` (and nothing is applied) if something it read or
    /// changed was changed outside it meanwhile.
    pub fn commit(&self) -> io::Result<()> {
        self.ended.store(true, Ordering::SeqCst);
        self.registry.commit_transaction(self.id).map_err(io_error)
    }

    /// Throws the transaction's changes away.
    pub fn rollback(&self) -> io::Result<()> {
        self.ended.store(true, Ordering::SeqCst);
        self.registry.rollback_transaction(self.id).map_err(io_error)
    }

    /// The transaction's id on its connection (the `txn` of the typed [`Registry`] calls).
    pub fn raw_handle(&self) -> u64 {
        self.id
    }

    /// The connection the transaction belongs to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl Drop for Transaction {
    fn drop(&mut self) {
        if !self.ended.swap(true, Ordering::SeqCst) {
            let _ = self.registry.rollback_transaction(self.id);
        }
    }
}

impl AsRef<Transaction> for Transaction {
    fn as_ref(&self) -> &Transaction {
        self
    }
}
