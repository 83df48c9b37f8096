//! The isolation filter: a boxed caller's view of the registry (private over base), and the
//! host's, operation by operation.

use hivebox_core::access::*;
use hivebox_core::isolate::{IsolationFilter, box_mount, markers};
use hivebox_core::{
    Caller, CreateOptions, Disposition, Handle, KeyImage, ManualClock, MemoryStorage, NtStatus, OpenOptions,
    ProcessInfo, Registry, Token, Value,
};
use std::sync::Arc;

pub const APP: &str = r"\REGISTRY\MACHINE\SOFTWARE\App";

pub struct Boxed {
    pub reg: Registry,
    pub host: Caller,
    pub boxed: Caller,
    pub filter: Arc<IsolationFilter>,
}

pub fn caller(box_name: Option<&str>) -> Caller {
    let process = ProcessInfo {
        pid: 42,
        image: "/usr/bin/app".into(),
        box_name: box_name.map(str::to_owned),
        ..ProcessInfo::default()
    };
    Caller::user(Token { user_sid: "S-1-22-1-1000".into(), system: false }, process)
}

/// A fresh registry with `HKLM\SOFTWARE\App` (values `a`=1, `b`=2; subkeys `One`, `Two`), a box
/// `t` mounted in memory, and the isolation filter registered.
pub fn setup() -> Boxed {
    let reg = Registry::fresh_in_memory(Arc::new(ManualClock::new(1000)));
    let sys = Caller::system();
    let image = KeyImage { name: "t".into(), ..KeyImage::default() };
    reg.load_key(&sys, &box_mount("t"), "memory", image, Box::new(MemoryStorage)).unwrap();
    let filter = IsolationFilter::new();
    filter.register(&reg).unwrap();
    filter.add_box("t");
    let host = caller(None);
    let (h, _) = reg.create_key_path(&host, None, APP, &CreateOptions::default()).unwrap();
    reg.set_value(&host, h, "a", Value::dword(1)).unwrap();
    reg.set_value(&host, h, "b", Value::dword(2)).unwrap();
    for sub in ["One", "Two"] {
        let (k, _) = reg.create_key(&host, Some(h), sub, &CreateOptions::default()).unwrap();
        reg.close_key(&host, k).unwrap();
    }
    reg.close_key(&host, h).unwrap();
    Boxed { reg, host, boxed: caller(Some("t")), filter }
}

impl Boxed {
    pub fn open(&self, c: &Caller, path: &str) -> Result<Handle, NtStatus> {
        self.reg.open_key(c, None, path, &OpenOptions::access(KEY_ALL_ACCESS))
    }

    pub fn values(&self, c: &Caller, h: Handle) -> Vec<(String, Value)> {
        (0..).map_while(|i| self.reg.enumerate_value(c, h, i).ok()).collect()
    }

    pub fn subkeys(&self, c: &Caller, h: Handle) -> Vec<String> {
        (0..).map_while(|i| self.reg.enumerate_key(c, h, i).ok().map(|s| s.name)).collect()
    }

    /// The private hive's key for a native path, read as the system.
    pub fn private(&self, path: &str) -> Option<Handle> {
        let rest = path.strip_prefix(r"\REGISTRY").unwrap();
        self.open(&Caller::system(), &format!("{}{rest}", box_mount("t"))).ok()
    }
}

#[test]
fn a_boxed_write_lands_in_the_box_and_the_host_never_sees_it() {
    let b = setup();
    let h = b.open(&b.boxed, APP).unwrap();
    b.reg.set_value(&b.boxed, h, "a", Value::dword(10)).unwrap();
    b.reg.set_value(&b.boxed, h, "new", Value::sz("x")).unwrap();
    // The box sees its writes over the base.
    assert_eq!(b.reg.query_value(&b.boxed, h, "a").unwrap(), Value::dword(10));
    assert_eq!(b.reg.query_value(&b.boxed, h, "b").unwrap(), Value::dword(2));
    assert_eq!(b.reg.query_value(&b.boxed, h, "new").unwrap(), Value::sz("x"));
    // The host does not.
    let hh = b.open(&b.host, APP).unwrap();
    assert_eq!(b.reg.query_value(&b.host, hh, "a").unwrap(), Value::dword(1));
    assert_eq!(b.reg.query_value(&b.host, hh, "new").unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    // The box's hive holds the key path and the two values (and the base's time), nothing else.
    let p = b.private(APP).expect("the key path was copied up");
    let stored: Vec<String> = b.values(&Caller::system(), p).into_iter().map(|(n, _)| n).collect();
    assert_eq!(stored, [markers::BASE_TIME, "a", "new"]);
    assert!(b.subkeys(&Caller::system(), p).is_empty(), "subkeys are not copied");
}

#[test]
fn enumeration_is_a_sorted_merge_and_counts_agree() {
    let b = setup();
    let h = b.open(&b.boxed, APP).unwrap();
    let (k, d) = b.reg.create_key(&b.boxed, Some(h), "Three", &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    b.reg.close_key(&b.boxed, k).unwrap();
    let (k, d) = b.reg.create_key(&b.boxed, Some(h), "Alpha", &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    b.reg.close_key(&b.boxed, k).unwrap();
    // An existing base key opened through create says so.
    let (k, d) = b.reg.create_key(&b.boxed, Some(h), "One", &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::OpenedExistingKey);
    b.reg.close_key(&b.boxed, k).unwrap();
    b.reg.delete_value(&b.boxed, h, "b").unwrap();
    assert_eq!(b.subkeys(&b.boxed, h), ["Alpha", "One", "Three", "Two"]);
    assert_eq!(b.values(&b.boxed, h), [("a".to_owned(), Value::dword(1))]);
    let info = b.reg.query_key(&b.boxed, h).unwrap();
    assert_eq!((info.subkeys, info.values), (4, 1));
    assert_eq!(info.max_subkey_name_len, 5);
    assert_eq!(info.max_value_name_len, 1);
    // The host: unchanged.
    let hh = b.open(&b.host, APP).unwrap();
    assert_eq!(b.subkeys(&b.host, hh), ["One", "Two"]);
    assert_eq!(b.values(&b.host, hh).len(), 2);
}

#[test]
fn multi_level_creates_stay_in_the_box_and_handles_keep_the_boxs_view() {
    let b = setup();
    let path = format!(r"{APP}\Deep\Er\Est");
    let (h, d) = b.reg.create_key_path(&b.boxed, None, &path, &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    b.reg.set_value(&b.boxed, h, "v", Value::dword(7)).unwrap();
    // The name the box sees is the path it asked for.
    assert_eq!(b.reg.query_key_name(&b.boxed, h).unwrap(), path);
    // Relative opens from a box key stay in the box.
    let deep = b.open(&b.boxed, &format!(r"{APP}\Deep")).unwrap();
    let est = b.reg.open_key(&b.boxed, Some(deep), r"Er\Est", &OpenOptions::access(KEY_READ)).unwrap();
    assert_eq!(b.reg.query_value(&b.boxed, est, "v").unwrap(), Value::dword(7));
    // A base key opened relative to a box key is still the base key, seen through the box.
    let app = b.open(&b.boxed, APP).unwrap();
    let one = b.reg.open_key(&b.boxed, Some(app), "One", &OpenOptions::access(KEY_READ)).unwrap();
    assert!(b.subkeys(&b.boxed, one).is_empty());
    assert_eq!(b.open(&b.host, &path).unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
}

#[test]
fn deleting_a_base_key_hides_it_and_creating_it_again_starts_empty() {
    let b = setup();
    let one = b.open(&b.boxed, &format!(r"{APP}\One")).unwrap();
    let before = b.open(&b.boxed, &format!(r"{APP}\Two")).unwrap();
    b.reg.set_value(&b.boxed, before, "kept", Value::dword(1)).unwrap();
    b.reg.delete_key(&b.boxed, one).unwrap();
    let app = b.open(&b.boxed, APP).unwrap();
    assert_eq!(b.subkeys(&b.boxed, app), ["Two"]);
    assert_eq!(b.open(&b.boxed, &format!(r"{APP}\One")).unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_eq!(b.reg.query_value(&b.boxed, one, "x").unwrap_err(), NtStatus::STATUS_KEY_DELETED);
    // A key with subkeys cannot be deleted, in the box as on the host.
    assert_eq!(b.reg.delete_key(&b.boxed, app).unwrap_err(), NtStatus::STATUS_CANNOT_DELETE);
    // The host still has it; the box's mark keeps the base's time (for commit conflicts).
    assert!(b.open(&b.host, &format!(r"{APP}\One")).is_ok());
    let mark = b.private(&format!(r"{APP}\One")).unwrap();
    let stored: Vec<String> = b.values(&Caller::system(), mark).into_iter().map(|(n, _)| n).collect();
    assert_eq!(stored, [markers::BASE_TIME, markers::DELETED]);
    // Deleting the base value then the key, then creating the key again: empty.
    let two = b.open(&b.boxed, &format!(r"{APP}\Two")).unwrap();
    b.reg.delete_key(&b.boxed, two).unwrap();
    let (two, d) = b.reg.create_key(&b.boxed, Some(app), "Two", &CreateOptions::default()).unwrap();
    assert_eq!(d, Disposition::CreatedNewKey);
    assert!(b.values(&b.boxed, two).is_empty(), "the old values stay deleted");
}

#[test]
fn a_rename_moves_the_merged_key_in_the_box_only() {
    let b = setup();
    let app = b.open(&b.boxed, APP).unwrap();
    b.reg.set_value(&b.boxed, app, "c", Value::dword(3)).unwrap();
    b.reg.rename_key(&b.boxed, app, "Renamed").unwrap();
    let new = b.open(&b.boxed, r"\REGISTRY\MACHINE\SOFTWARE\Renamed").unwrap();
    let mut vals = b.values(&b.boxed, new);
    vals.sort_by(|x, y| x.0.cmp(&y.0));
    assert_eq!(vals, [("a".into(), Value::dword(1)), ("b".into(), Value::dword(2)), ("c".into(), Value::dword(3))]);
    assert_eq!(b.subkeys(&b.boxed, new), ["One", "Two"]);
    assert_eq!(b.open(&b.boxed, APP).unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    // Recorded as a rename in the box's hive.
    let p = b.private(r"\REGISTRY\MACHINE\SOFTWARE\Renamed").unwrap();
    assert_eq!(b.reg.query_value(&Caller::system(), p, markers::RENAMED_FROM).unwrap(), Value::sz(APP));
    // The host: untouched.
    assert!(b.open(&b.host, APP).is_ok());
    assert_eq!(
        b.open(&b.host, r"\REGISTRY\MACHINE\SOFTWARE\Renamed").unwrap_err(),
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND
    );
}

#[test]
fn a_deleted_value_is_a_tombstone_and_program_names_cannot_forge_markers() {
    let b = setup();
    let h = b.open(&b.boxed, APP).unwrap();
    b.reg.delete_value(&b.boxed, h, "a").unwrap();
    assert_eq!(b.reg.query_value(&b.boxed, h, "a").unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_eq!(b.reg.delete_value(&b.boxed, h, "a").unwrap_err(), NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    b.reg.set_value(&b.boxed, h, "a", Value::dword(5)).unwrap();
    assert_eq!(b.reg.query_value(&b.boxed, h, "a").unwrap(), Value::dword(5));
    // A program's value named like a marker is its value, not a marker.
    b.reg.set_value(&b.boxed, h, markers::DELETED, Value::dword(1)).unwrap();
    assert_eq!(b.reg.query_value(&b.boxed, h, markers::DELETED).unwrap(), Value::dword(1));
    assert!(b.open(&b.boxed, APP).is_ok(), "the key is not deleted");
}

#[test]
fn the_box_hive_is_closed_to_user_mode_callers() {
    let b = setup();
    let path = format!(r"{}\MACHINE", box_mount("t"));
    assert_eq!(b.open(&b.host, &path).unwrap_err(), NtStatus::STATUS_ACCESS_DENIED);
    assert_eq!(b.open(&b.boxed, &path).unwrap_err(), NtStatus::STATUS_ACCESS_DENIED);
    let root = b.open(&b.host, r"\REGISTRY").unwrap();
    let rel = b.reg.open_key(&b.host, Some(root), r"A\t", &OpenOptions::access(KEY_READ));
    assert_eq!(rel.unwrap_err(), NtStatus::STATUS_ACCESS_DENIED);
    // A process of a box the filter does not serve gets nothing, never the host's view.
    let stranger = caller(Some("unknown"));
    assert_eq!(b.open(&stranger, APP).unwrap_err(), NtStatus::STATUS_ACCESS_DENIED);
    // Nor does one whose box the filter stopped serving.
    assert!(b.open(&b.boxed, APP).is_ok());
    b.filter.remove_box("t");
    assert!(!b.filter.has_box("t"));
    assert_eq!(b.open(&b.boxed, APP).unwrap_err(), NtStatus::STATUS_ACCESS_DENIED);
}

#[test]
fn links_resolve_as_on_the_host() {
    let b = setup();
    let ccs = r"\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Services\Boxed";
    let (h, _) = b.reg.create_key_path(&b.boxed, None, ccs, &CreateOptions::default()).unwrap();
    b.reg.set_value(&b.boxed, h, "Start", Value::dword(2)).unwrap();
    let direct = b.open(&b.boxed, r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\Boxed").unwrap();
    assert_eq!(b.reg.query_value(&b.boxed, direct, "Start").unwrap(), Value::dword(2));
    assert!(b.private(r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\Boxed").is_some());
}
