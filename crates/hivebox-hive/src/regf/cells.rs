//! Hive bins and cells: the scan that frames every cell once at open, and the map it
//! leaves behind, which lets every later cell reference be checked in O(1).
//!
//! A cell reference is valid only if it is the offset of the *start* of an *allocated*
//! cell. The map keeps one bit per 8-byte slot of the hive bins data (cells are 8-aligned)
//! for allocated cell starts, and another for free cell starts (only to say why a reference
//! is bad): 2 bits per 8 bytes, 1/32 of the hive.

use super::base::{HBIN_ALIGN, HBIN_HEADER_LEN, u32_at};
use super::error::{BadRef, RegfError, file_offset};

/// Where the allocated and free cells start.
#[derive(Clone, Default)]
pub(crate) struct CellMap {
    alloc: Vec<u64>,
    free: Vec<u64>,
}

impl std::fmt::Debug for CellMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = |v: &[u64]| v.iter().map(|w| w.count_ones() as usize).sum::<usize>();
        f.debug_struct("CellMap").field("allocated", &count(&self.alloc)).field("free", &count(&self.free)).finish()
    }
}

#[inline]
fn bit(map: &[u64], off: usize) -> bool {
    let slot = off >> 3;
    map.get(slot >> 6).is_some_and(|w| (w >> (slot & 63)) & 1 == 1)
}

#[inline]
fn set(map: &mut [u64], off: usize) {
    let slot = off >> 3;
    if let Some(w) = map.get_mut(slot >> 6) {
        *w |= 1 << (slot & 63);
    }
}

impl CellMap {
    fn with_len(bins_len: usize) -> Self {
        let words = (bins_len >> 3).div_ceil(64);
        CellMap { alloc: vec![0; words], free: vec![0; words] }
    }

    /// Whether an allocated cell starts at `off`.
    #[inline]
    pub(crate) fn is_allocated(&self, off: u32) -> bool {
        let off = off as usize;
        off & 7 == 0 && bit(&self.alloc, off)
    }

    /// Why `off` is not the start of an allocated cell.
    #[cold]
    pub(crate) fn why_not(&self, off: u32, bins_len: usize) -> BadRef {
        let o = off as usize;
        if off == super::base::CELL_NIL {
            BadRef::Nil
        } else if o >= bins_len {
            BadRef::OutOfRange
        } else if o & 7 == 0 && bit(&self.free, o) {
            BadRef::Free
        } else {
            BadRef::NotCellStart
        }
    }

    /// The number of allocated cells.
    pub(crate) fn allocated_count(&self) -> usize {
        self.alloc.iter().map(|w| w.count_ones() as usize).sum()
    }
}

/// The outcome of scanning the hive bins.
#[derive(Debug)]
pub(crate) struct Scan {
    pub(crate) map: CellMap,
    /// Length of the bins that were read (all of them, unless a lenient scan stopped early).
    pub(crate) bins_len: usize,
    /// Why a lenient scan stopped early.
    pub(crate) stopped: Option<RegfError>,
}

/// Frames every hive bin and cell of `bins` (the hive bins data, right after the base block).
///
/// Checks, for each bin: the `hbin` signature, that its offset field is where it is, and that
/// its size is a positive multiple of 4096 within the data; for each cell: a non-zero size that
/// is a multiple of 8 and does not cross the end of its bin. A `strict` scan fails on the first
/// problem; a lenient one (a dirty hive that no log repaired) keeps the bins before it.
pub(crate) fn scan(bins: &[u8], strict: bool) -> Result<Scan, RegfError> {
    let mut map = CellMap::with_len(bins.len());
    let mut pos = 0usize;
    let mut stopped = None;
    while pos < bins.len() {
        match scan_bin(bins, pos, &mut map) {
            Ok(size) => pos += size,
            Err(e) if strict => return Err(e),
            Err(e) => {
                stopped = Some(e);
                break;
            }
        }
    }
    if pos < bins.len() {
        // Forget whatever a partly scanned bin left in the map.
        let keep = pos >> 3;
        for m in [&mut map.alloc, &mut map.free] {
            for (i, w) in m.iter_mut().enumerate() {
                let first = i * 64;
                if first >= keep {
                    *w = 0;
                } else if first + 64 > keep {
                    *w &= (1u64 << (keep - first)) - 1;
                }
            }
        }
    }
    Ok(Scan { map, bins_len: pos, stopped })
}

fn scan_bin(bins: &[u8], pos: usize, map: &mut CellMap) -> Result<usize, RegfError> {
    let at = file_offset(pos as u32);
    let bad = |reason: String| RegfError::corrupt(at, "hbin", reason);
    let header = bins.get(pos..pos + HBIN_HEADER_LEN).ok_or_else(|| bad("truncated hive bin header".into()))?;
    if &header[..4] != b"hbin" {
        return Err(bad(format!("signature is {:02x?}, not \"hbin\"", &header[..4])));
    }
    let offset = u32_at(header, 4) as usize;
    if offset != pos {
        return Err(bad(format!("says it is at bins offset {offset:#x}, but is at {pos:#x}")));
    }
    let size = u32_at(header, 8) as usize;
    if size < HBIN_ALIGN || !size.is_multiple_of(HBIN_ALIGN) {
        return Err(bad(format!("size {size:#x} is not a positive multiple of 4096")));
    }
    let end = pos.checked_add(size).filter(|&e| e <= bins.len()).ok_or_else(|| {
        bad(format!("size {size:#x} runs past the end of the hive bins data ({:#x} bytes)", bins.len()))
    })?;
    let mut cell = pos + HBIN_HEADER_LEN;
    while cell < end {
        let raw = u32_at(bins, cell) as i32;
        let len = raw.unsigned_abs() as usize;
        let cell_at = file_offset(cell as u32);
        if len < 8 || !len.is_multiple_of(8) {
            return Err(RegfError::corrupt(cell_at, "cell", format!("size {raw} is not a non-zero multiple of 8")));
        }
        if len > end - cell {
            return Err(RegfError::corrupt(
                cell_at,
                "cell",
                format!(
                    "size {len:#x} runs past the end of its hive bin at file offset {:#x}",
                    file_offset(end as u32)
                ),
            ));
        }
        if raw < 0 {
            set(&mut map.alloc, cell);
        } else {
            set(&mut map.free, cell);
        }
        cell += len;
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bin(at: usize, cells: &[i32]) -> Vec<u8> {
        let mut b = vec![0u8; 4096];
        b[..4].copy_from_slice(b"hbin");
        b[4..8].copy_from_slice(&(at as u32).to_le_bytes());
        b[8..12].copy_from_slice(&4096u32.to_le_bytes());
        let mut pos = 32;
        for &c in cells {
            b[pos..pos + 4].copy_from_slice(&c.to_le_bytes());
            pos += c.unsigned_abs() as usize;
        }
        b
    }

    #[test]
    fn maps_allocated_and_free_cells() {
        let mut bins = bin(0, &[-16, 32, -(4096 - 32 - 48)]);
        bins.extend(bin(4096, &[4064]));
        let s = scan(&bins, true).unwrap();
        assert_eq!(s.bins_len, 8192);
        assert!(s.map.is_allocated(32) && s.map.is_allocated(80));
        assert!(!s.map.is_allocated(48) && !s.map.is_allocated(40) && !s.map.is_allocated(4128));
        assert_eq!(s.map.why_not(48, 8192), BadRef::Free);
        assert_eq!(s.map.why_not(40, 8192), BadRef::NotCellStart);
        assert_eq!(s.map.why_not(9000, 8192), BadRef::OutOfRange);
        assert_eq!(s.map.why_not(u32::MAX, 8192), BadRef::Nil);
    }

    #[test]
    fn strict_scan_names_the_bad_bin_and_lenient_scan_stops_there() {
        let mut bins = bin(0, &[-4064]);
        bins.extend(vec![0u8; 4096]);
        let e = scan(&bins, true).unwrap_err().to_string();
        assert!(e.starts_with("hbin at file offset 0x2000: signature"), "{e}");
        let s = scan(&bins, false).unwrap();
        assert_eq!(s.bins_len, 4096);
        assert!(s.stopped.is_some() && s.map.is_allocated(32));
    }

    #[test]
    fn rejects_bad_cell_sizes() {
        let e = scan(&bin(0, &[-12, 0]), true).unwrap_err().to_string();
        assert!(e.contains("cell at file offset 0x1020: size -12"), "{e}");
        let e = scan(&bin(0, &[-8192]), true).unwrap_err().to_string();
        assert!(e.contains("runs past the end of its hive bin"), "{e}");
        let e = scan(&bin(0, &[i32::MIN]), true).unwrap_err().to_string();
        assert!(e.contains("cell at file offset 0x1020"), "{e}");
    }
}
