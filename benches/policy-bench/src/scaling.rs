//! Section 3: synthetic policies of 1,000, 10,000 and 100,000 rules, parsed, compiled and
//! matched against the OTRF operations.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::{Result, anyhow};
use hivebox_core::protect::CompiledPolicy;
use hivebox_policy::trace::TraceOp;

use crate::{Args, keep_best, match_ops, ms, per_second, thousands, timed, verdict};

const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

/// The target: 100,000 rules parse and compile in under a second.
const TARGET_RULES: usize = 100_000;
const TARGET_COMPILE: Duration = Duration::from_secs(1);

/// A parse+compile slower than this is not repeated, whatever `--reps` says.
const RUN_ONCE_OVER: Duration = Duration::from_secs(10);

/// A policy file of `n` rules shaped like real ones. Rule `i` belongs to vendor `i / 10`, and
/// its shape is `i % 10`:
///
/// 0. a product's settings under any version (`*`), three value names;
/// 1. everything under a vendor's key (`**`), key operations;
/// 2. every user's (`HKU\*`) product settings, `deny` set-value;
/// 3. two alternative keys, values whose data (`Details`) names a script or a temp path;
/// 4. a service's `Start`/`ImagePath`, `deny` unless written by the vendor's updater (`Image`);
/// 5. `Policies` keys anywhere below a product (`**` in the middle);
/// 6. a per-user file-type handler (`HKU\*\...\Classes\Vendor7.Document\shell\open\command`);
/// 7. the vendor's own value under the machine's `Run` key (a hot key shared by many rules);
/// 8. a glob component (`Product8*`), set-value by images of the vendor's directory;
/// 9. key and value operations by one image with `DWORD` data (`all` of two conditions).
fn policy_text(n: usize) -> String {
    let mut out = String::with_capacity(n * 200);
    for i in 0..n {
        let (v, shape) = (i / 10, i % 10);
        let _ = writeln!(out, "[[rule]]\nid = \"synthetic-{i}\"");
        let rule = match shape {
            0 => format!(
                "key = 'HKLM\\Software\\Vendor{v}\\Product{shape}\\*\\Settings'\n\
                 values = ['Enabled', 'InstallPath', 'Update*']\nnotify = [\"set-value\", \"delete-value\"]"
            ),
            1 => format!(
                "key = 'HKLM\\Software\\Vendor{v}\\**'\nnotify = [\"create-key\", \"delete-key\", \"rename-key\"]"
            ),
            2 => format!(
                "key = 'HKU\\*\\Software\\Vendor{v}\\Product{shape}\\Settings'\nvalues = ['*']\n\
                 deny = [\"set-value\"]\nnotify = [\"delete-value\"]"
            ),
            3 => format!(
                "keys = ['HKLM\\Software\\Vendor{v}\\Run', 'HKLM\\Software\\WOW6432Node\\Vendor{v}\\Run']\n\
                 values = ['*']\nnotify = [\"set-value\"]\n\
                 when = {{ field = \"Details\", contains = ['.ps1', '\\AppData\\Local\\Temp'] }}"
            ),
            4 => format!(
                "key = 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\Vendor{v}Svc'\nvalues = ['Start', 'ImagePath']\n\
                 deny = [\"set-value\", \"delete-value\"]\n\
                 when = {{ not = {{ field = \"Image\", endswith = '\\Vendor{v}\\updater.exe' }} }}"
            ),
            5 => format!(
                "key = 'HKLM\\Software\\Vendor{v}\\Product{shape}\\**\\Policies'\nvalues = ['Disable*']\n\
                 notify = [\"set-value\"]"
            ),
            6 => format!(
                "key = 'HKU\\*\\Software\\Classes\\CLSID\\{{{v:08X}-5A1E-4C3B-9D2F-00000000B99A}}\\InprocServer32'\n\
                 values = ['(Default)']\nnotify = [\"set-value\"]"
            ),
            7 => format!(
                "key = 'HKLM\\Software\\Microsoft\\Windows\\CurrentVersion\\Run'\nvalues = ['Vendor{v}Agent']\n\
                 notify = [\"set-value\", \"delete-value\"]"
            ),
            8 => format!(
                "key = 'HKLM\\Software\\Vendor{v}\\Product{shape}*\\Settings'\nnotify = [\"set-value\"]\n\
                 when = {{ field = \"Image\", startswith = 'C:\\Program Files\\Vendor{v}' }}"
            ),
            _ => format!(
                "key = 'HKLM\\Software\\Vendor{v}\\Product{shape}\\Settings'\n\
                 notify = [\"create-key\", \"set-value\"]\n\
                 when = {{ all = [{{ field = \"Image\", endswith = '\\app{v}.exe' }}, \
                 {{ field = \"Details\", startswith = 'DWORD' }}] }}"
            ),
        };
        out.push_str(&rule);
        out.push_str("\n\n");
    }
    out
}

/// One policy size's figures.
#[derive(Debug)]
struct Size {
    rules: usize,
    text_bytes: usize,
    parse: Duration,
    compile: Duration,
    total: Duration,
    tree_nodes: usize,
    matching: Duration,
    matches: usize,
    /// Parse+compile ran once (it took over [`RUN_ONCE_OVER`]).
    once: bool,
}

fn measure(args: &Args, rules: usize, ops: &[TraceOp]) -> Result<Size> {
    let text = policy_text(rules);
    let mut size = Size {
        rules,
        text_bytes: text.len(),
        parse: Duration::MAX,
        compile: Duration::MAX,
        total: Duration::MAX,
        tree_nodes: 0,
        matching: Duration::MAX,
        matches: 0,
        once: false,
    };
    let mut policy = None;
    for _ in 0..args.reps {
        // The previous repetition's policy is dropped outside the timed region.
        drop(policy.take());
        let (spec, parse) = timed(|| hivebox_policy::parse("synthetic", &text));
        let spec = spec.map_err(|e| anyhow!("the synthetic policy of {rules} rules: {e}"))?;
        let (compiled, compile) = timed(|| CompiledPolicy::compile(spec));
        keep_best(&mut size.parse, parse);
        keep_best(&mut size.compile, compile);
        keep_best(&mut size.total, parse + compile);
        policy = Some(compiled);
        if parse + compile > RUN_ONCE_OVER {
            size.once = args.reps > 1;
            break;
        }
    }
    let policy = policy.ok_or_else(|| anyhow!("no repetition ran"))?;
    if policy.spec().rules.len() != rules {
        return Err(anyhow!("the synthetic policy has {} rules, not {rules}", policy.spec().rules.len()));
    }
    size.tree_nodes = policy.tree_nodes();
    for _ in 0..args.reps {
        let (matches, d) = timed(|| match_ops(&policy, ops));
        keep_best(&mut size.matching, d);
        size.matches = matches;
    }
    Ok(size)
}

/// Section 3: every size, then the table.
pub(crate) fn run(args: &Args, ops: &[TraceOp]) -> Result<()> {
    let sizes = SIZES.iter().map(|&n| measure(args, n, ops)).collect::<Result<Vec<_>>>()?;
    let base = per_second(ops.len(), sizes[0].matching);
    println!(
        "  {:>8} {:>9} {:>10} {:>10} {:>14}  {:>11} {:>15} {:>9} {:>8}",
        "rules", "TOML", "parse", "compile", "parse+compile", "tree nodes", "match events/s", "vs 1,000", "matches"
    );
    for s in &sizes {
        let rate = per_second(ops.len(), s.matching);
        println!(
            "  {:>8} {:>6.1} MB {:>10} {:>10} {:>14}{} {:>11} {:>15} {:>8.2}x {:>8}",
            thousands(s.rules as u64),
            s.text_bytes as f64 / 1e6,
            ms(s.parse),
            ms(s.compile),
            ms(s.total),
            if s.once { "*" } else { " " },
            thousands(s.tree_nodes as u64),
            thousands(rate as u64),
            rate / base,
            thousands(s.matches as u64)
        );
    }
    if sizes.iter().any(|s| s.once) {
        println!("  * one run: parse+compile took over {} s, so it was not repeated", RUN_ONCE_OVER.as_secs());
    }
    if let Some(s) = sizes.iter().find(|s| s.rules == TARGET_RULES) {
        println!(
            "compile: {} rules parse+compile in {} (target < 1 s: {}; parse {}, compile {})",
            thousands(s.rules as u64),
            ms(s.total),
            verdict(s.total < TARGET_COMPILE),
            ms(s.parse),
            ms(s.compile)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_shape_parses() {
        let text = super::policy_text(20);
        let spec = hivebox_policy::parse("synthetic", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(spec.rules.len(), 20);
    }
}
