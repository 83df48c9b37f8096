//! The mount table `hives/mounts`: the hives loaded from files outside the store
//! ([`crate::Home::load_hive`]), which [`crate::open_home`] mounts again every time.
//!
//! One line per hive: its native mount path, a tab, the absolute path of its file. The table
//! is replaced atomically (a temporary file, fsync, rename, fsync of the directory).

use crate::StoreError;
use crate::hivefile::sync_dir;
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// The table's file name, in the store's `hives` directory.
pub(crate) const FILE: &str = "mounts";

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    /// Where the hive is mounted (`\REGISTRY\MACHINE\NAME` or `\REGISTRY\USER\NAME`).
    pub native: String,
    /// The hive's file, absolute.
    pub file: PathBuf,
    /// The line number (1-based) the entry was read from; 0 for a new entry.
    pub line: usize,
}

/// Why a mount path or file cannot be written into the table, if it cannot.
pub(crate) fn unrecordable(native: &str, file: &Path) -> Option<String> {
    let bad = |b: &u8| *b == b'\t' || *b == b'\n' || *b == b'\r';
    if native.bytes().any(|b| bad(&b)) {
        return Some(format!("the mount path {native:?} holds a tab or line break"));
    }
    if file.as_os_str().as_bytes().iter().any(bad) {
        return Some(format!("the file name {} holds a tab or line break", file.display()));
    }
    None
}

/// Reads the table in `dir`; no table is an empty one.
pub(crate) fn read(dir: &Path) -> Result<Vec<Mount>, StoreError> {
    let path = dir.join(FILE);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(StoreError::Io { path, source }),
    };
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let bad = |reason: &str| StoreError::Mount { path: path.clone(), line: Some(i + 1), reason: reason.to_owned() };
        let tab = line.iter().position(|b| *b == b'\t').ok_or_else(|| bad("no tab between mount path and file"))?;
        let native = std::str::from_utf8(&line[..tab]).map_err(|_| bad("the mount path is not UTF-8"))?;
        let file = PathBuf::from(OsString::from_vec(line[tab + 1..].to_vec()));
        if !native.starts_with('\\') || !file.is_absolute() {
            return Err(bad("expected `\\REGISTRY\\...<TAB>/absolute/file`"));
        }
        out.push(Mount { native: native.to_owned(), file, line: i + 1 });
    }
    Ok(out)
}

/// Replaces the table in `dir` with `mounts`, durably.
pub(crate) fn write(dir: &Path, mounts: &[Mount]) -> Result<(), StoreError> {
    let path = dir.join(FILE);
    let tmp = dir.join(format!("{FILE}.tmp"));
    let mut bytes = Vec::new();
    for m in mounts {
        bytes.extend_from_slice(m.native.as_bytes());
        bytes.push(b'\t');
        bytes.extend_from_slice(m.file.as_os_str().as_bytes());
        bytes.push(b'\n');
    }
    let staged = File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(source) = staged.and_then(|()| fs::rename(&tmp, &path)) {
        // Best effort: the old table is still in place.
        let _ = fs::remove_file(&tmp);
        return Err(StoreError::Io { path: tmp, source });
    }
    sync_dir(dir).map_err(|source| StoreError::Io { path: dir.to_owned(), source })
}
