//! What records are made of: names as a hive stores them (Latin-1 "compressed" or UTF-16LE
//! bytes, the per-unit upcase the Configuration Manager orders and hashes them with), and
//! security descriptors (the default one for keys that carry none, and the well-formedness
//! check a descriptor must pass before it is written).

// The reader's per-unit upcase (`RtlUpcaseUnicodeChar`'s one-to-one mapping): what is
// written sorted is then what the reader accepts as sorted.
use super::super::image::upcase_unit;
use std::cmp::Ordering;

/// How a name is stored.
#[derive(Debug, Clone, Copy)]
pub(super) struct Stored {
    /// Bytes in the record: one per character when compressed, else two per UTF-16 unit.
    pub len: usize,
    /// Every character is at most U+00FF, so the name is stored one byte per character
    /// (`KEY_COMP_NAME` / `VALUE_COMP_NAME`).
    pub compressed: bool,
    /// Length in UTF-16 units (the nk `Max*Len` fields count these, as bytes: `2 * units`).
    pub units: usize,
}

/// How `name` is stored.
pub(super) fn stored(name: &str) -> Stored {
    if name.is_ascii() {
        return Stored { len: name.len(), compressed: true, units: name.len() };
    }
    let mut units = 0;
    let mut compressed = true;
    for c in name.chars() {
        units += c.len_utf16();
        compressed &= (c as u32) <= 0xFF;
    }
    Stored { len: if compressed { units } else { 2 * units }, compressed, units }
}

/// Writes `name` as [`stored`] describes, into `out` (exactly `stored(name).len` bytes long).
pub(super) fn write_name(out: &mut [u8], name: &str, compressed: bool) {
    if name.is_ascii() {
        out.copy_from_slice(name.as_bytes());
    } else if compressed {
        // Every character is at most U+00FF (that is what `compressed` means), so `as u8`
        // keeps it whole.
        for (slot, c) in out.iter_mut().zip(name.chars()) {
            *slot = c as u8;
        }
    } else {
        utf16le(out, name);
    }
}

/// Writes `s` as UTF-16LE into `out` (exactly `2 * units` bytes long).
pub(super) fn utf16le(out: &mut [u8], s: &str) {
    for (slot, unit) in out.chunks_exact_mut(2).zip(s.encode_utf16()) {
        slot.copy_from_slice(&unit.to_le_bytes());
    }
}

/// Orders two names as a subkey index does: upcased one UTF-16 unit at a time, compared as
/// numbers (so a surrogate pair sorts below U+E000..U+FFFF, unlike code-point order).
pub(super) fn cmp_names(a: &str, b: &str) -> Ordering {
    if a.is_ascii() && b.is_ascii() {
        let (x, y) = (a.as_bytes(), b.as_bytes());
        for (p, q) in x.iter().zip(y) {
            match p.to_ascii_uppercase().cmp(&q.to_ascii_uppercase()) {
                Ordering::Equal => {}
                other => return other,
            }
        }
        return x.len().cmp(&y.len());
    }
    a.encode_utf16().map(upcase_unit).cmp(b.encode_utf16().map(upcase_unit))
}

/// The `lh` hash of a name: `hash = hash * 37 + upcase(unit)` over its UTF-16 units.
pub(super) fn lh_hash(name: &str) -> u32 {
    if name.is_ascii() {
        return name.bytes().fold(0u32, |h, b| h.wrapping_mul(37).wrapping_add(b.to_ascii_uppercase() as u32));
    }
    name.encode_utf16().fold(0u32, |h, u| h.wrapping_mul(37).wrapping_add(upcase_unit(u) as u32))
}

/// `SE_SELF_RELATIVE`.
const SELF_RELATIVE: u16 = 0x8000;
/// `SE_DACL_PRESENT`.
const DACL_PRESENT: u16 = 0x0004;
/// `SE_SACL_PRESENT`.
const SACL_PRESENT: u16 = 0x0010;
/// The descriptor written for a key whose image carries none: owner Administrators, group
/// SYSTEM, and a DACL granting SYSTEM and Administrators `KEY_ALL_ACCESS` and Everyone
/// `KEY_READ`, each inherited by subkeys. Self-relative, 120 bytes.
pub fn default_security_descriptor() -> Vec<u8> {
    hivebox_core::security::default_descriptor()
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Checks that `sd` is a well-formed self-relative security descriptor, as Windows checks
/// the `sk` records of a hive it loads: revision 1, self-relative, and every owner, group
/// and ACL it points at lying inside it and well-formed.
pub(super) fn check_sd(sd: &[u8]) -> Result<(), &'static str> {
    if sd.len() < 20 {
        return Err("shorter than a descriptor header (20 bytes)");
    }
    if sd[0] != 1 {
        return Err("revision is not 1");
    }
    let control = u16_at(sd, 2).unwrap_or(0);
    if control & SELF_RELATIVE == 0 {
        return Err("not self-relative");
    }
    let field = |at| u32_at(sd, at).unwrap_or(0) as usize;
    let (owner, group, sacl, dacl) = (field(4), field(8), field(12), field(16));
    for sid in [owner, group] {
        if sid != 0 {
            check_sid(sd, sid).ok_or("owner or group SID out of bounds or malformed")?;
        }
    }
    for (present, acl) in [(SACL_PRESENT, sacl), (DACL_PRESENT, dacl)] {
        if control & present != 0 && acl != 0 {
            check_acl(sd, acl).ok_or("ACL out of bounds or malformed")?;
        }
    }
    Ok(())
}

fn check_sid(sd: &[u8], at: usize) -> Option<()> {
    let head = sd.get(at..at + 8)?;
    let count = head[1] as usize;
    (head[0] == 1 && count <= 15 && at + 8 + 4 * count <= sd.len()).then_some(())
}

fn check_acl(sd: &[u8], at: usize) -> Option<()> {
    let head = sd.get(at..at + 8)?;
    let size = u16_at(head, 2)? as usize;
    let count = u16_at(head, 4)? as usize;
    let acl = sd.get(at..at + size)?;
    if !matches!(head[0], 2..=4) || size < 8 {
        return None;
    }
    let mut pos = 8;
    for _ in 0..count {
        let ace_size = u16_at(acl, pos + 2)? as usize;
        if ace_size < 4 || pos + ace_size > size {
            return None;
        }
        pos += ace_size;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_forms() {
        let s = stored("Run");
        assert!(s.compressed && s.len == 3 && s.units == 3);
        let s = stored("Ärger");
        assert!(s.compressed && s.len == 5 && s.units == 5);
        let mut out = [0u8; 5];
        write_name(&mut out, "Ärger", true);
        assert_eq!(out, [0xC4, b'r', b'g', b'e', b'r']);
        let s = stored("日本😀");
        assert!(!s.compressed && s.units == 4 && s.len == 8);
        let mut out = [0u8; 8];
        write_name(&mut out, "日本😀", false);
        assert_eq!(out, [0xE5, 0x65, 0x2C, 0x67, 0x3D, 0xD8, 0x00, 0xDE]);
    }

    #[test]
    fn order_and_hash() {
        assert_eq!(cmp_names("run", "RUN"), Ordering::Equal);
        assert_eq!(cmp_names("Run", "RunOnce"), Ordering::Less);
        // Upcased first: '_' (0x5F) sorts after 'B' (0x42), though before 'b' (0x62).
        assert_eq!(cmp_names("a_", "ab"), Ordering::Greater);
        assert_eq!(cmp_names("ärger", "ÄRGER"), Ordering::Equal);
        // U+1F600 is D83D DE00 in UTF-16: below U+FF21 unit by unit, above it by code point.
        assert_eq!(cmp_names("😀", "\u{FF21}"), Ordering::Less);
        assert_eq!(lh_hash("a"), 'A' as u32);
        assert_eq!(lh_hash("ab"), 37 * 'A' as u32 + 'B' as u32);
        assert_eq!(lh_hash("äb"), lh_hash("ÄB"));
        assert_eq!(lh_hash("😀"), 0xD83D * 37 + 0xDE00); // surrogates are not upcased
        assert_eq!(lh_hash("ÿ"), 0x178);
    }

    #[test]
    fn default_descriptor_is_well_formed() {
        let sd = default_security_descriptor();
        assert_eq!(sd.len(), 120);
        assert_eq!(check_sd(&sd), Ok(()));
        assert_eq!(u16_at(&sd, 22), Some(72)); // DACL size
        assert_eq!(u16_at(&sd, 24), Some(3)); // ACE count
    }

    #[test]
    fn malformed_descriptors_are_refused() {
        let sd = default_security_descriptor();
        assert!(check_sd(&sd[..19]).is_err());
        assert!(check_sd(&sd[..100]).is_err()); // the group SID is cut off
        let mut bad = sd.clone();
        bad[2] = 0;
        bad[3] = 0; // absolute, not self-relative
        assert!(check_sd(&bad).is_err());
        let mut bad = sd.clone();
        bad[22] = 200; // DACL longer than the descriptor
        assert!(check_sd(&bad).is_err());
        let mut bad = sd;
        bad[30] = 0; // first ACE size 0
        assert!(check_sd(&bad).is_err());
    }
}
