//! The `.reg` parser on arbitrary bytes: it must return, never panic. Whatever parses is
//! written again, each key line with the values it sets, and that must parse back to the same
//! key and the same values (names, types and bytes).

#![no_main]

use hivebox_core::{KeyImage, Value};
use hivebox_hive::regfile::{RegEntry, export, parse};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

/// The values a file sets, by the index of their key line.
fn values_by_key(entries: &[RegEntry]) -> BTreeMap<usize, Vec<(String, Value)>> {
    let mut out: BTreeMap<usize, Vec<(String, Value)>> = BTreeMap::new();
    for entry in entries {
        if let RegEntry::Value { key_index, name, action: Some(value), .. } = entry {
            out.entry(*key_index).or_default().push((name.clone(), value.clone()));
        }
    }
    out
}

fuzz_target!(|bytes: &[u8]| {
    let Ok(file) = parse(bytes) else { return };
    let mut values = values_by_key(&file.entries);
    for (index, entry) in file.entries.iter().enumerate() {
        let RegEntry::Key { path, delete: false, .. } = entry else { continue };
        let image = KeyImage { values: values.remove(&index).unwrap_or_default(), ..KeyImage::default() };
        let written = export(path, &image).expect("what was parsed can be written");
        let again = parse(&written).expect("what was written parses");
        assert!(
            matches!(again.entries.first(), Some(RegEntry::Key { path: p, delete: false, .. }) if p == path),
            "{path:?}: {again:?}"
        );
        let mut again_values = values_by_key(&again.entries);
        assert_eq!(again_values.remove(&0).unwrap_or_default(), image.values, "{path:?}");
        assert!(again_values.is_empty());
    }
});
