//! `Value::from_text` on arbitrary text for every named type: it must return, never panic;
//! whatever it builds must display, and the typed accessors must round-trip.

#![no_main]

use hivebox_core::{Value, ValueType};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&t, rest)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(rest) else { return };
    let ty = ValueType(u32::from(t % 12));
    let Ok(value) = Value::from_text(ty, text, None) else { return };
    assert_eq!(value.ty, ty);
    let shown = value.display_data();
    let _ = format!("{value:?}");
    match ty {
        ValueType::REG_DWORD | ValueType::REG_DWORD_BIG_ENDIAN => {
            let n = value.as_dword().expect("a DWORD built from text reads back");
            let rebuilt = if ty == ValueType::REG_DWORD { Value::dword(n) } else { Value::dword_big_endian(n) };
            assert_eq!(rebuilt, value);
            // What reg.exe prints (0x...) is what reg.exe accepts.
            assert_eq!(Value::from_text(ty, &shown, None).expect("the display form parses"), value);
        }
        ValueType::REG_QWORD => {
            let n = value.as_qword().expect("a QWORD built from text reads back");
            assert_eq!(Value::qword(n), value);
            assert_eq!(Value::from_text(ty, &shown, None).expect("the display form parses"), value);
        }
        ValueType::REG_SZ | ValueType::REG_EXPAND_SZ => {
            let s = value.as_string().expect("a string built from text reads back");
            // The string ends at the first NUL, as Windows reads it.
            assert_eq!(s, text.split('\0').next().unwrap_or(""));
            if !text.contains('\0') {
                assert_eq!(s, text);
                assert_eq!(shown, text);
            }
        }
        ValueType::REG_LINK => {
            assert_eq!(value.as_string().expect("a link reads back"), text.split('\0').next().unwrap_or(""));
        }
        ValueType::REG_MULTI_SZ => {
            let items = value.as_multi_sz().expect("a REG_MULTI_SZ built from text reads back");
            if !text.contains('\0') {
                let expected: Vec<&str> = if text.is_empty() { Vec::new() } else { text.split("\\0").collect() };
                assert_eq!(items, expected);
            }
        }
        _ => {
            // Binary types: the display form is the hex of the data, which parses back.
            assert_eq!(Value::from_text(ty, &shown, None).expect("hex parses"), value);
        }
    }
});
