//! The Configuration Manager: handles, key objects, the callback list and its dispatch.
//!
//! [`Registry`] is the whole registry: the key tree, the storage it persists to, the open
//! handles and the altitude-ordered list of [`RegistryCallback`]s. It is shared between
//! threads (`Clone` is a cheap reference): callbacks run without any registry lock held, so a
//! callback may block (waiting for a verdict, say) and delay only the operation it filters.
//!
//! Dispatch follows `reference/cm-callbacks.md` section 2.3 literally; see `dispatch.rs`.

mod callback;
mod dispatch;
mod hives;
mod ops;
mod slab;
mod txn;
mod watch;

pub use callback::{
    Argument, CallContext, CallbackCx, CreateKeyInfo, Mode, ObjectContext, Operation, PostInfo, PreInfo,
    RegistryCallback,
};
pub(crate) use ops::LINK_VALUE;
pub use ops::{CreateOptions, OpenOptions};
pub use txn::{Enlistment, TxnId, TxnOutcome};
pub use watch::{WatchId, WatchNotifier};

use crate::altitude::Altitude;
use crate::storage::{KeyImage, Storage};
use crate::tree::{KeyId, Tree};
use crate::{Clock, NtStatus};
use parking_lot::{Condvar, Mutex, RwLock};
use slab::Slab;
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

/// A registration cookie (`LARGE_INTEGER Cookie`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Cookie(pub u64);

/// A key object: one open instance of a key (what a handle refers to).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct ObjectId(pub u64);

/// A handle to a key object, with the access granted at open.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Handle(pub u64);

/// The security identity of a caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// The user's SID (what `HKCU` means for this caller).
    pub user_sid: String,
    /// The LocalSystem account: granted rights reserved to SYSTEM.
    pub system: bool,
}

/// Facts about the calling process, decided by whoever hosts the registry from kernel facts.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Executable path.
    pub image: String,
    /// The box the process runs in, if any.
    pub box_name: Option<String>,
    /// Process class flags (WdFilter's `ProcessFlags`, for filters such as protection).
    pub flags: u32,
    /// Process rules (WdFilter's `ProcessRules`).
    pub rules: u32,
    /// The user id, when the kernel told it.
    pub uid: Option<u32>,
}

/// Who performs an operation: processor mode, token and process, and (for calls issued from
/// inside a callback) the callbacks currently running, so dispatch starts below them.
#[derive(Clone)]
pub struct Caller {
    /// Kernel or user mode.
    pub mode: Mode,
    /// The token access is checked against.
    pub token: Arc<Token>,
    /// The process.
    pub process: Arc<ProcessInfo>,
    pub(crate) stack: Vec<Arc<Entry>>,
    /// Where the syncs of this caller's changes go instead of being waited for.
    pub(crate) deferred: Option<Arc<DeferredSyncs>>,
}

/// The syncs a caller waits for itself: a server answering a batch of pipelined requests
/// performs them all, then waits once, so its writes share one `fdatasync` instead of taking
/// one each. An operation of such a caller returns as soon as its change is written to the
/// store's log and applied; it is durable once every [`Pending`](crate::Pending) taken from
/// here has been waited on, and must not be acknowledged before.
#[derive(Debug, Default)]
pub struct DeferredSyncs(Mutex<Vec<crate::storage::Pending>>);

impl DeferredSyncs {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The syncs collected since the last call.
    pub fn take(&self) -> Vec<crate::storage::Pending> {
        std::mem::take(&mut *self.0.lock())
    }
}

impl fmt::Debug for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Caller")
            .field("mode", &self.mode)
            .field("token", &self.token)
            .field("process", &self.process)
            .field("nested_in", &self.stack.iter().map(|e| e.cookie).collect::<Vec<_>>())
            .finish()
    }
}

impl Caller {
    /// A user-mode caller.
    pub fn user(token: Token, process: ProcessInfo) -> Self {
        Self { mode: Mode::User, token: Arc::new(token), process: Arc::new(process), stack: Vec::new(), deferred: None }
    }

    /// The registry's own kernel-mode identity (LocalSystem).
    pub fn system() -> Self {
        Self {
            mode: Mode::Kernel,
            token: Arc::new(Token { user_sid: "S-1-5-18".into(), system: true }),
            process: Arc::new(ProcessInfo { pid: 0, image: "System".into(), ..ProcessInfo::default() }),
            stack: Vec::new(),
            deferred: None,
        }
    }

    /// This caller, with the syncs of its changes left to `syncs` (see [`DeferredSyncs`]).
    pub fn with_deferred_syncs(mut self, syncs: Arc<DeferredSyncs>) -> Self {
        self.deferred = Some(syncs);
        self
    }

    /// True when this call was issued from inside a callback.
    pub fn is_nested(&self) -> bool {
        !self.stack.is_empty()
    }
}

/// Switches for behaviour that differs between documentation and practice.
#[derive(Clone, Debug)]
pub struct RegistryOptions {
    /// Honour a post callback's `return_status` even when it does not return
    /// `STATUS_CALLBACK_BYPASS` (the decompiled kernel's behaviour; the documented contract,
    /// the default, ignores it).
    pub return_status_without_bypass: bool,
    /// The most call records (one per callback per operation in flight) that may exist at
    /// once; past it the pre phase fails with `STATUS_INSUFFICIENT_RESOURCES`, as a failed
    /// pool allocation does in the kernel. `usize::MAX` (the default) means no limit, and
    /// then nothing is counted.
    pub max_call_records: usize,
}

impl Default for RegistryOptions {
    fn default() -> Self {
        Self { return_status_without_bypass: false, max_call_records: usize::MAX }
    }
}

/// One registered callback.
pub(crate) struct Entry {
    pub(crate) cookie: Cookie,
    pub(crate) altitude: Altitude,
    /// Registration order, which breaks ties between legacy registrations at 425000.
    pub(crate) seq: u64,
    pub(crate) callback: Arc<dyn RegistryCallback>,
    pub(crate) unregistering: AtomicBool,
    /// The callback-list generations this entry is in. An operation holds the generation it
    /// dispatches through, so `unregister` waits until every one of these is gone.
    pub(crate) generations: Mutex<Vec<Weak<Generation>>>,
}

/// Wakes `unregister` when a generation of the callback list is dropped.
#[derive(Default)]
pub(crate) struct Idle {
    lock: Mutex<()>,
    cv: Condvar,
}

/// The registry's change counter: it grows with every change to any key (readers that cache
/// what they read compare it). Kept under the state lock and mirrored for lock-free reads.
#[derive(Debug, Default)]
pub(crate) struct Version {
    n: u64,
    shared: Arc<AtomicU64>,
}

impl Version {
    pub(crate) fn get(&self) -> u64 {
        self.n
    }

    pub(crate) fn bump(&mut self) {
        self.n += 1;
        self.shared.store(self.n, Ordering::Release);
    }
}

/// One published version of the callback list, in dispatch order. Operations take a reference
/// to the current generation for their whole dispatch (one reference count per operation,
/// rather than one per callback), and registration publishes a new generation.
pub(crate) struct Generation {
    entries: Vec<Arc<Entry>>,
    idle: Arc<Idle>,
}

impl std::ops::Deref for Generation {
    type Target = [Arc<Entry>];

    fn deref(&self) -> &[Arc<Entry>] {
        &self.entries
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        let _guard = self.idle.lock.lock();
        self.idle.cv.notify_all();
    }
}

impl Entry {
    /// True if `self` comes after `other` in dispatch order.
    fn after(&self, other: &Entry) -> bool {
        self.altitude < other.altitude || (self.altitude == other.altitude && self.seq > other.seq)
    }
}

pub(crate) struct KeyObject {
    pub(crate) key: KeyId,
    pub(crate) handles: u32,
    /// Pointer references (a result object in transit, a filter's reference).
    pub(crate) refs: u32,
    pub(crate) contexts: Vec<(Cookie, ObjectContext)>,
    pub(crate) permanent: bool,
    /// The transaction the object was opened in (its key is in that transaction's tree).
    pub(crate) txn: Option<u64>,
}

pub(crate) struct HandleEntry {
    pub(crate) object: ObjectId,
    pub(crate) access: u32,
}

pub(crate) struct State {
    pub(crate) tree: Tree,
    pub(crate) objects: Slab<KeyObject>,
    pub(crate) handles: Slab<HandleEntry>,
    pub(crate) watches: Slab<watch::Watch>,
    /// Hive `i` is `hives[i - 1]`; hive 0 (master keys) has no store.
    pub(crate) hives: Vec<Option<HiveSlot>>,
    /// Changes the operation in progress wrote but has not yet seen durable (see `release`).
    pub(crate) pending: Vec<crate::storage::Pending>,
    /// Active transactions.
    pub(crate) txns: std::collections::HashMap<u64, txn::Txn>,
    /// The transaction whose tree is swapped in for the operation in progress.
    pub(crate) recording: Option<u64>,
    pub(crate) next_txn: u64,
    /// Counts persistent changes made outside transactions (a commit's fast path).
    pub(crate) version: Version,
}

/// A mounted hive: its root key and its store.
pub(crate) struct HiveSlot {
    pub(crate) root: KeyId,
    pub(crate) storage: Box<dyn Storage>,
    /// `NtReplaceKey` staged a new file for it (`HIVE_HAS_BEEN_REPLACED`): a second replace
    /// fails until the hive is loaded again.
    pub(crate) replaced: bool,
}

/// A hive to mount when building a registry: where, its contents, and its store.
pub struct HiveMount {
    /// The native path it is mounted at, e.g. `\REGISTRY\MACHINE\SOFTWARE`.
    pub path: String,
    /// The hive's contents (the root's own name is replaced by the last path component).
    pub image: KeyImage,
    /// Where its changes go.
    pub storage: Box<dyn Storage>,
}

impl fmt::Debug for HiveMount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HiveMount").field("path", &self.path).finish()
    }
}

pub(crate) struct Inner {
    pub(crate) state: Mutex<State>,
    /// The change counter, readable without the state lock.
    pub(crate) version: Arc<AtomicU64>,
    pub(crate) callbacks: RwLock<Arc<Generation>>,
    pub(crate) registration: Mutex<u64>,
    pub(crate) next_cookie: AtomicU64,
    pub(crate) idle: Arc<Idle>,
    pub(crate) live_records: AtomicUsize,
    pub(crate) contexts_in_use: AtomicUsize,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) options: RegistryOptions,
    pub(crate) root_object: ObjectId,
}

/// Splits a mount path into its (existing) parent key and the new key's name.
pub(crate) fn mount_point(tree: &Tree, path: &str) -> Result<(KeyId, String), String> {
    let rest = path
        .get(..9)
        .filter(|p| p.eq_ignore_ascii_case("\\REGISTRY"))
        .and_then(|_| path.get(9..))
        .and_then(|r| r.strip_prefix('\\'))
        .ok_or_else(|| format!("mount path {path:?} does not start with \\REGISTRY\\"))?;
    let comps = crate::name::split_path(rest).map_err(|e| e.to_string())?;
    let (name, parents) = comps.split_last().ok_or_else(|| format!("mount path {path:?} names no key"))?;
    let mut parent = tree.root();
    for c in parents {
        parent = tree.child(parent, c).ok_or_else(|| format!("mount path {path:?}: {c} does not exist"))?;
    }
    Ok((parent, (*name).to_owned()))
}

/// The registry: key tree, storage, handles and filter stack. Cloning shares it.
#[derive(Clone)]
pub struct Registry {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("callbacks", &self.inner.callbacks.read().len()).finish()
    }
}

impl Registry {
    /// A registry whose whole tree (`image`, from `\REGISTRY` down) is one hive persisting
    /// to `storage`. The volatile `HARDWARE` key is created afresh, as at every boot.
    pub fn new(
        image: &KeyImage,
        storage: Box<dyn Storage>,
        clock: Arc<dyn Clock>,
        options: RegistryOptions,
    ) -> Result<Self, String> {
        let tree = Tree::from_image(image)?;
        Ok(Self::from_tree(tree, storage, clock, options))
    }

    /// [`Registry::new`] over an already-built tree.
    pub fn from_tree(
        mut tree: Tree,
        storage: Box<dyn Storage>,
        clock: Arc<dyn Clock>,
        options: RegistryOptions,
    ) -> Self {
        let ids: Vec<KeyId> = (0..tree.len()).map(|i| KeyId(i as u64)).collect();
        for id in ids {
            tree.node_mut(id).hive = 1;
        }
        let root = tree.root();
        let hives = vec![Some(HiveSlot { root, storage, replaced: false })];
        Self::assemble(tree, hives, clock, options)
    }

    /// A registry of master keys (`\REGISTRY`, `MACHINE`, `USER`, kept in memory) with each
    /// hive mounted at its path, as Windows builds it at boot. Creating keys or values
    /// directly in a master key is refused (`STATUS_ACCESS_DENIED`), as on Windows.
    pub fn with_hives(mounts: Vec<HiveMount>, clock: Arc<dyn Clock>, options: RegistryOptions) -> Result<Self, String> {
        let now = clock.now();
        let mut tree = Tree::new(now);
        let root = tree.root();
        for master in ["MACHINE", "USER", "A"] {
            tree.insert_child(root, master, None, now);
        }
        let mut hives = Vec::new();
        for mount in mounts {
            let (parent, name) = mount_point(&tree, &mount.path)?;
            let hive = hives.len() as u32 + 1;
            let id = tree.graft(parent, &name, mount.image, hive)?;
            hives.push(Some(HiveSlot { root: id, storage: mount.storage, replaced: false }));
        }
        Ok(Self::assemble(tree, hives, clock, options))
    }

    fn assemble(mut tree: Tree, hives: Vec<Option<HiveSlot>>, clock: Arc<dyn Clock>, options: RegistryOptions) -> Self {
        crate::fresh::add_volatile_keys(&mut tree, clock.now());
        let mut objects = Slab::default();
        let root = tree.root();
        let root_object = ObjectId(objects.insert(KeyObject {
            key: root,
            handles: 1,
            refs: 1,
            contexts: Vec::new(),
            permanent: true,
            txn: None,
        }));
        let state = State {
            tree,
            objects,
            handles: Slab::default(),
            watches: Slab::default(),
            hives,
            pending: Vec::new(),
            txns: Default::default(),
            recording: None,
            next_txn: 0,
            version: Version::default(),
        };
        let seed = clock.now();
        let idle = Arc::new(Idle::default());
        let version = state.version.shared.clone();
        Self {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                version,
                callbacks: RwLock::new(Arc::new(Generation { entries: Vec::new(), idle: idle.clone() })),
                registration: Mutex::new(0),
                next_cookie: AtomicU64::new(seed | 1),
                idle,
                live_records: AtomicUsize::new(0),
                contexts_in_use: AtomicUsize::new(0),
                clock,
                options,
                root_object,
            }),
        }
    }

    /// A fresh in-memory registry with the standard layout and hives (scratch use and tests).
    pub fn fresh_in_memory(clock: Arc<dyn Clock>) -> Self {
        Self::fresh_with_options(clock, RegistryOptions::default())
    }

    /// [`Registry::fresh_in_memory`] with options.
    pub fn fresh_with_options(clock: Arc<dyn Clock>, options: RegistryOptions) -> Self {
        let now = clock.now();
        let mounts = crate::fresh::fresh_hives(now)
            .into_iter()
            .map(|(path, image)| HiveMount { path, image, storage: Box::new(crate::storage::MemoryStorage) })
            .collect();
        // Invariant: `fresh_hives` builds valid, unique names under existing master keys
        // (every test builds one).
        Self::with_hives(mounts, clock, options).expect("the fresh hives are well formed")
    }

    /// The `\REGISTRY` root object (the `RootObject` of absolute opens).
    pub fn root_object(&self) -> ObjectId {
        self.inner.root_object
    }

    /// A copy of the persistent tree (for saving and checkpoints).
    pub fn image(&self) -> KeyImage {
        self.inner.state.lock().tree.image()
    }

    /// Runs `f` with read access to the key tree (for bulk readers such as export).
    pub fn with_tree<R>(&self, f: impl FnOnce(&Tree) -> R) -> R {
        f(&self.inner.state.lock().tree)
    }

    /// [`Registry::with_tree`], also given the registry's change counter (it grows with every
    /// change to any key), for readers that cache what they read.
    pub(crate) fn with_tree_version<R>(&self, f: impl FnOnce(&Tree, u64) -> R) -> R {
        let st = self.inner.state.lock();
        f(&st.tree, st.version.get())
    }

    /// Runs `f` under one lock with the tree, the key behind `object` (`None` for an unknown
    /// object) and the change counter (for filters of this crate).
    pub(crate) fn with_object<R>(&self, object: ObjectId, f: impl FnOnce(&Tree, Option<KeyId>, u64) -> R) -> R {
        let st = self.inner.state.lock();
        let key = st.objects.get(object.0).map(|o| o.key);
        f(&st.tree, key, st.version.get())
    }

    /// The change counter: it grows with every change to any key.
    pub(crate) fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// The key behind an object (for filters of this crate that only need its identity).
    pub(crate) fn object_key(&self, object: ObjectId) -> Option<KeyId> {
        self.inner.state.lock().objects.get(object.0).map(|o| o.key)
    }

    /// Number of open handles.
    pub fn open_handles(&self) -> usize {
        self.inner.state.lock().handles.len()
    }

    /// `CmRegisterCallbackEx`: registers at a decimal altitude. An altitude already taken
    /// fails with `STATUS_FLT_INSTANCE_ALTITUDE_COLLISION`.
    pub fn register(&self, altitude: &str, callback: Arc<dyn RegistryCallback>) -> Result<Cookie, NtStatus> {
        let altitude = Altitude::parse(altitude).map_err(|_| NtStatus::STATUS_INVALID_PARAMETER)?;
        self.insert_callback(altitude, callback, false)
    }

    /// `CmRegisterCallback`: registers at the legacy altitude 425000, after any earlier legacy
    /// registrations there.
    pub fn register_legacy(&self, callback: Arc<dyn RegistryCallback>) -> Cookie {
        // Invariant: `insert_callback` fails only on an Ex altitude collision, and `legacy` skips that check.
        self.insert_callback(Altitude::legacy(), callback, true).expect("legacy registrations never collide")
    }

    fn insert_callback(
        &self,
        altitude: Altitude,
        callback: Arc<dyn RegistryCallback>,
        legacy: bool,
    ) -> Result<Cookie, NtStatus> {
        let mut seq = self.inner.registration.lock();
        let mut list: Vec<Arc<Entry>> = self.inner.callbacks.read().iter().cloned().collect();
        if !legacy && list.iter().any(|e| e.altitude == altitude) {
            return Err(NtStatus::STATUS_FLT_INSTANCE_ALTITUDE_COLLISION);
        }
        *seq += 1;
        let cookie = Cookie(self.inner.next_cookie.fetch_add(2, Ordering::Relaxed));
        let entry = Arc::new(Entry {
            cookie,
            altitude,
            seq: *seq,
            callback,
            unregistering: AtomicBool::new(false),
            generations: Mutex::new(Vec::new()),
        });
        let pos = list.iter().position(|e| !entry.after(e)).unwrap_or(list.len());
        list.insert(pos, entry);
        self.publish(list);
        Ok(cookie)
    }

    /// Makes `entries` the current callback list. Called with `registration` held.
    fn publish(&self, entries: Vec<Arc<Entry>>) {
        let generation = Arc::new(Generation { entries, idle: self.inner.idle.clone() });
        for entry in generation.iter() {
            let mut generations = entry.generations.lock();
            generations.retain(|g| g.strong_count() > 0);
            generations.push(Arc::downgrade(&generation));
        }
        *self.inner.callbacks.write() = generation;
    }

    /// `CmUnRegisterCallback`: removes the callback, waits until no operation is inside it,
    /// then sends `RegNtCallbackObjectContextCleanup` for every object context it still holds.
    /// It waits for every operation that is dispatching through a list containing the
    /// callback, so it must not be called from inside any callback.
    pub fn unregister(&self, cookie: Cookie) -> Result<(), NtStatus> {
        let entry = {
            let _seq = self.inner.registration.lock();
            let list = self.inner.callbacks.read().clone();
            let entry = list.iter().find(|e| e.cookie == cookie).cloned().ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
            entry.unregistering.store(true, Ordering::SeqCst);
            let rest: Vec<Arc<Entry>> = list.iter().filter(|e| e.cookie != cookie).cloned().collect();
            drop(list);
            self.publish(rest);
            entry
        };
        // Wait until no operation holds a generation that contains the entry. A generation's
        // drop notifies under `idle.lock`, and the check below runs under it, so no wake-up is lost.
        {
            let mut guard = self.inner.idle.lock.lock();
            while entry.generations.lock().iter().any(|g| g.strong_count() > 0) {
                self.inner.idle.cv.wait(&mut guard);
            }
        }
        let released: Vec<(ObjectId, ObjectContext)> = {
            let mut st = self.inner.state.lock();
            let mut out = Vec::new();
            let ids: Vec<u64> = st.objects.iter().map(|(id, _)| id).collect();
            for id in ids {
                if let Some(obj) = st.objects.get_mut(id)
                    && let Some(pos) = obj.contexts.iter().position(|(c, _)| *c == cookie)
                {
                    out.push((ObjectId(id), obj.contexts.remove(pos).1));
                }
            }
            out
        };
        self.inner.contexts_in_use.fetch_sub(released.len(), Ordering::Relaxed);
        let caller = Caller::system();
        for (object, object_context) in released {
            let cx = CallbackCx { registry: self, caller: &caller, entry: &entry };
            entry.callback.notify(
                &cx,
                crate::RegNotifyClass::RegNtCallbackObjectContextCleanup,
                Argument::ContextCleanup { object, object_context },
            );
        }
        Ok(())
    }

    /// The registered callbacks in dispatch order: cookie and altitude.
    pub fn callbacks(&self) -> Vec<(Cookie, String)> {
        self.inner.callbacks.read().iter().map(|e| (e.cookie, e.altitude.as_str().to_owned())).collect()
    }

    pub(crate) fn set_object_context(
        &self,
        cookie: Cookie,
        object: ObjectId,
        context: ObjectContext,
    ) -> Result<Option<ObjectContext>, NtStatus> {
        let mut st = self.inner.state.lock();
        let obj = st.objects.get_mut(object.0).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        if let Some(slot) = obj.contexts.iter_mut().find(|(c, _)| *c == cookie) {
            return Ok(Some(std::mem::replace(&mut slot.1, context)));
        }
        obj.contexts.push((cookie, context));
        self.inner.contexts_in_use.fetch_add(1, Ordering::Relaxed);
        Ok(None)
    }

    pub(crate) fn object_context(&self, cookie: Cookie, object: Option<ObjectId>) -> Option<ObjectContext> {
        if self.inner.contexts_in_use.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let st = self.inner.state.lock();
        let obj = st.objects.get(object?.0)?;
        obj.contexts.iter().find(|(c, _)| *c == cookie).map(|(_, ctx)| ctx.clone())
    }

    /// `CmCallbackGetKeyObjectIDEx`: the key's id (the same for every object on the key, and
    /// across renames) and its current full name.
    pub fn key_object_id(&self, object: ObjectId) -> Result<(KeyId, String), NtStatus> {
        let st = self.lock_for(object)?;
        let obj = st.objects.get(object.0).ok_or(NtStatus::STATUS_INVALID_PARAMETER)?;
        Ok((obj.key, st.tree.path(obj.key)))
    }

    /// `ObOpenObjectByPointer`: a new handle with `access` on a referenced key object (what a
    /// callback uses to query the key an operation is about). Close it with
    /// [`Registry::close_key`].
    pub fn open_object_by_pointer(&self, object: ObjectId, access: u32) -> Result<Handle, NtStatus> {
        let mut st = self.inner.state.lock();
        let obj = st.objects.get_mut(object.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?;
        obj.handles += 1;
        Ok(Handle(st.handles.insert(HandleEntry { object, access })))
    }

    /// The object a handle refers to, with a new pointer reference.
    pub fn reference_object_by_handle(&self, handle: Handle) -> Result<ObjectId, NtStatus> {
        let mut st = self.inner.state.lock();
        let object = st.handles.get(handle.0).ok_or(NtStatus::STATUS_INVALID_HANDLE)?.object;
        if let Some(obj) = st.objects.get_mut(object.0) {
            obj.refs += 1;
        }
        Ok(object)
    }

    /// Drops a pointer reference; the object goes when no handle or reference is left, and the
    /// callbacks get `RegNtCallbackObjectContextCleanup` for the contexts it still held.
    pub fn dereference_object(&self, object: ObjectId) {
        let contexts = {
            let mut st = self.inner.state.lock();
            let Some(obj) = st.objects.get_mut(object.0) else { return };
            obj.refs = obj.refs.saturating_sub(1);
            if obj.refs != 0 || obj.handles != 0 || obj.permanent {
                return;
            }
            match st.objects.remove(object.0) {
                Some(gone) if !gone.contexts.is_empty() => gone.contexts,
                _ => return,
            }
        };
        // The object goes without a last handle close (a filter dropped the result object of
        // a create or open it failed): no close carries the cleanup, so it is sent here.
        // Dropping the contexts silently would leak whatever the callbacks keep in them.
        self.inner.contexts_in_use.fetch_sub(contexts.len(), Ordering::Relaxed);
        self.send_cleanups(&Caller::system(), object, contexts);
    }

    /// The object behind a handle.
    pub fn handle_object(&self, handle: Handle) -> Result<ObjectId, NtStatus> {
        let st = self.inner.state.lock();
        st.handles.get(handle.0).map(|h| h.object).ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    /// The access granted to a handle.
    pub fn handle_access(&self, handle: Handle) -> Result<u32, NtStatus> {
        let st = self.inner.state.lock();
        st.handles.get(handle.0).map(|h| h.access).ok_or(NtStatus::STATUS_INVALID_HANDLE)
    }

    pub(crate) fn now(&self) -> u64 {
        self.inner.clock.now()
    }
}
