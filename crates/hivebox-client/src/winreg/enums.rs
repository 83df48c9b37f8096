//! `use hivebox_client::winreg::enums::*;` imports the predefined keys, access rights, value
//! types and dispositions, as `use winreg::enums::*;` does.

use super::HKEY;
use hivebox_core::{Disposition, ValueType};

/// `HKEY_CLASSES_ROOT` (`\REGISTRY\MACHINE\SOFTWARE\Classes`).
pub const HKEY_CLASSES_ROOT: HKEY = hivebox_proto::HKEY_CLASSES_ROOT;
/// `HKEY_CURRENT_USER` (`\REGISTRY\USER\<the caller's SID>`, as the daemon identified it).
pub const HKEY_CURRENT_USER: HKEY = hivebox_proto::HKEY_CURRENT_USER;
/// `HKEY_LOCAL_MACHINE` (`\REGISTRY\MACHINE`).
pub const HKEY_LOCAL_MACHINE: HKEY = hivebox_proto::HKEY_LOCAL_MACHINE;
/// `HKEY_USERS` (`\REGISTRY\USER`).
pub const HKEY_USERS: HKEY = hivebox_proto::HKEY_USERS;
/// Short name of [`HKEY_CLASSES_ROOT`].
pub const HKCR: HKEY = HKEY_CLASSES_ROOT;
/// Short name of [`HKEY_CURRENT_USER`].
pub const HKCU: HKEY = HKEY_CURRENT_USER;
/// Short name of [`HKEY_LOCAL_MACHINE`].
pub const HKLM: HKEY = HKEY_LOCAL_MACHINE;
/// Short name of [`HKEY_USERS`].
pub const HKU: HKEY = HKEY_USERS;

pub use hivebox_core::access::{
    DELETE, KEY_ALL_ACCESS, KEY_CREATE_LINK, KEY_CREATE_SUB_KEY, KEY_ENUMERATE_SUB_KEYS, KEY_EXECUTE, KEY_NOTIFY,
    KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE, KEY_WOW64_32KEY, KEY_WOW64_64KEY, KEY_WRITE, MAXIMUM_ALLOWED,
    READ_CONTROL, REG_OPTION_BACKUP_RESTORE, REG_OPTION_CREATE_LINK, REG_OPTION_OPEN_LINK, REG_OPTION_VOLATILE,
    WRITE_DAC, WRITE_OWNER,
};

/// `KEY_WOW64_RES` (`KEY_WOW64_32KEY | KEY_WOW64_64KEY`); hivebox has one registry view.
pub const KEY_WOW64_RES: u32 = KEY_WOW64_32KEY | KEY_WOW64_64KEY;
/// `REG_OPTION_NON_VOLATILE` (the default: the key is stored).
pub const REG_OPTION_NON_VOLATILE: u32 = 0;
/// `REG_OPTION_RESERVED`.
pub const REG_OPTION_RESERVED: u32 = 0;

/// A registry value's type, as winreg's `RegType`. Convert with [`ValueType`] both ways
/// (`ValueType::from(REG_SZ)`, `RegType::try_from(ValueType::REG_SZ)`).
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u32)]
pub enum RegType {
    /// No type.
    REG_NONE = 0,
    /// A string (UTF-16LE, NUL-terminated).
    REG_SZ = 1,
    /// A string with `%VARIABLES%` to expand.
    REG_EXPAND_SZ = 2,
    /// Bytes.
    REG_BINARY = 3,
    /// A little-endian `u32`.
    REG_DWORD = 4,
    /// A big-endian `u32`.
    REG_DWORD_BIG_ENDIAN = 5,
    /// A symbolic link's target.
    REG_LINK = 6,
    /// A list of strings.
    REG_MULTI_SZ = 7,
    /// A resource list.
    REG_RESOURCE_LIST = 8,
    /// A full resource descriptor.
    REG_FULL_RESOURCE_DESCRIPTOR = 9,
    /// A resource requirements list.
    REG_RESOURCE_REQUIREMENTS_LIST = 10,
    /// A little-endian `u64`.
    REG_QWORD = 11,
}

pub use RegType::*;

impl RegType {
    /// Every type, in number order.
    pub const ALL: [RegType; 12] = [
        REG_NONE,
        REG_SZ,
        REG_EXPAND_SZ,
        REG_BINARY,
        REG_DWORD,
        REG_DWORD_BIG_ENDIAN,
        REG_LINK,
        REG_MULTI_SZ,
        REG_RESOURCE_LIST,
        REG_FULL_RESOURCE_DESCRIPTOR,
        REG_RESOURCE_REQUIREMENTS_LIST,
        REG_QWORD,
    ];
}

impl From<RegType> for ValueType {
    fn from(t: RegType) -> Self {
        ValueType(t as u32)
    }
}

impl TryFrom<ValueType> for RegType {
    /// A type number without a name (past `REG_QWORD`): it comes back.
    type Error = ValueType;

    fn try_from(t: ValueType) -> Result<Self, ValueType> {
        RegType::ALL.get(t.0 as usize).copied().ok_or(t)
    }
}

impl From<RegType> for u32 {
    fn from(t: RegType) -> Self {
        t as u32
    }
}

/// What a create found, as winreg's `RegDisposition`.
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum RegDisposition {
    /// The key did not exist and was created.
    REG_CREATED_NEW_KEY = 1,
    /// The key existed and was opened.
    REG_OPENED_EXISTING_KEY = 2,
}

pub use RegDisposition::*;

impl From<Disposition> for RegDisposition {
    fn from(d: Disposition) -> Self {
        match d {
            Disposition::CreatedNewKey => REG_CREATED_NEW_KEY,
            Disposition::OpenedExistingKey => REG_OPENED_EXISTING_KEY,
        }
    }
}

impl From<RegDisposition> for Disposition {
    fn from(d: RegDisposition) -> Self {
        match d {
            REG_CREATED_NEW_KEY => Disposition::CreatedNewKey,
            REG_OPENED_EXISTING_KEY => Disposition::OpenedExistingKey,
        }
    }
}
