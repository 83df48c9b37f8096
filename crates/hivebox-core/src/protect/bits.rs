//! WdFilter's numbers: the key rule bits (`MP_REG_RULES`), the process flags and process rules,
//! and the operations the protection filter handles. Values are those of WdFilter 4.18
//! (`reference/cm-callbacks.md` section 4.3 and 4.5).

use crate::RegNotifyClass;
use std::fmt;

/// `CreateKeyOperation`: notify key creation.
pub const CREATE_KEY_OPERATION: u32 = 0x1;
/// `RenameKeyOperation`.
pub const RENAME_KEY_OPERATION: u32 = 0x4;
/// `DeleteKeyOperation`.
pub const DELETE_KEY_OPERATION: u32 = 0x10;
/// `SetValueKeyOperation`.
pub const SET_VALUE_KEY_OPERATION: u32 = 0x100;
/// `SetValueRetrieveKeyValueInfo`: fetch the value being overwritten.
pub const SET_VALUE_RETRIEVE_KEY_VALUE_INFO: u32 = 0x400;
/// `DeleteValueKeyOperation`.
pub const DELETE_VALUE_KEY_OPERATION: u32 = 0x800;
/// `DeleteValueRetrieveKeyValueInfo`: fetch the value being deleted.
pub const DELETE_VALUE_RETRIEVE_KEY_VALUE_INFO: u32 = 0x2000;
/// `RestoreKeyOperation`.
pub const RESTORE_KEY_OPERATION: u32 = 0x4000;
/// `ReplaceKeyOperation`.
pub const REPLACE_KEY_OPERATION: u32 = 0x8000;
/// `CreateDenied`.
pub const CREATE_DENIED: u32 = 0x10000;
/// `RenameDenied`.
pub const RENAME_DENIED: u32 = 0x20000;
/// `DeleteDenied` (delete-key and delete-value share it).
pub const DELETE_DENIED: u32 = 0x40000;
/// `SetValueDenied`.
pub const SET_VALUE_DENIED: u32 = 0x80000;
/// `ReplaceDenied`.
pub const REPLACE_DENIED: u32 = 0x100000;
/// `RestoreDenied`.
pub const RESTORE_DENIED: u32 = 0x200000;
/// Every Denied bit.
pub const ALL_DENIED: u32 =
    CREATE_DENIED | RENAME_DENIED | DELETE_DENIED | SET_VALUE_DENIED | REPLACE_DENIED | RESTORE_DENIED;
/// `TamperProtectionActive`: deny whoever the caller is.
pub const TAMPER_PROTECTION_ACTIVE: u32 = 0x400000;

/// `ProcessFlags`: `ExcludedProcess`.
pub const EXCLUDED_PROCESS: u32 = 0x1;
/// `ProcessFlags`: `MsMpEngProcess` (hivebox: the service).
pub const MSMPENG_PROCESS: u32 = 0x8;
/// `ProcessFlags`: `MpServiceSidProcess` (hivebox: the service).
pub const MP_SERVICE_SID_PROCESS: u32 = 0x10;
/// `ProcessFlags`: `FriendlyProcess`.
pub const FRIENDLY_PROCESS: u32 = 0x20;

/// `ProcessRules`: `AllowAllRegistryOperations`.
pub const ALLOW_ALL_REGISTRY_OPERATIONS: u32 = 0x400;
/// `ProcessRules`: `NotifyRegistryOperationSync`: this process's notifications are synchronous.
pub const NOTIFY_REGISTRY_OPERATION_SYNC: u32 = 0x200000;

/// The process flags that exempt a caller from Denied bits.
pub const EXEMPT_FLAGS: u32 = EXCLUDED_PROCESS | FRIENDLY_PROCESS | MP_SERVICE_SID_PROCESS;
/// The process flags that exempt a caller from the hardening list.
pub const HARDENING_EXEMPT_FLAGS: u32 = MSMPENG_PROCESS | FRIENDLY_PROCESS | MP_SERVICE_SID_PROCESS;

/// A registry operation the protection filter handles.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum RegOp {
    /// Creation of a key that did not exist.
    CreateKey,
    /// Deletion of a key.
    DeleteKey,
    /// Setting a value.
    SetValue,
    /// Deleting a value.
    DeleteValue,
    /// Renaming a key.
    RenameKey,
    /// `NtRestoreKey`.
    RestoreKey,
    /// `NtReplaceKey`.
    ReplaceKey,
}

impl RegOp {
    /// Every operation, in policy order.
    pub const ALL: [RegOp; 7] = [
        RegOp::CreateKey,
        RegOp::DeleteKey,
        RegOp::SetValue,
        RegOp::DeleteValue,
        RegOp::RenameKey,
        RegOp::RestoreKey,
        RegOp::ReplaceKey,
    ];

    /// The rule bit that asks for a notification of this operation.
    pub const fn operation_bit(self) -> u32 {
        match self {
            RegOp::CreateKey => CREATE_KEY_OPERATION,
            RegOp::DeleteKey => DELETE_KEY_OPERATION,
            RegOp::SetValue => SET_VALUE_KEY_OPERATION,
            RegOp::DeleteValue => DELETE_VALUE_KEY_OPERATION,
            RegOp::RenameKey => RENAME_KEY_OPERATION,
            RegOp::RestoreKey => RESTORE_KEY_OPERATION,
            RegOp::ReplaceKey => REPLACE_KEY_OPERATION,
        }
    }

    /// The rule bit that denies this operation.
    pub const fn denied_bit(self) -> u32 {
        match self {
            RegOp::CreateKey => CREATE_DENIED,
            RegOp::DeleteKey | RegOp::DeleteValue => DELETE_DENIED,
            RegOp::SetValue => SET_VALUE_DENIED,
            RegOp::RenameKey => RENAME_DENIED,
            RegOp::RestoreKey => RESTORE_DENIED,
            RegOp::ReplaceKey => REPLACE_DENIED,
        }
    }

    /// The rule bit that asks for the old value (set/delete value only).
    pub const fn retrieve_bit(self) -> u32 {
        match self {
            RegOp::SetValue => SET_VALUE_RETRIEVE_KEY_VALUE_INFO,
            RegOp::DeleteValue => DELETE_VALUE_RETRIEVE_KEY_VALUE_INFO,
            _ => 0,
        }
    }

    /// The match mask a pre handler passes: `Operation | Denied`.
    pub const fn mask(self) -> u32 {
        self.operation_bit() | self.denied_bit()
    }

    /// True for the operations on a value (matched against value-name patterns).
    pub const fn is_value_op(self) -> bool {
        matches!(self, RegOp::SetValue | RegOp::DeleteValue)
    }

    /// The policy file's name: `create-key`, `delete-key`, ...
    pub const fn name(self) -> &'static str {
        match self {
            RegOp::CreateKey => "create-key",
            RegOp::DeleteKey => "delete-key",
            RegOp::SetValue => "set-value",
            RegOp::DeleteValue => "delete-value",
            RegOp::RenameKey => "rename-key",
            RegOp::RestoreKey => "restore",
            RegOp::ReplaceKey => "replace",
        }
    }

    /// Parses a policy operation name.
    pub fn from_name(name: &str) -> Option<RegOp> {
        RegOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Sysmon's `EventType` for this operation (`RestoreKey`/`ReplaceKey` are hivebox's).
    pub const fn event_type(self) -> &'static str {
        match self {
            RegOp::CreateKey => "CreateKey",
            RegOp::DeleteKey => "DeleteKey",
            RegOp::SetValue => "SetValue",
            RegOp::DeleteValue => "DeleteValue",
            RegOp::RenameKey => "RenameKey",
            RegOp::RestoreKey => "RestoreKey",
            RegOp::ReplaceKey => "ReplaceKey",
        }
    }

    /// Parses Sysmon's `EventType`.
    pub fn from_event_type(name: &str) -> Option<RegOp> {
        RegOp::ALL.into_iter().find(|op| op.event_type().eq_ignore_ascii_case(name))
    }

    /// The operation a pre notification class stands for, if the filter handles it.
    pub fn from_pre_class(class: RegNotifyClass) -> Option<RegOp> {
        use RegNotifyClass::*;
        Some(match class {
            RegNtPreCreateKeyEx => RegOp::CreateKey,
            RegNtPreDeleteKey => RegOp::DeleteKey,
            RegNtPreSetValueKey => RegOp::SetValue,
            RegNtPreDeleteValueKey => RegOp::DeleteValue,
            RegNtPreRenameKey => RegOp::RenameKey,
            RegNtPreRestoreKey => RegOp::RestoreKey,
            RegNtPreReplaceKey => RegOp::ReplaceKey,
            _ => return None,
        })
    }
}

impl fmt::Display for RegOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of operations, one bit per [`RegOp`].
#[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct OpSet(u8);

impl OpSet {
    /// No operation.
    pub const EMPTY: OpSet = OpSet(0);

    /// Every operation.
    pub const fn all() -> OpSet {
        OpSet(0x7F)
    }

    /// Adds an operation.
    pub fn insert(&mut self, op: RegOp) {
        self.0 |= 1 << op as u8;
    }

    /// True if `op` is in the set.
    pub const fn contains(self, op: RegOp) -> bool {
        self.0 & (1 << op as u8) != 0
    }

    /// True if the set is empty.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Operations in both sets.
    pub const fn intersect(self, other: OpSet) -> OpSet {
        OpSet(self.0 & other.0)
    }

    /// Operations in either set.
    pub const fn union(self, other: OpSet) -> OpSet {
        OpSet(self.0 | other.0)
    }

    /// The operations in the set.
    pub fn iter(self) -> impl Iterator<Item = RegOp> {
        RegOp::ALL.into_iter().filter(move |op| self.contains(*op))
    }
}

impl FromIterator<RegOp> for OpSet {
    fn from_iter<I: IntoIterator<Item = RegOp>>(iter: I) -> Self {
        let mut s = OpSet::EMPTY;
        for op in iter {
            s.insert(op);
        }
        s
    }
}

impl fmt::Debug for OpSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(RegOp::name)).finish()
    }
}
