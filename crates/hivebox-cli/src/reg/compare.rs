//! `reg compare`: the differences (and matches) between two keys read into memory, in
//! `reg.exe`'s layout:
//!
//! ```text
//! < Value: HKEY_CURRENT_USER\A  Name  REG_SZ  one
//! > Value: HKEY_CURRENT_USER\B  Name  REG_SZ  two
//! < Key: HKEY_CURRENT_USER\A\OnlyHere
//!
//! Result Compared: Different
//! The operation completed successfully.
//! ```
//!
//! `<` is the first key's side, `>` the second's, `=` a match (shown with `/os` or `/oa`).
//! Values are equal when their types and bytes are; names compare case-insensitively.

use super::args::OutputMode;
use super::output::{DEFAULT_NAME, json_value};
use super::session::KeyData;
use hivebox_core::Value;
use hivebox_core::name::{eq_names, upcase};
use serde_json::{Value as Json, json};
use std::fmt::Write;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Side {
    /// Only in, or different in, the first key.
    First,
    /// Only in, or different in, the second key.
    Second,
    /// The same in both.
    Same,
}

impl Side {
    fn mark(self) -> &'static str {
        match self {
            Side::First => "<",
            Side::Second => ">",
            Side::Same => "=",
        }
    }
}

/// One line of the comparison.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Entry {
    Value { side: Side, key: String, name: String, value: Value },
    Key { side: Side, path: String },
}

impl Entry {
    fn side(&self) -> Side {
        match self {
            Entry::Value { side, .. } | Entry::Key { side, .. } => *side,
        }
    }
}

/// Compares two keys. With `value`, only that value (in every compared key); without it, all
/// values and the subkey names. With `recursive` (and the subtrees read), subkeys present on
/// both sides are compared in turn.
pub fn compare(a: &KeyData, b: &KeyData, value: Option<&str>, recursive: bool) -> Vec<Entry> {
    let mut out = Vec::new();
    compare_at(a, b, value, recursive, &mut out);
    out
}

fn compare_at(a: &KeyData, b: &KeyData, value: Option<&str>, recursive: bool, out: &mut Vec<Entry>) {
    let entry = |side, key: &KeyData, name: &str, v: &Value| Entry::Value {
        side,
        key: key.path.clone(),
        name: name.to_owned(),
        value: v.clone(),
    };
    let selected = |name: &str| value.is_none_or(|v| eq_names(v, name));
    for (name, va) in a.values.iter().filter(|(n, _)| selected(n)) {
        match b.value(name) {
            Some(vb) if vb == va => out.push(entry(Side::Same, a, name, va)),
            Some(vb) => {
                out.push(entry(Side::First, a, name, va));
                out.push(entry(Side::Second, b, name, vb));
            }
            None => out.push(entry(Side::First, a, name, va)),
        }
    }
    for (name, vb) in b.values.iter().filter(|(n, _)| selected(n)) {
        if a.value(name).is_none() {
            out.push(entry(Side::Second, b, name, vb));
        }
    }
    // Each subkey once, spelled as in the first key when it is there, in enumeration order.
    let mut names: Vec<(String, &str)> = a.subkeys.iter().chain(&b.subkeys).map(|n| (upcase(n), n.as_str())).collect();
    names.sort_by(|x, y| x.0.cmp(&y.0));
    names.dedup_by(|later, first| later.0 == first.0);
    for (_, name) in names {
        let in_a = a.subkeys.iter().any(|n| eq_names(n, name));
        let in_b = b.subkeys.iter().any(|n| eq_names(n, name));
        let side = match (in_a, in_b) {
            (true, true) => Side::Same,
            (true, false) => Side::First,
            _ => Side::Second,
        };
        if value.is_none() {
            let parent = if side == Side::Second { b } else { a };
            out.push(Entry::Key { side, path: format!("{}\\{name}", parent.path) });
        }
        if recursive && side == Side::Same {
            let child = |k: &'_ KeyData| k.children.iter().find(|c| eq_names(&c.name, name)).cloned();
            if let (Some(ca), Some(cb)) = (child(a), child(b)) {
                compare_at(&ca, &cb, value, true, out);
            }
        }
    }
}

/// True when nothing differs.
pub fn identical(entries: &[Entry]) -> bool {
    entries.iter().all(|e| e.side() == Side::Same)
}

fn shown(mode: OutputMode, side: Side) -> bool {
    match mode {
        OutputMode::All => true,
        OutputMode::Diff => side != Side::Same,
        OutputMode::Same => side == Side::Same,
        OutputMode::None => false,
    }
}

/// The text `reg compare` prints.
pub fn text(entries: &[Entry], mode: OutputMode) -> String {
    let mut out = String::new();
    for e in entries.iter().filter(|e| shown(mode, e.side())) {
        match e {
            Entry::Value { side, key, name, value } => {
                let name = if name.is_empty() { DEFAULT_NAME } else { name };
                let _ = writeln!(out, "{} Value: {key}  {name}  {}  {}", side.mark(), value.ty, value.display_data());
            }
            Entry::Key { side, path } => {
                let _ = writeln!(out, "{} Key: {path}", side.mark());
            }
        }
    }
    let result = if identical(entries) { "Identical" } else { "Different" };
    let _ = write!(out, "\nResult Compared: {result}\nThe operation completed successfully.\n");
    out
}

/// The `--json` form: `{"key1", "key2", "identical", "entries": [...]}`, entries filtered by
/// the output mode as the text is.
pub fn json(key1: &str, key2: &str, entries: &[Entry], mode: OutputMode) -> Json {
    let shown: Vec<Json> = entries
        .iter()
        .filter(|e| shown(mode, e.side()))
        .map(|e| match e {
            Entry::Value { side, key, name, value } => {
                let mut v = json_value(name, value);
                v["side"] = side.mark().into();
                v["kind"] = "value".into();
                v["key"] = key.as_str().into();
                v
            }
            Entry::Key { side, path } => json!({ "side": side.mark(), "kind": "key", "key": path }),
        })
        .collect();
    json!({ "key1": key1, "key2": key2, "identical": identical(entries), "entries": shown })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reg::output::tests::key;

    #[test]
    fn identical_trees() {
        let a = key("A", vec![("x", Value::dword(1))], vec![key(r"A\s", vec![("y", Value::sz("q"))], vec![])]);
        let b = key("B", vec![("X", Value::dword(1))], vec![key(r"B\S", vec![("y", Value::sz("q"))], vec![])]);
        let e = compare(&a, &b, None, true);
        assert!(identical(&e));
        assert_eq!(text(&e, OutputMode::Diff), "\nResult Compared: Identical\nThe operation completed successfully.\n");
        assert_eq!(
            text(&e, OutputMode::Same),
            "= Value: A  x  REG_DWORD  0x1\n= Key: A\\s\n= Value: A\\s  y  REG_SZ  q\n\n\
             Result Compared: Identical\nThe operation completed successfully.\n"
        );
    }

    #[test]
    fn differences() {
        let a = key(
            "A",
            vec![("x", Value::dword(1)), ("", Value::sz("d"))],
            vec![key(r"A\only", vec![], vec![]), key(r"A\s", vec![("y", Value::sz("1"))], vec![])],
        );
        let b = key(
            "B",
            vec![("x", Value::dword(2)), ("z", Value::sz(""))],
            vec![key(r"B\s", vec![("y", Value::sz("2"))], vec![])],
        );
        let e = compare(&a, &b, None, false);
        assert!(!identical(&e));
        assert_eq!(
            text(&e, OutputMode::Diff),
            "< Value: A  x  REG_DWORD  0x1\n> Value: B  x  REG_DWORD  0x2\n< Value: A  (Default)  REG_SZ  d\n\
             > Value: B  z  REG_SZ  \n< Key: A\\only\n\nResult Compared: Different\nThe operation completed successfully.\n"
        );
        // Recursing finds the difference inside the common subkey too.
        let deep = compare(&a, &b, None, true);
        assert!(deep.iter().any(|e| matches!(e, Entry::Value { key, .. } if key == r"A\s")));
        // One value only: subkey lists are not compared.
        let only_x = compare(&a, &b, Some("X"), false);
        assert_eq!(only_x.len(), 2);
        assert!(identical(&compare(&a, &b, Some("missing"), true)));
        let j = json("A", "B", &e, OutputMode::Diff);
        assert_eq!(j["identical"], false);
        assert_eq!(j["entries"][0]["side"], "<");
        assert_eq!(j["entries"][0]["kind"], "value");
        assert_eq!(j["entries"][4]["kind"], "key");
    }
}
