//! The policy parser and compiler on arbitrary text: an error names a line inside the text,
//! a valid policy compiles and judges operations without panicking.

#![no_main]

use hivebox_core::protect::RegOp;
use hivebox_core::protect::policy::{Actor, Subject};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match hivebox_policy::compile("fuzz.toml", text) {
        Ok(policy) => {
            let actor = Actor { image: "/tmp/x", ..Actor::default() };
            for op in RegOp::ALL {
                let value = op.is_value_op().then_some("Value");
                let subject = Subject {
                    op,
                    key: r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run",
                    value_name: value,
                    new_key: None,
                    details: None,
                };
                let _ = policy.judge(&subject, &actor);
            }
        }
        Err(errors) => {
            let lines = text.lines().count().max(1);
            for e in &errors.0 {
                assert!(e.line >= 1 && e.line <= lines + 1, "line {} of {lines}: {e}", e.line);
            }
        }
    }
});
