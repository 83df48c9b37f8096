//! Writing a key tree as `regedit` exports it (the layout is described in the module above).

use super::{ExportError, HEADER_V5};
use hivebox_core::name::cmp_names;
use hivebox_core::{KeyImage, Value, ValueType};
use std::fmt::Write;

const CRLF: &str = "\r\n";
/// A byte list breaks after the comma that takes its line to this many characters or more.
const WRAP_AT: usize = 77;
/// What ends a wrapped line and starts the next.
const CONTINUE: &str = "\\\r\n  ";

/// The `.reg` file of `image` and its subtree, as `regedit` writes it: UTF-16LE with a
/// byte-order mark. `key_display_path` is the path written for `image` itself
/// (`HKEY_LOCAL_MACHINE\...`); `image.name` is not used, subkeys are named by their `name`.
pub fn export(key_display_path: &str, image: &KeyImage) -> Result<Vec<u8>, ExportError> {
    let text = export_text(key_display_path, image)?;
    let mut out = Vec::with_capacity(2 + text.len() * 2);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    Ok(out)
}

/// The text [`export`] encodes: the same file as a string, with CRLF line ends.
pub fn export_text(key_display_path: &str, image: &KeyImage) -> Result<String, ExportError> {
    let mut out = String::from(HEADER_V5);
    out.push_str(CRLF);
    if let Some(bad) = line_break(key_display_path) {
        return Err(ExportError { key: key_display_path.to_owned(), reason: format!("the key path contains {bad}") });
    }
    let mut path = key_display_path.to_owned();
    write_key(&mut out, &mut path, image)?;
    out.push_str(CRLF);
    Ok(out)
}

/// Writes a key (`path` is its path) and then its subkeys; `path` is restored on return.
fn write_key(out: &mut String, path: &mut String, image: &KeyImage) -> Result<(), ExportError> {
    out.push_str(CRLF);
    out.push('[');
    out.push_str(path);
    out.push(']');
    out.push_str(CRLF);
    for (name, value) in &image.values {
        if name.contains('\0') {
            return Err(ExportError { key: path.clone(), reason: format!("value name {name:?} contains a NUL") });
        }
        write_value(out, name, value);
    }
    let mut subkeys: Vec<&KeyImage> = image.subkeys.iter().collect();
    subkeys.sort_by(|a, b| cmp_names(&a.name, &b.name));
    for sub in subkeys {
        let bad = match sub.name.as_str() {
            "" => Some("an empty key name"),
            n if n.contains('\\') => Some("a key name with a backslash"),
            n if n.contains('\0') => Some("a key name with a NUL"),
            n => line_break(n),
        };
        if let Some(bad) = bad {
            return Err(ExportError {
                key: format!("{path}\\{}", sub.name),
                reason: format!("the path contains {bad}"),
            });
        }
        let len = path.len();
        path.push('\\');
        path.push_str(&sub.name);
        write_key(out, path, sub)?;
        path.truncate(len);
    }
    Ok(())
}

fn line_break(text: &str) -> Option<&'static str> {
    text.contains(['\r', '\n']).then_some("a line break")
}

/// How a value's data is written.
enum Form {
    /// `"text"`.
    Quoted(String),
    /// `dword:0000001f`.
    Dword(u32),
    /// `hex:` or `hex(N):` and the bytes.
    Hex,
}

/// `REG_SZ` as a quoted string and `REG_DWORD` as `dword:` when that reads back as the same
/// bytes; anything else as a byte list.
fn form(value: &Value) -> Form {
    match value.ty {
        ValueType::REG_SZ => match plain_string(&value.data) {
            Some(s) => Form::Quoted(s),
            None => Form::Hex,
        },
        ValueType::REG_DWORD => match <[u8; 4]>::try_from(value.data.as_slice()) {
            Ok(bytes) => Form::Dword(u32::from_le_bytes(bytes)),
            Err(_) => Form::Hex,
        },
        _ => Form::Hex,
    }
}

/// The string of `REG_SZ` data that is exactly a UTF-16LE string and one terminating NUL, with
/// no NUL or line break inside.
fn plain_string(data: &[u8]) -> Option<String> {
    let body = data.strip_suffix(&[0, 0])?;
    if body.len() % 2 != 0 {
        return None;
    }
    let units = body.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let s: String = char::decode_utf16(units).collect::<Result<_, _>>().ok()?;
    if s.contains(['\0', '\r', '\n']) { None } else { Some(s) }
}

/// `"name"=` (or `@=`) and the data, with the line end.
fn write_value(out: &mut String, name: &str, value: &Value) {
    let start = out.len();
    if name.is_empty() {
        out.push('@');
    } else {
        out.push('"');
        escape(out, name);
        out.push('"');
    }
    out.push('=');
    match form(value) {
        Form::Quoted(s) => {
            out.push('"');
            escape(out, &s);
            out.push('"');
        }
        Form::Dword(n) => {
            let _ = write!(out, "dword:{n:08x}");
        }
        Form::Hex => {
            if value.ty == ValueType::REG_BINARY {
                out.push_str("hex:");
            } else {
                let _ = write!(out, "hex({:x}):", value.ty.0);
            }
            // regedit counts the line in UTF-16 code units.
            let column = out[start..].encode_utf16().count();
            hex_list(out, &value.data, column);
        }
    }
    out.push_str(CRLF);
}

/// `regedit`'s byte list: `xx,` per byte, and after the comma that takes the line to
/// [`WRAP_AT`] characters or more, a `\` and a new line indented by two spaces.
fn hex_list(out: &mut String, data: &[u8], mut column: usize) {
    for (i, byte) in data.iter().enumerate() {
        let _ = write!(out, "{byte:02x}");
        if i + 1 == data.len() {
            break;
        }
        out.push(',');
        column += 3;
        if column >= WRAP_AT {
            out.push_str(CONTINUE);
            column = 2;
        }
    }
}

/// Escapes `\` and `"` (and line breaks, which only names can hold) for a quoted string.
fn escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}
