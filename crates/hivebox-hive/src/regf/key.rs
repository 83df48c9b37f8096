//! Key nodes (`nk`) and their subkey lists (`lf`, `lh`, `li`, `ri`) and value lists.

use super::base::{CELL_NIL, u16_at, u32_at, u64_at, utf16_lossy_until_nul};
use super::error::{Lookup, RegfError, file_offset};
use super::hive::Hive;
use super::list::{Subkeys, Values};
use std::borrow::Cow;

/// `KEY_VOLATILE`: the key lives in memory only.
pub const KEY_VOLATILE: u16 = 0x0001;
/// `KEY_HIVE_EXIT`: mount point of another hive.
pub const KEY_HIVE_EXIT: u16 = 0x0002;
/// `KEY_HIVE_ENTRY`: the root key of its hive.
pub const KEY_HIVE_ENTRY: u16 = 0x0004;
/// `KEY_NO_DELETE`: the key cannot be deleted.
pub const KEY_NO_DELETE: u16 = 0x0008;
/// `KEY_SYM_LINK`: a symbolic link (its target is the `SymbolicLinkValue` value).
pub const KEY_SYM_LINK: u16 = 0x0010;
/// `KEY_COMP_NAME`: the name is stored one byte per character (Latin-1), not UTF-16LE.
pub const KEY_COMP_NAME: u16 = 0x0020;
/// Deepest key nesting a walk follows (Windows' own limit); deeper means a cycle.
pub const MAX_DEPTH: u16 = 512;

const NK_FIXED: usize = 76;

/// Decodes a stored name: Latin-1 when `compressed`, else UTF-16LE (lossily).
#[inline]
pub(crate) fn decode_name(raw: &[u8], compressed: bool) -> Cow<'_, str> {
    if compressed {
        if raw.is_ascii() {
            // ASCII is valid UTF-8, so this borrows.
            if let Ok(s) = std::str::from_utf8(raw) {
                return Cow::Borrowed(s);
            }
        }
        Cow::Owned(raw.iter().map(|&b| char::from(b)).collect())
    } else {
        let units = raw.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        Cow::Owned(char::decode_utf16(units).map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER)).collect())
    }
}

/// A key node: a view of an `nk` cell.
#[derive(Clone, Copy)]
pub struct KeyNode<'a> {
    hive: &'a Hive,
    off: u32,
    nk: &'a [u8],
    depth: u16,
}

impl std::fmt::Debug for KeyNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyNode").field("offset", &self.off).field("name", &self.name()).finish()
    }
}

impl<'a> KeyNode<'a> {
    /// The key node in the cell at `off`, `depth` levels below the root.
    #[inline]
    pub(crate) fn at(hive: &'a Hive, off: u32, depth: u16) -> Result<Self, Lookup> {
        let nk = hive.cell(off)?;
        let bad = |reason: String| Lookup::Record(RegfError::corrupt(file_offset(off), "nk", reason));
        if nk.get(..2) != Some(b"nk") {
            return Err(bad(format!("the cell holds {:02x?}, not a key node (\"nk\")", nk.get(..2).unwrap_or(nk))));
        }
        if nk.len() < NK_FIXED {
            return Err(bad(format!("the cell is {} bytes long, too short for a key node", nk.len())));
        }
        let name_len = u16_at(nk, 72) as usize;
        if NK_FIXED + name_len > nk.len() {
            return Err(bad(format!("the name ({name_len} bytes) runs past the end of the cell ({} bytes)", nk.len())));
        }
        Ok(KeyNode { hive, off, nk, depth })
    }

    /// The cell offset of this key's `nk` (relative to the hive bins data).
    #[inline]
    pub fn offset(&self) -> u32 {
        self.off
    }

    /// The file offset of this key's `nk` cell.
    #[inline]
    pub fn file_offset(&self) -> u64 {
        file_offset(self.off)
    }

    /// How many levels below the root this key was reached.
    #[inline]
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// The raw name and whether it is stored compressed (Latin-1).
    #[inline]
    pub fn raw_name(&self) -> (&'a [u8], bool) {
        let len = u16_at(self.nk, 72) as usize;
        (self.nk.get(NK_FIXED..NK_FIXED + len).unwrap_or_default(), self.flags() & KEY_COMP_NAME != 0)
    }

    /// The key's name: borrowed when it is stored as ASCII, decoded otherwise (Latin-1 for
    /// compressed names, UTF-16LE with unpaired surrogates replaced for the others).
    #[inline]
    pub fn name(&self) -> Cow<'a, str> {
        let (raw, compressed) = self.raw_name();
        decode_name(raw, compressed)
    }

    /// The class name, if the key has one and it can be read ([`KeyNode::try_class`] says why
    /// not).
    pub fn class(&self) -> Option<String> {
        self.try_class().ok().flatten()
    }

    /// The class name: `None` if the key has none, an error if its cell cannot be read.
    pub fn try_class(&self) -> Result<Option<String>, RegfError> {
        Ok(self.class_cell()?.map(|(_, raw)| utf16_lossy_until_nul(raw)))
    }

    /// The class name's cell offset and bytes.
    pub(crate) fn class_cell(&self) -> Result<Option<(u32, &'a [u8])>, RegfError> {
        let off = u32_at(self.nk, 48);
        let len = u16_at(self.nk, 74) as usize;
        if len == 0 || off == CELL_NIL {
            return Ok(None);
        }
        let cell = self.hive.cell(off).map_err(|b| b.at(self.file_offset(), "nk", "the class name", off))?;
        let raw = cell.get(..len).ok_or_else(|| {
            RegfError::corrupt(
                file_offset(off),
                "class name",
                format!("the key says it is {len} bytes long, but its cell holds {}", cell.len()),
            )
        })?;
        Ok(Some((off, raw)))
    }

    /// Last write time (FILETIME).
    #[inline]
    pub fn last_write(&self) -> u64 {
        u64_at(self.nk, 4)
    }

    /// The `KEY_*` flags.
    #[inline]
    pub fn flags(&self) -> u16 {
        u16_at(self.nk, 2)
    }

    /// A symbolic link key (`KEY_SYM_LINK`).
    #[inline]
    pub fn is_link(&self) -> bool {
        self.flags() & KEY_SYM_LINK != 0
    }

    /// The `KEY_VOLATILE` flag (never set on a key in a hive file written by Windows).
    #[inline]
    pub fn is_volatile_flag(&self) -> bool {
        self.flags() & KEY_VOLATILE != 0
    }

    /// Cell offset of the parent key's `nk`, as this key records it.
    #[inline]
    pub fn parent_cell(&self) -> u32 {
        u32_at(self.nk, 16)
    }

    /// Cell offset of the key's `sk` (security) record, if it has one.
    #[inline]
    pub fn security_cell(&self) -> Option<u32> {
        Some(u32_at(self.nk, 44)).filter(|&o| o != CELL_NIL)
    }

    /// The key's security descriptor (self-relative `SECURITY_DESCRIPTOR` bytes), from its
    /// `sk` record.
    pub fn security(&self) -> Result<Option<&'a [u8]>, RegfError> {
        let Some(off) = self.security_cell() else { return Ok(None) };
        let sk = self.hive.cell(off).map_err(|b| b.at(self.file_offset(), "nk", "the security record", off))?;
        let bad = |reason: String| RegfError::corrupt(file_offset(off), "sk", reason);
        if sk.get(..2) != Some(b"sk") {
            return Err(bad(format!("the cell holds {:02x?}, not a security record (\"sk\")", sk.get(..2))));
        }
        let len = u32_at(sk, 16) as usize;
        match sk.get(20..).and_then(|d| d.get(..len)) {
            Some(d) => Ok(Some(d)),
            None => {
                Err(bad(format!("the descriptor ({len} bytes) runs past the end of the cell ({} bytes)", sk.len())))
            }
        }
    }

    /// The number of subkeys the key records (stable ones; volatile ones are not on disk).
    #[inline]
    pub fn subkey_count(&self) -> u32 {
        u32_at(self.nk, 20)
    }

    /// The number of values the key records.
    #[inline]
    pub fn value_count(&self) -> u32 {
        u32_at(self.nk, 36)
    }

    /// The subkeys, in list order (sorted by upcased name in a well-formed hive).
    ///
    /// Follows `lf`/`lh`/`li` leaves and `ri` roots of leaves; every element must be an
    /// allocated `nk` whose parent field names this key, and the lists must hold exactly
    /// [`KeyNode::subkey_count`] keys. Keys nested deeper than [`MAX_DEPTH`] are an error (the
    /// only way a walk could otherwise loop forever on a damaged hive).
    #[inline]
    pub fn subkeys(&self) -> Result<Subkeys<'a>, RegfError> {
        let expected = self.subkey_count();
        if expected != 0 && self.depth >= MAX_DEPTH {
            return Err(RegfError::corrupt(
                self.file_offset(),
                "nk",
                format!("keys nest deeper than {MAX_DEPTH} levels here (a cycle in the key tree?)"),
            ));
        }
        Subkeys::new(self.hive, self.off, self.depth.saturating_add(1), expected, u32_at(self.nk, 28))
    }

    /// The values, in list order.
    #[inline]
    pub fn values(&self) -> Result<Values<'a>, RegfError> {
        Values::new(self.hive, self.file_offset(), self.value_count(), u32_at(self.nk, 40))
    }
}
