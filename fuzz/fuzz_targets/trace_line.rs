//! A trace line, and the judgement of whatever it parses to by the default policy: never a
//! panic, whatever the line holds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static POLICY: OnceLock<hivebox_core::protect::CompiledPolicy> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else { return };
    let Ok(t) = hivebox_policy::trace::parse_line(line) else { return };
    let policy = POLICY.get_or_init(hivebox_policy::default_policy);
    let _ = policy.judge(&t.subject(), &t.actor());
});
