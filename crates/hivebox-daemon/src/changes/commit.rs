//! `box commit`: a box's changes applied to the host in one registry transaction, and the
//! recovery of a commit that a crash interrupted.
//!
//! 1. The changes are read ([`walk`]) and those at or below `--key` selected.
//! 2. A transaction begins. In it, every selected key whose box key carries
//!    `hivebox:base-time` is checked against the host key's last write time: a host key that
//!    changed (or went) since the box first changed it is a conflict. All conflicts are
//!    reported and nothing is done, unless forced.
//! 3. The journal (`journal.rs`) is made durable.
//! 4. The operations are applied in the transaction as the caller (the protection filter
//!    judges each), then the box's committed keys are removed from its hive in the same
//!    transaction (as the registry itself). The transaction commits: all of it or nothing.
//! 5. The journal is removed.
//!
//! A crash before 3 leaves nothing; between 3 and 5 the journal is there and
//! [`recover`] applies it again at the next start: every operation states a final state, and
//! what is already so is left alone, so it does not matter how far the commit got.

use super::journal::{self, Journal};
use super::walk::{self, Unit, UnitKind, Walk, comps_of_native, native_of, user_path_of};
use super::{Change, ChangeError};
use hivebox_core::access::{
    DELETE, KEY_ALL_ACCESS, KEY_CREATE_SUB_KEY, KEY_QUERY_VALUE, KEY_READ, KEY_SET_VALUE, REG_OPTION_OPEN_LINK,
};
use hivebox_core::isolate::{box_mount, markers};
use hivebox_core::name::eq_names;
use hivebox_core::{Caller, CreateOptions, Handle, KeyImage, KeyPath, NtStatus, OpenOptions, Registry, TxnId, Value};
use std::path::Path;

/// Held by the commit running in this process.
static COMMITS: parking_lot::Mutex<()> = parking_lot::Mutex::new(());

/// Where [`commit_until`] stops, as if the daemon had died there (for the crash tests).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashAt {
    /// Nowhere: the commit runs to its end.
    Never,
    /// Right after the journal is durable: nothing is applied.
    AfterJournal,
    /// After the host's changes are committed but before the box's entries are cleared (as
    /// when the host hives' log records are durable and the box hive's is not).
    HostApplied,
    /// After the transaction commits, before the journal is removed.
    AfterCommit,
}

/// [`super::commit`], stopping where `crash` says.
#[doc(hidden)]
pub fn commit_until(
    reg: &Registry,
    caller: &Caller,
    boxes_dir: &Path,
    name: &str,
    key: Option<&str>,
    force: bool,
    crash: CrashAt,
) -> Result<String, ChangeError> {
    walk::check_name(name)?;
    if caller.process.box_name.is_some() {
        return Err(ChangeError::new(
            NtStatus::STATUS_ACCESS_DENIED,
            "a box's changes are committed from outside any box (this caller runs in one)",
        ));
    }
    // One commit at a time (they are rare), so two never share a journal.
    let _one = COMMITS.lock();
    let pending = journal::path(&boxes_dir.join(name));
    if pending.exists() {
        return Err(ChangeError::new(
            NtStatus::STATUS_TRANSACTIONAL_CONFLICT,
            format!(
                "box {name:?} has an unfinished commit ({}): it is finished when the registry is next opened \
                 (the daemon's log says why it could not be); removing that file abandons it",
                pending.display()
            ),
        ));
    }
    let within = match key {
        Some(k) => Some(canonical_key(reg, caller, k)?).filter(|c| !c.is_empty()),
        None => None,
    };
    let shown_key = within.as_ref().map(|c| user_path_of(c));
    let walk = walk::read(reg, name, walk::Want::BOTH)?;
    let sel = select(&walk, within.as_deref())?;
    if sel.ops.is_empty() {
        return Ok(match &shown_key {
            Some(k) => format!("Box {name:?} has no changes at or below {k}: nothing was committed.\n"),
            None => format!("Box {name:?} has no changes: nothing was committed.\n"),
        });
    }
    let txn = reg.begin_transaction();
    let r = (|| {
        let conflicts = conflicts(reg, txn, &sel.ops)?;
        if !conflicts.is_empty() && !force {
            let mut message = format!(
                "{} conflicting key{}: changed on the host since the box first changed {}; nothing was committed \
                 (--force overwrites {}):",
                conflicts.len(),
                if conflicts.len() == 1 { "" } else { "s" },
                if conflicts.len() == 1 { "it" } else { "them" },
                if conflicts.len() == 1 { "it" } else { "them" },
            );
            for (key, why) in &conflicts {
                message.push_str(&format!("\n  {key}: {why}"));
            }
            return Err(ChangeError::new(NtStatus::STATUS_TRANSACTIONAL_CONFLICT, message));
        }
        let restamp = match &within {
            Some(k) => restamp_candidates(reg, txn, name, k)?,
            None => Vec::new(),
        };
        let j = Journal { box_name: name.to_owned(), caller: caller.clone(), ops: sel.ops, drop: sel.drop, restamp };
        let file = journal::write(&boxes_dir.join(name), &j)?;
        if crash == CrashAt::AfterJournal {
            return Ok((conflicts, None));
        }
        let applied = apply_host(reg, &j.caller, txn, &j.ops)
            .and_then(|()| if crash == CrashAt::HostApplied { Ok(()) } else { clear_box(reg, txn, &j) });
        if let Err(e) = applied {
            let _ = journal::remove(&file);
            return Err(e);
        }
        Ok((conflicts, Some(file)))
    })();
    let (conflicts, file) = match r {
        Ok(done) => done,
        Err(e) => {
            let _ = reg.rollback_transaction(txn);
            return Err(e);
        }
    };
    let Some(file) = file else {
        // The simulated crash right after the journal: the transaction dies with the process.
        let _ = reg.rollback_transaction(txn);
        return Ok("stopped after the journal\n".into());
    };
    if let Err(status) = reg.commit_transaction(txn) {
        let _ = journal::remove(&file);
        return Err(ChangeError::new(
            status,
            format!(
                "the commit could not be completed, so nothing was committed: {} ({})",
                status.describe(),
                status_name(status)
            ),
        ));
    }
    if crash != CrashAt::Never {
        return Ok("stopped before removing the journal\n".into());
    }
    journal::remove(&file)?;
    let mut report = format!("{} change{} committed to the host", sel.count, if sel.count == 1 { "" } else { "s" });
    if let Some(k) = &shown_key {
        report.push_str(&format!(" (at or below {k})"));
    }
    report.push_str(".\n");
    if !conflicts.is_empty() {
        report.push_str("Overwritten although the host changed them since the box did:\n");
        for (key, why) in &conflicts {
            report.push_str(&format!("  {key}: {why}\n"));
        }
    }
    Ok(report)
}

fn status_name(status: NtStatus) -> String {
    status.name().map_or_else(|| format!("NTSTATUS 0x{:08X}", status.0), str::to_owned)
}

/// A refusal at a key (or a value of it), in the message form of `reg`.
fn failed(status: NtStatus, at: &str) -> ChangeError {
    ChangeError::new(status, format!("{} ({}) at {at}; nothing was committed", status.describe(), status_name(status)))
}

fn value_at(key: &str, name: &str) -> String {
    format!("{key}\\{}", if name.is_empty() { "(Default)" } else { name })
}

/// The path below `\REGISTRY` a `--key` argument names, the host's symbolic links followed
/// (the box's hive names keys by their resolved paths).
fn canonical_key(reg: &Registry, caller: &Caller, text: &str) -> Result<Vec<String>, ChangeError> {
    let path = KeyPath::parse(text).map_err(|e| ChangeError::new(e.status(), e.to_string()))?;
    let native = path.native(&caller.token.user_sid);
    let comps = comps_of_native(&native).ok_or_else(|| {
        ChangeError::new(NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD, format!("{text:?} is not a key path"))
    })?;
    if comps.first().is_some_and(|c| c.eq_ignore_ascii_case("A")) {
        return Err(ChangeError::new(NtStatus::STATUS_ACCESS_DENIED, format!("{text:?} is not a key of the host")));
    }
    Ok(reg.with_tree(|t| {
        let mut comps = comps;
        let mut hops = 0;
        'restart: loop {
            let mut cur = t.root();
            for i in 0..comps.len() {
                let Some(next) = t.child(cur, &comps[i]) else { return comps };
                // The key's own name, as the registry spells it.
                comps[i] = t.name(next).to_owned();
                if hops < 16 && t.info(next).link {
                    let target = t.value(next, "SymbolicLinkValue").and_then(|v| v.as_string().ok());
                    if let Some(mut all) = target.as_deref().and_then(comps_of_native) {
                        all.extend(comps.drain(i + 1..));
                        comps = all;
                        hops += 1;
                        continue 'restart;
                    }
                }
                cur = next;
            }
            return comps;
        }
    }))
}

fn is_within<S: AsRef<str>>(comps: &[S], top: &[String]) -> bool {
    comps.len() >= top.len() && comps.iter().zip(top).all(|(a, b)| eq_names(a.as_ref(), b))
}

/// What a commit takes: the operations, the box keys it clears, and how many changes that is.
struct Selection {
    ops: Vec<Unit>,
    drop: Vec<Vec<String>>,
    count: usize,
}

fn select(walk: &Walk, within: Option<&[String]>) -> Result<Selection, ChangeError> {
    let Some(k) = within else {
        return Ok(Selection {
            ops: walk.units.clone(),
            drop: vec![vec!["MACHINE".into()], vec!["USER".into()]],
            count: walk.changes.len(),
        });
    };
    let mut ops = Vec::new();
    let mut count = 0;
    for u in &walk.units {
        if is_within(&u.comps, k) {
            ops.push(u.clone());
        } else if is_within(k, &u.comps) {
            match &u.kind {
                // Inside a key the box deleted: that part of the deletion.
                UnitKind::Delete => {
                    ops.push(Unit { comps: k.to_vec(), kind: UnitKind::Delete, stamp: u.stamp });
                    count += 1;
                }
                UnitKind::Replace { .. } => {
                    let whole = user_path_of(&u.comps);
                    return Err(ChangeError::new(
                        NtStatus::STATUS_INVALID_PARAMETER,
                        format!(
                            "{} is inside {whole}, which the box replaced as a whole (renamed, or deleted and \
                             created again): commit {whole} instead",
                            user_path_of(k)
                        ),
                    ));
                }
                // The values of a key above it: not part of this commit.
                UnitKind::Values { .. } => {}
            }
        }
    }
    let inside = |native: &str| comps_of_native(native).is_some_and(|c| is_within(&c, k));
    count += walk
        .changes
        .iter()
        .filter(|c: &&Change| inside(&c.native) || c.from_native.as_deref().is_some_and(inside))
        .count();
    Ok(Selection { ops, drop: vec![k.to_vec()], count })
}

fn open_in(reg: &Registry, caller: &Caller, txn: TxnId, native: &str, access: u32) -> Result<Option<Handle>, NtStatus> {
    let opts = OpenOptions { desired_access: access, options: REG_OPTION_OPEN_LINK, ..OpenOptions::default() };
    match reg.open_key_transacted(caller, None, native, &opts, txn) {
        Ok(h) => Ok(Some(h)),
        Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND | NtStatus::STATUS_OBJECT_PATH_NOT_FOUND) => Ok(None),
        Err(s) => Err(s),
    }
}

/// The host key's last write time in the transaction (`None`: there is no such key).
fn host_time(reg: &Registry, txn: TxnId, comps: &[String]) -> Result<Option<u64>, ChangeError> {
    let system = Caller::system();
    let native = native_of(comps);
    let h = open_in(reg, &system, txn, &native, KEY_QUERY_VALUE).map_err(|s| failed(s, &user_path_of(comps)))?;
    let Some(h) = h else { return Ok(None) };
    let info = reg.query_key(&system, h);
    let _ = reg.close_key(&system, h);
    Ok(Some(info.map_err(|s| failed(s, &user_path_of(comps)))?.last_write))
}

/// Keys whose host key changed since the box first changed them: `(key, why)`.
fn conflicts(reg: &Registry, txn: TxnId, ops: &[Unit]) -> Result<Vec<(String, &'static str)>, ChangeError> {
    let mut out = Vec::new();
    for u in ops {
        let Some(stamp) = u.stamp else { continue };
        match host_time(reg, txn, &u.comps)? {
            None => out.push((user_path_of(&u.comps), "deleted on the host since the box changed it")),
            Some(t) if t != stamp => out.push((user_path_of(&u.comps), "changed on the host since the box changed it")),
            Some(_) => {}
        }
    }
    Ok(out)
}

/// The box keys above `within` whose `hivebox:base-time` agrees with their host key now: the
/// commit changes those host keys' times (a subkey created or deleted), so their stamps follow.
fn restamp_candidates(
    reg: &Registry,
    txn: TxnId,
    name: &str,
    within: &[String],
) -> Result<Vec<(Vec<String>, u64)>, ChangeError> {
    let mut out = Vec::new();
    for depth in 2..within.len() {
        let comps = &within[..depth];
        let stamp = reg.with_tree(|t| {
            let root = walk::box_root(t, name)?;
            let p = comps.iter().try_fold(root, |k, c| t.child(k, c))?;
            t.value(p, markers::BASE_TIME).and_then(|v| v.as_qword().ok())
        });
        if let Some(stamp) = stamp
            && host_time(reg, txn, comps)? == Some(stamp)
        {
            out.push((comps.to_vec(), stamp));
        }
    }
    Ok(out)
}

/// Applies the operations in the transaction as `caller`.
fn apply_host(reg: &Registry, caller: &Caller, txn: TxnId, ops: &[Unit]) -> Result<(), ChangeError> {
    for u in ops {
        let native = native_of(&u.comps);
        let shown = user_path_of(&u.comps);
        match &u.kind {
            UnitKind::Delete => delete_tree(reg, caller, txn, &native, &shown)?,
            UnitKind::Replace { image, .. } => {
                if let Some(h) = open_in(reg, caller, txn, &native, KEY_READ).map_err(|s| failed(s, &shown))? {
                    let same = same_tree(reg, caller, h, image);
                    let _ = reg.close_key(caller, h);
                    if same.map_err(|s| failed(s, &shown))? {
                        continue;
                    }
                    delete_tree(reg, caller, txn, &native, &shown)?;
                }
                let opts = CreateOptions {
                    desired_access: KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_CREATE_SUB_KEY,
                    class: image.class.clone(),
                    ..CreateOptions::default()
                };
                let (h, _) =
                    reg.create_key_path_transacted(caller, None, &native, &opts, txn).map_err(|s| failed(s, &shown))?;
                let r = write_tree(reg, caller, h, image, &shown);
                let _ = reg.close_key(caller, h);
                r?;
            }
            UnitKind::Values { class, set, delete } => {
                let opts = CreateOptions {
                    desired_access: KEY_QUERY_VALUE | KEY_SET_VALUE,
                    class: class.clone(),
                    ..CreateOptions::default()
                };
                let (h, _) =
                    reg.create_key_path_transacted(caller, None, &native, &opts, txn).map_err(|s| failed(s, &shown))?;
                let r = set_values(reg, caller, h, set, delete, &shown);
                let _ = reg.close_key(caller, h);
                r?;
            }
        }
    }
    Ok(())
}

/// Sets the values that differ, deletes those present.
fn set_values(
    reg: &Registry,
    caller: &Caller,
    h: Handle,
    set: &[(String, Value)],
    delete: &[String],
    shown: &str,
) -> Result<(), ChangeError> {
    for (name, v) in set {
        if reg.query_value(caller, h, name).as_ref() == Ok(v) {
            continue;
        }
        reg.set_value(caller, h, name, v.clone()).map_err(|s| failed(s, &value_at(shown, name)))?;
    }
    for name in delete {
        match reg.delete_value(caller, h, name) {
            Ok(()) | Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => {}
            Err(s) => return Err(failed(s, &value_at(shown, name))),
        }
    }
    Ok(())
}

/// Writes an image's values and subkeys below an open (new) key.
fn write_tree(reg: &Registry, caller: &Caller, h: Handle, image: &KeyImage, shown: &str) -> Result<(), ChangeError> {
    set_values(reg, caller, h, &image.values, &[], shown)?;
    for sub in &image.subkeys {
        let path = format!("{shown}\\{}", sub.name);
        let opts = CreateOptions {
            desired_access: KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_CREATE_SUB_KEY,
            class: sub.class.clone(),
            ..CreateOptions::default()
        };
        let (c, _) = reg.create_key(caller, Some(h), &sub.name, &opts).map_err(|s| failed(s, &path))?;
        let r = write_tree(reg, caller, c, sub, &path);
        let _ = reg.close_key(caller, c);
        r?;
    }
    Ok(())
}

fn subkey_names(reg: &Registry, caller: &Caller, h: Handle) -> Result<Vec<String>, NtStatus> {
    let mut out = Vec::new();
    loop {
        match reg.enumerate_key(caller, h, out.len() as u32) {
            Ok(info) => out.push(info.name),
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => return Ok(out),
            Err(s) => return Err(s),
        }
    }
}

fn values_of(reg: &Registry, caller: &Caller, h: Handle) -> Result<Vec<(String, Value)>, NtStatus> {
    let mut out = Vec::new();
    loop {
        match reg.enumerate_value(caller, h, out.len() as u32) {
            Ok(v) => out.push(v),
            Err(NtStatus::STATUS_NO_MORE_ENTRIES) => return Ok(out),
            Err(s) => return Err(s),
        }
    }
}

/// Whether the open key has exactly the image's values and subkeys (recursively).
fn same_tree(reg: &Registry, caller: &Caller, h: Handle, image: &KeyImage) -> Result<bool, NtStatus> {
    let values = values_of(reg, caller, h)?;
    if values.len() != image.values.len()
        || !image.values.iter().all(|(n, v)| values.iter().any(|(m, w)| eq_names(n, m) && v == w))
    {
        return Ok(false);
    }
    let names = subkey_names(reg, caller, h)?;
    if names.len() != image.subkeys.len() {
        return Ok(false);
    }
    for sub in &image.subkeys {
        if !names.iter().any(|n| eq_names(n, &sub.name)) {
            return Ok(false);
        }
        let opts = OpenOptions { desired_access: KEY_READ, options: REG_OPTION_OPEN_LINK, ..OpenOptions::default() };
        let c = reg.open_key(caller, Some(h), &sub.name, &opts)?;
        let same = same_tree(reg, caller, c, sub);
        let _ = reg.close_key(caller, c);
        if !same? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Deletes a key with its subtree, children first (a missing key is left alone; a link key is
/// deleted itself, never what it points to).
fn delete_tree(reg: &Registry, caller: &Caller, txn: TxnId, native: &str, shown: &str) -> Result<(), ChangeError> {
    let Some(h) = open_in(reg, caller, txn, native, KEY_READ | DELETE).map_err(|s| failed(s, shown))? else {
        return Ok(());
    };
    let r = delete_open(reg, caller, h, shown);
    let _ = reg.close_key(caller, h);
    r
}

fn delete_open(reg: &Registry, caller: &Caller, h: Handle, shown: &str) -> Result<(), ChangeError> {
    let info = reg.query_key(caller, h).map_err(|s| failed(s, shown))?;
    if !info.link {
        for name in subkey_names(reg, caller, h).map_err(|s| failed(s, shown))? {
            let path = format!("{shown}\\{name}");
            let opts = OpenOptions {
                desired_access: KEY_READ | DELETE,
                options: REG_OPTION_OPEN_LINK,
                ..OpenOptions::default()
            };
            let c = reg.open_key(caller, Some(h), &name, &opts).map_err(|s| failed(s, &path))?;
            let r = delete_open(reg, caller, c, &path);
            let _ = reg.close_key(caller, c);
            r?;
        }
    }
    reg.delete_key(caller, h).map_err(|s| failed(s, shown))
}

/// Removes the committed keys from the box's hive and brings the stamps above them up to
/// date, in the transaction, as the registry itself (user-mode callers cannot open box hives).
fn clear_box(reg: &Registry, txn: TxnId, j: &Journal) -> Result<(), ChangeError> {
    let system = Caller::system();
    let mount = box_mount(&j.box_name);
    let private = |comps: &[String]| {
        let mut p = mount.clone();
        for c in comps {
            p.push('\\');
            p.push_str(c);
        }
        p
    };
    let in_box = |comps: &[String]| format!("{} in box {:?}", user_path_of(comps), j.box_name);
    for comps in &j.drop {
        delete_tree(reg, &system, txn, &private(comps), &in_box(comps))?;
    }
    for (comps, from) in &j.restamp {
        let Some(h) =
            open_in(reg, &system, txn, &private(comps), KEY_ALL_ACCESS).map_err(|s| failed(s, &in_box(comps)))?
        else {
            continue;
        };
        let r = (|| {
            let stamp = reg.query_value(&system, h, markers::BASE_TIME).ok().and_then(|v| v.as_qword().ok());
            if stamp != Some(*from) {
                return Ok(());
            }
            match host_time(reg, txn, comps)? {
                Some(now) if now != *from => reg
                    .set_value(&system, h, markers::BASE_TIME, Value::qword(now))
                    .map_err(|s| failed(s, &in_box(comps))),
                _ => Ok(()),
            }
        })();
        let _ = reg.close_key(&system, h);
        r?;
    }
    Ok(())
}

/// Finishes the commits journaled in `boxes_dir` (see [`super::recover_commits`]).
pub(crate) fn recover(reg: &Registry, boxes_dir: &Path) -> Result<(), ChangeError> {
    let entries = match std::fs::read_dir(boxes_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(ChangeError::new(
                NtStatus::STATUS_UNSUCCESSFUL,
                format!("cannot list {}: {e}", boxes_dir.display()),
            ));
        }
    };
    let mut dirs: Vec<_> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    dirs.sort();
    let mut errors = Vec::new();
    for dir in dirs {
        let file = journal::path(&dir);
        if !file.is_file() {
            continue;
        }
        if let Err(e) = recover_one(reg, &file) {
            errors.push(format!("{}: {}", file.display(), e.message));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(ChangeError::new(NtStatus::STATUS_UNSUCCESSFUL, errors.join("\n"))) }
}

fn recover_one(reg: &Registry, file: &Path) -> Result<(), ChangeError> {
    let bytes = std::fs::read(file)
        .map_err(|e| ChangeError::new(NtStatus::STATUS_UNSUCCESSFUL, format!("cannot read the commit journal: {e}")))?;
    let j = match journal::decode(&bytes) {
        Ok(j) => j,
        Err(why) => {
            // It is made durable whole before anything is applied: a damaged one never was.
            let aside = file.with_extension("journal.damaged");
            let kept = match std::fs::rename(file, &aside) {
                Ok(()) => format!("kept as {}", aside.display()),
                Err(e) => format!("could not be set aside: {e}"),
            };
            return Err(ChangeError::new(
                NtStatus::STATUS_DATA_ERROR,
                format!("the commit journal is damaged ({why}); nothing of it was applied; it is {kept}"),
            ));
        }
    };
    walk::check_name(&j.box_name)?;
    let mounted = reg.with_tree(|t| walk::box_root(t, &j.box_name).is_some());
    let txn = reg.begin_transaction();
    let r =
        apply_host(reg, &j.caller, txn, &j.ops).and_then(|()| if mounted { clear_box(reg, txn, &j) } else { Ok(()) });
    if let Err(e) = r {
        let _ = reg.rollback_transaction(txn);
        return Err(ChangeError::new(e.status, format!("the interrupted commit could not be finished: {}", e.message)));
    }
    reg.commit_transaction(txn).map_err(|s| failed(s, "the commit of the recovery"))?;
    if !mounted {
        return Err(ChangeError::new(
            NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
            format!(
                "the host has the interrupted commit's changes, but box {:?}'s hive is not mounted to clear them from; \
                 the journal stays until it is",
                j.box_name
            ),
        ));
    }
    journal::remove(file)
}
