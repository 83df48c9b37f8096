//! `reg query`'s output: `reg.exe`'s text layout and the `--json` form, from keys read into
//! memory. Pure formatting: nothing here touches the registry.
//!
//! The text layout follows `reg.exe` line for line (the layout Wine's `reg` tests check against
//! Windows): a blank line; the key's path (only if it has values, unless recursing); four
//! spaces, name, four spaces, type, four spaces, data per value; a blank line after the values;
//! then the subkeys' full paths (or, with `/s`, each subkey's own section).

use super::args::Find;
use super::session::KeyData;
use hivebox_core::name::upcase;
use hivebox_core::value::hex;
use hivebox_core::{Value, ValueType};
use serde_json::{Value as Json, json};
use std::fmt::Write;

/// The name `reg.exe` shows for the default value.
pub const DEFAULT_NAME: &str = "(Default)";

fn shown_name(name: &str) -> &str {
    if name.is_empty() { DEFAULT_NAME } else { name }
}

/// One value line: `    NAME    REG_TYPE    DATA`.
pub fn value_line(out: &mut String, name: &str, value: &Value) {
    let _ = writeln!(out, "    {}    {}    {}", shown_name(name), value.ty, value.display_data());
}

/// Keeps only the values of type `ty`, in the whole tree.
pub fn keep_type(data: &mut KeyData, ty: ValueType) {
    data.values.retain(|(_, v)| v.ty == ty);
    for child in &mut data.children {
        keep_type(child, ty);
    }
}

/// `reg query KEY [/s]`.
pub fn listing(data: &KeyData, recursive: bool) -> String {
    let mut out = String::from("\n");
    listing_at(&mut out, data, recursive, false);
    out
}

fn listing_at(out: &mut String, data: &KeyData, recursive: bool, recursing: bool) {
    let shown = !data.values.is_empty() || recursing;
    if shown {
        let _ = writeln!(out, "{}", data.path);
    }
    for (name, value) in &data.values {
        value_line(out, name, value);
    }
    if shown {
        out.push('\n');
    }
    if recursive {
        for child in &data.children {
            listing_at(out, child, true, true);
        }
    } else {
        for name in &data.subkeys {
            let _ = writeln!(out, "{}\\{name}", data.path);
        }
    }
}

/// `reg query KEY /v NAME` (or `/ve`) without `/s`. `None` when the named value does not
/// exist; an unset default value is shown as `(value not set)`.
pub fn single_value(data: &KeyData, name: &str) -> Option<String> {
    let mut out = format!("\n{}\n", data.path);
    match data.value(name) {
        Some(v) => value_line(&mut out, name, v),
        None if name.is_empty() => {
            let _ = writeln!(out, "    {DEFAULT_NAME}    REG_SZ    (value not set)");
        }
        None => return None,
    }
    out.push('\n');
    Some(out)
}

/// `reg query KEY /v NAME /s`: every key of the tree that has the value, as search hits
/// (printed with [`find_text`], as `reg.exe` ends this search with its match count too).
pub fn value_hits<'a>(data: &'a KeyData, name: &str) -> Vec<Hit<'a>> {
    let mut hits = Vec::new();
    let mut stack = vec![data];
    while let Some(key) = stack.pop() {
        if let Some((n, v)) = key.values.iter().find(|(n, _)| hivebox_core::name::eq_names(n, name)) {
            hits.push(Hit { path: key.path.clone(), key_matched: false, values: vec![(n.as_str(), v)] });
        }
        stack.extend(key.children.iter().rev());
    }
    hits
}

/// A `/f` pattern: `*` and `?` are wildcards; without `/e` it may match anywhere in the text.
pub struct Matcher {
    pattern: Vec<char>,
    case_sensitive: bool,
    /// Search key names, value names, data.
    keys: bool,
    names: bool,
    data: bool,
}

impl Matcher {
    pub fn new(find: &Find) -> Self {
        let p = if find.case_sensitive { find.pattern.clone() } else { upcase(&find.pattern) };
        let pattern = if find.exact { p.chars().collect() } else { format!("*{p}*").chars().collect() };
        let all = !find.keys_only && !find.data_only;
        Self {
            pattern,
            case_sensitive: find.case_sensitive,
            keys: all || find.keys_only,
            names: all,
            data: all || find.data_only,
        }
    }

    pub fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = if self.case_sensitive { text.chars().collect() } else { upcase(text).chars().collect() };
        glob(&self.pattern, &text)
    }

    fn key_matches(&self, name: &str) -> bool {
        self.keys && self.matches(name)
    }

    fn value_matches(&self, name: &str, value: &Value) -> bool {
        (self.names && !name.is_empty() && self.matches(name)) || (self.data && self.matches(&value.display_data()))
    }
}

/// Wildcard match of the whole text: `*` any run, `?` any one character.
fn glob(pattern: &[char], text: &[char]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// One key found by `/f`: whether its own name matched, and its matching values.
pub struct Hit<'a> {
    pub path: String,
    pub key_matched: bool,
    pub values: Vec<(&'a str, &'a Value)>,
}

/// `reg query KEY /f PATTERN [/s]`: the hits in `reg.exe`'s order. Without `/s` the search
/// covers the key's values and the names of its subkeys; with `/s`, the whole tree below it.
pub fn find<'a>(data: &'a KeyData, m: &Matcher, recursive: bool) -> Vec<Hit<'a>> {
    let mut hits = Vec::new();
    find_at(data, m, recursive, true, &mut hits);
    if !recursive {
        for name in &data.subkeys {
            if m.key_matches(name) {
                hits.push(Hit { path: format!("{}\\{name}", data.path), key_matched: true, values: Vec::new() });
            }
        }
    }
    hits
}

fn find_at<'a>(data: &'a KeyData, m: &Matcher, recursive: bool, start: bool, hits: &mut Vec<Hit<'a>>) {
    let key_matched = !start && m.key_matches(&data.name);
    let values: Vec<(&str, &Value)> =
        data.values.iter().filter(|(n, v)| m.value_matches(n, v)).map(|(n, v)| (n.as_str(), v)).collect();
    if key_matched || !values.is_empty() {
        hits.push(Hit { path: data.path.clone(), key_matched, values });
    }
    if recursive {
        for child in &data.children {
            find_at(child, m, true, false, hits);
        }
    }
}

/// The number of matches: each matching key name and each matching value counts once.
pub fn match_count(hits: &[Hit<'_>]) -> usize {
    hits.iter().map(|h| usize::from(h.key_matched) + h.values.len()).sum()
}

/// The text of a `/f` search.
pub fn find_text(hits: &[Hit<'_>]) -> String {
    let mut out = String::from("\n");
    for hit in hits {
        let _ = writeln!(out, "{}", hit.path);
        for (name, value) in &hit.values {
            value_line(&mut out, name, value);
        }
        if !hit.values.is_empty() {
            out.push('\n');
        }
    }
    let _ = writeln!(out, "End of search: {} match(es) found.", match_count(hits));
    out
}

/// A value as JSON: `{"name", "type", "data", "raw"}` (`raw` is the stored bytes in hex).
pub fn json_value(name: &str, value: &Value) -> Json {
    json!({ "name": name, "type": value.ty.to_string(), "data": value.display_data(), "raw": hex(&value.data) })
}

/// A key as JSON: `{"key", "values", "subkeys"}`, plus `"children"` when read recursively.
pub fn json_tree(data: &KeyData, recursive: bool) -> Json {
    let mut obj = json!({
        "key": data.path,
        "values": data.values.iter().map(|(n, v)| json_value(n, v)).collect::<Vec<_>>(),
        "subkeys": data.subkeys,
    });
    if recursive {
        obj["children"] = data.children.iter().map(|c| json_tree(c, true)).collect::<Vec<_>>().into();
    }
    obj
}

/// Search results as JSON: `{"key", "matches": [{"key", "key_matched", "values"}], "count"}`.
pub fn json_hits(start: &str, hits: &[Hit<'_>]) -> Json {
    let matches: Vec<Json> = hits
        .iter()
        .map(|h| {
            let values: Vec<Json> = h.values.iter().map(|(n, v)| json_value(n, v)).collect();
            json!({ "key": h.path, "key_matched": h.key_matched, "values": values })
        })
        .collect();
    json!({ "key": start, "matches": matches, "count": match_count(hits) })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A key as `Session::read` returns it, for tests here and in `compare`.
    pub(crate) fn key(path: &str, values: Vec<(&str, Value)>, children: Vec<KeyData>) -> KeyData {
        KeyData {
            name: path.rsplit('\\').next().unwrap_or_default().to_owned(),
            path: path.to_owned(),
            values: values.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
            subkeys: children.iter().map(|c| c.name.clone()).collect(),
            children,
        }
    }

    fn sample() -> KeyData {
        let sub = key(
            r"HKEY_CURRENT_USER\T\subkey",
            vec![("Test3", Value::sz("Some string data")), ("Test4", Value::dword(0xabc))],
            vec![],
        );
        key(
            r"HKEY_CURRENT_USER\T",
            vec![("Test1", Value::sz("Hello, World")), ("Test2", Value::dword(0x123))],
            vec![sub],
        )
    }

    #[test]
    fn listing_like_reg_exe() {
        let t = sample();
        assert_eq!(
            listing(&t, false),
            "\nHKEY_CURRENT_USER\\T\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n\n\
             HKEY_CURRENT_USER\\T\\subkey\n"
        );
        assert_eq!(
            listing(&t, true),
            "\nHKEY_CURRENT_USER\\T\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n\n\
             HKEY_CURRENT_USER\\T\\subkey\n    Test3    REG_SZ    Some string data\n    Test4    REG_DWORD    0xabc\n\n"
        );
        // No values: the key's own line is left out; recursing, every subkey has a section.
        let bare = key(r"HKEY_CURRENT_USER\B", vec![], vec![key(r"HKEY_CURRENT_USER\B\s1", vec![], vec![])]);
        assert_eq!(listing(&bare, false), "\nHKEY_CURRENT_USER\\B\\s1\n");
        assert_eq!(listing(&bare, true), "\nHKEY_CURRENT_USER\\B\\s1\n\n");
    }

    #[test]
    fn single_values() {
        let t = sample();
        assert_eq!(
            single_value(&t, "test1").unwrap(),
            "\nHKEY_CURRENT_USER\\T\n    test1    REG_SZ    Hello, World\n\n"
        );
        assert_eq!(
            single_value(&t, "").unwrap(),
            "\nHKEY_CURRENT_USER\\T\n    (Default)    REG_SZ    (value not set)\n\n"
        );
        assert!(single_value(&t, "missing").is_none());
        let hits = value_hits(&t, "test4");
        assert_eq!(match_count(&hits), 1);
        assert_eq!(
            find_text(&hits),
            "\nHKEY_CURRENT_USER\\T\\subkey\n    Test4    REG_DWORD    0xabc\n\nEnd of search: 1 match(es) found.\n"
        );
    }

    #[test]
    fn globbing() {
        let m = |p: &str, exact, cs| {
            Matcher::new(&Find { pattern: p.into(), keys_only: false, data_only: false, case_sensitive: cs, exact })
        };
        assert!(m("ell", false, false).matches("Hello"));
        assert!(!m("ell", true, false).matches("Hello"));
        assert!(m("hello", true, false).matches("Hello"));
        assert!(!m("hello", true, true).matches("Hello"));
        assert!(m("H*o", true, true).matches("Hello"));
        assert!(m("H?llo", true, true).matches("Hello"));
        assert!(m("*", false, false).matches(""));
        assert!(!m("x", false, false).matches(""));
    }

    #[test]
    fn find_counts_keys_and_values() {
        let t = sample();
        let f =
            Find { pattern: "test".into(), keys_only: false, data_only: false, case_sensitive: false, exact: false };
        let m = Matcher::new(&f);
        let hits = find(&t, &m, true);
        assert_eq!(match_count(&hits), 4);
        let text = find_text(&hits);
        assert!(text.ends_with("\n\nEnd of search: 4 match(es) found.\n"), "{text}");
        let keys = Matcher::new(&Find { pattern: "SUB".into(), keys_only: true, ..f.clone() });
        assert_eq!(
            find_text(&find(&t, &keys, false)),
            "\nHKEY_CURRENT_USER\\T\\subkey\nEnd of search: 1 match(es) found.\n"
        );
        let data = Matcher::new(&Find { pattern: "0xabc".into(), data_only: true, ..f });
        assert_eq!(match_count(&find(&t, &data, false)), 0);
        assert_eq!(match_count(&find(&t, &data, true)), 1);
    }

    #[test]
    fn json_shapes() {
        let j = json_tree(&sample(), true);
        assert_eq!(j["key"], r"HKEY_CURRENT_USER\T");
        assert_eq!(j["values"][1]["type"], "REG_DWORD");
        assert_eq!(j["values"][1]["data"], "0x123");
        assert_eq!(j["values"][1]["raw"], "23010000");
        assert_eq!(j["subkeys"][0], "subkey");
        assert_eq!(j["children"][0]["values"][0]["name"], "Test3");
        assert!(json_tree(&sample(), false).get("children").is_none());
    }
}
