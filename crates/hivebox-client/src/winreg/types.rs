//! Conversions between Rust values and registry values, as winreg's `types`.
//!
//! | Rust                                   | reads                              | writes         |
//! |----------------------------------------|------------------------------------|----------------|
//! | `String`, `OsString`                   | `REG_SZ`, `REG_EXPAND_SZ`, `REG_MULTI_SZ` (lines joined with `\n`) | `REG_SZ` |
//! | `str`, `OsStr` (and references)        |                                    | `REG_SZ`       |
//! | `u32`                                  | `REG_DWORD`, `REG_DWORD_BIG_ENDIAN` | `REG_DWORD`   |
//! | `u64`                                  | `REG_QWORD`                        | `REG_QWORD`    |
//! | `Vec<String>`, `Vec<OsString>`         | `REG_MULTI_SZ`                     | `REG_MULTI_SZ` |
//! | `Vec<&str>`, `[&str]`, `[String]`, `[_; N]`, `Vec<&OsStr>` |               | `REG_MULTI_SZ` |
//! | [`RegValue`]                           | any                                | as it is       |
//!
//! Reading a value of another type is an `InvalidData` error whose status is
//! `STATUS_OBJECT_TYPE_MISMATCH` (`STATUS_DATA_ERROR` when the bytes do not decode).

use super::enums::*;
use super::{RegValue, error};
use hivebox_core::value::ValueError;
use hivebox_core::{NtStatus, Value};
use std::ffi::{OsStr, OsString};
use std::io;

/// A type that can be read from a registry value.
pub trait FromRegValue: Sized {
    /// Converts the value.
    fn from_reg_value(val: &RegValue) -> io::Result<Self>;
}

/// A type that can be written as a registry value.
pub trait ToRegValue {
    /// Converts to a value.
    fn to_reg_value(&self) -> RegValue;
}

fn value_error(e: ValueError) -> io::Error {
    let status = match e {
        ValueError::WrongType { .. } => NtStatus::STATUS_OBJECT_TYPE_MISMATCH,
        _ => e.status(),
    };
    error(status, e.to_string())
}

fn wrong_type(expected: &str, actual: RegType) -> io::Error {
    error(NtStatus::STATUS_OBJECT_TYPE_MISMATCH, format!("value is {actual:?}, not {expected}"))
}

fn core(val: &RegValue) -> Value {
    Value::from(val)
}

fn from_core(v: Value) -> RegValue {
    // Every constructor used here makes a named type.
    RegValue::try_from(v).unwrap_or_else(|v| RegValue { bytes: v.data, vtype: REG_BINARY })
}

impl FromRegValue for String {
    fn from_reg_value(val: &RegValue) -> io::Result<String> {
        match val.vtype {
            REG_SZ | REG_EXPAND_SZ => core(val).as_string().map_err(value_error),
            REG_MULTI_SZ => core(val).as_multi_sz().map(|v| v.join("\n")).map_err(value_error),
            other => Err(wrong_type("a string type", other)),
        }
    }
}

impl FromRegValue for OsString {
    fn from_reg_value(val: &RegValue) -> io::Result<OsString> {
        String::from_reg_value(val).map(OsString::from)
    }
}

impl FromRegValue for Vec<String> {
    fn from_reg_value(val: &RegValue) -> io::Result<Vec<String>> {
        match val.vtype {
            REG_MULTI_SZ => core(val).as_multi_sz().map_err(value_error),
            other => Err(wrong_type("REG_MULTI_SZ", other)),
        }
    }
}

impl FromRegValue for Vec<OsString> {
    fn from_reg_value(val: &RegValue) -> io::Result<Vec<OsString>> {
        Vec::<String>::from_reg_value(val).map(|v| v.into_iter().map(OsString::from).collect())
    }
}

impl FromRegValue for u32 {
    fn from_reg_value(val: &RegValue) -> io::Result<u32> {
        match val.vtype {
            REG_DWORD | REG_DWORD_BIG_ENDIAN => core(val).as_dword().map_err(value_error),
            other => Err(wrong_type("REG_DWORD", other)),
        }
    }
}

impl FromRegValue for u64 {
    fn from_reg_value(val: &RegValue) -> io::Result<u64> {
        match val.vtype {
            REG_QWORD => core(val).as_qword().map_err(value_error),
            other => Err(wrong_type("REG_QWORD", other)),
        }
    }
}

impl FromRegValue for RegValue {
    fn from_reg_value(val: &RegValue) -> io::Result<RegValue> {
        Ok(val.clone())
    }
}

impl<T: ToRegValue + ?Sized> ToRegValue for &T {
    fn to_reg_value(&self) -> RegValue {
        (**self).to_reg_value()
    }
}

impl ToRegValue for str {
    fn to_reg_value(&self) -> RegValue {
        from_core(Value::sz(self))
    }
}

impl ToRegValue for String {
    fn to_reg_value(&self) -> RegValue {
        self.as_str().to_reg_value()
    }
}

impl ToRegValue for OsStr {
    /// `REG_SZ`; a string that is not UTF-8 is converted lossily.
    fn to_reg_value(&self) -> RegValue {
        self.to_string_lossy().to_reg_value()
    }
}

impl ToRegValue for OsString {
    fn to_reg_value(&self) -> RegValue {
        self.as_os_str().to_reg_value()
    }
}

impl ToRegValue for u32 {
    fn to_reg_value(&self) -> RegValue {
        from_core(Value::dword(*self))
    }
}

impl ToRegValue for u64 {
    fn to_reg_value(&self) -> RegValue {
        from_core(Value::qword(*self))
    }
}

impl ToRegValue for RegValue {
    fn to_reg_value(&self) -> RegValue {
        self.clone()
    }
}

fn multi_sz<S: AsRef<str>>(items: &[S]) -> RegValue {
    from_core(Value::multi_sz(items))
}

fn multi_sz_os<S: AsRef<OsStr>>(items: &[S]) -> RegValue {
    let items: Vec<String> = items.iter().map(|s| s.as_ref().to_string_lossy().into_owned()).collect();
    multi_sz(&items)
}

macro_rules! to_multi_sz {
    ($via:ident: $($t:ty),* $(,)?) => {
        $(
            impl ToRegValue for $t {
                fn to_reg_value(&self) -> RegValue {
                    $via(&self[..])
                }
            }
        )*
    };
}

to_multi_sz!(multi_sz: Vec<String>, Vec<&str>, [String], [&str]);
to_multi_sz!(multi_sz_os: Vec<OsString>, Vec<&OsStr>, [OsString], [&OsStr]);

impl<const N: usize> ToRegValue for [&str; N] {
    fn to_reg_value(&self) -> RegValue {
        multi_sz(&self[..])
    }
}

impl<const N: usize> ToRegValue for [String; N] {
    fn to_reg_value(&self) -> RegValue {
        multi_sz(&self[..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round<T: ToRegValue + ?Sized, U: FromRegValue>(v: &T) -> U {
        U::from_reg_value(&v.to_reg_value()).unwrap()
    }

    #[test]
    fn round_trips() {
        assert_eq!(round::<_, String>("héllo"), "héllo");
        assert_eq!(round::<_, String>(&String::from("x")), "x");
        assert_eq!(round::<_, OsString>(OsStr::new("os")), OsString::from("os"));
        assert_eq!(round::<_, u32>(&7u32), 7);
        assert_eq!(round::<_, u64>(&u64::MAX), u64::MAX);
        assert_eq!(round::<_, Vec<String>>(&vec!["a", "bc"]), ["a", "bc"]);
        assert_eq!(round::<_, Vec<String>>(&["a", "bc"]), ["a", "bc"]);
        assert_eq!(round::<_, Vec<String>>(&["a"][..]), ["a"]);
        assert_eq!(round::<_, Vec<String>>(&Vec::<String>::new()), Vec::<String>::new());
        assert_eq!(round::<_, Vec<OsString>>(&vec![OsStr::new("p")]), [OsString::from("p")]);
        // A list read as one string: one line per string, as winreg does.
        assert_eq!(round::<_, String>(&vec!["a", "b"]), "a\nb");
    }

    #[test]
    fn bytes_are_windows_bytes() {
        let v = "Hi".to_reg_value();
        assert_eq!((v.vtype, v.bytes.as_slice()), (REG_SZ, &[b'H', 0, b'i', 0, 0, 0][..]));
        assert_eq!(0x0102_0304u32.to_reg_value().bytes, [4, 3, 2, 1]);
        assert_eq!(1u64.to_reg_value().bytes, [1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(vec!["a"].to_reg_value().bytes, [b'a', 0, 0, 0, 0, 0]);
    }

    #[test]
    fn mismatches_are_invalid_data_with_a_status() {
        let e = u32::from_reg_value(&"x".to_reg_value()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
        assert_eq!(super::super::status_of(&e), Some(NtStatus::STATUS_OBJECT_TYPE_MISMATCH));
        let short = RegValue { bytes: vec![1, 2], vtype: REG_DWORD };
        let e = u32::from_reg_value(&short).unwrap_err();
        assert_eq!(super::super::status_of(&e), Some(NtStatus::STATUS_DATA_ERROR));
        assert!(Vec::<String>::from_reg_value(&"x".to_reg_value()).is_err());
        assert!(u64::from_reg_value(&1u32.to_reg_value()).is_err());
    }

    #[test]
    fn display_like_winreg() {
        assert_eq!("text".to_reg_value().to_string(), "text");
        assert_eq!(42u32.to_reg_value().to_string(), "42");
        assert_eq!(42u64.to_reg_value().to_string(), "42");
        assert_eq!(vec!["a", "b"].to_reg_value().to_string(), "a\nb");
        assert_eq!(RegValue { bytes: vec![1, 2], vtype: REG_BINARY }.to_string(), "[1, 2]");
        // Bytes that do not decode print as bytes rather than failing.
        assert_eq!(RegValue { bytes: vec![1], vtype: REG_DWORD }.to_string(), "[1]");
        assert_eq!(format!("{:?}", 5u32.to_reg_value()), "RegValue(REG_DWORD: 5)");
    }
}
