//! hivebox's wire protocol: what a client and the daemon (`hivebox daemon`) say to each
//! other over the daemon's Unix socket, as values and as bytes. No I/O: [`FrameBuffer`]
//! splits a byte stream into frames, [`Request::decode`] / [`Reply::decode`] read them,
//! `encode` writes them. The byte layout is `docs/protocol.md`.
//!
//! A frame is a little-endian `u32` length followed by that many bytes of body. A client's
//! body is `id: u32, op: u8, fields`; the daemon's is `id: u32, tag: u8, fields`, where `id`
//! repeats the request's (replies may be pipelined: many requests in flight, answered in the
//! order they were sent) and `id` 0 marks a message the daemon pushes on its own (a change
//! notification, an event, a decision to make).
//!
//! What this crate does not do: authenticate anyone. The daemon learns who a client is from
//! the kernel (`SO_PEERCRED`, pidfd, cgroup); nothing in a message says who sends it.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod message;
mod wire;

pub use message::{Decided, Identity, Push, Reply, Request, ServerMessage, Verdict};

/// Protocol version this crate speaks (sent in [`Request::Hello`]).
/// Version 2 added the box requests (`BoxCreate` ... `BoxCommit`, operations `0x50`-`0x56`).
pub const VERSION: u16 = 3;
/// The four bytes that open a client's hello.
pub const MAGIC: [u8; 4] = *b"HVBX";
/// Largest frame body either side accepts (16 MiB: a saved key's image can be large).
pub const MAX_FRAME: usize = 16 << 20;
/// The first of the four predefined keys (`HKEY_*`), valid as a parent in opens and creates.
/// The daemon's handles are at least 2^32, so they never collide with these.
pub const PREDEFINED_BASE: u64 = 0x8000_0000;
/// `HKEY_CLASSES_ROOT` (`\REGISTRY\MACHINE\SOFTWARE\Classes`).
pub const HKEY_CLASSES_ROOT: u64 = 0x8000_0000;
/// `HKEY_CURRENT_USER` (`\REGISTRY\USER\<the caller's SID>`).
pub const HKEY_CURRENT_USER: u64 = 0x8000_0001;
/// `HKEY_LOCAL_MACHINE` (`\REGISTRY\MACHINE`).
pub const HKEY_LOCAL_MACHINE: u64 = 0x8000_0002;
/// `HKEY_USERS` (`\REGISTRY\USER`).
pub const HKEY_USERS: u64 = 0x8000_0003;

/// The native path a predefined key stands for, given the caller's SID.
pub fn predefined_path(key: u64, sid: &str) -> Option<String> {
    Some(match key {
        HKEY_CLASSES_ROOT => r"\REGISTRY\MACHINE\SOFTWARE\Classes".into(),
        HKEY_CURRENT_USER => format!(r"\REGISTRY\USER\{sid}"),
        HKEY_LOCAL_MACHINE => r"\REGISTRY\MACHINE".into(),
        HKEY_USERS => r"\REGISTRY\USER".into(),
        _ => return None,
    })
}

/// A frame or message that cannot be decoded. Offsets count from the start of the body (the
/// byte after the length).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The length field announces more than [`MAX_FRAME`].
    #[error("frame length {len} exceeds the limit of {MAX_FRAME} bytes")]
    TooLong {
        /// The announced length.
        len: usize,
    },
    /// The body ended inside a field.
    #[error("message ends inside {what} at byte {at}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Where it started.
        at: usize,
    },
    /// A field holds a value it cannot hold.
    #[error("bad {what} at byte {at}: {why}")]
    Invalid {
        /// The field.
        what: &'static str,
        /// Where it starts.
        at: usize,
        /// What is wrong with it.
        why: String,
    },
    /// The operation or tag byte names no message.
    #[error("unknown {kind} 0x{code:02x} at byte 4")]
    Unknown {
        /// `operation` or `reply tag`.
        kind: &'static str,
        /// The byte.
        code: u8,
    },
    /// Bytes are left after the message's last field.
    #[error("{len} unexpected bytes after the message, at byte {at}")]
    Trailing {
        /// Where they start.
        at: usize,
        /// How many.
        len: usize,
    },
}

/// Appends one frame (length, then the body `body` writes) to `out`.
pub fn frame(out: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    body(out);
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
}

/// Splits a byte stream into frame bodies.
///
/// The storage is zeroed once when it grows and reused after that, so reading into
/// [`FrameBuffer::spare`] costs no clearing per read.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    /// Initialized storage; bytes `start..end` are received and not yet handed out.
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameBuffer {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Room to read into: `n` free bytes after what is buffered. Call
    /// [`FrameBuffer::filled`] with how many were read.
    pub fn spare(&mut self, n: usize) -> &mut [u8] {
        self.compact();
        if self.buf.len() < self.end + n {
            self.buf.resize(self.end + n, 0);
        }
        &mut self.buf[self.end..self.end + n]
    }

    /// Keeps `n` of the `spare` bytes last handed out by [`FrameBuffer::spare`].
    pub fn filled(&mut self, spare: usize, n: usize) {
        self.end += n.min(spare);
    }

    /// Appends bytes (for callers that read elsewhere).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.spare(bytes.len()).copy_from_slice(bytes);
        self.end += bytes.len();
    }

    /// Drops the frames already handed out once they are all that is buffered or past half
    /// the storage, so that the buffer holds about one frame however long the stream.
    fn compact(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > self.buf.len() / 2 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
    }

    /// The next complete frame's body, if one is buffered. A length past [`MAX_FRAME`] is an
    /// error at once, before its body arrives.
    pub fn next_frame(&mut self) -> Result<Option<&[u8]>, DecodeError> {
        let avail = &self.buf[self.start..self.end];
        if avail.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_le_bytes([avail[0], avail[1], avail[2], avail[3]]) as usize;
        if len > MAX_FRAME {
            return Err(DecodeError::TooLong { len });
        }
        if avail.len() < 4 + len {
            return Ok(None);
        }
        let body = self.start + 4..self.start + 4 + len;
        self.start = body.end;
        Ok(Some(&self.buf[body]))
    }

    /// Bytes received that do not yet make a whole frame.
    pub fn partial(&self) -> usize {
        self.end - self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Frames handed out are dropped from the buffer whether bytes come through `extend` or
    /// `spare`: a long-lived connection does not grow it.
    #[test]
    fn the_buffer_does_not_grow_with_the_stream() {
        let mut one = Vec::new();
        frame(&mut one, |b| b.extend_from_slice(&[7; 100]));
        let mut fb = FrameBuffer::new();
        for i in 0..10_000 {
            // Half a frame at a time, so a partial frame is often buffered behind consumed ones.
            if i < 5_000 {
                fb.extend(&one[..50]);
                fb.extend(&one[50..]);
            } else {
                let spare = fb.spare(50);
                spare[..50].copy_from_slice(&one[..50]);
                fb.filled(50, 50);
                fb.extend(&one[50..]);
            }
            assert_eq!(fb.next_frame().unwrap().map(<[u8]>::len), Some(100));
            assert!(fb.end <= 4 * one.len(), "{} bytes buffered after {i} frames", fb.end);
            assert!(fb.buf.len() <= 4 * one.len(), "{} bytes of storage after {i} frames", fb.buf.len());
        }
    }
}
