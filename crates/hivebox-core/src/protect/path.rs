//! Paths as the protection filter sees them.
//!
//! The rule tree walks the **walk form** of a path: the native name's components, upcased, with
//! `\REGISTRY\MACHINE` written `HKLM`, `\REGISTRY\USER` written `HKU`, and the current
//! `ControlSet00N` written `CurrentControlSet`, so a rule matches the path as the caller names
//! it (`CurrentControlSet`) and as it resolves (`ControlSet001`). `HKCR` never appears in the
//! walk form: it is `HKLM\SOFTWARE\Classes` there. Events and Sigma conditions see **Sysmon's
//! rendering** instead ([`render_key`]), where machine classes are `HKCR`.

use super::pattern::{CompPat, PatternError, StrPat, parse_component};
use crate::name::upcase;

/// The walk form of one operation's path: upcased components joined by `\`, plus the value
/// name's components for value operations.
#[derive(Debug, Default, Clone)]
pub struct WalkPath {
    buf: String,
    spans: Vec<(u32, u32)>,
    key_comps: usize,
    key_len: usize,
}

fn is_control_set(c: &str, current: u32) -> bool {
    c.len() == 13
        && c[..10].eq_ignore_ascii_case("ControlSet")
        && c[10..].bytes().all(|b| b.is_ascii_digit())
        && c[10..].parse::<u32>().ok() == Some(current)
}

/// The root of a path: how many leading components it takes and its walk form.
fn root_of(comps: &[&str]) -> (usize, &'static [&'static str]) {
    let eq = |i: usize, s: &str| comps.get(i).is_some_and(|c| c.eq_ignore_ascii_case(s));
    if eq(0, "REGISTRY") {
        if eq(1, "MACHINE") {
            return (2, &["HKLM"]);
        }
        if eq(1, "USER") {
            return (2, &["HKU"]);
        }
        return (0, &[]);
    }
    if eq(0, "HKLM") || eq(0, "HKEY_LOCAL_MACHINE") {
        (1, &["HKLM"])
    } else if eq(0, "HKU") || eq(0, "HKEY_USERS") {
        (1, &["HKU"])
    } else if eq(0, "HKCR") || eq(0, "HKEY_CLASSES_ROOT") {
        (1, &["HKLM", "SOFTWARE", "CLASSES"])
    } else {
        (0, &[])
    }
}

impl WalkPath {
    /// An empty path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the key: a native name (`\REGISTRY\MACHINE\...`) or a Sysmon-style one (`HKLM\...`).
    pub fn set_key(&mut self, key: &str, current_control_set: u32) {
        if key.is_ascii() && !key.contains("\\\\") && !key.ends_with('\\') {
            self.set_ascii_key(key, current_control_set);
        } else {
            self.set_key_slow(key, current_control_set);
        }
        self.key_comps = self.spans.len();
        self.key_len = self.buf.len();
    }

    /// The common case in one pass: copy, upcase in place, find the separators.
    fn set_ascii_key(&mut self, key: &str, current_control_set: u32) {
        self.buf.clear();
        self.spans.clear();
        let k = key.strip_prefix('\\').unwrap_or(key);
        let head = |p: &str| {
            k.len() >= p.len()
                && k.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes())
                && (k.len() == p.len() || k.as_bytes()[p.len()] == b'\\')
        };
        let (root, rest) = if key.starts_with('\\') {
            if head("REGISTRY\\MACHINE") {
                ("HKLM", &k[16..])
            } else if head("REGISTRY\\USER") {
                ("HKU", &k[13..])
            } else {
                ("", k)
            }
        } else if head("HKLM") {
            ("HKLM", &k[4..])
        } else if head("HKEY_LOCAL_MACHINE") {
            ("HKLM", &k[18..])
        } else if head("HKU") {
            ("HKU", &k[3..])
        } else if head("HKEY_USERS") {
            ("HKU", &k[10..])
        } else if head("HKCR") {
            ("HKLM\\SOFTWARE\\CLASSES", &k[4..])
        } else if head("HKEY_CLASSES_ROOT") {
            ("HKLM\\SOFTWARE\\CLASSES", &k[17..])
        } else {
            ("", k)
        };
        self.buf.push_str(root);
        self.buf.push_str(rest);
        self.buf.make_ascii_uppercase();
        if root == "HKLM" && self.buf.starts_with("HKLM\\SYSTEM\\CONTROLSET") {
            let cs = &self.buf[12..];
            let end = cs.find('\\').unwrap_or(cs.len());
            if is_control_set(&cs[..end], current_control_set) {
                self.buf.replace_range(12..12 + end, "CURRENTCONTROLSET");
            }
        }
        let mut start = 0usize;
        for i in memchr::memchr_iter(b'\\', self.buf.as_bytes()) {
            if i > start {
                self.spans.push((start as u32, i as u32));
            }
            start = i + 1;
        }
        if self.buf.len() > start {
            self.spans.push((start as u32, self.buf.len() as u32));
        }
    }

    fn set_key_slow(&mut self, key: &str, current_control_set: u32) {
        self.buf.clear();
        self.spans.clear();
        let comps: smallvec::SmallVec<[&str; 24]> = key.split('\\').filter(|c| !c.is_empty()).collect();
        let (skip, root) = root_of(&comps);
        for r in root {
            self.push(r);
        }
        let machine_system = root == ["HKLM"];
        for (i, c) in comps[skip..].iter().enumerate() {
            if machine_system
                && i == 1
                && comps[skip].eq_ignore_ascii_case("SYSTEM")
                && is_control_set(c, current_control_set)
            {
                self.push("CURRENTCONTROLSET");
            } else {
                self.push(c);
            }
        }
    }

    /// Appends a value name (`""` is the default value, `(Default)` in Sysmon's rendering).
    pub fn set_value(&mut self, value_name: &str) {
        self.buf.truncate(self.key_len);
        self.spans.truncate(self.key_comps);
        let name = if value_name.is_empty() { "(Default)" } else { value_name };
        for c in name.split('\\') {
            self.push(c);
        }
    }

    fn push(&mut self, c: &str) {
        if !self.buf.is_empty() {
            self.buf.push('\\');
        }
        let start = self.buf.len();
        if c.is_ascii() {
            self.buf.push_str(c);
            self.buf[start..].make_ascii_uppercase();
        } else {
            self.buf.push_str(&upcase(c));
        }
        self.spans.push((start as u32, self.buf.len() as u32));
    }

    /// The key's components.
    pub fn key_components(&self) -> impl Iterator<Item = &str> {
        self.spans[..self.key_comps].iter().map(|&(a, b)| &self.buf[a as usize..b as usize])
    }

    /// The value name's components (empty before [`WalkPath::set_value`]).
    pub fn value_components(&self) -> impl Iterator<Item = &str> {
        self.spans[self.key_comps..].iter().map(|&(a, b)| &self.buf[a as usize..b as usize])
    }

    /// The key's walk form as one string (`HKLM\SOFTWARE\...`, upcased).
    pub fn key_text(&self) -> &str {
        &self.buf[..self.key_len]
    }

    /// Sysmon's `TargetObject` for this path, upcased, when the walk form spells it the same
    /// way (an `HKLM` or `HKU` path outside the machine's classes, which Sysmon calls `HKCR`).
    pub fn target_upcased(&self) -> Option<&str> {
        let b = &self.buf;
        let root = b.starts_with("HKLM\\") || b.starts_with("HKU\\") || b == "HKLM" || b == "HKU";
        let classes = b.strip_prefix("HKLM\\SOFTWARE\\CLASSES").is_some_and(|r| r.is_empty() || r.starts_with('\\'));
        (root && !classes).then_some(b.as_str())
    }

    /// The upcased value name as one string, if set.
    pub fn value_text(&self) -> Option<&str> {
        (self.spans.len() > self.key_comps).then(|| &self.buf[self.key_len + 1..])
    }
}

/// Sysmon's rendering of a key: `HKLM\...`, `HKU\...`, `HKCR\...` (machine classes), the
/// current control set as `CurrentControlSet`; the names keep their case.
pub fn render_key(key: &str, current_control_set: u32) -> String {
    let comps: Vec<&str> = key.split('\\').filter(|c| !c.is_empty()).collect();
    let (skip, root) = root_of(&comps);
    let rest = &comps[skip..];
    let classes =
        rest.len() >= 2 && rest[0].eq_ignore_ascii_case("SOFTWARE") && rest[1].eq_ignore_ascii_case("Classes");
    // The root as Sysmon writes it, the components after it, and whether they are HKLM's.
    let (root, rest, machine) = match root {
        ["HKLM"] if classes => ("HKCR", &rest[2..], false),
        ["HKLM"] => ("HKLM", rest, true),
        [_, _, _] => ("HKCR", rest, false),
        [r] => (*r, rest, false),
        _ => ("", rest, false),
    };
    let mut out = String::with_capacity(key.len());
    out.push_str(root);
    for (i, c) in rest.iter().enumerate() {
        // An unknown root keeps its leading backslash (`\REGISTRY\A\...`).
        if !out.is_empty() || skip == 0 {
            out.push('\\');
        }
        if machine && i == 1 && rest[0].eq_ignore_ascii_case("SYSTEM") && is_control_set(c, current_control_set) {
            out.push_str("CurrentControlSet");
        } else {
            out.push_str(c);
        }
    }
    out
}

/// Sysmon's `TargetObject`: the key, plus `\` and the value name (`(Default)` for the unnamed
/// value) for value operations.
pub fn render_target(key: &str, value_name: Option<&str>, current_control_set: u32) -> String {
    let mut out = render_key(key, current_control_set);
    if let Some(v) = value_name {
        out.push('\\');
        out.push_str(if v.is_empty() { "(Default)" } else { v });
    }
    out
}

/// Parses a key pattern of a policy (`HKLM\Software\...\Run`, `HKCU\...`, `\REGISTRY\...`,
/// with `*`, `**`, `{n}` and component globs) into its walk-form alternatives: `HKCR` is
/// both the machine's classes and every user's `*_Classes`, `HKCU` is every user.
pub fn parse_key_pattern(text: &str, current_control_set: u32) -> Result<Vec<Vec<CompPat>>, PatternError> {
    let comps: Vec<&str> = text.trim_start_matches('\\').split('\\').collect();
    if comps.iter().all(|c| c.is_empty()) {
        return Err(PatternError::Empty);
    }
    let lit = |s: &str| CompPat::Lit(s.into());
    let eq = |i: usize, s: &str| comps.get(i).is_some_and(|c| c.eq_ignore_ascii_case(s));
    let (skip, roots): (usize, Vec<Vec<CompPat>>) = if text.starts_with('\\') {
        if eq(0, "REGISTRY") && eq(1, "MACHINE") {
            (2, vec![vec![lit("HKLM")]])
        } else if eq(0, "REGISTRY") && eq(1, "USER") {
            (2, vec![vec![lit("HKU")]])
        } else {
            return Err(PatternError::BadRoot(comps.iter().take(2).copied().collect::<Vec<_>>().join("\\")));
        }
    } else if eq(0, "HKLM") || eq(0, "HKEY_LOCAL_MACHINE") {
        (1, vec![vec![lit("HKLM")]])
    } else if eq(0, "HKU") || eq(0, "HKEY_USERS") {
        (1, vec![vec![lit("HKU")]])
    } else if eq(0, "HKCU") || eq(0, "HKEY_CURRENT_USER") {
        (1, vec![vec![lit("HKU"), CompPat::One]])
    } else if eq(0, "HKCR") || eq(0, "HKEY_CLASSES_ROOT") {
        (
            1,
            vec![
                vec![lit("HKLM"), lit("SOFTWARE"), lit("CLASSES")],
                vec![lit("HKU"), CompPat::Glob(StrPat::Suffix("_CLASSES".into()))],
            ],
        )
    } else if comps[0] == "**" {
        (0, vec![vec![]])
    } else {
        return Err(PatternError::BadRoot(comps[0].into()));
    };
    let mut rest = Vec::new();
    for (i, c) in comps[skip..].iter().enumerate() {
        if c.is_empty() && i + skip == comps.len() - 1 {
            break; // a trailing backslash
        }
        rest.extend(parse_component(c, i + skip)?);
    }
    Ok(roots
        .into_iter()
        .map(|mut r| {
            let machine = r == [lit("HKLM")];
            for (i, c) in rest.iter().enumerate() {
                match c {
                    CompPat::Lit(l)
                        if machine && i == 1 && rest[0] == lit("SYSTEM") && is_control_set(l, current_control_set) =>
                    {
                        r.push(lit("CURRENTCONTROLSET"))
                    }
                    _ => r.push(c.clone()),
                }
            }
            r
        })
        .collect())
}

/// The walk form of a plain path (for hardening prefixes): upcased, `\`-joined.
pub fn walk_text(path: &str, current_control_set: u32) -> String {
    let mut w = WalkPath::new();
    w.set_key(path, current_control_set);
    w.key_text().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_form_names_roots_and_the_current_control_set() {
        let mut w = WalkPath::new();
        w.set_key(r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\x", 1);
        assert_eq!(w.key_text(), r"HKLM\SYSTEM\CURRENTCONTROLSET\SERVICES\X");
        w.set_key(r"\REGISTRY\MACHINE\SYSTEM\ControlSet002\Services\x", 1);
        assert_eq!(w.key_text(), r"HKLM\SYSTEM\CONTROLSET002\SERVICES\X");
        w.set_key(r"HKCR\CLSID", 1);
        assert_eq!(w.key_text(), r"HKLM\SOFTWARE\CLASSES\CLSID");
        w.set_value("");
        assert_eq!(w.value_components().collect::<Vec<_>>(), ["(DEFAULT)"]);
        w.set_value(r"a\b");
        assert_eq!(w.value_components().collect::<Vec<_>>(), ["A", "B"]);
        assert_eq!(w.value_text(), Some(r"A\B"));
    }

    #[test]
    fn the_walk_spells_targets_as_sysmon_does_where_it_can() {
        let mut w = WalkPath::new();
        for (key, value) in [
            (r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\x", Some("")),
            (r"\REGISTRY\USER\S-1-5-21-1_Classes\CLSID", Some(r"a\b")),
            (r"HKLM\SOFTWARE\Classesx", None),
            (r"\REGISTRY\MACHINE\SOFTWARE\Classes\CLSID", None),
            (r"\REGISTRY\A\{guid}\x", Some("v")),
        ] {
            w.set_key(key, 1);
            if let Some(v) = value {
                w.set_value(v);
            }
            let rendered = crate::name::upcase(&render_target(key, value, 1));
            match w.target_upcased() {
                Some(t) => assert_eq!(t, rendered, "{key}"),
                None => assert!(rendered.starts_with("HKCR") || rendered.starts_with('\\'), "{key}: {rendered}"),
            }
        }
    }

    #[test]
    fn sysmon_rendering() {
        assert_eq!(render_key(r"\REGISTRY\MACHINE\SOFTWARE\Classes\CLSID\{x}", 1), r"HKCR\CLSID\{x}");
        assert_eq!(
            render_key(r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services", 1),
            r"HKLM\SYSTEM\CurrentControlSet\Services"
        );
        assert_eq!(render_key(r"\REGISTRY\USER\S-1-5-21-1\Software", 1), r"HKU\S-1-5-21-1\Software");
        assert_eq!(render_target(r"\REGISTRY\MACHINE\SOFTWARE\Run", Some(""), 1), r"HKLM\SOFTWARE\Run\(Default)");
        assert_eq!(render_key(r"HKCR\SYSTEM\ControlSet001", 1), r"HKCR\SYSTEM\ControlSet001");
        assert_eq!(render_key(r"\REGISTRY\A\{x}", 1), r"\REGISTRY\A\{x}");
    }

    #[test]
    fn key_patterns_expand_aliases() {
        let alts = parse_key_pattern(r"HKCR\*\shell", 1).unwrap();
        assert_eq!(alts.len(), 2);
        let alts = parse_key_pattern(r"HKLM\SYSTEM\ControlSet001\Services\**", 1).unwrap();
        assert_eq!(alts[0][2], CompPat::Lit("CURRENTCONTROLSET".into()));
        assert!(parse_key_pattern(r"HKXX\a", 1).is_err());
        assert!(parse_key_pattern(r"HKLM\a\\b", 1).is_err());
        assert!(parse_key_pattern(r"\REGISTRY\FOO\a", 1).is_err());
    }
}
