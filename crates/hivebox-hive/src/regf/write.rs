//! The regf writer: a [`KeyImage`] to a complete, compact, clean hive file.
//!
//! [`write_hive`] lays the image out in three passes: a walk that lists every cell with its
//! size (`plan`), then a placement of the cells in hive bins and the encoding of each cell at
//! its offset into one buffer of the final size (`emit`). Nothing is copied twice and
//! nothing is quadratic: a key with 10,000 subkeys costs one sort of its subkeys. The result
//! is what Windows itself would accept: a base block with equal sequence numbers and a good
//! checksum, 4 KiB-multiple bins, allocated cells only (free space is the tail of the last
//! bin), `lh` indexes sorted and hashed as the Configuration Manager expects (split under an
//! `ri` past 500 subkeys), big data in `db` segments, and one shared `sk` per distinct
//! security descriptor. The layout is described in `docs/regf.md` ("Writing").

mod emit;
mod encode;
mod plan;

pub use encode::default_security_descriptor;

use hivebox_core::KeyImage;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How [`write_hive`] fills in what the image does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteOptions {
    /// Name of the root `nk`; the image's own name when `None`.
    pub root_name: Option<String>,
    /// Both sequence numbers of the base block (equal: the hive is clean).
    pub sequence: u32,
    /// Last-written time of the base block (FILETIME).
    pub timestamp: u64,
    /// The base block's file-name field (e.g. `\??\C:\hivebox\SOFTWARE.hiv`); only its last
    /// 31 UTF-16 units are kept, as Windows keeps them.
    pub file_name: String,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions { root_name: None, sequence: 1, timestamp: 0, file_name: String::new() }
    }
}

/// An image that cannot be written as a hive, or a hive file that could not be saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A key name is empty or longer than 255 UTF-16 units.
    #[error("key {key:?}: a key name must be 1 to 255 UTF-16 units long, not {units}")]
    KeyName {
        /// Path of the key below the hive root.
        key: String,
        /// Its name's length.
        units: usize,
    },
    /// A value name is longer than 16,383 UTF-16 units.
    #[error("key {key:?}: a value name is {units} UTF-16 units long; the limit is 16383")]
    ValueName {
        /// Path of the key.
        key: String,
        /// The name's length.
        units: usize,
    },
    /// A class name does not fit the `nk`'s 16-bit length.
    #[error("key {key:?}: the class name is {bytes} bytes long; the limit is 65535")]
    Class {
        /// Path of the key.
        key: String,
        /// Its length in bytes (UTF-16).
        bytes: usize,
    },
    /// Value data beyond what big-data records can hold (65,535 segments, under 2 GiB).
    #[error("key {key:?}: value {name:?} has {len} bytes of data, more than a hive can hold")]
    DataTooLarge {
        /// Path of the key.
        key: String,
        /// The value's name.
        name: String,
        /// The data length.
        len: usize,
    },
    /// Two subkeys whose names differ only in case.
    #[error("key {key:?} has two subkeys named {name:?} (names compare case-insensitively)")]
    DuplicateSubkey {
        /// Path of the key.
        key: String,
        /// One of the names.
        name: String,
    },
    /// More subkeys than an `ri` of `lh` leaves can index.
    #[error("key {key:?} has {count} subkeys, more than a hive can index")]
    TooManySubkeys {
        /// Path of the key.
        key: String,
        /// The number of subkeys.
        count: usize,
    },
    /// A security descriptor that is not a well-formed self-relative descriptor.
    #[error("key {key:?}: the security descriptor is not valid: {reason}")]
    Security {
        /// Path of the key.
        key: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The hive would exceed the format's 2 GiB of hive bins.
    #[error("the hive would be at least {size} bytes long, beyond the format's limit")]
    TooLarge {
        /// The size reached.
        size: u64,
    },
    /// Saving the file failed.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
}

/// Figures about a written hive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct WriteStats {
    /// Bytes in the file (base block included).
    pub file_size: u64,
    /// Hive bins.
    pub bins: usize,
    /// Allocated cells.
    pub cells: usize,
    /// Keys written.
    pub keys: usize,
    /// Values written.
    pub values: usize,
    /// Distinct security descriptors (`sk` records).
    pub security_descriptors: usize,
    /// Bytes of the free cell at the end of the last bin (the only free space).
    pub free_bytes: u64,
    /// Bytes that cells closing a bin were given beyond their records.
    pub slack_bytes: u64,
}

impl WriteStats {
    /// Free space as a percentage of the file.
    pub fn free_percent(&self) -> f64 {
        if self.file_size == 0 { 0.0 } else { 100.0 * self.free_bytes as f64 / self.file_size as f64 }
    }
}

/// Writes `image` as a hive file's bytes.
pub fn write_hive(image: &KeyImage, opts: &WriteOptions) -> Result<Vec<u8>, WriteError> {
    write_hive_with_stats(image, opts).map(|(bytes, _)| bytes)
}

/// Writes `image` as a hive file's bytes, with figures about the result.
pub fn write_hive_with_stats(image: &KeyImage, opts: &WriteOptions) -> Result<(Vec<u8>, WriteStats), WriteError> {
    let root_name = opts.root_name.as_deref().unwrap_or(&image.name);
    let default_sd = default_security_descriptor();
    let mut plan = plan::build(image, root_name, &default_sd)?;
    let layout = emit::assign(&mut plan.cells)?;
    let base = emit::PAGE as usize;
    let mut out = vec![0u8; base + layout.end as usize];
    let (block, bins) = out.split_at_mut(base);
    emit::cells(bins, &plan);
    emit::bins(bins, &layout, opts.timestamp);
    // The root is the first key planned, and its nk the first cell.
    let root = plan.cells[plan.keys[0].nk as usize].offset;
    emit::base_block(block, opts, root, layout.end);
    let stats = WriteStats {
        file_size: out.len() as u64,
        bins: layout.bins.len(),
        cells: plan.cells.len(),
        keys: plan.keys.len(),
        values: plan.values.len(),
        security_descriptors: plan.sks.len(),
        free_bytes: layout.free as u64,
        slack_bytes: layout.slack,
    };
    Ok((out, stats))
}

/// Writes `image` as a hive file at `path`, atomically: the bytes go to `PATH.tmp`, which is
/// fsync'd and renamed over `path`, and then the directory is fsync'd.
pub fn save_hive(path: &Path, image: &KeyImage, opts: &WriteOptions) -> Result<(), WriteError> {
    let bytes = write_hive(image, opts)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| WriteError::Io { path, source }
    };
    let written = File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(&tmp)(e));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}
