//! hivebox's durable registry store: a checksummed snapshot of the key tree plus a
//! checksummed write-ahead log of the changes since, under a home directory.
//!
//! [`open_home`] locks the home, recovers the registry (snapshot, then log replay, cutting off
//! a torn tail) and hands back a [`hivebox_core::Registry`] whose every acknowledged change is
//! fsync'd in the log before the registry applies it. Everything goes through the
//! [`hivebox_core::Storage`] seam, so the format can change without touching the core.
//! Byte layouts and the commit and recovery protocols are in `docs/store.md`.
//!
//! What this crate does *not* do (yet): read or write Windows `regf` hives, group commits of
//! concurrent writers into one fsync, or checkpoint on its own while the registry runs (it
//! checkpoints on `NtFlushKey` and at open when the log is long).
//!
//! ```no_run
//! use hivebox_hive::{SystemClock, default_home, open_home};
//! use std::sync::Arc;
//!
//! let home = open_home(&default_home(), Arc::new(SystemClock), false)?;
//! let image = home.registry.image();
//! # let _ = image;
//! # Ok::<(), hivebox_hive::StoreError>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod codec;
mod lock;
mod recover;
pub mod regf;
pub mod regfile;
mod snapshot;
mod storage;
mod wal;

pub use recover::{CHECKPOINT_AT_OPEN, Recovery};

use hivebox_core::{Clock, HiveMount, Registry, RegistryOptions};
use snapshot::HiveFiles;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The directory under a home that holds the store's files.
pub const HIVES_DIR: &str = "hives";

/// A store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A file could not be read, written or created.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A file's contents are damaged; nothing was changed, and nothing was started afresh.
    #[error("{} is corrupt at byte {offset}: {reason}", path.display())]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset in it where the damage was found.
        offset: u64,
        /// What is wrong there.
        reason: String,
    },
    /// Another open store holds the home's lock.
    #[error("{} is locked by {}", path.display(), holder(*pid))]
    Locked {
        /// The lock file.
        path: PathBuf,
        /// The holder's process id, if it has written it yet.
        pid: Option<u32>,
    },
}

fn holder(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another process".into(),
    }
}

/// An open home: its registry, and the lock that makes this process the store's only writer.
///
/// The lock is released when the `Home` and every clone of its `registry` are gone (the
/// registry's storage keeps it too, so a clone that outlives the `Home` still writes alone).
pub struct Home {
    /// The registry, persisting to this home's store.
    pub registry: Registry,
    path: PathBuf,
    recovery: Recovery,
    lock: Arc<lock::LockFile>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Home {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Home").field("path", &self.path).field("recovery", &self.recovery).finish_non_exhaustive()
    }
}

impl Home {
    /// The home directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What recovery found and did when the home was opened.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    /// The lock file.
    pub fn lock_path(&self) -> &Path {
        self.lock.path()
    }

    /// Makes sure the user `sid` has a hive mounted at `\REGISTRY\USER\<sid>` (what `HKCU`
    /// means for that user): `hives/users/<sid>.hiv`, created empty on first use, as the
    /// profile service creates a profile's hive at first logon.
    pub fn ensure_user_hive(&self, sid: &str) -> Result<(), StoreError> {
        use hivebox_core::{Caller, KeyImage, OpenOptions};
        let system = Caller::system();
        let path = format!("\\REGISTRY\\USER\\{sid}");
        if let Ok(h) = self.registry.open_key(&system, None, &path, &OpenOptions::default()) {
            let _ = self.registry.close_key(&system, h);
            return Ok(());
        }
        hivebox_core::name::check_key_name(sid).map_err(|e| StoreError::Io {
            path: PathBuf::from(sid),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()),
        })?;
        let dir = self.path.join(HIVES_DIR).join("users");
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        let files = HiveFiles::new(&dir, sid);
        let now = self.clock.now();
        let (tree, storage, _) = recover::recover(&files, Arc::clone(&self.lock), || KeyImage {
            name: sid.to_owned(),
            last_write: now,
            ..KeyImage::default()
        })?;
        let source = files.image.display().to_string();
        self.registry.load_key(&system, &path, &source, tree.image(), Box::new(storage)).map_err(|status| {
            StoreError::Io {
                path: files.image.clone(),
                source: std::io::Error::other(format!("cannot mount the user hive: {status}")),
            }
        })
    }
}

/// The base hives: file name and mount point.
const BASE_HIVES: [(&str, &str); 5] = [
    ("SYSTEM", "\\REGISTRY\\MACHINE\\SYSTEM"),
    ("SOFTWARE", "\\REGISTRY\\MACHINE\\SOFTWARE"),
    ("SAM", "\\REGISTRY\\MACHINE\\SAM"),
    ("SECURITY", "\\REGISTRY\\MACHINE\\SECURITY"),
    ("DEFAULT", "\\REGISTRY\\USER\\.DEFAULT"),
];

/// Opens the registry stored under `home`: the base hives `hives/SYSTEM.hiv`,
/// `SOFTWARE.hiv`, `SAM.hiv`, `SECURITY.hiv` and `DEFAULT.hiv` (each with its log
/// `NAME.hiv.wal`), created from [`hivebox_core::fresh::fresh_hives`] on first use.
///
/// Takes an exclusive lock on `home/hives/registry.lock` and writes this process's pid into
/// it: with `wait` it blocks until the lock is free, without it fails with
/// [`StoreError::Locked`] naming the holder. A corrupt image or log is an error naming the
/// file and byte offset; the store is never silently started afresh.
pub fn open_home(home: &Path, clock: Arc<dyn Clock>, wait: bool) -> Result<Home, StoreError> {
    let dir = home.join(HIVES_DIR);
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
    let lock = Arc::new(lock::acquire(&dir.join(lock::FILE), wait)?);
    let now = clock.now();
    let mut fresh = hivebox_core::fresh::fresh_hives(now);
    let mut mounts = Vec::new();
    let mut recovery = Recovery { created: true, ..Recovery::default() };
    for (name, mount) in BASE_HIVES {
        let files = HiveFiles::new(&dir, name);
        let image = fresh
            .iter()
            .position(|(p, _)| p == mount)
            .map(|i| fresh.swap_remove(i).1)
            .unwrap_or_else(|| hivebox_core::KeyImage { name: name.to_owned(), ..Default::default() });
        let (tree, storage, r) = recover::recover(&files, Arc::clone(&lock), || image)?;
        recovery.merge(r);
        mounts.push(HiveMount { path: mount.to_owned(), image: tree.image(), storage: Box::new(storage) });
    }
    let registry = Registry::with_hives(mounts, clock.clone(), RegistryOptions::default()).map_err(|reason| {
        StoreError::Corrupt { path: dir.clone(), offset: 0, reason: format!("the hives do not mount: {reason}") }
    })?;
    Ok(Home { registry, path: home.to_owned(), recovery, lock, clock })
}

/// The default home: `$HIVEBOX_HOME` if set, else `/var/lib/hivebox` when running as root
/// (effective uid 0), else `$HOME/.local/share/hivebox`. With no usable `$HOME` either, it
/// falls back to `/var/lib/hivebox`, where opening then fails with a clear error.
pub fn default_home() -> PathBuf {
    if let Some(home) = std::env::var_os("HIVEBOX_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home);
    }
    let system = PathBuf::from("/var/lib/hivebox");
    if effective_uid() == Some(0) {
        return system;
    }
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/hivebox"),
        None => system,
    }
}

/// The effective uid, from the `Uid:` line of `/proc/self/status` (real, effective, saved, fs).
fn effective_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_effective_uid(&status)
}

fn parse_effective_uid(status: &str) -> Option<u32> {
    let line = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A [`Clock`] reading the system time as a FILETIME (100 ns units since 1601).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        // A system clock set before 1970 reads as the Unix epoch.
        let since_unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let ticks = u64::try_from(since_unix.as_nanos() / 100).unwrap_or(u64::MAX);
        hivebox_core::UNIX_EPOCH_FILETIME.saturating_add(ticks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn effective_uid_is_the_second_field() {
        let status = "Name:\tx\nUid:\t1000\t0\t1000\t1000\nGid:\t5\t5\t5\t5\n";
        assert_eq!(parse_effective_uid(status), Some(0));
        assert_eq!(parse_effective_uid("Name:\tx\n"), None);
    }

    #[test]
    fn system_clock_is_after_2020() {
        // 2020-01-01 as a FILETIME.
        assert!(SystemClock.now() > 132_223_104_000_000_000);
    }
}
