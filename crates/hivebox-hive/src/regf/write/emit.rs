//! The second and third passes: place the cells in hive bins, then encode the base block,
//! the bin headers and every cell at its offset into one buffer of the final size.
//!
//! Cells are placed in plan order, in bins of 4 KiB. When a cell does not fit what is left
//! of the current bin, the gap is first filled with later cells that fit (first fit among
//! the next [`WINDOW`] cells, so locality is kept); if bytes are still left, then either the
//! last cell placed takes them (at most [`SLACK_MAX`] bytes: an allocated cell may be larger
//! than its record, and Windows hands out such cells too) and the next bin starts, or the bin
//! grows by whole pages to take the cell. So free space exists only at the end of the last
//! bin. Big-data segments never take extra bytes, because readers such as hivex size each
//! segment's data by its cell.

use super::super::{
    DATA_INLINE, HBIN_ALIGN, KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_NO_DELETE, KEY_SYM_LINK, VALUE_COMP_NAME, checksum,
};
use super::encode::{self, lh_hash, utf16le, write_name};
use super::plan::{Cell, Kind, NK_FIXED, NONE, Plan, SEGMENT, SK_FIXED, VK_FIXED, class_of, leaf_range};
use super::{WriteError, WriteOptions};

/// Characters of the base block's file-name field (the last ones of the name are kept).
const FILE_NAME_UNITS: usize = 31;

/// Size of a hive bin page, and of the smallest bin.
pub(super) const PAGE: u64 = HBIN_ALIGN as u64;
/// Size of a bin's header.
pub(super) const BIN_HEADER: u64 = 32;
/// The most bytes a cell takes beyond its record to close a bin.
const SLACK_MAX: u64 = 256;
/// How many of the following cells may fill a gap at the end of a bin.
const WINDOW: usize = 64;
/// Highest end of the hive bins (offsets are 32-bit; Windows itself stops at 2 GiB).
const MAX_END: u64 = 0x7FFF_F000;

/// Where the bins and the free tail are, all relative to the start of the hive bins.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// Start and size of each bin.
    pub bins: Vec<(u32, u32)>,
    /// End of the last bin: the hive bins data size.
    pub end: u32,
    /// Bytes of the free cell at the end of the last bin (0: none).
    pub free: u32,
    /// Bytes given to cells beyond their records to close bins.
    pub slack: u64,
}

/// Assigns every cell its offset (and, for cells that close a bin, a larger size).
pub(super) fn assign(cells: &mut [Cell]) -> Result<Layout, WriteError> {
    let mut layout = Layout::default();
    let (mut bin_start, mut bin_end, mut pos) = (0u64, PAGE, BIN_HEADER);
    // The last cell placed in the current bin, if any.
    let mut last: Option<usize> = None;
    fn place(cells: &mut [Cell], i: usize, pos: &mut u64, last: &mut Option<usize>) {
        // `pos` stays below MAX_END (checked whenever a bin grows), so it fits a u32.
        cells[i].offset = *pos as u32;
        *pos += cells[i].size as u64;
        *last = Some(i);
    }
    for i in 0..cells.len() {
        if cells[i].offset != 0 {
            continue; // placed earlier, in a gap (offset 0 is a bin header: "not placed yet")
        }
        let size = cells[i].size as u64;
        if size > bin_end - pos {
            for j in i + 1..cells.len().min(i + 1 + WINDOW) {
                if cells[j].offset == 0 && cells[j].size as u64 <= bin_end - pos {
                    place(cells, j, &mut pos, &mut last);
                }
            }
            let room = bin_end - pos;
            let absorber = last.filter(|&j| !matches!(cells[j].kind, Kind::Seg(..)));
            match absorber {
                Some(j) if room <= SLACK_MAX => {
                    // `room` is at most SLACK_MAX and the cell below 2^31 bytes (plan::push):
                    // the sum fits a u32.
                    cells[j].size += room as u32;
                    layout.slack += room;
                    layout.bins.push((bin_start as u32, (bin_end - bin_start) as u32));
                    bin_start = bin_end;
                    bin_end = bin_start + (BIN_HEADER + size).div_ceil(PAGE) * PAGE;
                    pos = bin_start + BIN_HEADER;
                    last = None;
                }
                _ => bin_end += (size - room).div_ceil(PAGE) * PAGE,
            }
            if bin_end > MAX_END {
                return Err(WriteError::TooLarge { size: bin_end + PAGE });
            }
        }
        place(cells, i, &mut pos, &mut last);
    }
    layout.bins.push((bin_start as u32, (bin_end - bin_start) as u32));
    layout.end = bin_end as u32;
    layout.free = (bin_end - pos) as u32;
    Ok(layout)
}

#[inline]
fn w16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

#[inline]
fn w32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

#[inline]
fn w64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

/// Writes the base block into `block` (4096 zeroed bytes).
pub(super) fn base_block(block: &mut [u8], opts: &WriteOptions, root: u32, bins_size: u32) {
    block[0..4].copy_from_slice(b"regf");
    w32(block, 4, opts.sequence);
    w32(block, 8, opts.sequence);
    w64(block, 12, opts.timestamp);
    w32(block, 20, 1); // major version
    w32(block, 24, 5); // minor version
    w32(block, 28, 0); // file type: primary
    w32(block, 32, 1); // file format: direct memory load
    w32(block, 36, root);
    w32(block, 40, bins_size);
    w32(block, 44, 1); // clustering factor
    let units: Vec<u16> = opts.file_name.encode_utf16().collect();
    let tail = &units[units.len().saturating_sub(FILE_NAME_UNITS)..];
    for (i, unit) in tail.iter().enumerate() {
        w16(block, 48 + 2 * i, *unit);
    }
    let sum = checksum(block);
    w32(block, 508, sum);
}

/// Writes the bin headers and the free cell at the end into `bins` (the zeroed hive bins).
pub(super) fn bins(bins: &mut [u8], layout: &Layout, timestamp: u64) {
    for (i, &(start, size)) in layout.bins.iter().enumerate() {
        let b = &mut bins[start as usize..start as usize + BIN_HEADER as usize];
        b[0..4].copy_from_slice(b"hbin");
        w32(b, 4, start);
        w32(b, 8, size);
        if i == 0 {
            w64(b, 20, timestamp);
        }
    }
    if layout.free > 0 {
        w32(bins, (layout.end - layout.free) as usize, layout.free);
    }
    debug_assert_eq!(layout.end as u64 % PAGE, 0);
}

/// Writes every cell of `plan` into `bins`.
pub(super) fn cells(bins: &mut [u8], plan: &Plan<'_>) {
    let off = |cell: u32| if cell == NONE { NONE } else { plan.cells[cell as usize].offset };
    for (i, cell) in plan.cells.iter().enumerate() {
        let at = cell.offset as usize;
        let b = &mut bins[at..at + cell.size as usize];
        // A cell is below 2^31 bytes (plan::push), so its negation fits an i32.
        b[0..4].copy_from_slice(&(-(cell.size as i32)).to_le_bytes());
        let b = &mut b[4..];
        let i = i as u32;
        match cell.kind {
            Kind::Nk(k) => {
                let key = &plan.keys[k as usize];
                let stored = encode::stored(key.name);
                let mut flags = if stored.compressed { KEY_COMP_NAME } else { 0 };
                if key.parent == NONE {
                    flags |= KEY_HIVE_ENTRY | KEY_NO_DELETE;
                }
                if key.image.link {
                    flags |= KEY_SYM_LINK;
                }
                b[0..2].copy_from_slice(b"nk");
                w16(b, 2, flags);
                w64(b, 4, key.image.last_write);
                w32(b, 16, if key.parent == NONE { NONE } else { off(plan.keys[key.parent as usize].nk) });
                w32(b, 20, key.image.subkeys.len() as u32);
                w32(b, 28, off(key.subkey_list));
                w32(b, 32, NONE); // volatile subkeys: none in a file
                w32(b, 36, key.image.values.len() as u32);
                w32(b, 40, off(key.value_list));
                w32(b, 44, off(plan.sks[key.sk as usize].cell));
                w32(b, 48, off(key.class));
                w32(b, 52, key.max_name);
                w32(b, 56, key.max_class);
                w32(b, 60, key.max_value_name);
                w32(b, 64, key.max_data);
                w16(b, 72, stored.len as u16);
                w16(b, 74, key.class_bytes as u16);
                write_name(&mut b[NK_FIXED..NK_FIXED + stored.len], key.name, stored.compressed);
            }
            Kind::Class(k) => {
                let key = &plan.keys[k as usize];
                if let Some(class) = class_of(key.image) {
                    utf16le(&mut b[..key.class_bytes as usize], class);
                }
            }
            Kind::ValueList(k) => {
                let key = &plan.keys[k as usize];
                let values = &plan.values[key.values as usize..][..key.image.values.len()];
                for (slot, v) in b.chunks_exact_mut(4).zip(values) {
                    slot.copy_from_slice(&off(v.vk).to_le_bytes());
                }
            }
            Kind::Vk(v) => {
                let val = &plan.values[v as usize];
                let data = &val.value.data;
                let stored = encode::stored(val.name);
                b[0..2].copy_from_slice(b"vk");
                w16(b, 2, stored.len as u16);
                if data.len() <= 4 {
                    w32(b, 4, data.len() as u32 | DATA_INLINE);
                    b[8..8 + data.len()].copy_from_slice(data);
                } else {
                    w32(b, 4, data.len() as u32);
                    w32(b, 8, off(i + 1));
                }
                w32(b, 12, val.value.ty.0);
                w16(b, 16, if stored.compressed && stored.len > 0 { VALUE_COMP_NAME } else { 0 });
                write_name(&mut b[VK_FIXED..VK_FIXED + stored.len], val.name, stored.compressed);
            }
            Kind::Data(v) => {
                let data = &plan.values[v as usize].value.data;
                b[..data.len()].copy_from_slice(data);
            }
            Kind::Db(v) => {
                let segments = plan.values[v as usize].value.data.len().div_ceil(SEGMENT);
                b[0..2].copy_from_slice(b"db");
                w16(b, 2, segments as u16);
                w32(b, 4, off(i + 1));
            }
            Kind::SegList(v) => {
                let segments = plan.values[v as usize].value.data.len().div_ceil(SEGMENT);
                for (s, slot) in b.chunks_exact_mut(4).take(segments).enumerate() {
                    slot.copy_from_slice(&off(i + 1 + s as u32).to_le_bytes());
                }
            }
            Kind::Seg(v, s) => {
                let data = &plan.values[v as usize].value.data;
                let part = &data[s as usize * SEGMENT..data.len().min((s as usize + 1) * SEGMENT)];
                b[..part.len()].copy_from_slice(part);
            }
            Kind::Sk(s) => {
                let n = plan.sks.len();
                let sk = &plan.sks[s as usize];
                let (next, prev) = ((s as usize + 1) % n, (s as usize + n - 1) % n);
                b[0..2].copy_from_slice(b"sk");
                w32(b, 4, off(plan.sks[next].cell));
                w32(b, 8, off(plan.sks[prev].cell));
                w32(b, 12, sk.refs);
                w32(b, 16, sk.bytes.len() as u32);
                b[SK_FIXED..SK_FIXED + sk.bytes.len()].copy_from_slice(sk.bytes);
            }
            Kind::Ri(k) => {
                let leaves = plan.keys[k as usize].leaves;
                b[0..2].copy_from_slice(b"ri");
                w16(b, 2, leaves as u16);
                for leaf in 0..leaves {
                    w32(b, 4 + 4 * leaf as usize, off(i + 1 + leaf));
                }
            }
            Kind::Lh(k, leaf) => {
                let key = &plan.keys[k as usize];
                let n = key.image.subkeys.len();
                let (start, count) = leaf_range(n, key.leaves as usize, leaf as usize);
                b[0..2].copy_from_slice(b"lh");
                w16(b, 2, count as u16);
                let first = (key.children as usize) + start;
                for (slot, child) in b[4..].chunks_exact_mut(8).zip(&plan.keys[first..first + count]) {
                    slot[0..4].copy_from_slice(&off(child.nk).to_le_bytes());
                    slot[4..8].copy_from_slice(&lh_hash(child.name).to_le_bytes());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(sizes: &[(u32, bool)]) -> Vec<Cell> {
        sizes
            .iter()
            .map(|&(size, seg)| Cell { size, offset: 0, kind: if seg { Kind::Seg(0, 0) } else { Kind::Nk(0) } })
            .collect()
    }

    #[test]
    fn small_cells_fill_bins_without_gaps() {
        let mut c = cells(&[(2000, false), (2000, false), (200, false)]);
        let l = assign(&mut c).unwrap();
        // 32 + 2000 + 2000 leaves 64: the second cell takes them, the third opens bin 2.
        assert_eq!(c[1].size, 2064);
        assert_eq!(c[2].offset, 4096 + 32);
        assert_eq!(l.bins, vec![(0, 4096), (4096, 4096)]);
        assert_eq!((l.end, l.free, l.slack), (8192, 4096 - 32 - 200, 64));
    }

    #[test]
    fn later_small_cells_fill_the_gap() {
        let mut c = cells(&[(2000, false), (2000, false), (200, false), (24, false), (40, false), (8, false)]);
        let l = assign(&mut c).unwrap();
        // 64 bytes are left after the second cell: the 24- and 40-byte cells fill them.
        assert_eq!((c[3].offset, c[4].offset), (4032, 4056));
        assert_eq!((c[2].offset, c[5].offset), (4096 + 32, 4096 + 232));
        assert_eq!(l.slack, 0);
        assert_eq!(l.bins, vec![(0, 4096), (4096, 4096)]);
    }

    #[test]
    fn big_cells_grow_the_bin() {
        let mut c = cells(&[(1000, false), (16352, true), (16352, true), (104, false)]);
        let l = assign(&mut c).unwrap();
        // The small cell fills the gap first; the segments follow in a bin grown for them.
        assert_eq!(c[3].offset, 1032);
        assert_eq!(c[1].offset, 1136);
        assert_eq!(c[2].offset, 1136 + 16352);
        assert_eq!(l.bins.len(), 1);
        assert_eq!(l.end % 4096, 0);
        assert_eq!(l.free as u64, l.end as u64 - (1136 + 2 * 16352));
        assert_eq!(l.slack, 0);
    }

    #[test]
    fn segments_never_take_slack() {
        // After the segment 4096 - 32 - 4000 = 64 bytes are left; the segment may not take
        // them, so the bin grows instead.
        let mut c = cells(&[(4000, true), (200, false)]);
        let l = assign(&mut c).unwrap();
        assert_eq!(c[0].size, 4000);
        assert_eq!(c[1].offset, 4032);
        assert_eq!(l.bins, vec![(0, 8192)]);
    }
}
