//! hivebox's Sigma import against rsigma, the reference Sigma evaluator: the shared registry
//! rules over the shared Sysmon traces flag the same (line, rule) pairs on both sides, except
//! for the differences listed here with their reasons.
//!
//! How the two sides are made to judge the same thing:
//! - hivebox imports `$HIVEBOX_CORPUS/sigma-registry` and compiles the Sigma rules alone (no
//!   default policy); each line is parsed with `trace::parse_line` and judged by
//!   `Replay::event`; a rule id is the Sigma `id` once `sigma-` is stripped.
//! - rsigma 0.23.0 gets every rule file (278, the 3 hivebox cannot import included) and each
//!   line decoded by `serde_json`. `Engine::evaluate` ignores a rule's `logsource`, so its
//!   matches are kept only for the operations hivebox notifies for the rule's category
//!   ([`notified`]).
//! - Sysmon event 12 sometimes lost its `EventType` (null): hivebox's parser reads it as a
//!   CreateKey, and the rsigma event is given `"EventType": "CreateKey"` before it is evaluated,
//!   so that the gate and any rule testing `EventType` see the same event on both sides.
//! - Lines without a `TargetObject` (292 OTRF events that kept only their `EventID`) are not
//!   events for hivebox (`TraceError::NoTarget`, counted); rsigma evaluates them anyway, so a
//!   match there would show up as an rsigma-only pair (there is none).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

use hivebox_policy::replay::Replay;
use hivebox_policy::sigma::SigmaImport;
use hivebox_policy::trace::{TraceError, parse_line};
use rsigma_eval::Engine;
use rsigma_eval::event::JsonEvent;
use serde_json::Value;

/// (1-based line number, Sigma rule id).
type Pairs = BTreeSet<(usize, String)>;

/// The Sigma rules hivebox does not import: (source, Sigma id, why). rsigma evaluates them, so
/// each of their matches is an expected rsigma-only pair, and nothing else is.
const NOT_IMPORTED: [(&str, &str, &str); 3] = [
    (
        "rules/windows/registry/registry_event/registry_event_mal_azorult.yml",
        "f7f9ab88-7557-4a69-b30e-0a8f91b3a0e7",
        "selects on `EventID`, which hivebox does not see",
    ),
    (
        "rules/windows/registry/registry_set/registry_set_add_port_monitor.yml",
        "944e8941-f6f6-4ee8-ac05-1c224e923c0e",
        "a filter tests `User`, which hivebox does not see",
    ),
    (
        "rules/windows/registry/registry_set/registry_set_asep_reg_keys_modification_currentcontrolset.yml",
        "f674e36a-4b91-431e-8aef-f8a96c2aca35",
        "a filter (filter_onenote) tests `User`, which hivebox does not see",
    ),
];

/// What one trace gives.
struct Expected {
    file: &'static str,
    /// Non-blank lines.
    lines: usize,
    /// Lines hivebox cannot parse (all for a missing `TargetObject`).
    no_target: usize,
    hivebox_pairs: usize,
    rsigma_pairs: usize,
    /// Pairs only rsigma flags; every one must belong to a [`NOT_IMPORTED`] rule.
    only_rsigma: &'static [(usize, &'static str)],
    /// Pairs only hivebox flags: none, and none is explained.
    only_hivebox: &'static [(usize, &'static str)],
}

const OTRF: Expected = Expected {
    file: "otrf_security_datasets_registry.jsonl.gz",
    lines: 193_766,
    no_target: 292,
    hivebox_pairs: 2_649,
    rsigma_pairs: 2_649,
    // No event of this trace matches a rule hivebox does not import.
    only_rsigma: &[],
    only_hivebox: &[],
};

const HAYABUSA: Expected = Expected {
    file: "hayabusa_sample_evtx_registry.jsonl",
    lines: 389,
    no_target: 0,
    hivebox_pairs: 122,
    rsigma_pairs: 123,
    // powershell.exe (EVTX-ATTACK-SAMPLES, PanacheSysmon_vs_AtomicRedTeam01) sets
    // `HKLM\System\CurrentControlSet\Control\Lsa\Notification Packages`: "CurrentControlSet
    // Autorun Keys Modification", which is not imported (its filter_onenote tests `User`).
    only_rsigma: &[(193, "f674e36a-4b91-431e-8aef-f8a96c2aca35")],
    only_hivebox: &[],
};

#[test]
fn otrf_security_datasets_trace() {
    compare(&OTRF);
}

#[test]
fn hayabusa_sample_evtx_trace() {
    compare(&HAYABUSA);
}

fn corpus() -> PathBuf {
    let dir = std::env::var_os("HIVEBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(dir.join("traces").is_dir(), "the shared corpus is missing at {} (set HIVEBOX_CORPUS)", dir.display());
    dir
}

fn read_trace(name: &str) -> String {
    let path = corpus().join("traces").join(name);
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    let read = if name.ends_with(".gz") {
        flate2::read::MultiGzDecoder::new(file).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)
    };
    read.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text
}

/// The trace's non-blank lines with their 1-based numbers.
fn numbered(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| (i + 1, line)).filter(|(_, line)| !line.trim().is_empty())
}

/// Does hivebox notify an operation of this Sysmon `EventType` to a rule of this category?
/// (`sigma::convert`'s category → `notify` mapping.)
fn notified(category: &str, event_type: &str) -> bool {
    match category {
        "registry_set" => event_type == "SetValue",
        "registry_add" => event_type == "CreateKey",
        "registry_delete" => matches!(event_type, "DeleteKey" | "DeleteValue"),
        "registry_rename" => event_type == "RenameKey",
        "registry_event" => matches!(event_type, "CreateKey" | "DeleteKey" | "SetValue" | "DeleteValue" | "RenameKey"),
        _ => false,
    }
}

/// What one side flagged over a trace.
#[derive(Default)]
struct Flagged {
    pairs: Pairs,
    /// hivebox: lines that are not events. rsigma: matches the category gate dropped.
    dropped: usize,
}

fn hivebox_side(import: &SigmaImport, text: &str) -> Flagged {
    let policy = hivebox_policy::compile("sigma.toml", &import.to_toml()).unwrap_or_else(|e| panic!("{e}"));
    let mut replay = Replay::new(&policy);
    let mut flagged = Flagged::default();
    for (line_no, line) in numbered(text) {
        let op = match parse_line(line) {
            Ok(op) => op,
            Err(TraceError::NoTarget(12)) => {
                flagged.dropped += 1;
                continue;
            }
            Err(e) => panic!("line {line_no}: {e}"),
        };
        for &index in replay.event(&op) {
            let id = &policy.rule(index).id;
            let sigma_id = id.strip_prefix("sigma-").unwrap_or_else(|| panic!("rule {id} is not a Sigma rule"));
            flagged.pairs.insert((line_no, sigma_id.to_owned()));
        }
    }
    flagged
}

/// rsigma's engine with every rule file, and each rule's `logsource.category` by id.
fn rsigma_engine(dir: &Path) -> (Engine, HashMap<String, String>) {
    let files: Vec<PathBuf> =
        hivebox_policy::sigma::rule_files(dir).unwrap().into_iter().map(|(_, path)| path).collect();
    let mut engine = Engine::new();
    let mut category = HashMap::new();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let collection = rsigma_parser::parse_sigma_yaml(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(collection.errors.is_empty(), "{}: {:?}", path.display(), collection.errors);
        for rule in &collection.rules {
            engine.add_rule(rule).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let id = rule.id.clone().unwrap_or_else(|| panic!("{}: no id", path.display()));
            category.insert(id, rule.logsource.category.clone().unwrap_or_default());
        }
    }
    assert_eq!((files.len(), engine.rule_count()), (278, 278), "rsigma reads every rule file");
    (engine, category)
}

fn rsigma_side(dir: &Path, text: &str) -> Flagged {
    let (engine, category) = rsigma_engine(dir);
    let mut flagged = Flagged::default();
    for (line_no, line) in numbered(text) {
        let mut event: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("line {line_no}: {e}"));
        if event.get("EventType").is_none_or(Value::is_null) {
            event["EventType"] = Value::from("CreateKey");
        }
        let event_type = event["EventType"].as_str().unwrap_or_else(|| panic!("line {line_no}: EventType")).to_owned();
        for result in engine.evaluate(&JsonEvent::borrow(&event)) {
            let id = result.header.rule_id.unwrap_or_default();
            if notified(&category[&id], &event_type) {
                flagged.pairs.insert((line_no, id));
            } else {
                flagged.dropped += 1;
            }
        }
    }
    flagged
}

fn pairs(list: &[(usize, &str)]) -> Pairs {
    list.iter().map(|&(line, id)| (line, id.to_owned())).collect()
}

fn rules_of(pairs: &Pairs) -> BTreeSet<&str> {
    pairs.iter().map(|(_, id)| id.as_str()).collect()
}

fn compare(expected: &Expected) {
    let dir = corpus().join("sigma-registry");
    let import = hivebox_policy::sigma::import_dir(&dir).unwrap();
    let unsupported: Vec<&str> = import.unsupported.iter().map(|u| u.source.as_str()).collect();
    assert_eq!(unsupported, NOT_IMPORTED.map(|(source, _, _)| source), "the rules hivebox does not import changed");

    let text = read_trace(expected.file);
    // The two sides are independent: run them side by side (debug builds are slow).
    let (hivebox, rsigma) = std::thread::scope(|s| {
        let hivebox = s.spawn(|| hivebox_side(&import, &text));
        let rsigma = rsigma_side(&dir, &text);
        (hivebox.join().unwrap(), rsigma)
    });

    let only_hivebox: Pairs = hivebox.pairs.difference(&rsigma.pairs).cloned().collect();
    let only_rsigma: Pairs = rsigma.pairs.difference(&hivebox.pairs).cloned().collect();
    let reason = |id: &str| NOT_IMPORTED.iter().find(|(_, i, _)| *i == id).map(|(_, _, why)| *why);
    println!(
        "{}: {} lines, {} without TargetObject (not events for hivebox)",
        expected.file,
        numbered(&text).count(),
        hivebox.dropped
    );
    println!(
        "  hivebox ({} rules): {} pairs, {} rules flagged",
        import.rules.len(),
        hivebox.pairs.len(),
        rules_of(&hivebox.pairs).len()
    );
    println!(
        "  rsigma (278 rules): {} pairs, {} rules flagged; {} more matches dropped by the category gate",
        rsigma.pairs.len(),
        rules_of(&rsigma.pairs).len(),
        rsigma.dropped
    );
    let mut by_rule: BTreeMap<(&str, &str), Vec<usize>> = BTreeMap::new();
    for (side, diff) in [("only hivebox", &only_hivebox), ("only rsigma", &only_rsigma)] {
        for (line, id) in diff {
            by_rule.entry((side, id)).or_default().push(*line);
        }
    }
    for ((side, id), lines) in &by_rule {
        let why = reason(id).unwrap_or("UNEXPLAINED");
        println!("  {side}: {id}: {} pairs, lines {lines:?} ({why})", lines.len());
    }

    assert_eq!((numbered(&text).count(), hivebox.dropped), (expected.lines, expected.no_target));
    assert_eq!(only_hivebox, pairs(expected.only_hivebox), "pairs only hivebox flags");
    assert_eq!(only_rsigma, pairs(expected.only_rsigma), "pairs only rsigma flags");
    let of_not_imported: Pairs = rsigma.pairs.iter().filter(|(_, id)| reason(id).is_some()).cloned().collect();
    assert_eq!(
        only_rsigma, of_not_imported,
        "rsigma-only pairs are exactly those of the rules hivebox does not import"
    );
    assert_eq!(
        (hivebox.pairs.len(), rsigma.pairs.len()),
        (expected.hivebox_pairs, expected.rsigma_pairs),
        "pairs flagged (hivebox, rsigma)"
    );
}
