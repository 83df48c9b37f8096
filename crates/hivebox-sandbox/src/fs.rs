//! The file shadow store of a box: the overlayfs upper directories under `<box>/fs/<key>/`
//! (`root` for `/`, `home` for `/home`, ...), read back as a list of changes, copied to the
//! host (`commit`) or thrown away (`discard`). See `docs/sandbox.md`.
//!
//! How overlayfs records changes in an upper directory (probed on these machines):
//! a deleted entry is a whiteout (a character device 0:0, or since Linux 6.7 a zero-size file
//! with `trusted.overlay.whiteout`); a directory deleted and created again carries
//! `trusted.overlay.opaque = "y"`; anything else present is new or changed content. With
//! `redirect_dir` off (the default here) a renamed lower directory is a copy plus a whiteout.
//!
//! The upper directories must not change while an overlay using them is mounted (the kernel
//! calls it undefined): [`discard`] and the clearing part of [`commit`] are for a box with no
//! process running. Reading ([`diff`], the copying part of `commit`) is fine while the box's
//! processes are frozen.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The whiteout xattr of nested overlays (Linux 6.7+).
const WHITEOUT_XATTR: &str = "trusted.overlay.whiteout";
/// The opaque-directory xattr.
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";
/// The directory under `<box>/fs/` where the box's root is assembled (not a layer).
const MOUNT_DIR: &str = "mnt";

/// What happened to a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChangeKind {
    /// New in the box.
    Added,
    /// Exists on the host; the box has its own version.
    Modified,
    /// Deleted in the box.
    Deleted,
    /// A directory deleted and created again: the host's content below it is hidden.
    Replaced,
}

impl ChangeKind {
    /// `added`, `modified`, `deleted`, `replaced`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Modified => "modified",
            ChangeKind::Deleted => "deleted",
            ChangeKind::Replaced => "replaced",
        }
    }
}

/// The type of the entry (in the box; on the host for a deletion).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A FIFO, socket or device node.
    Other,
}

/// One changed path of a box.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileChange {
    /// The path as the host names it.
    pub path: PathBuf,
    /// What happened.
    pub kind: ChangeKind,
    /// What it is.
    #[serde(rename = "type")]
    pub entry: EntryType,
    /// Its size on the host (files and symlinks that exist there).
    pub old_size: Option<u64>,
    /// Its size in the box (files and symlinks the box has).
    pub new_size: Option<u64>,
    /// Where the box's version is, in the upper directory (`None` for deletions).
    #[serde(skip)]
    pub upper: Option<PathBuf>,
}

/// A file-store operation that failed, with the path concerned.
#[derive(Debug, thiserror::Error)]
#[error("cannot {what} {}: {source}", path.display())]
#[non_exhaustive]
pub struct FsError {
    /// What was being done.
    pub what: &'static str,
    /// The path.
    pub path: PathBuf,
    /// The cause.
    pub source: io::Error,
}

fn err<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError { what, path: path.to_owned(), source }
}

/// The layers present in `<box>/fs/`: `(host mount point, upper dir)`.
fn layers(box_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, FsError> {
    let fs = box_dir.join("fs");
    let entries = match std::fs::read_dir(&fs) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(err("read", &fs)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(err("read", &fs))?;
        let key = entry.file_name().to_string_lossy().into_owned();
        if key == MOUNT_DIR {
            continue;
        }
        let upper = entry.path().join("upper");
        if upper.is_dir() {
            let point = if key == "root" { PathBuf::from("/") } else { PathBuf::from("/").join(&key) };
            out.push((point, upper));
        }
    }
    out.sort();
    Ok(out)
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 256];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

fn is_whiteout(path: &Path, meta: &std::fs::Metadata) -> bool {
    let ft = meta.file_type();
    (ft.is_char_device() && meta.rdev() == 0)
        || (ft.is_file() && meta.len() == 0 && xattr(path, WHITEOUT_XATTR).is_some())
}

fn entry_type(meta: &std::fs::Metadata) -> EntryType {
    let ft = meta.file_type();
    if ft.is_dir() {
        EntryType::Dir
    } else if ft.is_file() {
        EntryType::File
    } else if ft.is_symlink() {
        EntryType::Symlink
    } else {
        EntryType::Other
    }
}

fn size(meta: &std::fs::Metadata) -> Option<u64> {
    (!meta.is_dir()).then_some(meta.len())
}

/// The file changes of the box at `box_dir`, parents before children, sorted by name
/// within a directory.
pub fn diff(box_dir: &Path) -> Result<Vec<FileChange>, FsError> {
    let mut out = Vec::new();
    for (point, upper) in layers(box_dir)? {
        walk(&upper, &point, &mut out)?;
    }
    Ok(out)
}

fn walk(upper: &Path, host: &Path, out: &mut Vec<FileChange>) -> Result<(), FsError> {
    let mut entries: Vec<_> =
        std::fs::read_dir(upper).map_err(err("read", upper))?.collect::<Result<_, _>>().map_err(err("read", upper))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let host_path = host.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&path).map_err(err("read", &path))?;
        let lower = std::fs::symlink_metadata(&host_path).ok();
        if is_whiteout(&path, &meta) {
            let Some(lower) = lower else { continue };
            out.push(FileChange {
                path: host_path,
                kind: ChangeKind::Deleted,
                entry: entry_type(&lower),
                old_size: size(&lower),
                new_size: None,
                upper: None,
            });
            continue;
        }
        let entry = entry_type(&meta);
        let kind = match (&lower, entry) {
            (None, _) => Some(ChangeKind::Added),
            (Some(l), EntryType::Dir) if l.is_dir() => {
                (xattr(&path, OPAQUE_XATTR).as_deref() == Some(b"y")).then_some(ChangeKind::Replaced)
            }
            (Some(_), _) => Some(ChangeKind::Modified),
        };
        if let Some(kind) = kind {
            out.push(FileChange {
                path: host_path.clone(),
                kind,
                entry,
                old_size: lower.as_ref().and_then(size),
                new_size: size(&meta),
                upper: Some(path.clone()),
            });
        }
        if entry == EntryType::Dir {
            walk(&path, &host_path, out)?;
        }
    }
    Ok(())
}

/// Throws the box's file changes away: removes `<box>/fs/` (upper and work directories).
/// Only while no process of the box runs (its overlay is then unmounted).
pub fn discard(box_dir: &Path) -> Result<(), FsError> {
    for (_, upper) in layers(box_dir)? {
        let layer = upper.parent().unwrap_or(&upper).to_owned();
        match std::fs::remove_dir_all(&layer) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(err("remove", &layer)(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Copies the box's file changes (all, or those at or below `only`) to the host: deletions
/// delete, replaced directories are removed then rebuilt, files and symlinks are written to a
/// temporary name beside the target and renamed over it, keeping mode, owner, times and
/// extended attributes (but not `trusted.overlay.*`). FIFOs, sockets and device nodes are not
/// copied (they are returned as skipped). With `clear`, the committed entries are then removed
/// from the upper directories: only when no process of the box runs. Returns the changes
/// applied and those skipped.
pub fn commit(box_dir: &Path, only: Option<&Path>, clear: bool) -> Result<(Vec<FileChange>, Vec<FileChange>), FsError> {
    let changes: Vec<FileChange> =
        diff(box_dir)?.into_iter().filter(|c| only.is_none_or(|p| c.path.starts_with(p))).collect();
    let mut done = Vec::new();
    let mut skipped = Vec::new();
    for c in changes {
        match (c.kind, c.entry, &c.upper) {
            (ChangeKind::Deleted, EntryType::Dir, _) => remove_all(&c.path)?,
            (ChangeKind::Deleted, _, _) => remove_all(&c.path)?,
            (_, EntryType::Dir, Some(upper)) => {
                if c.kind == ChangeKind::Replaced {
                    remove_all(&c.path)?;
                }
                match std::fs::create_dir(&c.path) {
                    Err(e) if e.kind() != io::ErrorKind::AlreadyExists => return Err(err("create", &c.path)(e)),
                    _ => {}
                }
                copy_metadata(upper, &c.path)?;
            }
            (_, EntryType::File | EntryType::Symlink, Some(upper)) => copy_entry(upper, &c.path)?,
            _ => {
                skipped.push(c);
                continue;
            }
        }
        done.push(c);
    }
    if clear {
        for (point, upper) in layers(box_dir)? {
            match only {
                None => {
                    let layer = upper.parent().unwrap_or(&upper).to_owned();
                    std::fs::remove_dir_all(&layer).map_err(err("remove", &layer))?;
                }
                Some(p) => {
                    if let Ok(rel) = p.strip_prefix(&point) {
                        // The deepest layer owns the path; another layer has nothing there.
                        let target = upper.join(rel);
                        if target != upper {
                            remove_all(&target)?;
                        }
                    }
                }
            }
        }
    }
    Ok((done, skipped))
}

fn remove_all(path: &Path) -> Result<(), FsError> {
    let r = match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(path),
        Ok(_) => std::fs::remove_file(path),
        Err(e) => Err(e),
    };
    match r {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(err("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Writes `upper`'s file or symlink to a temporary name beside `target`, then renames it over.
fn copy_entry(upper: &Path, target: &Path) -> Result<(), FsError> {
    let name = target.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = target.with_file_name(format!(".{name}.hivebox-commit-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let meta = std::fs::symlink_metadata(upper).map_err(err("read", upper))?;
    if meta.file_type().is_symlink() {
        let to = std::fs::read_link(upper).map_err(err("read", upper))?;
        std::os::unix::fs::symlink(&to, &tmp).map_err(err("create", &tmp))?;
    } else {
        std::fs::copy(upper, &tmp).map_err(err("copy to", &tmp))?;
    }
    let r = copy_metadata(upper, &tmp).and_then(|()| std::fs::rename(&tmp, target).map_err(err("rename onto", target)));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Owner, mode, times and extended attributes (not `trusted.overlay.*`) of `from` onto `to`.
fn copy_metadata(from: &Path, to: &Path) -> Result<(), FsError> {
    let meta = std::fs::symlink_metadata(from).map_err(err("read", from))?;
    std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid())).map_err(err("set the owner of", to))?;
    if !meta.file_type().is_symlink() {
        std::fs::set_permissions(to, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(err("set the mode of", to))?;
    }
    let mut names = vec![0u8; 4096];
    if let Ok(n) = rustix::fs::llistxattr(from, &mut names) {
        for name in names[..n].split(|b| *b == 0).filter(|n| !n.is_empty()) {
            let name = String::from_utf8_lossy(name);
            if name.starts_with("trusted.overlay.") || name.starts_with("user.overlay.") {
                continue;
            }
            if let Some(value) = xattr(from, &name) {
                let _ = rustix::fs::lsetxattr(to, name.as_ref(), &value, rustix::fs::XattrFlags::empty());
            }
        }
    }
    let times = [
        rustix::fs::Timespec { tv_sec: meta.atime(), tv_nsec: meta.atime_nsec() as _ },
        rustix::fs::Timespec { tv_sec: meta.mtime(), tv_nsec: meta.mtime_nsec() as _ },
    ];
    rustix::fs::utimensat(
        rustix::fs::CWD,
        to,
        &rustix::fs::Timestamps { last_access: times[0], last_modification: times[1] },
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .map_err(|e| err("set the times of", to)(e.into()))?;
    Ok(())
}

/// The changes as the text of `box diff`'s "Files" section: one line each,
/// `+ /path (12 B)`, `~ /path (10 B -> 12 B)`, `- /path`, `! /dir/ (replaced)`.
pub fn render_text(changes: &[FileChange]) -> String {
    let mut out = String::new();
    for c in changes {
        let slash = if c.entry == EntryType::Dir { "/" } else { "" };
        let sizes = match (c.old_size, c.new_size) {
            (Some(o), Some(n)) => format!(" ({o} B -> {n} B)"),
            (None, Some(n)) => format!(" ({n} B)"),
            (Some(o), None) => format!(" (was {o} B)"),
            (None, None) => String::new(),
        };
        let sign = match c.kind {
            ChangeKind::Added => '+',
            ChangeKind::Modified => '~',
            ChangeKind::Deleted => '-',
            ChangeKind::Replaced => '!',
        };
        let note = if c.kind == ChangeKind::Replaced { " (replaced)" } else { "" };
        out.push_str(&format!("{sign} {}{slash}{sizes}{note}\n", c.path.display()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_upper_is_classified() {
        let home = tempfile::tempdir().unwrap();
        let box_dir = home.path();
        // The layer of `/`: the host paths below are real ones of any Linux system.
        let upper = box_dir.join("fs/root/upper");
        std::fs::create_dir_all(upper.join("etc")).unwrap();
        std::fs::write(upper.join("etc/hostname"), "boxed\n").unwrap();
        std::fs::write(upper.join("etc/hivebox-new-file"), "new").unwrap();
        std::fs::create_dir_all(upper.join("hivebox-new-dir/sub")).unwrap();
        let c = diff(box_dir).unwrap();
        let find = |p: &str| c.iter().find(|c| c.path == Path::new(p)).cloned();
        assert_eq!(find("/etc"), None, "an existing directory is only a container");
        let host = find("/etc/hostname").unwrap();
        assert_eq!((host.kind, host.entry, host.new_size), (ChangeKind::Modified, EntryType::File, Some(6)));
        assert_eq!(find("/etc/hivebox-new-file").unwrap().kind, ChangeKind::Added);
        assert_eq!(find("/hivebox-new-dir").unwrap().entry, EntryType::Dir);
        assert_eq!(find("/hivebox-new-dir/sub").unwrap().kind, ChangeKind::Added);
        discard(box_dir).unwrap();
        assert!(diff(box_dir).unwrap().is_empty());
    }
}
