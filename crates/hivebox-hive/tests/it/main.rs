//! Integration tests of the durable store: one binary, one module per concern.

mod boxes;
mod codec;
mod corpus;
mod crash;
mod disk_full;
mod lock;
mod model;
mod mount;
mod recovery;
mod regf_read;
mod regf_write;
mod replace;

use hivebox_core::{Caller, CreateOptions, KeyImage, ManualClock, NtStatus, OpenOptions, Registry, Value};
use hivebox_hive::{Home, StoreError, open_home};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the tests' keys live.
pub const BASE: &str = r"\REGISTRY\MACHINE\SOFTWARE\HiveboxTest";

/// Opens (or creates) the store under `home` with a manual clock.
///
/// It waits for the lock: a `Home` dropped just before may still hold it for a moment, when
/// another test spawned a process in between (a child shares the lock file's descriptor from
/// its fork until its exec closes it).
pub fn open(home: &Path) -> Result<Home, StoreError> {
    open_home(home, clock(), true)
}

/// The clock the tests open stores with.
pub fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(130_000_000_000_000_000))
}

/// Opens a store that must open.
pub fn reopen(home: &Path) -> Home {
    match open(home) {
        Ok(h) => h,
        Err(e) => panic!("reopening {} failed: {e}", home.display()),
    }
}

/// The store's files.
pub fn hives(home: &Path) -> PathBuf {
    home.join(hivebox_hive::HIVES_DIR)
}

/// The log of the SOFTWARE hive, where [`BASE`] lives.
pub fn wal_path(home: &Path) -> PathBuf {
    hives(home).join("SOFTWARE.hiv.wal")
}

/// The image of the SOFTWARE hive, where [`BASE`] lives.
pub fn image_path(home: &Path) -> PathBuf {
    hives(home).join("SOFTWARE.hiv")
}

/// Sets `name` on the key at `path` (created if missing).
pub fn set(reg: &Registry, path: &str, name: &str, value: Value) -> Result<(), NtStatus> {
    let me = Caller::system();
    let (key, _) = reg.create_key_path(&me, None, path, &CreateOptions::default())?;
    let r = reg.set_value(&me, key, name, value);
    reg.close_key(&me, key)?;
    r
}

/// The value `name` of the key at `path`, if both exist.
pub fn get(reg: &Registry, path: &str, name: &str) -> Option<Value> {
    let me = Caller::system();
    let key = reg.open_key(&me, None, path, &OpenOptions::default()).ok()?;
    let v = reg.query_value(&me, key, name).ok();
    let _ = reg.close_key(&me, key);
    v
}

/// `NtFlushKey` on the key at `path` (a checkpoint).
pub fn flush(reg: &Registry, path: &str) -> Result<(), NtStatus> {
    let me = Caller::system();
    let key = reg.open_key(&me, None, path, &OpenOptions::default())?;
    let r = reg.flush_key(&me, key);
    reg.close_key(&me, key)?;
    r
}

/// Frames a payload as a log record, as the store writes it.
pub fn record(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The byte offsets at which each record of a log starts (after the 24-byte header).
pub fn record_offsets(wal: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut pos = 24;
    while pos + 8 <= wal.len() {
        out.push(pos);
        let len = u32::from_le_bytes(wal[pos..pos + 4].try_into().unwrap()) as usize;
        pos += 8 + len;
    }
    out
}

/// The image with the master keys' last write times cleared, for comparing registries across
/// a reopen: `\REGISTRY`, `MACHINE` and `USER` live only in memory and are rebuilt, with the
/// opening moment as their time, every time the registry is opened.
pub fn comparable(mut image: KeyImage) -> KeyImage {
    image.last_write = 0;
    for master in &mut image.subkeys {
        master.last_write = 0;
    }
    image
}
