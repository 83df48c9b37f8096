//! Sigma search identifiers (selections) to conditions: field names, modifiers and values.

use super::emit::{Cond, Field, Op};
use super::yaml::{Node, Value};

/// The characters the `windash` modifier puts in place of each `-`: hyphen, slash, en dash,
/// em dash, horizontal bar (Sigma's specification; rsigma expands every `-` the same way).
const WINDASH: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
/// At most this many dashes are expanded in one value (5^3 = 125 variants).
const MAX_WINDASH_DASHES: usize = 3;

/// Modifiers of Sigma's specification that hivebox cannot express.
const UNSUPPORTED_MODIFIERS: &[&str] = &[
    "base64",
    "base64offset",
    "wide",
    "utf16",
    "utf16le",
    "utf16be",
    "cidr",
    "expand",
    "fieldref",
    "gt",
    "gte",
    "lt",
    "lte",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "year",
    "neq",
];

/// The condition a search identifier stands for. `name` is only used in messages.
pub(crate) fn search(name: &str, node: &Node) -> Result<Cond, String> {
    match &node.value {
        Value::Map(entries) => selection(name, node, entries),
        Value::Seq(items) if items.is_empty() => {
            Err(format!("search identifier `{name}` is empty (line {})", node.line))
        }
        Value::Seq(items) if items.iter().all(|i| matches!(i.value, Value::Map(_))) => {
            let mut any = Vec::with_capacity(items.len());
            for item in items {
                if let Value::Map(entries) = &item.value {
                    any.push(selection(name, item, entries)?);
                }
            }
            Ok(Cond::Any(any))
        }
        Value::Seq(_) => Err(format!(
            "keyword search: `{name}` lists values to find in any field (line {}); hivebox matches named fields only",
            node.line
        )),
        _ => Err(format!(
            "keyword search: `{name}` is a {} rather than a map of field matches (line {})",
            node.kind(),
            node.line
        )),
    }
}

/// A map of `field|modifiers: values`: all entries must match.
fn selection(name: &str, node: &Node, entries: &[(Node, Node)]) -> Result<Cond, String> {
    if entries.is_empty() {
        return Err(format!("search identifier `{name}` is an empty map (line {})", node.line));
    }
    let mut all = Vec::with_capacity(entries.len());
    for (key, value) in entries {
        let spec = key.scalar_text().unwrap_or_default();
        all.push(field_match(&spec, value).map_err(|e| format!("{e} (line {})", key.line))?);
    }
    Ok(Cond::All(all))
}

/// The modifiers of one field match, parsed.
#[derive(Debug, Default)]
struct Modifiers {
    op: Option<Op>,
    all: bool,
    windash: bool,
    exists: bool,
    regex_flags: String,
}

fn modifiers(spec: &str, names: &[&str]) -> Result<Modifiers, String> {
    let mut m = Modifiers::default();
    for &name in names {
        let op = match name {
            "contains" => Some(Op::Contains),
            "startswith" => Some(Op::StartsWith),
            "endswith" => Some(Op::EndsWith),
            "re" => Some(Op::Regex),
            "all" => {
                m.all = true;
                None
            }
            "windash" => {
                m.windash = true;
                None
            }
            "exists" => {
                m.exists = true;
                None
            }
            "i" | "m" | "s" if m.op == Some(Op::Regex) => {
                m.regex_flags.push_str(name);
                None
            }
            "i" | "m" | "s" => {
                return Err(format!("modifier `{name}` in `{spec}` is a regex flag but follows no `re`"));
            }
            "cased" => {
                return Err(format!("modifier `cased` in `{spec}`: hivebox compares strings case-insensitively only"));
            }
            "" => return Err(format!("empty modifier in `{spec}`")),
            other if UNSUPPORTED_MODIFIERS.contains(&other) => {
                return Err(format!("modifier `{other}` in `{spec}` is not supported"));
            }
            other => return Err(format!("unknown modifier `{other}` in `{spec}`")),
        };
        if let Some(op) = op {
            if let Some(previous) = m.op {
                return Err(format!(
                    "modifiers `{}` and `{}` in `{spec}` conflict",
                    sigma_name(previous),
                    sigma_name(op)
                ));
            }
            m.op = Some(op);
        }
    }
    if m.windash && m.op == Some(Op::Regex) {
        return Err(format!("modifiers `windash` and `re` in `{spec}` cannot be combined"));
    }
    if m.exists && (m.op.is_some() || m.all || m.windash) {
        return Err(format!("modifier `exists` in `{spec}` takes no other modifier"));
    }
    Ok(m)
}

fn sigma_name(op: Op) -> &'static str {
    match op {
        Op::Regex => "re",
        other => other.name(),
    }
}

/// One `field|modifiers: value(s)` entry.
fn field_match(spec: &str, value: &Node) -> Result<Cond, String> {
    let mut parts = spec.split('|');
    let field_name = parts.next().unwrap_or_default();
    let names: Vec<&str> = parts.collect();
    if field_name.is_empty() {
        return Err(format!("keyword search: `{spec}` names no field"));
    }
    let m = modifiers(spec, &names)?;
    let field = Field::from_name(field_name).ok_or_else(|| {
        format!("field `{field_name}` is not one hivebox sees (it matches {})", Field::ALL.map(Field::name).join(", "))
    })?;

    if m.exists {
        let Value::Bool(exists) = value.value else {
            return Err(format!("`{spec}` needs true or false, not a {}", value.kind()));
        };
        // Like a null value, absence means "absent or empty" to hivebox.
        let empty = Cond::Pred { field, op: Op::Equals, values: vec![String::new()] };
        return Ok(if exists { Cond::Not(Box::new(empty)) } else { empty });
    }

    let values: Vec<&Node> = match &value.value {
        Value::Seq(items) if items.is_empty() => return Err(format!("`{spec}` has an empty value list")),
        Value::Seq(items) => items.iter().collect(),
        _ => vec![value],
    };
    // One (op, alternatives) unit per value written in the rule.
    let mut units: Vec<(Op, Vec<String>)> = Vec::with_capacity(values.len());
    for v in values {
        let unit = match &v.value {
            Value::Seq(_) | Value::Map(_) => {
                return Err(format!("`{spec}` has a {} among its values; only scalars can be matched", v.kind()));
            }
            // Sigma's null: the field is absent (to hivebox, absent or empty).
            Value::Null => (Op::Equals, vec![String::new()]),
            _ => {
                let text = v.scalar_text().unwrap_or_default();
                let op = m.op.unwrap_or(Op::Equals);
                if op == Op::Regex {
                    (op, vec![regex(&text, &m.regex_flags)?])
                } else if m.windash {
                    (op, windash(&text)?)
                } else {
                    (op, vec![text])
                }
            }
        };
        units.push(unit);
    }

    if m.all {
        let all = units.into_iter().map(|(op, values)| Cond::Pred { field, op, values }).collect();
        return Ok(Cond::All(all));
    }
    // Any value matches: one predicate per comparison, in order of first use.
    let mut groups: Vec<(Op, Vec<String>)> = Vec::new();
    for (op, values) in units {
        match groups.iter_mut().find(|(o, _)| *o == op) {
            Some((_, existing)) => {
                for v in values {
                    if !existing.contains(&v) {
                        existing.push(v);
                    }
                }
            }
            None => groups.push((op, values)),
        }
    }
    Ok(Cond::Any(groups.into_iter().map(|(op, values)| Cond::Pred { field, op, values }).collect()))
}

/// A Sigma `re` value as a Rust `regex` pattern, checked to compile.
fn regex(pattern: &str, flags: &str) -> Result<String, String> {
    let full = if flags.is_empty() { pattern.to_owned() } else { format!("(?{flags}){pattern}") };
    match regex::Regex::new(&full) {
        Ok(_) => Ok(full),
        Err(e) => {
            let text = e.to_string();
            let why = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("invalid").trim();
            Err(format!("regex `{pattern}` does not compile with the Rust regex crate: {why}"))
        }
    }
}

/// Every spelling of `text` with each `-` replaced by one of the `WINDASH` characters.
fn windash(text: &str) -> Result<Vec<String>, String> {
    let dashes = text.matches('-').count();
    if dashes > MAX_WINDASH_DASHES {
        return Err(format!(
            "modifier `windash`: `{text}` has {dashes} dashes, more than the {MAX_WINDASH_DASHES} expanded \
             ({} variants)",
            5u64.saturating_pow(dashes as u32)
        ));
    }
    let mut variants = vec![String::new()];
    for c in text.chars() {
        if c == '-' {
            variants = variants.iter().flat_map(|v| WINDASH.iter().map(move |d| format!("{v}{d}"))).collect();
        } else {
            variants.iter_mut().for_each(|v| v.push(c));
        }
    }
    Ok(variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windash_expands_every_dash() {
        assert_eq!(windash("a").unwrap(), ["a"]);
        let v = windash(" -e -x").unwrap();
        assert_eq!(v.len(), 25);
        assert_eq!(v[0], " -e -x");
        assert!(v.contains(&" /e \u{2015}x".to_string()));
        assert!(windash("-a-b-c-d").unwrap_err().contains("4 dashes"));
    }

    #[test]
    fn regex_flags_and_errors() {
        assert_eq!(regex("a.b", "i").unwrap(), "(?i)a.b");
        let err = regex("(?<=x)y", "").unwrap_err();
        assert!(err.contains("does not compile"), "{err}");
        assert!(!err.contains('\n'), "{err}");
    }
}
