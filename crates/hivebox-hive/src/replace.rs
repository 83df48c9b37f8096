//! Replacing a hive's file (`NtReplaceKey`): a new hive is staged beside the hive's file now,
//! and takes the file's place the next time the hive is opened; the hive's contents as they
//! are then (every change acknowledged until that open included) are kept in OLDFILE.
//!
//! Staging ([`crate::Home::stage_replacement`], under the store's lock), for hive file `FILE`:
//!
//! 1. `FILE.replace-old` gets OLDFILE's absolute path (written to a temporary file, fsync'd,
//!    renamed into place).
//! 2. `FILE.replace` gets the new hive, a clean regf image (temporary file, fsync, rename),
//!    then the directory is fsync'd. This rename is the commit point: without `FILE.replace`
//!    nothing is staged, and a `FILE.replace-old` alone is a leftover that the next open removes.
//!
//! Installing ([`install`], at every open of the hive, before it is recovered):
//!
//! 1. If `FILE` exists, it is recovered (its log replayed) and checkpointed if the log holds
//!    anything, so that `FILE` alone is the hive's whole contents; then it is moved to OLDFILE
//!    (a rename, or across file systems a durable copy and a removal) and both directories
//!    are fsync'd.
//! 2. `FILE.wal` is removed: it continued the old image, and the recovery that follows
//!    starts an empty log for the new one.
//! 3. `FILE.replace` is renamed over `FILE`, and the directory fsync'd.
//! 4. `FILE.replace-old` is removed.
//!
//! A crash anywhere leaves a state that the next open resumes from: before step 1's move `FILE`
//! is still there (recovering and checkpointing it again is harmless); after it, `FILE` is gone
//! and installing goes on at step 2; after step 3 only the leftover of step 4 remains.

use crate::hivefile::{self, HiveFiles, sync_dir};
use crate::lock::LockFile;
use crate::recover::{Recovery, recover_files};
use crate::{HIVES_DIR, StoreError};
use hivebox_core::{KeyImage, Tree};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `EXDEV`: a rename across file systems.
const EXDEV: i32 = 18;

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_owned(), source }
}

fn refuse(path: &Path, reason: impl Into<String>) -> StoreError {
    StoreError::Replace { path: path.to_owned(), reason: reason.into() }
}

/// The directory a file is in (`.` for a bare name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// Writes `bytes` to `path` durably: `tmp`, fsync, rename over `path`. The directory is not
/// fsync'd.
fn write_atomically(path: &Path, tmp: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let staged = File::create(tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(source) = staged.and_then(|()| fs::rename(tmp, path)) {
        // Best effort: nothing refers to the temporary file.
        let _ = fs::remove_file(tmp);
        return Err(StoreError::Io { path: path.to_owned(), source });
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::Io { path: path.to_owned(), source: e }),
        _ => Ok(()),
    }
}

/// OLDFILE as an absolute path, checked: it must not exist, its directory must, and it must
/// not be in the store's `hives` directory or be one of the hive's own files.
pub(crate) fn old_file_path(old_file: &Path, files: &HiveFiles, store_dir: &Path) -> Result<PathBuf, StoreError> {
    if fs::symlink_metadata(old_file).is_ok() {
        return Err(refuse(old_file, "the file exists already (the hive's current file is moved there)"));
    }
    let name = old_file.file_name().ok_or_else(|| refuse(old_file, "the name does not end in a file name"))?;
    let dir = parent_of(old_file);
    let abs = fs::canonicalize(dir).map_err(io_at(dir))?.join(name);
    if fs::canonicalize(store_dir).is_ok_and(|d| abs.starts_with(d)) {
        return Err(refuse(old_file, format!("the file would be in the store's own {HIVES_DIR} directory")));
    }
    let own = [&files.image, &files.tmp, &files.wal, &files.replace, &files.replace_old];
    let own_dir = fs::canonicalize(&files.dir).ok();
    if own_dir.is_some_and(|d| own.iter().any(|f| f.file_name().is_some_and(|n| d.join(n) == abs))) {
        return Err(refuse(old_file, "the file is one of the hive's own files"));
    }
    if abs.as_os_str().as_bytes().contains(&b'\n') {
        return Err(refuse(old_file, "the file name holds a line break"));
    }
    Ok(abs)
}

/// Stages `image` (read from `source`) to replace the hive in `files` at its next open, its
/// current contents then going to `old_abs` (checked by [`old_file_path`]).
pub(crate) fn stage(files: &HiveFiles, image: &KeyImage, source: &Path, old_abs: &Path) -> Result<(), StoreError> {
    if files.replace.exists() {
        return Err(refuse(&files.replace, "a replacement of this hive is staged already"));
    }
    // The staged hive must open: the store would not open otherwise.
    Tree::from_image(image).map_err(|reason| refuse(source, format!("not a valid key tree: {reason}")))?;
    let bytes = hivefile::serialize(1, image, &files.image_name()).map_err(|reason| refuse(source, reason))?;
    let tmp = |p: &Path| {
        let mut t = p.as_os_str().to_owned();
        t.push(".tmp");
        PathBuf::from(t)
    };
    write_atomically(&files.replace_old, &tmp(&files.replace_old), old_abs.as_os_str().as_bytes())?;
    write_atomically(&files.replace, &tmp(&files.replace), &bytes)?;
    sync_dir(&files.dir).map_err(io_at(&files.dir))
}

/// Where a staged replacement keeps the hive's current file.
fn read_old_path(files: &HiveFiles) -> Result<PathBuf, StoreError> {
    let path = &files.replace_old;
    let bytes = fs::read(path).map_err(io_at(path))?;
    let old = PathBuf::from(OsString::from_vec(bytes));
    if !old.is_absolute() || old.file_name().is_none() {
        return Err(StoreError::Corrupt {
            path: path.clone(),
            offset: 0,
            reason: "expected the absolute path of the file to keep the replaced hive in".into(),
        });
    }
    Ok(old)
}

/// Moves `from` to `to` durably: a rename, or across file systems a copy (through `to.tmp`)
/// and a removal.
fn move_file(from: &Path, to: &Path) -> Result<(), StoreError> {
    let to_dir = parent_of(to);
    match fs::rename(from, to) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EXDEV) => {
            let bytes = fs::read(from).map_err(io_at(from))?;
            let mut tmp = to.as_os_str().to_owned();
            tmp.push(".tmp");
            write_atomically(to, Path::new(&tmp), &bytes)?;
            sync_dir(to_dir).map_err(io_at(to_dir))?;
            fs::remove_file(from).map_err(io_at(from))?;
        }
        Err(source) => return Err(StoreError::Io { path: to.to_owned(), source }),
    }
    sync_dir(to_dir).map_err(io_at(to_dir))?;
    sync_dir(parent_of(from)).map_err(io_at(parent_of(from)))
}

/// Installs a staged replacement of the hive in `files`, if there is one (see the module
/// documentation); what recovering the old contents found is returned, with `replaced` set.
pub(crate) fn install(files: &HiveFiles, lock: &Arc<LockFile>) -> Result<Option<Recovery>, StoreError> {
    if !files.replace.exists() {
        // A leftover of a staging that did not commit, or of an installation that did.
        remove_if_present(&files.replace_old)?;
        return Ok(None);
    }
    let old = read_old_path(files)?;
    let mut report = Recovery::default();
    if files.image.exists() {
        let (tree, mut storage, found) = recover_files(files, Arc::clone(lock), KeyImage::default)?;
        if storage.logged_bytes() > 0 {
            storage.checkpoint(&tree.image())?;
        }
        drop(storage);
        report.merge(found);
        move_file(&files.image, &old).map_err(|e| {
            refuse(
                &old,
                format!(
                    "cannot keep the replaced hive {} here ({e}); make this possible, or remove {} to \
                     cancel the replacement",
                    files.image.display(),
                    files.replace.display()
                ),
            )
        })?;
    }
    remove_if_present(&files.wal)?;
    fs::rename(&files.replace, &files.image).map_err(io_at(&files.image))?;
    sync_dir(&files.dir).map_err(io_at(&files.dir))?;
    remove_if_present(&files.replace_old)?;
    report.created = false;
    report.replaced = true;
    Ok(Some(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn move_file_crosses_file_systems() {
        // /dev/shm is a tmpfs of its own on Linux: a rename from the temporary directory to
        // it fails with EXDEV, which is the path under test.
        let here = tempfile::tempdir().unwrap();
        let there = tempfile::tempdir_in("/dev/shm").expect("/dev/shm (a tmpfs) is needed for this test");
        let dev = |p: &Path| fs::metadata(p).unwrap().dev();
        assert_ne!(dev(here.path()), dev(there.path()), "the two directories must be on different file systems");
        let from = here.path().join("a.hiv");
        let to = there.path().join("b.hiv");
        fs::write(&from, b"contents").unwrap();
        move_file(&from, &to).unwrap();
        assert!(!from.exists());
        assert_eq!(fs::read(&to).unwrap(), b"contents");
        assert!(!there.path().join("b.hiv.tmp").exists());
    }
}
