//! The daemon protocol's decoders on arbitrary bytes: the input arrives in two chunks (its
//! first byte says where to split the rest, in 255ths) through a `FrameBuffer`, and every frame is decoded both as a
//! request and as a daemon message. Nothing may panic; whatever decodes must encode back to
//! the very same bytes (the encoding is canonical) and decode again to an equal message.

#![no_main]

use hivebox_proto::{FrameBuffer, Request, ServerMessage};
use libfuzzer_sys::fuzz_target;

fn body(frame: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(frame[..4].try_into().expect("a frame has a length")) as usize;
    assert_eq!(len, frame.len() - 4);
    &frame[4..]
}

fn check(frame: &[u8]) {
    if let Ok((id, r)) = Request::decode(frame) {
        let mut out = Vec::new();
        r.encode(id, &mut out);
        assert_eq!(body(&out), frame, "{r:?} re-encodes differently");
        assert_eq!(Request::decode(body(&out)).expect("an encoded request decodes"), (id, r));
    }
    if let Ok(m) = ServerMessage::decode(frame) {
        let mut out = Vec::new();
        match &m {
            ServerMessage::Reply(id, r) => r.encode(*id, &mut out),
            ServerMessage::Push(p) => p.encode(&mut out),
        }
        assert_eq!(body(&out), frame, "{m:?} re-encodes differently");
        assert_eq!(ServerMessage::decode(body(&out)).expect("an encoded message decodes"), m);
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, data)) = data.split_first() else { return };
    let (a, b) = data.split_at(data.len() * split as usize / 255);
    let mut fb = FrameBuffer::new();
    for chunk in [a, b] {
        fb.extend(chunk);
        while let Ok(Some(frame)) = fb.next_frame() {
            check(frame);
        }
    }
});
