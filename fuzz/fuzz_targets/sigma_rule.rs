//! The Sigma importer on arbitrary text: it must return, never panic. A converted rule is one
//! valid `[[rule]]` TOML table with the rule's id, and a policy file holding it and any
//! unsupported entry (whose reason may quote the input) is valid TOML too.

#![no_main]

use hivebox_policy::sigma::{SigmaImport, convert};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(text) = std::str::from_utf8(bytes) else { return };
    let mut import = SigmaImport::default();
    match convert("fuzz/rule.yml", text) {
        Ok(rule) => {
            let table: toml::Table = rule.toml.parse().unwrap_or_else(|e| panic!("{e}\n{}", rule.toml));
            let rules = table["rule"].as_array().expect("one [[rule]] array");
            assert_eq!(rules.len(), 1);
            assert_eq!(rules[0]["id"].as_str(), Some(rule.id.as_str()));
            assert!(rules[0]["when"].is_table());
            import.rules.push(rule);
        }
        Err(unsupported) => {
            assert!(!unsupported.reason.is_empty());
            import.unsupported.push(unsupported);
        }
    }
    let policy = import.to_toml();
    if let Err(e) = policy.parse::<toml::Table>() {
        panic!("{e}\n{policy}");
    }
});
