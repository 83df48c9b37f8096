//! The kernel side of a box: what keeps a boxed program from reaching the host's files,
//! processes and IPC except as the box's settings allow. Linux only; all `unsafe` lives in
//! `src/sys/`.
//!
//! What is enforced is reported ([`Enforced`]), never silently weaker: a mechanism the kernel
//! refuses is an error, not a skip.

pub mod backstop;
pub mod btf;
pub mod confine;
pub mod dbus;
pub mod fs;
pub mod hostaccess;
pub mod inspect;
pub mod ipc;
pub mod launch;
pub mod net;
pub mod netdecide;
pub mod netrules;
pub mod sys;

pub use launch::{BoxSpec, BoxedChild, SandboxError, run_boxed, spawn_boxed};

/// What a sandbox actually enforces, as `hivebox box inspect` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Enforced {
    /// Mechanism name → what it does (e.g. "mount namespace" → "private, overlay root").
    pub mechanisms: Vec<(String, String)>,
}
