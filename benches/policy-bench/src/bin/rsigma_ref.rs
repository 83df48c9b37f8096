//! The reference run: every Sigma rule under a directory, evaluated by rsigma on every Sysmon
//! registry event of the traces, printing the matches and the time each phase took.
//!
//! ```text
//! rsigma_ref [--rules DIR] [--events FILE]... [--pairs OUT.tsv] [--logsource MODE]
//! ```
//!
//! Defaults: `$HIVEBOX_CORPUS/sigma-registry` (`HIVEBOX_CORPUS` defaults to the shared data
//! directory next to the repository) and both traces (`traces/otrf_...jsonl.gz`, gzip, and
//! `traces/hayabusa_...jsonl`). Each event file is JSON lines with Sysmon field names.
//!
//! rsigma's `Engine::evaluate` ignores a rule's `logsource` unless an event carries
//! `product`/`category` fields (and ours do not), so a `registry_set` rule also fires on a
//! CreateKey event whose `TargetObject` matches. `--logsource` says which matches to keep:
//! - `none`: every match rsigma reports;
//! - `sysmon`: the event's `EventID` is one pySigma's Sysmon pipeline gives the category
//!   (registry_add and registry_delete 12, registry_set 13, registry_rename 14,
//!   registry_event 12, 13 and 14);
//! - `eventtype` (default): the event's `EventType` is one of the operations hivebox notifies
//!   for the category (registry_add CreateKey; registry_delete DeleteKey, DeleteValue;
//!   registry_set SetValue; registry_rename RenameKey; registry_event any). An event without
//!   `EventType` falls back to its `EventID` as in `sysmon`.
//!
//! The match counts of all three modes are printed; `--pairs` gets the chosen mode's matches,
//! one `file<TAB>line<TAB>sigma_id` row each (line numbers from 1, the Sigma `id` without
//! hivebox's `sigma-` prefix), in event order.

use std::collections::HashMap;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use rsigma_eval::Engine;
use rsigma_eval::event::JsonEvent;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    None,
    Sysmon,
    EventType,
}

const MODES: [Mode; 3] = [Mode::None, Mode::Sysmon, Mode::EventType];

impl Mode {
    /// The `--logsource` spelling.
    fn name(self) -> &'static str {
        match self {
            Mode::None => "none",
            Mode::Sysmon => "sysmon",
            Mode::EventType => "eventtype",
        }
    }
}

#[derive(Debug)]
struct Args {
    rules: PathBuf,
    events: Vec<PathBuf>,
    pairs: Option<PathBuf>,
    mode: Mode,
}

fn parse_args() -> Result<Args> {
    let corpus = std::env::var_os("HIVEBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    let mut args =
        Args { rules: corpus.join("sigma-registry"), events: Vec::new(), pairs: None, mode: Mode::EventType };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--rules" => args.rules = value()?.into(),
            "--events" => args.events.push(value()?.into()),
            "--pairs" => args.pairs = Some(value()?.into()),
            "--logsource" => {
                args.mode = match value()?.as_str() {
                    "none" => Mode::None,
                    "sysmon" => Mode::Sysmon,
                    "eventtype" => Mode::EventType,
                    other => bail!("--logsource {other}: expected none, sysmon or eventtype"),
                }
            }
            "-h" | "--help" => {
                println!(
                    "rsigma_ref [--rules DIR] [--events FILE]... [--pairs OUT.tsv] [--logsource none|sysmon|eventtype]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    if args.events.is_empty() {
        let traces = corpus.join("traces");
        args.events = vec![
            traces.join("otrf_security_datasets_registry.jsonl.gz"),
            traces.join("hayabusa_sample_evtx_registry.jsonl"),
        ];
    }
    Ok(args)
}

/// Does an event with this `EventID` and `EventType` belong to a rule of `category`?
fn keeps(mode: Mode, category: &str, event_id: Option<u64>, event_type: Option<&str>) -> bool {
    let by_id = |id: Option<u64>| match category {
        "registry_add" | "registry_delete" => id == Some(12),
        "registry_set" => id == Some(13),
        "registry_rename" => id == Some(14),
        "registry_event" => matches!(id, Some(12..=14)),
        _ => true,
    };
    match (mode, event_type) {
        (Mode::None, _) => true,
        (Mode::Sysmon, _) | (Mode::EventType, None) => by_id(event_id),
        (Mode::EventType, Some(t)) => match category {
            "registry_add" => t == "CreateKey",
            "registry_delete" => t == "DeleteKey" || t == "DeleteValue",
            "registry_set" => t == "SetValue",
            "registry_rename" => t == "RenameKey",
            _ => true,
        },
    }
}

fn read_events(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    if path.extension().is_some_and(|e| e == "gz") {
        flate2::read::GzDecoder::new(file).read_to_string(&mut text)
    } else {
        std::io::BufReader::new(file).read_to_string(&mut text)
    }
    .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn main() -> Result<()> {
    let args = parse_args()?;

    // Rules: read, parse (YAML to AST), compile into the engine; each timed apart.
    let files: Vec<PathBuf> = hivebox_policy::sigma::rule_files(&args.rules)
        .with_context(|| format!("reading the rules under {}", Path::new(&args.rules).display()))?
        .into_iter()
        .map(|(_, path)| path)
        .collect();
    let (mut read_time, mut parse_time, mut compile_time) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let mut engine = Engine::new();
    let mut category_of: HashMap<String, String> = HashMap::new();
    let (mut parse_errors, mut compile_errors) = (Vec::new(), Vec::new());
    for path in &files {
        let t = Instant::now();
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        read_time += t.elapsed();
        let t = Instant::now();
        let collection = rsigma_parser::parse_sigma_yaml(&text);
        parse_time += t.elapsed();
        let collection = match collection {
            Ok(c) if c.errors.is_empty() => c,
            Ok(c) => {
                parse_errors.push(format!("{}: {}", path.display(), c.errors.join("; ")));
                c
            }
            Err(e) => {
                parse_errors.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        for rule in &collection.rules {
            let t = Instant::now();
            let added = engine.add_rule(rule);
            compile_time += t.elapsed();
            match added {
                Ok(()) => {
                    let id = rule.id.clone().unwrap_or_default();
                    category_of.insert(id, rule.logsource.category.clone().unwrap_or_default());
                }
                Err(e) => compile_errors.push(format!("{}: {e}", path.display())),
            }
        }
    }
    println!("rsigma-eval 0.23.0, rules from {}", args.rules.display());
    println!(
        "  {} files, {} rules compiled, {} parse errors, {} compile errors",
        files.len(),
        engine.rule_count(),
        parse_errors.len(),
        compile_errors.len()
    );
    for e in parse_errors.iter().chain(&compile_errors) {
        println!("    {e}");
    }
    println!(
        "  read {:.1} ms, parse {:.1} ms, compile {:.1} ms",
        read_time.as_secs_f64() * 1e3,
        parse_time.as_secs_f64() * 1e3,
        compile_time.as_secs_f64() * 1e3
    );

    let mut pairs = match &args.pairs {
        Some(p) => {
            let mut w = BufWriter::new(std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?);
            writeln!(w, "# file\tline\tsigma_id (rsigma 0.23.0, --logsource {})", args.mode.name())?;
            Some(w)
        }
        None => None,
    };
    for path in &args.events {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let t = Instant::now();
        let text = read_events(path)?;
        let load_time = t.elapsed();
        let (mut decode_time, mut eval_time) = (Duration::ZERO, Duration::ZERO);
        let (mut events, mut bad_lines) = (0usize, 0usize);
        let mut matches = [0usize; MODES.len()];
        let mut matched_events = 0usize;
        for (index, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let t = Instant::now();
            let value: Value = match serde_json::from_str(line) {
                Ok(v) => v,
                Err(_) => {
                    bad_lines += 1;
                    continue;
                }
            };
            decode_time += t.elapsed();
            events += 1;
            let t = Instant::now();
            let results = engine.evaluate(&JsonEvent::borrow(&value));
            eval_time += t.elapsed();

            let event_id = value.get("EventID").and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()));
            let event_type = value.get("EventType").and_then(Value::as_str);
            let mut any = false;
            for result in &results {
                let id = result.header.rule_id.as_deref().unwrap_or_default();
                let category = category_of.get(id).map(String::as_str).unwrap_or_default();
                for (i, mode) in MODES.iter().enumerate() {
                    if keeps(*mode, category, event_id, event_type) {
                        matches[i] += 1;
                        if *mode == args.mode {
                            any = true;
                            if let Some(w) = pairs.as_mut() {
                                writeln!(w, "{name}\t{}\t{id}", index + 1)?;
                            }
                        }
                    }
                }
            }
            matched_events += usize::from(any);
        }
        println!("\n{name}: {events} events ({bad_lines} unreadable lines)");
        println!(
            "  matches: {} with --logsource none, {} sysmon, {} eventtype; {matched_events} events matched ({})",
            matches[0],
            matches[1],
            matches[2],
            args.mode.name()
        );
        println!(
            "  read+gunzip {:.1} ms, JSON decode {:.1} ms, evaluate {:.1} ms",
            load_time.as_secs_f64() * 1e3,
            decode_time.as_secs_f64() * 1e3,
            eval_time.as_secs_f64() * 1e3
        );
        println!(
            "  evaluate: {:.0} events/s ({:.2} us/event); decode+evaluate: {:.0} events/s",
            per_second(events, eval_time),
            eval_time.as_secs_f64() * 1e6 / events.max(1) as f64,
            per_second(events, decode_time + eval_time)
        );
    }
    if let Some(mut w) = pairs {
        w.flush()?;
    }
    Ok(())
}
