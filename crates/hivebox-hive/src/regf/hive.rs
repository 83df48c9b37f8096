//! [`Hive`]: a hive file's bytes (after log replay), its base block and its cell map.

use super::base::{BASE_BLOCK_LEN, BaseBlock, u32_at};
use super::cells::{self, CellMap};
use super::error::{RegfError, file_offset};
use super::key::KeyNode;
use super::log::{self, LogRecovery};
use std::path::{Path, PathBuf};

/// A hive, read into memory: every record is a view borrowing from the bytes it owns.
///
/// Opening frames every hive bin and cell once (see `docs/regf.md`); after that each cell
/// reference is checked against the map of allocated cells, so a walk never reads a free
/// (deleted) cell or the middle of one as a record.
pub struct Hive {
    bytes: Vec<u8>,
    base: BaseBlock,
    bins_len: usize,
    map: CellMap,
    recovery: LogRecovery,
}

impl std::fmt::Debug for Hive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hive")
            .field("len", &self.bytes.len())
            .field("bins_len", &self.bins_len)
            .field("base", &self.base)
            .field("cells", &self.map)
            .field("recovery", &self.recovery)
            .finish()
    }
}

impl Hive {
    /// Reads the hive at `path`. If its base block says it is dirty, the transaction logs
    /// beside it (`PATH.LOG1`, `PATH.LOG2`, `PATH.LOG`, the suffix and name in any case) are
    /// replayed as Windows does; a dirty hive with no usable log still opens, as it is on
    /// disk, and [`Hive::recovery`] says so.
    pub fn open(path: &Path) -> Result<Hive, RegfError> {
        let read = |p: &Path| std::fs::read(p).map_err(|source| RegfError::Io { path: p.to_owned(), source });
        let bytes = read(path)?;
        let dirty = BaseBlock::parse(&bytes).map(|b| b.is_dirty()).unwrap_or(false);
        if !dirty {
            return Self::from_bytes(bytes);
        }
        // A log that cannot be read is as good as absent: the hive still opens, and says so.
        let mut logs = Vec::new();
        let mut unreadable = Vec::new();
        for p in find_logs(path) {
            match read(&p) {
                Ok(b) => logs.push((p.display().to_string(), b)),
                Err(e) => unreadable.push(e.to_string()),
            }
        }
        let names: Vec<String> = logs.iter().map(|l| l.0.clone()).collect();
        let views: Vec<&[u8]> = logs.iter().map(|l| l.1.as_slice()).collect();
        let mut hive = Self::build(bytes, &views, &names)?;
        hive.recovery.problems.extend(unreadable);
        Ok(hive)
    }

    /// A hive from its file's bytes, as they are: no log is replayed, even if it is dirty.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Hive, RegfError> {
        Self::build(bytes, &[], &[])
    }

    /// A hive from its file's bytes and the contents of its transaction logs (in any order:
    /// each log's format and place in the sequence come from its own header). The logs are
    /// replayed only if the hive is dirty.
    pub fn from_bytes_with_logs(bytes: Vec<u8>, logs: &[&[u8]]) -> Result<Hive, RegfError> {
        let names: Vec<String> = (0..logs.len()).map(|i| format!("log #{i}")).collect();
        Self::build(bytes, logs, &names)
    }

    fn build(mut bytes: Vec<u8>, logs: &[&[u8]], names: &[String]) -> Result<Hive, RegfError> {
        if bytes.len() < BASE_BLOCK_LEN {
            return Err(RegfError::corrupt(
                0,
                "base block",
                format!("the file is {} bytes long, shorter than a 4096-byte base block", bytes.len()),
            ));
        }
        let mut base = BaseBlock::parse(&bytes)?;
        let mut recovery =
            LogRecovery { dirty: base.is_dirty(), bad_checksum: !base.checksum_ok, ..Default::default() };
        if base.is_dirty() {
            log::replay(&mut bytes, logs, names, &mut recovery)?;
            base = BaseBlock::parse(&bytes)?;
        } else if !logs.is_empty() {
            recovery.problems.push("the hive is clean: its logs were not replayed".into());
        }
        base.check_primary()?;
        // A dirty hive that no log repaired is read as it is, as far as it goes.
        let lenient = recovery.dirty && !recovery.recovered;
        let mut bins_len = base.hive_bins_size as usize;
        let available = bytes.len() - BASE_BLOCK_LEN;
        if bins_len > available {
            if !lenient {
                return Err(RegfError::corrupt(
                    0,
                    "base block",
                    format!(
                        "hive bins data size {bins_len:#x} runs past the end of the file ({available:#x} bytes of bins)"
                    ),
                ));
            }
            recovery.problems.push(format!(
                "hive bins data size {bins_len:#x} runs past the end of the file; reading the {available:#x} bytes there"
            ));
            bins_len = available - available % super::base::HBIN_ALIGN;
        }
        let scan = cells::scan(&bytes[BASE_BLOCK_LEN..BASE_BLOCK_LEN + bins_len], !lenient)?;
        if let Some(e) = scan.stopped {
            recovery
                .problems
                .push(format!("hive bins read up to file offset {:#x}: {e}", file_offset(scan.bins_len as u32)));
        }
        if lenient {
            recovery.problems.push("the hive is dirty and no log repaired it: read as it is on disk".into());
        }
        let hive = Hive { bytes, base, bins_len: scan.bins_len, map: scan.map, recovery };
        hive.root()?;
        Ok(hive)
    }

    /// What log replay found and did.
    pub fn recovery(&self) -> &LogRecovery {
        &self.recovery
    }

    /// The base block (as log replay left it).
    #[inline]
    pub fn base(&self) -> &BaseBlock {
        &self.base
    }

    /// The whole file image, base block included (after log replay).
    #[inline]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The hive bins data that was read (all of it, unless a dirty hive was cut short).
    #[inline]
    pub fn bins(&self) -> &[u8] {
        // `build` only makes hives with BASE_BLOCK_LEN + bins_len <= bytes.len().
        &self.bytes[BASE_BLOCK_LEN..BASE_BLOCK_LEN + self.bins_len]
    }

    /// The number of allocated cells.
    pub fn allocated_cells(&self) -> usize {
        self.map.allocated_count()
    }

    /// The root key.
    #[inline]
    pub fn root(&self) -> Result<KeyNode<'_>, RegfError> {
        KeyNode::at(self, self.base.root_cell, 0)
            .map_err(|e| e.reference(0, "base block", "the root cell offset", self.base.root_cell))
    }

    /// The data of the allocated cell at `off` (without its size field).
    #[inline]
    pub(crate) fn cell(&self, off: u32) -> Result<&[u8], super::error::BadRef> {
        if self.map.is_allocated(off) {
            let bins = self.bins();
            let start = off as usize;
            // The scan checked that the cell's size field and data lie within its bin.
            let len = (u32_at(bins, start) as i32).unsigned_abs() as usize;
            if let Some(data) = bins.get(start + 4..start + len) {
                return Ok(data);
            }
        }
        Err(self.map.why_not(off, self.bins_len))
    }

    /// Length of the hive bins data that was read.
    #[inline]
    pub(crate) fn bins_len(&self) -> usize {
        self.bins_len
    }
}

/// The transaction logs beside `path`: `NAME.LOG1`, `NAME.LOG2` and `NAME.LOG`, matched
/// without regard to case (as on the NTFS volume they come from).
fn find_logs(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Vec::new();
    };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<(usize, String, PathBuf)> = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name();
        let Some(file) = file.to_str() else { continue };
        for (rank, suffix) in [".LOG1", ".LOG2", ".LOG"].iter().enumerate() {
            let matches = file.len() == name.len() + suffix.len()
                && file.is_char_boundary(name.len())
                && file[..name.len()].eq_ignore_ascii_case(name)
                && file[name.len()..].eq_ignore_ascii_case(suffix);
            if matches && entry.path().is_file() {
                found.push((rank, file.to_owned(), entry.path()));
            }
        }
    }
    // LOG1, LOG2, LOG; where several names differ only in case, the exact one first.
    found.sort_by(|a, b| (a.0, !a.1.starts_with(name), &a.1).cmp(&(b.0, !b.1.starts_with(name), &b.1)));
    found.dedup_by_key(|f| f.0);
    found.into_iter().map(|f| f.2).collect()
}
