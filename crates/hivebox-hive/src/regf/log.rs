//! Transaction log replay: repairing a dirty hive from its `.LOG`/`.LOG1`/`.LOG2` files as
//! the Windows kernel does at hive load. The algorithm is in `docs/regf.md`.

use super::base::{
    BASE_BLOCK_LEN, BaseBlock, FILE_TYPE_LOG_NEW, FILE_TYPE_LOG_OLD, FILE_TYPE_LOG_VERY_OLD, HBIN_ALIGN,
    LOG_BASE_BLOCK_LEN, patch, u32_at, u64_at,
};
use super::error::RegfError;
use super::marvin::{LOG_SEED, marvin32};

/// The two transaction log formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// A dirty vector (`DIRT` bitmap of 512-byte pages) and the dirty pages (before Windows 8.1).
    Old,
    /// A sequence of `HvLE` entries, each a set of dirty pages under one sequence number.
    New,
}

/// One transaction log that was considered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogInfo {
    /// The log's path (from [`super::Hive::open`]) or `log #i` (its index in the slice given).
    pub name: String,
    /// Its format, if it is a usable log at all.
    pub format: Option<LogFormat>,
    /// The sequence number in its base block.
    pub sequence: Option<u32>,
    /// Whether anything of it was applied.
    pub applied: bool,
    /// `HvLE` entries applied from it.
    pub entries: usize,
    /// Dirty pages written from it.
    pub pages: usize,
    /// Why it was not used, or where its replay stopped.
    pub note: Option<String>,
}

/// What happened to the hive's transaction logs when it was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogRecovery {
    /// The base block said the hive is dirty (sequence numbers differ, or a bad checksum).
    pub dirty: bool,
    /// The base block's checksum was wrong (its fields then come from a log, if one applies).
    pub bad_checksum: bool,
    /// Every log considered, in the order given (`LOG1`, `LOG2`, `LOG` for [`super::Hive::open`]).
    pub logs: Vec<LogInfo>,
    /// The format of the logs applied.
    pub format: Option<LogFormat>,
    /// `HvLE` entries applied, over all logs.
    pub entries: usize,
    /// Dirty pages written into the hive, over all logs.
    pub pages: usize,
    /// The sequence number the base block has after replay.
    pub sequence: Option<u32>,
    /// A log was applied: the hive is as Windows would have repaired it.
    pub recovered: bool,
    /// Problems met: a dirty hive with no usable log, bins cut short, logs ignored.
    pub problems: Vec<String>,
}

struct Candidate<'a> {
    idx: usize,
    data: &'a [u8],
    base: BaseBlock,
}

/// A log is usable if its first sector is a base block with a good checksum, equal sequence
/// numbers (it was completely written) and a log file type.
fn classify(log: &[u8]) -> Result<(LogFormat, BaseBlock), String> {
    let base = BaseBlock::parse(log).map_err(|e| format!("not a transaction log: {e}"))?;
    if !base.checksum_ok {
        return Err("its base block checksum is wrong".into());
    }
    if base.primary_seq != base.secondary_seq {
        return Err(format!("it was not completely written (sequence {}/{})", base.primary_seq, base.secondary_seq));
    }
    match base.file_type {
        FILE_TYPE_LOG_NEW => Ok((LogFormat::New, base)),
        FILE_TYPE_LOG_OLD | FILE_TYPE_LOG_VERY_OLD => Ok((LogFormat::Old, base)),
        t => Err(format!("file type {t} is not a transaction log")),
    }
}

/// Replays `logs` into `bytes` (a dirty hive file at least 4096 bytes long).
pub(crate) fn replay(
    bytes: &mut Vec<u8>,
    logs: &[&[u8]],
    names: &[String],
    rec: &mut LogRecovery,
) -> Result<(), RegfError> {
    let primary = BaseBlock::parse(bytes)?;
    // Every byte of the repaired hive comes from the primary or from a log.
    let limit = logs.iter().fold(bytes.len(), |n, l| n.saturating_add(l.len()));
    let (mut new, mut old) = (Vec::new(), Vec::new());
    for (idx, log) in logs.iter().enumerate() {
        let name = names.get(idx).cloned().unwrap_or_else(|| format!("log #{idx}"));
        let mut info = LogInfo { name, format: None, sequence: None, applied: false, entries: 0, pages: 0, note: None };
        match classify(log) {
            Ok((format, base)) => {
                info.format = Some(format);
                info.sequence = Some(base.primary_seq);
                let c = Candidate { idx, data: log, base };
                if format == LogFormat::New { new.push(c) } else { old.push(c) }
            }
            Err(why) => info.note = Some(why),
        }
        rec.logs.push(info);
    }
    if !new.is_empty() {
        replay_new(bytes, &primary, &new, limit, rec);
    }
    if !rec.recovered && !old.is_empty() {
        replay_old(bytes, &primary, &old, limit, rec);
    }
    if !rec.recovered {
        rec.problems.push(if logs.is_empty() {
            "the hive is dirty and has no transaction log".to_owned()
        } else {
            "the hive is dirty and none of its transaction logs applies".to_owned()
        });
    }
    Ok(())
}

/// Whether sequence number `a` comes before `b` (they wrap around).
fn before(a: u32, b: u32) -> bool {
    (b.wrapping_sub(a) as i32) > 0
}

/// The base block the repaired hive gets: the primary's if its checksum is good (Windows
/// keeps it), else the log's first sector.
fn base_template(bytes: &[u8], primary: &BaseBlock, log: &[u8]) -> Vec<u8> {
    let mut t = vec![0u8; BASE_BLOCK_LEN];
    if primary.checksum_ok {
        t.copy_from_slice(&bytes[..BASE_BLOCK_LEN]);
    } else {
        t[..LOG_BASE_BLOCK_LEN].copy_from_slice(&log[..LOG_BASE_BLOCK_LEN]);
    }
    t
}

fn replay_new(bytes: &mut Vec<u8>, primary: &BaseBlock, logs: &[Candidate<'_>], limit: usize, rec: &mut LogRecovery) {
    let mut order: Vec<&Candidate<'_>> = Vec::new();
    if primary.checksum_ok {
        // Logs whose entries start at or after the hive's secondary sequence number, oldest
        // first; older ones were already reconciled into the hive.
        for c in logs {
            if before(c.base.primary_seq, primary.secondary_seq) {
                rec.logs[c.idx].note = Some(format!(
                    "its sequence number {} is older than the hive's {}: already in the hive",
                    c.base.primary_seq, primary.secondary_seq
                ));
            } else {
                order.push(c);
            }
        }
        order.sort_by_key(|c| c.base.primary_seq.wrapping_sub(primary.secondary_seq));
    } else if let Some(newest) =
        logs.iter().reduce(|a, b| if before(a.base.primary_seq, b.base.primary_seq) { b } else { a })
    {
        // With the base block itself damaged, Windows replays the newest log only.
        order.push(newest);
    }
    let Some(first) = order.first() else { return };
    let mut block = base_template(bytes, primary, first.data);
    let mut flags = u32_at(&block, 144);
    let mut bins = u32_at(&block, 40);
    let mut last: Option<u32> = None;
    for c in order {
        if let Some(l) = last
            && c.base.primary_seq != l.wrapping_add(1)
        {
            rec.logs[c.idx].note = Some(format!(
                "its first sequence number {} does not follow {l}, the last one applied",
                c.base.primary_seq
            ));
            break;
        }
        let (mut pos, mut expect) = (LOG_BASE_BLOCK_LEN, c.base.primary_seq);
        let info = &mut rec.logs[c.idx];
        while pos < c.data.len() {
            let entry = match Entry::parse(c.data, pos, expect, limit) {
                Ok(e) => e,
                Err(why) => {
                    if let Some(why) = why {
                        info.note = Some(format!("replay stopped at log offset {pos:#x}: {why}"));
                    }
                    break;
                }
            };
            let pages = entry.apply(bytes);
            info.entries += 1;
            info.pages += pages;
            info.applied = true;
            rec.entries += 1;
            rec.pages += pages;
            flags = (flags & !1) | (entry.flags & 1);
            bins = entry.bins;
            last = Some(expect);
            expect = expect.wrapping_add(1);
            pos += entry.size;
        }
        if last.is_none() {
            // Nothing of the first log applied: the later ones cannot follow it.
            break;
        }
    }
    if let Some(seq) = last {
        patch(&mut block, seq, bins, Some(flags));
        bytes[..BASE_BLOCK_LEN].copy_from_slice(&block);
        rec.format = Some(LogFormat::New);
        rec.sequence = Some(seq);
        rec.recovered = true;
    }
}

/// One checked `HvLE` entry.
struct Entry<'a> {
    size: usize,
    flags: u32,
    bins: u32,
    refs: &'a [u8],
    pages: &'a [u8],
}

impl<'a> Entry<'a> {
    /// The entry at `pos`, checked in full (header, both hashes, every page reference) before
    /// anything of it is applied. `Err(None)` means there is simply no further entry.
    fn parse(log: &'a [u8], pos: usize, expect: u32, limit: usize) -> Result<Self, Option<String>> {
        let head = log.get(pos..pos + 40).ok_or(None)?;
        if &head[..4] != b"HvLE" {
            return Err(None);
        }
        let size = u32_at(head, 4) as usize;
        let entry = log
            .get(pos..pos.saturating_add(size))
            .filter(|_| size >= LOG_BASE_BLOCK_LEN && size.is_multiple_of(LOG_BASE_BLOCK_LEN))
            .ok_or_else(|| Some(format!("entry size {size:#x} is not a multiple of 512 within the log")))?;
        let seq = u32_at(head, 12);
        if seq != expect {
            return Err(Some(format!("sequence number {seq} where {expect} was expected")));
        }
        let bins = u32_at(head, 16);
        if bins == 0 || !(bins as usize).is_multiple_of(HBIN_ALIGN) || BASE_BLOCK_LEN + bins as usize > limit {
            return Err(Some(format!("hive bins data size {bins:#x} is not plausible")));
        }
        let count = u32_at(head, 20) as usize;
        let refs_end = count.checked_mul(8).and_then(|n| n.checked_add(40)).filter(|&e| count > 0 && e <= size);
        let refs_end = refs_end.ok_or_else(|| Some(format!("{count} dirty pages do not fit in the entry")))?;
        if marvin32(&entry[40..], LOG_SEED) != u64_at(head, 24) {
            return Err(Some("the hash of its pages is wrong".into()));
        }
        if marvin32(&entry[..32], LOG_SEED) != u64_at(head, 32) {
            return Err(Some("the hash of its header is wrong".into()));
        }
        let refs = &entry[40..refs_end];
        let pages = &entry[refs_end..];
        let mut total = 0u64;
        for r in refs.chunks_exact(8) {
            let (off, len) = (u64::from(u32_at(r, 0)), u64::from(u32_at(r, 4)));
            total += len;
            if off + len > u64::from(bins) || total > pages.len() as u64 {
                return Err(Some(format!(
                    "dirty page at {off:#x} ({len:#x} bytes) lies outside the hive or the entry"
                )));
            }
        }
        Ok(Entry { size, flags: u32_at(head, 8), bins, refs, pages })
    }

    /// Writes the entry's pages into the hive (grown to the entry's size if need be); returns
    /// how many there were.
    fn apply(&self, bytes: &mut Vec<u8>) -> usize {
        let need = BASE_BLOCK_LEN + self.bins as usize;
        if bytes.len() < need {
            bytes.resize(need, 0);
        }
        let mut src = 0usize;
        for r in self.refs.chunks_exact(8) {
            let (off, len) = (u32_at(r, 0) as usize, u32_at(r, 4) as usize);
            let dst = BASE_BLOCK_LEN + off;
            // `parse` checked both ranges.
            if let (Some(to), Some(from)) = (bytes.get_mut(dst..dst + len), self.pages.get(src..src + len)) {
                to.copy_from_slice(from);
            }
            src += len;
        }
        self.refs.len() / 8
    }
}

fn replay_old(bytes: &mut Vec<u8>, primary: &BaseBlock, logs: &[Candidate<'_>], limit: usize, rec: &mut LogRecovery) {
    // A log applies if it is at least as recent as the hive (by the base block's time, or
    // the first bin's copy of it when the base block is damaged); the most recent one wins.
    let hive_time = if primary.checksum_ok { primary.last_written } else { u64_at(bytes, BASE_BLOCK_LEN + 20) };
    let mut best: Option<&Candidate<'_>> = None;
    for c in logs {
        if c.base.last_written < hive_time {
            rec.logs[c.idx].note = Some("it is older than the hive".into());
        } else if best.is_none_or(|b| c.base.last_written > b.base.last_written) {
            best = Some(c);
        }
    }
    let Some(c) = best else { return };
    let bins = c.base.hive_bins_size as usize;
    let bitmap_len = bins / 4096;
    let bitmap = match c.data.get(LOG_BASE_BLOCK_LEN..LOG_BASE_BLOCK_LEN + 4 + bitmap_len) {
        Some(b)
            if &b[..4] == b"DIRT" && bins > 0 && bins.is_multiple_of(HBIN_ALIGN) && BASE_BLOCK_LEN + bins <= limit =>
        {
            &b[4..]
        }
        _ => {
            rec.logs[c.idx].note = Some("its dirty vector is missing or damaged".into());
            return;
        }
    };
    let start = (LOG_BASE_BLOCK_LEN + 4 + bitmap_len).next_multiple_of(512);
    let dirty = bitmap.iter().map(|b| b.count_ones() as usize).sum::<usize>();
    if start + dirty * 512 > c.data.len() {
        rec.logs[c.idx].note = Some(format!("it is truncated: {dirty} dirty pages do not fit"));
        return;
    }
    if bytes.len() < BASE_BLOCK_LEN + bins {
        bytes.resize(BASE_BLOCK_LEN + bins, 0);
    }
    let mut next = start;
    for (i, byte) in bitmap.iter().enumerate() {
        for bit in 0..8 {
            if byte & (1 << bit) != 0 {
                let dst = BASE_BLOCK_LEN + (i * 8 + bit) * 512;
                if let (Some(to), Some(from)) = (bytes.get_mut(dst..dst + 512), c.data.get(next..next + 512)) {
                    to.copy_from_slice(from);
                }
                next += 512;
            }
        }
    }
    let mut block = base_template(bytes, primary, c.data);
    patch(&mut block, c.base.primary_seq, bins as u32, None);
    bytes[..BASE_BLOCK_LEN].copy_from_slice(&block);
    let info = &mut rec.logs[c.idx];
    info.applied = true;
    info.pages = dirty;
    rec.pages = dirty;
    rec.format = Some(LogFormat::Old);
    rec.sequence = Some(c.base.primary_seq);
    rec.recovered = true;
}
