//! Bad input: each failure names the field and the byte offset (from the start of the body),
//! and none of it panics or allocates what the frame could not hold.

use crate::common::*;
use hivebox_core::{KeyImage, Value, ValueType};
use hivebox_proto::{DecodeError, Reply, Request, ServerMessage};
use proptest::prelude::*;

/// The body of an `OpenKey` for `path`: id 1, parent at 5, path length at 13, path bytes at 17.
fn open_key(path: &[u8]) -> Vec<u8> {
    let mut b = vec![1, 0, 0, 0, 0x10];
    b.extend_from_slice(&0x8000_0002u64.to_le_bytes());
    b.extend_from_slice(&(path.len() as u32).to_le_bytes());
    b.extend_from_slice(path);
    b.extend_from_slice(&[0; 16]);
    b
}

/// Whether `e` is what a body cut short may fail with: the end inside a field, or a count that
/// the rest of the (short) body cannot hold.
fn is_truncation(e: &DecodeError) -> bool {
    match e {
        DecodeError::Truncated { .. } => true,
        DecodeError::Invalid { what, why, .. } => what.ends_with("count") && why.ends_with("exceeds the frame"),
        _ => false,
    }
}

#[test]
fn open_key_layout() {
    let r = Request::OpenKey { parent: 0x8000_0002, path: "abc".into(), options: 0, access: 0, txn: 0 };
    assert_eq!(request_body(1, &r), open_key(b"abc"));
    assert_eq!(Request::decode(&open_key(b"abc")), Ok((1, r)));
}

#[test]
fn every_proper_prefix_of_every_message_is_truncated() {
    for r in every_request() {
        let b = request_body(77, &r);
        for n in 0..b.len() {
            match Request::decode(&b[..n]) {
                Err(e) if is_truncation(&e) => {}
                other => panic!("{r:?} cut to {n} of {} bytes: {other:?}", b.len()),
            }
        }
    }
    for m in every_server_message() {
        let b = server_body(&m);
        for n in 0..b.len() {
            match ServerMessage::decode(&b[..n]) {
                Err(e) if is_truncation(&e) => {}
                other => panic!("{m:?} cut to {n} of {} bytes: {other:?}", b.len()),
            }
        }
    }
}

#[test]
fn truncation_names_the_field_and_where_it_starts() {
    let full = open_key(b"abc");
    let cases: &[(usize, &str, usize)] = &[
        (0, "request id", 0),
        (3, "request id", 0),
        (4, "operation", 4),
        (9, "parent handle", 5),
        (13, "key path", 13),
        (15, "key path", 13),
        (18, "key path", 13),
        (22, "options", 20),
        (30, "transaction", 28),
    ];
    for &(n, what, at) in cases {
        assert_eq!(Request::decode(&full[..n]), Err(DecodeError::Truncated { what, at }), "cut to {n}");
    }
    assert_eq!(Request::decode(&full[..18]).unwrap_err().to_string(), "message ends inside key path at byte 13");
    assert_eq!(Request::decode(&full[..30]).unwrap_err().to_string(), "message ends inside transaction at byte 28");

    let hello = request_body(1, &Request::Hello { version: 1 });
    for n in 5..9 {
        assert_eq!(Request::decode(&hello[..n]), Err(DecodeError::Truncated { what: "magic", at: 5 }), "cut to {n}");
    }
    assert_eq!(Request::decode(&hello[..10]), Err(DecodeError::Truncated { what: "version", at: 9 }));
}

#[test]
fn an_unknown_operation_or_tag() {
    for code in [0x00, 0x02, 0x0F, 0x1F, 0x26, 0x45, 0x80, 0xFF] {
        let e = Request::decode(&[1, 0, 0, 0, code, 0, 0]).unwrap_err();
        assert_eq!(e, DecodeError::Unknown { kind: "operation", code });
        assert_eq!(e.to_string(), format!("unknown operation 0x{code:02x} at byte 4"));
    }
    assert_eq!(
        ServerMessage::decode(&[9, 0, 0, 0, 0x80]),
        Err(DecodeError::Unknown { kind: "reply tag", code: 0x80 }),
        "push tags are not replies"
    );
    let e = ServerMessage::decode(&[0, 0, 0, 0, 0x01]).unwrap_err();
    assert_eq!(e, DecodeError::Unknown { kind: "push tag", code: 0x01 }, "reply tags are not pushes");
    assert_eq!(e.to_string(), "unknown push tag 0x01 at byte 4");
}

#[test]
fn a_path_that_is_not_utf8() {
    let e = Request::decode(&open_key(&[b'a', 0xFF, 0xFE])).unwrap_err();
    assert_eq!(e, DecodeError::Invalid { what: "key path", at: 13, why: "not UTF-8".into() });
    assert_eq!(e.to_string(), "bad key path at byte 13: not UTF-8");
    // A surrogate half encoded as UTF-8 (CESU) is not UTF-8 either.
    assert!(matches!(
        Request::decode(&open_key(&[0xED, 0xA0, 0x80])),
        Err(DecodeError::Invalid { what: "key path", at: 13, .. })
    ));
}

#[test]
fn booleans_options_and_enums_out_of_range() {
    let create = Request::CreateKey {
        parent: 0,
        path: "p".into(),
        class: None,
        options: 0,
        access: 0,
        txn: 0,
        all_levels: false,
    };
    let mut b = request_body(1, &create);
    let last = b.len() - 1;
    b[last] = 2;
    let e = Request::decode(&b).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Invalid { what: "all-levels flag", at: last, why: "2 is not a boolean (0 or 1)".into() }
    );
    assert_eq!(e.to_string(), format!("bad all-levels flag at byte {last}: 2 is not a boolean (0 or 1)"));

    // The option byte of the class: id, op, parent, path "p" (4 + 1) → byte 18.
    let mut b = request_body(1, &create);
    b[18] = 7;
    assert!(matches!(Request::decode(&b), Err(DecodeError::Invalid { what: "class", at: 18, .. })));

    let mut b = request_body(1, &Request::NotifyChangeKey { handle: 1, subtree: false, filter: 1 });
    b[13] = 0xFF;
    assert!(matches!(Request::decode(&b), Err(DecodeError::Invalid { what: "subtree flag", at: 13, .. })));

    let mut b = request_body(1, &Request::Decide { id: 1, verdict: hivebox_proto::Verdict::Allow, remember: false });
    b[13] = 2;
    let e = Request::decode(&b).unwrap_err();
    assert!(matches!(e, DecodeError::Invalid { what: "verdict", at: 13, .. }), "{e:?}");
    b[13] = 1;
    b[14] = 2;
    assert!(matches!(Request::decode(&b), Err(DecodeError::Invalid { what: "remember flag", at: 14, .. })));

    let mut b = request_body(1, &Request::Hello { version: 1 });
    b[8] = b'Y';
    let e = Request::decode(&b).unwrap_err();
    assert!(matches!(e, DecodeError::Invalid { what: "magic", at: 5, .. }), "{e:?}");
    assert!(e.to_string().starts_with("bad magic at byte 5: "), "{e}");

    for (m, at, what) in [
        (
            ServerMessage::Reply(
                1,
                Reply::Created { handle: 1, disposition: hivebox_core::Disposition::CreatedNewKey },
            ),
            13,
            "disposition",
        ),
        (
            ServerMessage::Push(hivebox_proto::Push::Decided { id: 1, outcome: hivebox_proto::Decided::Allowed }),
            13,
            "outcome",
        ),
    ] {
        for bad in [0, 3, 0xFF] {
            let mut b = server_body(&m);
            if bad == 0 && what == "outcome" {
                continue; // 0 is `Allowed`
            }
            b[at] = bad;
            let e = ServerMessage::decode(&b).unwrap_err();
            assert!(matches!(e, DecodeError::Invalid { what: w, at: a, .. } if w == what && a == at), "{e:?}");
        }
    }

    let mut b = server_body(&ServerMessage::Reply(
        1,
        Reply::Hello(hivebox_proto::Identity { box_name: Some("b".into()), ..Default::default() }),
    ));
    // id, tag, version, pid, uid, gid, sid "", image "" → the box's option byte at 27.
    b[27] = 2;
    assert!(matches!(ServerMessage::decode(&b), Err(DecodeError::Invalid { what: "box", at: 27, .. })));
}

#[test]
fn trailing_bytes() {
    let mut b = request_body(1, &Request::Ping);
    b.extend_from_slice(&[0, 0, 0]);
    let e = Request::decode(&b).unwrap_err();
    assert_eq!(e, DecodeError::Trailing { at: 5, len: 3 });
    assert_eq!(e.to_string(), "3 unexpected bytes after the message, at byte 5");

    let mut b = request_body(1, &Request::CloseKey { handle: 1 });
    b.push(0);
    assert_eq!(Request::decode(&b), Err(DecodeError::Trailing { at: 13, len: 1 }));

    let mut b = server_body(&ServerMessage::Reply(4, Reply::Handle(1)));
    b.push(0);
    assert_eq!(ServerMessage::decode(&b), Err(DecodeError::Trailing { at: 13, len: 1 }));
    let mut b = server_body(&ServerMessage::Push(hivebox_proto::Push::Event("x".into())));
    b.extend_from_slice(b"yz");
    assert_eq!(ServerMessage::decode(&b), Err(DecodeError::Trailing { at: 10, len: 2 }));
}

/// `RestoreKey` of an empty-named key without values or subkeys: the value count is at byte 32
/// (id 4, op 1, handle 8, name 4, class 1, time 8, link 1, system-only 4, security 1), the
/// subkey count at 36.
fn restore_empty() -> Vec<u8> {
    let b = request_body(1, &Request::RestoreKey { handle: 1, image: KeyImage::default() });
    assert_eq!(b.len(), 40);
    b
}

#[test]
fn forged_counts_fail_before_allocating() {
    let mut b = restore_empty();
    b[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
    let e = Request::decode(&b).unwrap_err();
    assert_eq!(
        e,
        DecodeError::Invalid { what: "value count", at: 32, why: "count 4294967295 exceeds the frame".into() }
    );
    assert_eq!(e.to_string(), "bad value count at byte 32: count 4294967295 exceeds the frame");

    let mut b = restore_empty();
    b[36..40].copy_from_slice(&0x4000_0000u32.to_le_bytes());
    b.extend_from_slice(&[0; 4096]);
    assert!(matches!(Request::decode(&b), Err(DecodeError::Invalid { what: "subkey count", at: 36, .. })));

    // A count the frame could just hold is read item by item and fails where the items end.
    let mut b = restore_empty();
    b[32..36].copy_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&[0; 8]);
    assert!(matches!(Request::decode(&b), Err(DecodeError::Truncated { .. })), "{:?}", Request::decode(&b));

    // A forged length of bytes is checked against what is left, too.
    let mut b = request_body(
        1,
        &Request::SetValue { handle: 1, name: String::new(), value: Value { ty: ValueType(0), data: vec![] } },
    );
    let n = b.len();
    b[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(Request::decode(&b), Err(DecodeError::Truncated { what: "value data", at: n - 4 }));

    let mut b = server_body(&ServerMessage::Reply(1, Reply::Hives(vec![])));
    b[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(ServerMessage::decode(&b), Err(DecodeError::Invalid { what: "hive count", at: 5, .. })));
}

/// A key with no name, values or security and `subkeys` subkeys, as the image encoding has it.
fn bare_key(out: &mut Vec<u8>, subkeys: u32) {
    out.extend_from_slice(&[0; 4]); // name ""
    out.push(0); // no class
    out.extend_from_slice(&[0; 8]); // last write
    out.push(0); // link
    out.extend_from_slice(&[0; 4]); // system-only
    out.push(0); // no security
    out.extend_from_slice(&[0; 4]); // no values
    out.extend_from_slice(&subkeys.to_le_bytes());
}

fn chain(levels_below_root: usize) -> Vec<u8> {
    let mut b = vec![1, 0, 0, 0, 0x21];
    b.extend_from_slice(&[0; 8]);
    for _ in 0..levels_below_root {
        bare_key(&mut b, 1);
    }
    bare_key(&mut b, 0);
    b
}

#[test]
fn key_images_nest_at_most_512_levels_below_the_root() {
    let ok = Request::decode(&chain(512)).unwrap();
    let Request::RestoreKey { image, .. } = ok.1 else { panic!("{ok:?}") };
    let mut depth = 0;
    let mut k = &image;
    while let Some(s) = k.subkeys.first() {
        k = s;
        depth += 1;
    }
    assert_eq!(depth, 512);

    // 513 levels: refused where the 514th key starts.
    let e = Request::decode(&chain(513)).unwrap_err();
    assert_eq!(e, DecodeError::Invalid { what: "key image", at: 13 + 513 * 27, why: "deeper than 512 levels".into() });
    assert_eq!(e.to_string(), format!("bad key image at byte {}: deeper than 512 levels", 13 + 513 * 27));

    // Far deeper: refused the same way, without running out of stack.
    assert!(matches!(Request::decode(&chain(200_000)), Err(DecodeError::Invalid { what: "key image", .. })));

    // The same in a saved image the daemon sends back.
    let mut b = chain(100_000);
    b[4] = 0x0A; // Reply::Image
    b.drain(5..13); // no handle
    assert!(matches!(ServerMessage::decode(&b), Err(DecodeError::Invalid { what: "key image", .. })));
}

#[test]
fn an_encoded_image_deeper_than_the_limit_does_not_decode() {
    let mut image = KeyImage::default();
    for _ in 0..513 {
        image = KeyImage { subkeys: vec![image], ..KeyImage::default() };
    }
    let b = server_body(&ServerMessage::Reply(1, Reply::Image(image)));
    assert!(matches!(ServerMessage::decode(&b), Err(DecodeError::Invalid { what: "key image", .. })));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn proper_prefixes_of_generated_requests_are_truncated(id in 1..=u32::MAX, r in request()) {
        let b = request_body(id, &r);
        for n in 0..b.len() {
            let e = Request::decode(&b[..n]);
            prop_assert!(matches!(&e, Err(e) if is_truncation(e)), "cut to {}: {:?}", n, e);
        }
    }

    #[test]
    fn proper_prefixes_of_generated_server_messages_are_truncated(m in server_message()) {
        let b = server_body(&m);
        for n in 0..b.len() {
            let e = ServerMessage::decode(&b[..n]);
            prop_assert!(matches!(&e, Err(e) if is_truncation(e)), "cut to {}: {:?}", n, e);
        }
    }
}
