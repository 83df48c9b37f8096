//! Damaged hives: the corpus's own negative tests, and real hives damaged on purpose. Each
//! must fail with an error naming the record at fault and its file offset, never panic,
//! never loop, and never read a free cell as a record.

use super::{open, walk};
use crate::corpus;
use hivebox_core::KeyImage;
use hivebox_hive::regf::{Hive, RegfError, WriteOptions, write_hive};

fn expect_err<T>(r: Result<T, RegfError>, record: &str, offset: u64, words: &str) -> RegfError {
    let Err(e) = r else { panic!("expected an error from {record} at {offset:#x}") };
    let msg = e.to_string();
    assert_eq!((e.record(), e.offset()), (Some(record), Some(offset)), "{msg}");
    assert!(msg.starts_with(&format!("{record} at file offset {offset:#x}: ")), "{msg}");
    assert!(msg.contains(words), "{msg:?} should say {words:?}");
    e
}

#[test]
fn plaso_corrupt_subkey_list_points_into_a_cell() {
    let hive = open("plaso/corrupt_sub_key_list.hiv");
    let why = "element 8 refers to cell 0x4480, which is not the start of a cell";
    expect_err(walk(&hive), "lf", 0x4b80, why);
    expect_err(hive.to_image(), "lf", 0x4b80, why);
}

#[test]
fn regipy_corrupted_system_hive_has_garbage_where_a_bin_should_be() {
    // A clean base block claims 0x348000 bytes of bins, but after 25 of them come zeros.
    let r = Hive::from_bytes(corpus::read("regipy/corrupted_system_hive").to_vec());
    expect_err(r, "hbin", 0x1a000, "not \"hbin\"");
}

#[test]
fn yarp_wrong_order_and_duplicate_subkeys_are_refused_by_to_image() {
    let hive = open("yarp/WrongOrderHive");
    assert_eq!(walk(&hive).unwrap().keys, 11);
    expect_err(hive.to_image(), "nk", 0x1258, "is listed after \"2\": the list is not sorted");
    let hive = open("yarp/DuplicateSubkeysHive");
    expect_err(hive.to_image(), "nk", 0x1140, "two subkeys have the same name");
}

#[test]
fn deleted_cells_are_not_resurrected() {
    // DeletedDataHive keeps a deleted value in a free cell, DeletedTreeHive a deleted subtree:
    // neither shows up.
    assert_eq!(walk(&open("yarp/DeletedDataHive")).unwrap().values, 1);
    assert_eq!(walk(&open("yarp/DeletedTreeHive")).unwrap().keys, 3);
}

/// `plaso/100_sub_keys.hiv` (a root with 100 subkeys of one value each), to damage.
struct Patient {
    bytes: Vec<u8>,
    root: u32,
    child: u32,
    vk: u32,
}

impl Patient {
    fn new() -> Self {
        let bytes = corpus::read("plaso/100_sub_keys.hiv").to_vec();
        let hive = Hive::from_bytes(bytes.clone()).unwrap();
        let root = hive.root().unwrap();
        let child = root.subkeys().unwrap().next().unwrap().unwrap();
        let vk = child.values().unwrap().next().unwrap().unwrap().offset();
        Patient { root: root.offset(), child: child.offset(), vk, bytes }
    }

    /// The file offset of field `at` of the record in cell `cell`.
    fn field(cell: u32, at: usize) -> usize {
        4096 + cell as usize + 4 + at
    }

    fn get(&self, cell: u32, at: usize) -> u32 {
        let p = Self::field(cell, at);
        u32::from_le_bytes(self.bytes[p..p + 4].try_into().unwrap())
    }

    fn set(mut self, cell: u32, at: usize, v: u32) -> Self {
        let p = Self::field(cell, at);
        self.bytes[p..p + 4].copy_from_slice(&v.to_le_bytes());
        self
    }

    fn open(self) -> Hive {
        Hive::from_bytes(self.bytes).unwrap()
    }
}

const SUBKEY_COUNT: usize = 20;
const SUBKEY_LIST: usize = 28;
const VALUE_COUNT: usize = 36;
const VALUE_LIST: usize = 40;

#[test]
fn a_reference_to_a_free_cell_is_an_error() {
    let p = Patient::new();
    let (root, child) = (p.root, p.child);
    let list = p.get(root, SUBKEY_LIST);
    // Free the first subkey's cell (a positive size is a free cell).
    let mut bytes = p.bytes;
    let at = 4096 + child as usize;
    let size = i32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    bytes[at..at + 4].copy_from_slice(&size.unsigned_abs().to_le_bytes());
    let hive = Hive::from_bytes(bytes).unwrap();
    let e = expect_err(walk(&hive), "lf", 4096 + u64::from(list), "which is a free cell");
    assert!(e.to_string().contains(&format!("element 0 refers to cell {child:#x}")), "{e}");
}

#[test]
fn a_reference_into_the_middle_of_a_cell_is_an_error() {
    let p = Patient::new();
    let (child, vk) = (p.child, p.vk);
    let list = p.get(child, VALUE_LIST);
    let hive = p.set(list, 0, vk + 8).open();
    expect_err(walk(&hive), "value list", 4096 + u64::from(list), "which is not the start of a cell");
}

#[test]
fn a_key_listed_under_another_parent_is_an_error() {
    // The first subkey lists the root's subkeys as its own.
    let p = Patient::new();
    let (root, child) = (p.root, p.child);
    let (n, list) = (p.get(root, SUBKEY_COUNT), p.get(root, SUBKEY_LIST));
    let hive = p.set(child, SUBKEY_COUNT, n).set(child, SUBKEY_LIST, list).open();
    expect_err(walk(&hive), "nk", 4096 + u64::from(child), "its parent field is cell");
}

#[test]
fn a_cycle_through_the_root_is_an_error() {
    // The root becomes its own (only) subkey, with a consistent parent field. (With parent
    // fields checked, a cycle can only go through the root.)
    let p = Patient::new();
    let root = p.root;
    let list = p.get(root, SUBKEY_LIST);
    let lh_one = u32::from_le_bytes(*b"lf\x01\x00");
    let hive = p.set(root, 16, root).set(root, SUBKEY_COUNT, 1).set(list, 0, lh_one).set(list, 4, root).open();
    expect_err(walk(&hive), "lf", 4096 + u64::from(list), "element 0 is the root key");
    expect_err(hive.to_image(), "lf", 4096 + u64::from(list), "element 0 is the root key");
}

#[test]
fn keys_nested_deeper_than_windows_allows_end_the_walk() {
    let mut image = KeyImage { name: "ROOT".into(), ..Default::default() };
    for depth in (1..=513).rev() {
        let child = std::mem::replace(&mut image, KeyImage { name: format!("k{depth}"), ..Default::default() });
        image.subkeys.push(child);
    }
    image.name = "ROOT".into();
    let bytes = write_hive(&image, &WriteOptions::default()).unwrap();
    let hive = Hive::from_bytes(bytes).unwrap();
    let e = walk(&hive).unwrap_err();
    assert!(e.to_string().contains("deeper than 512 levels"), "{e}");
    assert!(hive.to_image().unwrap_err().to_string().contains("deeper than 512 levels"));
}

#[test]
fn absurd_counts_are_bounded_by_the_cells() {
    let p = Patient::new();
    let root = p.root;
    let list = p.get(root, VALUE_LIST);
    let hive = p.set(root, VALUE_COUNT, u32::MAX).set(root, VALUE_LIST, list).open();
    // The root had no values; its (null) list now fails to resolve, whatever the count.
    expect_err(walk(&hive), "nk", 4096 + u64::from(root), "the value list");

    let p = Patient::new();
    let (root, child) = (p.root, p.child);
    let vlist = p.get(child, VALUE_LIST);
    let hive = p.set(child, VALUE_COUNT, u32::MAX).open();
    expect_err(walk(&hive), "value list", 4096 + u64::from(vlist), "4294967295 values");
    let _ = root;

    let p = Patient::new();
    let root = p.root;
    let hive = p.set(root, SUBKEY_COUNT, u32::MAX).open();
    expect_err(walk(&hive), "nk", 4096 + u64::from(root), "4294967295 subkeys, but its subkey lists hold 100");
    expect_err(hive.to_image(), "nk", 4096 + u64::from(root), "subkey lists hold 100");

    let p = Patient::new();
    let vk = p.vk;
    let hive = p.set(vk, 4, 0x7FFF_FFF0).open();
    expect_err(walk(&hive), "vk", 4096 + u64::from(vk), "more than its cell holds");
}

#[test]
fn truncated_and_foreign_files_fail_cleanly() {
    let bytes = corpus::read("plaso/100_sub_keys.hiv");
    let e = Hive::from_bytes(bytes[..8192].to_vec()).unwrap_err();
    assert!(e.to_string().contains("runs past the end of the file"), "{e}");
    let e = Hive::from_bytes(bytes[..100].to_vec()).unwrap_err();
    assert_eq!(e.record(), Some("base block"));
    let e = Hive::from_bytes(vec![0x5A; 16384]).unwrap_err();
    assert!(e.to_string().contains("not a registry hive"), "{e}");
    let e = Hive::open(std::path::Path::new("/nonexistent/hive")).unwrap_err();
    assert!(matches!(e, RegfError::Io { .. }) && e.to_string().starts_with("i/o error on /nonexistent/hive"));
}

#[test]
fn no_single_byte_corruption_makes_the_reader_panic() {
    // Every byte of a small hive set to 0x00, 0xFF and flipped: open, walk and image must
    // each return (a result or an error), whatever the damage.
    let orig = corpus::read("python-registry/UNICODE_TESTS");
    for at in 0..orig.len() {
        for f in [|_: u8| 0u8, |_| 0xFF, |b: u8| !b, |b: u8| b ^ 0x80] {
            let mut bytes = orig.to_vec();
            bytes[at] = f(bytes[at]);
            if let Ok(hive) = Hive::from_bytes(bytes) {
                let _ = walk(&hive);
                let _ = hive.to_image();
            }
        }
    }
}
