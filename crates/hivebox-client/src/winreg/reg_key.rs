//! [`RegKey`]: an open key (or a predefined one) and what can be done with it.

use super::enums::*;
use super::transaction::Transaction;
use super::types::{FromRegValue, ToRegValue};
use super::{FileTime, RegKeyMetadata, RegValue, default_registry, error, forget_default, io_error, same_connection};
use crate::{Error, Registry};
use hivebox_core::{NtStatus, Value};
use std::ffi::OsStr;
use std::io;

/// A key handle (`u64`) or a predefined key (`HKEY_*`), as winreg's `HKEY`.
#[allow(clippy::upper_case_acronyms)]
pub type HKEY = u64;

/// Whether `hkey` is one of the predefined keys. (Not every id past `PREDEFINED_BASE` is:
/// handles are generational slab ids, `generation << 32 | index`, all at least `2^32`.)
const fn is_predefined(hkey: HKEY) -> bool {
    matches!(hkey, HKEY_CLASSES_ROOT | HKEY_CURRENT_USER | HKEY_LOCAL_MACHINE | HKEY_USERS)
}

/// Rights asked for when deleting a tree: to list a key's subkeys and delete them.
const TREE_RIGHTS: u32 = KEY_ENUMERATE_SUB_KEYS | KEY_QUERY_VALUE | DELETE;

/// Which connection a key uses.
enum Conn {
    /// The default connection, looked up at each use (only predefined keys have this).
    Default,
    /// This one.
    On(Registry),
}

/// An open registry key, or a predefined one. Dropping a key closes its handle; predefined
/// keys are not handles and have nothing to close.
///
/// A predefined key used directly (`RegKey::predef(HKEY_CURRENT_USER).get_value(..)`) opens
/// a handle to itself for the operation and closes it after.
pub struct RegKey {
    conn: Conn,
    hkey: HKEY,
    /// Close `hkey` on drop.
    owned: bool,
}

impl std::fmt::Debug for RegKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("RegKey");
        d.field("hkey", &format_args!("{:#x}", self.hkey));
        match &self.conn {
            Conn::Default => d.field("connection", &"default"),
            Conn::On(r) => d.field("connection", r),
        };
        d.finish()
    }
}

fn no_more(e: &Error) -> bool {
    e.status == NtStatus::STATUS_NO_MORE_ENTRIES
}

/// A name or path as the daemon takes it (UTF-8).
fn utf8<'a>(s: &'a OsStr, what: &str) -> io::Result<&'a str> {
    s.to_str().ok_or_else(|| {
        let inner =
            Error { status: NtStatus::STATUS_OBJECT_NAME_INVALID, message: format!("{what} {s:?} is not UTF-8") };
        io::Error::new(io::ErrorKind::InvalidInput, inner)
    })
}

/// Rights as the daemon takes them (the `KEY_WOW64_*` view flags mean nothing here).
fn rights(perms: u32) -> u32 {
    perms & !KEY_WOW64_RES
}

impl RegKey {
    /// One of the predefined keys (`HKEY_CLASSES_ROOT`, `HKEY_CURRENT_USER`,
    /// `HKEY_LOCAL_MACHINE`, `HKEY_USERS`) on the default connection (see
    /// [`super::default_registry`]), which is made when the key is first used.
    ///
    /// ```no_run
    /// # use hivebox_client::winreg::{RegKey, enums::*};
    /// let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    /// ```
    pub const fn predef(hkey: HKEY) -> RegKey {
        RegKey { conn: Conn::Default, hkey, owned: false }
    }

    /// A predefined key on `registry`'s connection.
    pub fn predef_on(registry: &Registry, hkey: HKEY) -> RegKey {
        RegKey { conn: Conn::On(registry.clone()), hkey, owned: false }
    }

    /// Takes ownership of `handle`, a handle of `registry`'s connection (from the typed
    /// [`Registry`] calls): the key closes it when dropped.
    pub fn from_raw_handle_on(registry: &Registry, handle: HKEY) -> RegKey {
        RegKey { conn: Conn::On(registry.clone()), hkey: handle, owned: !is_predefined(handle) }
    }

    /// The handle (or predefined key).
    pub const fn raw_handle(&self) -> HKEY {
        self.hkey
    }

    /// Gives the handle up without closing it.
    pub fn into_raw_handle(mut self) -> HKEY {
        self.owned = false;
        self.hkey
    }

    /// Whether this is a predefined key rather than a handle.
    pub const fn is_predefined(&self) -> bool {
        is_predefined(self.hkey)
    }

    /// The connection the key uses (for a predefined key on the default connection, the
    /// default connection, made now if need be).
    pub fn registry(&self) -> io::Result<Registry> {
        match &self.conn {
            Conn::Default => default_registry(),
            Conn::On(r) => Ok(r.clone()),
        }
    }

    fn child(registry: Registry, handle: HKEY) -> RegKey {
        RegKey { conn: Conn::On(registry), hkey: handle, owned: true }
    }

    /// Runs `f` with this key as the parent: the registry and the transaction id to use.
    /// A predefined key on the default connection whose connection was lost connects again,
    /// once.
    fn as_parent<R>(
        &self,
        txn: Option<&Transaction>,
        f: impl Fn(&Registry, u64) -> Result<R, Error>,
    ) -> io::Result<(Registry, R)> {
        let reg = self.registry()?;
        let txn_id = match txn {
            None => 0,
            Some(t) if same_connection(&reg, t.registry()) => t.raw_handle(),
            Some(_) => {
                return Err(error(
                    NtStatus::STATUS_INVALID_TRANSACTION,
                    "the transaction belongs to another connection than the key",
                ));
            }
        };
        match f(&reg, txn_id) {
            Ok(r) => Ok((reg, r)),
            Err(e)
                if e.status == NtStatus::STATUS_CONNECTION_DISCONNECTED
                    && txn.is_none()
                    && matches!(self.conn, Conn::Default) =>
            {
                forget_default(&reg);
                let reg = default_registry()?;
                let r = f(&reg, 0).map_err(io_error)?;
                Ok((reg, r))
            }
            Err(e) => Err(io_error(e)),
        }
    }

    /// Opens `path` under this key: the registry and the new handle.
    fn open_raw(
        &self,
        path: &str,
        options: u32,
        access: u32,
        txn: Option<&Transaction>,
    ) -> io::Result<(Registry, u64)> {
        self.as_parent(txn, |reg, t| reg.open_key(self.hkey, path, options, rights(access), t))
    }

    /// Runs `f` on a handle to this key with at least `access` (a predefined key opens one
    /// for the call).
    fn with_handle<R>(&self, access: u32, f: impl FnOnce(&Registry, u64) -> Result<R, Error>) -> io::Result<R> {
        if self.is_predefined() {
            let (reg, h) = self.open_raw("", 0, access, None)?;
            let r = f(&reg, h);
            let _ = reg.close_key(h);
            r.map_err(io_error)
        } else {
            f(&self.registry()?, self.hkey).map_err(io_error)
        }
    }

    /// Opens a subkey with `KEY_READ`. An empty path opens another handle to this key.
    ///
    /// ```no_run
    /// # use hivebox_client::winreg::{RegKey, enums::*};
    /// let soft = RegKey::predef(HKEY_CURRENT_USER).open_subkey("Software")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn open_subkey<P: AsRef<OsStr>>(&self, path: P) -> io::Result<RegKey> {
        self.open_subkey_with_flags(path, KEY_READ)
    }

    /// Opens a subkey with the rights `perms`.
    pub fn open_subkey_with_flags<P: AsRef<OsStr>>(&self, path: P, perms: u32) -> io::Result<RegKey> {
        self.open_subkey_with_options_flags(path, 0, perms)
    }

    /// Opens a subkey with `REG_OPTION_*` `options` (`REG_OPTION_OPEN_LINK` opens a link key
    /// itself rather than its target) and the rights `perms`.
    pub fn open_subkey_with_options_flags<P: AsRef<OsStr>>(
        &self,
        path: P,
        options: u32,
        perms: u32,
    ) -> io::Result<RegKey> {
        let path = utf8(path.as_ref(), "key path")?;
        let (reg, h) = self.open_raw(path, options, perms, None)?;
        Ok(RegKey::child(reg, h))
    }

    /// Opens a subkey with `KEY_READ` in the transaction `t`.
    pub fn open_subkey_transacted<P: AsRef<OsStr>>(&self, path: P, t: &Transaction) -> io::Result<RegKey> {
        self.open_subkey_transacted_with_flags(path, t, KEY_READ)
    }

    /// Opens a subkey with the rights `perms` in the transaction `t`: the key sees the
    /// registry as the transaction does, and changes made through it are the transaction's.
    pub fn open_subkey_transacted_with_flags<P: AsRef<OsStr>>(
        &self,
        path: P,
        t: &Transaction,
        perms: u32,
    ) -> io::Result<RegKey> {
        let path = utf8(path.as_ref(), "key path")?;
        let (reg, h) = self.open_raw(path, 0, perms, Some(t))?;
        Ok(RegKey::child(reg, h))
    }

    fn create(
        &self,
        path: &OsStr,
        options: u32,
        perms: u32,
        txn: Option<&Transaction>,
    ) -> io::Result<(RegKey, RegDisposition)> {
        let path = utf8(path, "key path")?;
        let (reg, (h, d)) =
            self.as_parent(txn, |reg, t| reg.create_key(self.hkey, path, None, options, rights(perms), t, true))?;
        Ok((RegKey::child(reg, h), d.into()))
    }

    /// Creates a subkey, and every missing key on the way to it, or opens it if it exists;
    /// with `KEY_ALL_ACCESS`. Says which it did.
    ///
    /// ```no_run
    /// # use hivebox_client::winreg::{RegKey, enums::*};
    /// let hkcu = RegKey::predef(HKEY_CURRENT_USER);
    /// let (settings, disp) = hkcu.create_subkey(r"Software\MyProduct\Settings")?;
    /// match disp {
    ///     REG_CREATED_NEW_KEY => println!("A new key has been created"),
    ///     REG_OPENED_EXISTING_KEY => println!("An existing key has been opened"),
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn create_subkey<P: AsRef<OsStr>>(&self, path: P) -> io::Result<(RegKey, RegDisposition)> {
        self.create_subkey_with_flags(path, KEY_ALL_ACCESS)
    }

    /// [`RegKey::create_subkey`] with the rights `perms`.
    pub fn create_subkey_with_flags<P: AsRef<OsStr>>(
        &self,
        path: P,
        perms: u32,
    ) -> io::Result<(RegKey, RegDisposition)> {
        self.create(path.as_ref(), REG_OPTION_NON_VOLATILE, perms, None)
    }

    /// [`RegKey::create_subkey`] with `REG_OPTION_*` `options` (`REG_OPTION_VOLATILE`: the
    /// new keys are never stored) and the rights `perms`.
    pub fn create_subkey_with_options_flags<P: AsRef<OsStr>>(
        &self,
        path: P,
        options: u32,
        perms: u32,
    ) -> io::Result<(RegKey, RegDisposition)> {
        self.create(path.as_ref(), options, perms, None)
    }

    /// [`RegKey::create_subkey`] in the transaction `t`.
    pub fn create_subkey_transacted<P: AsRef<OsStr>>(
        &self,
        path: P,
        t: &Transaction,
    ) -> io::Result<(RegKey, RegDisposition)> {
        self.create_subkey_transacted_with_flags(path, t, KEY_ALL_ACCESS)
    }

    /// [`RegKey::create_subkey`] in the transaction `t`, with the rights `perms`.
    pub fn create_subkey_transacted_with_flags<P: AsRef<OsStr>>(
        &self,
        path: P,
        t: &Transaction,
        perms: u32,
    ) -> io::Result<(RegKey, RegDisposition)> {
        self.create(path.as_ref(), REG_OPTION_NON_VOLATILE, perms, Some(t))
    }

    /// Copies the values and subkeys (recursively) of `path` (this key if empty) into `dest`,
    /// as `RegCopyTree`. `dest` may be on another connection.
    pub fn copy_tree<P: AsRef<OsStr>>(&self, path: P, dest: &RegKey) -> io::Result<()> {
        let path = utf8(path.as_ref(), "key path")?;
        let (sreg, src) = self.open_raw(path, 0, KEY_READ, None)?;
        let src = RegKey::child(sreg, src);
        let sreg = src.registry()?;
        dest.with_handle(KEY_SET_VALUE | KEY_CREATE_SUB_KEY, |dreg, dst| copy_tree(&sreg, src.hkey, dreg, dst))
    }

    /// The key's counts, longest names and last write time (`RegQueryInfoKey`).
    pub fn query_info(&self) -> io::Result<RegKeyMetadata> {
        let k = self.with_handle(KEY_QUERY_VALUE, |reg, h| reg.query_key(h))?;
        Ok(RegKeyMetadata {
            sub_keys: k.subkeys,
            max_sub_key_len: k.max_subkey_name_len,
            max_class_len: k.max_class_len,
            values: k.values,
            max_value_name_len: k.max_value_name_len,
            max_value_len: k.max_value_data_len,
            last_write_time: FileTime::from_u64(k.last_write),
        })
    }

    /// The key's full native name (`\REGISTRY\MACHINE\SOFTWARE\...`); not in winreg.
    pub fn native_name(&self) -> io::Result<String> {
        self.with_handle(KEY_QUERY_VALUE, |reg, h| reg.query_key_name(h))
    }

    /// The names of the subkeys, in the registry's order (sorted by upcased name, as
    /// `RegEnumKeyEx` reports them).
    ///
    /// ```no_run
    /// # use hivebox_client::winreg::{RegKey, enums::*};
    /// for name in RegKey::predef(HKEY_CLASSES_ROOT).enum_keys() {
    ///     println!("{}", name?);
    /// }
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn enum_keys(&self) -> EnumKeys<'_> {
        EnumKeys(Cursor::new(self))
    }

    /// The values, names with types and data, in the order they were first set (as Windows
    /// keeps them). A value whose type number has no [`RegType`] is reported as an
    /// `InvalidData` item, and the enumeration goes on.
    pub fn enum_values(&self) -> EnumValues<'_> {
        EnumValues(Cursor::new(self))
    }

    /// Deletes the subkey `path`, which must have no subkeys (see
    /// [`RegKey::delete_subkey_all`]). A symbolic link is deleted itself, not its target.
    pub fn delete_subkey<P: AsRef<OsStr>>(&self, path: P) -> io::Result<()> {
        self.delete_subkey_with_flags(path, 0)
    }

    /// [`RegKey::delete_subkey`]; the `KEY_WOW64_*` view flags are accepted and ignored.
    pub fn delete_subkey_with_flags<P: AsRef<OsStr>>(&self, path: P, perms: u32) -> io::Result<()> {
        let _ = perms;
        self.delete(path.as_ref(), None)
    }

    /// [`RegKey::delete_subkey`] in the transaction `t`.
    pub fn delete_subkey_transacted<P: AsRef<OsStr>>(&self, path: P, t: &Transaction) -> io::Result<()> {
        self.delete(path.as_ref(), Some(t))
    }

    /// [`RegKey::delete_subkey_transacted`]; the `KEY_WOW64_*` view flags are ignored.
    pub fn delete_subkey_transacted_with_flags<P: AsRef<OsStr>>(
        &self,
        path: P,
        t: &Transaction,
        perms: u32,
    ) -> io::Result<()> {
        let _ = perms;
        self.delete(path.as_ref(), Some(t))
    }

    fn delete(&self, path: &OsStr, txn: Option<&Transaction>) -> io::Result<()> {
        let path = utf8(path, "key path")?;
        let (reg, h) = self.open_raw(path, REG_OPTION_OPEN_LINK, DELETE, txn)?;
        let r = reg.delete_key(h);
        let _ = reg.close_key(h);
        r.map_err(io_error)
    }

    /// Deletes the subkey `path` with all its subkeys and values, as `RegDeleteTree`; with an
    /// empty path, deletes this key's subkeys and values (the key stays). Symbolic links in
    /// the tree are deleted, not followed.
    pub fn delete_subkey_all<P: AsRef<OsStr>>(&self, path: P) -> io::Result<()> {
        let path = utf8(path.as_ref(), "key path")?;
        if path.is_empty() {
            let (reg, h) = self.open_raw("", 0, TREE_RIGHTS | KEY_SET_VALUE, None)?;
            let r = delete_subkeys(&reg, h).and_then(|()| delete_values(&reg, h));
            let _ = reg.close_key(h);
            return r.map_err(io_error);
        }
        let (reg, h) = self.open_raw(path, REG_OPTION_OPEN_LINK, TREE_RIGHTS, None)?;
        let r = delete_subkeys(&reg, h).and_then(|()| reg.delete_key(h));
        let _ = reg.close_key(h);
        r.map_err(io_error)
    }

    /// Reads a value as `T` (`String`, `u32`, `u64`, `Vec<String>`, `OsString`, ...). An
    /// empty name reads the default value.
    ///
    /// ```no_run
    /// # use hivebox_client::winreg::{RegKey, enums::*};
    /// let settings = RegKey::predef(HKEY_CURRENT_USER).open_subkey(r"Software\MyProduct\Settings")?;
    /// let server: String = settings.get_value("server")?;
    /// let port: u32 = settings.get_value("port")?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn get_value<T: FromRegValue, N: AsRef<OsStr>>(&self, name: N) -> io::Result<T> {
        T::from_reg_value(&self.get_raw_value(name)?)
    }

    /// Reads a value's type and bytes.
    pub fn get_raw_value<N: AsRef<OsStr>>(&self, name: N) -> io::Result<RegValue> {
        let name = utf8(name.as_ref(), "value name")?;
        let value = self.with_handle(KEY_QUERY_VALUE, |reg, h| reg.query_value(h, name))?;
        reg_value(name, value)
    }

    /// Writes a value converted from `value` (`&str`, `String`, `u32`, `u64`, a list of
    /// strings, ...). An empty name writes the default value.
    ///
    /// ```no_run
    /// # use hivebox_client::winreg::{RegKey, enums::*};
    /// let (settings, _) = RegKey::predef(HKEY_CURRENT_USER).create_subkey(r"Software\MyProduct\Settings")?;
    /// settings.set_value("server", &"www.example.com")?;
    /// settings.set_value("port", &8080u32)?;
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn set_value<T: ToRegValue + ?Sized, N: AsRef<OsStr>>(&self, name: N, value: &T) -> io::Result<()> {
        self.set_raw_value(name, &value.to_reg_value())
    }

    /// Writes a value's type and bytes as they are.
    pub fn set_raw_value<N: AsRef<OsStr>>(&self, name: N, value: &RegValue) -> io::Result<()> {
        let name = utf8(name.as_ref(), "value name")?;
        self.with_handle(KEY_SET_VALUE, |reg, h| reg.set_value(h, name, Value::from(value)))
    }

    /// Deletes a value (the default value if `name` is empty).
    pub fn delete_value<N: AsRef<OsStr>>(&self, name: N) -> io::Result<()> {
        let name = utf8(name.as_ref(), "value name")?;
        self.with_handle(KEY_SET_VALUE, |reg, h| reg.delete_value(h, name))
    }

    /// Renames the subkey `old_name` (this key if empty) to `new_name`, as `RegRenameKey`:
    /// only the last component changes; the key keeps its values and subkeys.
    pub fn rename_subkey<ON: AsRef<OsStr>, NN: AsRef<OsStr>>(&self, old_name: ON, new_name: NN) -> io::Result<()> {
        let old_name = utf8(old_name.as_ref(), "key path")?;
        let new_name = utf8(new_name.as_ref(), "key name")?;
        let (reg, h) = self.open_raw(old_name, REG_OPTION_OPEN_LINK, KEY_WRITE, None)?;
        let r = reg.rename_key(h, new_name);
        let _ = reg.close_key(h);
        r.map_err(io_error)
    }
}

impl Drop for RegKey {
    fn drop(&mut self) {
        if self.owned
            && let Conn::On(reg) = &self.conn
        {
            let _ = reg.close_key(self.hkey);
        }
    }
}

fn reg_value(name: &str, value: Value) -> io::Result<RegValue> {
    RegValue::try_from(value).map_err(|v| {
        error(
            NtStatus::STATUS_OBJECT_TYPE_MISMATCH,
            format!("value {name:?} has type {}, which RegType does not name", v.ty),
        )
    })
}

/// Deletes every subkey of `h`, depth first.
fn delete_subkeys(reg: &Registry, h: u64) -> Result<(), Error> {
    loop {
        let name = match reg.enumerate_key(h, 0) {
            Ok(s) => s.name,
            Err(e) if no_more(&e) => return Ok(()),
            Err(e) => return Err(e),
        };
        let child = reg.open_key(h, &name, REG_OPTION_OPEN_LINK, TREE_RIGHTS, 0)?;
        let r = delete_subkeys(reg, child).and_then(|()| reg.delete_key(child));
        let _ = reg.close_key(child);
        r?;
    }
}

/// Deletes every value of `h`.
fn delete_values(reg: &Registry, h: u64) -> Result<(), Error> {
    loop {
        match reg.enumerate_value(h, 0) {
            Ok((name, _)) => reg.delete_value(h, &name)?,
            Err(e) if no_more(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}

/// Copies the values and subkeys of `src` into `dst`.
fn copy_tree(sreg: &Registry, src: u64, dreg: &Registry, dst: u64) -> Result<(), Error> {
    for i in 0.. {
        match sreg.enumerate_value(src, i) {
            Ok((name, value)) => dreg.set_value(dst, &name, value)?,
            Err(e) if no_more(&e) => break,
            Err(e) => return Err(e),
        }
    }
    for i in 0.. {
        let sub = match sreg.enumerate_key(src, i) {
            Ok(s) => s,
            Err(e) if no_more(&e) => break,
            Err(e) => return Err(e),
        };
        let s = sreg.open_key(src, &sub.name, 0, KEY_READ, 0)?;
        let r = dreg.create_key(dst, &sub.name, sub.class.as_deref(), 0, KEY_READ | KEY_WRITE, 0, false).and_then(
            |(d, _)| {
                let r = copy_tree(sreg, s, dreg, d);
                let _ = dreg.close_key(d);
                r
            },
        );
        let _ = sreg.close_key(s);
        r?;
    }
    Ok(())
}

/// Where an enumeration is: the key, a handle of its own for a predefined key, the index.
#[derive(Debug)]
struct Cursor<'key> {
    key: &'key RegKey,
    /// The registry and handle enumerated, once known.
    open: Option<(Registry, u64)>,
    /// The handle opened for a predefined key (closed with the cursor).
    temp: Option<RegKey>,
    index: u32,
    done: bool,
}

impl<'key> Cursor<'key> {
    fn new(key: &'key RegKey) -> Self {
        Cursor { key, open: None, temp: None, index: 0, done: false }
    }

    /// The next entry from `f(registry, handle, index)`; `None` past the last one or after
    /// an error.
    fn next<T>(
        &mut self,
        access: u32,
        f: impl FnOnce(&Registry, u64, u32) -> Result<io::Result<T>, Error>,
    ) -> Option<io::Result<T>> {
        if self.done {
            return None;
        }
        if self.open.is_none() {
            let opened = if self.key.is_predefined() {
                self.key.open_raw("", 0, access, None).map(|(reg, h)| {
                    self.temp = Some(RegKey::child(reg.clone(), h));
                    (reg, h)
                })
            } else {
                self.key.registry().map(|reg| (reg, self.key.hkey))
            };
            match opened {
                Ok(o) => self.open = Some(o),
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let (reg, h) = self.open.as_ref()?;
        match f(reg, *h, self.index) {
            Ok(item) => {
                // An entry that does not convert is reported, and the enumeration goes on.
                self.index += 1;
                Some(item)
            }
            Err(e) => {
                self.done = true;
                if no_more(&e) { None } else { Some(Err(io_error(e))) }
            }
        }
    }

    fn skip(&mut self, n: usize) {
        self.index = self.index.saturating_add(u32::try_from(n).unwrap_or(u32::MAX));
    }
}

/// The names of a key's subkeys ([`RegKey::enum_keys`]).
#[derive(Debug)]
pub struct EnumKeys<'key>(Cursor<'key>);

impl Iterator for EnumKeys<'_> {
    type Item = io::Result<String>;

    fn next(&mut self) -> Option<io::Result<String>> {
        self.0.next(KEY_ENUMERATE_SUB_KEYS, |reg, h, i| reg.enumerate_key(h, i).map(|s| Ok(s.name)))
    }

    fn nth(&mut self, n: usize) -> Option<io::Result<String>> {
        self.0.skip(n);
        self.next()
    }
}

/// A key's values ([`RegKey::enum_values`]).
#[derive(Debug)]
pub struct EnumValues<'key>(Cursor<'key>);

impl Iterator for EnumValues<'_> {
    type Item = io::Result<(String, RegValue)>;

    fn next(&mut self) -> Option<io::Result<(String, RegValue)>> {
        self.0.next(KEY_QUERY_VALUE, |reg, h, i| {
            let (name, value) = reg.enumerate_value(h, i)?;
            Ok(reg_value(&name, value).map(|v| (name, v)))
        })
    }

    fn nth(&mut self, n: usize) -> Option<io::Result<(String, RegValue)>> {
        self.0.skip(n);
        self.next()
    }
}
