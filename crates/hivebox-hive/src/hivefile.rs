//! A hive's image file, `NAME.hiv`: a Windows `regf` hive (clean: both sequence numbers equal),
//! replaced atomically at every checkpoint. Its sequence number is the store's generation: the
//! log `NAME.hiv.wal` that continues it carries the same number in its header.

use crate::StoreError;
use crate::regf;
use hivebox_core::KeyImage;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The files of one hive: its image, the temporary file a checkpoint writes first, its log,
/// and the two files of a staged replacement (`NtReplaceKey`, see `replace.rs`).
#[derive(Debug, Clone)]
pub(crate) struct HiveFiles {
    /// The directory holding them.
    pub dir: PathBuf,
    /// `NAME.hiv`: the hive's image.
    pub image: PathBuf,
    /// `NAME.hiv.tmp`: a checkpoint's new image before it is renamed over `image`.
    pub tmp: PathBuf,
    /// `NAME.hiv.wal`: the log of changes since the image.
    pub wal: PathBuf,
    /// `NAME.hiv.replace`: a staged hive that replaces `image` at the next open.
    pub replace: PathBuf,
    /// `NAME.hiv.replace-old`: where the current image goes then (an absolute path).
    pub replace_old: PathBuf,
}

impl HiveFiles {
    /// The files of hive `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self::external(&dir.join(format!("{name}.hiv")))
    }

    /// The files of a hive loaded from an external file: `FILE`, `FILE.tmp`, `FILE.wal`.
    pub fn external(file: &Path) -> Self {
        let with = |suffix: &str| {
            let mut p = file.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        let dir = match file.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        };
        Self {
            dir,
            image: file.to_owned(),
            tmp: with(".tmp"),
            wal: with(".wal"),
            replace: with(".replace"),
            replace_old: with(".replace-old"),
        }
    }

    /// The image file's name, for messages.
    pub fn image_name(&self) -> String {
        self.image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// Where hivebox keeps its own checksum of the hive bins: in the base block's reserved area
/// (offsets 0xB0..0x1FC, which Windows and hivex ignore), as a 4-byte marker and a CRC-32.
/// regf checksums only the base block; this lets a damaged bin fail to open instead of
/// loading silently wrong data.
const OFF_BINS_MARKER: usize = 0xB0;
const OFF_BINS_CRC: usize = 0xB4;
const BINS_MARKER: &[u8; 4] = b"hbx1";

/// A loaded image.
#[derive(Debug)]
pub(crate) struct HiveImage {
    pub generation: u64,
    pub image: KeyImage,
}

/// Parses an image file's bytes. `path` names the file in errors, and is read again (with the
/// transaction logs beside it) only for a dirty hive without hivebox's marker.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<HiveImage, StoreError> {
    let corrupt = |offset: u64, reason: String| StoreError::Corrupt { path: path.to_owned(), offset, reason };
    let from_regf = |e: regf::RegfError| match e {
        regf::RegfError::Corrupt { offset, record, reason } => corrupt(offset, format!("{record}: {reason}")),
        other => corrupt(0, other.to_string()),
    };
    let marked = bytes.len() >= regf::BASE_BLOCK_LEN && &bytes[OFF_BINS_MARKER..OFF_BINS_CRC] == BINS_MARKER;
    if marked {
        let stored = u32::from_le_bytes([
            bytes[OFF_BINS_CRC],
            bytes[OFF_BINS_CRC + 1],
            bytes[OFF_BINS_CRC + 2],
            bytes[OFF_BINS_CRC + 3],
        ]);
        let computed = crc32fast::hash(&bytes[regf::BASE_BLOCK_LEN..]);
        if stored != computed {
            return Err(corrupt(
                OFF_BINS_CRC as u64,
                format!("checksum {stored:08x} of the hive bins does not match their contents ({computed:08x})"),
            ));
        }
    }
    // A hive hivebox did not write (a Windows hive) may be dirty: Windows writes its hives in
    // place and keeps what is missing in `.LOG1`/`.LOG2`, which `Hive::open` replays. hivebox
    // writes its own hives whole, so one of those that is dirty was changed by someone else.
    let windows_dirty = !marked && regf::BaseBlock::parse(bytes).is_ok_and(|b| b.is_dirty());
    if windows_dirty {
        let hive = regf::Hive::open(path).map_err(from_regf)?;
        let base = hive.base();
        let generation = u64::from(base.primary_seq.max(base.secondary_seq));
        let image = hive.to_image().map_err(from_regf)?;
        return Ok(HiveImage { generation, image });
    }
    let hive = regf::Hive::from_bytes(bytes.to_vec()).map_err(from_regf)?;
    let base = hive.base();
    if !base.checksum_ok {
        return Err(corrupt(508, format!("base block checksum {:#010x} does not match its contents", base.checksum)));
    }
    if base.primary_seq != base.secondary_seq {
        return Err(corrupt(
            4,
            format!(
                "the hive is dirty (sequence numbers {} and {}): hivebox writes its hives whole, so \
                 another program changed it in place",
                base.primary_seq, base.secondary_seq
            ),
        ));
    }
    let image = hive.to_image().map_err(from_regf)?;
    Ok(HiveImage { generation: u64::from(base.primary_seq), image })
}

/// Reads and parses a hive's image; `None` if there is none.
pub(crate) fn load(files: &HiveFiles) -> Result<Option<HiveImage>, StoreError> {
    let path = files.image.clone();
    match fs::read(&path) {
        Ok(bytes) => parse(&path, &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Serializes an image file: a clean regf hive whose sequence numbers are `generation`.
pub(crate) fn serialize(generation: u64, image: &KeyImage, file_name: &str) -> Result<Vec<u8>, String> {
    let sequence =
        u32::try_from(generation).map_err(|_| format!("generation {generation} is beyond a regf sequence number"))?;
    let opts =
        regf::WriteOptions { root_name: None, sequence, timestamp: image.last_write, file_name: file_name.to_owned() };
    let mut bytes = regf::write_hive(image, &opts).map_err(|e| e.to_string())?;
    let crc = crc32fast::hash(&bytes[regf::BASE_BLOCK_LEN..]);
    bytes[OFF_BINS_MARKER..OFF_BINS_CRC].copy_from_slice(BINS_MARKER);
    bytes[OFF_BINS_CRC..OFF_BINS_CRC + 4].copy_from_slice(&crc.to_le_bytes());
    let sum = regf::checksum(&bytes[..508]);
    bytes[508..512].copy_from_slice(&sum.to_le_bytes());
    Ok(bytes)
}

/// A failed image write, and whether the new image may already have replaced the old.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
    /// The rename was attempted: the image on disk may be the old or the new one.
    pub maybe_replaced: bool,
}

/// Writes a hive's image durably: `NAME.hiv.tmp`, fsync, rename over `NAME.hiv`, fsync the
/// directory. Before the rename a failure leaves the old image in place.
pub(crate) fn write(files: &HiveFiles, generation: u64, image: &KeyImage) -> Result<(), WriteError> {
    let dir = &files.dir;
    let tmp = files.tmp.clone();
    let bytes = serialize(generation, image, &files.image_name()).map_err(|e| WriteError {
        path: tmp.clone(),
        source: io::Error::new(io::ErrorKind::InvalidInput, e),
        maybe_replaced: false,
    })?;
    let staged = File::create(&tmp).and_then(|mut f| {
        f.write_all(&bytes)?;
        f.sync_all()
    });
    if let Err(source) = staged {
        // Best effort: a stale temporary file is removed again at the next open anyway.
        let _ = fs::remove_file(&tmp);
        return Err(WriteError { path: tmp, source, maybe_replaced: false });
    }
    let path = files.image.clone();
    if let Err(source) = fs::rename(&tmp, &path) {
        let _ = fs::remove_file(&tmp);
        return Err(WriteError { path, source, maybe_replaced: true });
    }
    sync_dir(dir).map_err(|source| WriteError { path: dir.to_owned(), source, maybe_replaced: true })
}

/// Makes a directory's entries (a rename, a new file) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
