//! Recovery: durability without flush, torn tails, corruption, checkpoints.

use crate::{BASE, comparable, flush, get, hives, image_path, open, record, record_offsets, reopen, set, wal_path};
use hivebox_core::{Mutation, Value};
use hivebox_hive::{CHECKPOINT_AT_OPEN, StoreError, codec};
use std::fs::{self, OpenOptions};
use std::io::Write;

fn three_values(home: &std::path::Path) {
    let h = reopen(home);
    for i in 0..3u32 {
        set(&h.registry, BASE, &format!("v{i}"), Value::dword(i)).unwrap();
    }
}

fn append_to_wal(home: &std::path::Path, bytes: &[u8]) {
    OpenOptions::new().append(true).open(wal_path(home)).unwrap().write_all(bytes).unwrap();
}

#[test]
fn first_open_creates_a_fresh_registry() {
    let dir = tempfile::tempdir().unwrap();
    let h = reopen(dir.path());
    assert!(h.recovery().created);
    assert_eq!(h.path(), dir.path());
    assert!(image_path(dir.path()).exists() && wal_path(dir.path()).exists());
    let product = get(&h.registry, r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion", "ProductName");
    assert_eq!(product, Some(Value::sz("hivebox")));
    let image = comparable(h.registry.image());
    drop(h);
    let h = reopen(dir.path());
    assert!(!h.recovery().created);
    assert_eq!(comparable(h.registry.image()), image);
}

#[test]
fn acknowledged_change_survives_without_flush() {
    let dir = tempfile::tempdir().unwrap();
    let h = reopen(dir.path());
    set(&h.registry, BASE, "Kept", Value::sz("yes")).unwrap();
    // No flush: the `Home` (and with it every in-memory state) is simply dropped.
    drop(h);
    let h = reopen(dir.path());
    assert_eq!(h.recovery().replayed, 2, "the key's creation and the value");
    assert_eq!(get(&h.registry, BASE, "Kept"), Some(Value::sz("yes")));
}

#[test]
fn flush_checkpoints_and_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let h = reopen(dir.path());
    set(&h.registry, BASE, "a", Value::dword(1)).unwrap();
    flush(&h.registry, BASE).unwrap();
    assert_eq!(fs::metadata(wal_path(dir.path())).unwrap().len(), 24, "only the log header is left");
    set(&h.registry, BASE, "b", Value::dword(2)).unwrap();
    let image = comparable(h.registry.image());
    drop(h);
    let h = reopen(dir.path());
    assert_eq!(h.recovery().replayed, 1);
    assert_eq!(comparable(h.registry.image()), image);
}

#[test]
fn torn_tail_of_garbage_is_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    let good_len = fs::metadata(wal_path(dir.path())).unwrap().len();
    append_to_wal(dir.path(), &[0xAB; 5]);
    let h = reopen(dir.path());
    assert_eq!(h.recovery().torn_tail.as_ref().map(|t| t.0), Some(good_len));
    for i in 0..3u32 {
        assert_eq!(get(&h.registry, BASE, &format!("v{i}")), Some(Value::dword(i)));
    }
    assert_eq!(fs::metadata(wal_path(dir.path())).unwrap().len(), good_len);
    // The log goes on from the cut.
    set(&h.registry, BASE, "after", Value::dword(9)).unwrap();
    drop(h);
    let h = reopen(dir.path());
    assert!(h.recovery().torn_tail.is_none());
    assert_eq!(get(&h.registry, BASE, "after"), Some(Value::dword(9)));
}

#[test]
fn every_prefix_of_a_last_record_is_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    let wal = fs::read(wal_path(dir.path())).unwrap();
    let last = *record_offsets(&wal).last().unwrap();
    for cut in last..wal.len() {
        fs::write(wal_path(dir.path()), &wal[..cut]).unwrap();
        let h = reopen(dir.path());
        assert_eq!(get(&h.registry, BASE, "v1"), Some(Value::dword(1)), "cut at {cut}");
        assert_eq!(get(&h.registry, BASE, "v2"), None, "cut at {cut}");
    }
    // A complete last record whose checksum fails is torn too.
    let mut damaged = wal.clone();
    *damaged.last_mut().unwrap() ^= 1;
    fs::write(wal_path(dir.path()), &damaged).unwrap();
    let h = reopen(dir.path());
    assert_eq!(h.recovery().torn_tail.as_ref().map(|t| t.0), Some(last as u64));
    assert_eq!(get(&h.registry, BASE, "v2"), None);
}

#[test]
fn corrupt_image_is_an_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    let path = image_path(dir.path());
    let mut bytes = fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let err = open(dir.path()).unwrap_err();
    let StoreError::Corrupt { path: named, offset, .. } = &err else { panic!("{err}") };
    assert_eq!(named, &path);
    assert_eq!(*offset, 0xB4, "hivebox's checksum of the hive bins, in the base block's reserved area");
    let msg = err.to_string();
    assert!(msg.contains("SOFTWARE.hiv is corrupt at byte 180: checksum"), "{msg}");
    // Still an error on the next try: the store is never started afresh.
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
    // A damaged magic or a truncated file are errors too.
    bytes[middle] ^= 0x40;
    bytes[0] = b'X';
    fs::write(&path, &bytes).unwrap();
    let err = open(dir.path()).unwrap_err().to_string();
    assert!(err.contains("SOFTWARE.hiv is corrupt at byte 0: base block"), "{err}");
    fs::write(&path, &bytes[..10]).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { .. })));
}

#[test]
fn corruption_in_the_middle_of_the_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    let path = wal_path(dir.path());
    let mut wal = fs::read(&path).unwrap();
    let offsets = record_offsets(&wal);
    let second = offsets[1];
    wal[second + 10] ^= 0x01;
    fs::write(&path, &wal).unwrap();
    let err = open(dir.path()).unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(&err, StoreError::Corrupt { path: p, offset, .. } if *p == path && *offset == second as u64),
        "{msg}"
    );
    assert!(msg.contains(&format!("SOFTWARE.hiv.wal is corrupt at byte {second}")), "{msg}");
    assert!(msg.contains(&format!("a valid record follows at byte {}", offsets[2])), "{msg}");
    // A damaged length field in the middle is not mistaken for a torn tail either.
    wal[second + 10] ^= 0x01;
    wal[second + 3] = 0x7F;
    fs::write(&path, &wal).unwrap();
    assert!(matches!(open(dir.path()), Err(StoreError::Corrupt { offset, .. }) if offset == second as u64));
}

#[test]
fn a_record_that_does_not_replay_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    let at = fs::metadata(wal_path(dir.path())).unwrap().len();
    let bad = Mutation::DeleteKey { path: format!("{BASE}\\Missing"), time: 1 };
    append_to_wal(dir.path(), &record(&codec::encode_mutation(&bad).unwrap()));
    let err = open(dir.path()).unwrap_err();
    assert!(matches!(&err, StoreError::Corrupt { offset, .. } if *offset == at), "{err}");
    assert!(err.to_string().contains("does not replay"), "{err}");
}

#[test]
fn a_stale_log_from_a_checkpoint_crash_is_discarded() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    let old_log = fs::read(wal_path(dir.path())).unwrap();
    let h = reopen(dir.path());
    flush(&h.registry, BASE).unwrap();
    let image = comparable(h.registry.image());
    drop(h);
    // As if the process died after the new snapshot's rename, before the log was reset.
    fs::write(wal_path(dir.path()), &old_log).unwrap();
    let h = reopen(dir.path());
    assert!(h.recovery().stale_log);
    assert_eq!(comparable(h.registry.image()), image);
    // A log two generations behind is not a crash leftover but a mix-up.
    set(&h.registry, BASE, "x", Value::dword(1)).unwrap();
    flush(&h.registry, BASE).unwrap();
    drop(h);
    fs::write(wal_path(dir.path()), &old_log).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("log generation 1 does not continue"), "{err}");
}

#[test]
fn a_log_without_its_image_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    fs::remove_file(image_path(dir.path())).unwrap();
    let err = open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("holds records but there is no SOFTWARE.hiv"), "{err}");
}

#[test]
fn leftover_temporary_image_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    three_values(dir.path());
    fs::write(hives(dir.path()).join("SOFTWARE.hiv.tmp"), b"half a snapshot").unwrap();
    let h = reopen(dir.path());
    assert_eq!(get(&h.registry, BASE, "v2"), Some(Value::dword(2)));
    assert!(!hives(dir.path()).join("SOFTWARE.hiv.tmp").exists());
}

#[test]
fn a_long_log_is_checkpointed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let h = reopen(dir.path());
    let big = Value::binary(&[0x5A; 64 * 1024]);
    let n = (CHECKPOINT_AT_OPEN / (64 * 1024)) as usize + 2;
    for i in 0..n {
        set(&h.registry, BASE, &format!("big{i}"), big.clone()).unwrap();
    }
    let image = comparable(h.registry.image());
    drop(h);
    let h = reopen(dir.path());
    assert!(h.recovery().checkpointed);
    assert_eq!(fs::metadata(wal_path(dir.path())).unwrap().len(), 24);
    assert_eq!(comparable(h.registry.image()), image);
    drop(h);
    let h = reopen(dir.path());
    assert_eq!(h.recovery().replayed, 0);
    assert_eq!(comparable(h.registry.image()), image);
}

#[test]
fn volatile_keys_are_not_stored() {
    use hivebox_core::access::REG_OPTION_VOLATILE;
    use hivebox_core::{Caller, CreateOptions};
    let dir = tempfile::tempdir().unwrap();
    let h = reopen(dir.path());
    set(&h.registry, BASE, "kept", Value::dword(2)).unwrap();
    let me = Caller::system();
    let opts = CreateOptions { options: REG_OPTION_VOLATILE, ..CreateOptions::default() };
    let volatile = format!("{BASE}\\Volatile");
    let (k, _) = h.registry.create_key_path(&me, None, &volatile, &opts).unwrap();
    h.registry.set_value(&me, k, "gone", Value::dword(1)).unwrap();
    h.registry.close_key(&me, k).unwrap();
    drop(h);
    let h = reopen(dir.path());
    assert_eq!(get(&h.registry, &volatile, "gone"), None);
    assert_eq!(get(&h.registry, BASE, "kept"), Some(Value::dword(2)));
    assert!(get(&h.registry, r"\REGISTRY\MACHINE\HARDWARE\DESCRIPTION", "x").is_none());
    let me = Caller::system();
    let hw = h.registry.open_key(&me, None, r"\REGISTRY\MACHINE\HARDWARE\DESCRIPTION", &Default::default());
    assert!(hw.is_ok(), "the volatile HARDWARE key is rebuilt at every open");
}

/// A committed transaction survives reopening; its record is cut anywhere and none of its
/// changes come back (recovery replays all of a transaction or nothing).
#[test]
fn committed_transaction_is_durable_and_all_or_nothing() {
    use hivebox_core::access::KEY_ALL_ACCESS;
    use hivebox_core::{Caller, CreateOptions, OpenOptions};
    let dir = tempfile::tempdir().unwrap();
    let h = reopen(dir.path());
    set(&h.registry, BASE, "before", Value::dword(0)).unwrap();
    let logged = fs::metadata(wal_path(dir.path())).unwrap().len();
    let me = Caller::system();
    let reg = &h.registry;
    let txn = reg.begin_transaction();
    let base = reg.open_key_transacted(&me, None, BASE, &OpenOptions::access(KEY_ALL_ACCESS), txn).unwrap();
    for i in 0..5u32 {
        let (k, _) = reg.create_key(&me, Some(base), &format!("k{i}"), &CreateOptions::default()).unwrap();
        reg.set_value(&me, k, "n", Value::dword(i)).unwrap();
        reg.close_key(&me, k).unwrap();
    }
    reg.set_value(&me, base, "before", Value::dword(1)).unwrap();
    reg.close_key(&me, base).unwrap();
    reg.commit_transaction(txn).unwrap();
    drop(h);

    let wal = fs::read(wal_path(dir.path())).unwrap();
    let records = record_offsets(&wal);
    assert_eq!(*records.last().unwrap() as u64, logged, "the transaction is one record after the others");
    let h = reopen(dir.path());
    assert_eq!(get(&h.registry, &format!(r"{BASE}\k4"), "n"), Some(Value::dword(4)));
    assert_eq!(get(&h.registry, BASE, "before"), Some(Value::dword(1)));
    drop(h);

    // The record torn at any point: recovery cuts it, and every change of it is gone.
    for cut in [logged as usize + 3, logged as usize + 20, wal.len() - 1] {
        fs::write(wal_path(dir.path()), &wal[..cut]).unwrap();
        let h = reopen(dir.path());
        assert_eq!(get(&h.registry, BASE, "before"), Some(Value::dword(0)), "cut at {cut}");
        assert_eq!(get(&h.registry, &format!(r"{BASE}\k0"), "n"), None, "cut at {cut}");
        drop(h);
    }
}
