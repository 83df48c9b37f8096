//! The written files checked: read back by hivex, regipy and the structural checker; the
//! base block the options fill in; atomic saves; determinism; and the images the writer
//! refuses.

use super::images::{self, key};
use super::{compare, expected, opts, python_with, run_script, write_checked};
use hivebox_core::{KeyImage, Value};
use hivebox_hive::regf::{Hive, WriteError, WriteOptions, save_hive, write_hive};
use std::process::Command;
use std::sync::Arc;

const HIVEX: &str = "apt-get install -y libhivex-bin python3-hivex";
const REGIPY: &str = "pip install regipy";

/// Checks `image` written as a hive with all three readers.
fn cross_check(file: &str, image: &KeyImage) {
    let dir = tempfile::tempdir().unwrap();
    let (path, stats) = write_checked(dir.path(), file, image);
    println!("{file}: {stats:?}, free {:.2}%", stats.free_percent());
    let py = python_with("hivex", HIVEX);
    let got = run_script(&py, "hivex_dump.py", &path);
    compare("hivex", &got, &expected(image, &image.name, false, false));
    let py = python_with("regipy", REGIPY);
    let got = run_script(&py, "regipy_dump.py", &path);
    compare("regipy", &got, &expected(image, &image.name, true, true));
}

#[test]
fn every_feature_reads_back_in_hivex_and_regipy() {
    cross_check("everything.hiv", &images::everything());
}

#[test]
fn small_hives_read_back() {
    cross_check("root_only.hiv", &key("Lonely"));
    cross_check("types.hiv", &images::all_types());
    cross_check("unicode.hiv", &images::unicode());
    cross_check("security.hiv", &images::security());
    let mut unicode_root = images::unicode();
    unicode_root.name = "Ünï 日本".into();
    cross_check("unicode_root.hiv", &unicode_root);
}

#[test]
fn subkey_counts_around_the_leaf_split() {
    for n in [499, 500, 501, 1000, 1001, 2500] {
        cross_check(&format!("wide{n}.hiv"), &images::wide(n));
    }
}

#[test]
fn hivexsh_finds_keys_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = write_checked(dir.path(), "everything.hiv", &images::everything());
    python_with("hivex", HIVEX); // the same packages provide hivexsh
    let script = "cd \\Wide\\KEY03000\nlsval\ncd \\Unicode\\Ärger\nlsval\ncd \\\nlsval\n";
    let out = Command::new("hivexsh")
        .arg(&path)
        .env("LC_ALL", "C.UTF-8")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(script.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap_or_else(|e| panic!("running hivexsh (install with `{HIVEX}`): {e}"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "hivexsh failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("\"n\"=dword:00000bb8"), "hivexsh output:\n{text}");
    assert!(text.contains("\"Ärger\"=") || text.contains("\"Ärger\"=hex"), "hivexsh output:\n{text}");
    assert!(text.contains("\"RootValue\"=\"root\""), "hivexsh output:\n{text}");
}

#[test]
fn resaved_corpus_hives_read_back_in_hivex_and_regipy() {
    for rel in [
        "dfwinreg-20190329-sdist/SYSTEM",
        "dfwinreg-20190329-sdist/NTUSER.DAT",
        "regipy/UsrClass.dat",
        "nt-hive/testhive",
        "hivex/special",
        "python-registry/UNICODE_TESTS",
        "yarp/BigDataHive",
        "yarp/ManySubkeysHive",
    ] {
        resave_and_cross_check(rel);
    }
}

/// The largest hive of the corpus (117,488 keys), separately: it takes the tools a minute.
#[test]
fn resaved_software_reads_back_in_hivex_and_regipy() {
    resave_and_cross_check("dfwinreg-20190329-sdist/SOFTWARE");
}

fn resave_and_cross_check(rel: &str) {
    let image = Hive::from_bytes(crate::corpus::read(rel).to_vec()).and_then(|h| h.to_image());
    let image = image.unwrap_or_else(|e| panic!("{rel}: {e}"));
    cross_check(&rel.replace('/', "_"), &image);
}

#[test]
fn the_base_block_says_what_the_options_say() {
    let mut o = opts();
    o.root_name = Some("CMI-CreateHive{3D971F19-49AB-4000-8D39-A6D9C673D809}".into());
    let bytes = write_hive(&images::unicode(), &o).unwrap();
    let hive = Hive::from_bytes(bytes.clone()).unwrap();
    let b = hive.base();
    assert_eq!((b.primary_seq, b.secondary_seq, b.last_written), (7, 7, o.timestamp));
    assert_eq!((b.major, b.minor, b.file_type, b.file_format, b.clustering_factor), (1, 5, 0, 1, 1));
    assert!(b.checksum_ok);
    assert_eq!(b.hive_bins_size as usize + 4096, bytes.len());
    assert_eq!(b.root_cell, 32, "the root nk is the first cell (regipy relies on it)");
    // The last 31 units of the name are kept, NUL-terminated, as Windows keeps them.
    let full: Vec<u16> = o.file_name.encode_utf16().collect();
    assert_eq!(b.file_name, String::from_utf16(&full[full.len() - 31..]).unwrap());
    assert_eq!(bytes[48 + 62..48 + 64], [0, 0]);
    let root = hive.root().unwrap();
    assert_eq!(root.name(), o.root_name.as_deref().unwrap());
    assert_eq!(root.flags() & 0x2C, 0x2C, "KEY_HIVE_ENTRY | KEY_NO_DELETE | KEY_COMP_NAME");
    // The first bin carries the timestamp.
    assert_eq!(&bytes[4096..4100], b"hbin");
    assert_eq!(u64::from_le_bytes(bytes[4096 + 20..4096 + 28].try_into().unwrap()), o.timestamp);
}

#[test]
fn writing_is_deterministic() {
    let image = images::everything();
    assert_eq!(write_hive(&image, &opts()).unwrap(), write_hive(&image.clone(), &opts()).unwrap());
    // Subkeys in any order give the same hive.
    let mut shuffled = image.clone();
    shuffled.subkeys.reverse();
    shuffled.subkeys[3].subkeys.reverse();
    assert_eq!(write_hive(&image, &opts()).unwrap(), write_hive(&shuffled, &opts()).unwrap());
}

#[test]
fn save_replaces_the_file_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("SOFTWARE.hiv");
    std::fs::write(&path, b"old contents").unwrap();
    let image = images::all_types();
    save_hive(&path, &image, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), write_hive(&image, &WriteOptions::default()).unwrap());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["SOFTWARE.hiv"], "no temporary file is left behind");

    let missing = dir.path().join("no/such/dir/X.hiv");
    let err = save_hive(&missing, &image, &WriteOptions::default()).unwrap_err();
    assert!(matches!(err, WriteError::Io { .. }), "{err}");
    assert!(err.to_string().contains("X.hiv.tmp"), "{err}");

    // An image the writer refuses leaves the old file alone.
    let mut bad = key("Bad");
    bad.subkeys = vec![key("Twin"), key("TWIN")];
    assert!(save_hive(&path, &bad, &WriteOptions::default()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), write_hive(&image, &WriteOptions::default()).unwrap());
}

fn refused(image: &KeyImage) -> WriteError {
    write_hive(image, &opts()).expect_err("the image must be refused")
}

#[test]
fn images_the_format_cannot_hold_are_refused() {
    let mut root = key("Root");
    let mut parent = key("Parent");
    parent.subkeys = vec![key("Ärger"), key("b"), key("äRGER")];
    root.subkeys.push(parent);
    let e = refused(&root);
    assert!(matches!(&e, WriteError::DuplicateSubkey { key, .. } if key == "Root\\Parent"), "{e}");

    let mut root = key("Root");
    root.subkeys.push(key(&"k".repeat(256)));
    assert!(matches!(refused(&root), WriteError::KeyName { units: 256, .. }));
    root.subkeys = vec![key(&"😀".repeat(128))]; // 256 UTF-16 units
    assert!(matches!(refused(&root), WriteError::KeyName { units: 256, .. }));
    root.subkeys = vec![key(&"k".repeat(255))];
    assert!(write_hive(&root, &opts()).is_ok());
    assert!(matches!(refused(&key("")), WriteError::KeyName { units: 0, .. }));

    let mut root = key("Root");
    root.values.push(("v".repeat(16_384), Value::dword(1)));
    assert!(matches!(refused(&root), WriteError::ValueName { units: 16_384, .. }));

    let mut root = key("Root");
    root.class = Some("c".repeat(32_768));
    assert!(matches!(refused(&root), WriteError::Class { bytes: 65_536, .. }));

    let mut root = key("Root");
    let mut sub = key("Sub");
    sub.security = Some(Arc::from(&b"not a security descriptor"[..]));
    root.subkeys.push(sub);
    let e = refused(&root);
    assert!(matches!(&e, WriteError::Security { key, .. } if key == "Root\\Sub"), "{e}");
}
