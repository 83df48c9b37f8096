//! The default policy replayed over the shared attack traces: no crash, stable counts.

use hivebox_policy::replay::Replay;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

fn corpus() -> PathBuf {
    let dir = std::env::var_os("HIVEBOX_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    assert!(dir.join("traces").is_dir(), "the shared corpus is missing at {} (set HIVEBOX_CORPUS)", dir.display());
    dir
}

fn lines(name: &str) -> Box<dyn BufRead> {
    let path = corpus().join("traces").join(name);
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let r: Box<dyn Read> =
        if name.ends_with(".gz") { Box::new(flate2::read::MultiGzDecoder::new(f)) } else { Box::new(f) };
    Box::new(BufReader::new(r))
}

fn replay<'p>(policy: &'p hivebox_core::protect::CompiledPolicy, name: &str) -> Replay<'p> {
    let mut r = Replay::new(policy);
    for (i, line) in lines(name).lines().enumerate() {
        r.line(i as u64 + 1, &line.unwrap());
    }
    r
}

fn report(policy: &hivebox_core::protect::CompiledPolicy, r: &Replay<'_>) -> Vec<(String, u64)> {
    let mut hits: Vec<(String, u64)> = r
        .rules
        .iter()
        .enumerate()
        .filter(|(_, c)| c.notified + c.denied > 0)
        .map(|(i, c)| (policy.rule(i as u32).id.clone(), c.notified + c.denied))
        .collect();
    hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (id, n) in &hits {
        println!("{n:>8}  {id}");
    }
    hits
}

#[test]
fn the_default_policy_over_the_otrf_trace() {
    let policy = hivebox_policy::default_policy();
    // The raw Sysmon stream has 292 events without a TargetObject: counted as unreadable lines.
    for (name, events, unreadable) in [
        ("otrf_security_datasets_registry.ops.jsonl.gz", 193_766, 0),
        ("otrf_security_datasets_registry.jsonl.gz", 193_474, 292),
    ] {
        let r = replay(&policy, name);
        assert_eq!((r.events, r.error_count), (events, unreadable), "{name}: {:?}", r.errors.first());
        if let Some((line, e)) = r.errors.first() {
            assert_eq!(e.to_string(), "Sysmon event 12 has no TargetObject", "line {line}");
        }
        assert_eq!(r.denied, 0, "the default policy only notifies");
        let hits = report(&policy, &r);
        println!("{name}: {} events, {} matched", r.events, r.matched);
        assert_eq!(r.matched, 7_850, "{name}: matched events changed");
        assert_eq!(hits.len(), 28, "{name}: rules hit changed");
    }
}

#[test]
fn the_default_policy_over_the_attack_samples() {
    let policy = hivebox_policy::default_policy();
    for name in ["hayabusa_sample_evtx_registry.ops.jsonl", "hayabusa_sample_evtx_registry.jsonl"] {
        let r = replay(&policy, name);
        assert_eq!(r.events, 389, "{name}");
        assert_eq!(r.error_count, 0, "{name}: {:?}", r.errors.first());
        let hits = report(&policy, &r);
        println!("{name}: {} events, {} matched", r.events, r.matched);
        assert_eq!(r.matched, 101, "{name}: matched events changed");
        assert!(hits.iter().any(|(id, _)| id.starts_with("self-protection")), "defence tampering is seen");
    }
}

#[test]
fn unparsable_lines_are_counted_with_their_number_and_the_replay_goes_on() {
    let policy = hivebox_policy::default_policy();
    let mut r = Replay::new(&policy);
    r.line(1, r#"{"op": "set_value", "key_native": "\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", "value_name": "x", "image": "a"}"#);
    r.line(2, "{not json");
    r.line(3, "");
    r.line(4, r#"{"op": "explode", "key_native": "x"}"#);
    r.line(5, r#"{"op": "create_key", "key_native": "\\REGISTRY\\MACHINE\\SOFTWARE\\Microsoft\\Windows\\CurrentVersion\\Run", "image": "a"}"#);
    assert_eq!((r.events, r.error_count), (2, 2));
    assert_eq!(r.errors.iter().map(|(l, _)| *l).collect::<Vec<_>>(), [2, 4]);
    assert_eq!(r.matched, 2);
}
