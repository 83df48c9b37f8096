//! The condition tree a Sigma rule becomes, and its rendering as a hivebox policy `when`
//! (TOML inline tables; arrays may span lines, which TOML 1.0 allows inside inline tables).

use std::fmt::Write as _;

/// Lines longer than this are broken inside arrays.
const WIDTH: usize = 100;
const INDENT: usize = 4;

/// The Sysmon registry event fields hivebox evaluates: the core's.
pub(crate) use hivebox_core::protect::pattern::Field;

/// How a predicate compares: Sigma's wildcard strings for all but `Regex`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
    Regex,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Op::Equals => "equals",
            Op::Contains => "contains",
            Op::StartsWith => "startswith",
            Op::EndsWith => "endswith",
            Op::Regex => "regex",
        }
    }
}

/// A `when` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    /// True when `field` matches any of `values` (never empty).
    Pred {
        field: Field,
        op: Op,
        values: Vec<String>,
    },
}

impl Cond {
    /// Flattens nested `all`/`any` of the same kind, unwraps one-element lists and double
    /// negations. Does not change the meaning.
    pub fn simplify(self) -> Cond {
        match self {
            Cond::All(items) => flatten(items, true),
            Cond::Any(items) => flatten(items, false),
            Cond::Not(inner) => match inner.simplify() {
                Cond::Not(x) => *x,
                x => Cond::Not(Box::new(x)),
            },
            pred @ Cond::Pred { .. } => pred,
        }
    }
}

fn flatten(items: Vec<Cond>, all: bool) -> Cond {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        match (item.simplify(), all) {
            (Cond::All(inner), true) | (Cond::Any(inner), false) => out.extend(inner),
            (x, _) => out.push(x),
        }
    }
    if out.len() == 1 {
        return out.pop().unwrap_or(Cond::All(Vec::new()));
    }
    if all { Cond::All(out) } else { Cond::Any(out) }
}

/// A TOML string for `s`: a basic string when nothing needs escaping, else a literal string
/// (`'...'`, no escapes: keeps registry paths readable) when `s` has no `'` and no control
/// character, else a basic string with escapes.
pub(crate) fn string(s: &str) -> String {
    let control = |c: char| c.is_control();
    if !s.contains(['\\', '"']) && !s.contains(control) {
        return format!("\"{s}\"");
    }
    if !s.contains('\'') && !s.contains(control) {
        return format!("'{s}'");
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of strings, on one line when it fits in `WIDTH` after `used` columns, else one
/// element per line indented under `indent`.
pub(crate) fn string_array(values: &[String], used: usize, indent: usize) -> String {
    let items: Vec<String> = values.iter().map(|v| string(v)).collect();
    let one_line = format!("[{}]", items.join(", "));
    if used + one_line.len() <= WIDTH || items.len() < 2 {
        return one_line;
    }
    let pad = " ".repeat(indent + INDENT);
    let mut out = String::from("[\n");
    for item in items {
        let _ = writeln!(out, "{pad}{item},");
    }
    out.push_str(&" ".repeat(indent));
    out.push(']');
    out
}

/// The `when = ...` line(s) for `cond`.
pub(crate) fn when(cond: &Cond) -> String {
    let prefix = "when = ";
    format!("{prefix}{}", render(cond, prefix.len(), 0))
}

/// `cond` as an inline table; `used` columns are taken on its first line, continuation lines
/// are indented by `indent`.
fn render(cond: &Cond, used: usize, indent: usize) -> String {
    let flat = inline(cond);
    if used + flat.len() <= WIDTH {
        return flat;
    }
    match cond {
        Cond::All(items) | Cond::Any(items) => {
            let key = if matches!(cond, Cond::All(_)) { "all" } else { "any" };
            let pad = indent + INDENT;
            let mut out = format!("{{ {key} = [\n");
            for item in items {
                let _ = writeln!(out, "{}{},", " ".repeat(pad), render(item, pad, pad));
            }
            let _ = write!(out, "{}] }}", " ".repeat(indent));
            out
        }
        Cond::Not(inner) => {
            let head = "{ not = ";
            format!("{head}{} }}", render(inner, used + head.len(), indent))
        }
        Cond::Pred { field, op, values } => {
            let head = format!("{{ field = {}, {} = ", string(field.name()), op.name());
            let array = match values.as_slice() {
                [one] => string(one),
                _ => string_array(values, WIDTH, indent),
            };
            format!("{head}{array} }}")
        }
    }
}

fn inline(cond: &Cond) -> String {
    match cond {
        Cond::All(items) | Cond::Any(items) => {
            let key = if matches!(cond, Cond::All(_)) { "all" } else { "any" };
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("{{ {key} = [{}] }}", items.join(", "))
        }
        Cond::Not(inner) => format!("{{ not = {} }}", inline(inner)),
        Cond::Pred { field, op, values } => {
            let value = match values.as_slice() {
                [one] => string(one),
                _ => string_array(values, 0, 0),
            };
            format!("{{ field = {}, {} = {value} }}", string(field.name()), op.name())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pred(op: Op, values: &[&str]) -> Cond {
        Cond::Pred { field: Field::TargetObject, op, values: values.iter().map(|s| s.to_string()).collect() }
    }

    #[test]
    fn strings_pick_the_most_readable_form() {
        assert_eq!(string("TargetObject"), r#""TargetObject""#);
        assert_eq!(string(r"\Software\Run"), r"'\Software\Run'");
        assert_eq!(string(r#"say "hi""#), r#"'say "hi"'"#);
        assert_eq!(string(r"it's \x"), r#""it's \\x""#);
        assert_eq!(string("a\nb\u{7f}"), r#""a\nb\u007F""#);
    }

    #[test]
    fn simplify_flattens_and_unwraps() {
        let a = pred(Op::Contains, &["a"]);
        let b = pred(Op::Contains, &["b"]);
        let nested = Cond::All(vec![
            Cond::All(vec![a.clone()]),
            Cond::Not(Box::new(Cond::Not(Box::new(Cond::Any(vec![b.clone()]))))),
        ]);
        assert_eq!(nested.simplify(), Cond::All(vec![a, b]));
    }

    #[test]
    fn short_conditions_stay_on_one_line() {
        let c = Cond::Not(Box::new(pred(Op::EndsWith, &[r"\Run", r"\RunOnce"])));
        assert_eq!(when(&c), r#"when = { not = { field = "TargetObject", endswith = ['\Run', '\RunOnce'] } }"#);
    }

    #[test]
    fn lists_break_one_item_per_line() {
        let c = Cond::All(vec![pred(Op::EndsWith, &[r"\Run"]), Cond::Not(Box::new(pred(Op::Equals, &[""])))]);
        let expected = r#"when = { all = [
    { field = "TargetObject", endswith = '\Run' },
    { not = { field = "TargetObject", equals = "" } },
] }"#;
        assert_eq!(when(&c), expected);
    }

    #[test]
    fn long_conditions_break_inside_arrays() {
        let long: Vec<String> = (0..8).map(|i| format!(r"\Software\Microsoft\Windows\Key{i}")).collect();
        let refs: Vec<&str> = long.iter().map(String::as_str).collect();
        let c = Cond::All(vec![pred(Op::Contains, &refs), Cond::Not(Box::new(pred(Op::EndsWith, &refs)))]);
        let text = when(&c);
        assert!(text.lines().count() > 10, "{text}");
        assert!(text.lines().all(|l| l.len() <= WIDTH || !l.contains(", ")), "{text}");
    }
}
