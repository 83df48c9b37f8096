//! Key values (`vk`) and their data: inline, in one cell, or in big-data (`db`) segments.

use super::base::{u16_at, u32_at};
use super::error::{Lookup, RegfError, file_offset};
use super::hive::Hive;
use super::key::decode_name;
use std::borrow::Cow;

/// `VALUE_COMP_NAME`: the value's name is stored one byte per character (Latin-1).
pub const VALUE_COMP_NAME: u16 = 0x0001;
/// The most data one cell holds in a hive of version 1.4 or later; longer data is split into
/// segments of this size listed by a `db` record.
pub const BIG_DATA_SEGMENT: usize = 16344;
/// Set in a `vk`'s data size when the data (at most 4 bytes) sits in the data offset field.
pub const DATA_INLINE: u32 = 0x8000_0000;

const VK_FIXED: usize = 20;

/// A value: a view of a `vk` cell.
#[derive(Clone, Copy)]
pub struct ValueNode<'a> {
    hive: &'a Hive,
    off: u32,
    vk: &'a [u8],
}

impl std::fmt::Debug for ValueNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueNode")
            .field("offset", &self.off)
            .field("name", &self.name())
            .field("ty", &self.ty())
            .field("len", &self.data_len())
            .finish()
    }
}

impl<'a> ValueNode<'a> {
    /// The value in the cell at `off`.
    #[inline]
    pub(crate) fn at(hive: &'a Hive, off: u32) -> Result<Self, Lookup> {
        let vk = hive.cell(off)?;
        let bad = |reason: String| Lookup::Record(RegfError::corrupt(file_offset(off), "vk", reason));
        if vk.get(..2) != Some(b"vk") {
            return Err(bad(format!("the cell holds {:02x?}, not a value (\"vk\")", vk.get(..2).unwrap_or(vk))));
        }
        if vk.len() < VK_FIXED {
            return Err(bad(format!("the cell is {} bytes long, too short for a value", vk.len())));
        }
        let name_len = u16_at(vk, 2) as usize;
        if VK_FIXED + name_len > vk.len() {
            return Err(bad(format!("the name ({name_len} bytes) runs past the end of the cell ({} bytes)", vk.len())));
        }
        Ok(ValueNode { hive, off, vk })
    }

    /// The cell offset of this value's `vk`.
    #[inline]
    pub fn offset(&self) -> u32 {
        self.off
    }

    /// The file offset of this value's `vk` cell.
    #[inline]
    pub fn file_offset(&self) -> u64 {
        file_offset(self.off)
    }

    /// The raw name and whether it is stored compressed (Latin-1).
    #[inline]
    pub fn raw_name(&self) -> (&'a [u8], bool) {
        let len = u16_at(self.vk, 2) as usize;
        (self.vk.get(VK_FIXED..VK_FIXED + len).unwrap_or_default(), self.flags() & VALUE_COMP_NAME != 0)
    }

    /// The value's name (`""` for the default value): borrowed when stored as ASCII.
    #[inline]
    pub fn name(&self) -> Cow<'a, str> {
        let (raw, compressed) = self.raw_name();
        decode_name(raw, compressed)
    }

    /// The type number (`REG_*`; any `u32` may be stored).
    #[inline]
    pub fn ty(&self) -> u32 {
        u32_at(self.vk, 12)
    }

    /// The `vk` flags (`VALUE_COMP_NAME`, ...).
    #[inline]
    pub fn flags(&self) -> u16 {
        u16_at(self.vk, 16)
    }

    /// The length of the data in bytes.
    #[inline]
    pub fn data_len(&self) -> u32 {
        u32_at(self.vk, 4) & !DATA_INLINE
    }

    /// Whether the data sits in the `vk` itself (4 bytes or less).
    #[inline]
    pub fn is_inline(&self) -> bool {
        u32_at(self.vk, 4) & DATA_INLINE != 0
    }

    /// The data: borrowed from the hive unless it is split into big-data segments.
    #[inline]
    pub fn data(&self) -> Result<Cow<'a, [u8]>, RegfError> {
        self.data_with(|_| Ok(()))
    }

    /// The data, handing `visit` the offset of every cell it reads (data cell, `db` record,
    /// segment list, segments) before reading it.
    #[inline]
    pub(crate) fn data_with(
        &self,
        mut visit: impl FnMut(u32) -> Result<(), RegfError>,
    ) -> Result<Cow<'a, [u8]>, RegfError> {
        let len = self.data_len() as usize;
        let field = u32_at(self.vk, 8);
        if self.is_inline() {
            return match self.vk.get(8..8 + len) {
                Some(d) if len <= 4 => Ok(Cow::Borrowed(d)),
                _ => Err(self.bad(format!("inline data is {len} bytes long; at most 4 fit in the value"))),
            };
        }
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        visit(field)?;
        let cell = self.hive.cell(field).map_err(|b| b.at(self.file_offset(), "vk", "the data", field))?;
        if len > BIG_DATA_SEGMENT && self.hive.base().minor >= 4 {
            return self.big_data(field, cell, len, visit).map(Cow::Owned);
        }
        match cell.get(..len) {
            Some(d) => Ok(Cow::Borrowed(d)),
            None => Err(self.bad(format!("data length {len} is more than its cell holds ({} bytes)", cell.len()))),
        }
    }

    #[cold]
    fn bad(&self, reason: String) -> RegfError {
        RegfError::corrupt(self.file_offset(), "vk", reason)
    }

    /// Joins the segments of a `db` record. All are checked before anything is allocated, and
    /// the length may not exceed the hive, so a damaged record cannot make a large allocation.
    fn big_data(
        &self,
        db_off: u32,
        db: &'a [u8],
        len: usize,
        mut visit: impl FnMut(u32) -> Result<(), RegfError>,
    ) -> Result<Vec<u8>, RegfError> {
        let at = file_offset(db_off);
        let bad = |reason: String| RegfError::corrupt(at, "db", reason);
        if db.get(..2) != Some(b"db") || db.len() < 8 {
            return Err(bad(format!(
                "data of {len} bytes in a version 1.{} hive must be big data, but the cell holds {:02x?}",
                self.hive.base().minor,
                db.get(..2)
            )));
        }
        if len > self.hive.bins_len() {
            return Err(bad(format!("big data of {len} bytes is longer than the hive")));
        }
        let count = u16_at(db, 2) as usize;
        let needed = len.div_ceil(BIG_DATA_SEGMENT);
        if count < needed {
            return Err(bad(format!("{count} segments cannot hold {len} bytes")));
        }
        let list_off = u32_at(db, 4);
        visit(list_off)?;
        let list = self.hive.cell(list_off).map_err(|b| b.at(at, "db", "the segment list", list_off))?;
        let list = list.get(..needed * 4).ok_or_else(|| {
            RegfError::corrupt(file_offset(list_off), "db list", format!("{needed} segments do not fit in the cell"))
        })?;
        let segment = |i: usize| -> Result<&'a [u8], RegfError> {
            let off = u32_at(list, i * 4);
            let want = (len - i * BIG_DATA_SEGMENT).min(BIG_DATA_SEGMENT);
            let cell = self
                .hive
                .cell(off)
                .map_err(|b| b.at(file_offset(list_off), "db list", &format!("segment {i}"), off))?;
            cell.get(..want).ok_or_else(|| {
                RegfError::corrupt(
                    file_offset(off),
                    "db segment",
                    format!("segment {i} should hold {want} bytes, but its cell holds {}", cell.len()),
                )
            })
        };
        for i in 0..needed {
            visit(u32_at(list, i * 4))?;
            segment(i)?;
        }
        let mut out = Vec::with_capacity(len);
        for i in 0..needed {
            out.extend_from_slice(segment(i)?);
        }
        Ok(out)
    }
}
