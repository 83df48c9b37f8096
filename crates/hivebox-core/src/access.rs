//! Access masks, create/open options and object attributes, with Windows' numbers.

/// `KEY_QUERY_VALUE`
pub const KEY_QUERY_VALUE: u32 = 0x0001;
/// `KEY_SET_VALUE`
pub const KEY_SET_VALUE: u32 = 0x0002;
/// `KEY_CREATE_SUB_KEY`
pub const KEY_CREATE_SUB_KEY: u32 = 0x0004;
/// `KEY_ENUMERATE_SUB_KEYS`
pub const KEY_ENUMERATE_SUB_KEYS: u32 = 0x0008;
/// `KEY_NOTIFY`
pub const KEY_NOTIFY: u32 = 0x0010;
/// `KEY_CREATE_LINK`
pub const KEY_CREATE_LINK: u32 = 0x0020;
/// `KEY_WOW64_64KEY`
pub const KEY_WOW64_64KEY: u32 = 0x0100;
/// `KEY_WOW64_32KEY`
pub const KEY_WOW64_32KEY: u32 = 0x0200;
/// `DELETE`
pub const DELETE: u32 = 0x0001_0000;
/// `READ_CONTROL`
pub const READ_CONTROL: u32 = 0x0002_0000;
/// `WRITE_DAC`
pub const WRITE_DAC: u32 = 0x0004_0000;
/// `WRITE_OWNER`
pub const WRITE_OWNER: u32 = 0x0008_0000;
/// `SYNCHRONIZE`
pub const SYNCHRONIZE: u32 = 0x0010_0000;
/// `KEY_READ`
pub const KEY_READ: u32 = READ_CONTROL | KEY_QUERY_VALUE | KEY_ENUMERATE_SUB_KEYS | KEY_NOTIFY;
/// `KEY_WRITE`
pub const KEY_WRITE: u32 = READ_CONTROL | KEY_SET_VALUE | KEY_CREATE_SUB_KEY;
/// `KEY_EXECUTE`
pub const KEY_EXECUTE: u32 = KEY_READ;
/// `KEY_ALL_ACCESS`
pub const KEY_ALL_ACCESS: u32 = 0x000F_003F;
/// `MAXIMUM_ALLOWED`
pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
/// `GENERIC_ALL`
pub const GENERIC_ALL: u32 = 0x1000_0000;
/// `GENERIC_EXECUTE`
pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
/// `GENERIC_WRITE`
pub const GENERIC_WRITE: u32 = 0x4000_0000;
/// `GENERIC_READ`
pub const GENERIC_READ: u32 = 0x8000_0000;

/// `REG_OPTION_VOLATILE`: the key lives only in memory.
pub const REG_OPTION_VOLATILE: u32 = 0x1;
/// `REG_OPTION_CREATE_LINK`: the key is a symbolic link.
pub const REG_OPTION_CREATE_LINK: u32 = 0x2;
/// `REG_OPTION_BACKUP_RESTORE`
pub const REG_OPTION_BACKUP_RESTORE: u32 = 0x4;
/// `REG_OPTION_OPEN_LINK`: open a link key itself rather than its target.
pub const REG_OPTION_OPEN_LINK: u32 = 0x8;

/// `OBJ_CASE_INSENSITIVE` (registry names are always compared case-insensitively).
pub const OBJ_CASE_INSENSITIVE: u32 = 0x40;
/// `OBJ_OPENLINK`
pub const OBJ_OPENLINK: u32 = 0x100;
/// `OBJ_KERNEL_HANDLE`
pub const OBJ_KERNEL_HANDLE: u32 = 0x200;
/// `OBJ_FORCE_ACCESS_CHECK`: check access even for a kernel-mode caller.
pub const OBJ_FORCE_ACCESS_CHECK: u32 = 0x400;

/// `REG_NOTIFY_CHANGE_NAME`: a subkey was added, deleted or renamed.
pub const REG_NOTIFY_CHANGE_NAME: u32 = 0x1;
/// `REG_NOTIFY_CHANGE_ATTRIBUTES`
pub const REG_NOTIFY_CHANGE_ATTRIBUTES: u32 = 0x2;
/// `REG_NOTIFY_CHANGE_LAST_SET`: a value was set or deleted.
pub const REG_NOTIFY_CHANGE_LAST_SET: u32 = 0x4;
/// `REG_NOTIFY_CHANGE_SECURITY`
pub const REG_NOTIFY_CHANGE_SECURITY: u32 = 0x8;

/// Maps generic rights and `MAXIMUM_ALLOWED` to specific key rights.
pub fn map_generic(desired: u32) -> u32 {
    let mut mask = desired & !(GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ | MAXIMUM_ALLOWED);
    if desired & GENERIC_READ != 0 {
        mask |= KEY_READ;
    }
    if desired & GENERIC_WRITE != 0 {
        mask |= KEY_WRITE;
    }
    if desired & GENERIC_EXECUTE != 0 {
        mask |= KEY_EXECUTE;
    }
    if desired & (GENERIC_ALL | MAXIMUM_ALLOWED) != 0 {
        mask |= KEY_ALL_ACCESS;
    }
    mask
}

/// How a key was obtained by a create.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u32)]
pub enum Disposition {
    /// `REG_CREATED_NEW_KEY`
    CreatedNewKey = 1,
    /// `REG_OPENED_EXISTING_KEY`
    OpenedExistingKey = 2,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_mapping() {
        assert_eq!(KEY_READ, 0x20019);
        assert_eq!(KEY_WRITE, 0x20006);
        assert_eq!(map_generic(MAXIMUM_ALLOWED), KEY_ALL_ACCESS);
        assert_eq!(map_generic(GENERIC_READ | KEY_SET_VALUE), KEY_READ | KEY_SET_VALUE);
        assert_ne!(map_generic(MAXIMUM_ALLOWED), 0);
    }
}
