//! Patterns: Sigma-style string patterns (`*`, `?`, escapes), path-component patterns
//! (`*`, `**`, `{n}`, globs), value-name patterns, and the conditions that combine them.
//!
//! Every comparison is case-insensitive: patterns are stored upcased (as the registry compares
//! names) and matched against upcased text; regular expressions see the original text.

use crate::name::upcase;
use std::fmt;

/// One token of a wildcard pattern.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Tok {
    /// Literal text (upcased).
    Lit(Box<str>),
    /// `*`: any run of characters.
    Star,
    /// `?`: exactly one character.
    One,
}

/// A substring to look for, with its searcher built once.
#[derive(Clone, Debug)]
pub struct Needle {
    text: Box<str>,
    search: Box<Searchers>,
}

#[derive(Clone, Debug)]
struct Searchers {
    finder: memchr::memmem::Finder<'static>,
    /// For an ASCII needle: a searcher that ignores ASCII case, for text not upcased (built
    /// when first used: most needles never need it).
    folded: std::sync::OnceLock<Option<aho_corasick::AhoCorasick>>,
}

impl Needle {
    /// A needle (already upcased).
    pub fn new(text: &str) -> Self {
        let finder = memchr::memmem::Finder::new(text.as_bytes()).into_owned();
        Needle { text: text.into(), search: Box::new(Searchers { finder, folded: std::sync::OnceLock::new() }) }
    }

    fn folded(&self) -> Option<&aho_corasick::AhoCorasick> {
        self.search
            .folded
            .get_or_init(|| {
                let t = &*self.text;
                t.is_ascii()
                    .then(|| aho_corasick::AhoCorasick::builder().ascii_case_insensitive(true).build([t]).ok())
                    .flatten()
            })
            .as_ref()
    }

    /// The text looked for.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// True if `hay` contains it.
    #[inline]
    pub fn is_in(&self, hay: &str) -> bool {
        self.search.finder.find(hay.as_bytes()).is_some()
    }
}

impl PartialEq for Needle {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for Needle {}

/// A case-insensitive string pattern, in the cheapest form that expresses it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum StrPat {
    /// The whole text.
    Equals(Box<str>),
    /// A prefix.
    Prefix(Box<str>),
    /// A suffix.
    Suffix(Box<str>),
    /// A substring.
    Contains(Needle),
    /// A general wildcard pattern over the whole text.
    Glob(Vec<Tok>),
}

/// How a Sigma value is compared with a field.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum StrOp {
    /// The whole field.
    Equals,
    /// A substring (`|contains`).
    Contains,
    /// A prefix (`|startswith`).
    StartsWith,
    /// A suffix (`|endswith`).
    EndsWith,
}

impl StrOp {
    /// The policy file's key for this comparison.
    pub const fn name(self) -> &'static str {
        match self {
            StrOp::Equals => "equals",
            StrOp::Contains => "contains",
            StrOp::StartsWith => "startswith",
            StrOp::EndsWith => "endswith",
        }
    }
}

/// Splits a Sigma value into tokens: `*` and `?` are wildcards, `\*` `\?` `\\` escape them
/// (and the backslash), any other backslash is literal. Literal text is upcased.
pub fn sigma_tokens(text: &str) -> Vec<Tok> {
    tokens(text, true)
}

/// Component-glob tokens: `*` and `?` are wildcards, nothing is escaped.
fn glob_tokens(text: &str) -> Vec<Tok> {
    tokens(text, false)
}

fn tokens(text: &str, escapes: bool) -> Vec<Tok> {
    let mut toks = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if escapes => match chars.peek() {
                Some(&n @ ('*' | '?' | '\\')) => {
                    lit.push(n);
                    chars.next();
                }
                _ => lit.push('\\'),
            },
            '*' | '?' => {
                if !lit.is_empty() {
                    toks.push(Tok::Lit(upcase(&std::mem::take(&mut lit)).into()));
                }
                let t = if c == '*' { Tok::Star } else { Tok::One };
                if !(t == Tok::Star && toks.last() == Some(&Tok::Star)) {
                    toks.push(t);
                }
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        toks.push(Tok::Lit(upcase(&lit).into()));
    }
    toks
}

impl StrPat {
    /// The pattern for a Sigma value compared with `op`.
    pub fn sigma(op: StrOp, value: &str) -> StrPat {
        let mut toks = sigma_tokens(value);
        if matches!(op, StrOp::Contains | StrOp::EndsWith) && toks.first() != Some(&Tok::Star) {
            toks.insert(0, Tok::Star);
        }
        if matches!(op, StrOp::Contains | StrOp::StartsWith) && toks.last() != Some(&Tok::Star) {
            toks.push(Tok::Star);
        }
        StrPat::from_tokens(toks)
    }

    /// A glob over one path component or value name (`*`, `?`; no escapes).
    pub fn glob(text: &str) -> StrPat {
        StrPat::from_tokens(glob_tokens(text))
    }

    /// The cheapest form of a token list.
    pub fn from_tokens(toks: Vec<Tok>) -> StrPat {
        match toks.as_slice() {
            [] => StrPat::Equals("".into()),
            [Tok::Lit(l)] => StrPat::Equals(l.clone()),
            [Tok::Lit(l), Tok::Star] => StrPat::Prefix(l.clone()),
            [Tok::Star, Tok::Lit(l)] => StrPat::Suffix(l.clone()),
            [Tok::Star, Tok::Lit(l), Tok::Star] => StrPat::Contains(Needle::new(l)),
            [Tok::Star] => StrPat::Prefix("".into()),
            _ => StrPat::Glob(toks),
        }
    }

    /// The tokens of this pattern (a full-text wildcard pattern).
    pub fn tokens(&self) -> Vec<Tok> {
        let lit = |l: &str| Tok::Lit(l.into());
        match self {
            StrPat::Equals(l) if l.is_empty() => vec![],
            StrPat::Equals(l) => vec![lit(l)],
            StrPat::Prefix(l) if l.is_empty() => vec![Tok::Star],
            StrPat::Prefix(l) => vec![lit(l), Tok::Star],
            StrPat::Suffix(l) => vec![Tok::Star, lit(l)],
            StrPat::Contains(l) => vec![Tok::Star, lit(l.as_str()), Tok::Star],
            StrPat::Glob(t) => t.clone(),
        }
    }

    /// True if the pattern matches `upcased` (text already upcased with [`upcase`]).
    #[inline]
    pub fn matches(&self, upcased: &str) -> bool {
        match self {
            StrPat::Equals(l) => upcased == &**l,
            StrPat::Prefix(l) => upcased.starts_with(&**l),
            StrPat::Suffix(l) => upcased.ends_with(&**l),
            StrPat::Contains(l) => l.is_in(upcased),
            StrPat::Glob(toks) => glob_match(toks, upcased),
        }
    }

    /// True if the pattern matches `text` as given (not upcased); `None` when that cannot be
    /// told without upcasing it (non-ASCII text or pattern, or a general glob).
    #[inline]
    pub fn matches_unfolded(&self, text: &str) -> Option<bool> {
        if !text.is_ascii() {
            return None;
        }
        let t = text.as_bytes();
        let eq = |a: &[u8], b: &str| a.eq_ignore_ascii_case(b.as_bytes());
        match self {
            StrPat::Equals(l) if l.is_ascii() => Some(t.len() == l.len() && eq(t, l)),
            StrPat::Prefix(l) if l.is_ascii() => Some(t.len() >= l.len() && eq(&t[..l.len()], l)),
            StrPat::Suffix(l) if l.is_ascii() => Some(t.len() >= l.len() && eq(&t[t.len() - l.len()..], l)),
            StrPat::Contains(n) => n.folded().map(|ac| ac.is_match(text)),
            _ => None,
        }
    }

    /// True if this pattern matches every text.
    pub fn is_everything(&self) -> bool {
        matches!(self, StrPat::Prefix(l) if l.is_empty())
    }
}

/// Wildcard matching with single-star backtracking: linear in practice.
fn glob_match(toks: &[Tok], s: &str) -> bool {
    let (mut ti, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    loop {
        if ti < toks.len() {
            match &toks[ti] {
                Tok::Star => {
                    star = Some((ti + 1, si));
                    ti += 1;
                    continue;
                }
                Tok::One => {
                    if let Some(c) = s[si..].chars().next() {
                        si += c.len_utf8();
                        ti += 1;
                        continue;
                    }
                }
                Tok::Lit(l) => {
                    if s[si..].starts_with(&**l) {
                        si += l.len();
                        ti += 1;
                        continue;
                    }
                }
            }
        } else if si == s.len() {
            return true;
        }
        // Mismatch: let the last star swallow one more character.
        let Some((sti, ssi)) = star else { return false };
        let Some(c) = s[ssi..].chars().next() else { return false };
        let next = ssi + c.len_utf8();
        star = Some((sti, next));
        ti = sti;
        si = next;
    }
}

impl fmt::Display for StrPat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in self.tokens() {
            match t {
                Tok::Lit(l) => f.write_str(&l)?,
                Tok::Star => f.write_str("*")?,
                Tok::One => f.write_str("?")?,
            }
        }
        Ok(())
    }
}

/// One component of a key-path pattern.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CompPat {
    /// A name, upcased.
    Lit(Box<str>),
    /// `*`: exactly one component (WdFilter's wildcard node).
    One,
    /// `**`: any number of components, none included.
    Any,
    /// A glob within one component (`*_Classes`, `Run*`).
    Glob(StrPat),
}

/// Why a pattern is not valid.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum PatternError {
    /// Empty pattern.
    #[error("the key pattern is empty")]
    Empty,
    /// An empty component (`\\`).
    #[error("component {0} is empty (two backslashes in a row)")]
    EmptyComponent(usize),
    /// `{n}` out of range.
    #[error("`{0}` must skip between 1 and 512 components")]
    BadSkip(String),
    /// The root is not a known hive alias.
    #[error("`{0}` is not a registry root: use HKLM, HKU, HKCU, HKCR (or their HKEY_ names) or \\REGISTRY\\...")]
    BadRoot(String),
    /// `**` used as a component glob.
    #[error("component `{0}`: `**` must be a whole component")]
    BadGlobStar(String),
}

/// Parses one component of a key pattern.
pub fn parse_component(c: &str, index: usize) -> Result<Vec<CompPat>, PatternError> {
    Ok(match c {
        "" => return Err(PatternError::EmptyComponent(index)),
        "*" => vec![CompPat::One],
        "**" => vec![CompPat::Any],
        // `{3}` skips components; `{GUID}` is a name.
        _ if c.len() > 2
            && c.starts_with('{')
            && c.ends_with('}')
            && c[1..c.len() - 1].bytes().all(|b| b.is_ascii_digit()) =>
        {
            let n: usize = c[1..c.len() - 1].parse().map_err(|_| PatternError::BadSkip(c.into()))?;
            if n == 0 || n > 512 {
                return Err(PatternError::BadSkip(c.into()));
            }
            vec![CompPat::One; n]
        }
        _ if c.contains("**") => return Err(PatternError::BadGlobStar(c.into())),
        _ if c.contains(['*', '?']) => vec![CompPat::Glob(StrPat::glob(c))],
        _ => vec![CompPat::Lit(upcase(c).into())],
    })
}

/// A value-name pattern.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ValuePat {
    /// Every value name (`*`).
    Any,
    /// One name (upcased); `(Default)` and the empty string both mean the unnamed value.
    Exact(Box<str>),
    /// A glob.
    Glob(StrPat),
}

impl ValuePat {
    /// Parses a value-name pattern: `*`, a glob, or a name.
    pub fn parse(text: &str) -> ValuePat {
        if text == "*" {
            ValuePat::Any
        } else if text.eq_ignore_ascii_case("(Default)") {
            ValuePat::Exact("".into())
        } else if text.contains(['*', '?']) {
            ValuePat::Glob(StrPat::glob(text))
        } else {
            ValuePat::Exact(upcase(text).into())
        }
    }

    /// True if the pattern matches an upcased value name.
    #[inline]
    pub fn matches(&self, upcased: &str) -> bool {
        match self {
            ValuePat::Any => true,
            ValuePat::Exact(n) => &**n == upcased,
            ValuePat::Glob(g) => g.matches(upcased),
        }
    }
}

/// A field of an operation, by Sysmon's name.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Field {
    /// The key, plus `\` and the value name for value operations, as Sysmon renders it.
    TargetObject,
    /// The data written, as Sysmon prints it.
    Details,
    /// The caller's executable.
    Image,
    /// `CreateKey`, `DeleteKey`, `SetValue`, `DeleteValue`, `RenameKey`.
    EventType,
    /// The new name of a renamed key (rendered like `TargetObject`).
    NewName,
}

impl Field {
    /// Every field.
    pub const ALL: [Field; 5] = [Field::TargetObject, Field::Details, Field::Image, Field::EventType, Field::NewName];

    /// Sysmon's field name.
    pub const fn name(self) -> &'static str {
        match self {
            Field::TargetObject => "TargetObject",
            Field::Details => "Details",
            Field::Image => "Image",
            Field::EventType => "EventType",
            Field::NewName => "NewName",
        }
    }

    /// Parses Sysmon's field name.
    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }
}

/// A condition over an operation's fields (what a Sigma detection becomes).
#[derive(Clone, Debug)]
pub enum Cond {
    /// Every one holds.
    All(Vec<Cond>),
    /// At least one holds.
    Any(Vec<Cond>),
    /// It does not hold.
    Not(Box<Cond>),
    /// The field matches one of the patterns (an absent field is the empty string).
    Str(Field, Vec<StrPat>),
    /// The field matches one of the regular expressions (case as the expression says).
    Regex(Field, Vec<regex::Regex>),
}

/// The fields of one operation, as conditions see them: each rendered (and upcased) the
/// first time a condition asks for it.
#[derive(Debug)]
pub struct Fields<'a> {
    source: Option<(&'a super::policy::CompiledPolicy, &'a super::policy::Subject<'a>, &'a super::policy::Actor<'a>)>,
    /// `TargetObject` upcased, when the walk already holds it.
    target_upcased: Option<&'a str>,
    original: [std::cell::OnceCell<String>; 5],
    upcased: [std::cell::OnceCell<String>; 5],
}

impl<'a> Fields<'a> {
    /// The fields, given, in [`Field::ALL`] order.
    pub fn new(values: [String; 5]) -> Fields<'static> {
        let upcased = values.each_ref().map(|v| std::cell::OnceCell::from(upcase(v)));
        Fields { source: None, target_upcased: None, original: values.map(std::cell::OnceCell::from), upcased }
    }

    /// The fields of an operation, rendered on demand.
    pub fn of(
        policy: &'a super::policy::CompiledPolicy,
        subject: &'a super::policy::Subject<'a>,
        actor: &'a super::policy::Actor<'a>,
    ) -> Self {
        Fields {
            source: Some((policy, subject, actor)),
            target_upcased: None,
            original: Default::default(),
            upcased: Default::default(),
        }
    }

    /// Uses `text` as the upcased `TargetObject` (what the walk of the operation's path holds).
    pub fn with_target_upcased(mut self, text: Option<&'a str>) -> Self {
        self.target_upcased = text;
        self
    }

    /// `Image`, or `Details` given as text, without rendering or copying; any other field
    /// rendered.
    pub fn unrendered(&self, f: Field) -> &str {
        if let Some((_, s, a)) = self.source {
            match (f, s.details) {
                (Field::Image, _) => return a.image,
                (Field::Details, Some(super::policy::Details::Text(t))) => return t,
                _ => {}
            }
        }
        self.get(f)
    }

    /// A field's text as the operation gave it.
    pub fn get(&self, f: Field) -> &str {
        self.original[f as usize].get_or_init(|| match self.source {
            Some((p, s, a)) => p.field(f, s, a),
            None => String::new(),
        })
    }

    /// A field's text, upcased.
    pub fn upcased(&self, f: Field) -> &str {
        if let (Field::TargetObject, Some(t)) = (f, self.target_upcased) {
            return t;
        }
        self.upcased[f as usize].get_or_init(|| {
            let v = self.unrendered(f);
            if v.is_ascii() { v.to_ascii_uppercase() } else { upcase(v) }
        })
    }
}

impl Cond {
    /// Evaluates the condition.
    pub fn eval(&self, fields: &Fields<'_>) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.eval(fields)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval(fields)),
            Cond::Not(c) => !c.eval(fields),
            Cond::Str(f, pats) => {
                let text = fields.upcased(*f);
                pats.iter().any(|p| p.matches(text))
            }
            Cond::Regex(f, res) => {
                let text = fields.get(*f);
                res.iter().any(|r| r.is_match(text))
            }
        }
    }

    /// The operations the condition can hold for, from its `EventType` tests (`None`: any).
    pub fn event_types(&self) -> Option<super::bits::OpSet> {
        use super::bits::{OpSet, RegOp};
        match self {
            Cond::Str(Field::EventType, pats) => Some(
                RegOp::ALL.into_iter().filter(|op| pats.iter().any(|p| p.matches(&upcase(op.event_type())))).collect(),
            ),
            Cond::All(cs) => cs.iter().filter_map(Cond::event_types).reduce(|a, b| a.intersect(b)),
            Cond::Any(cs) => {
                let mut out = OpSet::EMPTY;
                for c in cs {
                    out = out.union(c.event_types()?);
                }
                Some(out)
            }
            _ => None,
        }
    }

    /// Probes one of which hits whenever the condition holds: path patterns (from
    /// `TargetObject`/`NewName` tests; a rename walks the tree under both names) and, where no
    /// path test is required, tests of `Image` or `Details`. `None` if no such set exists (a
    /// negation, a regex...). The probes may hit more than the condition: the condition itself
    /// is evaluated on every hit.
    pub fn probes(&self) -> Option<Vec<Probe>> {
        match self {
            Cond::Str(Field::TargetObject | Field::NewName, pats) => {
                let mut out = Vec::new();
                for p in pats {
                    out.extend(index_pattern(p)?.into_iter().map(Probe::Path));
                }
                Some(out)
            }
            Cond::Str(f @ (Field::Image | Field::Details), pats) => {
                if pats.iter().any(StrPat::is_everything) {
                    return None;
                }
                Some(pats.iter().map(|p| Probe::Field(*f, p.clone())).collect())
            }
            Cond::All(cs) => cs.iter().filter_map(Cond::probes).min_by_key(|probes| cost(probes)),
            Cond::Any(cs) => {
                let mut out = Vec::new();
                for c in cs {
                    out.extend(c.probes()?);
                }
                Some(out)
            }
            _ => None,
        }
    }
}

/// A way to find a rule's candidates without evaluating its condition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// A path pattern in the tree.
    Path(Vec<CompPat>),
    /// A test of one field of every operation (`Image` or `Details`).
    Field(Field, StrPat),
}

/// How expensive a probe set is per operation: path probes cost nothing unless hit; field
/// probes are tested on every operation, `Details` (long) more than `Image`.
fn cost(probes: &[Probe]) -> usize {
    probes
        .iter()
        .map(|p| match p {
            Probe::Path(c) => score(c),
            Probe::Field(Field::Image, _) => 20,
            Probe::Field(..) => 30,
        })
        .max()
        .unwrap_or(0)
}

/// Components on most registry paths (upcased): a probe made only of them is hit often.
const COMMON: [&str; 16] = [
    "SOFTWARE",
    "SYSTEM",
    "MICROSOFT",
    "WINDOWS",
    "WINDOWS NT",
    "CURRENTVERSION",
    "CURRENTCONTROLSET",
    "SERVICES",
    "CONTROL",
    "CLASSES",
    "POLICIES",
    "WOW6432NODE",
    "CLSID",
    "EXPLORER",
    "PARAMETERS",
    "(DEFAULT)",
];

/// A lower score is a more selective index pattern: anchored at the root, then holding an
/// uncommon name, then a glob with some text, then only common names.
fn score(p: &[CompPat]) -> usize {
    if p.first() != Some(&CompPat::Any) {
        return 0;
    }
    let uncommon = p.iter().any(|c| matches!(c, CompPat::Lit(l) if !COMMON.contains(&&**l)));
    // A glob whose text starts a common name (`CurrentVersion*`) is as common as the name.
    let glob = p.iter().any(|c| {
        matches!(c, CompPat::Glob(g) if literal_len(g) >= 4
            && !matches!(g, StrPat::Prefix(l) if COMMON.iter().any(|w| w.starts_with(&**l) || l.starts_with(w))))
    });
    if uncommon {
        2
    } else if glob {
        5
    } else {
        8
    }
}

fn literal_len(p: &StrPat) -> usize {
    p.tokens().iter().map(|t| if let Tok::Lit(l) = t { l.len() } else { 0 }).max().unwrap_or(0)
}

/// The index patterns of one `TargetObject` pattern (an over-approximation).
fn index_pattern(p: &StrPat) -> Option<Vec<Vec<CompPat>>> {
    let toks = p.tokens();
    let lits: Vec<(usize, &str)> =
        toks.iter().enumerate().filter_map(|(i, t)| if let Tok::Lit(l) = t { Some((i, &**l)) } else { None }).collect();
    let first = lits.first().filter(|(i, _)| *i == 0);
    let last = lits.last().filter(|(i, _)| *i == toks.len() - 1);
    let (run, sa, ea) = match (first, last) {
        (Some((_, l)), _) if toks.len() == 1 => (*l, true, true),
        (Some((_, l)), _) if l.contains('\\') => (*l, true, false),
        (_, Some((_, l))) => (*l, false, true),
        (Some((_, l)), None) => (*l, true, false),
        _ => (lits.iter().max_by_key(|(_, l)| l.len())?.1, false, false),
    };
    index_run(run, sa, ea)
}

fn index_run(run: &str, sa: bool, ea: bool) -> Option<Vec<Vec<CompPat>>> {
    let parts: Vec<&str> = run.split('\\').collect();
    let k = parts.len() - 1;
    let lit = |s: &str| CompPat::Lit(s.into());
    let mut seq = Vec::new();
    if k == 0 {
        let p = parts[0];
        if p.is_empty() {
            return None;
        }
        if sa {
            // The first component is a root; a prefix of one says little.
            return if ea { Some(root_alts(p).into_iter().collect()) } else { None };
        }
        // "HKCR" renders a path that walks as HKLM\SOFTWARE\CLASSES: text inside it cannot index.
        if "HKCR".contains(p) || "CLASSES".contains(p) {
            return None;
        }
        if ea {
            seq.extend([CompPat::Any, CompPat::Glob(StrPat::Suffix(p.into()))]);
        } else {
            seq.extend([CompPat::Any, CompPat::Glob(StrPat::Contains(Needle::new(p))), CompPat::Any]);
        }
        return Some(vec![seq]);
    }
    if sa {
        match parts[0] {
            "" => return None,
            "HKCR" => seq.extend([lit("HKLM"), lit("SOFTWARE"), lit("CLASSES")]),
            p => seq.push(lit(p)),
        }
    } else {
        seq.push(CompPat::Any);
    }
    for p in &parts[1..k] {
        seq.push(lit(p));
    }
    let last = parts[k];
    if ea {
        seq.push(lit(last));
    } else {
        if !last.is_empty() {
            seq.push(CompPat::Glob(StrPat::Prefix(last.into())));
        }
        seq.push(CompPat::Any);
    }
    Some(vec![seq])
}

/// A whole-string root name (`HKLM`) as walk components.
fn root_alts(p: &str) -> Option<Vec<CompPat>> {
    match p {
        "HKCR" => {
            Some(vec![CompPat::Lit("HKLM".into()), CompPat::Lit("SOFTWARE".into()), CompPat::Lit("CLASSES".into())])
        }
        p => Some(vec![CompPat::Lit(p.into())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(op: StrOp, pat: &str, text: &str) -> bool {
        StrPat::sigma(op, pat).matches(&upcase(text))
    }

    #[test]
    fn sigma_values_match_as_sigma_says() {
        assert!(m(StrOp::Contains, r"\CurrentVersion\Run", r"HKLM\Software\Microsoft\Windows\CurrentVersion\Run\x"));
        assert!(m(StrOp::EndsWith, r"\Start", r"HKLM\System\CurrentControlSet\Services\WinDefend\Start"));
        assert!(!m(StrOp::EndsWith, r"\Start", r"HKLM\System\CurrentControlSet\Services\WinDefend\StartX"));
        assert!(m(StrOp::Equals, r"HKU\\*\Software\x", r"HKU\S-1-5-21-1\Software\X"));
        assert!(!m(StrOp::Equals, r"HKU\*\Software\x", r"HKU\S-1-5-21-1\Software\X"));
        assert!(m(StrOp::Equals, r"DWORD (0x0000000?)", "DWORD (0x00000004)"));
        assert!(m(StrOp::Equals, r"a\*b", "a*b"));
        assert!(!m(StrOp::Equals, r"a\*b", "axb"));
        assert!(m(StrOp::StartsWith, r"C:\Users\", r"c:\users\bob\x.exe"));
        assert!(m(StrOp::Equals, "", ""));
        assert!(!m(StrOp::Equals, "", "x"));
        assert!(m(StrOp::Contains, "*", "anything"));
    }

    #[test]
    fn globs_backtrack() {
        let g = StrPat::glob("*_Classes");
        assert!(g.matches("S-1-5-21_CLASSES"));
        assert!(!g.matches("S-1-5-21"));
        let g = StrPat::glob("a*b*c");
        assert!(g.matches("AXXBYYBC"));
        assert!(!g.matches("AXXBYYB"));
        assert!(StrPat::glob("R?n").matches("RÜN"));
    }

    #[test]
    fn components_parse() {
        assert_eq!(parse_component("{2}", 0).unwrap(), vec![CompPat::One, CompPat::One]);
        assert!(parse_component("{0}", 0).is_err());
        assert_eq!(
            parse_component("{00000006-5A1E-4C3B-9D2F-00000000B99A}", 0).unwrap(),
            vec![CompPat::Lit("{00000006-5A1E-4C3B-9D2F-00000000B99A}".into())]
        );
        assert_eq!(parse_component("{0}", 0).unwrap_err().to_string(), "`{0}` must skip between 1 and 512 components");
        assert!(parse_component("a**", 0).is_err());
        assert_eq!(parse_component("Run*", 0).unwrap(), vec![CompPat::Glob(StrPat::Prefix("RUN".into()))]);
    }

    #[test]
    fn target_indexes_are_component_paths() {
        let idx = |op, s| index_pattern(&StrPat::sigma(op, s));
        let _ = Probe::Path(vec![]);
        let lit = |s: &str| CompPat::Lit(s.into());
        assert_eq!(
            idx(StrOp::Contains, r"\CurrentVersion\Run").unwrap(),
            vec![vec![CompPat::Any, lit("CURRENTVERSION"), CompPat::Glob(StrPat::Prefix("RUN".into())), CompPat::Any]]
        );
        assert_eq!(idx(StrOp::EndsWith, r"\Start").unwrap(), vec![vec![CompPat::Any, lit("START")]]);
        assert_eq!(
            idx(StrOp::StartsWith, r"HKCR\CLSID\").unwrap(),
            vec![vec![lit("HKLM"), lit("SOFTWARE"), lit("CLASSES"), lit("CLSID"), CompPat::Any]]
        );
        assert!(idx(StrOp::Contains, "CR").is_none());
        assert!(idx(StrOp::Contains, "*").is_none());
    }
}
