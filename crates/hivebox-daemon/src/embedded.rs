//! The registry in-process, for when no daemon runs: the store opened by this process (its
//! lock taken), the isolation and protection filters registered, the home's boxes, and one
//! [`Session`] answering requests exactly as the daemon's would, as this process.
//!
//! Ephemeral boxes are not watched here (a command is short-lived): the daemon removes them.

use crate::boxes::BoxManager;
use crate::identity;
use crate::protection::Protection;
use crate::session::Session;
use anyhow::{Context, Result};
use hivebox_client::Transport;
use hivebox_core::Registry;
use hivebox_core::isolate::IsolationFilter;
use hivebox_hive::{Home, SystemClock};
use hivebox_proto::{Identity, Reply, Request, VERSION};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;

/// The registry of a home, served in-process.
pub struct Embedded {
    session: Mutex<Session>,
    identity: Identity,
    protection: Option<Protection>,
    home: Option<Arc<Home>>,
    boxes: Option<Arc<BoxManager>>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("identity", &self.identity).finish_non_exhaustive()
    }
}

impl Embedded {
    /// Opens the store of `home` (waiting for its lock), mounts this user's hive, registers
    /// the isolation filter and the home's protection policy. If this process is in a box,
    /// that box is mounted and served first; a box that cannot be is an error (this process
    /// is never served the host registry instead).
    pub fn open(home: &Path) -> Result<Self> {
        // Another process may hold the store (a command running at the same time, or a
        // daemon whose socket this process cannot reach): say so, then wait for it.
        let store = match hivebox_hive::open_home(home, Arc::new(SystemClock), false) {
            Err(hivebox_hive::StoreError::Locked { path, pid }) => {
                let who = pid.map_or_else(|| "another process".to_owned(), |p| format!("process {p}"));
                eprintln!("hivebox: waiting for the registry store, which {who} holds ({})", path.display());
                hivebox_hive::open_home(home, Arc::new(SystemClock), true)
            }
            other => other,
        }
        .map_err(|e| anyhow::anyhow!("the registry store could not be opened: {e}"))?;
        let me = identity::this_process().context("cannot learn who this process is")?;
        store
            .ensure_user_hive(&me.sid())
            .map_err(|e| anyhow::anyhow!("the user's hive (HKEY_CURRENT_USER) could not be opened: {e}"))?;
        let isolation = IsolationFilter::new();
        isolation
            .register(&store.registry)
            .map_err(|status| anyhow::anyhow!("cannot register the isolation filter: {status}"))?;
        let protection = Protection::install(home, &store.registry, Arc::new(SystemClock), None)?;
        let registry = store.registry.clone();
        let store = Arc::new(store);
        let boxes = BoxManager::new(store.clone(), isolation);
        if let Err(e) = boxes.recover_commits() {
            eprintln!("hivebox: {e}");
        }
        if let Some(b) = &me.box_name {
            boxes.ensure_mounted(b).map_err(|e| anyhow::anyhow!("box {b} cannot be served: {e}"))?;
        }
        let mut e = Embedded::with_registry(registry, Some(store), &me);
        e.session.get_mut().set_host(Arc::new(NoReload));
        e.session.get_mut().set_boxes(boxes.clone());
        e.protection = Some(protection);
        e.boxes = Some(boxes);
        Ok(e)
    }

    /// Serves `registry` (with the store `home`, for hive loading) as the process `me`.
    pub fn with_registry(registry: Registry, home: Option<Arc<Home>>, me: &identity::Peer) -> Self {
        let identity = Identity {
            version: VERSION,
            pid: me.pid,
            uid: me.uid,
            gid: me.gid,
            sid: me.sid(),
            image: me.image.clone(),
            box_name: me.box_name.clone(),
            flags: 0,
        };
        let session = Session::new(registry, home.clone(), me.caller(), identity.clone(), true);
        Embedded { session: Mutex::new(session), identity, protection: None, home, boxes: None }
    }

    /// The store, if this registry has one.
    pub fn home(&self) -> Option<&Arc<Home>> {
        self.home.as_ref()
    }

    /// The home's boxes (`None` for a registry served with [`Embedded::with_registry`]).
    pub fn boxes(&self) -> Option<&Arc<BoxManager>> {
        self.boxes.as_ref()
    }

    /// Closes what is still open and writes the protection events; returns how many.
    pub fn finish(self) -> Result<u64> {
        let Embedded { session, protection, boxes, .. } = self;
        drop(session);
        drop(boxes);
        match protection {
            Some(p) => p.finish(),
            None => Ok(0),
        }
    }
}

/// In-process, the policy is read at each start; there is no running policy to reload.
struct NoReload;

impl crate::session::Host for NoReload {
    fn reload_policy(&self) -> Result<String, String> {
        Err("no daemon is running; the policy file is read again by every command".into())
    }
}

impl Transport for Embedded {
    fn call(&self, request: Request) -> Reply {
        self.session.lock().call(request)
    }

    fn identity(&self) -> &Identity {
        &self.identity
    }
}
