//! Subkey lists (`lf`, `lh`, `li` leaves and `ri` roots of leaves) and value lists, walked as
//! iterators of [`KeyNode`]s and [`ValueNode`]s.

use super::base::{u16_at, u32_at};
use super::error::{Lookup, RegfError, file_offset};
use super::hive::Hive;
use super::key::KeyNode;
use super::value::ValueNode;

/// A subkey list cell: its signature and data.
#[inline]
fn list_at(hive: &Hive, off: u32) -> Result<([u8; 2], &[u8]), Lookup> {
    let cell = hive.cell(off)?;
    match cell.get(..2) {
        Some(s @ (b"lf" | b"lh" | b"li" | b"ri")) if cell.len() >= 4 => Ok(([s[0], s[1]], cell)),
        sig => Err(Lookup::Record(RegfError::corrupt(
            file_offset(off),
            "subkey list",
            format!("the cell holds {sig:02x?}, not a subkey list (lf, lh, li or ri)"),
        ))),
    }
}

/// The elements of a list cell with `n` elements of `stride` bytes after its 4-byte header.
#[inline]
fn elements(cell: &[u8], off: u32, stride: usize) -> Result<&[u8], RegfError> {
    let n = u16_at(cell, 2) as usize;
    cell.get(4..4 + n * stride).ok_or_else(|| {
        RegfError::corrupt(file_offset(off), kind_of(cell), format!("{n} elements do not fit in the cell"))
    })
}

/// The record kind of a list cell, for messages.
fn kind_of(cell: &[u8]) -> &'static str {
    match cell.get(..2) {
        Some(b"lf") => "lf",
        Some(b"lh") => "lh",
        Some(b"li") => "li",
        _ => "ri",
    }
}

/// The subkeys of a key: an iterator of [`KeyNode`]s that stops after the first error.
///
/// Every element must be an allocated `nk` whose parent field names the listing key and that
/// is not the root; an `ri` may only list leaves; and the lists must hold exactly as many
/// keys as the key says it has.
#[derive(Debug, Clone)]
pub struct Subkeys<'a> {
    hive: &'a Hive,
    /// Elements of the current leaf still to visit.
    leaf: &'a [u8],
    /// Elements of the `ri` still to visit (empty if the list is a single leaf).
    ri: &'a [u8],
    leaf_off: u32,
    leaf_idx: u32,
    ri_off: u32,
    ri_idx: u32,
    parent: u32,
    expected: u32,
    yielded: u32,
    depth: u16,
    /// The current leaf is `lf`/`lh` (8-byte elements), not `li` (4 bytes).
    wide: bool,
    done: bool,
}

impl<'a> Subkeys<'a> {
    /// The subkeys of the key at `parent` (`depth` is theirs), listed by the cell at `list`.
    #[inline]
    pub(crate) fn new(hive: &'a Hive, parent: u32, depth: u16, expected: u32, list: u32) -> Result<Self, RegfError> {
        let mut it = Subkeys {
            hive,
            leaf: &[],
            ri: &[],
            leaf_off: 0,
            leaf_idx: 0,
            ri_off: list,
            ri_idx: 0,
            parent,
            expected,
            yielded: 0,
            depth,
            wide: false,
            done: false,
        };
        if expected == 0 {
            return Ok(it);
        }
        let (kind, cell) =
            list_at(hive, list).map_err(|e| e.reference(file_offset(parent), "nk", "the subkey list", list))?;
        if kind == *b"ri" {
            it.ri = elements(cell, list, 4)?;
        } else {
            it.enter(list, kind, cell)?;
        }
        Ok(it)
    }

    #[inline]
    fn enter(&mut self, off: u32, kind: [u8; 2], cell: &'a [u8]) -> Result<(), RegfError> {
        self.wide = kind != *b"li";
        self.leaf = elements(cell, off, if self.wide { 8 } else { 4 })?;
        self.leaf_off = off;
        self.leaf_idx = 0;
        Ok(())
    }

    #[inline]
    fn step(&mut self) -> Result<Option<KeyNode<'a>>, RegfError> {
        loop {
            let stride = if self.wide { 8 } else { 4 };
            if let Some((elem, rest)) = self.leaf.split_at_checked(stride) {
                self.leaf = rest;
                let (off, i) = (u32_at(elem, 0), self.leaf_idx);
                self.leaf_idx += 1;
                self.yielded += 1;
                if self.yielded > self.expected {
                    return Err(self.count_mismatch());
                }
                let key = KeyNode::at(self.hive, off, self.depth).map_err(|e| self.bad_element(e, i, off))?;
                if key.parent_cell() != self.parent || off == self.hive.base().root_cell {
                    return Err(self.misplaced(&key, i));
                }
                return Ok(Some(key));
            }
            let Some((elem, rest)) = self.ri.split_first_chunk::<4>() else { break };
            self.ri = rest;
            let (off, i) = (u32::from_le_bytes(*elem), self.ri_idx);
            self.ri_idx += 1;
            let (kind, cell) = list_at(self.hive, off)
                .map_err(|e| e.reference(file_offset(self.ri_off), "ri", &format!("element {i}"), off))?;
            if kind == *b"ri" {
                return Err(RegfError::corrupt(file_offset(off), "ri", "an index root inside an index root"));
            }
            self.enter(off, kind, cell)?;
        }
        if self.yielded != self.expected {
            return Err(self.count_mismatch());
        }
        Ok(None)
    }

    #[cold]
    fn bad_element(&self, e: Lookup, i: u32, off: u32) -> RegfError {
        let kind = self.hive.cell(self.leaf_off).map(kind_of).unwrap_or("subkey list");
        e.reference(file_offset(self.leaf_off), kind, &format!("element {i}"), off)
    }

    #[cold]
    fn misplaced(&self, key: &KeyNode<'_>, i: u32) -> RegfError {
        if key.offset() == self.hive.base().root_cell {
            let kind = self.hive.cell(self.leaf_off).map(kind_of).unwrap_or("subkey list");
            return RegfError::corrupt(
                file_offset(self.leaf_off),
                kind,
                format!("element {i} is the root key (a cycle in the key tree)"),
            );
        }
        RegfError::corrupt(
            key.file_offset(),
            "nk",
            format!(
                "its parent field is cell {:#x}, but it is listed under the key at cell {:#x}",
                key.parent_cell(),
                self.parent
            ),
        )
    }

    #[cold]
    fn count_mismatch(&self) -> RegfError {
        let counted = if self.yielded > self.expected { "more".to_owned() } else { self.yielded.to_string() };
        RegfError::corrupt(
            file_offset(self.parent),
            "nk",
            format!("the key has {} subkeys, but its subkey lists hold {counted}", self.expected),
        )
    }
}

impl<'a> Iterator for Subkeys<'a> {
    type Item = Result<KeyNode<'a>, RegfError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.step() {
            Ok(Some(k)) => Some(Ok(k)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = if self.done { 0 } else { self.expected.saturating_sub(self.yielded) as usize + 1 };
        (0, Some(left))
    }
}

/// The values of a key: an iterator of [`ValueNode`]s that stops after the first error.
#[derive(Debug, Clone)]
pub struct Values<'a> {
    hive: &'a Hive,
    list: u32,
    elems: &'a [u8],
    idx: u32,
}

impl<'a> Values<'a> {
    /// The `n` values listed by the cell at `list`, for the key at file offset `key`.
    #[inline]
    pub(crate) fn new(hive: &'a Hive, key: u64, n: u32, list: u32) -> Result<Self, RegfError> {
        if n == 0 {
            return Ok(Values { hive, list, elems: &[], idx: 0 });
        }
        let cell = hive.cell(list).map_err(|b| b.at(key, "nk", "the value list", list))?;
        let elems = cell.get(..(n as usize).saturating_mul(4)).ok_or_else(|| {
            RegfError::corrupt(
                file_offset(list),
                "value list",
                format!("the key has {n} values, but the list's cell holds only {} bytes", cell.len()),
            )
        })?;
        Ok(Values { hive, list, elems, idx: 0 })
    }
}

impl<'a> Iterator for Values<'a> {
    type Item = Result<ValueNode<'a>, RegfError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        let (elem, rest) = self.elems.split_first_chunk::<4>()?;
        self.elems = rest;
        let (off, i) = (u32::from_le_bytes(*elem), self.idx);
        self.idx += 1;
        let r = ValueNode::at(self.hive, off)
            .map_err(|e| e.reference(file_offset(self.list), "value list", &format!("element {i}"), off));
        if r.is_err() {
            self.elems = &[];
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        // An error ends the iteration early, so the lower bound is at most one item.
        let left = self.elems.len() / 4;
        (left.min(1), Some(left))
    }
}
