//! `registry.wal`: the write-ahead log of mutations since the snapshot.
//!
//! ```text
//! header (24 bytes)
//! 0   magic        "HBXWAL01"
//! 8   version      u32 = 1
//! 12  checksum     u32: CRC-32 of bytes 16..24
//! 16  generation   u64: equals the snapshot's generation while the log continues it
//! records, from byte 24, back to back
//! +0  length       u32: payload bytes (never 0)
//! +4  checksum     u32: CRC-32 of the payload
//! +8  payload      codec::encode_mutation
//! ```
//!
//! Recovery reads records until the end of the file. A record that is incomplete, fails its
//! checksum or claims zero length is a *torn tail* (the one write in flight when the process
//! or machine stopped) only if no valid record starts anywhere after it; then it is cut off.
//! Otherwise the log is corrupt in the middle, which recovery reports and never skips.

use crate::codec;
use hivebox_core::Mutation;

const MAGIC: &[u8; 8] = b"HBXWAL01";
const VERSION: u32 = 1;
const OFF_VERSION: usize = 8;
const OFF_CHECKSUM: usize = 12;
pub(crate) const OFF_GENERATION: usize = 16;
/// Header size; the first record starts here.
pub(crate) const HEADER_LEN: usize = 24;
/// Record header size: length and checksum.
pub(crate) const RECORD_HEADER_LEN: usize = 8;

/// The header of a log continuing the snapshot of `generation`.
pub(crate) fn header(generation: u64) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    h[..OFF_VERSION].copy_from_slice(MAGIC);
    h[OFF_VERSION..OFF_CHECKSUM].copy_from_slice(&VERSION.to_le_bytes());
    h[OFF_GENERATION..].copy_from_slice(&generation.to_le_bytes());
    let crc = crc32fast::hash(&h[OFF_GENERATION..]);
    h[OFF_CHECKSUM..OFF_GENERATION].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What the first bytes of a log file say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// Shorter than a header: a crash while the log was being reset. It holds no records.
    Torn,
    /// A log continuing the snapshot of this generation.
    Valid(u64),
}

/// Parses the log header; `Err((offset, reason))` if it is not one.
pub(crate) fn parse_header(bytes: &[u8]) -> Result<Header, (u64, String)> {
    let Some(h) = bytes.get(..HEADER_LEN) else {
        return Ok(Header::Torn);
    };
    if &h[..OFF_VERSION] != MAGIC {
        return Err((0, "bad magic: not a hivebox log".into()));
    }
    let version = le_u32(h, OFF_VERSION);
    if version != VERSION {
        return Err((OFF_VERSION as u64, format!("unsupported log version {version}")));
    }
    let stored = le_u32(h, OFF_CHECKSUM);
    let computed = crc32fast::hash(&h[OFF_GENERATION..]);
    if stored != computed {
        return Err((OFF_CHECKSUM as u64, format!("header checksum {stored:08x} does not match {computed:08x}")));
    }
    let mut g = [0; 8];
    g.copy_from_slice(&h[OFF_GENERATION..]);
    Ok(Header::Valid(u64::from_le_bytes(g)))
}

fn le_u32(b: &[u8], at: usize) -> u32 {
    let mut a = [0; 4];
    a.copy_from_slice(&b[at..at + 4]);
    u32::from_le_bytes(a)
}

/// Frames a payload as a record.
pub(crate) fn record(payload: &[u8]) -> Option<Vec<u8>> {
    let len = u32::try_from(payload.len()).ok()?;
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Some(out)
}

/// The record at `pos`: its payload and the offset after it, or why there is none.
fn record_at(bytes: &[u8], pos: usize) -> Result<(&[u8], usize), String> {
    let left = bytes.len().saturating_sub(pos);
    if left < RECORD_HEADER_LEN {
        return Err(format!("incomplete record header ({left} of {RECORD_HEADER_LEN} bytes)"));
    }
    let len = le_u32(bytes, pos) as usize;
    if len == 0 {
        return Err("record claims an empty payload".into());
    }
    let body = left - RECORD_HEADER_LEN;
    if len > body {
        return Err(format!("record claims {len} payload bytes but only {body} remain"));
    }
    let start = pos + RECORD_HEADER_LEN;
    let payload = &bytes[start..start + len];
    let stored = le_u32(bytes, pos + 4);
    let computed = crc32fast::hash(payload);
    if stored != computed {
        return Err(format!("record checksum {stored:08x} does not match its payload ({computed:08x})"));
    }
    Ok((payload, start + len))
}

/// The first offset after `from` where a complete record with a good checksum and a
/// decodable payload starts.
fn next_valid_record(bytes: &[u8], from: usize) -> Option<usize> {
    (from..bytes.len()).find(|&at| {
        // The payload's first byte must be a known tag: skips nearly every offset cheaply.
        bytes.get(at + RECORD_HEADER_LEN).is_some_and(|t| codec::is_mutation_tag(*t))
            && record_at(bytes, at).is_ok_and(|(p, _)| codec::decode_mutation(p).is_ok())
    })
}

/// A log that cannot be recovered: the offset and why.
#[derive(Debug)]
pub(crate) struct Corruption {
    pub offset: u64,
    pub reason: String,
}

/// The outcome of replaying a log.
#[derive(Debug)]
pub(crate) struct Replayed {
    /// Records replayed.
    pub records: usize,
    /// End of the last good record: the log's length once a torn tail is cut off.
    pub end: u64,
    /// The torn tail that was found (its offset and why it is not a record).
    pub torn: Option<(u64, String)>,
}

/// Feeds every record after the header to `apply`, in order.
pub(crate) fn replay(
    bytes: &[u8],
    mut apply: impl FnMut(&Mutation) -> Result<(), String>,
) -> Result<Replayed, Corruption> {
    let mut pos = HEADER_LEN.min(bytes.len());
    let mut records = 0;
    while pos < bytes.len() {
        match record_at(bytes, pos) {
            Ok((payload, next)) => {
                let m = codec::decode_mutation(payload)
                    .map_err(|e| Corruption { offset: pos as u64, reason: format!("record does not decode: {e}") })?;
                apply(&m)
                    .map_err(|e| Corruption { offset: pos as u64, reason: format!("record does not replay: {e}") })?;
                records += 1;
                pos = next;
            }
            Err(why) => {
                if let Some(later) = next_valid_record(bytes, pos + 1) {
                    return Err(Corruption {
                        offset: pos as u64,
                        reason: format!("{why}, yet a valid record follows at byte {later}"),
                    });
                }
                return Ok(Replayed { records, end: pos as u64, torn: Some((pos as u64, why)) });
            }
        }
    }
    Ok(Replayed { records, end: pos as u64, torn: None })
}
