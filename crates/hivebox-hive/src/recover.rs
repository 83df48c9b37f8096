//! Opening a store: load the image, replay the log, cut a torn tail, checkpoint a long log.
//!
//! The image and the log carry a generation. While they are equal the log continues the
//! image and is replayed onto it. A checkpoint writes image g+1 before it resets the log
//! to g+1, so a crash in between leaves a log of generation g beside a image of g+1: that
//! log is stale (the image already holds all of it) and is reset, not replayed. Any other
//! pairing means the files were tampered with or mixed up, and is reported as corruption.

use crate::hivefile::HiveFiles;
use crate::lock::LockFile;
use crate::storage::{FileStorage, IoFailure};
use crate::wal::Header;
use crate::{StoreError, hivefile, wal};
use hivebox_core::{KeyImage, Tree};
use std::fs::{self, OpenOptions};
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

/// Recovery checkpoints at open when the log holds more than this many bytes of records.
pub const CHECKPOINT_AT_OPEN: u64 = 1 << 20;

/// What recovery found and did when a store was opened.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct Recovery {
    /// The store did not exist and was created with a fresh registry.
    pub created: bool,
    /// Log records replayed onto the image.
    pub replayed: usize,
    /// A torn tail cut off the log: its offset and what was wrong with it.
    pub torn_tail: Option<(u64, String)>,
    /// A stale log (left by a crash during a checkpoint) was discarded.
    pub stale_log: bool,
    /// The log was long, so a new image was written and the log emptied.
    pub checkpointed: bool,
    /// A replacement staged by `NtReplaceKey` took a hive file's place (the old contents were
    /// moved to the file it named).
    pub replaced: bool,
}

impl Recovery {
    /// Adds what recovering one more hive found: `created` only if every hive was created.
    pub(crate) fn merge(&mut self, other: Recovery) {
        self.created &= other.created;
        self.replayed += other.replayed;
        if self.torn_tail.is_none() {
            self.torn_tail = other.torn_tail;
        }
        self.stale_log |= other.stale_log;
        self.checkpointed |= other.checkpointed;
        self.replaced |= other.replaced;
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

impl From<IoFailure> for StoreError {
    fn from(f: IoFailure) -> Self {
        StoreError::Io { path: f.path, source: f.source }
    }
}

/// Recovers one hive from its files (in a directory already locked by `lock`), first
/// installing a replacement staged for it (`crate::replace`); a hive with no files yet is
/// created from `fresh()`.
pub(crate) fn recover(
    files: &HiveFiles,
    lock: Arc<LockFile>,
    fresh: impl FnOnce() -> KeyImage,
) -> Result<(Tree, FileStorage, Recovery), StoreError> {
    let installed = crate::replace::install(files, &lock)?;
    let (tree, storage, mut report) = recover_files(files, lock, fresh)?;
    if let Some(before) = installed {
        report.merge(before);
    }
    Ok((tree, storage, report))
}

/// [`recover`] without looking for a staged replacement.
pub(crate) fn recover_files(
    files: &HiveFiles,
    lock: Arc<LockFile>,
    fresh: impl FnOnce() -> KeyImage,
) -> Result<(Tree, FileStorage, Recovery), StoreError> {
    let dir = files.dir.as_path();
    let mut report = Recovery::default();
    let tmp = files.tmp.clone();
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(source) => return Err(StoreError::Io { path: tmp, source }),
    }
    let wal_path = files.wal.clone();
    let mut wal_file =
        OpenOptions::new().read(true).append(true).create(true).open(&wal_path).map_err(io_err(&wal_path))?;
    let mut bytes = Vec::new();
    wal_file.read_to_end(&mut bytes).map_err(io_err(&wal_path))?;

    let snap_path = files.image.clone();
    let snap = match hivefile::load(files)? {
        Some(snap) => snap,
        None => {
            if bytes.len() > wal::HEADER_LEN {
                return Err(StoreError::Corrupt {
                    path: wal_path,
                    offset: wal::HEADER_LEN as u64,
                    reason: format!("the log holds records but there is no {} to replay them onto", files.image_name()),
                });
            }
            let image = fresh();
            hivefile::write(files, 1, &image).map_err(|e| StoreError::Io { path: e.path, source: e.source })?;
            report.created = true;
            // Whatever header the empty log had, it now starts over with the new image.
            bytes.clear();
            hivefile::HiveImage { generation: 1, image }
        }
    };
    let mut tree = Tree::from_image_owned(snap.image).map_err(|reason| StoreError::Corrupt {
        path: snap_path.clone(),
        offset: 0,
        reason: format!("the image is not a valid key tree: {reason}"),
    })?;

    let mut storage = FileStorage::new(files, wal_file, bytes.len() as u64, snap.generation, lock);
    let header = wal::parse_header(&bytes).map_err(|(offset, reason)| StoreError::Corrupt {
        path: wal_path.clone(),
        offset,
        reason,
    })?;
    match header {
        Header::Valid(g) if g == snap.generation => {
            let replayed = wal::replay(&bytes, |m| tree.replay(m)).map_err(|c| StoreError::Corrupt {
                path: wal_path.clone(),
                offset: c.offset,
                reason: c.reason,
            })?;
            report.replayed = replayed.records;
            if replayed.torn.is_some() {
                storage.truncate(replayed.end)?;
            }
            report.torn_tail = replayed.torn;
        }
        Header::Valid(g) if g.checked_add(1) == Some(snap.generation) => {
            report.stale_log = true;
            storage.reset_log().map_err(io_err(&wal_path))?;
        }
        Header::Valid(g) => {
            return Err(StoreError::Corrupt {
                path: wal_path,
                offset: wal::OFF_GENERATION as u64,
                reason: format!(
                    "log generation {g} does not continue {} generation {}",
                    snap_path.display(),
                    snap.generation
                ),
            });
        }
        Header::Torn => storage.reset_log().map_err(io_err(&wal_path))?,
    }
    // A log or image created just now must have a durable directory entry before
    // anything written to it is acknowledged.
    hivefile::sync_dir(dir).map_err(io_err(dir))?;
    if storage.logged_bytes() > CHECKPOINT_AT_OPEN {
        storage.checkpoint(&tree.image())?;
        report.checkpointed = true;
    }
    Ok((tree, storage, report))
}
