//! Security descriptors, as far as the registry needs them: building self-relative
//! descriptors, and reading from a key's descriptor which rights only SYSTEM is granted.
//!
//! hivebox's access check is reduced (see `ARCHITECTURE.md`): a caller is SYSTEM or not. A
//! key's descriptor is kept as the bytes a regf `sk` record holds; the rights its DACL grants
//! to `S-1-5-18` (LocalSystem) and to no other SID are the rights reserved to SYSTEM.

use crate::access::map_generic;

/// `S-1-5-18`, LocalSystem.
pub const SID_SYSTEM: &str = "S-1-5-18";
/// `S-1-5-32-544`, BUILTIN\Administrators.
pub const SID_ADMINISTRATORS: &str = "S-1-5-32-544";
/// `S-1-1-0`, Everyone.
pub const SID_EVERYONE: &str = "S-1-1-0";

const SE_DACL_PRESENT: u16 = 0x0004;
const SE_SELF_RELATIVE: u16 = 0x8000;
const ACCESS_ALLOWED_ACE_TYPE: u8 = 0;
const ACCESS_DENIED_ACE_TYPE: u8 = 1;
const CONTAINER_INHERIT_ACE: u8 = 0x2;

/// Encodes a SID string (`S-1-5-32-544`) in binary form; `None` if it does not parse.
pub fn sid_bytes(sid: &str) -> Option<Vec<u8>> {
    let mut parts = sid.strip_prefix("S-")?.split('-');
    let revision: u8 = parts.next()?.parse().ok()?;
    let authority: u64 = parts.next()?.parse().ok()?;
    let subs: Vec<u32> = parts.map(|p| p.parse().ok()).collect::<Option<_>>()?;
    if subs.len() > 15 || authority >= 1 << 48 {
        return None;
    }
    let mut out = vec![revision, subs.len() as u8];
    out.extend_from_slice(&authority.to_be_bytes()[2..]);
    for s in subs {
        out.extend_from_slice(&s.to_le_bytes());
    }
    Some(out)
}

/// `S-1-5-18` as a binary SID: revision 1, one sub-authority, authority 5, sub-authority 18.
const SYSTEM_SID_BYTES: [u8; 12] = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];

/// The binary SID at the start of `b` (without formatting it: descriptors are checked for
/// every key of a loaded hive).
fn sid_at(b: &[u8]) -> Option<&[u8]> {
    let count = *b.get(1)? as usize;
    b.get(..8 + 4 * count)
}

/// A self-relative descriptor owned by Administrators (group SYSTEM) whose DACL allows each
/// `(sid, mask)`, inherited by subkeys. Unparseable SIDs are left out.
pub fn descriptor(allow: &[(&str, u32)]) -> Vec<u8> {
    let aces: Vec<Vec<u8>> = allow
        .iter()
        .filter_map(|(sid, mask)| {
            let sid = sid_bytes(sid)?;
            let size = 8 + sid.len();
            let mut ace = vec![ACCESS_ALLOWED_ACE_TYPE, CONTAINER_INHERIT_ACE];
            ace.extend_from_slice(&(size as u16).to_le_bytes());
            ace.extend_from_slice(&mask.to_le_bytes());
            ace.extend_from_slice(&sid);
            Some(ace)
        })
        .collect();
    let acl_size = 8 + aces.iter().map(Vec::len).sum::<usize>();
    let owner = sid_bytes(SID_ADMINISTRATORS).unwrap_or_default();
    let group = sid_bytes(SID_SYSTEM).unwrap_or_default();
    // Windows' own layout: header, DACL, owner, group.
    let dacl_at = 20;
    let owner_at = dacl_at + acl_size;
    let group_at = owner_at + owner.len();
    let mut out = vec![1, 0];
    out.extend_from_slice(&(SE_SELF_RELATIVE | SE_DACL_PRESENT).to_le_bytes());
    for off in [owner_at, group_at, 0, dacl_at] {
        out.extend_from_slice(&(off as u32).to_le_bytes());
    }
    out.extend_from_slice(&[2, 0]);
    out.extend_from_slice(&(acl_size as u16).to_le_bytes());
    out.extend_from_slice(&(aces.len() as u16).to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    for ace in aces {
        out.extend_from_slice(&ace);
    }
    out.extend_from_slice(&owner);
    out.extend_from_slice(&group);
    out
}

/// The descriptor a hive root without one gets (and that its keys inherit): SYSTEM and
/// Administrators full control, Everyone read.
pub fn default_descriptor() -> Vec<u8> {
    use crate::access::{KEY_ALL_ACCESS, KEY_READ};
    descriptor(&[(SID_SYSTEM, KEY_ALL_ACCESS), (SID_ADMINISTRATORS, KEY_ALL_ACCESS), (SID_EVERYONE, KEY_READ)])
}

/// The rights a descriptor's DACL allows SYSTEM and allows no other SID (denials of other
/// SIDs count as reserving the right too). 0 for a descriptor without a DACL or one that does
/// not parse: the reduced check then reserves nothing.
pub fn system_only_rights(sd: &[u8]) -> u32 {
    let Some(control) = sd.get(2..4).map(|b| u16::from_le_bytes([b[0], b[1]])) else { return 0 };
    if control & SE_DACL_PRESENT == 0 || control & SE_SELF_RELATIVE == 0 {
        return 0;
    }
    let Some(dacl_at) = sd.get(16..20).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize) else {
        return 0;
    };
    if dacl_at == 0 {
        return 0;
    }
    let Some(header) = sd.get(dacl_at..dacl_at + 8) else { return 0 };
    let count = u16::from_le_bytes([header[4], header[5]]) as usize;
    let (mut system, mut others, mut denied_others) = (0u32, 0u32, 0u32);
    let mut at = dacl_at + 8;
    for _ in 0..count {
        let Some(ace) = sd.get(at..at + 8) else { return 0 };
        let size = u16::from_le_bytes([ace[2], ace[3]]) as usize;
        if size < 8 {
            return 0;
        }
        let mask = map_generic(u32::from_le_bytes([ace[4], ace[5], ace[6], ace[7]]));
        let Some(sid) = sd.get(at + 8..).and_then(sid_at) else { return 0 };
        match (ace[0], sid == SYSTEM_SID_BYTES) {
            (ACCESS_ALLOWED_ACE_TYPE, true) => system |= mask,
            (ACCESS_ALLOWED_ACE_TYPE, false) => others |= mask,
            (ACCESS_DENIED_ACE_TYPE, false) => denied_others |= mask,
            _ => {}
        }
        at += size;
    }
    system & (!others | denied_others)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::{KEY_ALL_ACCESS, KEY_READ};

    #[test]
    fn sids_are_measured_and_system_recognised() {
        for sid in [SID_SYSTEM, SID_ADMINISTRATORS, SID_EVERYONE, "S-1-5-21-1-2-3-1001"] {
            let mut b = sid_bytes(sid).unwrap();
            assert_eq!(sid_at(&b), Some(&b[..]), "{sid}");
            assert_eq!(sid == SID_SYSTEM, b == SYSTEM_SID_BYTES, "{sid}");
            b.push(0);
            assert_eq!(sid_at(&b).map(<[u8]>::len), Some(b.len() - 1), "{sid}: the SID's own length");
        }
        assert_eq!(sid_bytes("S-1-x"), None);
    }

    #[test]
    fn reserved_rights_come_from_the_dacl() {
        let enum_sd = descriptor(&[(SID_SYSTEM, KEY_ALL_ACCESS), (SID_EVERYONE, KEY_READ)]);
        assert_eq!(system_only_rights(&enum_sd), KEY_ALL_ACCESS & !KEY_READ);
        let open = descriptor(&[(SID_SYSTEM, KEY_ALL_ACCESS), (SID_ADMINISTRATORS, KEY_ALL_ACCESS)]);
        assert_eq!(system_only_rights(&open), 0);
        assert_eq!(system_only_rights(&[1, 2, 3]), 0);
        assert_eq!(system_only_rights(&[]), 0);
    }
}
