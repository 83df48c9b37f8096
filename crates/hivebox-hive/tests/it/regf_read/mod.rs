//! The regf reader against the real-hive corpus: every hive that should open opens and
//! walks fully with the expected numbers of keys and values (from python3-hivex, and from the
//! corpus MANIFEST), names and data decode, logs replay to what Windows itself recovered,
//! and damaged hives fail with an error naming the record and its offset.

mod cross;
mod damaged;
mod logs;

use crate::corpus;
use hivebox_core::KeyImage;
use hivebox_hive::regf::{Hive, KeyNode, RegfError};

/// What a full walk saw.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub keys: usize,
    pub values: usize,
}

/// Walks every key and value through the view API, reading every name, class, security
/// descriptor and value's data (with a stack of iterators: hives may nest 512 deep).
pub fn walk(hive: &Hive) -> Result<Counts, RegfError> {
    let mut c = Counts::default();
    let mut visit = |k: KeyNode<'_>| -> Result<(), RegfError> {
        c.keys += 1;
        let _ = (k.name(), k.try_class()?, k.security()?);
        for v in k.values()? {
            let v = v?;
            let data = v.data()?;
            assert_eq!(data.len(), v.data_len() as usize);
            let _ = v.name();
            c.values += 1;
        }
        Ok(())
    };
    let root = hive.root()?;
    visit(root)?;
    let mut stack = vec![root.subkeys()?];
    while let Some(top) = stack.last_mut() {
        match top.next() {
            Some(k) => {
                let k = k?;
                visit(k)?;
                stack.push(k.subkeys()?);
            }
            None => {
                stack.pop();
            }
        }
    }
    Ok(c)
}

/// Keys and values in an image.
pub fn image_counts(img: &KeyImage) -> Counts {
    let mut c = Counts { keys: 1, values: img.values.len() };
    for s in &img.subkeys {
        let sub = image_counts(s);
        c.keys += sub.keys;
        c.values += sub.values;
    }
    c
}

/// The subkey of `img` at a `\`-separated path (names compared without case).
pub fn find<'a>(img: &'a KeyImage, path: &str) -> &'a KeyImage {
    path.split('\\').fold(img, |k, part| {
        k.subkeys
            .iter()
            .find(|s| s.name.to_lowercase() == part.to_lowercase())
            .unwrap_or_else(|| panic!("no key {part:?} under {:?}", k.name))
    })
}

/// Opens a corpus hive from its bytes (no logs).
pub fn open(rel: &str) -> Hive {
    Hive::from_bytes(corpus::read(rel).to_vec()).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Clean hives, with the keys and values python3-hivex counts in them.
const CLEAN: &[(&str, usize, usize)] = &[
    ("dfwinreg-20190329-sdist/NTUSER.DAT", 845, 4360),
    ("dfwinreg-20190329-sdist/SYSTEM", 10269, 27556),
    ("dfwinreg-20190329-sdist/WIN7-NTUSER.DAT", 2288, 5470),
    ("dfwinreg-git/SAM", 76, 84),
    ("dfwinreg-git/SECURITY", 101, 110),
    ("dfwinreg-git/UsrClass.dat", 7505, 19987),
    ("hivex/minimal", 1, 0),
    ("hivex/rlenvalue_test_hive", 2, 6),
    ("hivex/special", 4, 3),
    ("notatin/NTUSER.DAT", 2853, 5523),
    ("notatin/win7_ntuser.dat", 4841, 16545),
    ("nt-hive/testhive", 528, 12),
    ("plaso/100_sub_keys.hiv", 101, 100),
    ("plaso/NTUSER-WIN7.DAT", 2288, 5470),
    ("python-registry/REORGANIZED_VALUES_TESTS", 3, 22),
    ("python-registry/UNICODE_TESTS", 3, 22),
    ("python-registry/issue22.hive", 1, 10),
    ("yarp/BigDataHive", 2, 2),
    ("yarp/DeletedDataHive", 2, 1),
    ("yarp/DeletedTreeHive", 3, 0),
    ("yarp/EmptyHive", 1, 0),
    ("yarp/ExtendedASCIIHive", 2, 1),
    ("yarp/ManySubkeysHive", 5003, 0),
    ("yarp/MultiSzHive", 2, 2),
    ("yarp/NewDirtyHive1/RecoveredHive_Windows10", 5, 1),
    ("yarp/OffHive", 1, 0),
    ("yarp/OldDirtyHive/RecoveredHive_Windows7", 5003, 1),
    ("yarp/StringValuesHive", 2, 4),
    ("yarp/UnicodeHive", 3, 0),
    ("regipy/BCD", 132, 103),
    ("regipy/NTUSER-WSL.DAT", 3074, 4949),
    ("regipy/NTUSER.DAT", 1812, 4094),
    ("regipy/SAM", 65, 70),
    ("regipy/SYSTEM", 30756, 73456),
];

#[test]
fn every_clean_corpus_hive_opens_and_walks_fully() {
    for &(rel, keys, values) in CLEAN {
        let hive = open(rel);
        assert!(!hive.recovery().dirty, "{rel} should be clean");
        let counts = walk(&hive).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(counts, Counts { keys, values }, "{rel}");
        let img = hive.to_image().unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(image_counts(&img), counts, "{rel}");
    }
}

#[test]
fn software_has_the_manifest_counts() {
    let hive = Hive::open(&corpus::path("dfwinreg-20190329-sdist/SOFTWARE")).unwrap();
    assert_eq!(walk(&hive).unwrap(), Counts { keys: 117_488, values: 193_870 });
    let img = hive.to_image().unwrap();
    assert_eq!(image_counts(&img), Counts { keys: 117_488, values: 193_870 });
    let cv = find(&img, r"Microsoft\Windows NT\CurrentVersion");
    let get = |name: &str| cv.values.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_string().unwrap());
    assert_eq!(get("CurrentBuildNumber").as_deref(), Some("7601"));
    assert_eq!(get("ProductName").as_deref(), Some("Windows 7 Ultimate"));
    // One shared descriptor per sk cell: far fewer distinct ones than keys.
    let mut sds = std::collections::HashSet::new();
    fn collect(k: &KeyImage, sds: &mut std::collections::HashSet<usize>) {
        sds.insert(k.security.as_ref().map_or(0, |s| s.as_ptr() as usize));
        k.subkeys.iter().for_each(|s| collect(s, sds));
    }
    collect(&img, &mut sds);
    assert!(sds.len() <= 289, "{} distinct descriptors for 289 sk cells", sds.len());
}

#[test]
fn base_block_fields() {
    let hive = open("yarp/UnicodeHive");
    let b = hive.base();
    assert_eq!((b.major, b.minor, b.primary_seq, b.secondary_seq, b.root_cell), (1, 3, 3, 3, 0x20));
    assert_eq!(b.hive_bins_size, 4096);
    assert_eq!(b.file_name, r"Users\BUH\Desktop\1\UnicodeHive");
    assert_eq!(b.last_written, 131_332_194_436_774_160);
    assert!(b.checksum_ok);
}

#[test]
fn unicode_and_latin1_names_decode() {
    let img = open("yarp/UnicodeHive").to_image().unwrap();
    let key = find(&img, "Привет\\Ключ");
    assert_eq!(key.name, "Ключ");

    let img = open("yarp/ExtendedASCIIHive").to_image().unwrap();
    let key = find(&img, "ëigenaardig");
    assert_eq!(key.name, "ëigenaardig");
    assert_eq!(key.values[0].0, "ëigenaardig");
    assert_eq!(key.values[0].1.as_string().unwrap(), "ëigenaardig");

    let img = open("python-registry/UNICODE_TESTS").to_image().unwrap();
    let jumble = "UNICODE_JUMBLE_{H~\u{2591}\u{f4}\u{ab}}";
    assert_eq!(img.subkeys[1].name, jumble);
    assert!(img.subkeys[0].values.iter().any(|(n, _)| *n == format!("{jumble}3")));

    // Surrogate pairs sort by code unit (below U+FF21), and U+10438 is not a duplicate of its
    // uppercase U+10410: Windows upcases code units, not characters.
    let img = open("nt-hive/testhive").to_image().unwrap();
    let names: Vec<&str> = find(&img, "character-encoding-test").subkeys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["äöü", "\u{10410}", "\u{10438}", "\u{FF21}"]);

    let img = open("hivex/special").to_image().unwrap();
    let names: Vec<&str> = img.subkeys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["abcd_äöüß", "weird™", "zero\0key"]);
    assert_eq!(img.subkeys[1].values[0].0, "symbols $£₤₧€");
    assert_eq!(img.subkeys[2].values[0].0, "zero\0val");
}

#[test]
fn big_data_reads_fully() {
    let img = open("yarp/BigDataHive").to_image().unwrap();
    let key = find(&img, "key_with_bigdata");
    let data = |name: &str| &key.values.iter().find(|(n, _)| n == name).unwrap().1.data;
    assert!(data("").len() == 16_345 && data("").iter().all(|&b| b == b'1'));
    assert!(data("v").len() == 81_725 && data("v").iter().all(|&b| b == b'2'));

    // offreg.dll's boundaries: 16343 and 16344 bytes fit one cell, 16345 needs a db record.
    let hive = open("nt-hive/testhive");
    let root = hive.root().unwrap();
    let big = root.subkeys().unwrap().map(Result::unwrap).find(|k| k.name() == "big-data-test").unwrap();
    let mut lens: Vec<usize> = big.values().unwrap().map(|v| v.unwrap().data().unwrap().len()).collect();
    lens.sort();
    assert_eq!(lens, [16_343, 16_344, 16_345]);
}

#[test]
fn inline_data_and_views() {
    let hive = open("hivex/rlenvalue_test_hive");
    let root = hive.root().unwrap();
    assert_eq!(root.name(), "$$$PROTO.HIV");
    let parent = root.subkeys().unwrap().next().unwrap().unwrap();
    assert_eq!(parent.parent_cell(), root.offset());
    assert_eq!(parent.file_offset(), 4096 + u64::from(parent.offset()));
    let v = parent.values().unwrap().next().unwrap().unwrap();
    assert_eq!((v.name().as_ref(), v.is_inline(), v.data().unwrap().as_ref()), ("3Bytes", true, &b"012"[..]));
    assert!(matches!(v.data().unwrap(), std::borrow::Cow::Borrowed(_)));
}
