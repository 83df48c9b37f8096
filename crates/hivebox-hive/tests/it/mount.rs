//! Hives mounted into a registry: every corpus hive through `Registry::load_key`, walked through
//! the registry's own enumeration; and hive files loaded into a store with `Home::load_hive`
//! (a dirty Windows hive with its logs, the mount table, unload writing the file).

use crate::regf_read::walk;
use crate::regf_write::roundtrip::{DAMAGED, corpus_hives};
use crate::{clock, corpus, get, open, reopen, set};
use hivebox_core::access::REG_OPTION_OPEN_LINK;
use hivebox_core::{Caller, MemoryStorage, NtStatus, OpenOptions, Registry, Value};
use hivebox_hive::StoreError;
use hivebox_hive::regf::Hive;
use std::path::Path;
use std::sync::Arc;

/// Keys and values under `path` (the key itself counted), through open/enumerate/close; link
/// keys are counted as keys, not followed.
fn enumerate(reg: &Registry, path: &str) -> (usize, usize) {
    let me = Caller::system();
    let mut link = OpenOptions::default();
    link.options |= REG_OPTION_OPEN_LINK;
    let root = reg.open_key(&me, None, path, &link).unwrap_or_else(|s| panic!("{path}: {s}"));
    let (mut keys, mut values) = (0, 0);
    let mut stack = vec![root];
    while let Some(h) = stack.pop() {
        keys += 1;
        let mut i = 0;
        loop {
            match reg.enumerate_value(&me, h, i) {
                Ok(_) => i += 1,
                Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
                Err(s) => panic!("{path}: enumerate_value: {s}"),
            }
        }
        values += i as usize;
        let mut i = 0;
        loop {
            match reg.enumerate_key(&me, h, i) {
                Ok(info) => {
                    let child = reg.open_key(&me, Some(h), &info.name, &link);
                    stack.push(child.unwrap_or_else(|s| panic!("{path}: opening {}: {s}", info.name)));
                    i += 1;
                }
                Err(NtStatus::STATUS_NO_MORE_ENTRIES) => break,
                Err(s) => panic!("{path}: enumerate_key: {s}"),
            }
        }
        reg.close_key(&me, h).unwrap();
    }
    (keys, values)
}

#[test]
fn every_corpus_hive_mounts_and_enumerates_like_the_regf_walk() {
    let reg = Registry::fresh_in_memory(clock());
    let mut mounted = 0;
    for (n, (rel, logs)) in corpus_hives().into_iter().enumerate() {
        let logs: Vec<Arc<Vec<u8>>> = logs.iter().map(|l| corpus::read(l)).collect();
        let logs: Vec<&[u8]> = logs.iter().map(|l| l.as_slice()).collect();
        let read =
            Hive::from_bytes_with_logs(corpus::read(&rel).to_vec(), &logs).and_then(|h| Ok((walk(&h)?, h.to_image()?)));
        let (want, image) = match read {
            Ok(r) => r,
            Err(e) => {
                assert!(DAMAGED.contains(&rel.as_str()), "{rel} does not load: {e}");
                continue;
            }
        };
        let path = format!(r"\REGISTRY\MACHINE\T{n}");
        reg.load_key(&Caller::system(), &path, &rel, image, Box::new(MemoryStorage))
            .unwrap_or_else(|s| panic!("{rel} does not mount: {s}"));
        assert_eq!(enumerate(&reg, &path), (want.keys, want.values), "{rel}: keys and values");
        mounted += 1;
    }
    assert!(mounted >= 30, "only {mounted} corpus hives mounted");
    assert_eq!(reg.open_handles(), 0);
}

/// The first corpus hive that is dirty and has logs, unpacked with them into `dir`.
fn dirty_hive_with_logs(dir: &Path) -> (String, std::path::PathBuf) {
    for (rel, logs) in corpus_hives() {
        if logs.is_empty() || DAMAGED.contains(&rel.as_str()) {
            continue;
        }
        let dirty = hivebox_hive::regf::BaseBlock::parse(&corpus::read(&rel)).is_ok_and(|b| b.is_dirty());
        if !dirty {
            continue;
        }
        let base = |r: &str| r.rsplit('/').next().unwrap().to_owned();
        let mut files = vec![(rel.clone(), base(&rel))];
        files.extend(logs.iter().map(|l| (l.clone(), base(l))));
        let files: Vec<(&str, &str)> = files.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        return (rel.clone(), corpus::unpack_into(dir, &files));
    }
    panic!("the corpus has no dirty hive with logs");
}

#[test]
fn a_dirty_windows_hive_loads_with_its_logs_and_unloads_clean() {
    let dir = tempfile::tempdir().unwrap();
    let (rel, file) = dirty_hive_with_logs(dir.path());
    let want = walk(&Hive::open(&file).unwrap()).unwrap();
    let home_dir = dir.path().join("home");
    let home = open(&home_dir).unwrap();
    const AT: &str = r"\REGISTRY\MACHINE\DIRTY";
    home.load_hive(AT, &file).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert_eq!(enumerate(&home.registry, AT), (want.keys, want.values), "{rel}");
    // The same file twice, or onto a key that exists, is refused.
    let again = home.load_hive(r"\REGISTRY\MACHINE\AGAIN", &file).unwrap_err().to_string();
    assert!(again.contains("already loaded"), "{again}");
    set(&home.registry, &format!(r"{AT}\HiveboxAdded"), "v", Value::dword(7)).unwrap();
    drop(home);

    // The mount is in the table: the next open mounts it again, change included.
    let home = reopen(&home_dir);
    assert_eq!(get(&home.registry, &format!(r"{AT}\HiveboxAdded"), "v"), Some(Value::dword(7)));
    assert_eq!(home.loaded_hives().unwrap(), vec![(AT.to_owned(), file.canonicalize().unwrap())]);
    let refused = home.unload_hive(r"\REGISTRY\MACHINE\SOFTWARE").unwrap_err().to_string();
    assert!(refused.contains("no hive loaded from a file"), "{refused}");
    home.unload_hive(AT).unwrap();
    assert!(home.loaded_hives().unwrap().is_empty());
    assert!(!dir.path().join(format!("{}.wal", file.file_name().unwrap().to_string_lossy())).exists());
    // The file is now a clean hive that holds the change, without needing its logs.
    let clean = Hive::from_bytes(std::fs::read(&file).unwrap()).unwrap();
    assert!(!clean.base().is_dirty());
    assert_eq!(walk(&clean).unwrap().keys, want.keys + 1);
    drop(home);

    // hivebox's own hives (marked) that are dirty stay an error.
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[8..12].copy_from_slice(&12345u32.to_le_bytes());
    let sum = hivebox_hive::regf::checksum(&bytes[..508]);
    bytes[508..512].copy_from_slice(&sum.to_le_bytes());
    std::fs::write(&file, bytes).unwrap();
    let home = reopen(&home_dir);
    match home.load_hive(AT, &file) {
        Err(StoreError::Corrupt { reason, .. }) => assert!(reason.contains("dirty"), "{reason}"),
        other => panic!("a dirty hivebox hive loaded: {other:?}"),
    }
    assert!(home.loaded_hives().unwrap().is_empty());
}

#[test]
fn a_missing_mounted_file_names_the_mount_table_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = corpus::unpack_into(dir.path(), &[("hivex/minimal", "minimal")]);
    let home_dir = dir.path().join("home");
    let home = open(&home_dir).unwrap();
    home.load_hive(r"\REGISTRY\USER\OFFLINE", &file).unwrap();
    drop(home);
    std::fs::remove_file(&file).unwrap();
    match open(&home_dir) {
        Err(e @ StoreError::Mount { line: Some(1), .. }) => {
            let text = e.to_string();
            assert!(text.contains("mounts:1:") && text.contains("is missing"), "{text}");
        }
        other => panic!("opened without the mounted file: {other:?}"),
    }
}
