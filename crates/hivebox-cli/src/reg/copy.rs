//! `reg copy SRC DST [/s] [/f]`: the source is read whole first, then the destination is
//! checked (existing values, access to every existing key that will change) before anything
//! is written; keys created before a failure are removed again.

use super::args::CopyArgs;
use super::edit::may_overwrite;
use super::error::RegError;
use super::session::{Key, KeyData, Session};
use super::{Io, existing_levels, parse_path, remove_created, success};
use hivebox_core::access::{DELETE, KEY_CREATE_SUB_KEY, KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE};
use hivebox_core::name::upcase;
use hivebox_core::{Disposition, KeyPath, NtStatus};
use std::collections::HashSet;

/// The access a destination key needs to receive `data`.
fn needed(data: &KeyData) -> u32 {
    let mut access = KEY_QUERY_VALUE;
    if !data.values.is_empty() {
        access |= KEY_SET_VALUE;
    }
    if !data.children.is_empty() {
        access |= KEY_CREATE_SUB_KEY;
    }
    access
}

/// Values to leave alone: (display path of the key, upcased value name).
type Skip = HashSet<(String, String)>;

pub fn copy(s: &Session, a: &CopyArgs, io: &mut Io<'_>) -> Result<i32, RegError> {
    let src_path = parse_path(&a.src)?;
    let dst_path = parse_path(&a.dst)?;
    let (data, src_name) = {
        let src = s.open(&src_path, KEY_READ)?;
        let name = s.resolved_name(&src).map_err(|st| RegError::at(st, src_path.display()))?;
        (s.read(&src, &src_path, a.recursive)?, upcase(&name))
    };
    let dst_native = s.native(&dst_path)?;
    if let Ok(dst) = s.open_native(&dst_native, 0)
        && s.resolved_name(&dst).is_ok_and(|n| upcase(&n) == src_name)
    {
        return Err(RegError::Refused {
            message: "the source and the destination are the same key".into(),
            status: NtStatus::STATUS_INVALID_PARAMETER,
            at: dst_path.display(),
        });
    }

    let mut conflicts = Vec::new();
    match s.open_native(&dst_native, needed(&data)) {
        Ok(dst) => check(s, &dst, &data, &dst_path, &mut conflicts)?,
        Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => {}
        Err(status) => return Err(RegError::at(status, dst_path.display())),
    }
    let mut skip = Skip::new();
    if !a.force {
        for (key, name) in conflicts {
            if !may_overwrite(io, &key, &name)? {
                skip.insert((key, upcase(&name)));
            }
        }
    }

    let existed = existing_levels(s, &dst_native);
    let dst = match s.create_path(&dst_native, KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_CREATE_SUB_KEY) {
        Ok((dst, _)) => dst,
        Err(status) => {
            remove_created(s, &dst_native, existed);
            return Err(RegError::at(status, dst_path.display()));
        }
    };
    let mut created = Vec::new();
    if let Err(e) = write(s, &dst, &data, &dst_path, &skip, &mut created) {
        drop(dst);
        for native in created.iter().rev() {
            if let Ok(k) = s.open_native(native, DELETE) {
                let _ = s.registry.delete_key(k.handle);
            }
        }
        remove_created(s, &dst_native, existed);
        return Err(e);
    }
    success(io)
}

/// Walks the existing part of the destination: collects the values that would be overwritten
/// and opens every existing key with the access the copy will need.
fn check(
    s: &Session,
    dst: &Key<'_>,
    data: &KeyData,
    path: &KeyPath,
    conflicts: &mut Vec<(String, String)>,
) -> Result<(), RegError> {
    let display = path.display();
    for (name, _) in &data.values {
        if s.registry.query_value(dst.handle, name).is_ok() {
            conflicts.push((display.clone(), name.clone()));
        }
    }
    for child in &data.children {
        let child_path = path.join(&child.name);
        match s.open_child(dst, &child.name, needed(child), false) {
            Ok(k) => check(s, &k, child, &child_path, conflicts)?,
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => {}
            Err(status) => return Err(RegError::at(status, child_path.display())),
        }
    }
    Ok(())
}

/// Writes `data` into `dst`, creating subkeys; records the native names of the keys it creates.
fn write(
    s: &Session,
    dst: &Key<'_>,
    data: &KeyData,
    path: &KeyPath,
    skip: &Skip,
    created: &mut Vec<String>,
) -> Result<(), RegError> {
    let display = path.display();
    for (name, value) in &data.values {
        if skip.contains(&(display.clone(), upcase(name))) {
            continue;
        }
        s.registry
            .set_value(dst.handle, name, value.clone())
            .map_err(|e| RegError::at_value(e.status, &display, name))?;
    }
    for child in &data.children {
        let child_path = path.join(&child.name);
        let err = |st| RegError::at(st, child_path.display());
        let (k, disposition) = s.create_child(dst, &child.name, needed(child)).map_err(err)?;
        if disposition == Disposition::CreatedNewKey {
            created.push(s.resolved_name(&k).map_err(err)?);
        }
        write(s, &k, child, &child_path, skip, created)?;
    }
    Ok(())
}
