//! What can go wrong reading a hive.

use std::path::PathBuf;

/// A hive (or one of its records) could not be read.
///
/// Structural errors carry the *file* offset of the record at fault (4096 plus its cell
/// offset, for a cell), the kind of record (`"nk"`, `"lh"`, `"vk"`, `"db"`, `"base block"`,
/// `"hbin"`, ...) and what is wrong with it, so a message reads like
/// `lh at file offset 0x5470: element 3 refers to cell 0x4480, which is a free cell`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegfError {
    /// The hive file could not be read.
    #[error("i/o error on {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// A record is damaged, or refers to something that is not there.
    #[error("{record} at file offset {offset:#x}: {reason}")]
    Corrupt {
        /// File offset of the record at fault.
        offset: u64,
        /// The kind of record (`"nk"`, `"lf"`, `"vk"`, `"base block"`, ...).
        record: &'static str,
        /// What is wrong with it (lower case).
        reason: String,
    },
}

impl RegfError {
    /// A damaged record at `offset` in the file.
    pub(crate) fn corrupt(offset: u64, record: &'static str, reason: impl Into<String>) -> Self {
        RegfError::Corrupt { offset, record, reason: reason.into() }
    }

    /// The file offset this error points at, if it is a structural error.
    pub fn offset(&self) -> Option<u64> {
        match self {
            RegfError::Corrupt { offset, .. } => Some(*offset),
            RegfError::Io { .. } => None,
        }
    }

    /// The kind of record at fault, if it is a structural error.
    pub fn record(&self) -> Option<&'static str> {
        match self {
            RegfError::Corrupt { record, .. } => Some(record),
            RegfError::Io { .. } => None,
        }
    }
}

/// Why a cell reference does not lead to an allocated cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadRef {
    /// `0xFFFFFFFF`, where a cell is required.
    Nil,
    /// Beyond the end of the hive bins data.
    OutOfRange,
    /// The start of a free (deleted) cell.
    Free,
    /// Inside a cell or a bin header, not at the start of a cell.
    NotCellStart,
}

impl BadRef {
    /// The error for a reference to `target` found in `record` (at file offset `offset`).
    #[cold]
    pub(crate) fn at(self, offset: u64, record: &'static str, what: &str, target: u32) -> RegfError {
        let why = match self {
            BadRef::Nil => return RegfError::corrupt(offset, record, format!("{what} is a null cell reference")),
            BadRef::OutOfRange => "which is beyond the hive bins data",
            BadRef::Free => "which is a free cell (deleted data is not read)",
            BadRef::NotCellStart => "which is not the start of a cell",
        };
        RegfError::corrupt(offset, record, format!("{what} refers to cell {target:#x}, {why}"))
    }
}

/// A record could not be reached: a bad reference (reported against the referring record,
/// which the caller knows) or a damaged target (reported against the target itself).
#[derive(Debug)]
pub(crate) enum Lookup {
    /// The reference does not lead to an allocated cell.
    Ref(BadRef),
    /// The cell is there but is not a valid record of the expected kind.
    Record(RegfError),
}

impl Lookup {
    /// The error, with a bad reference blamed on `record` at `offset`, field `what`.
    #[cold]
    pub(crate) fn reference(self, offset: u64, record: &'static str, what: &str, target: u32) -> RegfError {
        match self {
            Lookup::Ref(bad) => bad.at(offset, record, what, target),
            Lookup::Record(e) => e,
        }
    }
}

impl From<BadRef> for Lookup {
    fn from(b: BadRef) -> Self {
        Lookup::Ref(b)
    }
}

impl From<RegfError> for Lookup {
    fn from(e: RegfError) -> Self {
        Lookup::Record(e)
    }
}

/// The file offset of a cell offset (cell offsets count from the end of the base block).
#[inline]
pub(crate) fn file_offset(cell: u32) -> u64 {
    u64::from(cell) + super::base::BASE_BLOCK_LEN as u64
}
