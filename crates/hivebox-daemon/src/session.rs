//! One client's view of the registry: its identity, the handles and transactions it owns,
//! and the dispatch of its requests to the registry. The socket server runs one per
//! connection; the CLI's embedded mode runs one in-process, so both give the same answers.
//!
//! A handle or transaction id from the wire is used only if this session created it, so a
//! client can neither use nor close another's. Dropping the session closes its handles
//! (which cancels their watches) and rolls back its transactions.

use crate::boxes::{BoxError, BoxManager};
use crate::changes::{self, ChangeError};
use hivebox_core::{
    Caller, CreateOptions, Handle, KeyImage, NtStatus, OpenOptions, Registry, TxnId, WatchId, WatchNotifier,
};
use hivebox_hive::{Home, StoreError, regf};
use hivebox_proto::{Identity, Reply, Request, VERSION, predefined_path};
use rustc_hash::FxHashSet;
use std::path::Path;
use std::sync::Arc;

/// What a session needs from its host besides the registry.
pub trait Host: Send + Sync {
    /// Reloads the policy; returns a summary for the person who asked.
    fn reload_policy(&self) -> Result<String, String>;
}

/// One client's session.
pub struct Session {
    registry: Registry,
    home: Option<Arc<Home>>,
    caller: Caller,
    identity: Identity,
    /// May load, unload and replace hives (the daemon's own uid or root).
    privileged: bool,
    handles: FxHashSet<u64>,
    txns: FxHashSet<u64>,
    /// Where this session's watch completions go.
    notifier: Option<WatchNotifier>,
    host: Option<Arc<dyn Host>>,
    /// The home's boxes, for the box requests.
    boxes: Option<Arc<BoxManager>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("identity", &self.identity)
            .field("handles", &self.handles.len())
            .field("txns", &self.txns.len())
            .finish_non_exhaustive()
    }
}

fn err(status: NtStatus) -> Reply {
    Reply::error(status)
}

fn store_error(e: &StoreError) -> Reply {
    let status = match e {
        StoreError::Io { source, .. } if matches!(source.raw_os_error(), Some(28 | 122)) => NtStatus::STATUS_DISK_FULL,
        StoreError::Io { .. } => NtStatus::STATUS_REGISTRY_IO_FAILED,
        StoreError::Corrupt { .. } => NtStatus::STATUS_REGISTRY_CORRUPT,
        StoreError::Busy { .. } => NtStatus::STATUS_CANNOT_DELETE,
        _ => NtStatus::STATUS_INVALID_PARAMETER,
    };
    Reply::Error { status, message: e.to_string() }
}

fn change_error(e: ChangeError) -> BoxError {
    BoxError { status: e.status, message: e.message }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(status) => return err(status),
        }
    };
}

impl Session {
    /// A session for `caller`, whom the host identified as `identity`.
    pub fn new(
        registry: Registry,
        home: Option<Arc<Home>>,
        caller: Caller,
        identity: Identity,
        privileged: bool,
    ) -> Self {
        Session {
            registry,
            home,
            caller,
            identity,
            privileged,
            handles: FxHashSet::default(),
            txns: FxHashSet::default(),
            notifier: None,
            host: None,
            boxes: None,
        }
    }

    /// Lets this session answer the box requests (for a privileged, unboxed caller).
    pub fn set_boxes(&mut self, boxes: Arc<BoxManager>) {
        self.boxes = Some(boxes);
    }

    /// Sends this session's watch completions to `notifier`.
    pub fn set_notifier(&mut self, notifier: WatchNotifier) {
        self.notifier = Some(notifier);
    }

    /// Lets this session reload the policy.
    pub fn set_host(&mut self, host: Arc<dyn Host>) {
        self.host = Some(host);
    }

    /// The client's identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The caller its operations run as.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Open handles.
    pub fn open_handles(&self) -> usize {
        self.handles.len()
    }

    fn handle(&self, h: u64) -> Result<Handle, NtStatus> {
        if self.handles.contains(&h) { Ok(Handle(h)) } else { Err(NtStatus::STATUS_INVALID_HANDLE) }
    }

    fn txn(&self, t: u64) -> Result<Option<TxnId>, NtStatus> {
        match t {
            0 => Ok(None),
            t if self.txns.contains(&t) => Ok(Some(TxnId(t))),
            _ => Err(NtStatus::STATUS_INVALID_TRANSACTION),
        }
    }

    /// The root handle and path of an open or create: a predefined parent becomes its native
    /// path (`HKEY_CURRENT_USER` is the caller's own hive).
    fn target(&self, parent: u64, path: &str) -> Result<(Option<Handle>, String), NtStatus> {
        if parent == 0 {
            return Ok((None, path.to_owned()));
        }
        // Handles are generational slab ids (at least 2^32), so only the four `HKEY_*` ids are
        // predefined keys.
        if let Some(base) = predefined_path(parent, &self.identity.sid) {
            let rel = path.trim_start_matches('\\');
            return Ok((None, if rel.is_empty() { base } else { format!("{base}\\{rel}") }));
        }
        Ok((Some(self.handle(parent)?), path.to_owned()))
    }

    /// The store, for hive operations: `Err` with the reply that refuses them when the caller
    /// may not (only root and the daemon's own user may) or there is no store.
    fn store_for_hives(&self) -> Result<&Home, Box<Reply>> {
        if !self.privileged {
            return Err(Box::new(Reply::Error {
                status: NtStatus::STATUS_PRIVILEGE_NOT_HELD,
                message: "loading, unloading and replacing hives needs root or the daemon's own user".into(),
            }));
        }
        self.home.as_deref().ok_or_else(|| {
            Box::new(Reply::Error {
                status: NtStatus::STATUS_NOT_IMPLEMENTED,
                message: "this registry has no store to load hives into".into(),
            })
        })
    }

    /// Performs one request.
    pub fn call(&mut self, request: Request) -> Reply {
        let reg = &self.registry;
        let c = &self.caller;
        match request {
            Request::Hello { version } if version == VERSION => Reply::Hello(self.identity.clone()),
            Request::Hello { version } => Reply::Error {
                status: NtStatus::STATUS_REVISION_MISMATCH,
                message: format!("this daemon speaks protocol version {VERSION}, not {version}"),
            },
            Request::OpenKey { parent, path, options, access, txn } => {
                let (root, path) = tri!(self.target(parent, &path));
                let opts = OpenOptions { desired_access: access, options, ..OpenOptions::default() };
                let h = match tri!(self.txn(txn)) {
                    Some(t) => reg.open_key_transacted(c, root, &path, &opts, t),
                    None => reg.open_key(c, root, &path, &opts),
                };
                let h = tri!(h);
                self.handles.insert(h.0);
                Reply::Handle(h.0)
            }
            Request::CreateKey { parent, path, class, options, access, txn, all_levels } => {
                let (root, path) = tri!(self.target(parent, &path));
                let opts = CreateOptions { desired_access: access, options, class, ..CreateOptions::default() };
                let r = match (tri!(self.txn(txn)), all_levels) {
                    (Some(t), true) => reg.create_key_path_transacted(c, root, &path, &opts, t),
                    (Some(t), false) => reg.create_key_transacted(c, root, &path, &opts, t),
                    (None, true) => reg.create_key_path(c, root, &path, &opts),
                    (None, false) => reg.create_key(c, root, &path, &opts),
                };
                let (h, disposition) = tri!(r);
                self.handles.insert(h.0);
                Reply::Created { handle: h.0, disposition }
            }
            Request::CloseKey { handle } => {
                let h = tri!(self.handle(handle));
                self.handles.remove(&handle);
                done(reg.close_key(c, h))
            }
            Request::DeleteKey { handle } => done(reg.delete_key(c, tri!(self.handle(handle)))),
            Request::SetValue { handle, name, value } => {
                done(reg.set_value(c, tri!(self.handle(handle)), &name, value))
            }
            Request::DeleteValue { handle, name } => done(reg.delete_value(c, tri!(self.handle(handle)), &name)),
            Request::QueryValue { handle, name } => {
                Reply::Value(tri!(reg.query_value(c, tri!(self.handle(handle)), &name)))
            }
            Request::EnumKey { handle, index } => {
                Reply::Subkey(tri!(reg.enumerate_key(c, tri!(self.handle(handle)), index)))
            }
            Request::EnumValue { handle, index } => {
                let (n, v) = tri!(reg.enumerate_value(c, tri!(self.handle(handle)), index));
                Reply::NamedValue(n, v)
            }
            Request::QueryKey { handle } => Reply::KeyInfo(tri!(reg.query_key(c, tri!(self.handle(handle))))),
            Request::QueryKeyName { handle } => Reply::Name(tri!(reg.query_key_name(c, tri!(self.handle(handle))))),
            Request::RenameKey { handle, new_name } => done(reg.rename_key(c, tri!(self.handle(handle)), &new_name)),
            Request::SetLastWriteTime { handle, time } => {
                done(reg.set_last_write_time(c, tri!(self.handle(handle)), time))
            }
            Request::FlushKey { handle } => done(reg.flush_key(c, tri!(self.handle(handle)))),
            Request::NotifyChangeKey { handle, subtree, filter } => {
                let h = tri!(self.handle(handle));
                let WatchId(w) = tri!(reg.notify_change_key(c, h, subtree, filter, self.notifier.clone()));
                Reply::Watch(w)
            }
            Request::SaveKey { handle } => Reply::Image(tri!(reg.save_key(c, tri!(self.handle(handle))))),
            Request::RestoreKey { handle, image } => done(reg.restore_key(c, tri!(self.handle(handle)), image)),
            Request::LoadHive { mount, file } => self.load(&mount, &file),
            Request::UnloadHive { mount } => self.unload(&mount),
            Request::LoadedHives => match self.home.as_deref().map(Home::loaded_hives) {
                Some(Ok(list)) => Reply::Hives(list.into_iter().map(|(m, f)| (m, f.display().to_string())).collect()),
                Some(Err(e)) => store_error(&e),
                None => Reply::Hives(Vec::new()),
            },
            Request::ReplaceKey { handle, new_file, old_file } => self.replace(handle, &new_file, &old_file),
            Request::BeginTxn => {
                let TxnId(t) = reg.begin_transaction();
                self.txns.insert(t);
                Reply::Txn(t)
            }
            Request::CommitTxn { txn } => {
                let t = tri!(self.txn(txn).and_then(|t| t.ok_or(NtStatus::STATUS_INVALID_TRANSACTION)));
                self.txns.remove(&txn);
                done(reg.commit_transaction(t))
            }
            Request::RollbackTxn { txn } => {
                let t = tri!(self.txn(txn).and_then(|t| t.ok_or(NtStatus::STATUS_INVALID_TRANSACTION)));
                self.txns.remove(&txn);
                done(reg.rollback_transaction(t))
            }
            Request::ReloadPolicy => match &self.host {
                Some(host) => match host.reload_policy() {
                    Ok(summary) => Reply::Text(summary),
                    Err(message) => Reply::Error { status: NtStatus::STATUS_INVALID_PARAMETER, message },
                },
                None => err(NtStatus::STATUS_NOT_IMPLEMENTED),
            },
            Request::Ping => Reply::Done,
            Request::BoxCreate { .. }
            | Request::BoxList
            | Request::BoxDelete { .. }
            | Request::BoxDiscard { .. }
            | Request::BoxDiff { .. }
            | Request::BoxExport { .. }
            | Request::BoxCommit { .. } => self.box_request(request),
            // Subscriptions and decisions belong to the connection, not the registry.
            _ => err(NtStatus::STATUS_NOT_IMPLEMENTED),
        }
    }

    /// The box requests: refused to boxed callers (a box may not manage boxes, its own
    /// included) and to callers other than root and the daemon's own user.
    fn box_request(&self, request: Request) -> Reply {
        if let Some(b) = &self.identity.box_name {
            return Reply::Error {
                status: NtStatus::STATUS_ACCESS_DENIED,
                message: format!("a process in box {b} may not manage boxes"),
            };
        }
        if !self.privileged {
            return Reply::Error {
                status: NtStatus::STATUS_PRIVILEGE_NOT_HELD,
                message: "managing boxes needs root or the daemon's own user".into(),
            };
        }
        let Some(boxes) = self.boxes.as_deref() else {
            return Reply::Error {
                status: NtStatus::STATUS_NOT_IMPLEMENTED,
                message: "this registry has no store to keep boxes in".into(),
            };
        };
        let reg = &self.registry;
        // Diff, export and commit read the box's hive: it is mounted first.
        let r = match request {
            Request::BoxCreate { name, ephemeral } => boxes.create(&name, ephemeral).map(|()| Reply::Done),
            Request::BoxList => boxes.list().and_then(|list| {
                serde_json::to_string(&list).map(Reply::Text).map_err(|e| BoxError {
                    status: NtStatus::STATUS_UNSUCCESSFUL,
                    message: format!("cannot write the box list as JSON: {e}"),
                })
            }),
            Request::BoxDelete { name } => boxes.delete(&name).map(|()| Reply::Done),
            Request::BoxDiscard { name } => boxes.discard(&name).map(|()| Reply::Done),
            Request::BoxDiff { name, json } => boxes.ensure_mounted(&name).and_then(|()| {
                let text = if json { changes::diff_json(reg, &name) } else { changes::diff_text(reg, &name) };
                let text = text.map_err(change_error)?;
                let files = boxes.file_changes(&name)?;
                Ok(Reply::Text(crate::boxes::with_files(text, &files, json)))
            }),
            Request::BoxExport { name } => boxes
                .ensure_mounted(&name)
                .and_then(|()| changes::export_reg(reg, &name).map(Reply::Text).map_err(change_error)),
            Request::BoxCommit { name, key, force } => boxes.ensure_mounted(&name).and_then(|()| {
                boxes.with_frozen(&name, || {
                    let mut report =
                        changes::commit(reg, &self.caller, &boxes.boxes_dir(), &name, key.as_deref(), force)
                            .map_err(change_error)?;
                    // A commit of the whole box takes its files too (`--key` is about the
                    // registry only; `hivebox box commit --path` commits files only).
                    if key.is_none() {
                        report.push_str(&boxes.commit_files(&name, None)?);
                    }
                    Ok(Reply::Text(report))
                })
            }),
            _ => return err(NtStatus::STATUS_INVALID_PARAMETER),
        };
        r.unwrap_or_else(|e| Reply::Error { status: e.status, message: e.message })
    }

    fn load(&self, mount: &str, file: &str) -> Reply {
        let home = match self.store_for_hives() {
            Ok(h) => h,
            Err(r) => return *r,
        };
        match home.load_hive(mount, Path::new(file)) {
            Ok(()) => Reply::Done,
            Err(e) => store_error(&e),
        }
    }

    fn unload(&self, mount: &str) -> Reply {
        let home = match self.store_for_hives() {
            Ok(h) => h,
            Err(r) => return *r,
        };
        match home.unload_hive(mount) {
            Ok(()) => Reply::Done,
            Err(e) => store_error(&e),
        }
    }

    fn replace(&self, handle: u64, new_file: &str, old_file: &str) -> Reply {
        let home = match self.store_for_hives() {
            Ok(h) => h,
            Err(r) => return *r,
        };
        let h = tri!(self.handle(handle));
        let image: KeyImage = match regf::Hive::open(Path::new(new_file)).and_then(|h| h.to_image()) {
            Ok(i) => i,
            Err(e) => {
                return Reply::Error {
                    status: NtStatus::STATUS_REGISTRY_CORRUPT,
                    message: format!("{new_file}: cannot read the hive: {e}"),
                };
            }
        };
        let mut failure = None;
        let staged = self.registry.replace_key(&self.caller, h, new_file, old_file, |root| {
            home.stage_replacement(root, &image, Path::new(new_file), Path::new(old_file)).map_err(|e| {
                let status = match &e {
                    StoreError::Replace { .. } => NtStatus::STATUS_INVALID_PARAMETER,
                    StoreError::Corrupt { .. } => NtStatus::STATUS_REGISTRY_CORRUPT,
                    _ => NtStatus::STATUS_REGISTRY_IO_FAILED,
                };
                failure = Some(e);
                status
            })
        });
        match (staged, failure) {
            (Ok(()), _) => Reply::Done,
            (Err(_), Some(e)) => store_error(&e),
            (Err(status), None) => err(status),
        }
    }
}

fn done(r: Result<(), NtStatus>) -> Reply {
    match r {
        Ok(()) => Reply::Done,
        Err(s) => err(s),
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        for t in self.txns.drain() {
            let _ = self.registry.rollback_transaction(TxnId(t));
        }
        for h in self.handles.drain() {
            let _ = self.registry.close_key(&self.caller, Handle(h));
        }
    }
}
