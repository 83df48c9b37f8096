//! `reg export KEY FILE [/y]` and `reg import FILE`: `.reg` files (the format itself is
//! `hivebox_hive::regfile`).
//!
//! Export reads the key through the registry as the caller, exactly as `query /s` does, and
//! writes what it read. Import parses the whole file before it changes anything, then applies it
//! in one registry transaction ([`Session::atomically`]): on the first failure the transaction
//! is rolled back, so nothing changes; otherwise it commits, all of it at once.

use super::error::RegError;
use super::error::status_name;
use super::session::{Key, KeyData, Session, status};
use super::{Io, native_levels, parse_path, success};
use hivebox_core::access::{DELETE, KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE};
use hivebox_core::{KeyImage, KeyPath, NtStatus};
use hivebox_hive::regfile::{self, RegEntry};

/// `reg export KEY FILE [/y]`.
pub fn export(s: &Session, key: &str, file: &str, force: bool, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let data = {
        let k = s.open(&path, KEY_READ)?;
        s.read(&k, &path, true)?
    };
    let bytes = regfile::export(&data.path, &image(&data)).map_err(|e| RegError::Refused {
        message: format!("a .reg file cannot hold this key: {e}"),
        status: NtStatus::STATUS_OBJECT_NAME_INVALID,
        at: e.key,
    })?;
    if !may_write(file, force, io)? {
        return Ok(0);
    }
    std::fs::write(file, bytes).map_err(|e| file_error(file, None, format!("cannot write the file: {e}")))?;
    success(io)
}

/// Whether `file` may be written: it does not exist, `/y` was given, or the user says yes.
/// A "no" prints that the operation was cancelled; with nobody to ask it is an error.
pub(super) fn may_write(file: &str, force: bool, io: &mut Io<'_>) -> Result<bool, RegError> {
    // Anything already there counts, a dangling symbolic link included.
    if force || std::fs::symlink_metadata(file).is_err() {
        return Ok(true);
    }
    match (io.ask)(&format!("File {file} already exists. Overwrite (Yes/No)?")) {
        Some(true) => Ok(true),
        Some(false) => {
            writeln!(io.out, "The operation was cancelled.")?;
            Ok(false)
        }
        None => Err(file_error(file, None, "the file already exists; pass /y to overwrite it")),
    }
}

/// A key read into memory as the tree the writer takes (subkeys that could not be read are
/// left out, as `query /s` leaves them out).
fn image(data: &KeyData) -> KeyImage {
    KeyImage {
        name: data.name.clone(),
        values: data.values.clone(),
        subkeys: data.children.iter().map(image).collect(),
        ..KeyImage::default()
    }
}

pub(super) fn file_error(file: &str, line: Option<usize>, message: impl Into<String>) -> RegError {
    RegError::File { file: file.to_owned(), line, message: message.into() }
}

/// `reg import FILE`: the whole file in one registry transaction.
pub fn import(s: &Session, file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let bytes = std::fs::read(file).map_err(|e| file_error(file, None, format!("cannot read the file: {e}")))?;
    let parsed = regfile::parse(&bytes).map_err(|e| file_error(file, Some(e.line), e.reason))?;
    let plan = plan(&parsed.entries).map_err(|(line, e)| file_error(file, Some(line), e.to_string()))?;
    s.atomically(
        |t| apply(t, &parsed.entries, &plan).map_err(|(line, e)| file_error(file, Some(line), e.to_string())),
        |status| {
            let message = format!(
                "the import could not be committed, so nothing was changed: {} ({})",
                status.describe(),
                status_name(status)
            );
            file_error(file, None, message)
        },
    )?;
    success(io)
}

/// What each key line needs: its parsed path, and whether value lines follow it.
struct Planned {
    path: KeyPath,
    has_values: bool,
}

/// Checks every key path of the file before anything is changed; `None` for value lines.
fn plan(entries: &[RegEntry]) -> Result<Vec<Option<Planned>>, (usize, RegError)> {
    let mut plan = Vec::with_capacity(entries.len());
    for entry in entries {
        match entry {
            RegEntry::Key { path, line, .. } => {
                let path = parse_path(path).map_err(|e| (*line, e))?;
                plan.push(Some(Planned { path, has_values: false }));
            }
            RegEntry::Value { key_index, .. } => {
                if let Some(Some(key)) = plan.get_mut(*key_index) {
                    key.has_values = true;
                }
                plan.push(None);
            }
        }
    }
    Ok(plan)
}

/// A volatile key met by the import: its changes could not be part of the transaction.
fn volatile(at: String) -> RegError {
    RegError::Refused {
        message: "a volatile key cannot be changed by an import (it runs in one registry transaction)".into(),
        status: NtStatus::STATUS_INVALID_PARAMETER,
        at,
    }
}

/// Applies the entries in order through `s` (a session in the import's transaction); stops at
/// the first failure, with its line.
fn apply(s: &Session, entries: &[RegEntry], plan: &[Option<Planned>]) -> Result<(), (usize, RegError)> {
    // The key the value lines write to, and its display path.
    let mut current: Option<(Key<'_>, String)> = None;
    for (entry, planned) in entries.iter().zip(plan) {
        let line = entry.line();
        match (entry, planned) {
            (RegEntry::Key { delete, .. }, Some(key)) => {
                current = None;
                if *delete {
                    delete_tree(s, &key.path).map_err(|e| (line, e))?;
                } else {
                    let display = key.path.display();
                    let err = |st| (line, RegError::at(st, display.clone()));
                    let access = if key.has_values { KEY_QUERY_VALUE | KEY_SET_VALUE } else { KEY_QUERY_VALUE };
                    let native = s.native(&key.path).map_err(|e| (line, e))?;
                    let (handle, _) = s.create_path(&native, access).map_err(err)?;
                    if key.has_values && s.info(&handle).map_err(err)?.volatile {
                        return Err((line, volatile(display)));
                    }
                    current = Some((handle, display));
                }
            }
            (RegEntry::Value { name, action, .. }, None) => {
                // The parser puts every value line after the key line it belongs to.
                let Some((key, display)) = &current else {
                    let message = "a value line must follow a [KEY] line".into();
                    return Err((line, RegError::Invalid { message, status: NtStatus::STATUS_INVALID_PARAMETER }));
                };
                let r = match action {
                    Some(value) => s.registry.set_value(key.handle, name, value.clone()).map_err(status),
                    // A value that does not exist is left alone (as `regedit` does).
                    None => match s.registry.delete_value(key.handle, name).map_err(status) {
                        Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => Ok(()),
                        r => r,
                    },
                };
                r.map_err(|st| (line, RegError::at_value(st, display, name)))?;
            }
            // `plan` has one slot per entry, `Some` exactly for key lines.
            _ => {
                let message = "internal error: the import plan does not match the file".into();
                return Err((line, RegError::Invalid { message, status: NtStatus::STATUS_INVALID_PARAMETER }));
            }
        }
    }
    Ok(())
}

/// `[-KEY]`: deletes a key with its subtree, children first; a key that does not exist is left
/// alone (as `regedit` does). Links inside the tree are deleted themselves, never what they
/// point to.
fn delete_tree(s: &Session, path: &KeyPath) -> Result<(), RegError> {
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
    let mut doomed = Vec::new();
    subtree(s, top, path.clone(), &mut doomed)?;
    for (key, key_path) in doomed.iter().rev() {
        s.registry.delete_key(key.handle).map_err(|e| RegError::at(e.status, key_path.display()))?;
    }
    Ok(())
}

/// Opens `key`'s subtree (unless it is a link) for deletion, parents first, after `key`.
fn subtree<'s>(s: &'s Session, key: Key<'s>, path: KeyPath, out: &mut Vec<(Key<'s>, KeyPath)>) -> Result<(), RegError> {
    let err = |st| RegError::at(st, path.display());
    let info = s.info(&key).map_err(err)?;
    if info.volatile {
        return Err(volatile(path.display()));
    }
    let subkeys = if info.link { Vec::new() } else { s.subkeys(&key).map_err(err)? };
    out.push((key, path.clone()));
    let parent = out.len() - 1;
    for name in subkeys {
        let child_path = path.join(&name);
        let child = s
            .open_child(&out[parent].0, &name, DELETE | KEY_READ, true)
            .map_err(|st| RegError::at(st, child_path.display()))?;
        subtree(s, child, child_path, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
