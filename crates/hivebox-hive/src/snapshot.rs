//! `registry.snapshot`: a checksummed image of the whole persistent tree, replaced atomically.
//!
//! ```text
//! 0   magic        "HBXSNAP1"
//! 8   version      u32 = 1
//! 12  checksum     u32: CRC-32 of bytes 16.. (generation, length and payload)
//! 16  generation   u64: the log generation that continues this snapshot
//! 24  length       u64: payload bytes
//! 32  payload      codec::encode_image
//! ```

use crate::StoreError;
use crate::codec;
use hivebox_core::KeyImage;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The files of one hive: its image, the temporary file a checkpoint writes first, its log.
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
}

impl HiveFiles {
    /// The files of hive `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Self {
        Self {
            dir: dir.to_owned(),
            image: dir.join(format!("{name}.hiv")),
            tmp: dir.join(format!("{name}.hiv.tmp")),
            wal: dir.join(format!("{name}.hiv.wal")),
        }
    }

    /// The image file's name, for messages.
    pub fn image_name(&self) -> String {
        self.image.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

const MAGIC: &[u8; 8] = b"HBXSNAP1";
const VERSION: u32 = 2;
const OFF_VERSION: usize = 8;
const OFF_CHECKSUM: usize = 12;
const OFF_GENERATION: usize = 16;
const OFF_LENGTH: usize = 24;
/// Header size; the payload starts here.
pub(crate) const HEADER_LEN: usize = 32;

/// A loaded snapshot.
#[derive(Debug)]
pub(crate) struct Snapshot {
    pub generation: u64,
    pub image: KeyImage,
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

fn le_u64(b: &[u8], at: usize) -> u64 {
    let mut a = [0; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

/// Parses a snapshot file's bytes. `path` only names the file in errors.
pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Snapshot, StoreError> {
    let corrupt =
        |offset: usize, reason: String| StoreError::Corrupt { path: path.to_owned(), offset: offset as u64, reason };
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(
            bytes.len(),
            format!("the file is {} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len()),
        ));
    }
    // From here `bytes` holds at least the header, so every header field read is in bounds.
    if &bytes[..OFF_VERSION] != MAGIC {
        return Err(corrupt(0, "bad magic: not a hivebox snapshot".into()));
    }
    let version = le_u32(bytes, OFF_VERSION);
    if version != VERSION {
        return Err(corrupt(OFF_VERSION, format!("unsupported snapshot version {version}")));
    }
    let length = le_u64(bytes, OFF_LENGTH);
    let actual = (bytes.len() - HEADER_LEN) as u64;
    if length != actual {
        return Err(corrupt(OFF_LENGTH, format!("header says {length} payload bytes but the file holds {actual}")));
    }
    let stored = le_u32(bytes, OFF_CHECKSUM);
    let computed = crc32fast::hash(&bytes[OFF_GENERATION..]);
    if stored != computed {
        return Err(corrupt(
            OFF_CHECKSUM,
            format!(
                "checksum {stored:08x} does not match the contents (bytes {OFF_GENERATION}..{}: {computed:08x})",
                bytes.len()
            ),
        ));
    }
    let image = codec::decode_image(&bytes[HEADER_LEN..]).map_err(|e| match e {
        codec::CodecError::Malformed { offset, reason } => corrupt(HEADER_LEN + offset as usize, reason),
        other => corrupt(HEADER_LEN, other.to_string()),
    })?;
    Ok(Snapshot { generation: le_u64(bytes, OFF_GENERATION), image })
}

/// Reads and parses a hive's image; `None` if there is none.
pub(crate) fn load(files: &HiveFiles) -> Result<Option<Snapshot>, StoreError> {
    let path = files.image.clone();
    match fs::read(&path) {
        Ok(bytes) => parse(&path, &bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io { path, source }),
    }
}

/// Serializes a snapshot file.
pub(crate) fn serialize(generation: u64, image: &KeyImage) -> Result<Vec<u8>, codec::CodecError> {
    let payload = codec::encode_image(image)?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(&payload);
    let crc = crc32fast::hash(&out[OFF_GENERATION..]);
    out[OFF_CHECKSUM..OFF_CHECKSUM + 4].copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// A failed snapshot write, and whether the new snapshot may already have replaced the old.
#[derive(Debug)]
pub(crate) struct WriteError {
    pub path: PathBuf,
    pub source: io::Error,
    /// The rename was attempted: the snapshot on disk may be the old or the new one.
    pub maybe_replaced: bool,
}

/// Writes a hive's image durably: `NAME.hiv.tmp`, fsync, rename over `NAME.hiv`, fsync the
/// directory. Before the rename a failure leaves the old image in place.
pub(crate) fn write(files: &HiveFiles, generation: u64, image: &KeyImage) -> Result<(), WriteError> {
    let dir = &files.dir;
    let tmp = files.tmp.clone();
    let bytes = serialize(generation, image).map_err(|e| WriteError {
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
