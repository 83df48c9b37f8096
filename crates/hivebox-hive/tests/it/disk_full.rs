//! A full device: the change is refused with `STATUS_DISK_FULL`, and nothing is damaged.
//!
//! Needs root to mount a 1 MiB tmpfs (CI runs as root). Without it the test fails loudly
//! rather than skipping: an untested disk-full path is a silent gap.

use crate::{BASE, flush, get, reopen, set, wal_path};
use hivebox_core::{NtStatus, Value};
use std::process::Command;

/// A 1 MiB tmpfs mounted on a temporary directory, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("cannot run mount(8)");
        assert!(
            out.status.success(),
            "the disk-full test needs root to mount a 1 MiB tmpfs on {}: {}",
            dir.path().display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy, so that a failing test with files still open cannot leave the mount behind.
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[test]
fn full_device_refuses_the_change_and_damages_nothing() {
    let fs = Tmpfs::mount();
    let home = fs.0.path().join("home");
    let chunk = Value::binary(&[0xC3; 48 * 1024]);
    let mut stored = Vec::new();
    {
        let h = reopen(&home);
        let mut refused = None;
        for i in 0..100 {
            let name = format!("chunk{i}");
            match set(&h.registry, BASE, &name, chunk.clone()) {
                Ok(()) => stored.push(name),
                Err(status) => {
                    refused = Some((name, status));
                    break;
                }
            }
        }
        let (name, status) = refused.expect("1 MiB must fill up within 100 chunks of 48 KiB");
        assert_eq!(status, NtStatus::STATUS_DISK_FULL);
        assert!(stored.len() >= 5, "only {} chunks fit", stored.len());
        assert_eq!(get(&h.registry, BASE, &name), None, "a refused change is not applied");
        // Smaller changes are refused or stored, never half-stored; a checkpoint cannot fit.
        assert_eq!(flush(&h.registry, BASE), Err(NtStatus::STATUS_DISK_FULL));
        // The registry still works for whatever fits.
        match set(&h.registry, BASE, "tiny", Value::dword(7)) {
            Ok(()) => stored.push("tiny".into()),
            Err(status) => assert_eq!(status, NtStatus::STATUS_DISK_FULL),
        }
    }
    let wal_len = std::fs::metadata(wal_path(&home)).unwrap().len();
    let h = reopen(&home);
    assert_eq!(h.recovery().torn_tail, None, "a refused append leaves no partial record");
    assert_eq!(std::fs::metadata(wal_path(&home)).unwrap().len(), wal_len);
    for name in &stored {
        assert!(get(&h.registry, BASE, name).is_some(), "acknowledged value {name} is missing");
    }
    assert_eq!(get(&h.registry, BASE, "chunk0"), Some(chunk));
    drop(h);
    drop(fs);
}
