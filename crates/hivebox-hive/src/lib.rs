//! hivebox's durable registry store and Windows registry file formats.
//!
//! - [`regf`]: Windows hives: a validating reader (with `.LOG1`/`.LOG2` replay for dirty hives)
//!   and a compact writer whose hives hivex, regipy and Windows tools open.
//! - [`regfile`]: regedit's `.reg` files, parser and writer.
//! - The store: [`open_home`] locks a home directory and mounts its hives (`hives/NAME.hiv`,
//!   each a regf image plus a write-ahead log `NAME.hiv.wal` of the changes since), replaying
//!   each log and cutting off a torn tail. Every acknowledged change is fsync'd in its hive's
//!   log before the registry applies it; `NtFlushKey` checkpoints (rewrites the hive, empties
//!   the log). [`Home::stage_replacement`] stages the replacement of a hive's file
//!   (`NtReplaceKey`), installed the next time the hive is opened. Layouts and protocols are
//!   in `docs/store.md` and `docs/regf.md`.
//! - Box hives: [`Home::mount_box`] mounts a box's private hive (`boxes/<name>/registry.hiv`,
//!   with its log) at `\REGISTRY\A\<name>`, recovered and durable like the base hives.
//!
//! What this crate does *not* do (yet): write Windows' own `.LOG1`/`.LOG2` logs, commit the
//! changes of concurrent writers with one fsync, transactions, or checkpoint on its own while
//! the registry runs.
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
mod hivefile;
mod lock;
mod mounts;
mod recover;
pub mod regf;
pub mod regfile;
mod replace;
mod storage;
mod wal;

pub use recover::{CHECKPOINT_AT_OPEN, Recovery};
pub use storage::log_syncs;

use hivebox_core::{Clock, HiveMount, Registry, RegistryOptions};
use hivefile::HiveFiles;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

/// The directory under a home that holds the store's files.
pub const HIVES_DIR: &str = "hives";

/// The directory under a home that holds the boxes, one directory each
/// (`boxes/<name>/registry.hiv`, its log `registry.hiv.wal`, and the box's settings).
pub const BOXES_DIR: &str = "boxes";

/// The name of a box's private hive in its directory: `registry.hiv` (log `registry.hiv.wal`).
pub const BOX_HIVE: &str = "registry";

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
    /// A hive could not be loaded from or unloaded to its file, or a line of the mount table
    /// (`hives/mounts`) names one that cannot be mounted again.
    #[error("{}{}: {reason}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Mount {
        /// The hive's file, or the mount table when `line` is given.
        path: PathBuf,
        /// The line of the mount table.
        line: Option<usize>,
        /// What is wrong.
        reason: String,
    },
    /// A hive's replacement (`NtReplaceKey`) cannot be staged or installed: a file involved
    /// (the new hive, the file to keep the old one in, the hive's own file) is not acceptable
    /// or cannot be moved.
    #[error("{}: {reason}", path.display())]
    Replace {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A hive cannot be unmounted now: keys of it are open. Nothing was changed.
    #[error("{}: {reason}", path.display())]
    Busy {
        /// The hive's file.
        path: PathBuf,
        /// What holds it.
        reason: String,
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
    /// Held while the mount table is read and rewritten.
    mounts: std::sync::Mutex<()>,
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

impl Home {
    /// The directory of box `name`: `<home>/boxes/<name>`.
    pub fn box_dir(&self, name: &str) -> PathBuf {
        self.path.join(BOXES_DIR).join(name)
    }

    /// Mounts box `name`'s private hive at [`hivebox_core::isolate::box_mount`]`(name)`
    /// (`\REGISTRY\A\<name>`), as the registry's own (`Caller::system()`): the files
    /// `boxes/<name>/registry.hiv` and its log `registry.hiv.wal`, recovered as the base hives
    /// are (the log replayed, a torn tail cut off) and durable like them (every change synced
    /// in the log before it is acknowledged, concurrent writers sharing syncs). On first
    /// mount the directory and an empty hive (its root named after the box) are created.
    ///
    /// A damaged image or log is [`StoreError::Corrupt`], naming the file and the byte
    /// offset; the hive is then neither mounted nor started afresh. Mounting a box that is
    /// mounted already fails (`STATUS_OBJECT_NAME_COLLISION`).
    ///
    /// The name must be usable as a directory and a key name; the daemon's stricter rule for
    /// box names (`docs/boxes.md`) is checked before this is called.
    pub fn mount_box(&self, name: &str) -> Result<(), StoreError> {
        let dir = self.box_dir(name);
        if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
            return Err(StoreError::Mount { path: dir, line: None, reason: format!("{name:?} is not a box name") });
        }
        hivebox_core::name::check_key_name(name).map_err(|e| StoreError::Mount {
            path: dir.clone(),
            line: None,
            reason: format!("{name:?} is not a box name: {e}"),
        })?;
        std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io { path: dir.clone(), source })?;
        let files = HiveFiles::new(&dir, BOX_HIVE);
        let now = self.clock.now();
        let (tree, storage, _) = recover::recover_files(&files, Arc::clone(&self.lock), || hivebox_core::KeyImage {
            name: name.to_owned(),
            last_write: now,
            ..hivebox_core::KeyImage::default()
        })?;
        let mount = hivebox_core::isolate::box_mount(name);
        let source = files.image.display().to_string();
        let system = hivebox_core::Caller::system();
        self.registry.load_key(&system, &mount, &source, tree.image(), Box::new(storage)).map_err(|status| {
            StoreError::Mount {
                path: files.image.clone(),
                line: None,
                reason: format!("cannot mount the box's hive at {mount}: {status}"),
            }
        })
    }

    /// Unmounts box `name`'s private hive: its changes are checkpointed into `registry.hiv`
    /// (a clean regf hive) and the log emptied, then it is no longer in the registry. Fails
    /// with [`StoreError::Busy`] while a key of it is open (nothing changes then), and with
    /// [`StoreError::Mount`] when it is not mounted.
    pub fn unmount_box(&self, name: &str) -> Result<(), StoreError> {
        let mount = hivebox_core::isolate::box_mount(name);
        let image = HiveFiles::new(&self.box_dir(name), BOX_HIVE).image;
        self.registry.unload_key(&hivebox_core::Caller::system(), &mount).map_err(|status| match status {
            hivebox_core::NtStatus::STATUS_CANNOT_DELETE => StoreError::Busy {
                path: image,
                reason: format!("cannot unmount the box's hive at {mount}: keys of it are open ({status})"),
            },
            hivebox_core::NtStatus::STATUS_OBJECT_NAME_NOT_FOUND => StoreError::Mount {
                path: image,
                line: None,
                reason: format!("the box's hive is not mounted at {mount}"),
            },
            _ => StoreError::Mount {
                path: image,
                line: None,
                reason: format!("cannot unmount the box's hive at {mount}: {status}"),
            },
        })
    }
}

impl Home {
    /// Mounts the regf hive `file` at `mount_native` (a native path directly below
    /// `\REGISTRY\MACHINE` or `\REGISTRY\USER` that does not exist yet), as `RegLoadKey`
    /// does, and records it in the mount table `hives/mounts` so that every later
    /// [`open_home`] mounts it again. The file is recovered like the store's own hives: its
    /// changes go to `FILE.wal` and are checkpointed into `FILE` (rewritten whole, atomically
    /// through `FILE.tmp`) on flush and unload. A dirty Windows hive is read with its
    /// `.LOG1`/`.LOG2` replayed.
    ///
    /// Refuses a file that is already loaded, one of the store's own hives, and a mount path
    /// that exists or is not directly below a master key.
    pub fn load_hive(&self, mount_native: &str, file: &Path) -> Result<(), StoreError> {
        let refuse = |reason: String| StoreError::Mount { path: file.to_owned(), line: None, reason };
        let abs = std::fs::canonicalize(file).map_err(|source| StoreError::Io { path: file.to_owned(), source })?;
        if !abs.is_file() {
            return Err(refuse("not a regular file".into()));
        }
        if let Some(reason) = mounts::unrecordable(mount_native, &abs) {
            return Err(refuse(reason));
        }
        let dir = self.path.join(HIVES_DIR);
        if std::fs::canonicalize(&dir).is_ok_and(|d| abs.starts_with(d)) {
            return Err(refuse("the file is one of the store's own hives".into()));
        }
        let _table = self.mounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut table = mounts::read(&dir)?;
        if let Some(m) = table.iter().find(|m| m.file == abs) {
            return Err(refuse(format!("the file is already loaded at {}", m.native)));
        }
        let system = hivebox_core::Caller::system();
        let opts = hivebox_core::OpenOptions::default();
        if let Ok(h) = self.registry.open_key(&system, None, mount_native, &opts) {
            let _ = self.registry.close_key(&system, h);
            return Err(refuse(format!("cannot load it at {mount_native}: that key exists already")));
        }
        self.attach(mount_native, &abs)?;
        table.push(mounts::Mount { native: mount_native.to_owned(), file: abs.clone(), line: 0 });
        if let Err(e) = mounts::write(&dir, &table) {
            // Not recorded, so not mounted: the next open would not mount it again.
            let _ = self.registry.unload_key(&system, mount_native);
            let _ = std::fs::remove_file(HiveFiles::external(&abs).wal);
            return Err(e);
        }
        Ok(())
    }

    /// Unmounts a hive that [`Home::load_hive`] mounted at `mount_native`, as `RegUnLoadKey`
    /// does: its changes are checkpointed into its file (a clean regf hive), its `.wal` is
    /// removed and so is its line of the mount table. Fails while a key of it is open, and
    /// for a key that is not a hive loaded from a file (the store's own hives stay).
    pub fn unload_hive(&self, mount_native: &str) -> Result<(), StoreError> {
        let dir = self.path.join(HIVES_DIR);
        let _table = self.mounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut table = mounts::read(&dir)?;
        let Some(i) = table.iter().position(|m| hivebox_core::name::eq_names(&m.native, mount_native)) else {
            return Err(StoreError::Mount {
                path: dir.join(mounts::FILE),
                line: None,
                reason: format!("no hive loaded from a file is mounted at {mount_native}"),
            });
        };
        let m = table.remove(i);
        self.registry.unload_key(&hivebox_core::Caller::system(), &m.native).map_err(|status| StoreError::Mount {
            path: m.file.clone(),
            line: None,
            reason: format!("cannot unload the hive at {}: {status}", m.native),
        })?;
        let wal = HiveFiles::external(&m.file).wal;
        let removed = match std::fs::remove_file(&wal) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io { path: wal, source: e }),
            _ => Ok(()),
        };
        mounts::write(&dir, &table)?;
        removed
    }

    /// The hives [`Home::load_hive`] mounted: mount path and file, as the mount table holds them.
    pub fn loaded_hives(&self) -> Result<Vec<(String, PathBuf)>, StoreError> {
        let _table = self.mounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        Ok(mounts::read(&self.path.join(HIVES_DIR))?.into_iter().map(|m| (m.native, m.file)).collect())
    }

    /// Stages the hive `image` (read from `source`, named in errors) to replace the hive whose
    /// root is mounted at `hive_native`, as `NtReplaceKey` does: the next time the hive is
    /// opened (the next [`open_home`], or the next [`Home::load_hive`] of a hive loaded from a
    /// file), its current contents are moved to `old_file` and `image` takes the place of its
    /// file. Until then nothing changes. The protocol, crash-safe at every step, is in
    /// `docs/store.md`.
    ///
    /// `hive_native` must be the root of a base hive, a user's hive or a hive
    /// [`Home::load_hive`] mounted. `old_file` must not exist, its directory must, and it may
    /// not be in the store's `hives` directory.
    pub fn stage_replacement(
        &self,
        hive_native: &str,
        image: &hivebox_core::KeyImage,
        source: &Path,
        old_file: &Path,
    ) -> Result<(), StoreError> {
        let dir = self.path.join(HIVES_DIR);
        let _table = self.mounts.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let files = self.hive_files(hive_native)?;
        let old = replace::old_file_path(old_file, &files, &dir)?;
        replace::stage(&files, image, source, &old)
    }

    /// The files of the hive mounted at `hive_native` (called with the mount table locked).
    fn hive_files(&self, hive_native: &str) -> Result<HiveFiles, StoreError> {
        let dir = self.path.join(HIVES_DIR);
        let eq = hivebox_core::name::eq_names;
        if let Some((name, _)) = BASE_HIVES.iter().find(|(_, mount)| eq(mount, hive_native)) {
            return Ok(HiveFiles::new(&dir, name));
        }
        if let Some(m) = mounts::read(&dir)?.into_iter().find(|m| eq(&m.native, hive_native)) {
            return Ok(HiveFiles::external(&m.file));
        }
        let user = hive_native
            .get(..USER_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(USER_PREFIX))
            .and_then(|_| hive_native.get(USER_PREFIX.len()..))
            .filter(|sid| !sid.is_empty() && !sid.contains('\\'));
        if let Some(sid) = user {
            let files = HiveFiles::new(&dir.join("users"), sid);
            if files.image.is_file() {
                return Ok(files);
            }
        }
        Err(StoreError::Replace {
            path: dir,
            reason: format!("no hive file of this store is mounted at {hive_native}"),
        })
    }

    /// Recovers the hive in `file` (which exists) and mounts it at `mount_native`.
    fn attach(&self, mount_native: &str, file: &Path) -> Result<Recovery, StoreError> {
        let files = HiveFiles::external(file);
        let wal_existed = files.wal.exists();
        let name = mount_native.rsplit('\\').next().unwrap_or_default().to_owned();
        let (tree, storage, recovery) =
            recover::recover(&files, Arc::clone(&self.lock), || hivebox_core::KeyImage { name, ..Default::default() })?;
        let source = file.display().to_string();
        let system = hivebox_core::Caller::system();
        if let Err(status) = self.registry.load_key(&system, mount_native, &source, tree.image(), Box::new(storage)) {
            if !wal_existed {
                // Best effort: an empty log left behind is harmless.
                let _ = std::fs::remove_file(&files.wal);
            }
            return Err(StoreError::Mount {
                path: file.to_owned(),
                line: None,
                reason: format!("cannot load it at {mount_native}: {status}"),
            });
        }
        Ok(recovery)
    }
}

/// Where users' hives are mounted: `\REGISTRY\USER\<sid>`.
const USER_PREFIX: &str = "\\REGISTRY\\USER\\";

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
    let mut home = Home { registry, path: home.to_owned(), recovery, lock, clock, mounts: std::sync::Mutex::new(()) };
    for m in mounts::read(&dir)? {
        let at_line = |reason: String| StoreError::Mount { path: dir.join(mounts::FILE), line: Some(m.line), reason };
        // A crash while a staged replacement was installed may leave only the staged file.
        if !m.file.is_file() && !HiveFiles::external(&m.file).replace.is_file() {
            return Err(at_line(format!(
                "the hive file {} mounted at {} is missing (restore it, or remove this line to open the \
                 store without it)",
                m.file.display(),
                m.native
            )));
        }
        let r = home.attach(&m.native, &m.file).map_err(|e| at_line(e.to_string()))?;
        home.recovery.merge(r);
    }
    Ok(home)
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
