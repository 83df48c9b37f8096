//! hivebox's registry: the model (names, values, keys), NTSTATUS, `REG_NOTIFY_CLASS`, and the
//! Configuration Manager with its altitude-ordered filter stack.
//!
//! This crate is sans-IO: it touches no file, socket, clock or environment. Time comes in
//! through [`Clock`], persistence through [`Storage`]; decisions come in through callbacks.
//! It does not parse hive files, speak a wire protocol or know about Linux: those live in the
//! crates above it.
//!
//! ```
//! use hivebox_core::{Caller, CreateOptions, ManualClock, Registry, Value};
//! use std::sync::Arc;
//!
//! let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
//! let me = Caller::system();
//! let (key, _) = reg
//!     .create_key(&me, None, r"\REGISTRY\MACHINE\SOFTWARE\Example", &CreateOptions::default())
//!     .unwrap();
//! reg.set_value(&me, key, "Greeting", Value::sz("hello")).unwrap();
//! assert_eq!(reg.query_value(&me, key, "greeting").unwrap().as_string().unwrap(), "hello");
//! reg.close_key(&me, key).unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod access;
pub mod altitude;
pub mod cm;
pub mod fresh;
pub mod isolate;
pub mod name;
pub mod notify;
pub mod path;
pub mod protect;
pub mod security;
pub mod status;
pub mod storage;
pub mod tree;
pub mod value;

pub use access::Disposition;
pub use cm::{
    Argument, CallContext, CallbackCx, Caller, Cookie, CreateKeyInfo, CreateOptions, DeferredSyncs, Handle, HiveMount,
    Mode, ObjectContext, ObjectId, OpenOptions, Operation, PostInfo, PreInfo, ProcessInfo, Registry, RegistryCallback,
    RegistryOptions, Token, TxnId, TxnOutcome, WatchId, WatchNotifier,
};
pub use notify::RegNotifyClass;
pub use path::{KeyPath, Root};
pub use status::NtStatus;
pub use storage::{Durability, KeyImage, MemoryStorage, Mutation, Pending, Storage, StorageError};
pub use tree::{KeyId, KeyInfo, SubkeyInfo, Tree};
pub use value::{Value, ValueType};

use std::sync::atomic::{AtomicU64, Ordering};

/// The source of last-write times: a FILETIME (100 ns units since 1601-01-01 UTC).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> u64;
}

/// A clock that moves only when told to (simulations and tests), by one tick per reading.
#[derive(Debug)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Starts at `start`.
    pub fn new(start: u64) -> Self {
        Self(AtomicU64::new(start))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: u64) {
        self.0.fetch_add(by, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// FILETIME of the Unix epoch.
pub const UNIX_EPOCH_FILETIME: u64 = 116_444_736_000_000_000;
