//! IPC split per box, and its two deliberate holes (`docs/sandbox.md`, "IPC").
//!
//! By default a box has its own IPC namespace (SysV IPC, POSIX message queues), a private
//! `/dev/shm` and `/dev/mqueue`, and sees path unix sockets and FIFOs of the host only through
//! its overlay, where they never meet the host's (a socket inode seen through overlayfs is not
//! the host's socket). Two settings open holes:
//!
//! - **host sockets**: named host unix sockets are bind-mounted into the box at the same path;
//! - **an IPC space**: boxes naming the same space share one *persistent* IPC namespace (kept
//!   alive by a bind mount of it at `<home>/ipc/<NAME>/ns`), one `/dev/shm` (bound from
//!   `<home>/ipc/<NAME>/shm`) and one socket directory, [`IPC_SPACE_MOUNT`] (bound from
//!   `<home>/ipc/<NAME>/sockets`). Nothing else is shared.

use crate::launch::{SandboxError, check_box_path};
use crate::sys::process;
use rustix::fs::{FlockOperation, Mode, OFlags};
use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Where an IPC space's shared socket directory appears inside its boxes.
pub const IPC_SPACE_MOUNT: &str = "/run/hivebox-ipc";
/// The directory under the hivebox home holding the IPC spaces.
pub const IPC_DIR: &str = "ipc";
/// `statfs` type of the namespace file system (`NSFS_MAGIC`).
const NSFS_MAGIC: rustix::fs::FsWord = 0x6e73_6673;

/// An IPC space shared by several boxes (`box.toml`: `ipc-space = "NAME"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpcSpace {
    /// Its name.
    pub name: String,
    /// Its directory (`<home>/ipc/<name>`): `ns`, `shm/`, `sockets/`, `lock`.
    pub dir: PathBuf,
}

impl IpcSpace {
    /// Space `name` of the hivebox home `home`.
    pub fn new(name: &str, home: &Path) -> Result<Self, SandboxError> {
        check_space_name(name).map_err(|why| SandboxError::Invalid(format!("IPC space {name:?}: {why}")))?;
        Ok(IpcSpace { name: name.to_owned(), dir: home.join(IPC_DIR).join(name) })
    }
}

/// Why `name` cannot name an IPC space, if it cannot: 1 to 64 ASCII letters, digits, `-`,
/// `_` or `.`, not starting with `.`.
pub fn check_space_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 64 {
        return Err("must be 1 to 64 characters long");
    }
    if name.starts_with('.') {
        return Err("must not start with '.'");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        return Err("may only contain ASCII letters, digits, '-', '_' and '.'");
    }
    Ok(())
}

/// Checks a `host-sockets` entry at launch: absolute, no `..`, an existing unix socket (not a
/// symlink to one). Returns the path with its directories' symlinks resolved (the path the
/// socket is bound at in the box).
pub fn check_host_socket(p: &Path) -> Result<PathBuf, SandboxError> {
    let bad = |why: String| SandboxError::Invalid(format!("host socket {}: {why}", p.display()));
    check_box_path(p).map_err(|why| bad(why.into()))?;
    let meta = std::fs::symlink_metadata(p).map_err(|e| bad(e.to_string()))?;
    if !meta.file_type().is_socket() {
        return Err(bad("is not a unix socket".into()));
    }
    let parent = p.parent().unwrap_or(Path::new("/"));
    let parent = std::fs::canonicalize(parent).map_err(|e| bad(e.to_string()))?;
    Ok(parent.join(p.file_name().unwrap_or_default()))
}

/// Removes IPC space `dir` (`<home>/ipc/<NAME>`): detaches its namespace (SysV objects and
/// message queues end with the last box using it) and deletes the directory.
pub fn release_space(dir: &Path) -> io::Result<()> {
    let ns = dir.join("ns");
    match rustix::mount::unmount(&ns, rustix::mount::UnmountFlags::DETACH) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// An IPC space, prepared for the children.
#[derive(Debug)]
pub(crate) struct SpacePlan {
    ns: CString,
    pub(crate) shm: CString,
    pub(crate) sockets: CString,
    lock: PathBuf,
}

/// A host socket, prepared: the host path and the components of its path in the box.
#[derive(Debug)]
pub(crate) struct SocketPlan {
    src: CString,
    dirs: Vec<CString>,
    name: CString,
}

fn cstr(b: &[u8]) -> Result<CString, SandboxError> {
    CString::new(b).map_err(|_| SandboxError::Invalid(format!("{:?} contains a NUL byte", String::from_utf8_lossy(b))))
}

/// Creates the space's directory (`ns`, `shm/`, `sockets/`).
pub(crate) fn prepare_space(space: &IpcSpace) -> Result<SpacePlan, SandboxError> {
    let prep = |what: &'static str, path: &Path| {
        let path = path.to_owned();
        move |source| SandboxError::Prepare { what, path, source }
    };
    let dir = std::path::absolute(&space.dir).map_err(prep("find", &space.dir))?;
    let (shm, sockets, ns) = (dir.join("shm"), dir.join("sockets"), dir.join("ns"));
    for d in [&shm, &sockets] {
        std::fs::create_dir_all(d).map_err(prep("create", d))?;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).map_err(prep("set the mode of", d))?;
    }
    if std::fs::symlink_metadata(&ns).is_err() {
        std::fs::write(&ns, b"").map_err(prep("create", &ns))?;
    }
    Ok(SpacePlan {
        ns: cstr(ns.as_os_str().as_bytes())?,
        shm: cstr(shm.as_os_str().as_bytes())?,
        sockets: cstr(sockets.as_os_str().as_bytes())?,
        lock: dir.join("lock"),
    })
}

/// Holds the space's lock (so two first boxes do not both make a namespace) until dropped.
#[derive(Debug)]
pub(crate) struct SpaceLock(OwnedFd);

impl Drop for SpaceLock {
    fn drop(&mut self) {
        // The keeper keeps a copy of the descriptor: unlock explicitly.
        let _ = rustix::fs::flock(&self.0, FlockOperation::Unlock);
    }
}

pub(crate) fn lock_space(plan: &SpacePlan) -> Result<SpaceLock, SandboxError> {
    let prep = |source: rustix::io::Errno| SandboxError::Prepare {
        what: "lock",
        path: plan.lock.clone(),
        source: source.into(),
    };
    let fd = rustix::fs::open(&plan.lock, OFlags::CREATE | OFlags::RDWR | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
        .map_err(prep)?;
    rustix::fs::flock(&fd, FlockOperation::LockExclusive).map_err(prep)?;
    Ok(SpaceLock(fd))
}

/// A failed step: its name and the error.
pub(crate) type Failed = (String, io::Error);

fn show(c: &CString) -> String {
    c.to_string_lossy().into_owned()
}

/// In the keeper, before it unshares the mount namespace: joins the space's IPC namespace,
/// or (the first box) makes one and keeps it alive by bind-mounting it (in the host's mount
/// namespace) on `<dir>/ns`.
pub(crate) fn enter_space(plan: &SpacePlan) -> Result<(), Failed> {
    let fail = |what: String| move |e: io::Error| (what, e);
    let fd = rustix::fs::open(&plan.ns, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| (format!("open {}", show(&plan.ns)), e.into()))?;
    let fs = rustix::fs::fstatfs(&fd).map_err(|e| (format!("statfs {}", show(&plan.ns)), e.into()))?;
    if fs.f_type == NSFS_MAGIC {
        return process::join_ipc_namespace(fd.as_fd())
            .map_err(fail(format!("join the IPC namespace kept at {}", show(&plan.ns))));
    }
    drop(fd);
    process::unshare(rustix::thread::UnshareFlags::NEWIPC).map_err(fail("unshare the IPC namespace".into()))?;
    rustix::mount::mount_bind(c"/proc/self/ns/ipc", &plan.ns)
        .map_err(|e| (format!("keep the IPC namespace at {}", show(&plan.ns)), e.into()))
}

/// Prepares the `host-sockets` entries (already checked by [`check_host_socket`]).
pub(crate) fn prepare_sockets(list: &[PathBuf]) -> Result<Vec<SocketPlan>, SandboxError> {
    list.iter()
        .map(|p| {
            let dest = check_host_socket(p)?;
            let mut parts: Vec<CString> =
                dest.components().skip(1).map(|c| cstr(c.as_os_str().as_bytes())).collect::<Result<_, _>>()?;
            let name = parts.pop().ok_or_else(|| SandboxError::Invalid(format!("host socket {}", p.display())))?;
            Ok(SocketPlan { src: cstr(p.as_os_str().as_bytes())?, dirs: parts, name })
        })
        .collect()
}

/// In init, before `pivot_root`: binds a host socket at its path under `root`. The path in
/// the box is walked one component at a time without following symlinks (a symlink the box
/// made in its upper directory cannot redirect the mount or the files created for it);
/// missing directories (under the box's `/run` tmpfs) and the mount point are created.
pub(crate) fn bind_socket(root: &CString, s: &SocketPlan) -> Result<(), Failed> {
    use rustix::io::Errno;
    let what = || format!("bind the host socket {}", show(&s.src));
    let err = |e: Errno| (what(), io::Error::from(e));
    let mut dir =
        rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty()).map_err(err)?;
    for part in &s.dirs {
        match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
            Ok(()) | Err(Errno::EXIST) => {}
            Err(e) => return Err(err(e)),
        }
        let flags = OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        dir = rustix::fs::openat(&dir, part, flags, Mode::empty()).map_err(err)?;
    }
    let target =
        match rustix::fs::openat(&dir, &s.name, OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => {
                let flags = OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                rustix::fs::openat(&dir, &s.name, flags, Mode::from_raw_mode(0o666)).map_err(err)?
            }
            Err(e) => return Err(err(e)),
        };
    let kind = rustix::fs::FileType::from_raw_mode(rustix::fs::fstat(&target).map_err(err)?.st_mode);
    if matches!(kind, rustix::fs::FileType::Symlink | rustix::fs::FileType::Directory) {
        return Err(err(Errno::NOTSUP));
    }
    let at = CString::new(format!("/proc/self/fd/{}", target.as_raw_fd())).unwrap_or_default();
    rustix::mount::mount_bind(&s.src, &at).map_err(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn space_names_are_checked() {
        assert!(check_space_name("team-1.dev_x").is_ok());
        for bad in ["", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_space_name(bad).is_err(), "{bad:?}");
        }
        assert_eq!(IpcSpace::new("s", Path::new("/h")).unwrap().dir, Path::new("/h/ipc/s"));
    }

    #[test]
    fn host_sockets_are_checked() {
        assert!(check_host_socket(Path::new("run/x.sock")).is_err());
        assert!(check_host_socket(Path::new("/run/../x.sock")).is_err());
        assert!(check_host_socket(Path::new("/no/such/socket")).is_err());
        assert!(check_host_socket(Path::new("/etc/hostname")).is_err());
    }
}
