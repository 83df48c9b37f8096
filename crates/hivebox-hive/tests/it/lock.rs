//! The home lock: one open store at a time.

use crate::{BASE, clock, get, reopen, set};
use hivebox_core::Value;
use hivebox_hive::{StoreError, open_home};
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn second_open_without_waiting_names_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let first = reopen(dir.path());
    let err = open_home(dir.path(), clock(), false).unwrap_err();
    let StoreError::Locked { path, pid } = &err else { panic!("expected Locked, got {err}") };
    assert_eq!(*pid, Some(std::process::id()));
    assert_eq!(path, first.lock_path());
    assert!(path.ends_with("hives/registry.lock"));
    assert!(err.to_string().contains(&format!("is locked by process {}", std::process::id())), "{err}");
    drop(first);
    reopen(dir.path());
}

#[test]
fn a_clone_of_the_registry_keeps_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let first = reopen(dir.path());
    let registry = first.registry.clone();
    drop(first);
    assert!(
        matches!(open_home(dir.path(), clock(), false), Err(StoreError::Locked { .. })),
        "the clone still writes to the store"
    );
    set(&registry, BASE, "late", Value::dword(1)).unwrap();
    drop(registry);
    assert_eq!(get(&reopen(dir.path()).registry, BASE, "late"), Some(Value::dword(1)));
}

#[test]
fn waiting_open_gets_the_lock_when_it_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let first = reopen(dir.path());
    set(&first.registry, BASE, "from first", Value::dword(1)).unwrap();
    let (tx, rx) = mpsc::channel();
    let home = dir.path().to_owned();
    let waiter = std::thread::spawn(move || {
        let h = open_home(&home, clock(), true).unwrap();
        tx.send(get(&h.registry, BASE, "from first")).unwrap();
    });
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err(), "the waiter must block while the lock is held");
    drop(first);
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)).unwrap(), Some(Value::dword(1)));
    waiter.join().unwrap();
}
