//! The registry isolation filter: a boxed program's registry writes land in its box's private
//! hive, never in the real keys, and it reads the merge of the two.
//!
//! Built as `seeds/registry-isolation-cm-callbacks.txt` describes it: a callback low in the
//! stack ([`ALTITUDE`], below the protection filter, so every filter above judges the path the
//! caller named) that performs redirected operations itself and completes them with
//! `STATUS_CALLBACK_BYPASS`. A key of the view that exists only in the box is a real key of the
//! box's hive (mounted at `\REGISTRY\A\<box>`, see `docs/boxes.md`), whose object the caller's
//! handle then points to.
//!
//! - Opens and creates resolve the path in the view: the private key if the box has one (a
//!   deleted mark hides the path), else the base key. A key the box never changed is opened
//!   by the CM itself, untouched; opens and creates relative to a box key stay in the box.
//! - Reads of a key the box changed are answered from the merge: the box's values over the
//!   base's, tombstones hiding, subkeys merged in the registry's sorted order, counts and
//!   lengths agreeing with the enumeration.
//! - Writes copy up only the key path (empty keys), then write the value, tombstone or mark.
//! - Boxed callers cannot load, unload, restore or replace hives; user-mode host callers
//!   cannot open anything below `\REGISTRY\A` by name (as Windows guards application hives).
//!
//! What it does not do: transactions for boxed callers (refused with
//! `STATUS_NOT_IMPLEMENTED`); a handle to a key the box renames or deletes afterwards reports
//! `STATUS_KEY_DELETED` rather than following the key.

pub mod markers;
mod view;

use crate::access::{KEY_ALL_ACCESS, MAXIMUM_ALLOWED, OBJ_OPENLINK, REG_OPTION_OPEN_LINK, map_generic};
use crate::cm::{Argument, CallbackCx, Cookie, CreateKeyInfo, Mode, ObjectId, Operation, RegistryCallback};
use crate::name::{split_path, upcase};
use crate::tree::{KeyId, KeyInfo, SubkeyInfo, Tree};
use crate::{Caller, CreateOptions, Disposition, Handle, NtStatus, OpenOptions, RegNotifyClass, Registry, Value};
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;
use view::Resolved;

/// The filter's altitude: low in the stack (the FSFilter "virtualization" range), so every
/// filter above it (protection, 328010) judges the path the caller named.
pub const ALTITUDE: &str = "135000";

/// The master key box hives are mounted under, as Windows mounts application hives: user-mode
/// callers cannot open anything below it by name.
pub const BOX_ROOT: &str = r"\REGISTRY\A";

/// Where box `name`'s private hive is mounted.
pub fn box_mount(name: &str) -> String {
    format!(r"{BOX_ROOT}\{name}")
}

/// The isolation filter.
#[derive(Debug, Default)]
pub struct IsolationFilter {
    /// The boxes served (few: a scan compares names without allocating).
    boxes: RwLock<Vec<Arc<BoxState>>>,
}

/// One box the filter serves.
#[derive(Debug)]
struct BoxState {
    name: String,
    /// `\REGISTRY\A\<NAME>\`, upcased: the prefix of its keys' names.
    prefix_up: String,
    /// What the fast paths found, valid while the registry does not change.
    memo: Mutex<Memo>,
}

/// Answers of the fast paths at one registry version: keys (and absolute names) the box
/// never touched. Programs open the same keys again and again.
#[derive(Debug, Default)]
struct Memo {
    version: u64,
    /// Absolute names (below `\REGISTRY`) whose open the CM can do itself.
    opens: rustc_hash::FxHashSet<Box<str>>,
    /// Base keys and how the box sees them.
    shadows: rustc_hash::FxHashMap<KeyId, Shadow>,
}

/// Entries a memo holds before it starts afresh.
const MEMO_LIMIT: usize = 4096;

impl Memo {
    /// The memo for `version` (emptied if it was for another, or full).
    fn at(&mut self, version: u64) -> &mut Self {
        if self.version != version || self.opens.len() + self.shadows.len() > MEMO_LIMIT {
            self.version = version;
            self.opens.clear();
            self.shadows.clear();
        }
        self
    }
}

/// What the filter keeps on a key object a boxed caller uses: the merged listing, valid while
/// the registry does not change.
#[derive(Debug, Default)]
struct ViewCx {
    cache: Mutex<Option<Arc<Listing>>>,
}

#[derive(Debug)]
struct Listing {
    version: u64,
    comps: Vec<String>,
    subkeys: Vec<SubkeyInfo>,
    values: Vec<(String, Value)>,
    info: KeyInfo,
}

const BYPASS: NtStatus = NtStatus::STATUS_CALLBACK_BYPASS;
const OK: NtStatus = NtStatus::STATUS_SUCCESS;

/// `Err(status)` out of a function returning the status.
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(s) => return s,
        }
    };
}

impl IsolationFilter {
    /// A filter serving no box yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers the filter at [`ALTITUDE`].
    pub fn register(self: &Arc<Self>, registry: &Registry) -> Result<Cookie, NtStatus> {
        registry.register(ALTITUDE, self.clone())
    }

    /// Serves box `name`, whose private hive the host has mounted at [`box_mount`]`(name)`.
    /// Until then, every registry operation of a process in that box is refused.
    pub fn add_box(&self, name: &str) {
        let prefix_up = upcase(&format!("{}\\", box_mount(name)));
        let mut boxes = self.boxes.write();
        boxes.retain(|b| !crate::name::eq_names(&b.name, name));
        boxes.push(Arc::new(BoxState { name: name.to_owned(), prefix_up, memo: Mutex::new(Memo::default()) }));
    }

    /// Stops serving box `name` (before its hive is unmounted).
    pub fn remove_box(&self, name: &str) {
        self.boxes.write().retain(|b| !crate::name::eq_names(&b.name, name));
    }

    /// Whether box `name` is served.
    pub fn has_box(&self, name: &str) -> bool {
        self.served(name).is_some()
    }

    fn served(&self, name: &str) -> Option<Arc<BoxState>> {
        self.boxes.read().iter().find(|b| crate::name::eq_names(&b.name, name)).cloned()
    }
}

impl RegistryCallback for IsolationFilter {
    fn notify(&self, cx: &CallbackCx<'_>, _class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        let Argument::Pre(pre) = arg else { return OK };
        if let Operation::KeyHandleClose { .. } = pre.op {
            return OK;
        }
        let Some(box_name) = cx.caller().process.box_name.as_deref() else {
            return host_pre(cx, pre.op);
        };
        let Some(b) = self.served(box_name) else {
            // A box whose hive is not mounted gets nothing, never the host's registry.
            return NtStatus::STATUS_ACCESS_DENIED;
        };
        let view = View { cx, b: &b };
        let object_context = || pre.object_context.clone();
        match pre.op {
            Operation::OpenKey(info) => view.open(info, false),
            Operation::CreateKey(info) => view.open(info, true),
            Operation::QueryValueKey { object, value_name, result } => view.query_value(*object, value_name, result),
            Operation::EnumerateKey { object, index, result } => {
                view.listing(*object, object_context(), |l| match l.subkeys.get(*index as usize) {
                    Some(s) => {
                        *result = Some(s.clone());
                        BYPASS
                    }
                    None => NtStatus::STATUS_NO_MORE_ENTRIES,
                })
            }
            Operation::EnumerateValueKey { object, index, result } => {
                view.listing(*object, object_context(), |l| match l.values.get(*index as usize) {
                    Some(v) => {
                        *result = Some(v.clone());
                        BYPASS
                    }
                    None => NtStatus::STATUS_NO_MORE_ENTRIES,
                })
            }
            Operation::QueryKey { object, result } => view.listing(*object, object_context(), |l| {
                *result = Some(l.info.clone());
                BYPASS
            }),
            Operation::QueryKeyName { object, result } => view.query_name(*object, result),
            Operation::SetValueKey { object, value_name, value, .. } => view.set_value(*object, value_name, value),
            Operation::DeleteValueKey { object, value_name } => view.delete_value(*object, value_name),
            Operation::DeleteKey { object } => view.delete_key(*object),
            Operation::RenameKey { object, new_name } => view.rename(*object, new_name),
            Operation::SetInformationKey { object, last_write } => view.set_time(*object, *last_write),
            Operation::FlushKey { object } => match view.locate(*object) {
                Ok(_) => BYPASS,
                Err(s) => s,
            },
            Operation::SaveKey { object, result } => view.save(*object, result),
            Operation::RestoreKey { .. }
            | Operation::LoadKey { .. }
            | Operation::UnLoadKey { .. }
            | Operation::ReplaceKey { .. } => NtStatus::STATUS_ACCESS_DENIED,
            Operation::KeyHandleClose { .. } => OK,
        }
    }
}

/// Host callers: user mode may not open box hives by name.
fn host_pre(cx: &CallbackCx<'_>, op: &Operation) -> NtStatus {
    let info = match op {
        Operation::OpenKey(info) | Operation::CreateKey(info) if cx.caller().mode == Mode::User => info,
        _ => return OK,
    };
    let reg = cx.registry();
    if reg.object_key(info.root_object) != Some(KeyId(0)) {
        return OK;
    }
    let first = info.remaining_name.split('\\').find(|c| !c.is_empty()).unwrap_or("");
    if first.eq_ignore_ascii_case("A") { NtStatus::STATUS_ACCESS_DENIED } else { OK }
}

/// One boxed operation: the callback's context and the caller's box.
struct View<'a, 'c> {
    cx: &'a CallbackCx<'c>,
    b: &'a BoxState,
}

/// Where an object stands in the view.
struct Located {
    /// Its path, components below `\REGISTRY`.
    comps: Vec<String>,
    /// It is a key of the box's hive (else a base key).
    private: bool,
}

fn box_root(t: &Tree, name: &str) -> Option<KeyId> {
    t.child(t.root(), "A").and_then(|a| t.child(a, name))
}

/// What the box has at the path of a base key, found by walking the key's ancestors: the
/// fast answer for keys the box never touched.
#[derive(Debug, Clone, Copy)]
enum Shadow {
    /// Nothing: the box's view of the key is the base key itself.
    Untouched,
    /// The box has a key there (or something more involved): ask the full view.
    Changed,
    /// The box deleted the key or a key above it, or hides the base there.
    Gone,
}

/// The box's key at the path of base key `key` (`Ok(None)`: none, and nothing above it hides
/// the base), or why the full view is needed (`Err`).
fn private_of_base(t: &Tree, broot: KeyId, key: KeyId) -> Result<Option<KeyId>, Shadow> {
    let mut chain: smallvec::SmallVec<[KeyId; 16]> = smallvec::SmallVec::new();
    let mut k = key;
    while let Some(p) = t.parent(k) {
        chain.push(k);
        k = p;
    }
    if chain.last().is_some_and(|top| t.name(*top).eq_ignore_ascii_case("A")) {
        return Err(Shadow::Changed);
    }
    let mut private = broot;
    for (i, &anc) in chain.iter().rev().enumerate() {
        let Some(p) = t.child(private, t.name(anc)) else { return Ok(None) };
        if view::is_deleted(t, p) {
            return Err(Shadow::Gone);
        }
        if view::hides_base(t, p) {
            // Above the key the base is hidden; at the key itself the box's key stands in.
            return Err(if i + 1 < chain.len() { Shadow::Gone } else { Shadow::Changed });
        }
        private = p;
    }
    Ok(Some(private))
}

fn shadow_of_base(t: &Tree, broot: KeyId, key: KeyId) -> Shadow {
    match private_of_base(t, broot, key) {
        Ok(None) => Shadow::Untouched,
        Ok(Some(_)) => Shadow::Changed,
        Err(s) => s,
    }
}

fn native(comps: &[String]) -> String {
    let mut s = String::from(r"\REGISTRY");
    for c in comps {
        s.push('\\');
        s.push_str(c);
    }
    s
}

impl View<'_, '_> {
    fn reg(&self) -> &Registry {
        self.cx.registry()
    }

    fn private_native(&self, comps: &[String]) -> String {
        let mut s = box_mount(&self.b.name);
        for c in comps {
            s.push('\\');
            s.push_str(c);
        }
        s
    }

    /// The fast look at an object (`None` for an unknown object).
    fn shadow(&self, object: ObjectId) -> Option<(Shadow, u64)> {
        self.reg().with_object(object, |t, key, version| {
            let key = key?;
            let mut memo = self.b.memo.lock();
            let memo = memo.at(version);
            if let Some(s) = memo.shadows.get(&key) {
                return Some((*s, version));
            }
            let broot = box_root(t, &self.b.name)?;
            // A key of a box hive is below `A`: `Changed`, so the full view places it.
            let s = shadow_of_base(t, broot, key);
            memo.shadows.insert(key, s);
            Some((s, version))
        })
    }

    /// An open or create the CM can do itself: a base key the box never touched, named from
    /// a base key, through no link. `None`: ask the full view.
    fn open_untouched(&self, info: &CreateKeyInfo) -> Option<NtStatus> {
        let open_link = info.options & REG_OPTION_OPEN_LINK != 0 || info.attributes & OBJ_OPENLINK != 0;
        let absolute = info.root_object == self.reg().root_object() && !open_link;
        if absolute {
            let version = self.reg().version();
            if self.b.memo.lock().at(version).opens.contains(info.remaining_name.as_str()) {
                return Some(OK);
            }
        }
        let found = self.reg().with_object(info.root_object, |t, key, version| {
            let mut base = key?;
            let broot = box_root(t, &self.b.name)?;
            // Below `A` (a box's key) the walk says `Changed`: the full view takes it.
            let mut private = private_of_base(t, broot, base).ok()?;
            let mut comps = info.remaining_name.split('\\').filter(|c| !c.is_empty()).peekable();
            if base == t.root() && comps.peek().is_some_and(|c| c.eq_ignore_ascii_case("A")) {
                return None;
            }
            while let Some(c) = comps.next() {
                let next = t.child(base, c)?;
                if t.node(next).link && !(comps.peek().is_none() && open_link) {
                    return None;
                }
                if let Some(p) = private {
                    private = t.child(p, c);
                    if private.is_some_and(|p| view::is_deleted(t, p) || view::hides_base(t, p)) {
                        return None;
                    }
                }
                base = next;
            }
            private.is_none().then_some(version)
        });
        let version = found?;
        if absolute {
            self.b.memo.lock().at(version).opens.insert(info.remaining_name.as_str().into());
        }
        Some(OK)
    }

    /// The view path of an object the caller uses.
    fn locate(&self, object: ObjectId) -> Result<Located, NtStatus> {
        let (_, name) = self.cx.key_object_id(object)?;
        let up = upcase(&name);
        let rest = name.get(r"\REGISTRY".len()..).unwrap_or("");
        let split = |s: &str| s.split('\\').filter(|c| !c.is_empty()).map(str::to_owned).collect::<Vec<_>>();
        if up.starts_with(&self.b.prefix_up) {
            return Ok(Located { comps: split(&name[self.b.prefix_up.len()..]), private: true });
        }
        if up == self.b.prefix_up[..self.b.prefix_up.len() - 1] {
            return Ok(Located { comps: Vec::new(), private: true });
        }
        let first = rest.split('\\').find(|c| !c.is_empty()).unwrap_or("");
        if first.eq_ignore_ascii_case("A") {
            // Another box's key, or the box root's parent: not part of this box's view.
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        Ok(Located { comps: split(rest), private: false })
    }

    /// Resolves a path of the view under one lock.
    fn resolve<R>(&self, comps: &[String], f: impl FnOnce(&Tree, KeyId, Option<Resolved>) -> R) -> Result<R, NtStatus> {
        self.reg().with_tree(|t| {
            let root = box_root(t, &self.b.name).ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
            let r = view::resolve(t, root, comps);
            Ok(f(t, root, r))
        })
    }

    /// Opens a key of the box's hive or of the base by native path, as a referenced object
    /// for a create/open's result.
    fn object_for(&self, path: &str, open_link: bool) -> Result<ObjectId, NtStatus> {
        let nested = self.cx.nested();
        let opts = OpenOptions {
            desired_access: KEY_ALL_ACCESS,
            options: if open_link { REG_OPTION_OPEN_LINK } else { 0 },
            ..OpenOptions::default()
        };
        let h = self.reg().open_key(&nested, None, path, &opts)?;
        let object = self.cx.reference_object_by_handle(h);
        let _ = self.reg().close_key(&nested, h);
        object
    }

    fn open(&self, info: &mut CreateKeyInfo, create: bool) -> NtStatus {
        if info.transaction.is_some() || self.reg().bound_transaction(info.root_object).is_some() {
            return NtStatus::STATUS_NOT_IMPLEMENTED;
        }
        if let Some(status) = self.open_untouched(info) {
            return status;
        }
        let root = tri!(self.locate(info.root_object));
        let rel = tri!(split_path(&info.remaining_name).map_err(|e| e.status()));
        let mut comps = root.comps.clone();
        comps.extend(rel.iter().map(|c| (*c).to_owned()));
        if comps.first().is_some_and(|c| c.eq_ignore_ascii_case("A")) {
            // The box hives, this box's included, are not part of any view.
            return NtStatus::STATUS_ACCESS_DENIED;
        }
        let open_link = info.options & REG_OPTION_OPEN_LINK != 0 || info.attributes & OBJ_OPENLINK != 0;
        let user = self.cx.caller().mode == Mode::User && !self.cx.caller().token.system;
        let desired = info.desired_access;
        let n = comps.len();
        // Everything needed, read under one lock.
        let found = tri!(self.reg().with_tree(|t| {
            let broot = box_root(t, &self.b.name).ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
            let comps = view::canonical(t, &comps, open_link);
            let r = view::resolve(t, broot, &comps);
            let parent = if n > 0 { view::resolve(t, broot, &comps[..comps.len() - 1]) } else { None };
            let dead = view::private_key(t, broot, &comps).filter(|p| view::is_deleted(t, *p)).is_some();
            let reserved = r.and_then(|r| r.base).map_or(0, |k| t.node(k).system_only);
            Ok::<_, NtStatus>((comps, r, parent, dead, reserved))
        }));
        let (comps, r, parent, dead, reserved) = found;
        let mut granted = map_generic(desired);
        if user && reserved & granted != 0 {
            if desired & MAXIMUM_ALLOWED == 0 {
                return NtStatus::STATUS_ACCESS_DENIED;
            }
            granted &= !reserved;
        }
        match r {
            Some(r) => {
                if r.private.is_none() && !root.private {
                    // A key the box never changed, named from the base: the CM opens it.
                    return OK;
                }
                let path = match r.private {
                    Some(_) => self.private_native(&comps),
                    None => native(&comps),
                };
                let object = tri!(self.object_for(&path, open_link));
                info.result_object = Some(object);
                info.granted_access = granted;
                if create {
                    info.disposition = Some(Disposition::OpenedExistingKey);
                }
                BYPASS
            }
            None if !create => NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
            None => {
                if parent.is_none() {
                    return NtStatus::STATUS_OBJECT_NAME_NOT_FOUND;
                }
                if comps.len() < 2 {
                    // Directly below a master key: refused as the host refuses it.
                    return NtStatus::STATUS_ACCESS_DENIED;
                }
                let nested = self.cx.nested();
                let path = self.private_native(&comps);
                if dead {
                    // Deleted in the box, created again: the base content stays hidden.
                    let h = tri!(self.reg().open_key(&nested, None, &path, &OpenOptions::access(KEY_ALL_ACCESS)));
                    let r = self
                        .reg()
                        .delete_value(&nested, h, markers::DELETED)
                        .and_then(|()| self.reg().set_value(&nested, h, markers::OPAQUE, Value::none()));
                    let _ = self.reg().close_key(&nested, h);
                    tri!(r);
                } else {
                    let opts = CreateOptions {
                        desired_access: KEY_ALL_ACCESS,
                        class: info.class.clone(),
                        ..CreateOptions::default()
                    };
                    let (h, _) = tri!(self.reg().create_key_path(&nested, None, &path, &opts));
                    let _ = self.reg().close_key(&nested, h);
                }
                let object = tri!(self.object_for(&path, false));
                info.result_object = Some(object);
                info.granted_access = granted;
                info.disposition = Some(Disposition::CreatedNewKey);
                BYPASS
            }
        }
    }

    fn query_value(&self, object: ObjectId, name: &str, result: &mut Option<Value>) -> NtStatus {
        match self.shadow(object) {
            Some((Shadow::Untouched, _)) => return OK,
            Some((Shadow::Gone, _)) => return NtStatus::STATUS_KEY_DELETED,
            _ => {}
        }
        let at = tri!(self.locate(object));
        let found = tri!(self.resolve(&at.comps, |t, _, r| {
            let r = r?;
            if r.private.is_none() && !at.private {
                return Some(None);
            }
            Some(Some(view::value(t, r, name)))
        }));
        match found {
            None => NtStatus::STATUS_KEY_DELETED,
            Some(None) => OK,
            Some(Some(Some(v))) => {
                *result = Some(v);
                BYPASS
            }
            Some(Some(None)) => NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
        }
    }

    /// Answers from the merged listing of the object's key (cached on the object until the
    /// registry changes); a key the box never changed, named from the base, is left to the CM.
    fn listing(
        &self,
        object: ObjectId,
        context: Option<crate::cm::ObjectContext>,
        answer: impl FnOnce(&Listing) -> NtStatus,
    ) -> NtStatus {
        let cx = context.as_ref().and_then(|c| c.clone().downcast::<ViewCx>().ok());
        let cached = cx.as_ref().and_then(|c| c.cache.lock().clone());
        if let Some(l) = &cached
            && l.version == self.reg().version()
        {
            // Nothing changed anywhere since the listing was made: it still holds.
            return answer(l);
        }
        match self.shadow(object) {
            Some((Shadow::Untouched, _)) => return OK,
            Some((Shadow::Gone, _)) => return NtStatus::STATUS_KEY_DELETED,
            _ => {}
        }
        let at = tri!(self.locate(object));
        let listing = self.reg().with_tree_version(|t, version| {
            if let Some(l) = cached.filter(|l| l.version == version && l.comps == at.comps) {
                return Ok(Some(l));
            }
            let root = box_root(t, &self.b.name).ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
            let r = view::resolve(t, root, &at.comps).ok_or(NtStatus::STATUS_KEY_DELETED)?;
            if r.private.is_none() && !at.private {
                return Ok(None);
            }
            let subs = view::subkeys(t, r);
            let values = view::values(t, r);
            let info = view::info(t, r, &subs, &values);
            Ok(Some(Arc::new(Listing {
                version,
                comps: at.comps.clone(),
                subkeys: subs.into_iter().map(|s| s.info).collect(),
                values,
                info,
            })))
        });
        let listing = match listing {
            Ok(Some(l)) => l,
            Ok(None) => return OK,
            Err(s) => return s,
        };
        match cx {
            Some(c) => *c.cache.lock() = Some(listing.clone()),
            None => {
                let c = Arc::new(ViewCx { cache: Mutex::new(Some(listing.clone())) });
                let _ = self.cx.set_object_context(object, c);
            }
        }
        answer(&listing)
    }

    fn query_name(&self, object: ObjectId, result: &mut Option<String>) -> NtStatus {
        let at = tri!(self.locate(object));
        if !at.private {
            return OK;
        }
        *result = Some(native(&at.comps));
        BYPASS
    }

    fn save(&self, object: ObjectId, result: &mut Option<crate::KeyImage>) -> NtStatus {
        let at = tri!(self.locate(object));
        let name = at.comps.last().cloned().unwrap_or_else(|| "REGISTRY".into());
        let image = tri!(self.resolve(&at.comps, |t, _, r| r.map(|r| view::image(t, r, &name, 0))));
        match image {
            Some(i) => {
                *result = Some(i);
                BYPASS
            }
            None => NtStatus::STATUS_KEY_DELETED,
        }
    }

    /// The box's key for a view key, created along its path if needed; the base key's last
    /// write time is recorded the first time the box changes a key that exists in the base.
    fn copy_up(&self, comps: &[String]) -> Result<(Caller, Handle), NtStatus> {
        if comps.len() < 2 {
            // A master key takes no change, in the box as on the host.
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        let base_time = self.resolve(comps, |t, root, r| {
            let r = r.ok_or(NtStatus::STATUS_KEY_DELETED)?;
            let stamped = r.private.is_some_and(|p| t.value(p, markers::BASE_TIME).is_some() || view::hides_base(t, p));
            Ok::<_, NtStatus>(r.base.filter(|_| !stamped).map(|b| t.node(b).last_write).filter(|_| {
                // Only the key being changed is stamped, not the keys on its way.
                view::private_key(t, root, comps).is_none_or(|p| t.value(p, markers::BASE_TIME).is_none())
            }))
        })??;
        let nested = self.cx.nested();
        let path = self.private_native(comps);
        let opts = CreateOptions { desired_access: KEY_ALL_ACCESS, ..CreateOptions::default() };
        let (h, _) = self.reg().create_key_path(&nested, None, &path, &opts)?;
        if let Some(time) = base_time
            && let Err(s) = self.reg().set_value(&nested, h, markers::BASE_TIME, Value::qword(time))
        {
            let _ = self.reg().close_key(&nested, h);
            return Err(s);
        }
        Ok((nested, h))
    }

    /// Runs `f` on the box's copy of the object's key.
    fn with_copy(
        &self,
        object: ObjectId,
        f: impl FnOnce(&Registry, &Caller, Handle) -> Result<(), NtStatus>,
    ) -> NtStatus {
        let at = tri!(self.locate(object));
        let (nested, h) = tri!(self.copy_up(&at.comps));
        let r = f(self.reg(), &nested, h);
        let _ = self.reg().close_key(&nested, h);
        match r {
            Ok(()) => BYPASS,
            Err(s) => s,
        }
    }

    fn set_value(&self, object: ObjectId, name: &str, value: &Value) -> NtStatus {
        self.with_copy(object, |reg, c, h| reg.set_value(c, h, &markers::escape(name), value.clone()))
    }

    fn set_time(&self, object: ObjectId, time: u64) -> NtStatus {
        self.with_copy(object, |reg, c, h| reg.set_last_write_time(c, h, time))
    }

    fn delete_value(&self, object: ObjectId, name: &str) -> NtStatus {
        let at = tri!(self.locate(object));
        let state = tri!(self.resolve(&at.comps, |t, _, r| {
            let r = r?;
            let visible = view::value(t, r, name).is_some();
            let in_base = r.base.is_some_and(|b| t.value(b, name).is_some());
            Some((visible, in_base))
        }));
        let Some((visible, in_base)) = state else { return NtStatus::STATUS_KEY_DELETED };
        if !visible {
            return NtStatus::STATUS_OBJECT_NAME_NOT_FOUND;
        }
        let stored = markers::escape(name).into_owned();
        self.with_copy(object, |reg, c, h| {
            if in_base { reg.set_value(c, h, &stored, markers::tombstone()) } else { reg.delete_value(c, h, &stored) }
        })
    }

    /// Whether the base has a key at `comps` that the box could see if it had not deleted it
    /// (no key above it hides the base).
    fn base_below_visible_parent(&self, comps: &[String]) -> Result<bool, NtStatus> {
        let (last, parent) = comps.split_last().ok_or(NtStatus::STATUS_ACCESS_DENIED)?;
        self.resolve(parent, |t, _, r| r.and_then(|r| r.base).and_then(|b| t.child(b, last)).is_some())
    }

    /// Deletes the box's key at `comps` and everything below it in the box's hive.
    fn drop_private(&self, nested: &Caller, comps: &[String]) -> Result<(), NtStatus> {
        let path = self.private_native(comps);
        let h = match self.reg().open_key(nested, None, &path, &OpenOptions::access(KEY_ALL_ACCESS)) {
            Ok(h) => h,
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => return Ok(()),
            Err(s) => return Err(s),
        };
        let r = self.clear_private(nested, h, comps, false).and_then(|()| self.reg().delete_key(nested, h));
        let _ = self.reg().close_key(nested, h);
        r
    }

    /// Empties a box key: its subkeys deleted, its values removed (but for the base's time
    /// with `keep_stamp`: `box commit` still needs it to see whether the base changed).
    fn clear_private(&self, nested: &Caller, h: Handle, comps: &[String], keep_stamp: bool) -> Result<(), NtStatus> {
        let (children, values) = self.reg().with_tree(|t| {
            let root = box_root(t, &self.b.name);
            let k = root.and_then(|r| view::private_key(t, r, comps));
            let children: Vec<String> =
                k.map(|k| t.children(k).map(|c| t.name(c).to_owned()).collect()).unwrap_or_default();
            let values: Vec<String> = k.map(|k| t.values(k).map(|(n, _)| n.to_owned()).collect()).unwrap_or_default();
            (children, values)
        });
        for c in children {
            let mut sub = comps.to_vec();
            sub.push(c);
            self.drop_private(nested, &sub)?;
        }
        for v in values {
            if keep_stamp && crate::name::eq_names(&v, markers::BASE_TIME) {
                continue;
            }
            self.reg().delete_value(nested, h, &v)?;
        }
        Ok(())
    }

    /// Makes the view key at `comps` disappear (with what is below it).
    fn remove(&self, comps: &[String]) -> Result<(), NtStatus> {
        if comps.len() < 2 {
            return Err(NtStatus::STATUS_ACCESS_DENIED);
        }
        if self.base_below_visible_parent(comps)? {
            let (nested, h) = self.copy_up(comps)?;
            let r = self
                .clear_private(&nested, h, comps, true)
                .and_then(|()| self.reg().set_value(&nested, h, markers::DELETED, Value::none()));
            let _ = self.reg().close_key(&nested, h);
            r
        } else {
            self.drop_private(&self.cx.nested(), comps)
        }
    }

    fn delete_key(&self, object: ObjectId) -> NtStatus {
        let at = tri!(self.locate(object));
        let children = tri!(self.resolve(&at.comps, |t, _, r| r.map(|r| view::subkeys(t, r).len())));
        match children {
            None => NtStatus::STATUS_KEY_DELETED,
            Some(0) => match self.remove(&at.comps) {
                Ok(()) => BYPASS,
                Err(s) => s,
            },
            Some(_) => NtStatus::STATUS_CANNOT_DELETE,
        }
    }

    fn rename(&self, object: ObjectId, new_name: &str) -> NtStatus {
        if crate::name::check_key_name(new_name).is_err() || new_name.contains('\\') {
            return NtStatus::STATUS_INVALID_PARAMETER;
        }
        let at = tri!(self.locate(object));
        let Some((_, parent)) = at.comps.split_last() else { return NtStatus::STATUS_ACCESS_DENIED };
        let mut to = parent.to_vec();
        to.push(new_name.to_owned());
        let source = tri!(self.resolve(&at.comps, |t, root, r| {
            let r = r?;
            let from = view::private_key(t, root, &at.comps)
                .and_then(|p| t.value(p, markers::RENAMED_FROM))
                .and_then(|v| v.as_string().ok())
                .unwrap_or_else(|| native(&at.comps));
            Some((view::image(t, r, new_name, 0), from))
        }));
        let Some((image, from)) = source else { return NtStatus::STATUS_KEY_DELETED };
        if crate::name::eq_names(&at.comps[at.comps.len() - 1], new_name) {
            return OK;
        }
        let taken = tri!(self.resolve(&to, |_, _, r| r.is_some()));
        if taken {
            return NtStatus::STATUS_OBJECT_NAME_COLLISION;
        }
        let nested = self.cx.nested();
        let r = (|| {
            let path = self.private_native(&to);
            let opts = CreateOptions { desired_access: KEY_ALL_ACCESS, ..CreateOptions::default() };
            let (h, _) = self.reg().create_key_path(&nested, None, &path, &opts)?;
            // A name the box deleted before: the renamed key takes its place.
            let undeleted = match self.reg().delete_value(&nested, h, markers::DELETED) {
                Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => Ok(()),
                other => other,
            };
            let r = undeleted
                .and_then(|()| self.write_image(&nested, h, &image))
                .and_then(|()| self.reg().set_value(&nested, h, markers::RENAMED_FROM, Value::sz(&from)));
            let _ = self.reg().close_key(&nested, h);
            r?;
            self.remove(&at.comps)
        })();
        match r {
            Ok(()) => BYPASS,
            Err(s) => s,
        }
    }

    /// Writes a merged image's values and subkeys below an open box key.
    fn write_image(&self, nested: &Caller, h: Handle, image: &crate::KeyImage) -> Result<(), NtStatus> {
        for (name, v) in &image.values {
            self.reg().set_value(nested, h, &markers::escape(name), v.clone())?;
        }
        for sub in &image.subkeys {
            let opts =
                CreateOptions { desired_access: KEY_ALL_ACCESS, class: sub.class.clone(), ..CreateOptions::default() };
            let (c, _) = self.reg().create_key(nested, Some(h), &sub.name, &opts)?;
            let r = self.write_image(nested, c, sub);
            let _ = self.reg().close_key(nested, c);
            r?;
        }
        Ok(())
    }
}
