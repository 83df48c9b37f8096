//! `NtReplaceKey` through the store: staged now, installed at the next open, the old contents
//! kept in OLDFILE; and every state a crash can leave while installing, resumed.

use crate::{BASE, get, hives, image_path, reopen, set, wal_path};
use hivebox_core::{Caller, KeyImage, NtStatus, OpenOptions, Value};
use hivebox_hive::regf::Hive;
use hivebox_hive::{Home, StoreError};
use std::path::{Path, PathBuf};

const SOFTWARE: &str = r"\REGISTRY\MACHINE\SOFTWARE";

/// A hive image holding `HiveboxTest` with `Marker` = `marker`.
fn new_image(marker: &str) -> KeyImage {
    let key = KeyImage {
        name: "HiveboxTest".into(),
        values: vec![("Marker".into(), Value::sz(marker))],
        ..KeyImage::default()
    };
    KeyImage { name: "SOFTWARE".into(), subkeys: vec![key], ..KeyImage::default() }
}

/// `NtReplaceKey` on the key at `path`, staged by the store.
fn replace(home: &Home, path: &str, image: &KeyImage, old: &Path) -> Result<(), NtStatus> {
    let me = Caller::system();
    let key = home.registry.open_key(&me, None, path, &OpenOptions::default())?;
    let source = Path::new("new.hiv");
    let r = home.registry.replace_key(&me, key, "new.hiv", &old.display().to_string(), |root| {
        home.stage_replacement(root, image, source, old).map_err(|e| panic!("staging failed: {e}"))
    });
    home.registry.close_key(&me, key)?;
    r
}

/// The value `name` of key `path` (relative to the root) in the hive file `file`.
fn value_in(file: &Path, path: &str, name: &str) -> Option<Value> {
    let image = Hive::open(file).unwrap().to_image().unwrap();
    let mut key = &image;
    for c in path.split('\\').filter(|c| !c.is_empty()) {
        key = key.subkeys.iter().find(|k| k.name.eq_ignore_ascii_case(c))?;
    }
    key.values.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

fn staged(home: &Path) -> (PathBuf, PathBuf) {
    (hives(home).join("SOFTWARE.hiv.replace"), hives(home).join("SOFTWARE.hiv.replace-old"))
}

/// A store with `BASE\Marker` = "live", a replacement with "new" staged, and a change made
/// after the staging; returns OLDFILE.
fn staged_store(dir: &Path) -> PathBuf {
    let old = dir.join("old.hiv");
    let home = reopen(dir);
    set(&home.registry, BASE, "Marker", Value::sz("live")).unwrap();
    let before = home.registry.image();
    replace(&home, BASE, &new_image("new"), &old).unwrap();
    // Nothing changes now.
    assert_eq!(home.registry.image(), before);
    assert_eq!(get(&home.registry, BASE, "Marker"), Some(Value::sz("live")));
    // Changes made until the next open go to the old contents.
    set(&home.registry, BASE, "After", Value::dword(1)).unwrap();
    assert!(staged(dir).0.is_file() && staged(dir).1.is_file());
    old
}

fn assert_installed(dir: &Path, old: &Path) {
    let home = reopen(dir);
    assert!(home.recovery().replaced, "{:?}", home.recovery());
    assert_eq!(get(&home.registry, BASE, "Marker"), Some(Value::sz("new")));
    assert_eq!(get(&home.registry, BASE, "After"), None);
    assert_eq!(value_in(old, r"HiveboxTest", "Marker"), Some(Value::sz("live")));
    assert_eq!(value_in(old, r"HiveboxTest", "After"), Some(Value::dword(1)));
    assert!(!staged(dir).0.exists() && !staged(dir).1.exists());
    // The new hive has a log of its own: changes to it persist.
    set(&home.registry, BASE, "Later", Value::dword(2)).unwrap();
    drop(home);
    let home = reopen(dir);
    assert!(!home.recovery().replaced);
    assert_eq!(get(&home.registry, BASE, "Later"), Some(Value::dword(2)));
    assert_eq!(get(&home.registry, BASE, "Marker"), Some(Value::sz("new")));
}

#[test]
fn staged_now_installed_at_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let old = staged_store(dir.path());
    assert_installed(dir.path(), &old);
}

#[test]
fn a_crash_while_installing_is_resumed() {
    // After the hive's file was moved to OLDFILE, before its log was removed.
    let dir = tempfile::tempdir().unwrap();
    let old = staged_store(dir.path());
    {
        // What the first step of installing does: fold the log in (a checkpoint), then move.
        let home = reopen_without_installing(dir.path());
        crate::flush(&home.registry, SOFTWARE).unwrap();
    }
    std::fs::rename(image_path(dir.path()), &old).unwrap();
    assert!(wal_path(dir.path()).exists());
    assert_installed(dir.path(), &old);

    // After the staged file was renamed into place, before the record of OLDFILE was removed.
    let dir = tempfile::tempdir().unwrap();
    let old = staged_store(dir.path());
    let (staged_file, record) = staged(dir.path());
    let kept = std::fs::read(&record).unwrap();
    assert_installed(dir.path(), &old);
    std::fs::write(&record, kept).unwrap();
    let home = reopen(dir.path());
    assert!(!record.exists(), "a leftover record is removed");
    assert!(!home.recovery().replaced);
    assert!(!staged_file.exists());
}

/// Opens the store with the staged files set aside, so nothing is installed; puts them back
/// when the store is closed (dropped).
fn reopen_without_installing(dir: &Path) -> SetAside {
    let (staged_file, record) = staged(dir);
    for f in [&staged_file, &record] {
        std::fs::rename(f, aside(f)).unwrap();
    }
    SetAside { home: Some(reopen(dir)), files: [staged_file, record] }
}

fn aside(f: &Path) -> PathBuf {
    let mut p = f.as_os_str().to_owned();
    p.push(".aside");
    PathBuf::from(p)
}

struct SetAside {
    home: Option<Home>,
    files: [PathBuf; 2],
}

impl std::ops::Deref for SetAside {
    type Target = Home;
    fn deref(&self) -> &Home {
        self.home.as_ref().unwrap()
    }
}

impl Drop for SetAside {
    fn drop(&mut self) {
        drop(self.home.take());
        for f in &self.files {
            std::fs::rename(aside(f), f).unwrap();
        }
    }
}

#[test]
fn a_staging_that_did_not_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let home = reopen(dir.path());
    set(&home.registry, BASE, "Marker", Value::sz("live")).unwrap();
    drop(home);
    // The record of OLDFILE is written first: alone, it is a leftover.
    let (staged_file, record) = staged(dir.path());
    std::fs::write(&record, dir.path().join("old.hiv").as_os_str().as_encoded_bytes()).unwrap();
    let home = reopen(dir.path());
    assert!(!record.exists() && !staged_file.exists());
    assert!(!home.recovery().replaced);
    assert_eq!(get(&home.registry, BASE, "Marker"), Some(Value::sz("live")));
    assert!(!dir.path().join("old.hiv").exists());
}

#[test]
fn staging_refuses_bad_old_files_and_hives_without_files() {
    let dir = tempfile::tempdir().unwrap();
    let home = reopen(dir.path());
    let image = new_image("new");
    let src = Path::new("new.hiv");
    let exists = dir.path().join("exists.hiv");
    std::fs::write(&exists, b"x").unwrap();
    let refused = |hive: &str, old: &Path| match home.stage_replacement(hive, &image, src, old) {
        Err(StoreError::Replace { path, reason }) => (path, reason),
        other => panic!("{hive} {}: {other:?}", old.display()),
    };
    let (path, reason) = refused(SOFTWARE, &exists);
    assert_eq!((path.as_path(), reason.contains("exists already")), (exists.as_path(), true), "{reason}");
    let (_, reason) = refused(SOFTWARE, &hives(dir.path()).join("elsewhere.hiv"));
    assert!(reason.contains("store's own hives directory"), "{reason}");
    let (_, reason) = refused(r"\REGISTRY\MACHINE\NOPE", &dir.path().join("o.hiv"));
    assert!(reason.contains("no hive file"), "{reason}");
    match home.stage_replacement(SOFTWARE, &image, src, &dir.path().join("missing-dir/o.hiv")) {
        Err(StoreError::Io { path, .. }) => assert!(path.ends_with("missing-dir"), "{}", path.display()),
        other => panic!("{other:?}"),
    }
    // A tree with duplicate names would not open: it is not staged.
    let dup = KeyImage { subkeys: vec![KeyImage::default(), KeyImage::default()], ..new_image("x") };
    match home.stage_replacement(SOFTWARE, &dup, src, &dir.path().join("o2.hiv")) {
        Err(StoreError::Replace { path, reason }) => {
            assert_eq!(path, src);
            assert!(reason.contains("not a valid key tree"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    assert!(!staged(dir.path()).0.exists());
}

#[test]
fn a_loaded_hive_is_replaced_when_it_is_loaded_again() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("offline.hiv");
    let old = dir.path().join("offline-old.hiv");
    let mount = r"\REGISTRY\MACHINE\OFFLINE";
    hivebox_hive::regf::save_hive(&file, &new_image("first"), &Default::default()).unwrap();
    let home = reopen(dir.path());
    home.load_hive(mount, &file).unwrap();
    let mut replacement = new_image("second");
    replacement.name = "OFFLINE".into();
    replace(&home, mount, &replacement, &old).unwrap();
    home.unload_hive(mount).unwrap();
    assert_eq!(value_in(&file, "HiveboxTest", "Marker"), Some(Value::sz("first")), "not before it is loaded");
    home.load_hive(mount, &file).unwrap();
    assert_eq!(get(&home.registry, &format!(r"{mount}\HiveboxTest"), "Marker"), Some(Value::sz("second")));
    assert_eq!(value_in(&old, "HiveboxTest", "Marker"), Some(Value::sz("first")));
}
