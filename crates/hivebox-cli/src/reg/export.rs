//! `reg export KEY FILE [/y]` and `reg import FILE`: `.reg` files (the format itself is
//! `hivebox_hive::regfile`).
//!
//! Export reads the key through the registry as the caller, exactly as `query /s` does, and
//! writes what it read. Import parses the whole file before it changes anything, then applies it
//! through an undo [`Journal`]: on the first failure every change it made is undone, last first.

use super::error::RegError;
use super::session::{Key, KeyData, Session};
use super::undo::Journal;
use super::{Io, parse_path, success};
use hivebox_core::access::{KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE};
use hivebox_core::{KeyImage, KeyPath, NtStatus};
use hivebox_hive::regfile::{self, RegEntry};

/// `reg export KEY FILE [/y]`.
pub fn export(s: &Session<'_>, key: &str, file: &str, force: bool, io: &mut Io<'_>) -> Result<i32, RegError> {
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

/// `reg import FILE`.
pub fn import(s: &Session<'_>, file: &str, io: &mut Io<'_>) -> Result<i32, RegError> {
    let bytes = std::fs::read(file).map_err(|e| file_error(file, None, format!("cannot read the file: {e}")))?;
    let parsed = regfile::parse(&bytes).map_err(|e| file_error(file, Some(e.line), e.reason))?;
    let plan = plan(&parsed.entries).map_err(|(line, e)| file_error(file, Some(line), e.to_string()))?;
    let mut journal = Journal::new(s);
    if let Err((line, e)) = apply(&mut journal, &parsed.entries, &plan) {
        let mut message = e.to_string();
        if let Some(failure) = journal.undo() {
            message.push_str(&format!("; undoing the import failed too ({failure}), so some of its changes remain"));
        }
        return Err(file_error(file, Some(line), message));
    }
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

/// Applies the entries in order, recording each change in the journal; stops at the first
/// failure, with its line.
fn apply<'s>(
    journal: &mut Journal<'s, '_>,
    entries: &[RegEntry],
    plan: &[Option<Planned>],
) -> Result<(), (usize, RegError)> {
    // The key the value lines write to: its handle, resolved native path and display path.
    let mut current: Option<(Key<'s>, String, String)> = None;
    for (entry, planned) in entries.iter().zip(plan) {
        let line = entry.line();
        match (entry, planned) {
            (RegEntry::Key { delete, .. }, Some(key)) => {
                current = None;
                if *delete {
                    journal.delete_tree(&key.path).map_err(|e| (line, e))?;
                } else {
                    let access = if key.has_values { KEY_QUERY_VALUE | KEY_SET_VALUE } else { KEY_QUERY_VALUE };
                    let (handle, resolved) = journal.create(&key.path, access).map_err(|e| (line, e))?;
                    current = Some((handle, resolved, key.path.display()));
                }
            }
            (RegEntry::Value { name, action, .. }, None) => {
                // The parser puts every value line after the key line it belongs to.
                let Some((key, resolved, display)) = &current else {
                    let message = "a value line must follow a [KEY] line".into();
                    return Err((line, RegError::Invalid { message, status: NtStatus::STATUS_INVALID_PARAMETER }));
                };
                let r = match action {
                    Some(value) => journal.set_value(key, resolved, display, name, value.clone()),
                    None => journal.delete_value(key, resolved, display, name),
                };
                r.map_err(|e| (line, e))?;
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

#[cfg(test)]
mod tests;
