//! `reg save`, `restore`, `load`, `unload` and `replace`: regf hive files.
//!
//! `save` writes a key's subtree as a hive file (`NtSaveKey`, then the regf writer); `restore`
//! reads one (its transaction logs replayed if it is dirty) and replaces a key's contents with
//! it (`NtRestoreKey`). `load` and `unload` mount and unmount a hive file directly below `HKLM`
//! or `HKU` through the store, which remembers the mount until it is unloaded. `replace` reads
//! a hive file and, through `NtReplaceKey`, has the store stage it to take the place of a
//! hive's file at the next open.

use super::error::RegError;
use super::export::{file_error, may_write};
use super::session::Session;
use super::{Io, native_levels, parse_path, success};
use hivebox_core::access::{KEY_READ, KEY_WRITE};
use hivebox_core::{KeyPath, NtStatus};
use hivebox_hive::{StoreError, regf};
use std::path::Path;

/// `reg save KEY FILE [/y]`.
pub fn save(s: &Session<'_>, key: &str, file: &str, force: bool, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let image = {
        let k = s.open(&path, KEY_READ)?;
        s.registry.save_key(&s.caller, k.handle).map_err(|st| RegError::at(st, path.display()))?
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
pub fn restore(s: &Session<'_>, key: &str, file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let k = s.open(&path, KEY_READ | KEY_WRITE)?;
    let image = regf::Hive::open(Path::new(file))
        .and_then(|h| h.to_image())
        .map_err(|e| file_error(file, None, format!("cannot read the hive: {e}")))?;
    s.registry.restore_key(&s.caller, k.handle, image).map_err(|st| RegError::at(st, path.display()))?;
    success(io)
}

/// `reg load KEY FILE`.
pub fn load(s: &Session<'_>, key: &str, file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let (path, native) = mount_point(s, key)?;
    let home = store(s)?;
    home.load_hive(&native, Path::new(file)).map_err(|e| match e {
        StoreError::Mount { reason, line: None, .. } => file_error(file, None, reason),
        other => RegError::Hive { message: other.to_string(), at: path.display() },
    })?;
    success(io)
}

/// `reg unload KEY`.
pub fn unload(s: &Session<'_>, key: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let (path, native) = mount_point(s, key)?;
    let home = store(s)?;
    // A missing key gets the registry's own answer.
    drop(s.open(&path, KEY_READ)?);
    let loaded = home.loaded_hives().map_err(|e| RegError::Hive { message: e.to_string(), at: path.display() })?;
    if !loaded.iter().any(|(mount, _)| hivebox_core::name::eq_names(mount, &native)) {
        let message = "the key is not a hive loaded with LOAD".into();
        return Err(RegError::Refused { message, status: NtStatus::STATUS_INVALID_PARAMETER, at: path.display() });
    }
    home.unload_hive(&native).map_err(|e| {
        let message = match e {
            StoreError::Mount { reason, line: None, .. } => reason,
            other => other.to_string(),
        };
        RegError::Hive { message, at: path.display() }
    })?;
    success(io)
}

/// `reg replace KEY NEWFILE OLDFILE`.
///
/// NEWFILE is read whole first; then `NtReplaceKey` runs through the callbacks and the store
/// stages the replacement. The key is opened for reading and writing, hivebox's stand-in for
/// the `SeRestorePrivilege` Windows requires.
pub fn replace(s: &Session<'_>, key: &str, new_file: &str, old_file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(key)?;
    let home = store(s)?;
    let image = regf::Hive::open(Path::new(new_file))
        .and_then(|h| h.to_image())
        .map_err(|e| file_error(new_file, None, format!("cannot read the hive: {e}")))?;
    let k = s.open(&path, KEY_READ | KEY_WRITE)?;
    // The callbacks are told absolute names: a relative one means nothing to them.
    let absolute = |f: &str| std::path::absolute(f).map_or_else(|_| f.to_owned(), |p| p.display().to_string());
    let mut failure = None;
    let staged = s.registry.replace_key(&s.caller, k.handle, &absolute(new_file), &absolute(old_file), |root| {
        home.stage_replacement(root, &image, Path::new(new_file), Path::new(old_file)).map_err(|e| {
            let status = match e {
                StoreError::Replace { .. } => NtStatus::STATUS_INVALID_PARAMETER,
                StoreError::Corrupt { .. } => NtStatus::STATUS_REGISTRY_CORRUPT,
                _ => NtStatus::STATUS_REGISTRY_IO_FAILED,
            };
            failure = Some(e);
            status
        })
    });
    staged.map_err(|status| match failure {
        Some(StoreError::Replace { path, reason }) => file_error(&path.display().to_string(), None, reason),
        Some(StoreError::Io { path, source }) => file_error(&path.display().to_string(), None, source.to_string()),
        Some(other) => RegError::Hive { message: other.to_string(), at: path.display() },
        None => RegError::at(status, path.display()),
    })?;
    success(io)
}

/// `KEY` as a mount point: a native path directly below `\REGISTRY\MACHINE` or `\REGISTRY\USER`.
fn mount_point(s: &Session<'_>, key: &str) -> Result<(KeyPath, String), RegError> {
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

fn store<'r>(s: &Session<'r>) -> Result<&'r hivebox_hive::Home, RegError> {
    s.home.ok_or_else(|| RegError::Setup("loading, unloading and replacing hives needs the registry store".into()))
}
