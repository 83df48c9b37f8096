//! What [`RegKey::query_info`](super::RegKey::query_info) returns.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A FILETIME: 100 ns intervals since 1601-01-01 UTC, in two halves as Windows' `FILETIME`.
#[allow(non_snake_case)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileTime {
    /// The high half (declared first so that the derived order is the time order).
    pub dwHighDateTime: u32,
    /// The low half.
    pub dwLowDateTime: u32,
}

impl FileTime {
    /// From a 64-bit FILETIME.
    pub const fn from_u64(t: u64) -> Self {
        FileTime { dwHighDateTime: (t >> 32) as u32, dwLowDateTime: t as u32 }
    }

    /// As a 64-bit FILETIME.
    pub const fn as_u64(&self) -> u64 {
        (self.dwHighDateTime as u64) << 32 | self.dwLowDateTime as u64
    }

    /// As a [`SystemTime`].
    pub fn to_system_time(&self) -> SystemTime {
        let t = self.as_u64();
        let since_1601 = Duration::from_secs(t / 10_000_000) + Duration::from_nanos(t % 10_000_000 * 100);
        let epoch = Duration::from_secs(hivebox_core::UNIX_EPOCH_FILETIME / 10_000_000);
        match since_1601.checked_sub(epoch) {
            Some(after) => UNIX_EPOCH + after,
            None => UNIX_EPOCH - (epoch - since_1601),
        }
    }
}

/// A calendar time in UTC, as Windows' `SYSTEMTIME`.
#[allow(non_snake_case, clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SYSTEMTIME {
    /// The year (1601-30827).
    pub wYear: u16,
    /// The month (1-12).
    pub wMonth: u16,
    /// The day of the week (0 is Sunday).
    pub wDayOfWeek: u16,
    /// The day of the month (1-31).
    pub wDay: u16,
    /// The hour (0-23).
    pub wHour: u16,
    /// The minute (0-59).
    pub wMinute: u16,
    /// The second (0-59).
    pub wSecond: u16,
    /// The millisecond (0-999).
    pub wMilliseconds: u16,
}

impl From<FileTime> for SYSTEMTIME {
    /// `FileTimeToSystemTime`.
    fn from(t: FileTime) -> Self {
        let t = t.as_u64();
        let ms = t / 10_000;
        let secs = ms / 1000;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        // 1601-01-01 was a Monday.
        let weekday = (days + 1) % 7;
        // Civil date from days since 1601-01-01, counting in 400-year cycles from 1601 (whose
        // March 1 starts an era in the algorithm below once shifted to 1600-03-01).
        let z = days as i64 + 306; // days since 1600-03-01
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = 1600 + era * 400 + yoe + i64::from(month <= 2);
        SYSTEMTIME {
            wYear: year as u16,
            wMonth: month as u16,
            wDayOfWeek: weekday as u16,
            wDay: day as u16,
            wHour: (rem / 3600) as u16,
            wMinute: (rem / 60 % 60) as u16,
            wSecond: (rem % 60) as u16,
            wMilliseconds: (ms % 1000) as u16,
        }
    }
}

/// A key's counts and sizes, as `RegQueryInfoKey` reports them (lengths of names in UTF-16
/// units without the terminating NUL, of data in bytes).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegKeyMetadata {
    /// Number of subkeys.
    pub sub_keys: u32,
    /// Longest subkey name.
    pub max_sub_key_len: u32,
    /// Longest subkey class name.
    pub max_class_len: u32,
    /// Number of values.
    pub values: u32,
    /// Longest value name.
    pub max_value_name_len: u32,
    /// Largest value data, in bytes.
    pub max_value_len: u32,
    /// When the key last changed.
    pub last_write_time: FileTime,
}

impl RegKeyMetadata {
    /// [`RegKeyMetadata::last_write_time`] as a calendar time (UTC).
    pub fn get_last_write_time_system(&self) -> SYSTEMTIME {
        SYSTEMTIME::from(self.last_write_time)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar() {
        let epoch = FileTime::from_u64(hivebox_core::UNIX_EPOCH_FILETIME);
        assert_eq!(epoch.to_system_time(), UNIX_EPOCH);
        let st = SYSTEMTIME::from(epoch);
        assert_eq!((st.wYear, st.wMonth, st.wDay, st.wDayOfWeek, st.wHour), (1970, 1, 1, 4, 0));
        let st = SYSTEMTIME::from(FileTime::from_u64(0));
        assert_eq!((st.wYear, st.wMonth, st.wDay, st.wDayOfWeek), (1601, 1, 1, 1));
        // 2024-02-29T12:34:56.789Z, a Thursday: Unix 1709210096.
        let t = hivebox_core::UNIX_EPOCH_FILETIME + 1_709_210_096 * 10_000_000 + 7_890_000;
        let st = SYSTEMTIME::from(FileTime::from_u64(t));
        assert_eq!(
            (st.wYear, st.wMonth, st.wDay, st.wDayOfWeek, st.wHour, st.wMinute, st.wSecond, st.wMilliseconds),
            (2024, 2, 29, 4, 12, 34, 56, 789)
        );
        assert_eq!(FileTime::from_u64(t).as_u64(), t);
        assert!(FileTime::from_u64(1 << 32) > FileTime::from_u64(u32::MAX as u64));
    }
}
