//! The first pass: walk the image once, order each key's subkeys, share security descriptors,
//! and list every cell the hive will hold, with its size, in the order they are laid out.
//!
//! Cells are listed depth first: a key's `nk`, its class, its `sk` (where first used), its
//! value list, each `vk` followed by its data (`db`, segment list and segments for big data),
//! its subkey index (`ri` then its `lh` leaves, or one `lh`), then its subkeys' cells. The
//! root's `nk` is the first cell of the hive. A key's subkeys get consecutive key numbers in
//! index order, so an index names them by a range.

use super::super::{BIG_DATA_SEGMENT, CELL_NIL};
use super::WriteError;
use super::encode::{self, check_sd, cmp_names};
use hivebox_core::{KeyImage, Value};
use std::collections::HashMap;

/// "No cell": the offset field value for an absent list, class or parent.
pub(super) const NONE: u32 = CELL_NIL;
/// Bytes of value data per big-data segment (`CM_KEY_VALUE_BIG`).
pub(super) const SEGMENT: usize = BIG_DATA_SEGMENT;
/// Most entries in one `lh` leaf; more subkeys are split over leaves under an `ri`.
pub(super) const LEAF_MAX: usize = 500;
/// Bytes of an `nk` record before its name.
pub(super) const NK_FIXED: usize = 76;
/// Bytes of a `vk` record before its name.
pub(super) const VK_FIXED: usize = 20;
/// Bytes of an `sk` record before its descriptor.
pub(super) const SK_FIXED: usize = 20;
/// Longest key name, in UTF-16 units.
const MAX_KEY_NAME: usize = 255;
/// Longest value name, in UTF-16 units.
const MAX_VALUE_NAME: usize = 16_383;

/// What a cell holds; the number is a key, value or descriptor index into the [`Plan`].
#[derive(Debug, Clone, Copy)]
pub(super) enum Kind {
    Nk(u32),
    Class(u32),
    ValueList(u32),
    Vk(u32),
    Data(u32),
    Db(u32),
    SegList(u32),
    /// Value, segment number.
    Seg(u32, u32),
    Sk(u32),
    Ri(u32),
    /// Key, leaf number.
    Lh(u32, u32),
}

/// One cell: its size (header included, a multiple of 8) and, once laid out, its offset
/// from the start of the hive bins.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cell {
    pub size: u32,
    pub offset: u32,
    pub kind: Kind,
}

/// A key to write.
#[derive(Debug)]
pub(super) struct Key<'a> {
    pub image: &'a KeyImage,
    pub name: &'a str,
    /// Parent key number ([`NONE`] for the root).
    pub parent: u32,
    /// Number of the first subkey, in index order; the rest follow.
    pub children: u32,
    /// Index of the first value in [`Plan::values`].
    pub values: u32,
    pub sk: u32,
    /// Cell numbers.
    pub nk: u32,
    pub class: u32,
    pub class_bytes: u32,
    pub value_list: u32,
    pub subkey_list: u32,
    pub leaves: u32,
    /// The nk's `Max*` fields, in bytes (names counted as UTF-16).
    pub max_name: u32,
    pub max_class: u32,
    pub max_value_name: u32,
    pub max_data: u32,
}

/// A value to write, and the cell number of its `vk`.
#[derive(Debug)]
pub(super) struct Val<'a> {
    pub name: &'a str,
    pub value: &'a Value,
    pub vk: u32,
}

/// A distinct security descriptor, how many keys use it, and its cell number.
#[derive(Debug)]
pub(super) struct Sk<'a> {
    pub bytes: &'a [u8],
    pub refs: u32,
    pub cell: u32,
}

/// Everything the hive will hold.
#[derive(Debug, Default)]
pub(super) struct Plan<'a> {
    pub keys: Vec<Key<'a>>,
    pub values: Vec<Val<'a>>,
    pub sks: Vec<Sk<'a>>,
    pub cells: Vec<Cell>,
}

const fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl<'a> Key<'a> {
    fn new(image: &'a KeyImage, name: &'a str, parent: u32) -> Self {
        Key {
            image,
            name,
            parent,
            children: NONE,
            values: 0,
            sk: NONE,
            nk: NONE,
            class: NONE,
            class_bytes: 0,
            value_list: NONE,
            subkey_list: NONE,
            leaves: 0,
            max_name: 0,
            max_class: 0,
            max_value_name: 0,
            max_data: 0,
        }
    }
}

/// The class a key is written with: an empty class is no class, as Windows reports it.
pub(super) fn class_of(image: &KeyImage) -> Option<&str> {
    image.class.as_deref().filter(|c| !c.is_empty())
}

fn utf16_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.encode_utf16().count() }
}

/// The number of subkeys of `leaf` when `n` subkeys are spread over `leaves` leaves, and the
/// index of its first one.
pub(super) fn leaf_range(n: usize, leaves: usize, leaf: usize) -> (usize, usize) {
    let start = n * leaf / leaves;
    (start, n * (leaf + 1) / leaves - start)
}

/// Walks `image` (whose root `nk` is named `root_name`) and lists the hive's cells. Keys
/// with no descriptor get `default_sd`.
pub(super) fn build<'a>(image: &'a KeyImage, root_name: &'a str, default_sd: &'a [u8]) -> Result<Plan<'a>, WriteError> {
    let mut b = Builder { plan: Plan::default(), default_sd, by_ptr: HashMap::new(), by_bytes: HashMap::new() };
    b.plan.cells.reserve(4 * 1024);
    b.plan.keys.push(Key::new(image, root_name, NONE));
    let mut stack = vec![0u32];
    let mut kids: Vec<&'a KeyImage> = Vec::new();
    while let Some(k) = stack.pop() {
        b.key_cells(k)?;
        let first = b.plan.keys.len() as u32;
        let image = b.plan.keys[k as usize].image;
        if image.subkeys.is_empty() {
            continue;
        }
        kids.clear();
        kids.extend(image.subkeys.iter());
        if !kids.is_sorted_by(|x, y| cmp_names(&x.name, &y.name).is_lt()) {
            kids.sort_by(|x, y| cmp_names(&x.name, &y.name));
            if let Some(w) = kids.windows(2).find(|w| cmp_names(&w[0].name, &w[1].name).is_eq()) {
                return Err(WriteError::DuplicateSubkey { key: b.path(k), name: w[1].name.clone() });
            }
        }
        let (mut max_name, mut max_class) = (0, 0);
        for kid in &kids {
            max_name = max_name.max(2 * utf16_len(&kid.name) as u32);
            max_class = max_class.max(class_of(kid).map_or(0, |c| 2 * utf16_len(c) as u32));
            b.plan.keys.push(Key::new(kid, &kid.name, k));
        }
        let key = &mut b.plan.keys[k as usize];
        (key.children, key.max_name, key.max_class) = (first, max_name, max_class);
        stack.extend((first..first + kids.len() as u32).rev());
    }
    Ok(b.plan)
}

struct Builder<'a> {
    plan: Plan<'a>,
    default_sd: &'a [u8],
    /// Descriptors already seen, by address (keys usually share their parent's `Arc`) ...
    by_ptr: HashMap<(usize, usize), u32>,
    /// ... and by content.
    by_bytes: HashMap<&'a [u8], u32>,
}

impl<'a> Builder<'a> {
    fn push(&mut self, size: usize, kind: Kind) -> Result<u32, WriteError> {
        let size = align8(size);
        if size > i32::MAX as usize {
            return Err(WriteError::TooLarge { size: size as u64 });
        }
        self.plan.cells.push(Cell { size: size as u32, offset: 0, kind });
        Ok(self.plan.cells.len() as u32 - 1)
    }

    /// The path of key `k` below the root, for error messages.
    fn path(&self, k: u32) -> String {
        let mut parts = Vec::new();
        let mut cur = k;
        while cur != NONE {
            let key = &self.plan.keys[cur as usize];
            parts.push(key.name);
            cur = key.parent;
        }
        parts.reverse();
        parts.join("\\")
    }

    fn key_cells(&mut self, k: u32) -> Result<(), WriteError> {
        let (image, name) = (self.plan.keys[k as usize].image, self.plan.keys[k as usize].name);
        let stored = encode::stored(name);
        if stored.units == 0 || stored.units > MAX_KEY_NAME {
            return Err(WriteError::KeyName { key: self.path(k), units: stored.units });
        }
        let nk = self.push(4 + NK_FIXED + stored.len, Kind::Nk(k))?;
        self.plan.keys[k as usize].nk = nk;
        if let Some(class) = class_of(image) {
            let bytes = 2 * utf16_len(class);
            if bytes > u16::MAX as usize {
                return Err(WriteError::Class { key: self.path(k), bytes });
            }
            let cell = self.push(4 + bytes, Kind::Class(k))?;
            let key = &mut self.plan.keys[k as usize];
            (key.class, key.class_bytes) = (cell, bytes as u32);
        }
        let sk = self.security(k)?;
        self.plan.keys[k as usize].sk = sk;
        self.plan.keys[k as usize].values = self.plan.values.len() as u32;
        if !image.values.is_empty() {
            let cell = self.push(4 + 4 * image.values.len(), Kind::ValueList(k))?;
            self.plan.keys[k as usize].value_list = cell;
        }
        let (mut max_value_name, mut max_data) = (0, 0);
        for (vname, value) in &image.values {
            let v = self.plan.values.len() as u32;
            let stored = encode::stored(vname);
            if stored.units > MAX_VALUE_NAME {
                return Err(WriteError::ValueName { key: self.path(k), units: stored.units });
            }
            let vk = self.push(4 + VK_FIXED + stored.len, Kind::Vk(v))?;
            let len = value.data.len();
            if len > SEGMENT {
                let segments = len.div_ceil(SEGMENT);
                if segments > u16::MAX as usize || len >= 0x8000_0000 {
                    return Err(WriteError::DataTooLarge { key: self.path(k), name: vname.clone(), len });
                }
                self.push(16, Kind::Db(v))?;
                self.push(4 + 4 * segments, Kind::SegList(v))?;
                for s in 0..segments {
                    // Four spare bytes after each segment's data, as Windows allocates them.
                    self.push(8 + SEGMENT.min(len - s * SEGMENT), Kind::Seg(v, s as u32))?;
                }
            } else if len > 4 {
                self.push(4 + len, Kind::Data(v))?;
            }
            max_value_name = max_value_name.max(2 * stored.units as u32);
            max_data = max_data.max(len as u32);
            self.plan.values.push(Val { name: vname, value, vk });
        }
        let n = image.subkeys.len();
        if n > 0 {
            let leaves = n.div_ceil(LEAF_MAX);
            if leaves > u16::MAX as usize {
                return Err(WriteError::TooManySubkeys { key: self.path(k), count: n });
            }
            let list = if leaves == 1 {
                self.push(8 + 8 * n, Kind::Lh(k, 0))?
            } else {
                let ri = self.push(8 + 4 * leaves, Kind::Ri(k))?;
                for leaf in 0..leaves {
                    self.push(8 + 8 * leaf_range(n, leaves, leaf).1, Kind::Lh(k, leaf as u32))?;
                }
                ri
            };
            let key = &mut self.plan.keys[k as usize];
            (key.subkey_list, key.leaves) = (list, leaves as u32);
        }
        let key = &mut self.plan.keys[k as usize];
        (key.max_value_name, key.max_data) = (max_value_name, max_data);
        Ok(())
    }

    /// The descriptor number for key `k`, listing an `sk` cell the first time a descriptor
    /// is seen.
    fn security(&mut self, k: u32) -> Result<u32, WriteError> {
        let bytes: &'a [u8] = match &self.plan.keys[k as usize].image.security {
            Some(sd) => sd,
            None => self.default_sd,
        };
        let ptr = (bytes.as_ptr() as usize, bytes.len());
        let index = match self.by_ptr.get(&ptr) {
            Some(&i) => i,
            None => {
                let i = match self.by_bytes.get(bytes) {
                    Some(&i) => i,
                    None => {
                        check_sd(bytes).map_err(|reason| WriteError::Security { key: self.path(k), reason })?;
                        let i = self.plan.sks.len() as u32;
                        let cell = self.push(4 + SK_FIXED + bytes.len(), Kind::Sk(i))?;
                        self.plan.sks.push(Sk { bytes, refs: 0, cell });
                        self.by_bytes.insert(bytes, i);
                        i
                    }
                };
                self.by_ptr.insert(ptr, i);
                i
            }
        };
        self.plan.sks[index as usize].refs += 1;
        Ok(index)
    }
}
