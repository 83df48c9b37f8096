//! Reading a `.reg` file into a [`RegFile`] (the syntax is described in the module above).

use super::text::{Cursor, Lines, ansi_to_utf16le, decode};
use super::{HEADER_V4, HEADER_V5, RegEntry, RegFile, RegFileError, RegVersion};
use hivebox_core::name::check_value_name;
use hivebox_core::{KeyPath, Value, ValueType};

/// Parses a `.reg` file from its bytes (any encoding [`decode`] reads).
pub fn parse(bytes: &[u8]) -> Result<RegFile, RegFileError> {
    parse_text(&decode(bytes)?)
}

/// Parses a `.reg` file that is already text.
pub fn parse_text(text: &str) -> Result<RegFile, RegFileError> {
    let mut lines = Lines::new(text);
    let version = header(&mut lines)?;
    let mut entries = Vec::new();
    // The index of the last key line, and whether it deletes its key.
    let mut current: Option<(usize, bool)> = None;
    while let Some((number, line)) = lines.next() {
        let mut cur = Cursor::new(number, line);
        check_nul(&cur)?;
        cur.skip_blanks();
        match cur.peek() {
            None | Some(';') => {}
            Some('[') => {
                let (path, delete) = key_line(&mut cur)?;
                current = Some((entries.len(), delete));
                entries.push(RegEntry::Key { path, delete, line: number });
            }
            Some('"' | '@') => {
                let key_index = match current {
                    Some((index, false)) => index,
                    Some((_, true)) => {
                        return Err(cur.err("a value line cannot follow a [-KEY] line, which deletes the key"));
                    }
                    None => return Err(cur.err("a value line must follow a [KEY] line")),
                };
                let (name, action) = value_line(&mut cur, &mut lines, version)?;
                entries.push(RegEntry::Value { key_index, name, action, line: number });
            }
            Some(_) => {
                return Err(cur.err("expected a key line ([KEY] or [-KEY]), a value line (\"NAME\"=DATA) or a comment"));
            }
        }
    }
    Ok(RegFile { version, entries })
}

/// The header: the first line that is not blank.
fn header(lines: &mut Lines<'_>) -> Result<RegVersion, RegFileError> {
    let mut last = 1;
    for (number, line) in lines.by_ref() {
        last = number;
        let text = line.trim_matches([' ', '\t']);
        if text.is_empty() {
            continue;
        }
        return match text {
            HEADER_V5 => Ok(RegVersion::V5),
            HEADER_V4 => Ok(RegVersion::Regedit4),
            "REGEDIT" => Err(RegFileError {
                line: number,
                column: Some(1),
                reason: "Windows 3.1 REGEDIT files are not supported".into(),
            }),
            _ => Err(RegFileError {
                line: number,
                column: Some(1),
                reason: format!("not a registry file: the first line must be \"{HEADER_V5}\" or \"{HEADER_V4}\""),
            }),
        };
    }
    Err(RegFileError { line: last, column: None, reason: "the file is empty".into() })
}

fn check_nul(cur: &Cursor<'_>) -> Result<(), RegFileError> {
    match cur.line.find('\0') {
        Some(at) => Err(cur.err_at(at, "unexpected NUL character")),
        None => Ok(()),
    }
}

/// `[KEY]` or `[-KEY]`, the cursor at the `[`: the path and whether it is a deletion.
fn key_line(cur: &mut Cursor<'_>) -> Result<(String, bool), RegFileError> {
    cur.bump();
    let delete = cur.eat('-');
    let start = cur.pos;
    let rest = cur.rest();
    let Some(close) = rest.rfind(']') else {
        cur.pos = cur.line.len();
        return Err(cur.err("missing \"]\" at the end of the key line"));
    };
    cur.pos = start + close + 1;
    if !cur.rest().trim_matches([' ', '\t']).is_empty() {
        cur.skip_blanks();
        return Err(cur.err("unexpected text after the \"]\" of the key line"));
    }
    let path = &rest[..close];
    if path.is_empty() {
        return Err(cur.err_at(start, "empty key path"));
    }
    KeyPath::parse(path).map_err(|e| cur.err_at(start, e.to_string()))?;
    Ok((path.to_owned(), delete))
}

/// `NAME=DATA`, the cursor at the name: the name and the value (`None` for `=-`).
fn value_line<'a>(
    cur: &mut Cursor<'a>,
    lines: &mut Lines<'a>,
    version: RegVersion,
) -> Result<(String, Option<Value>), RegFileError> {
    let name_at = cur.pos;
    let name = if cur.eat('@') { String::new() } else { quoted(cur)? };
    check_value_name(&name).map_err(|e| cur.err_at(name_at, e.to_string()))?;
    cur.skip_blanks();
    if !cur.eat('=') {
        return Err(cur.err("expected \"=\" after the value name"));
    }
    cur.skip_blanks();
    let data_at = cur.pos;
    let value = if cur.eat('-') {
        None
    } else if cur.peek() == Some('"') {
        let text = quoted(cur)?;
        Some(Value::sz(&text))
    } else if cur.eat_ignore_case("dword:") {
        let digits = cur.hex_digits();
        if digits.is_empty() || digits.len() > 8 {
            return Err(cur.err_at(data_at, "dword: takes 1 to 8 hex digits, such as dword:0000001f"));
        }
        let n = u32::from_str_radix(digits, 16).map_err(|_| cur.err_at(data_at, "bad dword: data"))?;
        Some(Value::dword(n))
    } else if cur.eat_ignore_case("hex:") {
        Some(Value::new(ValueType::REG_BINARY, hex_bytes(cur, lines)?))
    } else if cur.eat_ignore_case("hex(") {
        let digits = cur.hex_digits();
        if digits.is_empty() || digits.len() > 8 || !cur.eat(')') || !cur.eat(':') {
            return Err(cur.err_at(data_at, "expected a type number in hex and a colon, such as hex(7):"));
        }
        let ty = u32::from_str_radix(digits, 16).map_err(|_| cur.err_at(data_at, "bad type number"))?;
        let ty = ValueType(ty);
        let bytes = hex_bytes(cur, lines)?;
        let ansi_string = matches!(ty, ValueType::REG_EXPAND_SZ | ValueType::REG_MULTI_SZ);
        let bytes = if version == RegVersion::Regedit4 && ansi_string { ansi_to_utf16le(&bytes) } else { bytes };
        Some(Value::new(ty, bytes))
    } else {
        return Err(cur.err("expected the data: \"STRING\", dword:, hex:, hex(N): or - (to delete the value)"));
    };
    if !cur.at_end() {
        cur.skip_blanks();
        return Err(cur.err("unexpected text after the data"));
    }
    Ok((name, value))
}

/// A quoted string, the cursor at its opening quote; returns it unescaped.
fn quoted(cur: &mut Cursor<'_>) -> Result<String, RegFileError> {
    if !cur.eat('"') {
        return Err(cur.err("expected a quoted value name or @"));
    }
    let mut out = String::new();
    loop {
        let at = cur.pos;
        match cur.bump() {
            None => return Err(cur.err("missing closing quote (write \\\" for a quote inside the string)")),
            Some('"') => return Ok(out),
            Some('\\') => match cur.bump() {
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some(c) => {
                    return Err(cur.err_at(at, format!("unknown escape sequence \\{c} (write \\\\ for a backslash)")));
                }
                None => return Err(cur.err("missing closing quote (write \\\\ for a backslash at the end)")),
            },
            Some(c) => out.push(c),
        }
    }
}

/// A comma-separated list of hex bytes, the cursor after `hex:` or `hex(N):`. A `\` where a
/// byte could come continues the list on the next line that is not blank or a comment; the
/// list ends at the end of a line, at a comment, or at the end of the file after a `\`.
fn hex_bytes<'a>(cur: &mut Cursor<'a>, lines: &mut Lines<'a>) -> Result<Vec<u8>, RegFileError> {
    let mut out = Vec::new();
    // After the prefix or a comma: a byte may come.
    let mut want_byte = true;
    loop {
        cur.skip_blanks();
        let at = cur.pos;
        match cur.peek() {
            None | Some(';') => return Ok(out),
            Some('\\') => {
                cur.bump();
                if !cur.at_end() {
                    cur.skip_blanks();
                    return Err(cur.err("unexpected text after the \"\\\" that continues the line"));
                }
                match next_data_line(lines)? {
                    Some(next) => *cur = next,
                    None => return Ok(out),
                }
            }
            Some(',') => {
                if want_byte {
                    return Err(cur.err("expected a hex byte before \",\""));
                }
                cur.bump();
                want_byte = true;
            }
            Some(c) if c.is_ascii_hexdigit() => {
                if !want_byte {
                    return Err(cur.err("expected \",\" between bytes"));
                }
                let digits = cur.hex_digits();
                if digits.len() > 2 {
                    return Err(cur.err_at(at, "a byte has one or two hex digits"));
                }
                let byte = u8::from_str_radix(digits, 16).map_err(|_| cur.err_at(at, "bad hex byte"))?;
                out.push(byte);
                want_byte = false;
            }
            Some(_) => return Err(cur.err("expected a hex byte such as 0a")),
        }
    }
}

/// The line a byte list continues on: the next one that is not blank or only a comment,
/// positioned after its indentation; `None` at the end of the file.
fn next_data_line<'a>(lines: &mut Lines<'a>) -> Result<Option<Cursor<'a>>, RegFileError> {
    for (number, line) in lines.by_ref() {
        let mut cur = Cursor::new(number, line);
        check_nul(&cur)?;
        if cur.at_end() {
            continue;
        }
        cur.skip_blanks();
        return Ok(Some(cur));
    }
    Ok(None)
}
