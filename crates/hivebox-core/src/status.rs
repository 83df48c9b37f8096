//! NTSTATUS values: every status the registry and its filters can return, with its name.
//!
//! The numbers are Windows' own, so a filter written against the WDK headers reads the same
//! values here. Core errors become an [`NtStatus`] in exactly one place: [`NtStatus::from`]
//! on the error types that need it.

use std::fmt;

/// A Windows NTSTATUS code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NtStatus(pub u32);

macro_rules! statuses {
    ($($name:ident = $value:expr,)*) => {
        impl NtStatus {
            $(#[doc = concat!("`", stringify!($name), "`")] pub const $name: NtStatus = NtStatus($value);)*

            /// The symbolic name, for example `"STATUS_ACCESS_DENIED"`.
            pub fn name(self) -> Option<&'static str> {
                match self.0 {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }

            /// Looks a status up by its symbolic name (case-insensitive).
            pub fn from_name(name: &str) -> Option<NtStatus> {
                $(if name.eq_ignore_ascii_case(stringify!($name)) { return Some(NtStatus($value)); })*
                None
            }
        }
    };
}

statuses! {
    STATUS_SUCCESS = 0x0000_0000,
    STATUS_NOTIFY_CLEANUP = 0x0000_010B,
    STATUS_NOTIFY_ENUM_DIR = 0x0000_010C,
    STATUS_OBJECT_NAME_EXISTS = 0x4000_0000,
    STATUS_BUFFER_OVERFLOW = 0x8000_0005,
    STATUS_NO_MORE_ENTRIES = 0x8000_001A,
    STATUS_UNSUCCESSFUL = 0xC000_0001,
    STATUS_NOT_IMPLEMENTED = 0xC000_0002,
    STATUS_INVALID_HANDLE = 0xC000_0008,
    STATUS_INVALID_PARAMETER = 0xC000_000D,
    STATUS_ACCESS_DENIED = 0xC000_0022,
    STATUS_BUFFER_TOO_SMALL = 0xC000_0023,
    STATUS_OBJECT_TYPE_MISMATCH = 0xC000_0024,
    STATUS_OBJECT_NAME_INVALID = 0xC000_0033,
    STATUS_OBJECT_NAME_NOT_FOUND = 0xC000_0034,
    STATUS_OBJECT_NAME_COLLISION = 0xC000_0035,
    STATUS_OBJECT_PATH_INVALID = 0xC000_0039,
    STATUS_OBJECT_PATH_NOT_FOUND = 0xC000_003A,
    STATUS_OBJECT_PATH_SYNTAX_BAD = 0xC000_003B,
    STATUS_DATA_ERROR = 0xC000_003E,
    STATUS_REVISION_MISMATCH = 0xC000_0059,
    STATUS_PRIVILEGE_NOT_HELD = 0xC000_0061,
    STATUS_DISK_FULL = 0xC000_007F,
    STATUS_INSUFFICIENT_RESOURCES = 0xC000_009A,
    STATUS_FILE_RENAMED = 0xC000_00D5,
    STATUS_IO_TIMEOUT = 0xC000_00B5,
    STATUS_NAME_TOO_LONG = 0xC000_0106,
    STATUS_CONNECTION_DISCONNECTED = 0xC000_020C,
    STATUS_CANNOT_DELETE = 0xC000_0121,
    STATUS_REGISTRY_CORRUPT = 0xC000_014C,
    STATUS_REGISTRY_IO_FAILED = 0xC000_014D,
    STATUS_KEY_DELETED = 0xC000_017C,
    STATUS_KEY_HAS_CHILDREN = 0xC000_0180,
    STATUS_CHILD_MUST_BE_VOLATILE = 0xC000_0181,
    STATUS_REPARSE_POINT_NOT_RESOLVED = 0xC000_0280,
    STATUS_CALLBACK_BYPASS = 0xC000_0503,
    STATUS_TRANSACTIONAL_CONFLICT = 0xC019_0001,
    STATUS_INVALID_TRANSACTION = 0xC019_0002,
    STATUS_TRANSACTION_NOT_ACTIVE = 0xC019_0003,
    STATUS_FLT_INSTANCE_ALTITUDE_COLLISION = 0xC01C_0011,
}

impl NtStatus {
    /// `NT_SUCCESS`: true for success and informational codes (the top bit clear).
    /// Note that `STATUS_CALLBACK_BYPASS` is *not* a success code.
    pub fn is_success(self) -> bool {
        (self.0 as i32) >= 0
    }

    /// True for error-severity codes (`0xC…`).
    pub fn is_error(self) -> bool {
        self.0 >> 30 == 3
    }

    /// `Ok(())` for success codes, `Err(self)` otherwise.
    pub fn ok(self) -> Result<(), NtStatus> {
        if self.is_success() { Ok(()) } else { Err(self) }
    }

    /// A short human description, for messages that a person reads.
    pub fn describe(self) -> &'static str {
        match self {
            Self::STATUS_SUCCESS => "success",
            Self::STATUS_ACCESS_DENIED => "access denied",
            Self::STATUS_OBJECT_NAME_NOT_FOUND => "the system was unable to find the specified registry key or value",
            Self::STATUS_OBJECT_PATH_NOT_FOUND => "the path does not exist",
            Self::STATUS_OBJECT_NAME_INVALID | Self::STATUS_OBJECT_PATH_SYNTAX_BAD => "invalid key name",
            Self::STATUS_OBJECT_NAME_COLLISION => "a key with that name already exists",
            Self::STATUS_NAME_TOO_LONG => "name too long",
            Self::STATUS_CANNOT_DELETE => "the key cannot be deleted (it has subkeys, or it is a root or hive key)",
            Self::STATUS_KEY_DELETED => "the key has been deleted",
            Self::STATUS_CHILD_MUST_BE_VOLATILE => "a volatile key can only have volatile subkeys",
            Self::STATUS_INVALID_HANDLE => "invalid handle",
            Self::STATUS_INVALID_PARAMETER => "invalid parameter",
            Self::STATUS_INSUFFICIENT_RESOURCES => "insufficient resources",
            Self::STATUS_DISK_FULL => "the store is full",
            Self::STATUS_REGISTRY_IO_FAILED => "the store could not be written",
            Self::STATUS_REGISTRY_CORRUPT => "the store is corrupt",
            Self::STATUS_NO_MORE_ENTRIES => "no more entries",
            Self::STATUS_FLT_INSTANCE_ALTITUDE_COLLISION => "a callback is already registered at that altitude",
            Self::STATUS_CALLBACK_BYPASS => "handled by a callback",
            Self::STATUS_TRANSACTIONAL_CONFLICT => "the transaction conflicts with a change made outside it",
            Self::STATUS_INVALID_TRANSACTION => "no such transaction",
            Self::STATUS_TRANSACTION_NOT_ACTIVE => "the transaction is no longer active (committed or rolled back)",
            Self::STATUS_DATA_ERROR => "data does not parse for its type",
            Self::STATUS_NOT_IMPLEMENTED => "not implemented",
            Self::STATUS_REVISION_MISMATCH => "the protocol versions do not match",
            Self::STATUS_PRIVILEGE_NOT_HELD => "the caller lacks the privilege this operation needs",
            Self::STATUS_CONNECTION_DISCONNECTED => "the connection to the hivebox daemon was lost",
            Self::STATUS_IO_TIMEOUT => "no answer came in time",
            Self::STATUS_FILE_RENAMED => {
                "the hive has already been replaced (the replacement applies when it is next loaded)"
            }
            _ => "error",
        }
    }
}

impl fmt::Debug for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name}"),
            None => write!(f, "NTSTATUS(0x{:08X})", self.0),
        }
    }
}

impl fmt::Display for NtStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "{name} (0x{:08X})", self.0),
            None => write!(f, "NTSTATUS 0x{:08X}", self.0),
        }
    }
}

impl std::error::Error for NtStatus {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_is_not_success() {
        assert!(!NtStatus::STATUS_CALLBACK_BYPASS.is_success());
        assert!(NtStatus::STATUS_SUCCESS.is_success());
        assert!(NtStatus::STATUS_OBJECT_NAME_EXISTS.is_success());
        assert!(!NtStatus::STATUS_NO_MORE_ENTRIES.is_success());
        assert!(NtStatus::STATUS_ACCESS_DENIED.is_error());
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(NtStatus::STATUS_CALLBACK_BYPASS.0, 0xC000_0503);
        assert_eq!(NtStatus::STATUS_FLT_INSTANCE_ALTITUDE_COLLISION.0, 0xC01C_0011);
        assert_eq!(NtStatus::STATUS_KEY_DELETED.name(), Some("STATUS_KEY_DELETED"));
        assert_eq!(NtStatus::from_name("status_access_denied"), Some(NtStatus::STATUS_ACCESS_DENIED));
        assert_eq!(format!("{}", NtStatus::STATUS_ACCESS_DENIED), "STATUS_ACCESS_DENIED (0xC0000022)");
        assert_eq!(format!("{:?}", NtStatus(0xC0DE_0001)), "NTSTATUS(0xC0DE0001)");
    }
}
