//! How a box's private hive records what the box did beyond plain keys and values: deleted
//! keys and values, keys whose base content is hidden, renames, and the base key's state when
//! the box first changed it. The private hive is a real regf hive; these are ordinary values
//! with reserved names and types, so any regf tool opens it and `box diff` reads it back.
//!
//! A value a boxed program names `hivebox:...` is stored with the prefix doubled
//! (`hivebox:hivebox:...`), so no program can forge a marker.

use crate::{Value, ValueType};

/// The prefix of every reserved value name.
pub const PREFIX: &str = "hivebox:";
/// On a private key: the key is deleted in the box (the base key and its subtree are hidden).
/// Its data is empty (`REG_NONE`).
pub const DELETED: &str = "hivebox:deleted";
/// On a private key: the key exists, but the base key's values and subkeys are hidden (it was
/// deleted in the box and created again). `REG_NONE`.
pub const OPAQUE: &str = "hivebox:opaque";
/// On a private key: the key was made by renaming another key in the box; the data
/// (`REG_SZ`) is the native path the key had. Base content at the new path is hidden, as with
/// [`OPAQUE`].
pub const RENAMED_FROM: &str = "hivebox:renamed-from";
/// On a private key: the base key's last write time (`REG_QWORD`) when the box first changed
/// the key; `box commit` reports a conflict when the base key has changed since.
pub const BASE_TIME: &str = "hivebox:base-time";
/// The type of a value tombstone: a value of this type (no data) hides the base value of the
/// same name. The bytes spell `HBXD`.
pub const TOMBSTONE: ValueType = ValueType(0x4458_4248);

/// The name a box's value is stored under in the private hive.
pub fn escape(name: &str) -> std::borrow::Cow<'_, str> {
    if name.len() >= PREFIX.len() && name[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        std::borrow::Cow::Owned(format!("{PREFIX}{name}"))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// What a stored value name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored<'a> {
    /// A value of the box, with its name as the program gave it.
    Value(&'a str),
    /// One of the markers above.
    Marker,
}

/// Reads a stored value name back.
pub fn unescape(stored: &str) -> Stored<'_> {
    if stored.len() >= PREFIX.len() && stored[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
        let rest = &stored[PREFIX.len()..];
        if rest.len() >= PREFIX.len() && rest[..PREFIX.len()].eq_ignore_ascii_case(PREFIX) {
            return Stored::Value(rest);
        }
        return Stored::Marker;
    }
    Stored::Value(stored)
}

/// A value tombstone.
pub fn tombstone() -> Value {
    Value { ty: TOMBSTONE, data: Vec::new() }
}

/// Whether a stored value is a tombstone.
pub fn is_tombstone(v: &Value) -> bool {
    v.ty == TOMBSTONE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names_never_read_as_markers() {
        for name in ["", "x", "hivebox", "hivebox:deleted", "HIVEBOX:opaque", "hivebox:hivebox:x"] {
            assert_eq!(unescape(&escape(name)), Stored::Value(name), "{name:?}");
        }
        assert_eq!(unescape(DELETED), Stored::Marker);
        assert_eq!(unescape(BASE_TIME), Stored::Marker);
        assert_eq!(escape("plain"), "plain");
    }
}
