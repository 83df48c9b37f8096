//! Random trees survive export and parse unchanged.

use super::*;
use crate::regfile::{export, parse};
use hivebox_core::name::{cmp_names, upcase};
use hivebox_core::{KeyImage, ValueType};
use proptest::prelude::*;
use std::collections::HashSet;

/// Characters that need care in a `.reg` file, and some that do not.
const NAME_CHARS: &str = "[a-zA-Z0-9 \"\\\\@=;\\[\\]\t\r\nä€😀-]";

fn key_name() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 \"@=;\\[\\]ä€😀-]{1,8}"
}

fn value_name() -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("{NAME_CHARS}{{0,8}}")).expect("a valid regex")
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        proptest::string::string_regex(&format!("{NAME_CHARS}{{0,12}}"))
            .expect("a valid regex")
            .prop_map(|s| Value::sz(&s)),
        "[a-z%\\\\]{0,8}".prop_map(|s| Value::expand_sz(&s)),
        proptest::collection::vec("[a-z \"]{1,5}", 0..4).prop_map(|items| Value::multi_sz(&items)),
        any::<u32>().prop_map(Value::dword),
        any::<u64>().prop_map(Value::qword),
        (prop_oneof![0u32..=11, any::<u32>()], proptest::collection::vec(any::<u8>(), 0..120))
            .prop_map(|(ty, data)| Value::new(ValueType(ty), data)),
    ]
}

/// Keeps the first of each name, compared as the registry compares names.
fn unique<T>(items: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
    let mut seen = HashSet::new();
    items.into_iter().filter(|item| seen.insert(upcase(name(item)))).collect()
}

fn tree() -> impl Strategy<Value = KeyImage> {
    let leaf = (key_name(), proptest::collection::vec((value_name(), value()), 0..5))
        .prop_map(|(name, values)| KeyImage { name, values: unique(values, |(n, _)| n), ..KeyImage::default() });
    leaf.prop_recursive(3, 24, 4, |inner| {
        (key_name(), proptest::collection::vec((value_name(), value()), 0..5), proptest::collection::vec(inner, 0..4))
            .prop_map(|(name, values, subkeys)| KeyImage {
                name,
                values: unique(values, |(n, _)| n),
                subkeys: unique(subkeys, |k| &k.name),
                ..KeyImage::default()
            })
    })
}

/// Each key's path and values, in the order the writer writes them.
fn flatten(path: &str, image: &KeyImage, out: &mut Vec<(String, Vec<(String, Value)>)>) {
    out.push((path.to_owned(), image.values.clone()));
    let mut subkeys: Vec<&KeyImage> = image.subkeys.iter().collect();
    subkeys.sort_by(|a, b| cmp_names(&a.name, &b.name));
    for sub in subkeys {
        flatten(&format!("{path}\\{}", sub.name), sub, out);
    }
}

/// What a parsed file sets, in the same shape.
fn keys_of(file: &RegFile) -> Vec<(String, Vec<(String, Value)>)> {
    let mut out: Vec<(String, Vec<(String, Value)>)> = Vec::new();
    for entry in &file.entries {
        match entry {
            RegEntry::Key { path, delete, .. } => {
                assert!(!delete);
                out.push((path.clone(), Vec::new()));
            }
            RegEntry::Value { name, action, .. } => {
                let value = action.clone().expect("an export deletes nothing");
                out.last_mut().expect("a key line first").1.push((name.clone(), value));
            }
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn export_then_parse_gives_the_same_values(image in tree()) {
        let root = "HKEY_CURRENT_USER\\Software\\Round Trip";
        let bytes = export(root, &image).unwrap();
        let file = parse(&bytes).unwrap();
        let mut expected = Vec::new();
        flatten(root, &image, &mut expected);
        prop_assert_eq!(keys_of(&file), expected);
    }
}
