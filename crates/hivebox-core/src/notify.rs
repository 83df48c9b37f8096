//! `REG_NOTIFY_CLASS`: the notification classes with Windows' exact numbers.
//!
//! The values follow the WDK's `wdm.h` enum order (checked against the class pairs the
//! decompiled `Nt*` callers pass; see `reference/cm-callbacks.md` section 1). Classes 10..=13 are
//! the Windows XP create/open notifications: they are defined here and never dispatched.

/// A registry notification class, `#[repr(i32)]` with the WDK's numbers.
#[allow(missing_docs)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
#[repr(i32)]
pub enum RegNotifyClass {
    RegNtPreDeleteKey = 0,
    RegNtPreSetValueKey = 1,
    RegNtPreDeleteValueKey = 2,
    RegNtPreSetInformationKey = 3,
    RegNtPreRenameKey = 4,
    RegNtPreEnumerateKey = 5,
    RegNtPreEnumerateValueKey = 6,
    RegNtPreQueryKey = 7,
    RegNtPreQueryValueKey = 8,
    RegNtPreQueryMultipleValueKey = 9,
    RegNtPreCreateKey = 10,
    RegNtPostCreateKey = 11,
    RegNtPreOpenKey = 12,
    RegNtPostOpenKey = 13,
    RegNtPreKeyHandleClose = 14,
    RegNtPostDeleteKey = 15,
    RegNtPostSetValueKey = 16,
    RegNtPostDeleteValueKey = 17,
    RegNtPostSetInformationKey = 18,
    RegNtPostRenameKey = 19,
    RegNtPostEnumerateKey = 20,
    RegNtPostEnumerateValueKey = 21,
    RegNtPostQueryKey = 22,
    RegNtPostQueryValueKey = 23,
    RegNtPostQueryMultipleValueKey = 24,
    RegNtPostKeyHandleClose = 25,
    RegNtPreCreateKeyEx = 26,
    RegNtPostCreateKeyEx = 27,
    RegNtPreOpenKeyEx = 28,
    RegNtPostOpenKeyEx = 29,
    RegNtPreFlushKey = 30,
    RegNtPostFlushKey = 31,
    RegNtPreLoadKey = 32,
    RegNtPostLoadKey = 33,
    RegNtPreUnLoadKey = 34,
    RegNtPostUnLoadKey = 35,
    RegNtPreQueryKeySecurity = 36,
    RegNtPostQueryKeySecurity = 37,
    RegNtPreSetKeySecurity = 38,
    RegNtPostSetKeySecurity = 39,
    RegNtCallbackObjectContextCleanup = 40,
    RegNtPreRestoreKey = 41,
    RegNtPostRestoreKey = 42,
    RegNtPreSaveKey = 43,
    RegNtPostSaveKey = 44,
    RegNtPreReplaceKey = 45,
    RegNtPostReplaceKey = 46,
    RegNtPreQueryKeyName = 47,
    RegNtPostQueryKeyName = 48,
    RegNtPreSaveMergedKey = 49,
    RegNtPostSaveMergedKey = 50,
    MaxRegNtNotifyClass = 51,
}

#[allow(non_upper_case_globals, missing_docs)]
impl RegNotifyClass {
    // The Windows XP names of classes 0..=9 and 14.
    pub const RegNtDeleteKey: Self = Self::RegNtPreDeleteKey;
    pub const RegNtSetValueKey: Self = Self::RegNtPreSetValueKey;
    pub const RegNtDeleteValueKey: Self = Self::RegNtPreDeleteValueKey;
    pub const RegNtSetInformationKey: Self = Self::RegNtPreSetInformationKey;
    pub const RegNtRenameKey: Self = Self::RegNtPreRenameKey;
    pub const RegNtEnumerateKey: Self = Self::RegNtPreEnumerateKey;
    pub const RegNtEnumerateValueKey: Self = Self::RegNtPreEnumerateValueKey;
    pub const RegNtQueryKey: Self = Self::RegNtPreQueryKey;
    pub const RegNtQueryValueKey: Self = Self::RegNtPreQueryValueKey;
    pub const RegNtQueryMultipleValueKey: Self = Self::RegNtPreQueryMultipleValueKey;
    pub const RegNtKeyHandleClose: Self = Self::RegNtPreKeyHandleClose;
}

const ALL: [RegNotifyClass; 52] = {
    use RegNotifyClass::*;
    [
        RegNtPreDeleteKey,
        RegNtPreSetValueKey,
        RegNtPreDeleteValueKey,
        RegNtPreSetInformationKey,
        RegNtPreRenameKey,
        RegNtPreEnumerateKey,
        RegNtPreEnumerateValueKey,
        RegNtPreQueryKey,
        RegNtPreQueryValueKey,
        RegNtPreQueryMultipleValueKey,
        RegNtPreCreateKey,
        RegNtPostCreateKey,
        RegNtPreOpenKey,
        RegNtPostOpenKey,
        RegNtPreKeyHandleClose,
        RegNtPostDeleteKey,
        RegNtPostSetValueKey,
        RegNtPostDeleteValueKey,
        RegNtPostSetInformationKey,
        RegNtPostRenameKey,
        RegNtPostEnumerateKey,
        RegNtPostEnumerateValueKey,
        RegNtPostQueryKey,
        RegNtPostQueryValueKey,
        RegNtPostQueryMultipleValueKey,
        RegNtPostKeyHandleClose,
        RegNtPreCreateKeyEx,
        RegNtPostCreateKeyEx,
        RegNtPreOpenKeyEx,
        RegNtPostOpenKeyEx,
        RegNtPreFlushKey,
        RegNtPostFlushKey,
        RegNtPreLoadKey,
        RegNtPostLoadKey,
        RegNtPreUnLoadKey,
        RegNtPostUnLoadKey,
        RegNtPreQueryKeySecurity,
        RegNtPostQueryKeySecurity,
        RegNtPreSetKeySecurity,
        RegNtPostSetKeySecurity,
        RegNtCallbackObjectContextCleanup,
        RegNtPreRestoreKey,
        RegNtPostRestoreKey,
        RegNtPreSaveKey,
        RegNtPostSaveKey,
        RegNtPreReplaceKey,
        RegNtPostReplaceKey,
        RegNtPreQueryKeyName,
        RegNtPostQueryKeyName,
        RegNtPreSaveMergedKey,
        RegNtPostSaveMergedKey,
        MaxRegNtNotifyClass,
    ]
};

impl RegNotifyClass {
    /// The class with this number, if there is one.
    pub fn from_i32(value: i32) -> Option<Self> {
        usize::try_from(value).ok().and_then(|i| ALL.get(i).copied())
    }

    /// Every class, in numeric order (including `MaxRegNtNotifyClass`).
    pub fn all() -> &'static [RegNotifyClass] {
        &ALL
    }

    /// The post class paired with a pre class: `k + 15` for 0..=9, 25 for 14, `p + 1` from 26 on.
    pub fn post_class(self) -> Option<Self> {
        let n = self as i32;
        let post = match n {
            0..=9 => n + 15,
            14 => 25,
            26..=38 if n % 2 == 0 => n + 1,
            41 | 43 | 45 | 47 | 49 => n + 1,
            _ => return None,
        };
        Self::from_i32(post)
    }

    /// True for the classes a pre callback receives.
    pub fn is_pre(self) -> bool {
        let n = self as i32;
        matches!(n, 0..=10 | 12 | 14) || (26..=38).contains(&n) && n % 2 == 0 || matches!(n, 41 | 43 | 45 | 47 | 49)
    }

    /// True for the classes a post callback receives.
    pub fn is_post(self) -> bool {
        !self.is_pre() && !matches!(self, Self::RegNtCallbackObjectContextCleanup | Self::MaxRegNtNotifyClass)
    }
}

#[cfg(test)]
mod tests {
    use super::RegNotifyClass::{self, *};

    #[test]
    fn numbers_are_windows_numbers() {
        for (i, class) in RegNotifyClass::all().iter().enumerate() {
            assert_eq!(*class as i32, i as i32);
        }
        assert_eq!(RegNtPreCreateKeyEx as i32, 0x1A);
        assert_eq!(RegNtPreOpenKeyEx as i32, 0x1C);
        assert_eq!(RegNtCallbackObjectContextCleanup as i32, 0x28);
        assert_eq!(RegNtPreRestoreKey as i32, 0x29);
        assert_eq!(RegNtPreQueryKeyName as i32, 0x2F);
        assert_eq!(RegNtPostSaveMergedKey as i32, 0x32);
        assert_eq!(MaxRegNtNotifyClass as i32, 0x33);
        assert_eq!(RegNotifyClass::RegNtKeyHandleClose, RegNtPreKeyHandleClose);
    }

    #[test]
    fn pairs_match_the_kernel_callers() {
        for (pre, post) in
            [(7, 22), (6, 21), (0, 15), (1, 16), (14, 25), (0x2B, 0x2C), (0x31, 0x32), (26, 27), (28, 29)]
        {
            let pre = RegNotifyClass::from_i32(pre).unwrap();
            assert!(pre.is_pre(), "{pre:?}");
            assert_eq!(pre.post_class().map(|c| c as i32), Some(post));
            assert!(RegNotifyClass::from_i32(post).unwrap().is_post());
        }
        assert_eq!(RegNtCallbackObjectContextCleanup.post_class(), None);
        assert!(!RegNtCallbackObjectContextCleanup.is_pre());
        assert!(!RegNtCallbackObjectContextCleanup.is_post());
        assert_eq!(RegNotifyClass::from_i32(52), None);
    }
}
