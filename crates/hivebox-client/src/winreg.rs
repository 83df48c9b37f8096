//! An API shaped like the [`winreg`](https://docs.rs/winreg) crate's (0.55), so code written
//! for the Windows registry ports to hivebox with few changes: usually only the `use` lines.
//!
//! | winreg                                   | here                                                 |
//! |------------------------------------------|------------------------------------------------------|
//! | `use winreg::enums::*;`                  | `use hivebox_client::winreg::enums::*;`              |
//! | `use winreg::{RegKey, RegValue};`        | `use hivebox_client::winreg::{RegKey, RegValue};`    |
//! | `use winreg::transaction::Transaction;`  | `use hivebox_client::winreg::transaction::Transaction;` |
//! | `RegKey::predef(HKEY_LOCAL_MACHINE)`     | the same, over the default connection                 |
//! | (none)                                   | [`RegKey::predef_on`]`(&registry, HKEY_LOCAL_MACHINE)` |
//!
//! [`RegKey::predef`] and [`Transaction::new`](transaction::Transaction::new) use the process's
//! *default connection*: a [`Client`] connected to
//! [`default_socket`](crate::default_socket) the first time it is needed, and shared by every
//! key and transaction made from it (a handle and a transaction belong to the connection that
//! made them). [`set_default_registry`] installs another transport instead (for example the
//! daemon's in-process `Embedded`). [`RegKey::predef_on`] and
//! [`Transaction::new_on`](transaction::Transaction::new_on) take a [`Registry`] explicitly.
//!
//! Errors are [`std::io::Error`]s as in winreg. Their [`kind`](io::Error::kind) follows the
//! NTSTATUS (see [`error_kind`]), and their inner error is a [`crate::Error`] carrying the
//! NTSTATUS itself, which [`status_of`] returns. There are no Win32 error codes:
//! [`raw_os_error`](io::Error::raw_os_error) is always `None`.
//!
//! Differences from winreg:
//! - strings are decoded strictly (invalid UTF-16 is an error, not replaced), and a string
//!   value ends at its first NUL;
//! - `OsStr`/`OsString` values and names go through UTF-8 (a name that is not UTF-8 is an
//!   `InvalidInput` error; an `OsStr` value that is not UTF-8 is stored lossily);
//! - enumeration iterators stop after an error instead of repeating it;
//! - `KEY_WOW64_*` flags are accepted and ignored (there is one registry view).
//!
//! # Porting example
//!
//! ```no_run
//! use hivebox_client::winreg::enums::*;
//! use hivebox_client::winreg::transaction::Transaction;
//! use hivebox_client::winreg::{RegKey, RegValue};
//!
//! fn main() -> std::io::Result<()> {
//!     let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
//!     let software = hklm.open_subkey("SOFTWARE")?;
//!     for name in software.enum_keys() {
//!         println!("HKLM\\SOFTWARE\\{}", name?);
//!     }
//!
//!     let (settings, disposition) = hklm.create_subkey(r"SOFTWARE\MyProduct\Settings")?;
//!     if disposition == REG_CREATED_NEW_KEY {
//!         println!("first run");
//!     }
//!     settings.set_value("server", &"www.example.com")?;
//!     settings.set_value("port", &8080u32)?;
//!     settings.set_value("mirrors", &vec!["a.example.com", "b.example.com"])?;
//!     settings.set_raw_value("blob", &RegValue { bytes: vec![1, 2, 3], vtype: REG_BINARY })?;
//!     let server: String = settings.get_value("server")?;
//!     let port: u32 = settings.get_value("port")?;
//!     println!("{server}:{port}");
//!     for value in settings.enum_values() {
//!         let (name, value) = value?;
//!         println!("{name} = {value}");
//!     }
//!
//!     // Several changes at once, or none of them.
//!     let t = Transaction::new()?;
//!     let (key, _) = hklm.create_subkey_transacted(r"SOFTWARE\MyProduct\State", &t)?;
//!     key.set_value("generation", &2u64)?;
//!     key.set_value("status", &"ready")?;
//!     t.commit()?;
//!
//!     hklm.delete_subkey_all(r"SOFTWARE\MyProduct")?;
//!     Ok(())
//! }
//! ```

use crate::{Client, Registry};
use hivebox_core::NtStatus;
use std::io;
use std::sync::{Arc, Mutex};

pub mod enums;
mod reg_key;
mod reg_key_metadata;
mod reg_value;
pub mod transaction;
pub mod types;

pub use enums::{HKEY_CLASSES_ROOT, HKEY_CURRENT_USER, HKEY_LOCAL_MACHINE, HKEY_USERS};
pub use reg_key::{EnumKeys, EnumValues, HKEY, RegKey};
pub use reg_key_metadata::{FileTime, RegKeyMetadata, SYSTEMTIME};
pub use reg_value::RegValue;

/// The default connection, once made (or installed).
static DEFAULT: Mutex<Option<Registry>> = Mutex::new(None);

fn default_slot() -> std::sync::MutexGuard<'static, Option<Registry>> {
    DEFAULT.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The default connection: the one installed with [`set_default_registry`], else a
/// [`Client`] connected to [`default_socket`](crate::default_socket) now (and kept for the
/// rest of the process). A failure to connect is a `NotConnected` error, so that it cannot
/// be mistaken for a missing key.
pub fn default_registry() -> io::Result<Registry> {
    let mut slot = default_slot();
    if let Some(r) = slot.as_ref() {
        return Ok(r.clone());
    }
    let client = Client::connect_default().map_err(|e| {
        let socket = crate::default_socket();
        let inner = crate::Error {
            status: NtStatus::STATUS_CONNECTION_DISCONNECTED,
            message: format!("cannot connect to the hivebox daemon at {}: {e}", socket.display()),
        };
        io::Error::new(io::ErrorKind::NotConnected, inner)
    })?;
    let registry = Registry::new(Arc::new(client));
    *slot = Some(registry.clone());
    Ok(registry)
}

/// Makes `registry` the default connection (for [`RegKey::predef`] and
/// [`Transaction::new`](transaction::Transaction::new)); returns the previous one. Keys and
/// transactions already made keep the connection they were made on.
pub fn set_default_registry(registry: Registry) -> Option<Registry> {
    default_slot().replace(registry)
}

/// Forgets the default connection if it is still `failed`, so that the next use connects
/// again (after the daemon restarted, say).
fn forget_default(failed: &Registry) {
    let mut slot = default_slot();
    if slot.as_ref().is_some_and(|r| same_connection(r, failed)) {
        *slot = None;
    }
}

/// Whether two registries share one transport (and so one set of handles and transactions).
pub(crate) fn same_connection(a: &Registry, b: &Registry) -> bool {
    Arc::ptr_eq(a.transport(), b.transport())
}

/// The NTSTATUS behind an error from this module (or any `io::Error` whose inner error is a
/// [`crate::Error`]); `None` for other errors.
///
/// ```
/// use hivebox_client::winreg::status_of;
/// use hivebox_core::NtStatus;
/// let e = std::io::Error::other(hivebox_client::Error::from(NtStatus::STATUS_ACCESS_DENIED));
/// assert_eq!(status_of(&e), Some(NtStatus::STATUS_ACCESS_DENIED));
/// assert_eq!(status_of(&std::io::Error::other("no status")), None);
/// ```
pub fn status_of(error: &io::Error) -> Option<NtStatus> {
    error.get_ref().and_then(|e| e.downcast_ref::<crate::Error>()).map(|e| e.status)
}

/// The [`io::ErrorKind`] an NTSTATUS maps to.
pub fn error_kind(status: NtStatus) -> io::ErrorKind {
    use io::ErrorKind as K;
    match status {
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND
        | NtStatus::STATUS_OBJECT_PATH_NOT_FOUND
        | NtStatus::STATUS_KEY_DELETED => K::NotFound,
        NtStatus::STATUS_ACCESS_DENIED | NtStatus::STATUS_PRIVILEGE_NOT_HELD => K::PermissionDenied,
        NtStatus::STATUS_OBJECT_NAME_COLLISION | NtStatus::STATUS_OBJECT_NAME_EXISTS => K::AlreadyExists,
        NtStatus::STATUS_INVALID_PARAMETER
        | NtStatus::STATUS_INVALID_HANDLE
        | NtStatus::STATUS_CHILD_MUST_BE_VOLATILE
        | NtStatus::STATUS_INVALID_TRANSACTION => K::InvalidInput,
        NtStatus::STATUS_OBJECT_NAME_INVALID
        | NtStatus::STATUS_OBJECT_PATH_INVALID
        | NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD
        | NtStatus::STATUS_NAME_TOO_LONG => K::InvalidFilename,
        NtStatus::STATUS_KEY_HAS_CHILDREN | NtStatus::STATUS_CANNOT_DELETE => K::DirectoryNotEmpty,
        NtStatus::STATUS_CONNECTION_DISCONNECTED => K::ConnectionAborted,
        NtStatus::STATUS_IO_TIMEOUT => K::TimedOut,
        NtStatus::STATUS_DATA_ERROR | NtStatus::STATUS_OBJECT_TYPE_MISMATCH | NtStatus::STATUS_REGISTRY_CORRUPT => {
            K::InvalidData
        }
        NtStatus::STATUS_NOT_IMPLEMENTED | NtStatus::STATUS_REVISION_MISMATCH => K::Unsupported,
        NtStatus::STATUS_INSUFFICIENT_RESOURCES => K::OutOfMemory,
        NtStatus::STATUS_DISK_FULL => K::StorageFull,
        _ => K::Other,
    }
}

/// The `io::Error` for a failed operation: its kind from the status, the [`crate::Error`]
/// inside.
pub fn io_error(error: crate::Error) -> io::Error {
    io::Error::new(error_kind(error.status), error)
}

/// An error with a status and a message of this module's own.
pub(crate) fn error(status: NtStatus, message: impl Into<String>) -> io::Error {
    io_error(crate::Error { status, message: message.into() })
}
