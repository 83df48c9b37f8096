//! A value's raw type and bytes.

use super::enums::*;
use super::types::FromRegValue;
use hivebox_core::{Value, ValueType};
use std::fmt;

/// A value as stored: its type and its bytes (strings are UTF-16LE with a terminating NUL).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RegValue {
    /// The data.
    pub bytes: Vec<u8>,
    /// The type.
    pub vtype: RegType,
}

impl fmt::Display for RegValue {
    /// As winreg prints it: strings as text (a `REG_MULTI_SZ` one line per string), numbers in
    /// decimal, anything else (or data that does not decode) as a list of bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self.vtype {
            REG_SZ | REG_EXPAND_SZ | REG_MULTI_SZ => String::from_reg_value(self).ok(),
            REG_DWORD => u32::from_reg_value(self).ok().map(|n| n.to_string()),
            REG_QWORD => u64::from_reg_value(self).ok().map(|n| n.to_string()),
            _ => None,
        };
        match text {
            Some(t) => f.write_str(&t),
            None => write!(f, "{:?}", self.bytes),
        }
    }
}

impl fmt::Debug for RegValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RegValue({:?}: {})", self.vtype, self)
    }
}

impl From<RegValue> for Value {
    fn from(v: RegValue) -> Self {
        Value::new(ValueType::from(v.vtype), v.bytes)
    }
}

impl From<&RegValue> for Value {
    fn from(v: &RegValue) -> Self {
        Value::new(ValueType::from(v.vtype), v.bytes.clone())
    }
}

impl TryFrom<Value> for RegValue {
    /// A value whose type number has no [`RegType`] comes back whole.
    type Error = Value;

    fn try_from(v: Value) -> Result<Self, Value> {
        match RegType::try_from(v.ty) {
            Ok(vtype) => Ok(RegValue { bytes: v.data, vtype }),
            Err(_) => Err(v),
        }
    }
}
