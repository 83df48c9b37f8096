//! The policy file: `policy.toml`, parsed with line numbers and checked rule by rule.

use hivebox_core::protect::bits::{
    ALLOW_ALL_REGISTRY_OPERATIONS, EXCLUDED_PROCESS, FRIENDLY_PROCESS, MP_SERVICE_SID_PROCESS, MSMPENG_PROCESS,
    NOTIFY_REGISTRY_OPERATION_SYNC,
};
use hivebox_core::protect::path::{parse_key_pattern, walk_text};
use hivebox_core::protect::pattern::{Cond, Field, StrOp, StrPat, ValuePat};
use hivebox_core::protect::policy::{Hardening, ImageGlob, ProcessRule, RuleSpec, SyncDefault};
use hivebox_core::protect::{OpSet, PolicySpec, RegOp};
use serde::Deserialize;
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// One problem in a policy file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// The file, as the caller named it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The rule it is about, if any.
    pub rule: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: ", self.file, self.line)?;
        if let Some(r) = &self.rule {
            write!(f, "rule `{r}`: ")?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for PolicyError {}

/// Every problem found in a policy file (at least one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawPolicy {
    settings: Option<Spanned<RawSettings>>,
    #[serde(default)]
    rule: Vec<Spanned<RawRule>>,
    #[serde(default)]
    hardening: Vec<Spanned<RawHardening>>,
    #[serde(default)]
    tamper_protection: Vec<Spanned<RawTamper>>,
    processes: Option<Spanned<RawProcesses>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawSettings {
    current_control_set: Option<u32>,
    sync_timeout_ms: Option<u64>,
    sync_default: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawRule {
    id: Spanned<String>,
    title: Option<String>,
    #[allow(dead_code)]
    source: Option<String>,
    #[allow(dead_code)]
    level: Option<String>,
    #[allow(dead_code)]
    status: Option<String>,
    #[allow(dead_code)]
    tags: Option<Vec<String>>,
    key: Option<Spanned<String>>,
    keys: Option<Vec<Spanned<String>>>,
    values: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    notify: Vec<Spanned<String>>,
    #[serde(default)]
    deny: Vec<Spanned<String>>,
    #[serde(default)]
    sync: bool,
    #[serde(default)]
    old_value: bool,
    in_box: Option<Spanned<String>>,
    when: Option<Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawHardening {
    prefix: Spanned<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawTamper {
    key: Spanned<String>,
    id: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawProcesses {
    #[serde(default)]
    friendly: Vec<Spanned<RawProcess>>,
    #[serde(default)]
    excluded: Vec<Spanned<RawProcess>>,
    #[serde(default)]
    service: Vec<Spanned<RawProcess>>,
    #[serde(default)]
    allow_all: Vec<Spanned<RawProcess>>,
    #[serde(default)]
    sync: Vec<Spanned<RawProcess>>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawProcess {
    Image(String),
    Facts(RawFacts),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawFacts {
    image: Option<String>,
    uid: Option<u32>,
    #[serde(rename = "box")]
    box_name: Option<String>,
}

/// Line numbers of a text.
struct Lines<'a> {
    text: &'a str,
    file: &'a str,
    /// Byte offsets of the line starts after the first.
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    fn new(file: &'a str, text: &'a str) -> Self {
        Lines { text, file, starts: memchr_newlines(text) }
    }

    fn line(&self, span: &Range<usize>) -> usize {
        let at = span.start.min(self.text.len());
        self.starts.partition_point(|&s| s <= at) + 1
    }

    fn err(&self, span: &Range<usize>, rule: Option<&str>, message: impl Into<String>) -> PolicyError {
        PolicyError {
            file: self.file.to_owned(),
            line: self.line(span),
            rule: rule.map(str::to_owned),
            message: message.into(),
        }
    }
}

/// Parses and checks a policy file. `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<PolicySpec, PolicyErrors> {
    let lines = Lines::new(file, text);
    let raw: RawPolicy = toml::from_str(text).map_err(|e| {
        let line = e.span().map_or(1, |s| lines.line(&s));
        PolicyErrors(vec![PolicyError {
            file: file.to_owned(),
            line,
            rule: None,
            message: e.message().trim().to_owned(),
        }])
    })?;
    let mut errors = Vec::new();
    let mut spec = PolicySpec::default();
    if let Some(s) = &raw.settings {
        let s = s.get_ref();
        if let Some(n) = s.current_control_set {
            spec.current_control_set = n;
        }
        if let Some(t) = s.sync_timeout_ms {
            spec.sync_timeout_ms = t;
        }
        if let Some(d) = &s.sync_default {
            spec.sync_default = match d.get_ref().as_str() {
                "allow" => SyncDefault::Allow,
                "deny" => SyncDefault::Deny,
                other => {
                    errors.push(lines.err(
                        &d.span(),
                        None,
                        format!("sync-default `{other}`: expected `allow` or `deny`"),
                    ));
                    SyncDefault::Allow
                }
            };
        }
    }
    let ccs = spec.current_control_set;
    let mut ids: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut claim = |id: &Spanned<String>, errors: &mut Vec<PolicyError>| {
        let line = lines.line(&id.span());
        if id.get_ref().trim().is_empty() {
            errors.push(lines.err(&id.span(), None, "the id is empty"));
        } else if let Some(first) = ids.insert(id.get_ref().clone(), line) {
            errors.push(lines.err(
                &id.span(),
                Some(id.get_ref()),
                format!("duplicate id (first used on line {first})"),
            ));
        }
    };

    for r in &raw.rule {
        let span = r.span();
        let r = r.get_ref();
        claim(&r.id, &mut errors);
        let id = r.id.get_ref().as_str();
        let mut rule = RuleSpec { id: id.to_owned(), title: r.title.clone(), ..RuleSpec::default() };
        let mut key_texts: Vec<&Spanned<String>> = r.key.iter().collect();
        key_texts.extend(r.keys.iter().flatten());
        for k in key_texts {
            match parse_key_pattern(k.get_ref(), ccs) {
                Ok(alts) => rule.keys.extend(alts),
                Err(e) => errors.push(lines.err(&k.span(), Some(id), format!("key `{}`: {e}", k.get_ref()))),
            }
        }
        if let Some(values) = &r.values {
            rule.values = Some(values.iter().map(|v| ValuePat::parse(v.get_ref())).collect());
        }
        let ops = |list: &[Spanned<String>], errors: &mut Vec<PolicyError>| -> OpSet {
            let mut set = OpSet::EMPTY;
            for o in list {
                match RegOp::from_name(o.get_ref()) {
                    Some(op) => set.insert(op),
                    None => errors.push(lines.err(
                        &o.span(),
                        Some(id),
                        format!(
                            "unknown operation `{}` (expected one of: {})",
                            o.get_ref(),
                            RegOp::ALL.map(RegOp::name).join(", ")
                        ),
                    )),
                }
            }
            set
        };
        rule.notify = ops(&r.notify, &mut errors);
        rule.deny = ops(&r.deny, &mut errors);
        rule.sync = r.sync;
        rule.old_value = r.old_value;
        if let Some(b) = &r.in_box {
            match b.get_ref().as_str() {
                "allow" => rule.in_box_allow = true,
                "deny" => rule.in_box_allow = false,
                other => errors.push(lines.err(
                    &b.span(),
                    Some(id),
                    format!("`in-box` is \"allow\" or \"deny\", not {other:?}"),
                )),
            }
        }
        if rule.notify.is_empty() && rule.deny.is_empty() {
            errors.push(lines.err(
                &span,
                Some(id),
                "the rule neither notifies nor denies anything (give `notify` or `deny`)",
            ));
        }
        if let Some(w) = &r.when {
            match cond(w.get_ref(), "when") {
                Ok(c) => rule.when = Some(c),
                Err(m) => errors.push(lines.err(&w.span(), Some(id), m)),
            }
        }
        if rule.keys.is_empty() && rule.when.is_none() && r.key.is_none() && r.keys.is_none() {
            errors.push(lines.err(&span, Some(id), "the rule names no key (give `key`, `keys` or `when`)"));
        }
        spec.rules.push(rule);
    }

    for h in &raw.hardening {
        let h = h.get_ref();
        let prefix = h.prefix.get_ref();
        if let Err(e) = parse_key_pattern(prefix, ccs) {
            errors.push(lines.err(&h.prefix.span(), None, format!("hardening prefix `{prefix}`: {e}")));
            continue;
        }
        if prefix.contains(['*', '?']) {
            errors.push(lines.err(
                &h.prefix.span(),
                None,
                format!("hardening prefix `{prefix}`: a prefix has no wildcards"),
            ));
            continue;
        }
        let id = h.id.clone().unwrap_or_else(|| format!("hardening:{prefix}"));
        claim(&Spanned::new(h.prefix.span(), id.clone()), &mut errors);
        debug_assert!(!walk_text(prefix, ccs).is_empty());
        spec.hardening.push(Hardening { id, prefix: prefix.clone() });
    }

    for t in &raw.tamper_protection {
        let t = t.get_ref();
        let key = t.key.get_ref();
        let id = t.id.clone().unwrap_or_else(|| format!("tamper-protection:{key}"));
        claim(&Spanned::new(t.key.span(), id.clone()), &mut errors);
        let mut rule = RuleSpec { id: id.clone(), tamper: true, ..RuleSpec::default() };
        for pattern in [key.clone(), format!("{}\\**", key.trim_end_matches('\\'))] {
            match parse_key_pattern(&pattern, ccs) {
                Ok(alts) => rule.keys.extend(alts),
                Err(e) => {
                    errors.push(lines.err(&t.key.span(), Some(&id), format!("tamper-protection key `{key}`: {e}")));
                    break;
                }
            }
        }
        spec.rules.push(rule);
    }

    if let Some(p) = &raw.processes {
        let p = p.get_ref();
        let classes: [(&[Spanned<RawProcess>], u32, u32); 5] = [
            (&p.friendly, FRIENDLY_PROCESS, 0),
            (&p.excluded, EXCLUDED_PROCESS, 0),
            (&p.service, MP_SERVICE_SID_PROCESS | MSMPENG_PROCESS, 0),
            (&p.allow_all, 0, ALLOW_ALL_REGISTRY_OPERATIONS),
            (&p.sync, 0, NOTIFY_REGISTRY_OPERATION_SYNC),
        ];
        for (list, flags, rules) in classes {
            for entry in list {
                let rule = match entry.get_ref() {
                    RawProcess::Image(g) => {
                        ProcessRule { image: Some(ImageGlob::new(g)), flags, rules, ..Default::default() }
                    }
                    RawProcess::Facts(f) => {
                        if f.image.is_none() && f.uid.is_none() && f.box_name.is_none() {
                            errors.push(lines.err(
                                &entry.span(),
                                None,
                                "a process entry needs `image`, `uid` or `box`",
                            ));
                            continue;
                        }
                        ProcessRule {
                            image: f.image.as_deref().map(ImageGlob::new),
                            uid: f.uid,
                            box_name: f.box_name.clone(),
                            flags,
                            rules,
                        }
                    }
                };
                spec.processes.push(rule);
            }
        }
    }

    if errors.is_empty() {
        Ok(spec)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(PolicyErrors(errors))
    }
}

fn memchr_newlines(text: &str) -> Vec<usize> {
    text.bytes().enumerate().filter(|(_, b)| *b == b'\n').map(|(i, _)| i + 1).collect()
}

const OPS: [(&str, StrOp); 4] = [
    ("equals", StrOp::Equals),
    ("contains", StrOp::Contains),
    ("startswith", StrOp::StartsWith),
    ("endswith", StrOp::EndsWith),
];

/// A `when` condition: `{all = [...]}`, `{any = [...]}`, `{not = ...}`, or
/// `{field = "Details", contains = ["a", "b"]}` (one of equals, contains, startswith,
/// endswith, regex; a list means any of them).
pub fn cond(v: &toml::Value, at: &str) -> Result<Cond, String> {
    let t = v.as_table().ok_or_else(|| format!("{at}: expected a table"))?;
    let strings = |v: &toml::Value, at: &str| -> Result<Vec<String>, String> {
        match v {
            toml::Value::String(s) => Ok(vec![s.clone()]),
            toml::Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().map(str::to_owned).ok_or_else(|| format!("{at}: expected strings")))
                .collect(),
            _ => Err(format!("{at}: expected a string or a list of strings")),
        }
    };
    if t.len() == 1 {
        let (k, inner) = t.iter().next().expect("one entry");
        match k.as_str() {
            "all" | "any" => {
                let list = inner.as_array().ok_or_else(|| format!("{at}.{k}: expected a list of conditions"))?;
                let cs = list
                    .iter()
                    .enumerate()
                    .map(|(i, c)| cond(c, &format!("{at}.{k}[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                return Ok(if k == "all" { Cond::All(cs) } else { Cond::Any(cs) });
            }
            "not" => return Ok(Cond::Not(Box::new(cond(inner, &format!("{at}.not"))?))),
            _ => {}
        }
    }
    let field_name = t
        .get("field")
        .and_then(toml::Value::as_str)
        .ok_or_else(|| format!("{at}: expected `all`, `any`, `not`, or a `field` with a comparison"))?;
    let field = Field::from_name(field_name).ok_or_else(|| {
        format!("{at}: unknown field `{field_name}` (expected one of: {})", Field::ALL.map(Field::name).join(", "))
    })?;
    let mut conds = Vec::new();
    for (k, v) in t {
        if k == "field" {
            continue;
        }
        let here = format!("{at}.{k}");
        if k == "regex" {
            let res = strings(v, &here)?
                .iter()
                .map(|s| regex::Regex::new(s).map_err(|e| format!("{here}: bad regex `{s}`: {e}")))
                .collect::<Result<Vec<_>, _>>()?;
            conds.push(Cond::Regex(field, res));
        } else if let Some((_, op)) = OPS.iter().find(|(n, _)| n == k) {
            let pats: Vec<StrPat> = strings(v, &here)?.iter().map(|s| StrPat::sigma(*op, s)).collect();
            conds.push(Cond::Str(field, pats));
        } else {
            return Err(format!(
                "{at}: unknown comparison `{k}` (expected one of: equals, contains, startswith, endswith, regex)"
            ));
        }
    }
    match conds.len() {
        0 => Err(format!("{at}: field `{field_name}` has no comparison")),
        1 => Ok(conds.pop().expect("one")),
        _ => Ok(Cond::All(conds)),
    }
}
