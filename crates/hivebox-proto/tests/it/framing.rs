//! `FrameBuffer`: frames come out whole and in order however the bytes arrive; an oversized
//! length is refused as soon as it is known.

use crate::common::*;
use hivebox_proto::{DecodeError, FrameBuffer, MAX_FRAME, Request, frame};
use proptest::collection::vec;
use proptest::prelude::*;

fn frames_of(bodies: &[Vec<u8>]) -> Vec<u8> {
    let mut stream = Vec::new();
    for b in bodies {
        frame(&mut stream, |out| out.extend_from_slice(b));
    }
    stream
}

#[test]
fn nothing_comes_out_before_a_whole_frame() {
    let mut fb = FrameBuffer::new();
    assert_eq!(fb.next_frame(), Ok(None));
    let stream = frames_of(&[b"hello".to_vec()]);
    for (i, b) in stream.iter().enumerate() {
        assert_eq!(fb.next_frame(), Ok(None), "after {i} bytes");
        assert_eq!(fb.partial(), i);
        fb.extend(&[*b]);
    }
    assert_eq!(fb.next_frame(), Ok(Some(&b"hello"[..])));
    assert_eq!(fb.next_frame(), Ok(None));
    assert_eq!(fb.partial(), 0);
}

#[test]
fn empty_frames_are_frames() {
    let stream = frames_of(&[vec![], vec![7], vec![]]);
    assert_eq!(stream.len(), 13);
    assert_eq!(split(&stream, &[1]), vec![vec![], vec![7], vec![]]);
}

#[test]
fn a_length_past_the_limit_fails_once_its_four_bytes_are_in() {
    let len = (MAX_FRAME as u32 + 1).to_le_bytes();
    let mut fb = FrameBuffer::new();
    for b in &len[..3] {
        fb.extend(&[*b]);
        assert_eq!(fb.next_frame(), Ok(None));
    }
    fb.extend(&len[3..]);
    assert_eq!(fb.next_frame(), Err(DecodeError::TooLong { len: MAX_FRAME + 1 }));
    // And it stays refused: the stream cannot be resynchronised.
    fb.extend(&[0; 16]);
    assert_eq!(fb.next_frame(), Err(DecodeError::TooLong { len: MAX_FRAME + 1 }));

    let mut fb = FrameBuffer::new();
    fb.extend(&u32::MAX.to_le_bytes());
    let e = fb.next_frame().unwrap_err();
    assert_eq!(e, DecodeError::TooLong { len: u32::MAX as usize });
    assert_eq!(e.to_string(), format!("frame length 4294967295 exceeds the limit of {MAX_FRAME} bytes"));
}

#[test]
fn a_frame_of_exactly_the_limit_is_accepted() {
    let mut fb = FrameBuffer::new();
    fb.extend(&(MAX_FRAME as u32).to_le_bytes());
    assert_eq!(fb.next_frame(), Ok(None));
    fb.extend(&vec![0xAB; MAX_FRAME - 1]);
    assert_eq!(fb.next_frame(), Ok(None));
    fb.extend(&[0xAB]);
    let f = fb.next_frame().unwrap().unwrap();
    assert_eq!(f.len(), MAX_FRAME);
    assert!(f.iter().all(|&b| b == 0xAB));
}

/// Reading through `spare` / `filled`, as a socket reader does, short reads included.
#[test]
fn spare_and_filled_read_a_stream() {
    let bodies: Vec<Vec<u8>> =
        (0..200u32).map(|i| request_body(i + 1, &Request::EnumKey { handle: 7, index: i })).collect();
    let stream = frames_of(&bodies);
    let mut fb = FrameBuffer::new();
    let mut got = Vec::new();
    let mut pos = 0;
    let mut step = 0;
    while pos < stream.len() {
        step += 1;
        let want = 1 + step % 37;
        let n = (step % 5).min(stream.len() - pos); // sometimes a read of 0 bytes
        let spare = fb.spare(want);
        assert!(spare.len() >= want);
        let n = n.min(spare.len());
        spare[..n].copy_from_slice(&stream[pos..pos + n]);
        let len = spare.len();
        fb.filled(len, n);
        pos += n;
        while let Some(f) = fb.next_frame().unwrap() {
            got.push(f.to_vec());
        }
    }
    assert_eq!(got, bodies);
    assert_eq!(fb.partial(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn frames_come_out_whole_and_in_order(
        bodies in vec(vec(any::<u8>(), 0..300), 0..20),
        chunks in vec(1..700usize, 1..20),
    ) {
        let stream = frames_of(&bodies);
        prop_assert_eq!(&split(&stream, &[1]), &bodies);
        prop_assert_eq!(&split(&stream, &chunks), &bodies);
    }

    /// The oversized length is refused at the frame it starts, after the frames before it.
    #[test]
    fn an_oversized_length_after_good_frames(
        bodies in vec(vec(any::<u8>(), 0..50), 0..5),
        len in (MAX_FRAME as u32 + 1)..=u32::MAX,
        chunk in 1..16usize,
    ) {
        let mut stream = frames_of(&bodies);
        stream.extend_from_slice(&len.to_le_bytes());
        let mut fb = FrameBuffer::new();
        let mut got = Vec::new();
        let mut err = None;
        for c in stream.chunks(chunk) {
            fb.extend(c);
            loop {
                match fb.next_frame() {
                    Ok(Some(f)) => got.push(f.to_vec()),
                    Ok(None) => break,
                    Err(e) => {
                        err = Some(e);
                        break;
                    }
                }
            }
            if err.is_some() {
                break;
            }
        }
        prop_assert_eq!(got, bodies);
        prop_assert_eq!(err, Some(DecodeError::TooLong { len: len as usize }));
    }
}
