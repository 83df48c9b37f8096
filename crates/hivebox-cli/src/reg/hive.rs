//! `reg save`, `restore`, `load`, `unload` and `replace`: regf hive files.
//!
//! `save` has the registry's side save a key's subtree (`NtSaveKey`) and writes it here as a
//! hive file (the regf writer); `restore` reads one here (its transaction logs replayed if it
//! is dirty) and has the key's contents replaced with it (`NtRestoreKey`). `load` and `unload`
//! have the store mount and unmount a hive file directly below `HKLM` or `HKU`, which it
//! remembers until it is unloaded. `replace` has the store read a hive file and, through
//! `NtReplaceKey`, stage it to take the place of a hive's file at the next open. The store may
//! be the daemon's: those three send absolute file names, and its answers about a file are
//! shown as this command's own.

use super::error::RegError;
use super::export::{file_error, may_write};
use super::session::Session;
use super::{Io, native_levels, parse_path, success};
use hivebox_core::access::{KEY_READ, KEY_WRITE};
use hivebox_core::{KeyPath, NtStatus};
use hivebox_hive::regf;
use std::path::Path;

/// `reg save KEY FILE [/y]`.
pub fn save(s: &Session, key: &str, file: &str, force: bool, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let image = {
        let k = s.open(&path, KEY_READ)?;
        s.registry.save_key(k.handle).map_err(|e| RegError::at(e.status, path.display()))?
    };
    if !may_write(file, force, io)? {
        return Ok(0);
    }
    let file_name = Path::new(file).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let opts = regf::WriteOptions { root_name: None, sequence: 1, timestamp: image.last_write, file_name };
    regf::save_hive(Path::new(file), &image, &opts)
        .map_err(|e| file_error(file, None, format!("cannot write the hive: {e}")))?;
    success(io)
}

/// `reg restore KEY FILE`.
pub fn restore(s: &Session, key: &str, file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let k = s.open(&path, KEY_READ | KEY_WRITE)?;
    let image = regf::Hive::open(Path::new(file))
        .and_then(|h| h.to_image())
        .map_err(|e| file_error(file, None, format!("cannot read the hive: {e}")))?;
    s.registry.restore_key(k.handle, image).map_err(|e| RegError::at(e.status, path.display()))?;
    success(io)
}

/// `reg load KEY FILE`.
pub fn load(s: &Session, key: &str, file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let (path, native) = mount_point(s, key)?;
    let abs = absolute(file);
    s.registry.load_hive(&native, &abs).map_err(|e| store_error(e, &[(&abs, file)], &path))?;
    success(io)
}

/// `reg unload KEY`.
pub fn unload(s: &Session, key: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let (path, native) = mount_point(s, key)?;
    // A missing key gets the registry's own answer.
    drop(s.open(&path, KEY_READ)?);
    let loaded = s.registry.loaded_hives().map_err(|e| store_error(e, &[], &path))?;
    let Some((_, file)) = loaded.iter().find(|(mount, _)| hivebox_core::name::eq_names(mount, &native)) else {
        let message = "the key is not a hive loaded with LOAD".into();
        return Err(RegError::Refused { message, status: NtStatus::STATUS_INVALID_PARAMETER, at: path.display() });
    };
    s.registry.unload_hive(&native).map_err(|e| {
        // What the store says about the hive's own file is said about the key.
        let message = match e.message.strip_prefix(file.as_str()).and_then(|m| m.strip_prefix(": ")) {
            Some(reason) => reason.to_owned(),
            None => e.message.clone(),
        };
        store_error(hivebox_client::Error { message, ..e }, &[], &path)
    })?;
    success(io)
}

/// `reg replace KEY NEWFILE OLDFILE`.
///
/// The key is opened for reading and writing, hivebox's stand-in for the `SeRestorePrivilege`
/// Windows requires; then the store reads NEWFILE whole, `NtReplaceKey` runs through the
/// callbacks, and the store stages the replacement.
pub fn replace(s: &Session, key: &str, new_file: &str, old_file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let k = s.open(&path, KEY_READ | KEY_WRITE)?;
    // The store and the callbacks are told absolute names: a relative one means nothing to them.
    let (new_abs, old_abs) = (absolute(new_file), absolute(old_file));
    s.registry
        .replace_key(k.handle, &new_abs, &old_abs)
        .map_err(|e| store_error(e, &[(&new_abs, new_file), (&old_abs, old_file)], &path))?;
    success(io)
}

/// `file` as an absolute path (as given if it cannot be made one).
fn absolute(file: &str) -> String {
    std::path::absolute(file).map_or_else(|_| file.to_owned(), |p| p.display().to_string())
}

/// A refusal of the store's (loading, unloading, replacing) as the command reports it: what it
/// says about one of the command's `files` (absolute name, name as given) is a problem with
/// that file; anything else it says is said about the key; a bare status is the registry's.
fn store_error(e: hivebox_client::Error, files: &[(&str, &str)], path: &KeyPath) -> RegError {
    if e.message.is_empty() {
        return RegError::at(e.status, path.display());
    }
    for (abs, given) in files {
        if let Some(reason) = e.message.strip_prefix(abs).and_then(|m| m.strip_prefix(": ")) {
            return file_error(given, None, reason);
        }
    }
    match e.status {
        NtStatus::STATUS_PRIVILEGE_NOT_HELD | NtStatus::STATUS_NOT_IMPLEMENTED => {
            RegError::Refused { message: e.message, status: e.status, at: path.display() }
        }
        _ => RegError::Hive { message: e.message, at: path.display() },
    }
}

/// `KEY` as a mount point: a native path directly below `\REGISTRY\MACHINE` or `\REGISTRY\USER`.
fn mount_point(s: &Session, key: &str) -> Result<(KeyPath, String), RegError> {
    let path = parse_path(key)?;
    let native = s.native(&path)?;
    let levels = native_levels(&native);
    let under_master =
        levels.first().is_some_and(|m| m.eq_ignore_ascii_case("MACHINE") || m.eq_ignore_ascii_case("USER"));
    if levels.len() != 2 || !under_master {
        let message = format!(
            "{} is not a key directly below HKEY_LOCAL_MACHINE or HKEY_USERS (such as HKLM\\OFFLINE)",
            path.display()
        );
        return Err(RegError::Invalid { message, status: NtStatus::STATUS_INVALID_PARAMETER });
    }
    Ok((path, native))
}
