//! The binary encodings: round trips, and totality on damaged input.

use hivebox_core::{KeyImage, Mutation, Value, ValueType};
use hivebox_hive::codec::{CodecError, MAX_DEPTH, decode_image, decode_mutation, encode_image, encode_mutation};

fn every_mutation() -> Vec<Mutation> {
    vec![
        Mutation::CreateKey { path: r"\REGISTRY\MACHINE\SOFTWARE\A".into(), class: None, link: false, time: 1 },
        Mutation::CreateKey {
            path: r"\REGISTRY\MACHINE\SOFTWARE\Ünïcödé ключ".into(),
            class: Some("a class".into()),
            link: true,
            time: u64::MAX,
        },
        Mutation::DeleteKey { path: r"\REGISTRY\MACHINE\SOFTWARE\A".into(), time: 2 },
        Mutation::SetValue {
            path: r"\REGISTRY\MACHINE\SOFTWARE\A".into(),
            name: "v".into(),
            value: Value::multi_sz(&["x", "y"]),
            time: 3,
        },
        Mutation::SetValue {
            path: r"\REGISTRY\MACHINE\SOFTWARE\A".into(),
            name: String::new(),
            value: Value::new(ValueType(0xDEAD_BEEF), Vec::new()),
            time: 0,
        },
        Mutation::DeleteValue { path: r"\REGISTRY\MACHINE\SOFTWARE\A".into(), name: "v".into(), time: 4 },
        Mutation::RenameKey { path: r"\REGISTRY\MACHINE\SOFTWARE\A".into(), new_name: "B".into(), time: 5 },
        Mutation::SetLastWrite { path: r"\REGISTRY\MACHINE\SOFTWARE\B".into(), time: 6 },
        Mutation::ReplaceKey {
            path: r"\REGISTRY\MACHINE\SOFTWARE\B".into(),
            image: KeyImage {
                name: "B".into(),
                values: vec![("v".into(), Value::dword(1))],
                subkeys: vec![KeyImage { name: "C".into(), class: Some("cls".into()), ..KeyImage::default() }],
                ..KeyImage::default()
            },
            time: 7,
        },
    ]
}

fn every_value_type() -> Vec<(String, Value)> {
    let mut values = vec![
        ("none".to_owned(), Value::new(ValueType::REG_NONE, vec![1, 2])),
        ("sz".to_owned(), Value::sz("hello")),
        ("expand".to_owned(), Value::expand_sz("%SystemRoot%\\x")),
        ("binary".to_owned(), Value::binary(&[0, 255, 7])),
        ("dword".to_owned(), Value::dword(0x1234_5678)),
        ("dword_be".to_owned(), Value::dword_big_endian(0x1234_5678)),
        ("link".to_owned(), Value::link(r"\REGISTRY\MACHINE\SOFTWARE")),
        ("multi".to_owned(), Value::multi_sz(&["a", "", "c"])),
        ("res".to_owned(), Value::new(ValueType::REG_RESOURCE_LIST, vec![9; 20])),
        ("full".to_owned(), Value::new(ValueType::REG_FULL_RESOURCE_DESCRIPTOR, vec![8; 3])),
        ("req".to_owned(), Value::new(ValueType::REG_RESOURCE_REQUIREMENTS_LIST, vec![])),
        ("qword".to_owned(), Value::qword(u64::MAX)),
        ("odd type".to_owned(), Value::new(ValueType(0xFFFF_FFFF), vec![0; 1000])),
        (String::new(), Value::sz("the default value")),
    ];
    values.push(("wrong length dword".to_owned(), Value::new(ValueType::REG_DWORD, vec![1])));
    values
}

fn sample_image() -> KeyImage {
    let leaf = KeyImage { name: "Leaf".into(), class: Some(String::new()), last_write: 42, ..KeyImage::default() };
    let link = KeyImage {
        name: "Link".into(),
        link: true,
        values: vec![("SymbolicLinkValue".into(), Value::link(r"\REGISTRY\MACHINE"))],
        ..KeyImage::default()
    };
    let middle = KeyImage {
        name: "Middle".into(),
        class: Some("cls".into()),
        last_write: 7,
        system_only: 0x000F_003F,
        values: every_value_type(),
        subkeys: vec![leaf, link],
        ..KeyImage::default()
    };
    KeyImage { name: "REGISTRY".into(), last_write: u64::MAX, subkeys: vec![middle], ..KeyImage::default() }
}

#[test]
fn every_mutation_variant_round_trips() {
    for m in every_mutation() {
        let bytes = encode_mutation(&m).unwrap();
        assert_eq!(decode_mutation(&bytes).unwrap(), m);
    }
}

#[test]
fn image_with_every_value_type_round_trips() {
    let image = sample_image();
    let bytes = encode_image(&image).unwrap();
    assert_eq!(decode_image(&bytes).unwrap(), image);
    let fresh = hivebox_core::fresh::fresh_image(99);
    assert_eq!(decode_image(&encode_image(&fresh).unwrap()).unwrap(), fresh);
}

#[test]
fn every_truncation_and_extension_is_an_error() {
    let image = encode_image(&sample_image()).unwrap();
    for len in 0..image.len() {
        assert!(decode_image(&image[..len]).is_err(), "prefix of {len} bytes decoded");
    }
    let mut longer = image.clone();
    longer.push(0);
    let err = decode_image(&longer).unwrap_err();
    assert_eq!(
        err,
        CodecError::Malformed { offset: image.len() as u64, reason: "1 unexpected bytes after the end".into() }
    );
    for m in every_mutation() {
        let bytes = encode_mutation(&m).unwrap();
        for len in 0..bytes.len() {
            assert!(decode_mutation(&bytes[..len]).is_err(), "prefix of {len} bytes of {m:?} decoded");
        }
    }
}

#[test]
fn damaged_fields_are_named_errors() {
    // An unknown tag.
    let err = decode_mutation(&[99]).unwrap_err();
    assert!(err.to_string().contains("unknown mutation tag 99"), "{err}");
    // A link flag that is neither 0 nor 1.
    let mut bytes = encode_mutation(&every_mutation()[0]).unwrap();
    let flag_at = bytes.len() - 9;
    bytes[flag_at] = 2;
    let err = decode_mutation(&bytes).unwrap_err();
    assert!(err.to_string().contains(&format!("at byte {flag_at}")), "{err}");
    // Invalid UTF-8 in a path.
    let mut bytes = encode_mutation(&every_mutation()[2]).unwrap();
    bytes[5] = 0xFF;
    assert!(decode_mutation(&bytes).unwrap_err().to_string().contains("not valid UTF-8"));
    // A length claiming far more than the input holds: refused before allocating.
    let mut bytes = vec![2];
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    let err = decode_mutation(&bytes).unwrap_err();
    assert!(err.to_string().contains("needs 4294967295 bytes but only 0 remain"), "{err}");
    // A value count claiming billions of entries.
    let mut image = encode_image(&KeyImage::default()).unwrap();
    let count_at = image.len() - 8;
    image[count_at..count_at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(decode_image(&image).is_err());
}

#[test]
fn nesting_is_bounded() {
    fn chain(depth: usize) -> KeyImage {
        let mut k = KeyImage { name: "k".into(), ..KeyImage::default() };
        for _ in 0..depth {
            k = KeyImage { name: "k".into(), subkeys: vec![k], ..KeyImage::default() };
        }
        k
    }
    let deepest = chain(MAX_DEPTH);
    assert_eq!(decode_image(&encode_image(&deepest).unwrap()).unwrap(), deepest);
    assert_eq!(encode_image(&chain(MAX_DEPTH + 1)).unwrap_err(), CodecError::TooDeep);
    // A hand-made input nested far deeper: every key claims one subkey.
    let one_key: Vec<u8> =
        [&[1, 0, 0, 0, b'k', 0][..], &[0; 8], &[0], &[0; 4], &[0], &[0; 4], &1u32.to_le_bytes()].concat();
    let hostile = one_key.repeat(100_000);
    let err = decode_image(&hostile).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
}
