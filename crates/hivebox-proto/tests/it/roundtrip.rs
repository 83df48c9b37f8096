//! Every message encodes, splits into its frame and decodes back to itself.

use crate::common::*;
use hivebox_proto::{DecodeError, Reply, Request, ServerMessage};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use std::collections::BTreeSet;

/// The operation or tag byte of an encoded frame (after length and id).
fn code(frame: &[u8]) -> u8 {
    frame[8]
}

/// The codes a decoder knows: everything it does not answer `Unknown` for.
fn known(decode: impl Fn(&[u8]) -> Result<(), DecodeError>, id: u32) -> BTreeSet<u8> {
    (0..=255u8)
        .filter(|&c| {
            let mut b = id.to_le_bytes().to_vec();
            b.push(c);
            !matches!(decode(&b), Err(DecodeError::Unknown { .. }))
        })
        .collect()
}

fn sampled_codes<S: Strategy>(strategy: S, encode: impl Fn(&S::Value) -> Vec<u8>) -> BTreeSet<u8> {
    let mut runner = TestRunner::deterministic();
    (0..3000).map(|_| code(&encode(&strategy.new_tree(&mut runner).unwrap().current()))).collect()
}

#[test]
fn generators_and_examples_cover_every_operation_and_tag() {
    let ops = known(|b| Request::decode(b).map(drop), 1);
    assert_eq!(ops.len(), 38, "{ops:02x?}");
    let fixed: BTreeSet<u8> = every_request().iter().map(|r| request_body(1, r)[4]).collect();
    assert_eq!(fixed, ops, "every_request has one of each");
    let sampled = sampled_codes(request(), |r| {
        let mut out = Vec::new();
        r.encode(1, &mut out);
        out
    });
    assert_eq!(sampled, ops, "the request generator makes every kind");

    let tags = known(|b| ServerMessage::decode(b).map(drop), 1);
    let pushes = known(|b| ServerMessage::decode(b).map(drop), 0);
    assert_eq!(tags.len(), 16, "{tags:02x?}");
    assert_eq!(pushes.len(), 4, "{pushes:02x?}");
    assert!(tags.is_disjoint(&pushes), "reply and push tags are distinct");
    let all: BTreeSet<u8> = tags.union(&pushes).copied().collect();
    let fixed: BTreeSet<u8> = every_server_message().iter().map(|m| server_body(m)[4]).collect();
    assert_eq!(fixed, all, "every_server_message has one of each");
    let sampled = sampled_codes(server_message(), |m| {
        let mut out = Vec::new();
        encode_server(m, &mut out);
        out
    });
    assert_eq!(sampled, all, "the server message generator makes every kind");
}

#[test]
fn every_fixed_example_round_trips() {
    for (id, r) in (1..).zip(every_request()) {
        assert_eq!(Request::decode(&request_body(id, &r)), Ok((id, r.clone())), "{r:?}");
    }
    for m in every_server_message() {
        assert_eq!(ServerMessage::decode(&server_body(&m)), Ok(m.clone()), "{m:?}");
    }
}

#[test]
fn pushes_carry_id_zero() {
    for m in every_server_message() {
        let b = server_body(&m);
        assert_eq!(b[..4] == [0; 4], matches!(m, ServerMessage::Push(_)), "{m:?}");
    }
}

#[test]
fn a_request_id_of_zero_is_refused() {
    let b = request_body(0, &Request::Ping);
    assert!(
        matches!(Request::decode(&b), Err(DecodeError::Invalid { what: "request id", at: 0, .. })),
        "{:?}",
        Request::decode(&b)
    );
}

#[test]
fn a_key_image_nested_512_levels_below_its_root_round_trips() {
    let mut image = hivebox_core::KeyImage { name: "bottom".into(), ..Default::default() };
    for i in 0..512 {
        image = hivebox_core::KeyImage { name: format!("k{i}"), subkeys: vec![image], ..Default::default() };
    }
    let r = Request::RestoreKey { handle: 1, image };
    assert_eq!(Request::decode(&request_body(5, &r)), Ok((5, r.clone())));
    let m = ServerMessage::Reply(
        6,
        Reply::Image(match r {
            Request::RestoreKey { image, .. } => image,
            _ => unreachable!(),
        }),
    );
    assert_eq!(ServerMessage::decode(&server_body(&m)), Ok(m));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(id in 1..=u32::MAX, r in request()) {
        let mut out = Vec::new();
        r.encode(id, &mut out);
        let frames = split(&out, &[out.len()]);
        prop_assert_eq!(frames.len(), 1);
        prop_assert_eq!(Request::decode(&frames[0]), Ok((id, r)));
    }

    #[test]
    fn replies_round_trip(id in 1..=u32::MAX, r in reply()) {
        let mut out = Vec::new();
        r.encode(id, &mut out);
        let frames = split(&out, &[out.len()]);
        prop_assert_eq!(frames.len(), 1);
        prop_assert_eq!(ServerMessage::decode(&frames[0]), Ok(ServerMessage::Reply(id, r)));
    }

    #[test]
    fn pushes_round_trip(p in push()) {
        let mut out = Vec::new();
        p.encode(&mut out);
        let frames = split(&out, &[out.len()]);
        prop_assert_eq!(frames.len(), 1);
        prop_assert_eq!(ServerMessage::decode(&frames[0]), Ok(ServerMessage::Push(p)));
    }

    /// A pipelined stream of requests, arriving in arbitrary pieces, comes out whole and in order.
    #[test]
    fn a_request_stream_round_trips_through_any_chunking(
        reqs in vec((1..=u32::MAX, request()), 0..12),
        chunks in vec(1..64usize, 1..16),
    ) {
        let mut stream = Vec::new();
        for (id, r) in &reqs {
            r.encode(*id, &mut stream);
        }
        for chunking in [&[1][..], &chunks[..]] {
            let frames = split(&stream, chunking);
            let decoded: Vec<_> = frames.iter().map(|f| Request::decode(f).unwrap()).collect();
            prop_assert_eq!(&decoded, &reqs);
        }
    }

    /// The daemon's side: replies and pushes interleaved.
    #[test]
    fn a_server_stream_round_trips_through_any_chunking(
        msgs in vec(server_message(), 0..12),
        chunks in vec(1..64usize, 1..16),
    ) {
        let mut stream = Vec::new();
        for m in &msgs {
            encode_server(m, &mut stream);
        }
        for chunking in [&[1][..], &chunks[..]] {
            let frames = split(&stream, chunking);
            let decoded: Vec<_> = frames.iter().map(|f| ServerMessage::decode(f).unwrap()).collect();
            prop_assert_eq!(&decoded, &msgs);
        }
    }
}
