//! An undo journal: changes made through it are recorded with what it takes to reverse them,
//! so that a command that fails halfway (`import`) can put everything back as it was.
//!
//! The registry has no transactions, so "as it was" is rebuilt through the same API: values
//! get their old data back (in their old place: a deleted value is put back with the values
//! after it in their order), created keys are deleted, and deleted trees are created again
//! with their classes, values, volatility and links. What cannot be rebuilt that way is not:
//! last-write times, and rights reserved to SYSTEM on keys that were deleted and recreated.
//! Keys are recorded by their resolved native paths, so undoing never depends on links.

use super::error::{RegError, status_name, value_path};
use super::session::{Key, Session};
use super::{native_levels, native_prefix, remove_created};
use hivebox_core::access::{
    DELETE, KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE, REG_OPTION_CREATE_LINK, REG_OPTION_VOLATILE,
};
use hivebox_core::name::eq_names;
use hivebox_core::{CreateOptions, KeyPath, NtStatus, Value};
use std::fmt;

/// A key as it was before it was deleted.
struct SavedKey {
    native: String,
    class: Option<String>,
    volatile: bool,
    link: bool,
    values: Vec<(String, Value)>,
}

/// One recorded change.
enum Change {
    /// A key that did not exist was created.
    CreatedKey(String),
    /// A value was set; it had `prior` before (`None`: it did not exist).
    SetValue { key: String, name: String, prior: Option<Value> },
    /// `values[index]` was deleted; `values` are all the key's values as they were.
    DeletedValue { key: String, values: Vec<(String, Value)>, index: usize },
    /// Keys were deleted, in this order (children before their parents).
    DeletedKeys(Vec<SavedKey>),
}

/// An undo step that failed: the status, and the native path of the key.
#[derive(Debug)]
pub struct UndoFailure {
    pub status: NtStatus,
    pub native: String,
}

impl fmt::Display for UndoFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at {}", status_name(self.status), shown(&self.native))
    }
}

/// A native path in the display form: `\REGISTRY\MACHINE\X` as `HKEY_LOCAL_MACHINE\X`.
fn shown(native: &str) -> String {
    for (prefix, root) in [("\\REGISTRY\\MACHINE", "HKEY_LOCAL_MACHINE"), ("\\REGISTRY\\USER", "HKEY_USERS")] {
        if let Some(rest) = native.strip_prefix(prefix)
            && (rest.is_empty() || rest.starts_with('\\'))
        {
            return format!("{root}{rest}");
        }
    }
    native.to_owned()
}

/// The changes made so far, and the session they were made in.
pub struct Journal<'s, 'r> {
    s: &'s Session<'r>,
    done: Vec<Change>,
}

impl<'s, 'r> Journal<'s, 'r> {
    pub fn new(s: &'s Session<'r>) -> Self {
        Self { s, done: Vec::new() }
    }

    /// `RegCreateKeyEx` on `path` (every missing level); records the levels it created.
    /// Returns the key and its resolved native path.
    pub fn create(&mut self, path: &KeyPath, access: u32) -> Result<(Key<'s>, String), RegError> {
        let s = self.s;
        let display = path.display();
        let native = s.native(path)?;
        let existed = existing_levels(s, &native).map_err(|st| RegError::at(st, display.clone()))?;
        let created = native_levels(&native).len().saturating_sub(existed);
        let resolved = s.create_path(&native, access).and_then(|(key, _)| Ok((s.resolved_name(&key)?, key)));
        let (resolved, key) = match resolved {
            Ok(r) => r,
            Err(status) => {
                remove_created(s, &native, Some(existed));
                return Err(RegError::at(status, display));
            }
        };
        // The created levels are new keys, never links: the last `created` levels of the
        // resolved path.
        let levels = native_levels(&resolved);
        for n in levels.len().saturating_sub(created) + 1..=levels.len() {
            self.done.push(Change::CreatedKey(native_prefix(&levels, n)));
        }
        Ok((key, resolved))
    }

    /// Sets a value of `key` (whose resolved native path is `native`, display path `display`).
    pub fn set_value(
        &mut self,
        key: &Key<'_>,
        native: &str,
        display: &str,
        name: &str,
        value: Value,
    ) -> Result<(), RegError> {
        let s = self.s;
        let err = |st| RegError::at_value(st, display, name);
        let prior = match s.registry.query_value(&s.caller, key.handle, name) {
            Ok(v) => Some(v),
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => None,
            Err(st) => return Err(err(st)),
        };
        s.registry.set_value(&s.caller, key.handle, name, value).map_err(err)?;
        self.done.push(Change::SetValue { key: native.to_owned(), name: name.to_owned(), prior });
        Ok(())
    }

    /// Deletes a value of `key`; a value that does not exist is left alone (as `regedit` does).
    pub fn delete_value(&mut self, key: &Key<'_>, native: &str, display: &str, name: &str) -> Result<(), RegError> {
        let s = self.s;
        let values = s.values(key).map_err(|st| RegError::at(st, display))?;
        let Some(index) = values.iter().position(|(n, _)| eq_names(n, name)) else {
            return Ok(());
        };
        s.registry.delete_value(&s.caller, key.handle, name).map_err(|st| RegError::at_value(st, display, name))?;
        self.done.push(Change::DeletedValue { key: native.to_owned(), values, index });
        Ok(())
    }

    /// Deletes a key with its subtree, children first; a key that does not exist is left alone
    /// (as `regedit` does). Every key is opened (and read, to be put back) before the first is
    /// deleted; links inside the tree are deleted themselves, never what they point to.
    pub fn delete_tree(&mut self, path: &KeyPath) -> Result<(), RegError> {
        let s = self.s;
        let display = path.display();
        let native = s.native(path)?;
        let top = match s.open_native(&native, DELETE | KEY_READ) {
            Ok(k) => k,
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND | NtStatus::STATUS_OBJECT_PATH_NOT_FOUND) => return Ok(()),
            Err(st) => return Err(RegError::at(st, display)),
        };
        let resolved = s.resolved_name(&top).map_err(|st| RegError::at(st, display.clone()))?;
        if native_levels(&resolved).len() <= 2 {
            return Err(RegError::Refused {
                message: "a root or hive key cannot be deleted".into(),
                status: NtStatus::STATUS_CANNOT_DELETE,
                at: display,
            });
        }
        let mut keys = Vec::new();
        self.save(top, resolved, path.clone(), &mut keys)?;
        let mut deleted = Vec::new();
        let mut result = Ok(());
        for (key, saved, key_path) in keys.into_iter().rev() {
            if let Err(st) = s.registry.delete_key(&s.caller, key.handle) {
                result = Err(RegError::at(st, key_path.display()));
                break;
            }
            deleted.push(saved);
        }
        if !deleted.is_empty() {
            self.done.push(Change::DeletedKeys(deleted));
        }
        result
    }

    /// Records `key` and (unless it is a link) its subtree, parents first.
    fn save(
        &self,
        key: Key<'s>,
        native: String,
        path: KeyPath,
        out: &mut Vec<(Key<'s>, SavedKey, KeyPath)>,
    ) -> Result<(), RegError> {
        let s = self.s;
        let err = |st| RegError::at(st, path.display());
        let info = s.info(&key).map_err(err)?;
        let values = s.values(&key).map_err(err)?;
        let subkeys = if info.link { Vec::new() } else { s.subkeys(&key).map_err(err)? };
        let saved = SavedKey { native, class: info.class, volatile: info.volatile, link: info.link, values };
        out.push((key, saved, path.clone()));
        let parent = out.len() - 1;
        for name in subkeys {
            let child_path = path.join(&name);
            let err = |st| RegError::at(st, child_path.display());
            let child = s.open_child(&out[parent].0, &name, DELETE | KEY_READ, true).map_err(err)?;
            let child_native = s.resolved_name(&child).map_err(err)?;
            self.save(child, child_native, child_path.clone(), out)?;
        }
        Ok(())
    }

    /// Undoes every recorded change, the last one first. Undoing goes on past a step that
    /// fails; the first failure is returned.
    pub fn undo(mut self) -> Option<UndoFailure> {
        let mut first = None;
        while let Some(change) = self.done.pop() {
            if let Err(failure) = self.undo_one(change) {
                first.get_or_insert(failure);
            }
        }
        first
    }

    fn undo_one(&self, change: Change) -> Result<(), UndoFailure> {
        let s = self.s;
        match change {
            Change::CreatedKey(native) => {
                let key = s.open_native(&native, DELETE).map_err(fail(&native))?;
                s.registry.delete_key(&s.caller, key.handle).map_err(fail(&native))
            }
            Change::SetValue { key, name, prior } => {
                let k = s.open_native(&key, KEY_QUERY_VALUE | KEY_SET_VALUE).map_err(fail(&key))?;
                let at = value_path(&key, &name);
                match prior {
                    Some(v) => s.registry.set_value(&s.caller, k.handle, &name, v).map_err(fail(&at)),
                    None => s.registry.delete_value(&s.caller, k.handle, &name).map_err(fail(&at)),
                }
            }
            Change::DeletedValue { key, values, index } => {
                // The values after the deleted one go too, and come back after it in order.
                let k = s.open_native(&key, KEY_QUERY_VALUE | KEY_SET_VALUE).map_err(fail(&key))?;
                for (name, _) in values.iter().skip(index + 1) {
                    match s.registry.delete_value(&s.caller, k.handle, name) {
                        Ok(()) | Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => {}
                        Err(st) => return Err(fail(&value_path(&key, name))(st)),
                    }
                }
                for (name, value) in values.into_iter().skip(index) {
                    let at = value_path(&key, &name);
                    s.registry.set_value(&s.caller, k.handle, &name, value).map_err(fail(&at))?;
                }
                Ok(())
            }
            Change::DeletedKeys(keys) => keys.into_iter().rev().try_for_each(|saved| self.recreate(saved)),
        }
    }

    /// Creates a deleted key again, as it was.
    fn recreate(&self, saved: SavedKey) -> Result<(), UndoFailure> {
        let s = self.s;
        let fail = |status| UndoFailure { status, native: saved.native.clone() };
        let mut options = 0;
        if saved.volatile {
            options |= REG_OPTION_VOLATILE;
        }
        if saved.link {
            options |= REG_OPTION_CREATE_LINK;
        }
        let opts =
            CreateOptions { desired_access: KEY_SET_VALUE, options, class: saved.class.clone(), ..Default::default() };
        let (handle, _) = s.registry.create_key(&s.caller, None, &saved.native, &opts).map_err(fail)?;
        let result = saved
            .values
            .iter()
            .try_for_each(|(name, value)| s.registry.set_value(&s.caller, handle, name, value.clone()).map_err(fail));
        let _ = s.registry.close_key(&s.caller, handle);
        result
    }
}

/// An undo step's error at `native`.
fn fail(native: &str) -> impl Fn(NtStatus) -> UndoFailure + '_ {
    move |status| UndoFailure { status, native: native.to_owned() }
}

/// How many levels of `native` exist already; an error for a level that cannot be told.
fn existing_levels(s: &Session<'_>, native: &str) -> Result<usize, NtStatus> {
    let levels = native_levels(native);
    for n in 1..=levels.len() {
        match s.open_native(&native_prefix(&levels, n), 0) {
            Ok(_) => {}
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => return Ok(n - 1),
            Err(st) => return Err(st),
        }
    }
    Ok(levels.len())
}
