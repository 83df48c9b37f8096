//! The `.reg` parser and writer: syntax, encodings, errors, layout, round trips.

mod errors;
mod parse;
mod roundtrip;
mod write;

use super::{RegEntry, RegFile, RegFileError, parse_text};
use hivebox_core::Value;

/// `lines` joined with CRLF after a version 5 header.
fn v5(lines: &[&str]) -> String {
    let mut text = String::from("Windows Registry Editor Version 5.00\r\n");
    for line in lines {
        text.push_str(line);
        text.push_str("\r\n");
    }
    text
}

fn ok(text: &str) -> RegFile {
    match parse_text(text) {
        Ok(file) => file,
        Err(e) => panic!("{text:?} does not parse: {e} (column {:?})", e.column),
    }
}

fn err(text: &str) -> RegFileError {
    match parse_text(text) {
        Ok(file) => panic!("{text:?} parses: {file:?}"),
        Err(e) => e,
    }
}

/// The one value of a file with one key line and one value line.
fn one_value(value_line: &str) -> (String, Option<Value>) {
    let file = ok(&v5(&["[HKEY_CURRENT_USER\\T]", value_line]));
    match file.entries.as_slice() {
        [RegEntry::Key { .. }, RegEntry::Value { key_index: 0, name, action, .. }] => (name.clone(), action.clone()),
        other => panic!("{value_line:?}: {other:?}"),
    }
}

/// The data of the one value of [`one_value`].
fn data(value_line: &str) -> Value {
    match one_value(value_line) {
        (_, Some(v)) => v,
        (_, None) => panic!("{value_line:?} deletes"),
    }
}

/// UTF-16LE bytes of `s`, without terminator.
fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}
