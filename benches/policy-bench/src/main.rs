//! The policy benchmark: hivebox's replay of the OTRF registry trace against its targets, and
//! against rsigma evaluating the same Sigma rules over the same events, measured in one run.
//!
//! ```text
//! policy-bench [--reps N] [--quick]
//! ```
//!
//! 1. hivebox replays `traces/otrf_security_datasets_registry.ops.jsonl.gz` through the
//!    default policy plus every Sigma rule it imports, compiled into one policy: read+gunzip,
//!    parse (every line with `trace::parse_line`, into a `Vec<TraceOp>`), match (every
//!    operation through one `Replay::event`). Target: match at least 1,000,000 events/s.
//! 2. rsigma-eval 0.23.0 evaluates the same Sigma rules (the importable ones) over the same
//!    events in Sysmon's form (`otrf_security_datasets_registry.jsonl.gz`): read+gunzip, JSON
//!    decode (into a `Vec<serde_json::Value>`), evaluate. Target: hivebox matches at least 10x
//!    faster than rsigma evaluates. Sections 1 and 2 alternate within each repetition.
//! 3. Synthetic policies of 1,000, 10,000 and 100,000 rules: parse and compile time (target:
//!    100,000 rules in under a second) and the match rate of the same operations through each.
//!
//! Every figure is the best of N repetitions (`--reps`, default 5; `--quick`: 2, for CI), on
//! one thread. The corpus is `$HIVEBOX_CORPUS` (default: the shared data directory next to the
//! repository). Match counts are printed as a check that both sides did the work; whether the
//! two sides flag the same events is `hivebox-policy`'s `sigma_vs_rsigma` test.

mod rsigma;
mod scaling;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use hivebox_core::protect::CompiledPolicy;
use hivebox_policy::replay::Replay;
use hivebox_policy::sigma::SigmaImport;
use hivebox_policy::trace::{TraceOp, parse_line};

const OPS_TRACE: &str = "otrf_security_datasets_registry.ops.jsonl.gz";
const SYSMON_TRACE: &str = "otrf_security_datasets_registry.jsonl.gz";

/// The targets, from the issue.
const TARGET_MATCH_PER_SECOND: f64 = 1_000_000.0;
const TARGET_RATIO: f64 = 10.0;

#[derive(Debug)]
struct Args {
    reps: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args { reps: 5 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--reps" => {
                let n = it.next().context("--reps needs a value")?;
                args.reps = n.parse().with_context(|| format!("--reps {n}: not a number"))?;
                if args.reps == 0 {
                    bail!("--reps must be at least 1");
                }
            }
            "--quick" => args.reps = 2,
            "-h" | "--help" => {
                println!("policy-bench [--reps N] [--quick]   (best of N repetitions, default 5; --quick: 2)");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

fn corpus() -> PathBuf {
    std::env::var_os("HIVEBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
}

/// Runs `f` and says how long it took.
fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

/// Lowers `best` to `d` if it is shorter.
fn keep_best(best: &mut Duration, d: Duration) {
    *best = (*best).min(d);
}

fn per_second(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(f64::MIN_POSITIVE)
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// `n` with thousands separators.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "MISS" }
}

/// A gzip-compressed trace, whole.
fn read_gz(path: &Path) -> Result<String> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut text = String::new();
    flate2::read::MultiGzDecoder::new(file)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(text)
}

fn parse_ops(text: &str) -> Result<Vec<TraceOp>> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| parse_line(line).with_context(|| format!("{OPS_TRACE} line {}", i + 1)))
        .collect()
}

/// Every operation through one replay; the number of (event, rule) matches.
fn match_ops(policy: &CompiledPolicy, ops: &[TraceOp]) -> usize {
    let mut replay = Replay::new(policy);
    ops.iter().map(|op| replay.event(op).len()).sum()
}

/// The best time of each phase of sections 1 and 2.
#[derive(Debug)]
struct Best {
    read: Duration,
    parse: Duration,
    matching: Duration,
    rsigma_read: Duration,
    rsigma_decode: Duration,
    rsigma_evaluate: Duration,
}

/// What sections 1 and 2 counted (the same in every repetition).
#[derive(Debug, Default)]
struct Counts {
    events: usize,
    hivebox_matches: usize,
    rsigma_events: usize,
    rsigma_matches: usize,
}

/// Sections 1 and 2, alternating within each repetition. Returns the parsed operations for
/// section 3.
fn side_by_side(
    args: &Args,
    corpus: &Path,
    policy: &CompiledPolicy,
    engine: &rsigma::Rules,
) -> Result<(Vec<TraceOp>, Best, Counts)> {
    let traces = corpus.join("traces");
    let mut best = Best {
        read: Duration::MAX,
        parse: Duration::MAX,
        matching: Duration::MAX,
        rsigma_read: Duration::MAX,
        rsigma_decode: Duration::MAX,
        rsigma_evaluate: Duration::MAX,
    };
    let mut counts = Counts::default();
    let mut ops = Vec::new();
    for _ in 0..args.reps {
        ops.clear();
        let (text, d) = timed(|| read_gz(&traces.join(OPS_TRACE)));
        keep_best(&mut best.read, d);
        let text = text?;
        let (parsed, d) = timed(|| parse_ops(&text));
        keep_best(&mut best.parse, d);
        ops = parsed?;
        let (matches, d) = timed(|| match_ops(policy, &ops));
        keep_best(&mut best.matching, d);
        (counts.events, counts.hivebox_matches) = (ops.len(), matches);

        let (text, d) = timed(|| read_gz(&traces.join(SYSMON_TRACE)));
        keep_best(&mut best.rsigma_read, d);
        let text = text?;
        let (events, d) = timed(|| rsigma::decode(&text));
        keep_best(&mut best.rsigma_decode, d);
        let events = events?;
        let (matches, d) = timed(|| engine.evaluate(&events));
        keep_best(&mut best.rsigma_evaluate, d);
        (counts.rsigma_events, counts.rsigma_matches) = (events.len(), matches);
    }
    Ok((ops, best, counts))
}

fn print_replay(best: &Best, counts: &Counts) {
    let n = counts.events;
    let rate = |d: Duration| format!("{:>12} events/s", thousands(per_second(n, d) as u64));
    println!("  events: {}", thousands(n as u64));
    println!("  read+gunzip  {:>10}  {}", ms(best.read), rate(best.read));
    println!("  parse        {:>10}  {}", ms(best.parse), rate(best.parse));
    println!("  match        {:>10}  {}", ms(best.matching), rate(best.matching));
    println!("  parse+match  {:>10}  {}", ms(best.parse + best.matching), rate(best.parse + best.matching));
    let matched = per_second(n, best.matching);
    println!(
        "match: {} events/s (target >= 1,000,000: {})",
        thousands(matched as u64),
        verdict(matched >= TARGET_MATCH_PER_SECOND)
    );
    println!("  (event, rule) matches: {} (default and Sigma rules)", thousands(counts.hivebox_matches as u64));
}

fn print_rsigma(best: &Best, counts: &Counts) {
    let n = counts.rsigma_events;
    let rate = |d: Duration| format!("{:>12} events/s", thousands(per_second(n, d) as u64));
    println!("  events: {}", thousands(n as u64));
    println!("  read+gunzip      {:>10}  {}", ms(best.rsigma_read), rate(best.rsigma_read));
    println!("  JSON decode      {:>10}  {}", ms(best.rsigma_decode), rate(best.rsigma_decode));
    println!("  evaluate         {:>10}  {}", ms(best.rsigma_evaluate), rate(best.rsigma_evaluate));
    let both = best.rsigma_decode + best.rsigma_evaluate;
    println!("  decode+evaluate  {:>10}  {}", ms(both), rate(both));
    println!(
        "  (event, rule) matches: {} (rsigma ignores logsource: a registry_set rule also fires on other operations)",
        thousands(counts.rsigma_matches as u64)
    );

    // Ratios of rates: the two traces hold the same events, one line each.
    let ratio = |hivebox: Duration, rsigma: Duration| {
        per_second(counts.events, hivebox) / per_second(counts.rsigma_events, rsigma)
    };
    let matching = ratio(best.matching, best.rsigma_evaluate);
    println!("ratios (hivebox events/s over rsigma events/s, same run, interleaved):");
    println!(
        "  hivebox match vs rsigma evaluate:                {matching:>7.1}x (target >= 10x: {})",
        verdict(matching >= TARGET_RATIO)
    );
    println!("  hivebox parse+match vs rsigma decode+evaluate:   {:>7.1}x", ratio(best.parse + best.matching, both));
    println!(
        "  hivebox read+parse+match vs rsigma read+decode+evaluate: {:.1}x",
        ratio(best.read + best.parse + best.matching, best.rsigma_read + both)
    );
}

/// The policy of section 1: the default policy and the importable Sigma rules, one file.
fn combined_policy(import: &SigmaImport) -> Result<CompiledPolicy> {
    let text = format!("{}\n{}", hivebox_policy::DEFAULT_POLICY, import.to_toml());
    let (spec, parse) = timed(|| hivebox_policy::parse("default + sigma", &text));
    let spec = spec.map_err(|e| anyhow!("the combined policy: {e}"))?;
    let (policy, compile) = timed(|| CompiledPolicy::compile(spec));
    let sigma = policy.spec().rules.iter().filter(|r| r.id.starts_with("sigma-")).count();
    println!(
        "policy: {} default + {sigma} Sigma rules ({} Sigma rule files, {} not importable); parse {}, compile {}, {} tree nodes",
        policy.spec().rules.len() - sigma,
        import.rules.len() + import.unsupported.len(),
        import.unsupported.len(),
        ms(parse),
        ms(compile),
        thousands(policy.tree_nodes() as u64)
    );
    Ok(policy)
}

fn main() -> Result<()> {
    let args = parse_args()?;
    let corpus = corpus();
    println!("policy-bench: best of {} repetitions, one thread; corpus {}", args.reps, corpus.display());

    let sigma_dir = corpus.join("sigma-registry");
    let import =
        hivebox_policy::sigma::import_dir(&sigma_dir).with_context(|| format!("importing {}", sigma_dir.display()))?;
    let policy = combined_policy(&import)?;
    let engine = rsigma::Rules::load(&sigma_dir, &import)?;
    println!(
        "rsigma-eval 0.23.0: {} rule files, {} rules evaluated: the importable set, so that both sides run the same rules",
        engine.files, engine.rules
    );

    let (ops, best, counts) = side_by_side(&args, &corpus, &policy, &engine)?;
    println!("\n1. hivebox replay of {OPS_TRACE}");
    print_replay(&best, &counts);
    println!("\n2. rsigma over the same events in Sysmon's form, {SYSMON_TRACE}");
    print_rsigma(&best, &counts);

    println!(
        "\n3. compile scaling: synthetic policies, matched against the {} operations above",
        thousands(ops.len() as u64)
    );
    scaling::run(&args, &ops)
}
