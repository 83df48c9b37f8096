//! hivebox-proto's integration tests.
//!
//! * `roundtrip`: every request, reply and push encodes, frames and decodes back to itself,
//!   alone and pipelined through arbitrary chunking.
//! * `framing`: `FrameBuffer` on split and oversized frames.
//! * `errors`: truncated, unknown, invalid, trailing and forged input, and what the errors say.
//! * `garbage`: random and damaged bytes never panic a decoder.

mod common;
mod errors;
mod framing;
mod garbage;
mod roundtrip;
