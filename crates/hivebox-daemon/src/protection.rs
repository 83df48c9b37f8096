//! The protection filter on a registry: the policy from `$HIVEBOX_HOME/policy.toml` (the
//! shipped default when there is none), events to `$HIVEBOX_HOME/events/`, and reloading the
//! policy while the registry runs (`REG_UPDATE_DATA`: atomic, an operation is judged by one
//! policy from its pre to its post).

use crate::events::{DEFAULT_MAX_BYTES, EventHook, EventLog, Writer};
use anyhow::{Context, Result};
use hivebox_core::protect::{CompiledPolicy, EventQueue, ProtectionFilter};
use hivebox_core::{Clock, Registry};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The policy file of a home.
pub fn policy_path(home: &Path) -> PathBuf {
    home.join("policy.toml")
}

/// Loads the home's policy: its `policy.toml`, else the default policy. A policy file with
/// errors is an error (never silently replaced by another policy).
pub fn load_policy(home: &Path) -> Result<(CompiledPolicy, String)> {
    let path = policy_path(home);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let name = path.display().to_string();
            let p =
                hivebox_policy::compile(&name, &text).map_err(|e| anyhow::anyhow!("the policy is not valid:\n{e}"))?;
            Ok((p, name))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Ok((hivebox_policy::default_policy(), "the default policy".into()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// The filter registered on a registry, and the worker writing its events.
#[derive(Debug)]
pub struct Protection {
    writer: Writer,
    log: Arc<parking_lot::Mutex<EventLog>>,
    filter: Arc<ProtectionFilter>,
    home: PathBuf,
}

impl Protection {
    /// Registers the home's policy on `registry`.
    pub fn install(home: &Path, registry: &Registry, clock: Arc<dyn Clock>, also: Option<EventHook>) -> Result<Self> {
        let (policy, _) = load_policy(home)?;
        let max =
            std::env::var("HIVEBOX_EVENTS_MAX_BYTES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_MAX_BYTES);
        let log = Arc::new(parking_lot::Mutex::new(EventLog::open(&home.join("events"), max)?));
        let queue = Arc::new(EventQueue::new(1 << 16, 8));
        let filter = ProtectionFilter::new(policy, queue.clone(), clock);
        filter.register(registry).map_err(|s| anyhow::anyhow!("the protection filter could not be registered: {s}"))?;
        Ok(Protection { writer: Writer::start(queue, log.clone(), also)?, log, filter, home: home.to_owned() })
    }

    /// The event log, for events that do not come from the filter (network decisions).
    pub fn log(&self) -> &Arc<parking_lot::Mutex<EventLog>> {
        &self.log
    }

    /// The filter.
    pub fn filter(&self) -> &Arc<ProtectionFilter> {
        &self.filter
    }

    /// Reads the policy file again and swaps it in atomically; a file with errors changes
    /// nothing. Returns a summary.
    pub fn reload(&self) -> Result<String> {
        let (policy, name) = load_policy(&self.home)?;
        let generation = self.filter.policy().generation() + 1;
        let rules = policy.spec().rules.len();
        self.filter.swap_policy(policy.with_generation(generation));
        Ok(format!("loaded {rules} rules from {name} (policy generation {generation})"))
    }

    /// Writes every queued event and stops.
    pub fn finish(self) -> Result<u64> {
        self.writer.finish()
    }
}
