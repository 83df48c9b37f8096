//! Key and value names: Windows' limits and its case-insensitive, case-preserving comparison.
//!
//! Names compare the way the Configuration Manager compares them: each character is upcased
//! (a simple one-to-one mapping, like `RtlUpcaseUnicodeChar`; characters whose uppercase is
//! several characters stay as they are) and the results are compared by code point.

use std::cmp::Ordering;

/// Longest key name component, in UTF-16 code units.
pub const MAX_KEY_NAME_LEN: usize = 255;
/// Longest value name, in UTF-16 code units.
pub const MAX_VALUE_NAME_LEN: usize = 16_383;
/// Deepest key path, in components below `\REGISTRY`.
pub const MAX_PATH_DEPTH: usize = 512;

/// A name that breaks Windows' naming rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NameError {
    /// An empty key name component (`A\\B`, or an empty path where a name is needed).
    #[error("empty key name component in {path:?}")]
    EmptyComponent {
        /// The whole path as given.
        path: String,
    },
    /// A key name component longer than 255 UTF-16 code units.
    #[error("key name {name:?} is {len} characters long; the limit is {MAX_KEY_NAME_LEN}")]
    KeyNameTooLong {
        /// The first characters of the name.
        name: String,
        /// Its length in UTF-16 code units.
        len: usize,
    },
    /// A value name longer than 16383 UTF-16 code units.
    #[error("value name is {len} characters long; the limit is {MAX_VALUE_NAME_LEN}")]
    ValueNameTooLong {
        /// Its length in UTF-16 code units.
        len: usize,
    },
    /// A path deeper than 512 levels.
    #[error("key path is {depth} levels deep; the limit is {MAX_PATH_DEPTH}")]
    TooDeep {
        /// The depth.
        depth: usize,
    },
}

impl NameError {
    /// The NTSTATUS the registry returns for this error.
    pub fn status(&self) -> crate::NtStatus {
        use crate::NtStatus as S;
        match self {
            NameError::EmptyComponent { .. } => S::STATUS_OBJECT_NAME_INVALID,
            NameError::KeyNameTooLong { .. } | NameError::ValueNameTooLong { .. } => S::STATUS_INVALID_PARAMETER,
            NameError::TooDeep { .. } => S::STATUS_NAME_TOO_LONG,
        }
    }
}

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.encode_utf16().count() }
}

/// Checks one key name component.
pub fn check_key_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::EmptyComponent { path: name.to_owned() });
    }
    let len = utf16_len(name);
    if len > MAX_KEY_NAME_LEN {
        return Err(NameError::KeyNameTooLong { name: name.chars().take(32).collect::<String>() + "…", len });
    }
    // NUL is allowed: names are counted strings, and real hives hold names with NULs in them.
    Ok(())
}

/// Checks a value name (the empty name is the default value).
pub fn check_value_name(name: &str) -> Result<(), NameError> {
    let len = utf16_len(name);
    if len > MAX_VALUE_NAME_LEN {
        return Err(NameError::ValueNameTooLong { len });
    }
    Ok(())
}

/// Splits a relative key path into checked components. A single trailing `\` is allowed.
pub fn split_path(path: &str) -> Result<Vec<&str>, NameError> {
    // Sized up front (the separators are counted anyway), so the vector never regrows.
    let separators = path.bytes().filter(|&b| b == b'\\').count();
    let mut out = Vec::with_capacity((separators + 1).min(MAX_PATH_DEPTH + 1));
    for_each_component(path, |component| out.push(component))?;
    Ok(out)
}

/// Checks a relative key path the way [`split_path`] does, without collecting it; returns
/// the number of components.
pub fn check_path(path: &str) -> Result<usize, NameError> {
    for_each_component(path, |_| {})
}

/// Checks each component of a relative key path in order and hands it to `f`; returns the
/// number of components. The errors, and which one wins, are those of [`split_path`].
fn for_each_component<'a>(path: &'a str, mut f: impl FnMut(&'a str)) -> Result<usize, NameError> {
    let bytes = path.as_bytes();
    let trimmed = match bytes.last() {
        Some(b'\\') => &bytes[..bytes.len() - 1],
        _ => bytes,
    };
    if trimmed.is_empty() {
        return Ok(0);
    }
    // Plain ASCII without NUL (nearly every path; found in one branch-free pass): a component
    // is then valid exactly when it is non-empty and at most `MAX_KEY_NAME_LEN` bytes long, so
    // `check_key_name` is needed only to report a name that is too long.
    let plain = trimmed.iter().fold(0u8, |bad, &b| bad | (b & 0x80) | u8::from(b == 0)) == 0;
    let mut count = 0;
    let mut start = 0;
    loop {
        let mut end = start;
        while end < trimmed.len() && trimmed[end] != b'\\' {
            end += 1;
        }
        // `\` is ASCII, so `start` and `end` are character boundaries and `get` succeeds.
        let name = path.get(start..end).unwrap_or_default();
        if name.is_empty() {
            return Err(NameError::EmptyComponent { path: path.to_owned() });
        }
        if !plain || name.len() > MAX_KEY_NAME_LEN {
            check_key_name(name)?;
        }
        f(name);
        count += 1;
        if count > MAX_PATH_DEPTH {
            return Err(NameError::TooDeep { depth: trimmed.split(|&b| b == b'\\').count() });
        }
        if end == trimmed.len() {
            return Ok(count);
        }
        start = end + 1;
    }
}

#[inline]
fn upcase_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    // Windows upcases one UTF-16 code unit at a time: characters outside the BMP (two units,
    // surrogates) are never case-mapped, and a BMP character maps only to a BMP character.
    if u32::from(c) > 0xFFFF {
        return c;
    }
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(u), None) if u32::from(u) <= 0xFFFF => u,
        _ => c,
    }
}

/// Compares two already-upcased names as Windows orders them: by UTF-16 code unit.
#[inline]
pub fn cmp_upcased(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        return a.cmp(b);
    }
    a.encode_utf16().cmp(b.encode_utf16())
}

fn utf16_units(chars: impl Iterator<Item = char>) -> impl Iterator<Item = u16> {
    chars.flat_map(|c| {
        let mut buf = [0u16; 2];
        let n = c.encode_utf16(&mut buf).len();
        buf.into_iter().take(n)
    })
}

/// The upcased form used for comparisons and sorting.
pub fn upcase(name: &str) -> String {
    if name.is_ascii() {
        return name.to_ascii_uppercase();
    }
    name.chars().map(upcase_char).collect()
}

/// Compares a name against an already-upcased name, without allocating.
#[inline]
pub fn cmp_with_upcased(name: &str, upcased: &str) -> Ordering {
    if name.is_ascii() && upcased.is_ascii() {
        let (a, b) = (name.as_bytes(), upcased.as_bytes());
        for (x, y) in a.iter().zip(b) {
            match x.to_ascii_uppercase().cmp(y) {
                Ordering::Equal => continue,
                other => return other,
            }
        }
        return a.len().cmp(&b.len());
    }
    utf16_units(name.chars().map(upcase_char)).cmp(upcased.encode_utf16())
}

/// Case-insensitive comparison of two names.
pub fn cmp_names(a: &str, b: &str) -> Ordering {
    utf16_units(a.chars().map(upcase_char)).cmp(utf16_units(b.chars().map(upcase_char)))
}

/// Case-insensitive equality of two names.
pub fn eq_names(a: &str, b: &str) -> bool {
    if a.is_ascii() && b.is_ascii() {
        return a.eq_ignore_ascii_case(b);
    }
    cmp_names(a, b) == Ordering::Equal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_insensitive_and_unicode() {
        assert!(eq_names("Software", "SOFTWARE"));
        assert!(eq_names("Ärger", "äRGER"));
        assert!(!eq_names("Soft", "Software"));
        assert_eq!(upcase("straße"), "STRAßE");
        assert_eq!(cmp_with_upcased("run", "RUN"), Ordering::Equal);
        assert_eq!(cmp_with_upcased("Run", "RUNONCE"), Ordering::Less);
        assert_eq!(cmp_with_upcased("Ærø", &upcase("æRØ")), Ordering::Equal);
    }

    #[test]
    fn windows_order_and_folding() {
        // Outside the BMP nothing is case-folded: Deseret capital and small letters differ.
        assert!(!eq_names("\u{10438}", "\u{10410}"));
        // Code units compare as numbers: a surrogate pair sorts below U+E000..U+FFFF.
        assert_eq!(cmp_upcased("\u{10000}", "\u{E000}"), Ordering::Less);
        assert_eq!(cmp_names("\u{10000}", "\u{FF21}"), Ordering::Less);
        // NUL is an ordinary character in a counted name.
        assert!(check_key_name("zero\0key").is_ok());
    }

    #[test]
    fn limits() {
        assert!(check_key_name(&"k".repeat(255)).is_ok());
        assert!(matches!(check_key_name(&"k".repeat(256)), Err(NameError::KeyNameTooLong { len: 256, .. })));
        assert!(check_value_name(&"v".repeat(16_383)).is_ok());
        assert!(check_value_name(&"v".repeat(16_384)).is_err());
        assert!(check_value_name("").is_ok());
        // 255 characters outside the BMP are 510 UTF-16 code units.
        assert!(check_key_name(&"😀".repeat(128)).is_err());
    }

    #[test]
    fn paths() {
        assert_eq!(split_path("A\\B\\").unwrap(), vec!["A", "B"]);
        assert!(split_path("").unwrap().is_empty());
        assert!(matches!(split_path("A\\\\B"), Err(NameError::EmptyComponent { .. })));
        let deep = vec!["k"; 513].join("\\");
        assert!(matches!(split_path(&deep), Err(NameError::TooDeep { .. })));
        assert_eq!(split_path(&vec!["k"; 512].join("\\")).unwrap().len(), 512);
    }

    #[test]
    fn check_path_agrees_with_split_path() {
        let deep = vec!["k"; 513].join("\\");
        let long = format!("A\\{}", "x".repeat(256));
        for path in ["", "\\", "A", "A\\", "A\\\\", "\\A", "A\\\\B", "A\\B\\C", "Ä\\😀\\b", "A\\B\0", &deep, &long] {
            assert_eq!(check_path(path), split_path(path).map(|v| v.len()), "{path:?}");
        }
        assert_eq!(split_path("Ä\\😀\\b").unwrap(), vec!["Ä", "😀", "b"]);
    }
}
