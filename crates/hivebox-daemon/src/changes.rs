//! What a box changed, and taking it to the host: `hivebox box diff`, `box export`,
//! `box commit` (and the recovery of a commit a crash interrupted).
//!
//! A box's changes are read from its private hive (mounted at
//! [`box_mount`](hivebox_core::isolate::box_mount)`(name)`, format in `docs/boxes.md`) walked
//! beside the base registry, under the registry's lock (one consistent picture of both, no
//! handles): every private key is compared with the base key it stands for.
//!
//! - [`changes`]: the structured list, in path order: keys added, deleted and renamed, values
//!   added, modified and deleted (old and new type and data). A private key that only carries
//!   the path to a changed key down (copied up) gives nothing. A rename is one change (the old
//!   key is not also listed as deleted, nor the new one's content as added); what changed in
//!   the key after the rename is listed under its new path, against the old key's content.
//! - [`diff_text`], [`diff_json`]: that list as a tree for people, and as JSON.
//! - [`export_reg`]: a `.reg` file that makes the host what the box sees: `[-KEY]` for a deleted
//!   key, `"v"=-` for a deleted value, the full content of added keys, and a renamed key (or
//!   one deleted and created again) as the old key deleted and the new one written whole.
//! - [`commit`]: the same operations applied to the host registry in one registry transaction
//!   as the caller (so the protection filter judges them as any host change), the box's
//!   entries cleared in the same transaction. Conflicts (the base key changed since the box
//!   first changed it, `hivebox:base-time`) are reported per key and stop the commit unless
//!   forced. A journal written before anything is applied makes a crash leave all applied or
//!   none: [`recover_commits`] finishes any commit it finds at daemon start.
//!
//! The operations derived from the private hive are "final state" operations (this key must
//! not exist, must be exactly this, must have these values and not those), so applying them
//! twice is applying them once: the recovery re-applies a journal without knowing how far the
//! interrupted commit got.

mod commit;
mod journal;
mod render;
mod walk;

pub use commit::{CrashAt, commit_until};

use hivebox_core::{Caller, NtStatus, Registry, Value};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

/// A box command that failed: the NTSTATUS it amounts to and what to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeError {
    /// The status (`STATUS_TRANSACTIONAL_CONFLICT` for conflicts, the registry's refusal when
    /// the host refused a change, ...).
    pub status: NtStatus,
    /// The explanation, naming the keys concerned.
    pub message: String,
}

impl ChangeError {
    pub(crate) fn new(status: NtStatus, message: impl Into<String>) -> Self {
        Self { status, message: message.into() }
    }
}

impl fmt::Display for ChangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ChangeError {}

/// What kind of change a [`Change`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChangeKind {
    /// The key exists in the box and not on the host (created, or made by renaming a key
    /// the host does not have).
    KeyAdded,
    /// The box deleted a host key (and its subtree).
    KeyDeleted,
    /// The box renamed a host key: [`Change::from`] is the old path, [`Change::key`] the new.
    KeyRenamed,
    /// A value the key does not have on the host.
    ValueAdded,
    /// A value whose type or data differs from the host's.
    ValueModified,
    /// The box deleted a host value.
    ValueDeleted,
}

impl ChangeKind {
    /// The name used in the JSON form: `key-added`, `value-modified`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::KeyAdded => "key-added",
            ChangeKind::KeyDeleted => "key-deleted",
            ChangeKind::KeyRenamed => "key-renamed",
            ChangeKind::ValueAdded => "value-added",
            ChangeKind::ValueModified => "value-modified",
            ChangeKind::ValueDeleted => "value-deleted",
        }
    }

    /// The mark the text form shows: `+` added, `-` deleted, `~` modified, `>` renamed.
    pub fn mark(self) -> char {
        match self {
            ChangeKind::KeyAdded | ChangeKind::ValueAdded => '+',
            ChangeKind::KeyDeleted | ChangeKind::ValueDeleted => '-',
            ChangeKind::ValueModified => '~',
            ChangeKind::KeyRenamed => '>',
        }
    }

    /// A key change (as opposed to a value change).
    pub fn is_key(self) -> bool {
        matches!(self, ChangeKind::KeyAdded | ChangeKind::KeyDeleted | ChangeKind::KeyRenamed)
    }
}

/// One change a box made, relative to the host registry as it is now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// What changed.
    pub kind: ChangeKind,
    /// The key, in the user's form (`HKEY_LOCAL_MACHINE\...`, `HKEY_USERS\...`); for a
    /// rename, the new path. (Shared by the changes of one key.)
    pub key: Arc<str>,
    /// The same key's native path (`\REGISTRY\MACHINE\...`).
    pub native: Arc<str>,
    /// A rename's old path, in the user's form.
    pub from: Option<String>,
    /// A rename's old native path.
    pub from_native: Option<String>,
    /// The value's name, for value changes (`""` is the default value).
    pub value: Option<String>,
    /// The host's value (modified, deleted).
    pub old: Option<Value>,
    /// The box's value (added, modified).
    pub new: Option<Value>,
}

/// Box `name`'s changes, in path order (a key's own change, then its values' by name, then
/// its subkeys').
pub fn changes(reg: &Registry, name: &str) -> Result<Vec<Change>, ChangeError> {
    Ok(walk::read(reg, name, walk::Want::CHANGES)?.changes)
}

/// `hivebox box diff NAME`: the changes as an indented tree.
pub fn diff_text(reg: &Registry, name: &str) -> Result<String, ChangeError> {
    Ok(render::text(name, &changes(reg, name)?))
}

/// `hivebox box diff NAME --json`: the changes as a JSON array of change objects.
pub fn diff_json(reg: &Registry, name: &str) -> Result<String, ChangeError> {
    Ok(render::json(&changes(reg, name)?))
}

/// `hivebox box export NAME --reg FILE`: a `.reg` file (version 5 text, CRLF line ends; the
/// caller encodes it, UTF-16LE with a byte-order mark as `regedit` writes them) that makes
/// the host registry what the box sees.
pub fn export_reg(reg: &Registry, name: &str) -> Result<String, ChangeError> {
    let walk = walk::read(reg, name, walk::Want::UNITS)?;
    render::reg_file(&walk.units)
}

/// `hivebox box commit NAME [--key PATH] [--force]`: applies the box's changes (all, or those
/// at or below `key`, a path in the user's form; `HKCU` is the caller's) to the host in one
/// transaction performed as `caller`, then clears them from the box. Conflicting keys stop
/// it unless `force`. `boxes_dir` holds the box directories (`<boxes_dir>/<name>/`), where
/// the commit's journal is kept while it runs. Returns the report for the user.
pub fn commit(
    reg: &Registry,
    caller: &Caller,
    boxes_dir: &Path,
    name: &str,
    key: Option<&str>,
    force: bool,
) -> Result<String, ChangeError> {
    commit::commit_until(reg, caller, boxes_dir, name, key, force, CrashAt::Never)
}

/// Reads a commit journal's bytes as recovery would, and checks that what it read writes back
/// to a journal that reads the same (the `commit_journal` fuzz target's entry point).
#[doc(hidden)]
pub fn check_journal(bytes: &[u8]) -> Result<(), String> {
    let j = journal::decode(bytes)?;
    let again = journal::encode(&j);
    let k = journal::decode(&again).map_err(|e| format!("a decoded journal does not read back: {e}"))?;
    if journal::encode(&k) != again {
        return Err("a decoded journal does not write back the same".into());
    }
    Ok(())
}

/// Finishes every commit a crash interrupted (run when the daemon starts, after the box hives
/// are mounted and the protection filter is registered): each `<boxes_dir>/*/commit.journal`
/// is applied again (what is already so is left alone), the box's committed entries cleared,
/// and the journal removed. A damaged journal (its checksum fails) was never acted on: it is
/// set aside as `commit.journal.damaged` and reported. Errors are collected, one line per box,
/// after every journal has been tried.
pub fn recover_commits(reg: &Registry, boxes_dir: &Path) -> Result<(), ChangeError> {
    commit::recover(reg, boxes_dir)
}

/// The user's form of a native path: `\REGISTRY\MACHINE\X` is `HKEY_LOCAL_MACHINE\X`,
/// `\REGISTRY\USER\X` is `HKEY_USERS\X`.
pub fn user_path(native: &str) -> String {
    let comps: Vec<&str> = native.split('\\').filter(|c| !c.is_empty()).skip(1).collect();
    walk::user_path_of(&comps)
}
