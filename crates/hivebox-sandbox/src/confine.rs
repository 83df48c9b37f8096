//! Process confinement: what a boxed program may do to processes and the kernel, applied in the
//! box's first process just before it `exec`s the program.
//!
//! In order: every capability dropped (bounding, ambient, effective, permitted, inheritable: the
//! program runs as uid 0 of the box but `exec` gives it nothing back), `no_new_privs`, a Landlock
//! domain scoping signals and abstract unix sockets to the box (and, since Landlock ABI 1,
//! `ptrace`, `process_vm_readv/writev`, `pidfd_getfd` and `/proc/<pid>/mem` to the box), and the
//! seccomp deny list of [`crate::sys::seccomp`].
//!
//! The work is split so that nothing allocates after `fork`: [`prepare`] builds the BPF programs
//! and the Landlock ruleset (its file descriptor) in the parent, and [`Prepared::apply`] only
//! makes system calls. [`confine`] does both, for a caller that is already single-threaded.
//!
//! Not covered here: the PID, mount, IPC and network namespaces (the launcher), filesystem and
//! network Landlock rules, and protecting boxed processes from the host.

use std::fmt;

use landlock::{
    CompatLevel, Compatible, RestrictionStatus, Ruleset, RulesetAttr, RulesetCreated, RulesetStatus, Scope,
};
use rustix::thread::{self as rthread, CapabilitySet, CapabilitySets};

use crate::Enforced;
use crate::sys::seccomp::{self, DENY_LIST, Filters};

/// What the confinement allows beyond its defaults. `Default` is the strictest.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfineOptions {
    /// Leave out Landlock's signal scope: boxed processes may signal host processes their uid
    /// and capabilities allow (in a PID namespace they can still name only what they see).
    pub allow_host_signals: bool,
    /// Let processes debug each other inside the box: `ptrace`, `process_vm_readv/writev` and
    /// `kcmp` leave the deny list. Landlock still refuses them toward processes outside the box.
    pub allow_debugging_in_box: bool,
}

/// Why confinement could not be prepared or applied.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfineError {
    /// The seccomp table has no numbers for this architecture.
    #[error("unsupported architecture {arch}: the seccomp deny list covers x86_64 and aarch64")]
    UnsupportedArch {
        /// `std::env::consts::ARCH`.
        arch: &'static str,
    },
    /// The kernel cannot enforce the Landlock scopes (it needs Landlock ABI 6, Linux 6.12).
    #[error("landlock scopes {scopes} cannot be fully enforced")]
    Landlock {
        /// The scopes asked for.
        scopes: &'static str,
        /// What the landlock crate reported.
        #[source]
        source: landlock::RulesetError,
    },
    /// The seccomp filters did not compile.
    #[error("compiling the seccomp deny list")]
    Seccomp(#[source] seccompiler::Error),
    /// `/proc/sys/kernel/cap_last_cap` could not be read.
    #[error("reading /proc/sys/kernel/cap_last_cap")]
    CapLastCap(#[source] std::io::Error),
    /// A step of [`Prepared::apply`] failed.
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// The step of [`Prepared::apply`] that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Step {
    /// `PR_CAPBSET_DROP` of one capability.
    BoundingSet,
    /// `PR_CAP_AMBIENT_CLEAR_ALL`.
    AmbientSet,
    /// `capset` to empty sets.
    Capset,
    /// `PR_SET_NO_NEW_PRIVS`.
    NoNewPrivs,
    /// `landlock_restrict_self`, or a ruleset the kernel enforced only partly.
    Landlock,
    /// `seccomp(SECCOMP_SET_MODE_FILTER)`.
    Seccomp,
}

/// A failed step of [`Prepared::apply`]: small and `Copy`, so that reporting it after `fork`
/// allocates nothing. Through `pre_exec` only the errno reaches the parent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("confinement step {step:?} failed with errno {errno}")]
pub struct ApplyError {
    /// What failed.
    pub step: Step,
    /// The errno of the failed call.
    pub errno: i32,
}

impl From<ApplyError> for std::io::Error {
    fn from(e: ApplyError) -> Self {
        std::io::Error::from_raw_os_error(e.errno)
    }
}

/// Confinement built before `fork`, to apply in the child.
pub struct Prepared {
    ruleset: RulesetCreated,
    filters: Filters,
    last_cap: u32,
    enforced: Enforced,
}

impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("last_cap", &self.last_cap)
            .field("enforced", &self.enforced)
            .finish_non_exhaustive()
    }
}

/// Builds everything [`Prepared::apply`] needs. Fails (never weakens) when the architecture has
/// no seccomp table or the kernel cannot enforce the Landlock scopes asked for.
pub fn prepare(opts: &ConfineOptions) -> Result<Prepared, ConfineError> {
    let arch = seccomp::target_arch().ok_or(ConfineError::UnsupportedArch { arch: std::env::consts::ARCH })?;
    let (scopes, names) = if opts.allow_host_signals {
        (Scope::AbstractUnixSocket.into(), "abstract unix sockets")
    } else {
        (Scope::AbstractUnixSocket | Scope::Signal, "abstract unix sockets, signals")
    };
    let landlock = |source| ConfineError::Landlock { scopes: names, source };
    let ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .scope(scopes)
        .map_err(landlock)?
        .create()
        .map_err(landlock)?;
    let filters = seccomp::compile(arch, opts.allow_debugging_in_box).map_err(ConfineError::Seccomp)?;
    let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .map_err(ConfineError::CapLastCap)?
        .trim()
        .parse::<u32>()
        .map_err(|e| ConfineError::CapLastCap(std::io::Error::new(std::io::ErrorKind::InvalidData, e)))?;
    let enforced = describe(opts, names);
    Ok(Prepared { ruleset, filters, last_cap: last_cap.min(63), enforced })
}

fn describe(opts: &ConfineOptions, scopes: &str) -> Enforced {
    let mut m = vec![
        (
            "capabilities".to_owned(),
            "all dropped: bounding, ambient, effective, permitted and inheritable sets empty \
             (uid 0 in the box gains nothing at exec)"
                .to_owned(),
        ),
        ("no_new_privs".to_owned(), "set: setuid bits and file capabilities are ignored".to_owned()),
        (
            "landlock".to_owned(),
            format!(
                "domain scoping {scopes} to the box; ptrace, process_vm_readv/writev, pidfd_getfd \
                 and /proc/<pid>/mem only within the box"
            ),
        ),
    ];
    let denied: Vec<&str> =
        DENY_LIST.iter().filter(|row| !(opts.allow_debugging_in_box && row.debugging)).map(|row| row.name()).collect();
    m.push((
        "seccomp".to_owned(),
        format!(
            "EPERM for {} (clone only with namespace flags, ioctl only TIOCSTI/TIOCLINUX); \
             clone3 ENOSYS; other architectures' calls kill the process",
            denied.join(", ")
        ),
    ));
    Enforced { mechanisms: m }
}

fn fail(step: Step) -> impl Fn(rustix::io::Errno) -> ApplyError {
    move |e| ApplyError { step, errno: e.raw_os_error() }
}

impl Prepared {
    /// What [`apply`](Self::apply) enforces.
    pub fn enforced(&self) -> &Enforced {
        &self.enforced
    }

    /// Applies the confinement to the calling thread, which must be the only thread of its
    /// process (a child between `fork` and `exec`). Makes system calls only: no allocation, no
    /// locks. Stops at the first failure.
    pub fn apply(&self) -> Result<(), ApplyError> {
        // Capabilities: the bounding set first (dropping it needs CAP_SETPCAP, which capset
        // removes), then ambient, then the thread's own sets. With an empty bounding and
        // inheritable set, exec by uid 0 grants nothing.
        for cap in 0..=self.last_cap {
            let set = CapabilitySet::from_bits_retain(1 << cap);
            match rthread::capability_is_in_bounding_set(set) {
                Ok(false) => continue,
                // A capability this kernel does not know: nothing to drop.
                Err(rustix::io::Errno::INVAL) => continue,
                Ok(true) | Err(_) => {}
            }
            rthread::remove_capability_from_bounding_set(set).map_err(fail(Step::BoundingSet))?;
        }
        rthread::clear_ambient_capability_set().map_err(fail(Step::AmbientSet))?;
        let none = CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        };
        rthread::set_capabilities(None, none).map_err(fail(Step::Capset))?;

        rthread::set_no_new_privs(true).map_err(fail(Step::NoNewPrivs))?;

        // The ruleset's fd is duplicated (F_DUPFD_CLOEXEC, no allocation) because restricting
        // consumes the ruleset and `apply` may run once per spawned child.
        let landlock_err = |errno| ApplyError { step: Step::Landlock, errno };
        let ruleset = self.ruleset.try_clone().map_err(|e| landlock_err(e.raw_os_error().unwrap_or(libc::EBADF)))?;
        match ruleset.restrict_self() {
            Ok(RestrictionStatus { ruleset: RulesetStatus::FullyEnforced, .. }) => {}
            // Never silently weaker: a partly enforced domain is a failure.
            Ok(_) => return Err(landlock_err(libc::EOPNOTSUPP)),
            Err(e) => return Err(landlock_err(landlock_errno(&e))),
        }

        self.filters.install().map_err(|errno| ApplyError { step: Step::Seccomp, errno })
    }
}

fn landlock_errno(e: &landlock::RulesetError) -> i32 {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if let Some(errno) = err.downcast_ref::<std::io::Error>().and_then(|io| io.raw_os_error()) {
            return errno;
        }
        source = err.source();
    }
    libc::EPERM
}

/// Prepares and applies in one go, for a caller that is single-threaded (so allocating is
/// safe). Returns what is enforced.
pub fn confine(opts: &ConfineOptions) -> Result<Enforced, ConfineError> {
    let prepared = prepare(opts)?;
    prepared.apply()?;
    Ok(prepared.enforced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepare_reports_every_mechanism() {
        let prepared = prepare(&ConfineOptions::default()).expect("landlock scopes and seccomp");
        let names: Vec<_> = prepared.enforced().mechanisms.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["capabilities", "no_new_privs", "landlock", "seccomp"]);
        let landlock = &prepared.enforced().mechanisms[2].1;
        assert!(landlock.contains("signals"), "{landlock}");
        let seccomp = &prepared.enforced().mechanisms[3].1;
        assert!(seccomp.contains("io_uring_setup") && seccomp.contains("ptrace"), "{seccomp}");
    }

    #[test]
    fn options_change_the_report() {
        let opts = ConfineOptions { allow_host_signals: true, allow_debugging_in_box: true };
        let prepared = prepare(&opts).unwrap();
        assert!(!prepared.enforced().mechanisms[2].1.contains("signals"));
        let seccomp = &prepared.enforced().mechanisms[3].1;
        assert!(!seccomp.contains("ptrace") && seccomp.contains("bpf"), "{seccomp}");
    }
}
