//! The seam between the registry and its durable store.
//!
//! The core never touches a file. It hands every persistent change to a [`Storage`] as a
//! [`Mutation`] *before* applying it in memory, and applies it only if the store accepted it:
//! an acknowledged change is a stored change, and a refused one changes nothing. A store is
//! loaded back as a [`KeyImage`] (the full tree) plus the mutations logged since that image.
//! Volatile keys never reach the store.

use crate::value::Value;
use crate::{NtStatus, Tree};
use std::sync::Arc;

/// One persistent change, named by the key's full native path (`\REGISTRY\...`, links
/// already resolved), so a log can be replayed onto an image without the registry's handles.
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
pub trait Storage: Send {
    /// Makes `mutation` durable. When this returns `Ok`, the change must survive a crash.
    fn append(&mut self, mutation: &Mutation) -> Result<(), StorageError>;

    /// Flushes whatever is buffered; a store may also checkpoint here from `image`.
    fn flush(&mut self, image: &dyn Fn() -> KeyImage) -> Result<(), StorageError>;
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
    /// The persistent part of the tree (volatile keys left out), from `\REGISTRY` down.
    pub fn image(&self) -> KeyImage {
        self.image_of(self.root())
    }

    fn image_of(&self, id: crate::KeyId) -> KeyImage {
        let n = self.node(id);
        KeyImage {
            name: n.name.clone(),
            class: n.class.clone(),
            last_write: n.last_write,
            link: n.link,
            system_only: n.system_only,
            security: n.security.clone(),
            values: n.values.iter().map(|e| (e.name.clone(), e.value.clone())).collect(),
            subkeys: self.children(id).filter(|c| !self.node(*c).volatile).map(|c| self.image_of(c)).collect(),
        }
    }

    /// Builds a tree from an image. Names are checked; a duplicate subkey name is an error.
    pub fn from_image(image: &KeyImage) -> Result<Self, String> {
        let mut tree = Tree::new(image.last_write);
        let root = tree.root();
        tree.fill(root, image)?;
        Ok(tree)
    }

    fn fill(&mut self, id: crate::KeyId, image: &KeyImage) -> Result<(), String> {
        {
            let n = self.node_mut(id);
            n.class = image.class.clone();
            n.link = image.link;
            n.system_only = image.system_only;
            n.security = image.security.clone();
        }
        for (name, value) in &image.values {
            crate::name::check_value_name(name).map_err(|e| e.to_string())?;
            if self.value(id, name).is_some() {
                return Err(format!("duplicate value {name:?} in {}", self.path(id)));
            }
            self.set_value(id, name, value.clone(), image.last_write);
        }
        for sub in &image.subkeys {
            crate::name::check_key_name(&sub.name).map_err(|e| e.to_string())?;
            if self.child(id, &sub.name).is_some() {
                return Err(format!("duplicate subkey {:?} in {}", sub.name, self.path(id)));
            }
            let child = self.insert_child(id, &sub.name, sub.class.clone(), sub.last_write);
            self.fill(child, sub)?;
        }
        self.node_mut(id).last_write = image.last_write;
        Ok(())
    }

    /// Applies a logged mutation during recovery.
    pub fn replay(&mut self, m: &Mutation) -> Result<(), String> {
        let find = |tree: &Tree, path: &str| -> Result<crate::KeyId, String> {
            let rest = path
                .strip_prefix("\\REGISTRY")
                .filter(|rest| rest.is_empty() || rest.starts_with('\\'))
                .ok_or_else(|| format!("logged path {path:?} does not start with \\REGISTRY"))?;
            let mut cur = tree.root();
            for part in rest.split('\\').skip(1) {
                cur = tree.child(cur, part).ok_or_else(|| format!("logged path {path:?} does not exist"))?;
            }
            Ok(cur)
        };
        let split = |path: &str| -> Result<(String, String), String> {
            path.rsplit_once('\\')
                .map(|(p, n)| (p.to_owned(), n.to_owned()))
                .ok_or_else(|| format!("logged path {path:?} has no parent"))
        };
        match m {
            Mutation::CreateKey { path, class, link, time } => {
                let (parent, name) = split(path)?;
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
            Mutation::SetLastWrite { path, time } => {
                let id = find(self, path)?;
                self.node_mut(id).last_write = *time;
            }
        }
        Ok(())
    }
}
