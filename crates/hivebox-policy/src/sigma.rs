//! Import of Sigma registry rules as hivebox policy rules.
//!
//! [`convert`] turns one Sigma rule (YAML text, Sigma specification 2) whose `logsource.category`
//! is `registry_set`, `registry_add`, `registry_delete`, `registry_rename` or `registry_event`
//! into one `[[rule]]` table of a hivebox policy file (TOML). [`import_dir`] does that for every
//! `*.yml` / `*.yaml` file under a directory and is the only function here that does I/O.
//!
//! What a converted rule keeps: the detection logic (selections, the `condition` with
//! `and`/`or`/`not`/parentheses/`1 of`/`all of`/`them`), the modifiers `contains`,
//! `startswith`, `endswith`, `all`, `re` (with `i`/`m`/`s`), `windash` and `exists`, and the
//! values as written: Sigma's wildcards (`*`, `?`, `\` escapes) pass through unchanged, as do
//! registry paths in Sysmon's rendering (`HKLM\...`, `HKU\<SID>\...`, `CurrentControlSet`,
//! key`\`value). A null value becomes `equals = ""` (hivebox reads an absent field as empty).
//!
//! What it does not do: match anything. Rules it cannot express exactly are reported as
//! [`Unsupported`] with the reason, never converted approximately: keyword searches, fields
//! other than `TargetObject`, `Details`, `Image`, `EventType` and `NewName`, the `cased`
//! modifier (hivebox compares case-insensitively) and the encoding, numeric, time, `cidr`,
//! `expand` and `fieldref` modifiers, regular expressions the Rust `regex` crate rejects,
//! aggregations, correlation and filter rules, and log sources other than Windows registry
//! categories.
//!
//! Sigma rules are usually published under the Detection Rule License 1.1, which asks that a
//! shared rule keeps its author and a link to it: each converted rule carries its `source`
//! path and an `# author:` comment.

mod condition;
mod detection;
mod emit;
mod yaml;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use self::condition::Expr;
use self::emit::Cond;
use self::yaml::{Node, Value};

/// The result of importing a directory of Sigma rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SigmaImport {
    /// Converted rules, sorted by source path.
    pub rules: Vec<ImportedRule>,
    /// Rules that could not be converted, sorted by source path, each with the reason.
    pub unsupported: Vec<Unsupported>,
}

/// One converted Sigma rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedRule {
    /// The hivebox rule id: `sigma-` followed by the Sigma rule's `id`.
    pub id: String,
    /// The Sigma `title`.
    pub title: String,
    /// The rule file's path relative to the imported directory, with `/` separators.
    pub source: String,
    /// The Sigma `level` (`informational` ... `critical`), if given.
    pub level: Option<String>,
    /// The Sigma `status` (`stable`, `test`, `experimental`, `deprecated`, ...), if given.
    pub status: Option<String>,
    /// The Sigma `tags`.
    pub tags: Vec<String>,
    /// The Sigma `author`, kept for attribution.
    pub author: Option<String>,
    /// The Sigma `logsource.category` (`registry_set`, ...).
    pub category: String,
    /// The rule as one `[[rule]]` table of a hivebox policy file, ending in a newline.
    pub toml: String,
}

/// A Sigma rule that was not converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// The rule file's path relative to the imported directory.
    pub source: String,
    /// The Sigma `title`, or empty when the file could not be read that far.
    pub title: String,
    /// Why it was not converted (never empty).
    pub reason: String,
}

// Written by hand: thiserror would take the `source` field for the underlying error.
impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.reason)
    }
}

impl std::error::Error for Unsupported {}

/// Converts every `*.yml` / `*.yaml` file under `dir` (recursively; symbolic links to files
/// are followed, to directories not).
///
/// Files that are not a convertible Sigma rule (bad YAML, unsupported features, a duplicate
/// `id`) become [`Unsupported`] entries; only failures to read the directory or a file are
/// errors.
pub fn import_dir(dir: &Path) -> std::io::Result<SigmaImport> {
    let files = rule_files(dir)?;
    let mut import = SigmaImport::default();
    let mut seen_ids: HashMap<String, String> = HashMap::new();
    for (source, path) in files {
        let bytes = std::fs::read(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
        let result = match String::from_utf8(bytes) {
            Ok(text) => convert(&source, &text),
            Err(e) => Err(Unsupported {
                source: source.clone(),
                title: String::new(),
                reason: format!("{source} is not UTF-8 (invalid byte at offset {})", e.utf8_error().valid_up_to()),
            }),
        };
        match result {
            Ok(rule) => match seen_ids.get(&rule.id) {
                Some(first) => import.unsupported.push(Unsupported {
                    reason: format!("duplicate id `{}` (already imported from {first})", rule.id),
                    source: rule.source,
                    title: rule.title,
                }),
                None => {
                    seen_ids.insert(rule.id.clone(), rule.source.clone());
                    import.rules.push(rule);
                }
            },
            Err(unsupported) => import.unsupported.push(unsupported),
        }
    }
    Ok(import)
}

/// The Sigma rule files (`*.yml`, `*.yaml`) under `dir`, recursively, as pairs of (path
/// relative to `dir` with `/` separators, full path), sorted.
pub fn rule_files(dir: &Path) -> std::io::Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    collect_files(dir, dir, &mut files)?;
    files.sort();
    Ok(files)
}

fn collect_files(root: &Path, dir: &Path, out: &mut Vec<(String, PathBuf)>) -> std::io::Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| std::io::Error::new(e.kind(), format!("reading {}: {e}", dir.display())))?;
    for entry in entries {
        let entry = entry?;
        let path = entry.path();
        let file_type = entry.file_type()?;
        if file_type.is_dir() {
            collect_files(root, &path, out)?;
            continue;
        }
        let is_file = file_type.is_file() || (file_type.is_symlink() && path.is_file());
        let is_yaml = path.extension().is_some_and(|e| e == "yml" || e == "yaml");
        if is_file && is_yaml {
            let relative = path.strip_prefix(root).unwrap_or(&path);
            let source = relative.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            out.push((source, path));
        }
    }
    Ok(())
}

/// Converts one Sigma rule. `source` is the name the rule is reported under (its path).
pub fn convert(source: &str, yaml_text: &str) -> Result<ImportedRule, Unsupported> {
    let text = yaml_text.strip_prefix('\u{feff}').unwrap_or(yaml_text);
    let fail = |title: &str, reason: String| Unsupported { source: source.to_owned(), title: title.to_owned(), reason };

    let mut docs = yaml::load(text).map_err(|e| {
        fail("", format!("invalid YAML in {source} at line {}, column {}: {}", e.line, e.column, e.message))
    })?;
    let doc = match docs.len() {
        1 => docs.remove(0),
        0 => return Err(fail("", format!("{source} holds no YAML document"))),
        n => {
            let title = docs.iter().find_map(|d| d.get("title")?.as_str()).unwrap_or_default();
            return Err(fail(title, format!("{n} YAML documents in one file (a Sigma rule collection)")));
        }
    };
    let title = doc.get("title").and_then(Node::scalar_text).unwrap_or_default();
    convert_doc(source, &title, &doc).map_err(|reason| fail(&title, reason))
}

fn convert_doc(source: &str, title: &str, doc: &Node) -> Result<ImportedRule, String> {
    if !matches!(doc.value, Value::Map(_)) {
        return Err(format!("the document is a {}, not a Sigma rule", doc.kind()));
    }
    for kind in ["correlation", "filter"] {
        if doc.get(kind).is_some() {
            return Err(format!("Sigma {kind} rule"));
        }
    }
    if doc.get("action").is_some() {
        return Err("Sigma 1.x rule collection (`action`)".into());
    }
    if title.is_empty() {
        return Err("the rule has no `title`".into());
    }
    let id = match doc.get("id").and_then(Node::scalar_text) {
        Some(id) if !id.trim().is_empty() && !id.contains(char::is_control) => id,
        _ => return Err("the rule has no usable `id`".into()),
    };
    let category = logsource(doc.get("logsource"))?;
    let notify = notify_classes(&category);
    let detection = doc.get("detection").ok_or("the rule has no `detection`")?;
    let when = detection_condition(detection)?.simplify();

    let text_field = |key: &str| doc.get(key).and_then(Node::scalar_text).filter(|s| !s.is_empty());
    let (level, status, author, license) =
        (text_field("level"), text_field("status"), text_field("author"), text_field("license"));
    let tags: Vec<String> = match doc.get("tags").map(|t| &t.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => Vec::new(),
    };

    let id = format!("sigma-{id}");
    let mut toml = String::from("[[rule]]\n");
    for (label, value) in [("author", &author), ("license", &license)] {
        if let Some(value) = value {
            let _ = writeln!(toml, "# {label}: {}", comment_text(value));
        }
    }
    let _ = writeln!(toml, "id = {}", emit::string(&id));
    let _ = writeln!(toml, "title = {}", emit::string(title));
    let _ = writeln!(toml, "source = {}", emit::string(source));
    for (key, value) in [("level", &level), ("status", &status)] {
        if let Some(value) = value {
            let _ = writeln!(toml, "{key} = {}", emit::string(value));
        }
    }
    if !tags.is_empty() {
        let _ = writeln!(toml, "tags = {}", emit::string_array(&tags, "tags = ".len(), 0));
    }
    let notify: Vec<String> = notify.iter().map(|s| s.to_string()).collect();
    let _ = writeln!(toml, "notify = {}", emit::string_array(&notify, "notify = ".len(), 0));
    let _ = writeln!(toml, "{}", emit::when(&when));

    Ok(ImportedRule {
        id,
        title: title.to_owned(),
        source: source.to_owned(),
        level,
        status,
        tags,
        author,
        category,
        toml,
    })
}

/// The rule's registry category, after checking the rest of its `logsource`.
fn logsource(node: Option<&Node>) -> Result<String, String> {
    let Some(Node { value: Value::Map(entries), .. }) = node else {
        return Err("the rule has no `logsource` map".into());
    };
    let mut category = None;
    for (key, value) in entries {
        let key = key.scalar_text().unwrap_or_default();
        let value = value.scalar_text().unwrap_or_default();
        match key.as_str() {
            "category" => category = Some(value),
            "product" if value.eq_ignore_ascii_case("windows") => {}
            "product" => return Err(format!("logsource product `{value}` is not windows")),
            "service" => return Err(format!("logsource service `{value}`: hivebox imports registry categories only")),
            "definition" => {}
            other => return Err(format!("logsource key `{other}` is not supported")),
        }
    }
    match category {
        Some(c) if notify_classes(&c).is_empty() => Err(format!("logsource category `{c}` is not a registry category")),
        Some(c) => Ok(c),
        None => Err("logsource has no category".into()),
    }
}

/// The hivebox notification classes a Sigma registry category watches.
fn notify_classes(category: &str) -> &'static [&'static str] {
    match category {
        "registry_set" => &["set-value"],
        "registry_add" => &["create-key"],
        "registry_delete" => &["delete-key", "delete-value"],
        "registry_rename" => &["rename-key"],
        "registry_event" => &["create-key", "delete-key", "set-value", "delete-value", "rename-key"],
        _ => &[],
    }
}

/// The detection's condition, with its search identifiers resolved.
fn detection_condition(detection: &Node) -> Result<Cond, String> {
    let Value::Map(entries) = &detection.value else {
        return Err(format!("`detection` is a {}, not a map", detection.kind()));
    };
    let searches: Vec<(&str, &Node)> =
        entries.iter().filter_map(|(k, v)| Some((k.as_str()?, v))).filter(|(k, _)| *k != "condition").collect();
    if detection.get("timeframe").is_some() {
        return Err("`timeframe` (an aggregation over time) is not supported".into());
    }
    let condition = detection.get("condition").ok_or("the detection has no `condition`")?;
    let exprs = match &condition.value {
        Value::Str(text) => vec![condition::parse(text)?],
        // Several conditions: the rule matches when any of them does.
        Value::Seq(items) if !items.is_empty() => items
            .iter()
            .map(|item| {
                item.as_str().ok_or("`condition` list holds a non-string".to_owned()).and_then(condition::parse)
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(format!("`condition` is a {}, not a string", condition.kind())),
    };
    let mut resolver = Resolver { searches, cache: HashMap::new() };
    let conds = exprs.iter().map(|e| resolver.lower(e)).collect::<Result<Vec<_>, _>>()?;
    Ok(Cond::Any(conds))
}

/// Resolves search identifiers, converting each one once.
struct Resolver<'a> {
    searches: Vec<(&'a str, &'a Node)>,
    cache: HashMap<&'a str, Cond>,
}

impl<'a> Resolver<'a> {
    fn search(&mut self, name: &'a str, node: &'a Node) -> Result<Cond, String> {
        if let Some(cond) = self.cache.get(name) {
            return Ok(cond.clone());
        }
        let cond = detection::search(name, node)?;
        self.cache.insert(name, cond.clone());
        Ok(cond)
    }

    fn lower(&mut self, expr: &Expr) -> Result<Cond, String> {
        Ok(match expr {
            Expr::Ident(name) => {
                let Some(&(name, node)) = self.searches.iter().find(|(n, _)| *n == name.as_str()) else {
                    return Err(format!("condition names `{name}`, which the detection does not define"));
                };
                self.search(name, node)?
            }
            Expr::Of { all, pattern } => {
                let matching: Vec<(&'a str, &'a Node)> = self
                    .searches
                    .iter()
                    .copied()
                    .filter(|(name, _)| match pattern {
                        Some(p) => condition::pattern_matches(p, name),
                        None => !name.starts_with('_'),
                    })
                    .collect();
                if matching.is_empty() {
                    let what = pattern.as_deref().unwrap_or("them");
                    return Err(format!("condition `of {what}` matches no search identifier"));
                }
                let conds = matching.into_iter().map(|(n, node)| self.search(n, node)).collect::<Result<_, _>>()?;
                if *all { Cond::All(conds) } else { Cond::Any(conds) }
            }
            Expr::And(items) => Cond::All(items.iter().map(|e| self.lower(e)).collect::<Result<_, _>>()?),
            Expr::Or(items) => Cond::Any(items.iter().map(|e| self.lower(e)).collect::<Result<_, _>>()?),
            Expr::Not(inner) => Cond::Not(Box::new(self.lower(inner)?)),
        })
    }
}

/// `text` on one comment line: control characters (line breaks included) become spaces.
fn comment_text(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_owned()
}

impl SigmaImport {
    /// The whole policy file: a header, every converted rule, and the unsupported rules as
    /// comments with their reasons.
    pub fn to_toml(&self) -> String {
        let total = self.rules.len() + self.unsupported.len();
        let mut out = String::new();
        let _ = writeln!(out, "# hivebox policy generated by `hivebox policy import-sigma` from {total} Sigma rules:");
        let _ = writeln!(
            out,
            "# {} converted, {} unsupported (listed at the end with the reasons).",
            self.rules.len(),
            self.unsupported.len()
        );
        out.push_str(
            "# Sigma rules are usually licensed under the Detection Rule License 1.1\n\
             # (https://github.com/SigmaHQ/Detection-Rule-License): keep each rule's author and source.\n",
        );
        for rule in &self.rules {
            out.push('\n');
            out.push_str(&rule.toml);
        }
        if !self.unsupported.is_empty() {
            out.push_str("\n# Unsupported Sigma rules (not converted):\n");
            for u in &self.unsupported {
                let title = if u.title.is_empty() { String::new() } else { format!(" ({})", comment_text(&u.title)) };
                let _ = writeln!(out, "# - {}{title}: {}", comment_text(&u.source), comment_text(&u.reason));
            }
        }
        out
    }
}
