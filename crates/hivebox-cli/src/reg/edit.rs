//! The writing verbs: `add`, `delete`, `copy`, `rename`, `flush`.
//!
//! Each checks its input completely before the first change, so a bad type, unparseable
//! data, an over-long name or a missing `/f` leaves the registry as it was.

use super::args::{AddArgs, DeleteArgs, DeleteWhat};
use super::error::{RegError, value_path};
use super::session::{Key, Session};
use super::{Io, existing_levels, native_levels, parse_path, parse_type, remove_created, success};
use hivebox_core::access::{DELETE, KEY_ENUMERATE_SUB_KEYS, KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE, KEY_WRITE};
use hivebox_core::name::{check_key_name, check_value_name};
use hivebox_core::{KeyPath, NtStatus, Value};

/// A value's data parsed from `/t TYPE /d DATA [/s SEP]`.
fn parse_value(a: &AddArgs) -> Result<Value, RegError> {
    let ty = parse_type(a.ty.as_deref().unwrap_or("REG_SZ"))?;
    Value::from_text(ty, a.data.as_deref().unwrap_or(""), a.separator.as_deref())
        .map_err(|e| RegError::Invalid { message: e.to_string(), status: NtStatus::STATUS_DATA_ERROR })
}

/// Checks a value name against the registry's limits.
pub fn check_value(name: &str) -> Result<(), RegError> {
    check_value_name(name).map_err(|e| RegError::Invalid { message: e.to_string(), status: e.status() })
}

/// What to do about a value that is already there: `Ok(true)` overwrite, `Ok(false)` leave it,
/// or an error when there is nobody to ask and no `/f`.
pub fn may_overwrite(io: &mut Io<'_>, key: &str, name: &str) -> Result<bool, RegError> {
    let shown = if name.is_empty() { "(Default)" } else { name };
    match (io.ask)(&format!("Value {shown} exists, overwrite(Yes/No)?")) {
        Some(answer) => Ok(answer),
        None => Err(RegError::Refused {
            message: format!("value {shown} already exists; pass /f to overwrite it"),
            status: NtStatus::STATUS_OBJECT_NAME_COLLISION,
            at: value_path(key, name),
        }),
    }
}

/// `reg add KEY [/v NAME | /ve] [/t TYPE] [/s SEP] [/d DATA] [/f]`.
pub fn add(s: &Session, a: &AddArgs, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(&a.key)?;
    let display = path.display();
    let value = match &a.value {
        Some(sel) => {
            check_value(sel.name())?;
            Some((sel.name(), parse_value(a)?))
        }
        None => {
            // As reg.exe: a type alone, without a value, is still checked.
            if let Some(t) = &a.ty {
                parse_type(t)?;
            }
            None
        }
    };
    let native = s.native(&path)?;
    if let Some((name, _)) = &value
        && !a.force
        && let Ok(key) = s.open_native(&native, KEY_QUERY_VALUE)
        && s.registry.query_value(key.handle, name).is_ok()
        && !may_overwrite(io, &display, name)?
    {
        writeln!(io.out, "The operation was cancelled.")?;
        return Ok(0);
    }
    let existed = existing_levels(s, &native);
    let access = if value.is_some() { KEY_QUERY_VALUE | KEY_SET_VALUE } else { KEY_QUERY_VALUE };
    let key = match s.create_path(&native, access) {
        Ok((key, _)) => key,
        Err(status) => {
            remove_created(s, &native, existed);
            return Err(RegError::at(status, display));
        }
    };
    if let Some((name, v)) = value
        && let Err(e) = s.registry.set_value(key.handle, name, v)
    {
        drop(key);
        remove_created(s, &native, existed);
        return Err(RegError::at_value(e.status, &display, name));
    }
    success(io)
}

/// `reg delete KEY [/v NAME | /ve | /va] [/f]`.
pub fn delete(s: &Session, a: &DeleteArgs, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(&a.key)?;
    let display = path.display();
    match &a.what {
        DeleteWhat::Value(sel) => {
            check_value(sel.name())?;
            let key = s.open(&path, KEY_QUERY_VALUE | KEY_SET_VALUE)?;
            s.registry
                .delete_value(key.handle, sel.name())
                .map_err(|e| RegError::at_value(e.status, &display, sel.name()))?;
        }
        DeleteWhat::AllValues => {
            let key = s.open(&path, KEY_QUERY_VALUE | KEY_SET_VALUE)?;
            for (name, _) in s.values(&key).map_err(|st| RegError::at(st, display.clone()))? {
                s.registry
                    .delete_value(key.handle, &name)
                    .map_err(|e| RegError::at_value(e.status, &display, &name))?;
            }
        }
        DeleteWhat::Key => delete_key(s, &path, a.force)?,
    }
    success(io)
}

/// Deletes a key; with `force`, its whole subtree (children first, as `RegDeleteTree`).
/// Every key of the tree is opened for deletion before the first is deleted, so a key the
/// caller may not delete stops the command with nothing deleted.
fn delete_key(s: &Session, path: &KeyPath, force: bool) -> Result<(), RegError> {
    let display = path.display();
    let err = |st| RegError::at(st, display.clone());
    let key = s.open(path, DELETE | KEY_ENUMERATE_SUB_KEYS | KEY_QUERY_VALUE)?;
    let resolved = s.resolved_name(&key).map_err(err)?;
    if native_levels(&resolved).len() <= 2 {
        return Err(RegError::Refused {
            message: "a root or hive key cannot be deleted".into(),
            status: NtStatus::STATUS_CANNOT_DELETE,
            at: display,
        });
    }
    let info = s.info(&key).map_err(err)?;
    if info.subkeys > 0 && !force {
        return Err(RegError::Refused {
            message: format!("the key has {} subkey(s); pass /f to delete it with all its subkeys", info.subkeys),
            status: NtStatus::STATUS_CANNOT_DELETE,
            at: display,
        });
    }
    let mut doomed = Vec::new();
    open_subtree(s, &key, path, &mut doomed)?;
    for (k, p) in &doomed {
        s.registry.delete_key(k.handle).map_err(|e| RegError::at(e.status, p.display()))?;
    }
    s.registry.delete_key(key.handle).map_err(|e| err(e.status))
}

/// Opens every key below `key` for deletion, children before their parents. Link keys are
/// opened themselves, so a tree delete removes a link and never what it points to.
fn open_subtree<'s>(
    s: &'s Session,
    key: &Key<'_>,
    path: &KeyPath,
    out: &mut Vec<(Key<'s>, KeyPath)>,
) -> Result<(), RegError> {
    for name in s.subkeys(key).map_err(|st| RegError::at(st, path.display()))? {
        let child_path = path.join(&name);
        let child = s
            .open_child(key, &name, DELETE | KEY_ENUMERATE_SUB_KEYS, true)
            .map_err(|st| RegError::at(st, child_path.display()))?;
        open_subtree(s, &child, &child_path, out)?;
        out.push((child, child_path));
    }
    Ok(())
}

/// `reg rename KEY NEWNAME`.
pub fn rename(s: &Session, key: &str, new_name: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    if new_name.contains('\\') {
        return Err(RegError::Invalid {
            message: format!("the new name {new_name:?} must be one key name, not a path"),
            status: NtStatus::STATUS_OBJECT_NAME_INVALID,
        });
    }
    check_key_name(new_name).map_err(|e| RegError::Invalid { message: e.to_string(), status: e.status() })?;
    let k = s.open(&path, KEY_WRITE)?;
    s.registry.rename_key(k.handle, new_name).map_err(|e| RegError::at(e.status, path.display()))?;
    success(io)
}

/// `reg flush KEY`: makes everything written so far durable (the store may checkpoint).
pub fn flush(s: &Session, key: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let k = s.open(&path, KEY_READ)?;
    s.registry.flush_key(k.handle).map_err(|e| RegError::at(e.status, path.display()))?;
    success(io)
}
