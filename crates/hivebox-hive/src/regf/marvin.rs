//! Marvin32, the keyed hash that guards new-format (`HvLE`) log entries.

/// The seed Windows uses for log entries.
pub(crate) const LOG_SEED: u64 = 0x82EF_4D88_7A4E_55C5;

#[inline]
fn mix(lo: &mut u32, hi: &mut u32) {
    *hi ^= *lo;
    *lo = lo.rotate_left(20).wrapping_add(*hi);
    *hi = hi.rotate_left(9) ^ *lo;
    *lo = lo.rotate_left(27).wrapping_add(*hi);
    *hi = hi.rotate_left(19);
}

/// Marvin32 of `data` under `seed`: the 64-bit result (high state word first).
pub(crate) fn marvin32(data: &[u8], seed: u64) -> u64 {
    let mut lo = seed as u32;
    let mut hi = (seed >> 32) as u32;
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        lo = lo.wrapping_add(u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        mix(&mut lo, &mut hi);
    }
    // The tail (0 to 3 bytes) little-endian, then a 0x80 byte after it.
    let tail = words.remainder();
    let mut last = 0x80u32 << (8 * tail.len());
    for (i, &b) in tail.iter().enumerate() {
        last |= u32::from(b) << (8 * i);
    }
    lo = lo.wrapping_add(last);
    mix(&mut lo, &mut hi);
    mix(&mut lo, &mut hi);
    (u64::from(hi) << 32) | u64::from(lo)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_bytes_change_the_hash_and_lengths_are_distinguished() {
        let h0 = marvin32(b"", LOG_SEED);
        let h1 = marvin32(b"\0", LOG_SEED);
        let h4 = marvin32(b"\0\0\0\0", LOG_SEED);
        assert!(h0 != h1 && h1 != h4 && h0 != h4);
        assert_ne!(marvin32(b"abcde", LOG_SEED), marvin32(b"abcdf", LOG_SEED));
        assert_ne!(marvin32(b"abc", 1), marvin32(b"abc", 2));
    }
}
