//! Transaction log replay, against hives Windows itself recovered (yarp's `RecoveredHive_*`)
//! and real dirty hives with their logs (regipy).

use super::{Counts, image_counts, open, walk};
use crate::corpus;
use hivebox_hive::regf::{Hive, LogFormat};

#[test]
fn new_format_logs_replay_to_what_windows_10_recovered() {
    let hive = Hive::open(&corpus::path("yarp/NewDirtyHive1/NewDirtyHive")).unwrap();
    let rec = hive.recovery();
    assert!(rec.dirty && rec.recovered && !rec.bad_checksum, "{rec:?}");
    assert_eq!((rec.format, rec.entries, rec.pages, rec.sequence), (Some(LogFormat::New), 4, 4, Some(5)));
    assert!(rec.logs.iter().all(|l| l.applied), "{rec:?}");
    assert_eq!(rec.logs.iter().map(|l| l.entries).collect::<Vec<_>>(), [1, 3]);
    let windows = open("yarp/NewDirtyHive1/RecoveredHive_Windows10");
    // Byte for byte: every hive bin as Windows 10 wrote it after its own replay.
    assert!(hive.bins() == windows.bins());
    assert_eq!(hive.to_image().unwrap(), windows.to_image().unwrap());
    assert!(!hive.base().is_dirty() && hive.base().primary_seq == 5);

    // The logs' order does not matter: their sequence numbers decide.
    let primary = corpus::read("yarp/NewDirtyHive1/NewDirtyHive").to_vec();
    let (log1, log2) =
        (corpus::read("yarp/NewDirtyHive1/NewDirtyHive.LOG1"), corpus::read("yarp/NewDirtyHive1/NewDirtyHive.LOG2"));
    let reversed = Hive::from_bytes_with_logs(primary.clone(), &[&log2, &log1]).unwrap();
    assert!(reversed.bins() == windows.bins());

    // Without its logs the hive opens as it is on disk, and says it is dirty.
    let raw = Hive::from_bytes(primary).unwrap();
    assert!(raw.recovery().dirty && !raw.recovery().recovered && !raw.recovery().problems.is_empty());
    assert_ne!(raw.to_image().unwrap(), windows.to_image().unwrap());
}

#[test]
fn a_damaged_entry_stops_replay_after_the_entries_before_it() {
    let primary = corpus::read("yarp/NewDirtyHive1/NewDirtyHive").to_vec();
    let log1 = corpus::read("yarp/NewDirtyHive1/NewDirtyHive.LOG1");
    let mut log2 = corpus::read("yarp/NewDirtyHive1/NewDirtyHive.LOG2").to_vec();
    log2[0x2000 + 0x100] ^= 0xFF; // a page byte of the entry with sequence number 4
    let hive = Hive::from_bytes_with_logs(primary, &[&log1, &log2]).unwrap();
    let rec = hive.recovery();
    assert_eq!((rec.entries, rec.sequence), (2, Some(3)), "{rec:?}");
    let note = rec.logs[1].note.as_deref().unwrap();
    assert!(note.contains("0x2000") && note.contains("hash"), "{note}");
}

#[test]
fn old_format_log_replays_to_what_windows_7_recovered() {
    let hive = Hive::open(&corpus::path("yarp/OldDirtyHive/OldDirtyHive")).unwrap();
    let rec = hive.recovery();
    assert!(rec.recovered && rec.format == Some(LogFormat::Old) && rec.pages == 64, "{rec:?}");
    // LOG2 is empty, as Windows leaves an unused one.
    let log2 = rec.logs.iter().find(|l| l.name.ends_with("LOG2")).unwrap();
    assert!(!log2.applied && log2.note.is_some());
    let windows = open("yarp/OldDirtyHive/RecoveredHive_Windows7");
    assert_eq!(hive.to_image().unwrap(), windows.to_image().unwrap());
}

#[test]
fn a_broken_base_block_is_rebuilt_from_the_log() {
    let e = Hive::from_bytes(corpus::read("yarp/BadBaseBlockHive/BadBaseBlockHive").to_vec()).unwrap_err();
    assert_eq!((e.offset(), e.record()), (Some(0), Some("base block")), "{e}");
    let hive = Hive::open(&corpus::path("yarp/BadBaseBlockHive/BadBaseBlockHive")).unwrap();
    let rec = hive.recovery();
    assert!(rec.bad_checksum && rec.recovered && rec.format == Some(LogFormat::Old), "{rec:?}");
    assert!(hive.base().checksum_ok && hive.base().minor == 3);
    let windows = open("yarp/OldDirtyHive/RecoveredHive_Windows7");
    assert_eq!(hive.to_image().unwrap(), windows.to_image().unwrap());
}

/// Unpacks a regipy hive and its logs under their own names and opens the hive by path.
fn open_regipy(files: &[(&str, &str)]) -> Hive {
    let dir = tempfile::tempdir().unwrap();
    let path = corpus::unpack_into(dir.path(), files);
    Hive::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn regipy_system_b_replays_both_logs_across_missing_entries() {
    // The hive's secondary sequence number is 1621 but the logs start at 2107: the entries in
    // between were reconciled into the file already (a partial reconcile). LOG1 holds
    // 2107..2110, LOG2 2111..2130.
    let hive = open_regipy(&[
        ("regipy/SYSTEM_B", "SYSTEM_B"),
        ("regipy/SYSTEM_B.LOG1", "SYSTEM_B.LOG1"),
        ("regipy/SYSTEM_B.LOG2", "SYSTEM_B.LOG2"),
    ]);
    let rec = hive.recovery();
    assert_eq!((rec.entries, rec.sequence, rec.format), (24, Some(2130), Some(LogFormat::New)), "{rec:?}");
    assert_eq!(rec.logs.iter().map(|l| l.entries).collect::<Vec<_>>(), [4, 20]);
    assert_eq!(hive.base().hive_bins_size, 0xC0_2000);
    let counts = walk(&hive).unwrap();
    assert_eq!(counts, Counts { keys: 35_595, values: 78_901 });
    assert_eq!(image_counts(&hive.to_image().unwrap()), counts);
}

#[test]
fn regipy_transactions_ntuser_skips_the_older_log() {
    // Found despite the case of the names differing from the hive's (as on NTFS).
    let hive = open_regipy(&[
        ("regipy/transactions_NTUSER.DAT", "transactions_NTUSER.DAT"),
        ("regipy/transactions_ntuser.dat.log1", "transactions_ntuser.dat.log1"),
        ("regipy/transactions_ntuser.dat.log2", "transactions_ntuser.dat.log2"),
    ]);
    let rec = hive.recovery();
    assert_eq!((rec.entries, rec.sequence), (23, Some(588)), "{rec:?}");
    let (log1, log2) = (&rec.logs[0], &rec.logs[1]);
    assert!(log1.applied && log1.sequence == Some(566));
    assert!(!log2.applied && log2.sequence == Some(562) && log2.note.as_deref().unwrap().contains("older"));
    // The hive grew from 0xbe000 to 0xe2000 bytes of bins during the logged writes.
    assert_eq!(hive.base().hive_bins_size, 0xE_2000);
    let counts = walk(&hive).unwrap();
    assert_eq!(counts, Counts { keys: 3105, values: 4695 });
    assert_eq!(image_counts(&hive.to_image().unwrap()), counts);
}

#[test]
fn regipy_usrclass_replays_both_logs() {
    let hive = open_regipy(&[
        ("regipy/UsrClass.dat", "UsrClass.dat"),
        ("regipy/UsrClass.dat.LOG1", "UsrClass.dat.LOG1"),
        ("regipy/UsrClass.dat.LOG2", "UsrClass.dat.LOG2"),
    ]);
    let rec = hive.recovery();
    assert_eq!((rec.entries, rec.sequence), (14, Some(300)), "{rec:?}");
    let counts = walk(&hive).unwrap();
    assert_eq!(counts, Counts { keys: 6238, values: 12_531 });
    assert_eq!(image_counts(&hive.to_image().unwrap()), counts);
}

#[test]
fn a_dirty_hive_without_logs_opens_as_it_is_and_says_so() {
    for (rel, keys, values) in [("regipy/SECURITY", 100, 109), ("regipy/amcache.hve", 2105, 17_539)] {
        let hive = open(rel);
        let rec = hive.recovery();
        assert!(rec.dirty && !rec.recovered && rec.logs.is_empty(), "{rel}: {rec:?}");
        assert!(rec.problems.iter().any(|p| p.contains("no transaction log")), "{rel}: {rec:?}");
        assert_eq!(walk(&hive).unwrap(), Counts { keys, values }, "{rel}");
        hive.to_image().unwrap();
    }
}

#[test]
fn a_clean_hive_ignores_its_logs() {
    let hive = Hive::open(&corpus::path("dfwinreg-20190329-sdist/NTUSER.DAT")).unwrap();
    assert!(!hive.recovery().dirty && hive.recovery().logs.is_empty());
    let bytes = corpus::read("dfwinreg-20190329-sdist/NTUSER.DAT").to_vec();
    let log = corpus::read("dfwinreg-20190329-sdist/NTUSER.DAT.LOG");
    let hive = Hive::from_bytes_with_logs(bytes.clone(), &[&log]).unwrap();
    assert!(hive.bytes() == bytes.as_slice() && hive.recovery().problems[0].contains("clean"));
}
