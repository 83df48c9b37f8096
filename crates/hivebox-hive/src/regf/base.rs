//! The base block: the first 4096 bytes of a hive file (the first 512 of a log file).

use super::error::RegfError;

/// Length of a primary file's base block; cell offsets count from its end.
pub const BASE_BLOCK_LEN: usize = 4096;
/// Length of the part of a base block a transaction log carries (its first sector).
pub const LOG_BASE_BLOCK_LEN: usize = 512;
/// The checksum covers the base block's first 508 bytes and is stored right after them.
pub const CHECKSUM_OFFSET: usize = 508;
/// Hive bins are multiples of this size, and start at multiples of it.
pub const HBIN_ALIGN: usize = 4096;
/// Length of a hive bin header.
pub const HBIN_HEADER_LEN: usize = 32;
/// The null cell reference.
pub const CELL_NIL: u32 = u32::MAX;

/// `regf`, the base block signature.
pub const REGF_SIGNATURE: &[u8; 4] = b"regf";
/// File type of a primary hive file.
pub const FILE_TYPE_PRIMARY: u32 = 0;
/// File type of an old-format (dirty vector) transaction log.
pub const FILE_TYPE_LOG_OLD: u32 = 1;
/// File type of an old-format transaction log, as some older writers label it.
pub const FILE_TYPE_LOG_VERY_OLD: u32 = 2;
/// File type of a new-format (`HvLE` entries) transaction log.
pub const FILE_TYPE_LOG_NEW: u32 = 6;

// Field offsets.
const PRIMARY_SEQ: usize = 4;
const SECONDARY_SEQ: usize = 8;
const LAST_WRITTEN: usize = 12;
const MAJOR: usize = 20;
const MINOR: usize = 24;
const FILE_TYPE: usize = 28;
const FILE_FORMAT: usize = 32;
const ROOT_CELL: usize = 36;
const BINS_SIZE: usize = 40;
const CLUSTERING: usize = 44;
const FILE_NAME: usize = 48;
const FILE_NAME_LEN: usize = 64;
const FLAGS: usize = 144;

/// The fields of a base block, as read (after log replay, for [`super::Hive::base`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BaseBlock {
    /// Incremented when a write to the file begins.
    pub primary_seq: u32,
    /// Incremented when that write ends; equal to `primary_seq` in a clean file.
    pub secondary_seq: u32,
    /// Last written time (FILETIME).
    pub last_written: u64,
    /// Major format version (1).
    pub major: u32,
    /// Minor format version (3 for Windows XP style hives, 5 for Windows 8.1 and later).
    pub minor: u32,
    /// File type: 0 primary, 1 or 2 old-format log, 6 new-format log.
    pub file_type: u32,
    /// File format (1, "direct memory load").
    pub file_format: u32,
    /// Cell offset of the root key's `nk`.
    pub root_cell: u32,
    /// Size of the hive bins data in bytes.
    pub hive_bins_size: u32,
    /// Sector size / 512.
    pub clustering_factor: u32,
    /// The file name stored in the header (UTF-16LE, at most 32 characters, for debugging).
    pub file_name: String,
    /// Hive flags (Windows 10: bit 0 "KTM locked", bit 1 "defragmented").
    pub flags: u32,
    /// The stored checksum.
    pub checksum: u32,
    /// Whether the stored checksum matches the computed one.
    pub checksum_ok: bool,
}

/// XOR of the first 508 bytes taken as little-endian `u32`s, with Windows' two adjustments
/// (0 is stored as 1, `0xFFFFFFFF` as `0xFFFFFFFE`). `header` must be at least 508 bytes
/// long; a shorter one yields the checksum of what is there.
pub fn checksum(header: &[u8]) -> u32 {
    let end = header.len().min(CHECKSUM_OFFSET);
    let sum = header[..end].chunks_exact(4).fold(0u32, |acc, c| acc ^ u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
    match sum {
        0 => 1,
        u32::MAX => u32::MAX - 1,
        s => s,
    }
}

/// A little-endian `u32` at `at`, or 0 past the end (callers check lengths first).
#[inline]
pub(crate) fn u32_at(b: &[u8], at: usize) -> u32 {
    match b.get(at..at + 4) {
        Some(s) => u32::from_le_bytes([s[0], s[1], s[2], s[3]]),
        None => 0,
    }
}

/// A little-endian `u16` at `at`, or 0 past the end (callers check lengths first).
#[inline]
pub(crate) fn u16_at(b: &[u8], at: usize) -> u16 {
    match b.get(at..at + 2) {
        Some(s) => u16::from_le_bytes([s[0], s[1]]),
        None => 0,
    }
}

/// A little-endian `u64` at `at`, or 0 past the end (callers check lengths first).
#[inline]
pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from(u32_at(b, at)) | (u64::from(u32_at(b, at + 4)) << 32)
}

/// Decodes UTF-16LE up to the first NUL (an odd trailing byte is dropped), lossily.
pub(crate) fn utf16_lossy_until_nul(bytes: &[u8]) -> String {
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).take_while(|&u| u != 0);
    char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

impl BaseBlock {
    /// Reads a base block from the first 512 bytes of `bytes` (all a log carries; the rest
    /// of a primary file's 4096 holds nothing the reader needs). Only the signature and the
    /// length are checked here: a bad checksum is recorded in `checksum_ok`, since a dirty
    /// hive's base block may be repaired from its logs.
    pub fn parse(bytes: &[u8]) -> Result<BaseBlock, RegfError> {
        if bytes.len() < LOG_BASE_BLOCK_LEN {
            return Err(RegfError::corrupt(
                0,
                "base block",
                format!("the file is {} bytes long, too short for a base block", bytes.len()),
            ));
        }
        if &bytes[..4] != REGF_SIGNATURE {
            return Err(RegfError::corrupt(
                0,
                "base block",
                format!("signature is {:02x?}, not \"regf\": not a registry hive", &bytes[..4]),
            ));
        }
        let stored = u32_at(bytes, CHECKSUM_OFFSET);
        Ok(BaseBlock {
            primary_seq: u32_at(bytes, PRIMARY_SEQ),
            secondary_seq: u32_at(bytes, SECONDARY_SEQ),
            last_written: u64_at(bytes, LAST_WRITTEN),
            major: u32_at(bytes, MAJOR),
            minor: u32_at(bytes, MINOR),
            file_type: u32_at(bytes, FILE_TYPE),
            file_format: u32_at(bytes, FILE_FORMAT),
            root_cell: u32_at(bytes, ROOT_CELL),
            hive_bins_size: u32_at(bytes, BINS_SIZE),
            clustering_factor: u32_at(bytes, CLUSTERING),
            file_name: utf16_lossy_until_nul(&bytes[FILE_NAME..FILE_NAME + FILE_NAME_LEN]),
            flags: u32_at(bytes, FLAGS),
            checksum: stored,
            checksum_ok: checksum(bytes) == stored,
        })
    }

    /// A hive is dirty when its checksum is wrong or its sequence numbers differ: a write
    /// was interrupted, and the transaction logs hold what is missing.
    pub fn is_dirty(&self) -> bool {
        !self.checksum_ok || self.primary_seq != self.secondary_seq
    }

    /// Checks the fields a primary file must have for hivebox to read it.
    pub(crate) fn check_primary(&self) -> Result<(), RegfError> {
        let bad = |reason: String| Err(RegfError::corrupt(0, "base block", reason));
        if self.major != 1 {
            return bad(format!("major version {} is not supported (expected 1)", self.major));
        }
        if !(2..=6).contains(&self.minor) {
            return bad(format!("minor version {} is not supported (expected 2 to 6)", self.minor));
        }
        if self.file_type != FILE_TYPE_PRIMARY {
            return bad(format!("file type {} is not a primary hive file (0)", self.file_type));
        }
        if self.file_format != 1 {
            return bad(format!("file format {} is not supported (expected 1)", self.file_format));
        }
        let size = self.hive_bins_size as usize;
        if size == 0 || !size.is_multiple_of(HBIN_ALIGN) {
            return bad(format!("hive bins data size {size:#x} is not a positive multiple of 4096"));
        }
        Ok(())
    }
}

/// Writes the fields replay changes into a base block image and recomputes its checksum.
pub(crate) fn patch(block: &mut [u8], seq: u32, bins_size: u32, flags: Option<u32>) {
    fn put(block: &mut [u8], at: usize, v: u32) {
        if let Some(s) = block.get_mut(at..at + 4) {
            s.copy_from_slice(&v.to_le_bytes());
        }
    }
    put(block, PRIMARY_SEQ, seq);
    put(block, SECONDARY_SEQ, seq);
    put(block, FILE_TYPE, FILE_TYPE_PRIMARY);
    put(block, BINS_SIZE, bins_size);
    if let Some(flags) = flags {
        put(block, FLAGS, flags);
    }
    let sum = checksum(block);
    put(block, CHECKSUM_OFFSET, sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Vec<u8> {
        let mut b = vec![0u8; BASE_BLOCK_LEN];
        b[..4].copy_from_slice(b"regf");
        b[PRIMARY_SEQ..PRIMARY_SEQ + 4].copy_from_slice(&7u32.to_le_bytes());
        b[SECONDARY_SEQ..SECONDARY_SEQ + 4].copy_from_slice(&7u32.to_le_bytes());
        b[MAJOR..MAJOR + 4].copy_from_slice(&1u32.to_le_bytes());
        b[MINOR..MINOR + 4].copy_from_slice(&5u32.to_le_bytes());
        b[FILE_FORMAT..FILE_FORMAT + 4].copy_from_slice(&1u32.to_le_bytes());
        b[BINS_SIZE..BINS_SIZE + 4].copy_from_slice(&4096u32.to_le_bytes());
        for (i, u) in "SYSTEM".encode_utf16().enumerate() {
            b[FILE_NAME + 2 * i..FILE_NAME + 2 * i + 2].copy_from_slice(&u.to_le_bytes());
        }
        let sum = checksum(&b);
        b[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 4].copy_from_slice(&sum.to_le_bytes());
        b
    }

    #[test]
    fn parses_and_checks() {
        let b = BaseBlock::parse(&block()).unwrap();
        assert!(b.checksum_ok && !b.is_dirty());
        assert_eq!((b.major, b.minor, b.hive_bins_size, b.file_name.as_str()), (1, 5, 4096, "SYSTEM"));
        b.check_primary().unwrap();
    }

    #[test]
    fn dirty_when_sequence_numbers_differ_or_checksum_is_wrong() {
        let mut raw = block();
        raw[SECONDARY_SEQ] = 6;
        assert!(BaseBlock::parse(&raw).unwrap().is_dirty());
        patch(&mut raw, 9, 8192, None);
        let b = BaseBlock::parse(&raw).unwrap();
        assert!(!b.is_dirty() && b.primary_seq == 9 && b.hive_bins_size == 8192);
        raw[100] ^= 1;
        assert!(!BaseBlock::parse(&raw).unwrap().checksum_ok);
    }

    #[test]
    fn checksum_adjusts_zero_and_all_ones() {
        assert_eq!(checksum(&[0u8; 508]), 1);
        let mut ones = [0u8; 508];
        ones[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(checksum(&ones), u32::MAX - 1);
    }

    #[test]
    fn rejects_short_and_foreign_files() {
        let e = BaseBlock::parse(&[0u8; 100]).unwrap_err().to_string();
        assert!(e.starts_with("base block at file offset 0x0:"), "{e}");
        let e = BaseBlock::parse(&[b'x'; 4096]).unwrap_err().to_string();
        assert!(e.contains("not a registry hive"), "{e}");
    }
}
