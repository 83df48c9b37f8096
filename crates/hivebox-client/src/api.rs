//! The registry's operations as typed calls over a [`Transport`].

use crate::Transport;
use hivebox_core::{Disposition, KeyImage, KeyInfo, NtStatus, SubkeyInfo, Value};
use hivebox_proto::{Reply, Request};
use std::fmt;
use std::sync::Arc;

/// A failed operation: its NTSTATUS, and what the daemon said about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// The status.
    pub status: NtStatus,
    /// Details from the daemon (may be empty).
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.message.is_empty() {
            write!(f, "{}", self.status)
        } else {
            write!(f, "{}: {}", self.status, self.message)
        }
    }
}

impl From<NtStatus> for Error {
    fn from(status: NtStatus) -> Self {
        Error { status, message: String::new() }
    }
}

fn unexpected(reply: Reply) -> Error {
    match reply {
        Reply::Error { status, message } => Error { status, message },
        other => Error {
            status: NtStatus::STATUS_UNSUCCESSFUL,
            message: format!("the daemon answered with an unexpected reply: {other:?}"),
        },
    }
}

/// The registry behind a transport. Handles are `u64`s valid on this transport only; a
/// predefined key (`hivebox_proto::HKEY_*`) can be the parent of an open or create.
#[derive(Clone)]
pub struct Registry {
    transport: Arc<dyn Transport>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("identity", self.transport.identity()).finish()
    }
}

macro_rules! expect {
    ($reply:expr, $pat:pat => $out:expr) => {
        match $reply {
            $pat => Ok($out),
            other => Err(unexpected(other)),
        }
    };
}

impl Registry {
    /// The registry behind `transport`.
    pub fn new(transport: Arc<dyn Transport>) -> Self {
        Registry { transport }
    }

    /// The transport.
    pub fn transport(&self) -> &Arc<dyn Transport> {
        &self.transport
    }

    /// Performs a request whose success returns nothing.
    pub fn done(&self, request: Request) -> Result<(), Error> {
        expect!(self.transport.call(request), Reply::Done => ())
    }

    /// `NtOpenKey`: `parent` 0 with a native path, or a handle / predefined key with a
    /// relative one; `txn` 0 outside a transaction.
    pub fn open_key(&self, parent: u64, path: &str, options: u32, access: u32, txn: u64) -> Result<u64, Error> {
        let r = self.transport.call(Request::OpenKey { parent, path: path.into(), options, access, txn });
        expect!(r, Reply::Handle(h) => h)
    }

    /// `NtCreateKey`; with `all_levels`, missing intermediate keys are created too.
    #[allow(clippy::too_many_arguments)]
    pub fn create_key(
        &self,
        parent: u64,
        path: &str,
        class: Option<&str>,
        options: u32,
        access: u32,
        txn: u64,
        all_levels: bool,
    ) -> Result<(u64, Disposition), Error> {
        let r = self.transport.call(Request::CreateKey {
            parent,
            path: path.into(),
            class: class.map(str::to_owned),
            options,
            access,
            txn,
            all_levels,
        });
        expect!(r, Reply::Created { handle, disposition } => (handle, disposition))
    }

    /// `NtClose`.
    pub fn close_key(&self, handle: u64) -> Result<(), Error> {
        self.done(Request::CloseKey { handle })
    }

    /// `NtDeleteKey`.
    pub fn delete_key(&self, handle: u64) -> Result<(), Error> {
        self.done(Request::DeleteKey { handle })
    }

    /// `NtSetValueKey`.
    pub fn set_value(&self, handle: u64, name: &str, value: Value) -> Result<(), Error> {
        self.done(Request::SetValue { handle, name: name.into(), value })
    }

    /// `NtDeleteValueKey`.
    pub fn delete_value(&self, handle: u64, name: &str) -> Result<(), Error> {
        self.done(Request::DeleteValue { handle, name: name.into() })
    }

    /// `NtQueryValueKey`.
    pub fn query_value(&self, handle: u64, name: &str) -> Result<Value, Error> {
        expect!(self.transport.call(Request::QueryValue { handle, name: name.into() }), Reply::Value(v) => v)
    }

    /// `NtEnumerateKey`: `STATUS_NO_MORE_ENTRIES` past the last.
    pub fn enumerate_key(&self, handle: u64, index: u32) -> Result<SubkeyInfo, Error> {
        expect!(self.transport.call(Request::EnumKey { handle, index }), Reply::Subkey(s) => s)
    }

    /// `NtEnumerateValueKey`: `STATUS_NO_MORE_ENTRIES` past the last.
    pub fn enumerate_value(&self, handle: u64, index: u32) -> Result<(String, Value), Error> {
        expect!(self.transport.call(Request::EnumValue { handle, index }), Reply::NamedValue(n, v) => (n, v))
    }

    /// `NtQueryKey(KeyFullInformation)`.
    pub fn query_key(&self, handle: u64) -> Result<KeyInfo, Error> {
        expect!(self.transport.call(Request::QueryKey { handle }), Reply::KeyInfo(k) => k)
    }

    /// The key's full native name.
    pub fn query_key_name(&self, handle: u64) -> Result<String, Error> {
        expect!(self.transport.call(Request::QueryKeyName { handle }), Reply::Name(n) => n)
    }

    /// `NtRenameKey`.
    pub fn rename_key(&self, handle: u64, new_name: &str) -> Result<(), Error> {
        self.done(Request::RenameKey { handle, new_name: new_name.into() })
    }

    /// Sets the key's last write time.
    pub fn set_last_write_time(&self, handle: u64, time: u64) -> Result<(), Error> {
        self.done(Request::SetLastWriteTime { handle, time })
    }

    /// `NtFlushKey`.
    pub fn flush_key(&self, handle: u64) -> Result<(), Error> {
        self.done(Request::FlushKey { handle })
    }

    /// `NtNotifyChangeKey`: a one-shot watch, completed by a [`crate::Push::Notify`].
    pub fn notify_change_key(&self, handle: u64, subtree: bool, filter: u32) -> Result<u64, Error> {
        expect!(self.transport.call(Request::NotifyChangeKey { handle, subtree, filter }), Reply::Watch(w) => w)
    }

    /// `NtSaveKey`: the key's tree.
    pub fn save_key(&self, handle: u64) -> Result<KeyImage, Error> {
        expect!(self.transport.call(Request::SaveKey { handle }), Reply::Image(i) => i)
    }

    /// `NtRestoreKey`.
    pub fn restore_key(&self, handle: u64, image: KeyImage) -> Result<(), Error> {
        self.done(Request::RestoreKey { handle, image })
    }

    /// `NtLoadKey`: mounts the hive file `file` at the native path `mount`.
    pub fn load_hive(&self, mount: &str, file: &str) -> Result<(), Error> {
        self.done(Request::LoadHive { mount: mount.into(), file: file.into() })
    }

    /// `NtUnloadKey`.
    pub fn unload_hive(&self, mount: &str) -> Result<(), Error> {
        self.done(Request::UnloadHive { mount: mount.into() })
    }

    /// The hives loaded by [`Registry::load_hive`]: mount path and file.
    pub fn loaded_hives(&self) -> Result<Vec<(String, String)>, Error> {
        expect!(self.transport.call(Request::LoadedHives), Reply::Hives(h) => h)
    }

    /// `NtReplaceKey`.
    pub fn replace_key(&self, handle: u64, new_file: &str, old_file: &str) -> Result<(), Error> {
        self.done(Request::ReplaceKey { handle, new_file: new_file.into(), old_file: old_file.into() })
    }

    /// Starts a transaction.
    pub fn begin_transaction(&self) -> Result<u64, Error> {
        expect!(self.transport.call(Request::BeginTxn), Reply::Txn(t) => t)
    }

    /// Commits a transaction.
    pub fn commit_transaction(&self, txn: u64) -> Result<(), Error> {
        self.done(Request::CommitTxn { txn })
    }

    /// Rolls a transaction back.
    pub fn rollback_transaction(&self, txn: u64) -> Result<(), Error> {
        self.done(Request::RollbackTxn { txn })
    }
}
