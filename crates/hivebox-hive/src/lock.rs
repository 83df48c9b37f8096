//! `registry.lock`: one process at a time owns a home's store.
//!
//! The lock is an advisory `flock(2)`-style exclusive lock on the file (std's `File::lock`),
//! so the kernel drops it when the holder exits, however it exits. The holder writes its pid
//! into the file so that a refused opener can say who holds it.
//!
//! The lock belongs to the open file description, which a child process shares from `fork`
//! until its `exec` closes the (close-on-exec) descriptor. So a process that spawns children
//! may see its lock outlive its `Home` for that moment, and a child that forks *without*
//! exec'ing keeps the store locked for as long as it lives.

use crate::StoreError;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// File name of the lock inside `hives/`.
pub(crate) const FILE: &str = "registry.lock";

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct LockFile {
    path: PathBuf,
    // Held for its lock only: closing the file releases it.
    _file: File,
}

impl LockFile {
    /// The lock file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the lock at `path`: waits for it if `wait`, else fails with [`StoreError::Locked`].
pub(crate) fn acquire(path: &Path, wait: bool) -> Result<LockFile, StoreError> {
    let io = |source| StoreError::Io { path: path.to_owned(), source };
    let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).map_err(io)?;
    if wait {
        file.lock().map_err(io)?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError::Locked { path: path.to_owned(), pid: holder(path) });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
    }
    // The file is freshly opened, so its cursor is at 0 and the pid replaces the old one.
    file.set_len(0).map_err(io)?;
    file.write_all(format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
    Ok(LockFile { path: path.to_owned(), _file: file })
}

/// The pid recorded in a lock file, if it holds one (the holder may not have written it yet).
fn holder(path: &Path) -> Option<u32> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}
