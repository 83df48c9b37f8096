//! Arbitrary and damaged bytes: the decoders return an error or a message, never panic; and
//! what decodes is canonical (it encodes back to the very same bytes).

use crate::common::*;
use hivebox_proto::{FrameBuffer, Request, ServerMessage};
use proptest::collection::vec;
use proptest::prelude::*;

fn check_request(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok((id, r)) = Request::decode(body) {
        prop_assert_eq!(request_body(id, &r), body);
    }
    Ok(())
}

fn check_server(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = ServerMessage::decode(body) {
        prop_assert_eq!(server_body(&m), body);
    }
    Ok(())
}

/// A body with a few bytes overwritten, some inserted or removed.
fn damaged(body: Vec<u8>, edits: Vec<(usize, u8, u8)>) -> Vec<u8> {
    let mut b = body;
    for (at, kind, byte) in edits {
        let at = if b.is_empty() { 0 } else { at % (b.len() + 1) };
        match kind % 4 {
            0 | 1 if at < b.len() => b[at] = byte,
            2 => b.insert(at, byte),
            3 if at < b.len() => {
                b.remove(at);
            }
            _ => b.push(byte),
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(b in vec(any::<u8>(), 0..256)) {
        check_request(&b)?;
        check_server(&b)?;
        let mut fb = FrameBuffer::new();
        fb.extend(&b);
        while let Ok(Some(f)) = fb.next_frame() {
            let f = f.to_vec();
            check_request(&f)?;
            check_server(&f)?;
        }
    }

    /// Random bytes behind a plausible id and a real operation or tag byte get further.
    #[test]
    fn random_fields_never_panic(id in 0..3u32, code in any::<u8>(), rest in vec(any::<u8>(), 0..128)) {
        let mut b = id.to_le_bytes().to_vec();
        b.push(code);
        b.extend_from_slice(&rest);
        check_request(&b)?;
        check_server(&b)?;
    }

    #[test]
    fn damaged_requests_never_panic(
        id in 1..=u32::MAX,
        r in request(),
        edits in vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        check_request(&damaged(request_body(id, &r), edits))?;
    }

    #[test]
    fn damaged_server_messages_never_panic(
        m in server_message(),
        edits in vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..4),
    ) {
        check_server(&damaged(server_body(&m), edits))?;
    }
}
