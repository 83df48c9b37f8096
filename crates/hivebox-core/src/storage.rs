//! The seam between the registry and its durable store.
//!
//! The core never touches a file. It hands every persistent change to a [`Storage`] as a
//! [`Mutation`] *before* applying it in memory, and applies it only if the store accepted it:
//! an acknowledged change is a stored change, and a refused one changes nothing. A store is
//! loaded back as a [`KeyImage`] (the full tree) plus the mutations logged since that image.
//! Volatile keys never reach the store.

use crate::value::Value;
use crate::{KeyId, NtStatus, Tree};
use std::sync::Arc;

/// One persistent change to a hive, naming the key by its path relative to the hive's root
/// (`""` for the root itself, else components joined by `\`, links already resolved), so a
/// hive's log replays onto the hive's image wherever the hive is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mutation {
    /// A key was created.
    CreateKey {
        /// Path of the new key.
        path: String,
        /// Its class name.
        class: Option<String>,
        /// Created as a symbolic link.
        link: bool,
        /// Creation time.
        time: u64,
    },
    /// A key (with no subkeys) was deleted.
    DeleteKey {
        /// Its path.
        path: String,
        /// Deletion time (the parent's last write).
        time: u64,
    },
    /// A value was set.
    SetValue {
        /// Key path.
        path: String,
        /// Value name.
        name: String,
        /// The new value.
        value: Value,
        /// Write time.
        time: u64,
    },
    /// A value was deleted.
    DeleteValue {
        /// Key path.
        path: String,
        /// Value name.
        name: String,
        /// Write time.
        time: u64,
    },
    /// A key was renamed (`new_name` is a single component).
    RenameKey {
        /// Old path.
        path: String,
        /// New last component.
        new_name: String,
        /// Write time.
        time: u64,
    },
    /// A key's last write time was set (`NtSetInformationKey`).
    SetLastWrite {
        /// Key path.
        path: String,
        /// The time.
        time: u64,
    },
    /// Changes committed together by a transaction: recovery applies all of them or none
    /// (they travel in one log record). Never nested.
    Batch {
        /// The changes, in order.
        mutations: Vec<Mutation>,
    },
    /// A key's values and subkeys were replaced by those of an image (`NtRestoreKey`); the
    /// key keeps its name.
    ReplaceKey {
        /// Key path.
        path: String,
        /// The new contents.
        image: KeyImage,
        /// Write time.
        time: u64,
    },
}

/// A whole key tree, as a store loads or checkpoints it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyImage {
    /// The key's name.
    pub name: String,
    /// Its class name.
    pub class: Option<String>,
    /// Last write time.
    pub last_write: u64,
    /// A symbolic link key.
    pub link: bool,
    /// Access rights reserved to SYSTEM.
    pub system_only: u32,
    /// The key's security descriptor (self-relative `SECURITY_DESCRIPTOR` bytes, as a regf
    /// `sk` record holds it), shared between keys that have the same one.
    pub security: Option<Arc<[u8]>>,
    /// Values in enumeration order.
    pub values: Vec<(String, Value)>,
    /// Subkeys.
    pub subkeys: Vec<KeyImage>,
}

/// A store could not take a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The device is full.
    #[error("the store is full: {0}")]
    Full(String),
    /// Any other I/O failure.
    #[error("the store failed: {0}")]
    Io(String),
}

impl StorageError {
    /// The NTSTATUS the registry returns for it.
    pub fn status(&self) -> NtStatus {
        match self {
            StorageError::Full(_) => NtStatus::STATUS_DISK_FULL,
            StorageError::Io(_) => NtStatus::STATUS_REGISTRY_IO_FAILED,
        }
    }
}

/// Where a registry keeps its persistent keys.
///
/// The registry calls `append` under its state lock and applies the change in memory only
/// if it returns `Ok`. A store that syncs each change itself returns `None` from `pending`.
/// A store with *group commit* only writes the change in `append` and returns a [`Pending`]:
/// the registry releases its lock and waits on it before it acknowledges the operation, so
/// concurrent writers share one sync.
pub trait Storage: Send {
    /// Writes `mutation`. When this returns `Ok` and `pending` returns `None`, the change must
    /// survive a crash; otherwise it must once the `Pending` from `pending` is waited on.
    fn append(&mut self, mutation: &Mutation) -> Result<(), StorageError>;

    /// What to wait on before the last appended change is durable; `None` when it already is.
    fn pending(&mut self) -> Option<Pending> {
        None
    }

    /// Flushes whatever is buffered; a store may also checkpoint here from `image`.
    fn flush(&mut self, image: &dyn Fn() -> KeyImage) -> Result<(), StorageError>;
}

/// Makes written changes durable, sharing one sync among the writers waiting at once.
pub trait Durability: Send + Sync {
    /// Returns once everything written up to `mark` is durable, or the sync failed.
    fn wait(&self, mark: u64) -> Result<(), StorageError>;
}

/// A written change that is not yet known to be durable: [`Pending::wait`] until it is.
#[derive(Clone)]
pub struct Pending {
    durability: Arc<dyn Durability>,
    mark: u64,
}

impl Pending {
    /// The change written up to `mark` (a position meaningful to `durability`).
    pub fn new(durability: Arc<dyn Durability>, mark: u64) -> Self {
        Self { durability, mark }
    }

    /// Blocks until the change is durable.
    pub fn wait(&self) -> Result<(), StorageError> {
        self.durability.wait(self.mark)
    }
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending").field("mark", &self.mark).finish_non_exhaustive()
    }
}

/// A store that keeps nothing: for scratch registries and tests of the in-memory model.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemoryStorage;

impl Storage for MemoryStorage {
    fn append(&mut self, _: &Mutation) -> Result<(), StorageError> {
        Ok(())
    }

    fn flush(&mut self, _: &dyn Fn() -> KeyImage) -> Result<(), StorageError> {
        Ok(())
    }
}

impl Tree {
    /// The persistent part of the tree (volatile keys left out), from the root down.
    pub fn image(&self) -> KeyImage {
        self.image_at(self.root())
    }

    /// The persistent part of the subtree at `id` (volatile keys left out).
    pub fn image_at(&self, id: KeyId) -> KeyImage {
        let n = self.node(id);
        KeyImage {
            name: n.name.clone(),
            class: n.class.clone(),
            last_write: n.last_write,
            link: n.link,
            system_only: n.system_only,
            security: n.security.clone(),
            values: n.values.iter().map(|e| (e.name.clone(), e.value.clone())).collect(),
            subkeys: self.children(id).filter(|c| !self.node(*c).volatile).map(|c| self.image_at(c)).collect(),
        }
    }

    /// Builds a tree whose root is the image's root. Names are checked; a duplicate subkey or
    /// value name is an error.
    pub fn from_image(image: &KeyImage) -> Result<Self, String> {
        Self::from_image_owned(image.clone())
    }

    /// [`Tree::from_image`], moving the names and data out of the image instead of copying.
    pub fn from_image_owned(mut image: KeyImage) -> Result<Self, String> {
        let mut tree = Tree::new(image.last_write);
        let root = tree.root();
        {
            let n = tree.node_mut(root);
            n.upname = crate::name::upcase(&image.name);
            n.name = std::mem::take(&mut image.name);
        }
        tree.fill(root, image, 0, None)?;
        Ok(tree)
    }

    /// Adds an image as a new subkey `name` of `parent`, every key of it in hive `hive`.
    pub(crate) fn graft(&mut self, parent: KeyId, name: &str, image: KeyImage, hive: u32) -> Result<KeyId, String> {
        crate::name::check_key_name(name).map_err(|e| e.to_string())?;
        if self.child(parent, name).is_some() {
            return Err(format!("{}\\{name} already exists", self.path(parent)));
        }
        let parent_time = self.node(parent).last_write;
        let id = self.insert_child(parent, name, image.class.clone(), image.last_write);
        self.node_mut(parent).last_write = parent_time;
        let node = self.node_mut(id);
        node.volatile = false;
        node.hive = hive;
        // Every key of a mounted hive has a descriptor, as in a regf file: a root without one
        // gets the default, and keys without one inherit their parent's.
        let root_sd: Arc<[u8]> = crate::security::default_descriptor().into();
        if let Err(e) = self.fill(id, image, hive, Some(root_sd)) {
            // Leave nothing of a half-grafted image behind.
            self.prune(id, parent_time);
            self.node_mut(parent).last_write = parent_time;
            return Err(e);
        }
        Ok(id)
    }

    fn fill(&mut self, id: KeyId, image: KeyImage, hive: u32, inherited: Option<Arc<[u8]>>) -> Result<(), String> {
        let KeyImage { class, last_write, link, system_only, security, values, subkeys, .. } = image;
        let security = security.or(inherited);
        {
            let n = self.node_mut(id);
            n.class = class.filter(|c| !c.is_empty());
            n.link = link;
            // Rights reserved to SYSTEM come from the image, or else from the descriptor's DACL
            // (a regf hive stores only the descriptor).
            let from_sd = security.as_deref().map_or(0, crate::security::system_only_rights);
            n.system_only = system_only | from_sd;
            n.security = security.clone();
            n.hive = hive;
        }
        for (name, value) in values {
            crate::name::check_value_name(&name).map_err(|e| e.to_string())?;
            if self.value(id, &name).is_some() {
                return Err(format!("duplicate value {name:?} in {}", self.path(id)));
            }
            self.add_new_value(id, name, value);
        }
        for mut sub in subkeys {
            crate::name::check_key_name(&sub.name).map_err(|e| e.to_string())?;
            if self.child(id, &sub.name).is_some() {
                return Err(format!("duplicate subkey {:?} in {}", sub.name, self.path(id)));
            }
            let child = self.insert_named_child(id, std::mem::take(&mut sub.name), sub.class.clone(), sub.last_write);
            self.fill(child, sub, hive, security.clone())?;
        }
        self.node_mut(id).last_write = last_write;
        Ok(())
    }

    /// Removes the whole subtree at `id` (its nodes stay, marked deleted).
    pub(crate) fn prune(&mut self, id: KeyId, now: u64) {
        let mut stack = vec![id];
        let mut order = Vec::new();
        while let Some(k) = stack.pop() {
            order.push(k);
            stack.extend(self.children(k));
        }
        for k in order.into_iter().rev() {
            self.node_mut(k).children.clear();
            self.remove(k, now);
        }
    }

    /// Replaces the values and subkeys of `id` with those of `image` (the key keeps its name
    /// and hive).
    pub(crate) fn replace_contents(&mut self, id: KeyId, image: &KeyImage, now: u64) -> Result<(), String> {
        let children: Vec<KeyId> = self.children(id).collect();
        for c in children {
            self.prune(c, now);
        }
        let hive = self.node(id).hive;
        let inherited = self.node(id).security.clone();
        {
            let n = self.node_mut(id);
            n.values.clear();
            n.value_index = None;
        }
        self.fill(id, image.clone(), hive, inherited)?;
        self.node_mut(id).last_write = now;
        Ok(())
    }

    /// The path of `id` relative to `root` (`""` for `root` itself).
    pub fn relative_path(&self, root: KeyId, id: KeyId) -> String {
        let mut parts = Vec::new();
        let mut cur = id;
        while cur != root {
            parts.push(self.node(cur).name.as_str());
            match self.node(cur).parent {
                Some(p) => cur = p,
                None => break,
            }
        }
        parts.reverse();
        parts.join("\\")
    }

    /// The key at a root-relative path.
    pub fn find(&self, path: &str) -> Option<KeyId> {
        self.find_under(self.root(), path)
    }

    /// The key at `path` (components joined by `\\`) below `root`.
    pub fn find_under(&self, root: KeyId, path: &str) -> Option<KeyId> {
        let mut cur = root;
        if path.is_empty() {
            return Some(cur);
        }
        for part in path.split('\\') {
            cur = self.child(cur, part)?;
        }
        Some(cur)
    }

    /// Applies a logged mutation (paths relative to this tree's root) during recovery.
    pub fn replay(&mut self, m: &Mutation) -> Result<(), String> {
        self.replay_under(self.root(), m)
    }

    /// Applies a mutation whose paths are relative to `root` (a hive's root key).
    pub fn replay_under(&mut self, root: KeyId, m: &Mutation) -> Result<(), String> {
        let find = |tree: &Tree, path: &str| {
            tree.find_under(root, path).ok_or_else(|| format!("logged path {path:?} does not exist"))
        };
        let split = |path: &str| -> (String, String) {
            match path.rsplit_once('\\') {
                Some((p, n)) => (p.to_owned(), n.to_owned()),
                None => (String::new(), path.to_owned()),
            }
        };
        match m {
            Mutation::CreateKey { path, class, link, time } => {
                let (parent, name) = split(path);
                crate::name::check_key_name(&name).map_err(|e| e.to_string())?;
                let parent = find(self, &parent)?;
                if self.child(parent, &name).is_some() {
                    return Err(format!("logged create of existing key {path:?}"));
                }
                let id = self.insert_child(parent, &name, class.clone(), *time);
                self.node_mut(id).link = *link;
            }
            Mutation::DeleteKey { path, time } => {
                let id = find(self, path)?;
                if self.node(id).parent.is_none() || !self.node(id).children.is_empty() {
                    return Err(format!("logged delete of {path:?}, which cannot be deleted"));
                }
                self.remove(id, *time);
            }
            Mutation::SetValue { path, name, value, time } => {
                crate::name::check_value_name(name).map_err(|e| e.to_string())?;
                let id = find(self, path)?;
                self.set_value(id, name, value.clone(), *time);
            }
            Mutation::DeleteValue { path, name, time } => {
                let id = find(self, path)?;
                self.delete_value(id, name, *time);
            }
            Mutation::RenameKey { path, new_name, time } => {
                let id = find(self, path)?;
                crate::name::check_key_name(new_name).map_err(|e| e.to_string())?;
                let parent = self.node(id).parent.ok_or_else(|| format!("logged rename of root {path:?}"))?;
                if self.child(parent, new_name).is_some_and(|c| c != id) {
                    return Err(format!("logged rename of {path:?} onto an existing name"));
                }
                self.rename(id, new_name, *time);
            }
            Mutation::Batch { mutations } => {
                for m in mutations {
                    if matches!(m, Mutation::Batch { .. }) {
                        return Err("a logged batch nests another batch".to_owned());
                    }
                    self.replay_under(root, m)?;
                }
            }
            Mutation::SetLastWrite { path, time } => {
                let id = find(self, path)?;
                self.node_mut(id).last_write = *time;
            }
            Mutation::ReplaceKey { path, image, time } => {
                let id = find(self, path)?;
                self.replace_contents(id, image, *time)?;
            }
        }
        Ok(())
    }
}
