//! The caller's view of the registry: who is calling, what `HKCU` means, open keys that close
//! themselves, and whole keys (values, subkeys, optionally the subtree) read into memory.
//!
//! A session may run in a registry transaction ([`Session::atomically`]): its keys are then
//! opened and created in that transaction (`NtOpenKeyTransactedEx`), so every change made
//! through them stays private until the transaction commits, and all of them apply at once or
//! none does.

use super::error::RegError;
use hivebox_core::access::{KEY_READ, REG_OPTION_OPEN_LINK};
use hivebox_core::name::upcase;
use hivebox_core::{Disposition, KeyInfo, KeyPath, NtStatus, Value};

/// One `reg` invocation's access to the registry: the daemon's, or the one this process opened
/// itself (`hivebox_daemon::Embedded`); either way through the same typed calls.
pub struct Session {
    pub registry: hivebox_client::Registry,
    /// The caller's SID, as the registry's side identified it: `HKCU` is
    /// `\REGISTRY\USER\<sid>`.
    pub sid: String,
    /// The transaction keys are opened and created in (0: changes apply at once).
    pub txn: u64,
}

/// An open key handle, closed when dropped.
pub struct Key<'a> {
    registry: &'a hivebox_client::Registry,
    pub handle: u64,
}

impl Drop for Key<'_> {
    fn drop(&mut self) {
        // Closing can only fail for a handle that is already gone (or a daemon that went
        // away); there is nothing to do then.
        let _ = self.registry.close_key(self.handle);
    }
}

/// The status of a failed call (the daemon's message, if any, is dropped: the callers here
/// name the key themselves).
pub fn status(e: hivebox_client::Error) -> NtStatus {
    e.status
}

impl Session {
    pub fn new(registry: hivebox_client::Registry) -> Self {
        let sid = registry.transport().identity().sid.clone();
        Self { registry, sid, txn: 0 }
    }

    /// Runs `work` in one registry transaction, through a session whose keys are bound to it:
    /// commits what it did if it succeeds, rolls everything back if it fails. A commit that
    /// fails (`STATUS_TRANSACTIONAL_CONFLICT`: something it changed was changed meanwhile)
    /// applies nothing either, and its status goes through `commit_failed`.
    pub fn atomically<T, E>(
        &self,
        work: impl FnOnce(&Session) -> Result<T, E>,
        commit_failed: impl FnOnce(NtStatus) -> E,
    ) -> Result<T, E> {
        let txn = match self.registry.begin_transaction() {
            Ok(t) => t,
            // Nothing was done, so nothing was applied.
            Err(e) => return Err(commit_failed(e.status)),
        };
        let inner = Session { registry: self.registry.clone(), sid: self.sid.clone(), txn };
        match work(&inner) {
            Ok(done) => self.registry.commit_transaction(txn).map(|()| done).map_err(|e| commit_failed(e.status)),
            Err(e) => {
                // It is active: only this function ends it. Nothing was applied either way.
                let _ = self.registry.rollback_transaction(txn);
                Err(e)
            }
        }
    }

    fn key(&self, handle: u64) -> Key<'_> {
        Key { registry: &self.registry, handle }
    }

    /// The native path of `path` (`HKCU` is the caller's hive, `\REGISTRY\USER\<sid>`, which
    /// the registry's side has mounted).
    pub fn native(&self, path: &KeyPath) -> Result<String, RegError> {
        Ok(path.native(&self.sid))
    }

    /// Opens an existing key by its native path.
    pub fn open_native(&self, native: &str, access: u32) -> Result<Key<'_>, NtStatus> {
        let h = self.registry.open_key(0, native, 0, access, self.txn).map_err(status)?;
        Ok(self.key(h))
    }

    /// Opens an existing key; errors name the key's display path.
    pub fn open(&self, path: &KeyPath, access: u32) -> Result<Key<'_>, RegError> {
        let native = self.native(path)?;
        self.open_native(&native, access).map_err(|s| RegError::at(s, path.display()))
    }

    /// Opens a subkey of an open key; with `link_itself`, a link key itself rather than its
    /// target.
    pub fn open_child(
        &self,
        parent: &Key<'_>,
        name: &str,
        access: u32,
        link_itself: bool,
    ) -> Result<Key<'_>, NtStatus> {
        let options = if link_itself { REG_OPTION_OPEN_LINK } else { 0 };
        let h = self.registry.open_key(parent.handle, name, options, access, self.txn).map_err(status)?;
        Ok(self.key(h))
    }

    /// `RegCreateKeyEx`: creates every missing level of a native path.
    pub fn create_path(&self, native: &str, access: u32) -> Result<(Key<'_>, Disposition), NtStatus> {
        let (h, d) = self.registry.create_key(0, native, None, 0, access, self.txn, true).map_err(status)?;
        Ok((self.key(h), d))
    }

    /// Creates (or opens) one subkey of an open key.
    pub fn create_child(&self, parent: &Key<'_>, name: &str, access: u32) -> Result<(Key<'_>, Disposition), NtStatus> {
        let (h, d) = self.registry.create_key(parent.handle, name, None, 0, access, self.txn, false).map_err(status)?;
        Ok((self.key(h), d))
    }

    /// The key's values, in enumeration order.
    pub fn values(&self, key: &Key<'_>) -> Result<Vec<(String, Value)>, NtStatus> {
        let mut out = Vec::new();
        loop {
            match self.registry.enumerate_value(key.handle, out.len() as u32).map_err(status) {
                Ok(v) => out.push(v),
                Err(NtStatus::STATUS_NO_MORE_ENTRIES) => return Ok(out),
                Err(s) => return Err(s),
            }
        }
    }

    /// The names of the key's subkeys, in enumeration order.
    pub fn subkeys(&self, key: &Key<'_>) -> Result<Vec<String>, NtStatus> {
        let mut out = Vec::new();
        loop {
            match self.registry.enumerate_key(key.handle, out.len() as u32).map_err(status) {
                Ok(info) => out.push(info.name),
                Err(NtStatus::STATUS_NO_MORE_ENTRIES) => return Ok(out),
                Err(s) => return Err(s),
            }
        }
    }

    /// The key's full native name, links resolved.
    pub fn resolved_name(&self, key: &Key<'_>) -> Result<String, NtStatus> {
        self.registry.query_key_name(key.handle).map_err(status)
    }

    /// `NtQueryKey`.
    pub fn info(&self, key: &Key<'_>) -> Result<KeyInfo, NtStatus> {
        self.registry.query_key(key.handle).map_err(status)
    }

    /// Reads a key (and with `recursive` its whole subtree) into memory. `path` is the display
    /// path the key is reached by. Subkeys that cannot be opened (a dangling link, say) are
    /// listed but not read, as `reg.exe` skips them; a link back to a key being read is not
    /// followed again.
    pub fn read(&self, key: &Key<'_>, path: &KeyPath, recursive: bool) -> Result<KeyData, RegError> {
        let mut stack = Vec::new();
        self.read_at(key, path, recursive, &mut stack)
    }

    fn read_at(
        &self,
        key: &Key<'_>,
        path: &KeyPath,
        recursive: bool,
        stack: &mut Vec<String>,
    ) -> Result<KeyData, RegError> {
        let display = path.display();
        let err = |s| RegError::at(s, display.clone());
        let mut data = KeyData {
            name: path.components.last().cloned().unwrap_or_default(),
            path: display.clone(),
            values: self.values(key).map_err(err)?,
            subkeys: self.subkeys(key).map_err(err)?,
            children: Vec::new(),
        };
        if !recursive {
            return Ok(data);
        }
        stack.push(upcase(&self.resolved_name(key).map_err(err)?));
        for name in &data.subkeys {
            let Ok(child) = self.open_child(key, name, KEY_READ, false) else {
                continue;
            };
            let child_path = path.join(name);
            let resolved = upcase(&self.resolved_name(&child).map_err(|s| RegError::at(s, child_path.display()))?);
            let cycle = stack.contains(&resolved);
            data.children.push(self.read_at(&child, &child_path, !cycle, stack)?);
        }
        stack.pop();
        Ok(data)
    }
}

/// A key read into memory.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct KeyData {
    /// The key's own name (empty for a root).
    pub name: String,
    /// The display path it was reached by (`HKEY_LOCAL_MACHINE\...`).
    pub path: String,
    /// Its values, in enumeration order.
    pub values: Vec<(String, Value)>,
    /// The names of all its subkeys.
    pub subkeys: Vec<String>,
    /// The subkeys read (only when reading recursively), in enumeration order.
    pub children: Vec<KeyData>,
}

impl KeyData {
    /// The value with this name (case-insensitive).
    pub fn value(&self, name: &str) -> Option<&Value> {
        self.values.iter().find(|(n, _)| hivebox_core::name::eq_names(n, name)).map(|(_, v)| v)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use hivebox_core::path::Root;
    use hivebox_core::{Caller, KeyImage, ManualClock, MemoryStorage, Registry};
    use std::sync::Arc;

    /// The SID of this process's user, as the registry's side identifies it.
    pub fn my_sid() -> String {
        hivebox_daemon::identity::this_process().expect("this process").sid()
    }

    /// A fresh in-memory registry with the hive of this process's user mounted, as `Home`
    /// mounts it.
    pub fn registry() -> Registry {
        let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
        let sid = my_sid();
        let image = KeyImage { name: sid.clone(), ..KeyImage::default() };
        reg.load_key(&Caller::system(), &Root::CurrentUser.native(&sid), "memory", image, Box::new(MemoryStorage))
            .unwrap();
        reg
    }

    /// A session on `reg`, as this process, through the daemon's in-process transport.
    pub fn session(reg: &Registry) -> Session {
        let me = hivebox_daemon::identity::this_process().expect("this process");
        let transport = Arc::new(hivebox_daemon::Embedded::with_registry(reg.clone(), None, &me));
        Session::new(hivebox_client::Registry::new(transport))
    }

    #[test]
    fn hkcu_is_the_users_hive_and_handles_close() {
        let reg = registry();
        let s = session(&reg);
        let path = KeyPath::parse(r"HKCU").unwrap();
        assert_eq!(s.native(&path).unwrap(), format!(r"\REGISTRY\USER\{}", my_sid()));
        {
            let key = s.open(&path, KEY_READ).unwrap();
            assert_eq!(s.subkeys(&key).unwrap(), Vec::<String>::new());
        }
        assert_eq!(reg.open_handles(), 0);
    }

    #[test]
    fn atomically_commits_all_or_changes_nothing() {
        use hivebox_core::access::{DELETE, KEY_SET_VALUE};
        let reg = registry();
        let s = session(&reg);
        let a = &format!(r"\REGISTRY\USER\{}\A", my_sid());
        let b = &format!(r"\REGISTRY\USER\{}\B", my_sid());
        // What the transaction does is seen only through it until it commits.
        s.atomically(
            |t| {
                let (k, _) = t.create_path(a, KEY_SET_VALUE)?;
                t.registry.set_value(k.handle, "v", Value::dword(1)).map_err(status)?;
                assert_eq!(s.open_native(a, 0).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
                Ok(())
            },
            |st| st,
        )
        .unwrap();
        let k = s.open_native(a, KEY_READ).unwrap();
        assert_eq!(s.registry.query_value(k.handle, "v").unwrap(), Value::dword(1));
        drop(k);
        // A failure rolls everything back.
        let r: Result<(), NtStatus> = s.atomically(
            |t| {
                t.create_path(b, 0)?;
                Err(NtStatus::STATUS_ACCESS_DENIED)
            },
            |st| st,
        );
        assert_eq!(r, Err(NtStatus::STATUS_ACCESS_DENIED));
        assert_eq!(s.open_native(b, 0).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
        // A change made meanwhile outside it that its changes no longer apply to: the commit
        // fails and applies nothing.
        let r = s.atomically(
            |t| {
                t.create_path(b, 0)?;
                let k = t.open_native(a, KEY_SET_VALUE)?;
                t.registry.set_value(k.handle, "w", Value::dword(2)).map_err(status)?;
                let outside = s.open_native(a, DELETE)?;
                s.registry.delete_key(outside.handle).map_err(status)
            },
            |st| st,
        );
        assert_eq!(r, Err(NtStatus::STATUS_TRANSACTIONAL_CONFLICT));
        assert_eq!(s.open_native(a, 0).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(s.open_native(b, 0).err(), Some(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND));
        assert_eq!(reg.open_handles(), 0);
    }

    #[test]
    fn reads_through_links_without_looping() {
        let reg = registry();
        let s = session(&reg);
        let path = KeyPath::parse(r"HKLM\SYSTEM").unwrap();
        let key = s.open(&path, KEY_READ).unwrap();
        let data = s.read(&key, &path, true).unwrap();
        let names: Vec<&str> = data.children.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["ControlSet001", "CurrentControlSet", "Select"]);
        // The link is followed: its subtree is the control set's.
        assert_eq!(data.children[0].subkeys, data.children[1].subkeys);
        assert_eq!(data.children[1].path, r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet");
        drop(key);
        assert_eq!(reg.open_handles(), 0);
    }
}
