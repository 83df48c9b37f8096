//! hivebox's protection policy: the policy file (TOML), its compiler into the core's
//! monitored-keys tree, and the import of Sigma registry rules.
//!
//! This crate does no I/O except reading a Sigma rule directory ([`sigma::import_dir`]):
//! callers hand in text and get compiled policies or errors with line numbers back.
//!
//! ```
//! let policy = hivebox_policy::compile("policy.toml", r#"
//! [[rule]]
//! id = "run-keys"
//! key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'
//! deny = ["set-value"]
//! "#).unwrap();
//! assert_eq!(policy.spec().rules.len(), 1);
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod file;
pub mod replay;
pub mod sigma;
pub mod trace;

pub use file::{PolicyError, PolicyErrors, parse};
use hivebox_core::protect::CompiledPolicy;

/// The policy hivebox ships: the registry locations attackers use to persist or to switch off
/// defences, in `notify` mode, and hardening of hivebox's own keys.
pub const DEFAULT_POLICY: &str = include_str!("default-policy.toml");

/// Parses, checks and compiles a policy file.
pub fn compile(file: &str, text: &str) -> Result<CompiledPolicy, PolicyErrors> {
    Ok(CompiledPolicy::compile(parse(file, text)?))
}

/// The default policy, compiled.
pub fn default_policy() -> CompiledPolicy {
    // Invariant: the shipped policy is checked by the tests.
    compile("<default policy>", DEFAULT_POLICY).expect("the default policy is valid")
}
