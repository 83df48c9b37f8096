//! The crate's kernel calls that need `unsafe`, each with a `// SAFETY:` comment.

#![allow(unsafe_code)]

pub mod bpf;
pub mod lsm;
pub mod net;
pub mod pre_exec;
pub mod process;
pub mod seccomp;
pub mod unotify;
