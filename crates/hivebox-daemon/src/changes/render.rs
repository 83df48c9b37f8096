//! A box's changes as people and programs read them: the indented tree of `box diff`, its
//! JSON form, and the `.reg` file of `box export`.

use super::walk::{Unit, UnitKind, user_path_of};
use super::{Change, ChangeError, ChangeKind};
use hivebox_core::name::eq_names;
use hivebox_core::{KeyImage, NtStatus, Value};
use hivebox_hive::regfile;
use std::fmt::Write;

/// The name `reg query` shows for the default value.
const DEFAULT_NAME: &str = "(Default)";

fn shown_name(name: &str) -> &str {
    if name.is_empty() { DEFAULT_NAME } else { name }
}

/// `N changes (2 keys added, 1 value modified, ...)`.
fn summary(changes: &[Change]) -> String {
    const KINDS: [(ChangeKind, &str, &str); 6] = [
        (ChangeKind::KeyAdded, "key", "added"),
        (ChangeKind::KeyDeleted, "key", "deleted"),
        (ChangeKind::KeyRenamed, "key", "renamed"),
        (ChangeKind::ValueAdded, "value", "added"),
        (ChangeKind::ValueModified, "value", "modified"),
        (ChangeKind::ValueDeleted, "value", "deleted"),
    ];
    let mut counts = [0usize; 6];
    for c in changes {
        if let Some(i) = KINDS.iter().position(|(k, _, _)| *k == c.kind) {
            counts[i] += 1;
        }
    }
    let parts: Vec<String> = KINDS
        .iter()
        .zip(counts)
        .filter(|(_, n)| *n > 0)
        .map(|((_, what, how), n)| format!("{n} {what}{} {how}", if n == 1 { "" } else { "s" }))
        .collect();
    let n = changes.len();
    format!("{n} change{} ({})", if n == 1 { "" } else { "s" }, parts.join(", "))
}

/// The readable tree: each key on its own line, indented by its depth, with its mark (`+`
/// added, `-` deleted, `>` renamed, `~` values changed; none for a key only on the way to
/// one), its value changes under it (`~ NAME    TYPE    OLD -> NEW`).
pub(crate) fn text(name: &str, changes: &[Change]) -> String {
    if changes.is_empty() {
        return format!("Box {name:?} has no registry changes.\n");
    }
    let mut out = String::with_capacity(changes.len() * 64);
    let _ = writeln!(out, "Box {name:?}: {}", summary(changes));
    out.push('\n');
    // The components of the last key line written.
    let mut shown: Vec<&str> = Vec::new();
    let mut i = 0;
    while i < changes.len() {
        // One key's changes: its own first (the walk writes them so), then its values'.
        let key = &changes[i];
        let mut end = i + 1;
        while end < changes.len() && changes[end].native == key.native {
            end += 1;
        }
        let comps: Vec<&str> = key.key.split('\\').collect();
        let depth = comps.len() - 1;
        let common = shown.iter().zip(&comps).take_while(|(a, b)| eq_names(a, b)).count();
        for (d, c) in comps.iter().enumerate().take(depth).skip(common) {
            line(&mut out, ' ', d, c);
        }
        let own: Vec<&Change> = changes[i..end].iter().filter(|c| c.kind.is_key()).collect();
        if own.is_empty() {
            line(&mut out, '~', depth, comps[depth]);
        }
        for c in &own {
            line(&mut out, c.kind.mark(), depth, comps[depth]);
            if let Some(from) = &c.from {
                out.pop();
                let _ = writeln!(out, "    (renamed from {from})");
            }
        }
        for c in changes[i..end].iter().filter(|c| !c.kind.is_key()) {
            value_line(&mut out, c, depth);
        }
        shown = comps;
        i = end;
    }
    out
}

fn line(out: &mut String, mark: char, depth: usize, name: &str) {
    out.push(mark);
    out.push(' ');
    for _ in 0..depth {
        out.push_str("  ");
    }
    out.push_str(name);
    out.push('\n');
}

fn value_line(out: &mut String, c: &Change, depth: usize) {
    out.push(c.kind.mark());
    out.push(' ');
    for _ in 0..depth + 2 {
        out.push_str("  ");
    }
    out.push_str(shown_name(c.value.as_deref().unwrap_or("")));
    let typed = |out: &mut String, v: &Value| {
        out.push_str("    ");
        push_type(out, v);
        out.push_str("    ");
        out.push_str(&v.display_data());
    };
    match (&c.old, &c.new) {
        (Some(old), Some(new)) => {
            typed(out, old);
            out.push_str(" -> ");
            if old.ty != new.ty {
                push_type(out, new);
                out.push_str("    ");
            }
            out.push_str(&new.display_data());
        }
        (Some(v), None) | (None, Some(v)) => typed(out, v),
        (None, None) => {}
    }
    out.push('\n');
}

/// A JSON string literal.
fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut rest = s;
    // Runs of characters that need no escape are copied whole.
    while let Some(i) = rest.bytes().position(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(&rest[..i]);
        match rest.as_bytes()[i] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            b => {
                let _ = write!(out, "\\u{b:04x}");
            }
        }
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
    out.push('"');
}

/// Uppercase hexadecimal without separators (as `hivebox_core::value::hex`, without the
/// formatting machinery per byte).
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    out.reserve(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
}

/// The type's `REG_*` name (`REG_0x...` for a number without one).
fn push_type(out: &mut String, v: &Value) {
    match v.ty.name() {
        Some(n) => out.push_str(n),
        None => {
            let _ = write!(out, "{}", v.ty);
        }
    }
}

/// `{"type": "REG_SZ", "data": "as reg query shows it", "raw": "HEX BYTES"}`.
fn json_value(out: &mut String, v: &Value) {
    out.push_str("{\"type\":\"");
    push_type(out, v);
    out.push_str("\",\"data\":");
    json_str(out, &v.display_data());
    out.push_str(",\"raw\":\"");
    push_hex(out, &v.data);
    out.push_str("\"}");
}

/// The JSON form: an array of change objects, one per line: `kind`, `key`, and as they apply
/// `from` (renames), `value`, `old` and `new` (`{type, data, raw}`).
pub(crate) fn json(changes: &[Change]) -> String {
    let mut out = String::with_capacity(changes.len() * 280 + 4);
    out.push('[');
    for (i, c) in changes.iter().enumerate() {
        out.push_str(if i == 0 { "\n  " } else { ",\n  " });
        out.push_str("{\"kind\":\"");
        out.push_str(c.kind.as_str());
        out.push_str("\",\"key\":");
        json_str(&mut out, &c.key);
        if let Some(from) = &c.from {
            out.push_str(",\"from\":");
            json_str(&mut out, from);
        }
        if let Some(value) = &c.value {
            out.push_str(",\"value\":");
            json_str(&mut out, value);
        }
        if let Some(old) = &c.old {
            out.push_str(",\"old\":");
            json_value(&mut out, old);
        }
        if let Some(new) = &c.new {
            out.push_str(",\"new\":");
            json_value(&mut out, new);
        }
        out.push('}');
    }
    out.push_str(if changes.is_empty() { "]\n" } else { "\n]\n" });
    out
}

/// The `.reg` text of the operations, in their (path) order.
pub(crate) fn reg_file(units: &[Unit]) -> Result<String, ChangeError> {
    let mut out = String::from(regfile::HEADER_V5);
    out.push_str("\r\n");
    for u in units {
        let path = user_path_of(&u.comps);
        let bad = |reason: String| {
            ChangeError::new(
                NtStatus::STATUS_INVALID_PARAMETER,
                format!("{path} cannot be written to a .reg file: {reason}"),
            )
        };
        if path.contains(['\r', '\n']) {
            return Err(bad("its path contains a line break".into()));
        }
        match &u.kind {
            UnitKind::Delete => deleted_key(&mut out, &path),
            UnitKind::Replace { image, existed } => {
                if *existed {
                    deleted_key(&mut out, &path);
                }
                block(&mut out, &path, image).map_err(|e| bad(e.to_string()))?;
            }
            UnitKind::Values { set, delete, .. } => {
                let image = KeyImage { values: set.clone(), ..KeyImage::default() };
                block(&mut out, &path, &image).map_err(|e| bad(e.to_string()))?;
                for name in delete {
                    if name.contains('\0') {
                        return Err(bad(format!("value name {name:?} contains a NUL")));
                    }
                    deleted_value(&mut out, name);
                }
            }
        }
    }
    out.push_str("\r\n");
    Ok(out)
}

fn deleted_key(out: &mut String, path: &str) {
    out.push_str("\r\n[-");
    out.push_str(path);
    out.push_str("]\r\n");
}

/// `regfile`'s own layout of a key and its subtree, without the file's header and end.
fn block(out: &mut String, path: &str, image: &KeyImage) -> Result<(), regfile::ExportError> {
    let text = regfile::export_text(path, image)?;
    let body = text.strip_prefix(regfile::HEADER_V5).and_then(|t| t.strip_prefix("\r\n")).unwrap_or(&text);
    out.push_str(body.strip_suffix("\r\n").unwrap_or(body));
    Ok(())
}

/// `"NAME"=-` (`@=-` for the default value), escaped as the writer escapes names.
fn deleted_value(out: &mut String, name: &str) {
    if name.is_empty() {
        out.push('@');
    } else {
        out.push('"');
        for c in name.chars() {
            match c {
                '\\' => out.push_str("\\\\"),
                '"' => out.push_str("\\\""),
                '\r' => out.push_str("\\r"),
                '\n' => out.push_str("\\n"),
                c => out.push(c),
            }
        }
        out.push('"');
    }
    out.push_str("=-\r\n");
}
