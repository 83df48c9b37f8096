//! The rsigma side: the Sigma rules hivebox imports, in rsigma's engine, over Sysmon events.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use hivebox_policy::sigma::SigmaImport;
use rsigma_eval::Engine;
use rsigma_eval::event::JsonEvent;
use serde_json::Value;

/// rsigma's engine with the rules loaded.
pub struct Rules {
    engine: Engine,
    /// Rule files under the directory.
    pub files: usize,
    /// Rules in the engine.
    pub rules: usize,
}

// By hand: rsigma's `Engine` is not `Debug`.
impl std::fmt::Debug for Rules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rules").field("files", &self.files).field("rules", &self.rules).finish_non_exhaustive()
    }
}

impl Rules {
    /// Every rule under `dir` that hivebox imported (`import`), compiled by rsigma. The rules
    /// hivebox cannot import are left out, so that both sides evaluate the same rules.
    pub fn load(dir: &Path, import: &SigmaImport) -> Result<Rules> {
        let imported: HashSet<&str> = import.rules.iter().filter_map(|r| r.id.strip_prefix("sigma-")).collect();
        let files: Vec<PathBuf> = hivebox_policy::sigma::rule_files(dir)
            .with_context(|| format!("reading the rules under {}", Path::new(dir).display()))?
            .into_iter()
            .map(|(_, path)| path)
            .collect();
        let mut engine = Engine::new();
        for path in &files {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let collection =
                rsigma_parser::parse_sigma_yaml(&text).with_context(|| format!("rsigma parsing {}", path.display()))?;
            if !collection.errors.is_empty() {
                bail!("rsigma parsing {}: {}", path.display(), collection.errors.join("; "));
            }
            for rule in &collection.rules {
                if rule.id.as_deref().is_some_and(|id| imported.contains(id)) {
                    engine.add_rule(rule).with_context(|| format!("rsigma compiling {}", path.display()))?;
                }
            }
        }
        let rules = engine.rule_count();
        if rules != imported.len() {
            bail!("rsigma holds {rules} rules, hivebox imported {}", imported.len());
        }
        Ok(Rules { engine, files: files.len(), rules })
    }

    /// Evaluates every event; the number of (event, rule) matches.
    pub fn evaluate(&self, events: &[Value]) -> usize {
        events.iter().map(|event| self.engine.evaluate(&JsonEvent::borrow(event)).len()).sum()
    }
}

/// Decodes every line of a Sysmon JSON-lines trace.
pub fn decode(text: &str) -> Result<Vec<Value>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).with_context(|| format!("line {}: not JSON", i + 1)))
        .collect()
}
