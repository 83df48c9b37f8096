//! The boxes of a home (`docs/boxes.md`): their names, directories, settings and private
//! hives, which of them the isolation filter serves, and the lifecycle: create, mount on
//! demand, list, discard, delete. Ephemeral boxes are watched and removed once their last
//! process has exited.
//!
//! A box is a directory `<home>/boxes/<name>/` holding `box.toml` (its settings) and its
//! private hive `registry.hiv` with the log `registry.hiv.wal`. The hive is mounted at
//! `\REGISTRY\A\<name>` (`hivebox_hive::Home::mount_box`) when the box is created, or the
//! first time anything needs it (a process of the box connects, `box list`, `box diff`); only
//! then does the isolation filter serve the box. A box whose hive cannot be mounted (damaged)
//! is never served: its processes are refused, never shown the host registry instead.
//!
//! The processes of box `<name>` are those in the cgroup `<cgroup2>/hivebox/<name>` (and its
//! descendants), which `hivebox run` creates. The daemon only reads cgroups; removing one
//! when its box is deleted is best effort (an empty cgroup left behind is harmless, and
//! `hivebox box delete` removes it too).

use hivebox_core::NtStatus;
use hivebox_core::isolate::IsolationFilter;
use hivebox_hive::{BOX_HIVE, BOXES_DIR, Home, StoreError};
use hivebox_sandbox::fs::FileChange;
use parking_lot::Mutex;
use rustc_hash::{FxHashMap, FxHashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// The longest box name, in characters.
pub const MAX_NAME_LEN: usize = 64;
/// A box's settings file, in its directory.
pub const SETTINGS_FILE: &str = "box.toml";
/// How often the ephemeral boxes' cgroups are looked at.
const WATCH_EVERY: Duration = Duration::from_millis(200);

/// A box request that failed: the NTSTATUS to answer with, and what to tell the person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxError {
    /// The status.
    pub status: NtStatus,
    /// What went wrong (names the box, and the file when one is at fault).
    pub message: String,
}

impl std::fmt::Display for BoxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BoxError {}

impl BoxError {
    fn new(status: NtStatus, message: impl Into<String>) -> Self {
        BoxError { status, message: message.into() }
    }

    fn io(what: &str, path: &Path, e: &io::Error) -> Self {
        let status = match e.raw_os_error() {
            Some(28 | 122) => NtStatus::STATUS_DISK_FULL,
            _ => NtStatus::STATUS_REGISTRY_IO_FAILED,
        };
        BoxError::new(status, format!("{what} {}: {e}", path.display()))
    }

    fn store(name: &str, e: &StoreError) -> Self {
        let status = match e {
            StoreError::Io { source, .. } if matches!(source.raw_os_error(), Some(28 | 122)) => {
                NtStatus::STATUS_DISK_FULL
            }
            StoreError::Io { .. } => NtStatus::STATUS_REGISTRY_IO_FAILED,
            StoreError::Corrupt { .. } => NtStatus::STATUS_REGISTRY_CORRUPT,
            StoreError::Busy { .. } => NtStatus::STATUS_CANNOT_DELETE,
            _ => NtStatus::STATUS_INVALID_PARAMETER,
        };
        BoxError::new(status, format!("box {name}: {e}"))
    }
}

/// Checks a box name: 1 to 64 characters of `A-Z a-z 0-9 . _ -`, not starting with `.` or
/// `-`. The error names the offending character and where it is.
pub fn check_name(name: &str) -> Result<(), BoxError> {
    let bad = |why: String| Err(BoxError::new(NtStatus::STATUS_OBJECT_NAME_INVALID, why));
    if name.is_empty() {
        return bad("a box name cannot be empty".into());
    }
    for (i, c) in name.chars().enumerate() {
        if !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')) {
            return bad(format!(
                "box name {name:?} contains {c:?} at position {}: box names are letters, digits, '.', '_' and '-'",
                i + 1
            ));
        }
    }
    if let Some(c @ ('.' | '-')) = name.chars().next() {
        return bad(format!("box name {name:?} starts with {c:?}: box names start with a letter, a digit or '_'"));
    }
    let len = name.chars().count();
    if len > MAX_NAME_LEN {
        return bad(format!("box name {name:?} is {len} characters long; the limit is {MAX_NAME_LEN}"));
    }
    Ok(())
}

/// A box's settings (`box.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Discarded and deleted once its last process exits.
    #[serde(default)]
    pub ephemeral: bool,
    /// Host paths written through to the host (bind-mounted into the box; `docs/sandbox.md`).
    #[serde(default)]
    pub open: Vec<PathBuf>,
    /// Host paths the box sees read-only.
    #[serde(default)]
    pub read_only: Vec<PathBuf>,
    /// Host paths the box does not see (an empty read-only tmpfs covers them).
    #[serde(default)]
    pub hidden: Vec<PathBuf>,
    /// What the box's network namespace reaches: `none` (only its own loopback; the
    /// default), `full` (through pasta, host loopback unreachable), `decide` (through pasta,
    /// each new destination decided by the `[net]` rules). `docs/sandbox.md`, "Network".
    #[serde(default)]
    pub network: hivebox_sandbox::net::NetworkMode,
    /// Host unix sockets bind-mounted into the box at the same path (`docs/sandbox.md`,
    /// "IPC"): absolute, no `..`; they must exist and be sockets when the box starts.
    #[serde(default, deserialize_with = "de_host_sockets")]
    pub host_sockets: Vec<PathBuf>,
    /// The IPC space the box shares with the other boxes naming it (`<home>/ipc/<NAME>`).
    #[serde(default, deserialize_with = "de_ipc_space")]
    pub ipc_space: Option<String>,
    /// `network = "decide"`: the rules deciding each new destination (`[net]`;
    /// `docs/sandbox.md`, "Network decisions").
    #[serde(default)]
    pub net: hivebox_sandbox::netrules::NetRules,
    /// The D-Bus system and session buses, each reached only through a filtering proxy with
    /// the rules given (`[dbus.system]`, `[dbus.session]`: `see`, `talk`, `own`, `call`,
    /// `broadcast`; none by default), or not at all (`dbus = "none"`, `dbus.system = "none"`).
    /// `docs/sandbox.md`, "System bus".
    #[serde(default)]
    pub dbus: hivebox_sandbox::dbus::DbusSettings,
    /// Protect the box's processes from the host: no process outside the box may trace,
    /// read or write the memory of, take descriptors from or signal them (Sandboxie's
    /// `DenyHostAccess`; a BPF LSM, `docs/sandbox.md`, "Protecting the box from the host").
    /// A box with it does not start where the kernel cannot enforce it.
    #[serde(default)]
    pub deny_host_access: bool,
}

fn de_host_sockets<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<PathBuf>, D::Error> {
    let list: Vec<PathBuf> = serde::Deserialize::deserialize(d)?;
    for p in &list {
        if let Err(why) = hivebox_sandbox::launch::check_box_path(p) {
            return Err(serde::de::Error::custom(format!("host socket {}: {why}", p.display())));
        }
    }
    Ok(list)
}

fn de_ipc_space<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let name: String = serde::Deserialize::deserialize(d)?;
    hivebox_sandbox::ipc::check_space_name(&name)
        .map_err(|why| serde::de::Error::custom(format!("ipc-space {name:?}: {why}")))?;
    Ok(Some(name))
}

/// `box diff`'s output with the file changes added: a "Files" section after the registry
/// changes in text, objects `{"kind": "file-added", "path", "type", "old_size", "new_size"}`
/// after the registry change objects in the JSON array (`kind` starts with `file-`).
pub fn with_files(registry: String, files: &[FileChange], json: bool) -> String {
    if files.is_empty() {
        return registry;
    }
    if !json {
        let sep = if registry.ends_with('\n') || registry.is_empty() { "" } else { "\n" };
        return format!("{registry}{sep}\nFiles:\n{}", hivebox_sandbox::fs::render_text(files));
    }
    let items: Vec<String> = files
        .iter()
        .map(|f| {
            serde_json::json!({
                "kind": format!("file-{}", f.kind.as_str()),
                "path": f.path.to_string_lossy(),
                "type": f.entry,
                "old_size": f.old_size,
                "new_size": f.new_size,
            })
            .to_string()
        })
        .collect();
    let body = registry.trim_end().strip_suffix(']').unwrap_or("[").trim_end();
    let sep = if body.ends_with('[') { "\n  " } else { ",\n  " };
    format!("{body}{sep}{}\n]\n", items.join(",\n  "))
}

/// Parses a `box.toml` (the `box_settings` fuzz target's entry point).
pub fn parse_settings(text: &str) -> Result<Settings, toml::de::Error> {
    toml::from_str(text)
}

impl Settings {
    fn to_toml(&self) -> String {
        format!(
            "# hivebox box settings (docs/boxes.md)\n# ephemeral: discard and delete the box once its last process \
             exits\nephemeral = {}\n",
            self.ephemeral
        )
    }
}

/// One box, as `box list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BoxInfo {
    /// Its name.
    pub name: String,
    /// Whether it is ephemeral.
    pub ephemeral: bool,
    /// Bytes of the files in its directory.
    pub bytes: u64,
    /// Processes in its cgroup.
    pub processes: u64,
    /// Private values and marked keys in its hive (`None` when the hive could not be read).
    pub changes: Option<u64>,
    /// Why something about it could not be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An ephemeral box being watched.
#[derive(Debug, Default)]
struct Watch {
    /// A process has been seen in the box since it is watched.
    entered: bool,
    /// A failure to remove it has been logged.
    warned: bool,
}

/// The boxes of one home.
pub struct BoxManager {
    home: Arc<Home>,
    filter: Arc<IsolationFilter>,
    /// The boxes whose hive is mounted (and which the filter serves). Held for the whole of
    /// a lifecycle step, so steps on boxes never interleave.
    mounted: Mutex<FxHashSet<String>>,
    /// Ephemeral boxes, by name.
    watched: Mutex<FxHashMap<String, Watch>>,
    /// `<cgroup2>/hivebox`, if a cgroup v2 hierarchy is mounted.
    cgroups: Option<PathBuf>,
    stop: AtomicBool,
    watcher: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for BoxManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoxManager")
            .field("home", &self.home.path())
            .field("mounted", &*self.mounted.lock())
            .field("cgroups", &self.cgroups)
            .finish_non_exhaustive()
    }
}

impl BoxManager {
    /// The boxes of `home`, served by `filter` (registered on `home.registry`). Nothing is
    /// mounted yet: boxes are mounted when created or first needed.
    pub fn new(home: Arc<Home>, filter: Arc<IsolationFilter>) -> Arc<Self> {
        Arc::new(BoxManager {
            home,
            filter,
            mounted: Mutex::new(FxHashSet::default()),
            watched: Mutex::new(FxHashMap::default()),
            cgroups: cgroup2_mount().map(|m| m.join("hivebox")),
            stop: AtomicBool::new(false),
            watcher: Mutex::new(None),
        })
    }

    /// The directory holding the boxes: `<home>/boxes`.
    pub fn boxes_dir(&self) -> PathBuf {
        self.home.path().join(BOXES_DIR)
    }

    /// The isolation filter serving the boxes.
    pub fn filter(&self) -> &Arc<IsolationFilter> {
        &self.filter
    }

    /// Box `name`'s cgroup (`<cgroup2>/hivebox/<name>`), if a cgroup v2 hierarchy is mounted.
    pub fn cgroup(&self, name: &str) -> Option<PathBuf> {
        self.cgroups.as_ref().map(|c| c.join(name))
    }

    /// Whether box `name` exists (its directory does).
    pub fn exists(&self, name: &str) -> bool {
        check_name(name).is_ok() && self.home.box_dir(name).is_dir()
    }

    /// The existing box, or the error that says there is none.
    fn existing(&self, name: &str) -> Result<PathBuf, BoxError> {
        check_name(name)?;
        let dir = self.home.box_dir(name);
        if dir.is_dir() {
            Ok(dir)
        } else {
            Err(BoxError::new(
                NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
                format!("there is no box named {name} ({} does not exist)", dir.display()),
            ))
        }
    }

    /// Reads box `name`'s settings.
    pub fn settings(&self, name: &str) -> Result<Settings, BoxError> {
        let path = self.existing(name)?.join(SETTINGS_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Settings::default()),
            Err(e) => return Err(BoxError::io("cannot read", &path, &e)),
        };
        parse_settings(&text).map_err(|e| {
            // One line: the file, the line, what is wrong.
            let line = e.span().map_or(1, |s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            BoxError::new(
                NtStatus::STATUS_INVALID_PARAMETER,
                format!("box {name}: {}, line {line}: {}", path.display(), e.message().trim_end()),
            )
        })
    }

    /// Creates box `name`: its directory, `box.toml`, an empty private hive, mounted and
    /// served. Fails if a box of that name exists (names differing only in case count as
    /// the same: the registry's names are case-insensitive).
    pub fn create(&self, name: &str, ephemeral: bool) -> Result<(), BoxError> {
        check_name(name)?;
        let mut mounted = self.mounted.lock();
        let boxes = self.boxes_dir();
        std::fs::create_dir_all(&boxes).map_err(|e| BoxError::io("cannot create", &boxes, &e))?;
        let entries = std::fs::read_dir(&boxes).map_err(|e| BoxError::io("cannot read", &boxes, &e))?;
        for entry in entries.flatten() {
            let other = entry.file_name().to_string_lossy().into_owned();
            if other.eq_ignore_ascii_case(name) {
                return Err(BoxError::new(
                    NtStatus::STATUS_OBJECT_NAME_COLLISION,
                    format!("box {other} exists already"),
                ));
            }
        }
        let dir = self.home.box_dir(name);
        std::fs::create_dir(&dir).map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => {
                BoxError::new(NtStatus::STATUS_OBJECT_NAME_COLLISION, format!("box {name} exists already"))
            }
            _ => BoxError::io("cannot create", &dir, &e),
        })?;
        let made = write_settings(&dir, &Settings { ephemeral, ..Settings::default() })
            .and_then(|()| self.home.mount_box(name).map_err(|e| BoxError::store(name, &e)));
        if let Err(e) = made {
            // Best effort: the failure is what gets reported.
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        // An empty cgroup of an earlier box of this name is not this box's.
        if let Some(cg) = self.cgroup(name) {
            let _ = remove_cgroup(&cg);
        }
        self.filter.add_box(name);
        mounted.insert(name.to_owned());
        drop(mounted);
        if ephemeral {
            self.watched.lock().insert(name.to_owned(), Watch::default());
        }
        tracing::info!(box_name = name, ephemeral, "box created");
        Ok(())
    }

    /// Makes sure box `name` is mounted and served: mounts its hive if it is not yet. An
    /// unknown box, unreadable settings or a damaged hive are errors (naming the file), and
    /// the box stays unserved.
    pub fn ensure_mounted(&self, name: &str) -> Result<(), BoxError> {
        check_name(name)?;
        let mut mounted = self.mounted.lock();
        if mounted.contains(name) {
            return Ok(());
        }
        let settings = self.settings(name)?;
        self.home.mount_box(name).map_err(|e| BoxError::store(name, &e))?;
        self.filter.add_box(name);
        mounted.insert(name.to_owned());
        drop(mounted);
        if settings.ephemeral {
            self.watched.lock().entry(name.to_owned()).or_default();
        }
        tracing::info!(box_name = name, "box mounted");
        Ok(())
    }

    /// Whether box `name` is mounted and served.
    pub fn is_mounted(&self, name: &str) -> bool {
        self.mounted.lock().contains(name)
    }

    /// A process of box `name` connected: for an ephemeral box, it now counts as entered,
    /// so it is removed once its cgroup is empty (even if no poll saw it populated).
    pub fn note_entered(&self, name: &str) {
        if let Some(w) = self.watched.lock().get_mut(name) {
            w.entered = true;
        }
    }

    /// The boxes, sorted by name, each with its size, processes and changes (its hive is
    /// mounted to count them; a box whose hive cannot be mounted is listed with the error).
    pub fn list(&self) -> Result<Vec<BoxInfo>, BoxError> {
        let boxes = self.boxes_dir();
        let entries = match std::fs::read_dir(&boxes) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(BoxError::io("cannot read", &boxes, &e)),
        };
        let mut names: Vec<String> = entries
            .flatten()
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| check_name(n).is_ok())
            .collect();
        names.sort();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let dir = self.home.box_dir(&name);
            let mut errors = Vec::new();
            let ephemeral = self.settings(&name).map(|s| s.ephemeral).unwrap_or_else(|e| {
                errors.push(e.message);
                false
            });
            let processes = self.processes(&name).unwrap_or_else(|e| {
                errors.push(e.message);
                0
            });
            let changes = match self.ensure_mounted(&name).and_then(|()| self.changes(&name)) {
                Ok(n) => Some(n),
                Err(e) => {
                    // A broken box.toml is also why it cannot be mounted: say it once.
                    if !errors.contains(&e.message) {
                        errors.push(e.message);
                    }
                    None
                }
            };
            let bytes = dir_bytes(&dir);
            let error = (!errors.is_empty()).then(|| errors.join("; "));
            out.push(BoxInfo { name, ephemeral, bytes, processes, changes, error });
        }
        Ok(out)
    }

    /// The processes in box `name`'s cgroup and its descendants (0 when it has none).
    pub fn processes(&self, name: &str) -> Result<u64, BoxError> {
        match self.cgroup(name) {
            Some(cg) => count_procs(&cg).map_err(|e| BoxError::io("cannot read the processes of", &cg, &e)),
            None => Ok(0),
        }
    }

    /// How many changes box `name` holds, counted as `box diff` lists them (its hive must be
    /// mounted).
    pub fn changes(&self, name: &str) -> Result<u64, BoxError> {
        crate::changes::changes(&self.home.registry, name)
            .map(|c| c.len() as u64)
            .map_err(|e| BoxError::new(e.status, e.message))
    }

    /// Box `name`'s file changes (its shadow store, `hivebox_sandbox::fs::diff`).
    pub fn file_changes(&self, name: &str) -> Result<Vec<FileChange>, BoxError> {
        let dir = self.existing(name)?;
        hivebox_sandbox::fs::diff(&dir)
            .map_err(|e| BoxError::new(NtStatus::STATUS_UNSUCCESSFUL, format!("box {name}: {e}")))
    }

    /// Copies box `name`'s file changes (all, or those at or below `path`) to the host; call
    /// with the box frozen ([`Self::with_frozen`]). The box's copies are removed only when no
    /// process runs in it (its overlay is then unmounted; changing the upper directory under
    /// a mounted overlay is undefined): otherwise they stay until `box discard`. Returns the
    /// report's "Files" section.
    pub fn commit_files(&self, name: &str, path: Option<&Path>) -> Result<String, BoxError> {
        let dir = self.existing(name)?;
        let idle = self.processes(name)? == 0;
        let (done, skipped) = hivebox_sandbox::fs::commit(&dir, path, idle)
            .map_err(|e| BoxError::new(NtStatus::STATUS_UNSUCCESSFUL, format!("box {name}: {e}")))?;
        let mut out = String::new();
        if !done.is_empty() {
            out.push_str(&format!("Files committed ({}):\n", done.len()));
            out.push_str(&hivebox_sandbox::fs::render_text(&done));
            if !idle {
                out.push_str("(processes run in the box: its copies stay until box discard)\n");
            }
        }
        if !skipped.is_empty() {
            out.push_str(&format!("Files not committed (FIFOs, sockets, devices: {}):\n", skipped.len()));
            out.push_str(&hivebox_sandbox::fs::render_text(&skipped));
        }
        Ok(out)
    }

    /// Runs `f` with box `name`'s processes frozen (cgroup v2 `cgroup.freeze`), so none of
    /// them changes the box while `f` reads and clears its changes (`box commit`). A box with
    /// no process runs `f` as it is; one whose cgroup cannot be frozen is refused.
    pub fn with_frozen<T>(&self, name: &str, f: impl FnOnce() -> Result<T, BoxError>) -> Result<T, BoxError> {
        let Some(cg) = self.cgroup(name).filter(|_| self.processes(name).is_ok_and(|n| n > 0)) else {
            return f();
        };
        let frozen = match freeze_cgroup(&cg) {
            Ok(frozen) => frozen,
            Err(e) => {
                return Err(BoxError::new(
                    NtStatus::STATUS_CANNOT_DELETE,
                    format!("box {name} has processes running and its cgroup cannot be frozen ({e}); stop them first"),
                ));
            }
        };
        let r = if frozen {
            f()
        } else {
            Err(BoxError::new(NtStatus::STATUS_IO_TIMEOUT, format!("box {name}'s processes did not freeze within 2 s")))
        };
        if let Err(e) = thaw_cgroup(&cg) {
            tracing::error!(box_name = name, "cannot thaw the box's cgroup {}: {e}", cg.display());
        }
        r
    }

    fn refuse_while_running(&self, name: &str, what: &str) -> Result<(), BoxError> {
        match self.processes(name)? {
            0 => Ok(()),
            n => Err(BoxError::new(
                NtStatus::STATUS_CANNOT_DELETE,
                format!("cannot {what} box {name}: {n} process{} running in it", if n == 1 { " is" } else { "es are" }),
            )),
        }
    }

    /// Stops serving box `name` and unmounts its hive if it is mounted (called with `mounted`
    /// locked). If keys of the hive are open, it stays served and this fails.
    fn unserve(&self, name: &str, mounted: &mut FxHashSet<String>) -> Result<(), BoxError> {
        if !mounted.contains(name) {
            return Ok(());
        }
        self.filter.remove_box(name);
        if let Err(e) = self.home.unmount_box(name) {
            self.filter.add_box(name);
            return Err(BoxError::store(name, &e));
        }
        mounted.remove(name);
        Ok(())
    }

    /// Deletes box `name`: refused while processes run in it; otherwise it stops being
    /// served, its hive is unmounted, its directory removed, and its cgroup removed (best
    /// effort: the daemon may see cgroups read-only).
    pub fn delete(&self, name: &str) -> Result<(), BoxError> {
        let dir = self.existing(name)?;
        let mut mounted = self.mounted.lock();
        self.refuse_while_running(name, "delete")?;
        if let Some(cg) = self.cgroup(name) {
            match remove_cgroup(&cg) {
                Err(e) if e.raw_os_error() == Some(16) => {
                    // EBUSY: a process entered it just now.
                    return Err(BoxError::new(
                        NtStatus::STATUS_CANNOT_DELETE,
                        format!("cannot delete box {name}: processes are running in it"),
                    ));
                }
                Err(e) => tracing::debug!(box_name = name, "the box's cgroup {} stays: {e}", cg.display()),
                Ok(()) => {}
            }
        }
        self.unserve(name, &mut mounted)?;
        std::fs::remove_dir_all(&dir).map_err(|e| BoxError::io("cannot remove", &dir, &e))?;
        drop(mounted);
        self.watched.lock().remove(name);
        tracing::info!(box_name = name, "box deleted");
        Ok(())
    }

    /// Throws box `name`'s registry changes away: refused while processes run in it;
    /// otherwise its hive is unmounted, its files removed, and a fresh empty hive mounted and
    /// served. `box.toml` stays.
    pub fn discard(&self, name: &str) -> Result<(), BoxError> {
        let dir = self.existing(name)?;
        let mut mounted = self.mounted.lock();
        self.refuse_while_running(name, "discard")?;
        // The files first: no process runs, so the box's overlay is unmounted.
        hivebox_sandbox::fs::discard(&dir)
            .map_err(|e| BoxError::new(NtStatus::STATUS_CANNOT_DELETE, format!("box {name}: {e}")))?;
        self.unserve(name, &mut mounted)?;
        // The unmount checkpointed the hive (its log is empty), so removing the image is the
        // one step that discards: a crash before it keeps every change, after it none.
        let hive = format!("{BOX_HIVE}.hiv");
        for suffix in ["", ".wal", ".tmp"] {
            let path = dir.join(format!("{hive}{suffix}"));
            match std::fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(BoxError::io("cannot remove", &path, &e)),
                _ => {}
            }
        }
        std::fs::File::open(&dir).and_then(|d| d.sync_all()).map_err(|e| BoxError::io("cannot sync", &dir, &e))?;
        self.home.mount_box(name).map_err(|e| BoxError::store(name, &e))?;
        self.filter.add_box(name);
        mounted.insert(name.to_owned());
        tracing::info!(box_name = name, "box discarded");
        Ok(())
    }

    /// Finishes the box commits a crash interrupted ([`crate::changes::recover_commits`]):
    /// every box with a commit journal (`<box>/commit.journal`) is mounted first, since the
    /// recovery clears the committed entries from its hive. Run once the filters are
    /// registered, before anything is served. The errors, one line per box, are returned for
    /// the caller to report; the other boxes are recovered regardless.
    pub fn recover_commits(&self) -> Result<(), String> {
        let Ok(entries) = std::fs::read_dir(self.boxes_dir()) else { return Ok(()) };
        let mut journaled = false;
        let mut errors = Vec::new();
        for name in entries.flatten().filter_map(|e| e.file_name().into_string().ok()) {
            if check_name(&name).is_err() || !self.home.box_dir(&name).join("commit.journal").is_file() {
                continue;
            }
            journaled = true;
            if let Err(e) = self.ensure_mounted(&name) {
                errors.push(format!("an interrupted commit of box {name} cannot be finished: {e}"));
            }
        }
        if journaled && let Err(e) = crate::changes::recover_commits(&self.home.registry, &self.boxes_dir()) {
            errors.push(e.message);
        }
        if errors.is_empty() { Ok(()) } else { Err(errors.join("\n")) }
    }

    /// Starts the thread that removes ephemeral boxes once their last process has exited.
    /// Every ephemeral box on disk is watched from now on; one whose cgroup exists but is
    /// empty was left by a daemon that stopped before it could remove it, and goes at once.
    pub fn start_watcher(self: &Arc<Self>) -> io::Result<()> {
        if let Ok(entries) = std::fs::read_dir(self.boxes_dir()) {
            let mut watched = self.watched.lock();
            for name in entries.flatten().filter_map(|e| e.file_name().into_string().ok()) {
                if check_name(&name).is_err() {
                    continue;
                }
                match self.settings(&name) {
                    Ok(s) if s.ephemeral => {
                        let entered = self.cgroup(&name).is_some_and(|cg| cg.is_dir());
                        watched.insert(name, Watch { entered, warned: false });
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(box_name = %name, "{e}"),
                }
            }
        }
        let weak = Arc::downgrade(self);
        let handle = std::thread::Builder::new().name("hivebox-boxes".into()).spawn(move || {
            loop {
                std::thread::sleep(WATCH_EVERY);
                let Some(me) = weak.upgrade() else { return };
                if me.stop.load(Ordering::SeqCst) {
                    return;
                }
                me.watch_once();
            }
        })?;
        *self.watcher.lock() = Some(handle);
        Ok(())
    }

    /// One look at the ephemeral boxes' cgroups.
    fn watch_once(&self) {
        let names: Vec<String> = self.watched.lock().keys().cloned().collect();
        for name in names {
            let populated = self.cgroup(&name).is_some_and(|cg| populated(&cg));
            let entered = {
                let mut watched = self.watched.lock();
                let Some(w) = watched.get_mut(&name) else { continue };
                w.entered |= populated;
                w.entered
            };
            if populated || !entered {
                continue;
            }
            match self.delete(&name) {
                Ok(()) => {
                    tracing::info!(box_name = %name, "ephemeral box {name}: its last process exited; discarded and deleted")
                }
                Err(e) if e.status == NtStatus::STATUS_OBJECT_NAME_NOT_FOUND => {
                    self.watched.lock().remove(&name);
                }
                Err(e) => {
                    // Keys of its hive may still be open for a moment after its processes
                    // exit (their connections closing): try again at the next look.
                    let mut watched = self.watched.lock();
                    if let Some(w) = watched.get_mut(&name).filter(|w| !w.warned) {
                        w.warned = true;
                        tracing::warn!(box_name = %name, "ephemeral box {name} cannot be removed yet: {e}");
                    }
                }
            }
        }
    }

    /// Stops the watcher thread (if any) and waits for it.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let handle = self.watcher.lock().take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

/// Writes `box.toml` durably (a temporary file renamed over it).
fn write_settings(dir: &Path, settings: &Settings) -> Result<(), BoxError> {
    let path = dir.join(SETTINGS_FILE);
    let tmp = dir.join(format!("{SETTINGS_FILE}.tmp"));
    let written = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(settings.to_toml().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    written.map_err(|e| BoxError::io("cannot write", &path, &e))
}

/// Freezes a cgroup (v2 `cgroup.freeze`) and waits up to 2 s for the kernel to say it is
/// frozen (`frozen 1` in `cgroup.events`; it freezes asynchronously). `Ok(false)`: it did not
/// freeze in time (it is thawed again).
pub fn freeze_cgroup(cg: &Path) -> io::Result<bool> {
    std::fs::write(cg.join("cgroup.freeze"), "1")?;
    let frozen = (0..400).any(|_| {
        let done = std::fs::read_to_string(cg.join("cgroup.events")).is_ok_and(|t| t.lines().any(|l| l == "frozen 1"));
        if !done {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        done
    });
    if !frozen {
        thaw_cgroup(cg)?;
    }
    Ok(frozen)
}

/// Thaws a cgroup frozen by [`freeze_cgroup`].
pub fn thaw_cgroup(cg: &Path) -> io::Result<()> {
    std::fs::write(cg.join("cgroup.freeze"), "0")
}

/// Bytes of the regular files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// The processes in cgroup `dir` and its descendants; 0 if it does not exist.
fn count_procs(dir: &Path) -> io::Result<u64> {
    let procs = match std::fs::read_to_string(dir.join("cgroup.procs")) {
        Ok(p) => p,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut n = procs.lines().filter(|l| !l.trim().is_empty()).count() as u64;
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            n += count_procs(&e.path())?;
        }
    }
    Ok(n)
}

/// Whether cgroup `dir` (or a descendant) has a process: `populated 1` in `cgroup.events`.
fn populated(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("cgroup.events"))
        .is_ok_and(|events| events.lines().any(|l| l.trim() == "populated 1"))
}

/// Removes cgroup `dir` and its descendants (deepest first); a missing one is fine. Fails
/// with `EBUSY` if a process is in one of them.
fn remove_cgroup(dir: &Path) -> io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_cgroup(&e.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Where the cgroup v2 hierarchy is mounted, from `/proc/self/mountinfo` (the first
/// `cgroup2` mount); `None` if there is none.
pub fn cgroup2_mount() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    cgroup2_in_mountinfo(&mounts)
}

fn cgroup2_in_mountinfo(mountinfo: &str) -> Option<PathBuf> {
    mountinfo.lines().find_map(|l| {
        let (pre, post) = l.split_once(" - ")?;
        if !post.starts_with("cgroup2 ") {
            return None;
        }
        pre.split(' ').nth(4).map(|p| PathBuf::from(unescape_mountinfo(p)))
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, ...).
fn unescape_mountinfo(field: &str) -> String {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Box `name`'s cgroup on this machine: `<cgroup2>/hivebox/<name>`; `None` without cgroup v2.
pub fn box_cgroup(name: &str) -> Option<PathBuf> {
    cgroup2_mount().map(|m| m.join("hivebox").join(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_setting_is_parsed_and_checked() {
        use hivebox_sandbox::net::NetworkMode;
        assert_eq!(parse_settings("").unwrap().network, NetworkMode::None);
        assert_eq!(parse_settings("network = \"full\"\n").unwrap().network, NetworkMode::Full);
        assert_eq!(parse_settings("network = \"decide\"\n").unwrap().network, NetworkMode::Decide);
        let text = "ephemeral = false\nnetwork = \"some\"\n";
        let e = parse_settings(text).unwrap_err();
        assert_eq!(text[..e.span().unwrap().start].matches('\n').count() + 1, 2);
        assert!(e.message().contains("none") && e.message().contains("full"), "{}", e.message());
    }

    #[test]
    fn deny_host_access_is_off_unless_set() {
        assert!(!parse_settings("").unwrap().deny_host_access);
        assert!(parse_settings("deny-host-access = true\n").unwrap().deny_host_access);
        assert!(parse_settings("deny-host-access = \"yes\"\n").is_err());
    }

    #[test]
    fn ipc_settings_are_parsed_and_checked() {
        let s = parse_settings("host-sockets = [\"/run/a.sock\"]\nipc-space = \"team\"\n").unwrap();
        assert_eq!(s.host_sockets, vec![PathBuf::from("/run/a.sock")]);
        assert_eq!(s.ipc_space.as_deref(), Some("team"));
        assert_eq!(parse_settings("").unwrap().ipc_space, None);
        let line = |text: &str| {
            let e = parse_settings(text).unwrap_err();
            (text[..e.span().unwrap().start].matches('\n').count() + 1, e.message().to_owned())
        };
        let (n, m) = line("ephemeral = false\nhost-sockets = [\"run/a.sock\"]\n");
        assert_eq!(n, 2, "{m}");
        assert!(m.contains("run/a.sock: must be absolute"), "{m}");
        let (n, m) = line("ephemeral = false\n\nhost-sockets = [\"/run/../a.sock\"]\n");
        assert!(n == 3 && m.contains(".."), "{n} {m}");
        let (n, m) = line("ephemeral = false\nipc-space = \"a/b\"\n");
        assert!(n == 2 && m.contains("ipc-space \"a/b\""), "{n} {m}");
    }

    #[test]
    fn dbus_settings_are_parsed_and_checked() {
        use hivebox_sandbox::dbus::{BusAccess, BusRules, DbusSettings};
        assert_eq!(parse_settings("").unwrap().dbus, DbusSettings::default());
        assert_eq!(parse_settings("dbus = \"none\"\n").unwrap().dbus, DbusSettings::none());
        let text = "[dbus.system]\ntalk = [\"org.example.Service\"]\ncall = \
                    [\"org.example.Other=org.example.Iface.Get@/org/example\"]\n\n[dbus]\nsession = \"none\"\n";
        let d = parse_settings(text).unwrap().dbus;
        assert_eq!(d.session, BusAccess::None);
        assert_eq!(
            d.system,
            BusAccess::Filtered(BusRules {
                talk: vec!["org.example.Service".into()],
                call: vec!["org.example.Other=org.example.Iface.Get@/org/example".into()],
                ..BusRules::default()
            })
        );
        let d =
            parse_settings("dbus = { system = \"filtered\", session = { own = [\"org.example.*\"] } }\n").unwrap().dbus;
        assert_eq!(d.system, BusAccess::default());
        assert!(matches!(d.session, BusAccess::Filtered(r) if r.own == ["org.example.*"]));
        let line = |text: &str| {
            let e = parse_settings(text).unwrap_err();
            (text[..e.span().unwrap().start].matches('\n').count() + 1, e.message().to_owned())
        };
        let (n, m) = line("ephemeral = false\n[dbus.system]\ntalk = [\"org.example.Fine\", \"org..Bad\"]\n");
        assert!(n == 3 && m.contains("\"org..Bad\"") && m.contains("empty element"), "{n} {m}");
        let (n, m) = line("[dbus.session]\n\ncall = [\"org.example.Service=Method\"]\n");
        assert!(n == 3 && m.contains("org.example.Service=Method"), "{n} {m}");
        let (n, m) = line("[dbus.system]\nown = [\":1.42\"]\n");
        assert!(n == 2 && m.contains(":1.42") && m.contains("unique"), "{n} {m}");
        let (_, m) = line("[dbus.system]\ntalks = [\"org.example.Service\"]\n");
        assert!(m.contains("talks"), "{m}");
        let (_, m) = line("[dbus]\nsystem = \"open\"\n");
        assert!(m.contains("\"open\"") && m.contains("none"), "{m}");
        let (_, m) = line("dbus = \"all\"\n");
        assert!(m.contains("\"all\""), "{m}");
        let (_, m) = line("[dbus]\nbus = \"none\"\n");
        assert!(m.contains("bus"), "{m}");
    }

    #[test]
    fn names() {
        for good in ["a", "Trial", "web-1", "x.y_z", "_", "0", &"a".repeat(64)] {
            assert_eq!(check_name(good), Ok(()), "{good:?}");
        }
        let why = |n: &str| check_name(n).unwrap_err().message;
        assert!(why("").contains("empty"));
        assert!(why("a/b").contains("'/' at position 2"), "{}", why("a/b"));
        assert!(why(r"a\b").contains(r"'\\'"), "{}", why(r"a\b"));
        assert!(why("a b").contains("' '"));
        assert!(why("é").contains("'é'"));
        assert!(why(".hidden").contains("starts with '.'"));
        assert!(why("-x").contains("starts with '-'"));
        assert!(why("..").contains("starts with '.'"));
        assert!(why(&"a".repeat(65)).contains("65 characters"));
        assert_eq!(check_name("a:b").unwrap_err().status, NtStatus::STATUS_OBJECT_NAME_INVALID);
    }

    #[test]
    fn cgroup2_from_mountinfo() {
        let info = "\
25 30 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
        assert_eq!(cgroup2_in_mountinfo(info), Some(PathBuf::from("/sys/fs/cgroup/unified")));
        assert_eq!(cgroup2_in_mountinfo("41 31 0:38 / /a\\040b rw - cgroup2 none rw\n"), Some("/a b".into()));
        assert_eq!(cgroup2_in_mountinfo("25 30 0:22 / /sys rw - sysfs sysfs rw\n"), None);
    }
}
