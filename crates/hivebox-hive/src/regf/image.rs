//! [`Hive::to_image`]: the whole key tree as a [`KeyImage`], checked on the way.

use super::base::utf16_lossy_until_nul;
use super::error::RegfError;
use super::hive::Hive;
use super::key::KeyNode;
use super::list::Subkeys;
use hivebox_core::{KeyImage, Value, ValueType};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::Arc;

impl Hive {
    /// The whole key tree, from the root key (named as the hive names it) down.
    ///
    /// Besides what every record read checks (including that each subkey's parent field
    /// names the key that lists it, and that no list names the root), this checks that each
    /// key's subkeys are sorted by upcased name with no duplicates, as Windows requires.
    /// Together these make the keys a tree: every key is reached once. Values and data are
    /// charged against the hive's size, so records shared between keys (which Windows never
    /// writes) cannot make the image larger than the hive could hold. Security descriptors
    /// are shared: one `Arc` per `sk` cell.
    pub fn to_image(&self) -> Result<KeyImage, RegfError> {
        let mut cx = ImageCx {
            security: HashMap::new(),
            last_sk: None,
            budget: self.bins_len(),
            max_keys: self.bins_len() / 80,
        };
        cx.tree(self.root()?)
    }
}

/// The smallest cells of a key (`nk` with its size field) and of a value (`vk`).
const NK_MIN: usize = 80;
const VK_MIN: usize = 24;

struct ImageCx {
    security: HashMap<u32, Arc<[u8]>>,
    /// The last descriptor looked up (neighbouring keys usually share one).
    last_sk: Option<(u32, Arc<[u8]>)>,
    /// Bytes of the hive the records read so far must at least occupy, left to spend.
    budget: usize,
    /// No list can hold more keys than fit in the hive.
    max_keys: usize,
}

impl ImageCx {
    #[inline]
    fn charge(&mut self, bytes: usize, at: u64, record: &'static str) -> Result<(), RegfError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(RegfError::corrupt(
                at,
                record,
                "the key tree holds more than the hive has room for (records shared between keys?)",
            )),
        }
    }

    fn security(&mut self, k: &KeyNode<'_>) -> Result<Option<Arc<[u8]>>, RegfError> {
        let Some(off) = k.security_cell() else { return Ok(None) };
        if let Some((last, sd)) = &self.last_sk
            && *last == off
        {
            return Ok(Some(Arc::clone(sd)));
        }
        let sd = match self.security.get(&off) {
            Some(sd) => Arc::clone(sd),
            None => {
                let sd: Arc<[u8]> = Arc::from(k.security()?.unwrap_or_default());
                self.security.insert(off, Arc::clone(&sd));
                sd
            }
        };
        self.last_sk = Some((off, Arc::clone(&sd)));
        Ok(Some(sd))
    }

    /// Walks the tree with an explicit stack of keys (at most [`super::MAX_DEPTH`] deep), so a
    /// deep hive cannot overflow the thread's stack.
    fn tree(&mut self, root: KeyNode<'_>) -> Result<KeyImage, RegfError> {
        let mut stack = vec![self.frame(root)?];
        while let Some(top) = stack.last_mut() {
            match top.subkeys.next() {
                Some(child) => {
                    let child = child?;
                    if let Some(prev) = top.prev {
                        check_order(&top.key, &prev, &child)?;
                    }
                    top.prev = Some(child);
                    let frame = self.frame(child)?;
                    stack.push(frame);
                }
                None => {
                    // `top` is the last frame, so there is one to pop.
                    let Some(done) = stack.pop() else { break };
                    match stack.last_mut() {
                        Some(parent) => parent.image.subkeys.push(done.image),
                        None => return Ok(done.image),
                    }
                }
            }
        }
        Err(RegfError::corrupt(0, "base block", "internal error: the key walk lost its root"))
    }

    /// A key's image without its subkeys, and the iterator that will supply them.
    fn frame<'a>(&mut self, k: KeyNode<'a>) -> Result<Frame<'a>, RegfError> {
        // Charged by stored sizes: decoding can make a name longer than the cell it came from.
        self.charge(NK_MIN + k.raw_name().0.len(), k.file_offset(), "nk")?;
        let name = k.name();
        let class = match k.class_cell()? {
            Some((_, raw)) => {
                self.charge(raw.len(), k.file_offset(), "nk")?;
                Some(utf16_lossy_until_nul(raw))
            }
            None => None,
        };
        let security = self.security(&k)?;
        let list = k.values()?;
        let mut values = Vec::with_capacity(list.size_hint().1.unwrap_or(0));
        for v in list {
            let v = v?;
            let data = v.data()?;
            let stored = if v.is_inline() { 0 } else { data.len() };
            self.charge(VK_MIN + v.raw_name().0.len() + stored, v.file_offset(), "vk")?;
            values.push((v.name().into_owned(), Value::new(ValueType(v.ty()), data.into_owned())));
        }
        let subkeys = k.subkeys()?;
        let image = KeyImage {
            name: name.into_owned(),
            class,
            last_write: k.last_write(),
            link: k.is_link(),
            system_only: 0,
            security,
            values,
            subkeys: Vec::with_capacity((k.subkey_count() as usize).min(self.max_keys)),
        };
        Ok(Frame { key: k, image, subkeys, prev: None })
    }
}

/// A key being imaged: its subkeys are added as the walk comes back up from each.
struct Frame<'a> {
    key: KeyNode<'a>,
    image: KeyImage,
    subkeys: Subkeys<'a>,
    prev: Option<KeyNode<'a>>,
}

/// UTF-16 code units of a stored name.
struct Units<'a> {
    raw: &'a [u8],
    wide: bool,
}

impl Iterator for Units<'_> {
    type Item = u16;

    #[inline]
    fn next(&mut self) -> Option<u16> {
        if self.wide {
            let (u, rest) = self.raw.split_first_chunk::<2>()?;
            self.raw = rest;
            Some(u16::from_le_bytes(*u))
        } else {
            let (&b, rest) = self.raw.split_first()?;
            self.raw = rest;
            Some(u16::from(b))
        }
    }
}

/// Upcases one UTF-16 code unit, as `RtlUpcaseUnicodeChar` does: a one-to-one mapping
/// (characters whose uppercase is longer, and surrogates, stay as they are).
#[inline]
pub(crate) fn upcase_unit(u: u16) -> u16 {
    if u < 0x80 {
        return u16::from((u as u8).to_ascii_uppercase());
    }
    let Some(c) = char::from_u32(u32::from(u)) else { return u };
    let mut up = c.to_uppercase();
    match (up.next(), up.next()) {
        (Some(x), None) => u16::try_from(u32::from(x)).unwrap_or(u),
        _ => u,
    }
}

/// Compares two stored names the way the Configuration Manager orders subkey lists: upcased
/// UTF-16 code units, compared as numbers.
pub(crate) fn cmp_names(a: (&[u8], bool), b: (&[u8], bool)) -> Ordering {
    if a.1 && b.1 && a.0.is_ascii() && b.0.is_ascii() {
        // Both plain ASCII, one byte per character: the common case.
        let ua = a.0.iter().map(u8::to_ascii_uppercase);
        return ua.cmp(b.0.iter().map(u8::to_ascii_uppercase));
    }
    let ua = Units { raw: a.0, wide: !a.1 }.map(upcase_unit);
    let ub = Units { raw: b.0, wide: !b.1 }.map(upcase_unit);
    ua.cmp(ub)
}

/// Like [`cmp_names`], but upcasing ASCII letters only.
fn cmp_names_ascii(a: (&[u8], bool), b: (&[u8], bool)) -> Ordering {
    let up = |u: u16| if u < 0x80 { upcase_unit(u) } else { u };
    Units { raw: a.0, wide: !a.1 }.map(up).cmp(Units { raw: b.0, wide: !b.1 }.map(up))
}

/// Requires `prev` < `next`. Windows' upcase table is older than Rust's Unicode data (it does
/// not upcase Georgian or Cherokee lowercase letters, for instance), so an order that holds
/// when only ASCII letters are upcased is accepted too: only an order that no table could
/// explain is an error.
fn check_order(parent: &KeyNode<'_>, prev: &KeyNode<'_>, next: &KeyNode<'_>) -> Result<(), RegfError> {
    let (a, b) = (prev.raw_name(), next.raw_name());
    let why = match cmp_names(a, b) {
        Ordering::Less => return Ok(()),
        _ if cmp_names_ascii(a, b) == Ordering::Less => return Ok(()),
        Ordering::Equal => "two subkeys have the same name".to_owned(),
        Ordering::Greater => {
            format!("subkey {:?} is listed after {:?}: the list is not sorted", next.name(), prev.name())
        }
    };
    Err(RegfError::corrupt(
        parent.file_offset(),
        "nk",
        format!("{why} (cells {:#x} and {:#x})", prev.offset(), next.offset()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wide(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    #[test]
    fn names_compare_case_insensitively_by_code_unit() {
        assert_eq!(cmp_names((b"abc", true), (b"ABC", true)), Ordering::Equal);
        assert_eq!(cmp_names((b"abc", true), (&wide("ABD"), false)), Ordering::Less);
        assert_eq!(cmp_names((&wide("привет"), false), (&wide("ПРИВЕТ"), false)), Ordering::Equal);
        // Latin-1 0xE9 is U+00E9, which upcases to U+00C9.
        assert_eq!(cmp_names((&[0xE9], true), (&wide("É"), false)), Ordering::Equal);
        // A surrogate (U+D83D...) sorts below U+E000: code units, not code points.
        assert_eq!(cmp_names((&wide("😀"), false), (&wide("\u{E000}"), false)), Ordering::Less);
        assert_eq!(cmp_names((b"a", true), (b"aa", true)), Ordering::Less);
        assert_eq!(upcase_unit(u16::from(b'_')), u16::from(b'_'));
        assert_eq!(upcase_unit(0xDF), 0xDF); // ß has no one-character uppercase
        // Georgian 'ა' (U+10D0) upcases to U+1C90 in current Unicode, not in Windows' table:
        // an order Windows made with its table must not be refused.
        assert_eq!(cmp_names((&wide("\u{10D0}"), false), (&wide("\u{1800}"), false)), Ordering::Greater);
        assert_eq!(cmp_names_ascii((&wide("\u{10D0}"), false), (&wide("\u{1800}"), false)), Ordering::Less);
    }
}
