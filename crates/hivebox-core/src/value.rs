//! Registry values: the `REG_*` types and typed access to their data.
//!
//! Data is kept as the bytes Windows stores: strings are UTF-16LE with a terminating NUL,
//! `REG_MULTI_SZ` is a NUL-separated list ending in two NULs, numbers are little-endian
//! (big-endian for `REG_DWORD_BIG_ENDIAN`). As on Windows, a value's type is a label: the
//! registry stores any bytes under any type number; the typed accessors report a mismatch.

use std::fmt;

/// A registry value type number (`REG_*`). Any `u32` can be stored; 0..=11 have names.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueType(pub u32);

const TYPE_NAMES: [&str; 12] = [
    "REG_NONE",
    "REG_SZ",
    "REG_EXPAND_SZ",
    "REG_BINARY",
    "REG_DWORD",
    "REG_DWORD_BIG_ENDIAN",
    "REG_LINK",
    "REG_MULTI_SZ",
    "REG_RESOURCE_LIST",
    "REG_FULL_RESOURCE_DESCRIPTOR",
    "REG_RESOURCE_REQUIREMENTS_LIST",
    "REG_QWORD",
];

#[allow(missing_docs)]
impl ValueType {
    pub const REG_NONE: Self = Self(0);
    pub const REG_SZ: Self = Self(1);
    pub const REG_EXPAND_SZ: Self = Self(2);
    pub const REG_BINARY: Self = Self(3);
    pub const REG_DWORD: Self = Self(4);
    pub const REG_DWORD_BIG_ENDIAN: Self = Self(5);
    pub const REG_LINK: Self = Self(6);
    pub const REG_MULTI_SZ: Self = Self(7);
    pub const REG_RESOURCE_LIST: Self = Self(8);
    pub const REG_FULL_RESOURCE_DESCRIPTOR: Self = Self(9);
    pub const REG_RESOURCE_REQUIREMENTS_LIST: Self = Self(10);
    pub const REG_QWORD: Self = Self(11);
    /// `REG_DWORD_LITTLE_ENDIAN` is another name for `REG_DWORD`.
    pub const REG_DWORD_LITTLE_ENDIAN: Self = Self(4);
    /// `REG_QWORD_LITTLE_ENDIAN` is another name for `REG_QWORD`.
    pub const REG_QWORD_LITTLE_ENDIAN: Self = Self(11);

    /// The `REG_*` name, if the number has one.
    pub fn name(self) -> Option<&'static str> {
        TYPE_NAMES.get(self.0 as usize).copied()
    }

    /// Parses a type name (`REG_SZ`, case-insensitive; the `_LITTLE_ENDIAN` aliases too).
    pub fn from_name(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        match upper.as_str() {
            "REG_DWORD_LITTLE_ENDIAN" => return Some(Self::REG_DWORD),
            "REG_QWORD_LITTLE_ENDIAN" => return Some(Self::REG_QWORD),
            _ => {}
        }
        TYPE_NAMES.iter().position(|n| *n == upper).map(|i| Self(i as u32))
    }
}

impl fmt::Debug for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "REG_0x{:X}", self.0),
        }
    }
}

/// A value's data does not fit the way it is being read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueError {
    /// The value has another type than the accessor reads.
    #[error("value is {actual}, not {expected}")]
    WrongType {
        /// What the accessor reads.
        expected: &'static str,
        /// The value's type.
        actual: ValueType,
    },
    /// The data has the wrong length for its type.
    #[error("{ty} data is {len} bytes long; expected {expected}")]
    BadLength {
        /// The value's type.
        ty: ValueType,
        /// The data length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// String data is not valid UTF-16.
    #[error("{ty} data is not valid UTF-16")]
    BadUtf16 {
        /// The value's type.
        ty: ValueType,
    },
    /// Text given for a type does not parse as that type.
    #[error("{ty} data {text:?} does not parse: {reason}")]
    Parse {
        /// The target type.
        ty: ValueType,
        /// The text.
        text: String,
        /// Why.
        reason: &'static str,
    },
    /// An unknown type name.
    #[error(
        "unknown value type {0:?} (expected REG_SZ, REG_MULTI_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD, REG_BINARY, REG_NONE, ...)"
    )]
    UnknownType(String),
}

impl ValueError {
    /// The NTSTATUS the registry reports for it.
    pub fn status(&self) -> crate::NtStatus {
        match self {
            ValueError::UnknownType(_) => crate::NtStatus::STATUS_INVALID_PARAMETER,
            _ => crate::NtStatus::STATUS_DATA_ERROR,
        }
    }
}

/// A registry value: a type number and the data bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Value {
    /// The type label.
    pub ty: ValueType,
    /// The stored bytes.
    pub data: Vec<u8>,
}

fn utf16z(s: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len() * 2 + 2);
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    out.extend_from_slice(&[0, 0]);
    out
}

fn decode_utf16(ty: ValueType, bytes: &[u8]) -> Result<String, ValueError> {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).map_err(|_| ValueError::BadUtf16 { ty })
}

impl Value {
    /// A value of any type with raw data.
    pub fn new(ty: ValueType, data: impl Into<Vec<u8>>) -> Self {
        Self { ty, data: data.into() }
    }

    /// A `REG_NONE` value with no data.
    pub fn none() -> Self {
        Value { ty: ValueType::REG_NONE, data: Vec::new() }
    }

    /// `REG_SZ`.
    pub fn sz(s: &str) -> Self {
        Self::new(ValueType::REG_SZ, utf16z(s))
    }

    /// `REG_EXPAND_SZ`.
    pub fn expand_sz(s: &str) -> Self {
        Self::new(ValueType::REG_EXPAND_SZ, utf16z(s))
    }

    /// `REG_MULTI_SZ` from a list of strings.
    pub fn multi_sz<S: AsRef<str>>(items: &[S]) -> Self {
        let mut data = Vec::new();
        for item in items {
            data.extend(utf16z(item.as_ref()));
        }
        data.extend_from_slice(&[0, 0]);
        Self::new(ValueType::REG_MULTI_SZ, data)
    }

    /// `REG_DWORD`.
    pub fn dword(v: u32) -> Self {
        Self::new(ValueType::REG_DWORD, v.to_le_bytes())
    }

    /// `REG_DWORD_BIG_ENDIAN`.
    pub fn dword_big_endian(v: u32) -> Self {
        Self::new(ValueType::REG_DWORD_BIG_ENDIAN, v.to_be_bytes())
    }

    /// `REG_QWORD`.
    pub fn qword(v: u64) -> Self {
        Self::new(ValueType::REG_QWORD, v.to_le_bytes())
    }

    /// `REG_BINARY`.
    pub fn binary(bytes: &[u8]) -> Self {
        Self::new(ValueType::REG_BINARY, bytes)
    }

    /// `REG_LINK`: an absolute native path, UTF-16LE *without* a terminating NUL (as Windows
    /// stores `SymbolicLinkValue`).
    pub fn link(target: &str) -> Self {
        let mut data = utf16z(target);
        data.truncate(data.len() - 2);
        Self::new(ValueType::REG_LINK, data)
    }

    /// The string of a `REG_SZ`, `REG_EXPAND_SZ` or `REG_LINK` value, without its terminating NUL.
    pub fn as_string(&self) -> Result<String, ValueError> {
        if !matches!(self.ty, ValueType::REG_SZ | ValueType::REG_EXPAND_SZ | ValueType::REG_LINK) {
            return Err(ValueError::WrongType { expected: "a string type", actual: self.ty });
        }
        let s = decode_utf16(self.ty, &self.data)?;
        Ok(match s.find('\0') {
            Some(end) => s[..end].to_owned(),
            None => s,
        })
    }

    /// The strings of a `REG_MULTI_SZ` value.
    pub fn as_multi_sz(&self) -> Result<Vec<String>, ValueError> {
        if self.ty != ValueType::REG_MULTI_SZ {
            return Err(ValueError::WrongType { expected: "REG_MULTI_SZ", actual: self.ty });
        }
        let s = decode_utf16(self.ty, &self.data)?;
        let s = s.strip_suffix("\0\0").or_else(|| s.strip_suffix('\0')).unwrap_or(&s);
        if s.is_empty() {
            return Ok(Vec::new());
        }
        Ok(s.split('\0').map(str::to_owned).collect())
    }

    /// The number of a `REG_DWORD` or `REG_DWORD_BIG_ENDIAN` value.
    pub fn as_dword(&self) -> Result<u32, ValueError> {
        let bytes: [u8; 4] = self.data.as_slice().try_into().map_err(|_| ValueError::BadLength {
            ty: self.ty,
            len: self.data.len(),
            expected: 4,
        })?;
        match self.ty {
            ValueType::REG_DWORD => Ok(u32::from_le_bytes(bytes)),
            ValueType::REG_DWORD_BIG_ENDIAN => Ok(u32::from_be_bytes(bytes)),
            actual => Err(ValueError::WrongType { expected: "REG_DWORD", actual }),
        }
    }

    /// The number of a `REG_QWORD` value.
    pub fn as_qword(&self) -> Result<u64, ValueError> {
        if self.ty != ValueType::REG_QWORD {
            return Err(ValueError::WrongType { expected: "REG_QWORD", actual: self.ty });
        }
        let bytes: [u8; 8] = self.data.as_slice().try_into().map_err(|_| ValueError::BadLength {
            ty: self.ty,
            len: self.data.len(),
            expected: 8,
        })?;
        Ok(u64::from_le_bytes(bytes))
    }

    /// Builds a value from text the way `reg.exe add /t TYPE /d DATA [/s SEP]` does:
    /// strings as given, `REG_MULTI_SZ` split on `separator` (`\0` by default), numbers in
    /// decimal or `0x` hexadecimal, binary types as hexadecimal digits.
    pub fn from_text(ty: ValueType, text: &str, separator: Option<&str>) -> Result<Self, ValueError> {
        let parse_err = |reason| ValueError::Parse { ty, text: text.to_owned(), reason };
        match ty {
            ValueType::REG_SZ | ValueType::REG_EXPAND_SZ => Ok(Self::new(ty, utf16z(text))),
            ValueType::REG_LINK => Ok(Self::link(text)),
            ValueType::REG_MULTI_SZ => {
                let sep = separator.unwrap_or("\\0");
                if sep.is_empty() {
                    return Err(parse_err("empty separator"));
                }
                let items: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split(sep).collect() };
                if items.iter().any(|s| s.is_empty()) && items.len() > 1 {
                    return Err(parse_err("REG_MULTI_SZ cannot contain an empty string"));
                }
                Ok(Self::multi_sz(&items))
            }
            ValueType::REG_DWORD | ValueType::REG_DWORD_BIG_ENDIAN => {
                let n = parse_number(text).ok_or_else(|| parse_err("expected a number such as 42 or 0x2A"))?;
                let n = u32::try_from(n).map_err(|_| parse_err("number does not fit in 32 bits"))?;
                Ok(if ty == ValueType::REG_DWORD { Self::dword(n) } else { Self::dword_big_endian(n) })
            }
            ValueType::REG_QWORD => {
                let n = parse_number(text).ok_or_else(|| parse_err("expected a number such as 42 or 0x2A"))?;
                Ok(Self::qword(n))
            }
            _ => {
                let bytes = parse_hex(text).ok_or_else(|| parse_err("expected hexadecimal bytes such as 0A1B2C"))?;
                Ok(Self::new(ty, bytes))
            }
        }
    }

    /// The data as `reg.exe query` prints it.
    pub fn display_data(&self) -> String {
        match self.ty {
            ValueType::REG_SZ | ValueType::REG_EXPAND_SZ | ValueType::REG_LINK => {
                self.as_string().unwrap_or_else(|_| hex(&self.data))
            }
            ValueType::REG_MULTI_SZ => self.as_multi_sz().map(|v| v.join("\\0")).unwrap_or_else(|_| hex(&self.data)),
            ValueType::REG_DWORD | ValueType::REG_DWORD_BIG_ENDIAN => {
                self.as_dword().map(|n| format!("0x{n:x}")).unwrap_or_else(|_| hex(&self.data))
            }
            ValueType::REG_QWORD => self.as_qword().map(|n| format!("0x{n:x}")).unwrap_or_else(|_| hex(&self.data)),
            _ => hex(&self.data),
        }
    }
}

/// Uppercase hexadecimal without separators, as `reg.exe` prints binary data.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02X}");
    }
    s
}

fn parse_number(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        if h.is_empty() || h.len() > 16 {
            return None;
        }
        u64::from_str_radix(h, 16).ok()
    } else {
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        t.parse().ok()
    }
}

fn parse_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b' ' | b',')).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({})", self.ty, self.display_data())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_utf16le() {
        let v = Value::sz("Hi");
        assert_eq!(v.data, [b'H', 0, b'i', 0, 0, 0]);
        assert_eq!(v.as_string().unwrap(), "Hi");
        let m = Value::multi_sz(&["a", "bc"]);
        assert_eq!(m.data, [b'a', 0, 0, 0, b'b', 0, b'c', 0, 0, 0, 0, 0]);
        assert_eq!(m.as_multi_sz().unwrap(), ["a", "bc"]);
        assert_eq!(Value::link("\\REGISTRY\\X").data.len(), 22);
        assert!(Value::dword(1).as_string().is_err());
    }

    #[test]
    fn numbers() {
        assert_eq!(Value::dword(0x1234).data, [0x34, 0x12, 0, 0]);
        assert_eq!(Value::dword_big_endian(0x1234).data, [0, 0, 0x12, 0x34]);
        assert_eq!(Value::dword_big_endian(0x1234).as_dword().unwrap(), 0x1234);
        assert_eq!(Value::qword(u64::MAX).as_qword().unwrap(), u64::MAX);
        assert!(Value::new(ValueType::REG_DWORD, vec![1, 2]).as_dword().is_err());
    }

    #[test]
    fn from_text_like_reg_exe() {
        assert_eq!(Value::from_text(ValueType::REG_DWORD, "0x10", None).unwrap(), Value::dword(16));
        assert_eq!(Value::from_text(ValueType::REG_DWORD, "16", None).unwrap(), Value::dword(16));
        assert!(Value::from_text(ValueType::REG_DWORD, "hello", None).is_err());
        assert!(Value::from_text(ValueType::REG_DWORD, "4294967296", None).is_err());
        assert_eq!(Value::from_text(ValueType::REG_BINARY, "0aFF", None).unwrap().data, [0x0a, 0xff]);
        assert!(Value::from_text(ValueType::REG_BINARY, "0aF", None).is_err());
        assert_eq!(Value::from_text(ValueType::REG_MULTI_SZ, "a\\0b", None).unwrap(), Value::multi_sz(&["a", "b"]));
        assert_eq!(Value::from_text(ValueType::REG_MULTI_SZ, "a#b", Some("#")).unwrap(), Value::multi_sz(&["a", "b"]));
        assert_eq!(Value::multi_sz(&["a", "b"]).display_data(), "a\\0b");
        assert_eq!(Value::binary(&[1, 0xab]).display_data(), "01AB");
    }

    #[test]
    fn type_names() {
        for n in 0..=11 {
            let t = ValueType(n);
            assert_eq!(ValueType::from_name(t.name().unwrap()), Some(t));
        }
        assert_eq!(ValueType::from_name("reg_dword_little_endian"), Some(ValueType::REG_DWORD));
        assert_eq!(ValueType(12).to_string(), "REG_0xC");
    }
}
