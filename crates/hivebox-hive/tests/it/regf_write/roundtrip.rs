//! Round trips through the crate's own reader: image -> `write_hive` -> `Hive::from_bytes` ->
//! `to_image` gives the image back (random images and the feature image), and every corpus
//! hive the reader accepts re-saves to a hive that reads back identically.

use super::images;
use super::{index_order, opts};
use crate::corpus;
use hivebox_core::{KeyImage, Value, ValueType};
use hivebox_hive::regf::{Hive, default_security_descriptor, write_hive, write_hive_with_stats};
use proptest::prelude::*;
use std::path::Path;
use std::sync::Arc;

/// `image` as a reader sees it after writing: subkeys in index order, no descriptor made
/// the default one, an empty class no class, and `system_only` (not part of the format) 0.
pub fn as_written(image: &KeyImage, default_sd: &Arc<[u8]>) -> KeyImage {
    let mut subkeys: Vec<KeyImage> = image.subkeys.iter().map(|k| as_written(k, default_sd)).collect();
    subkeys.sort_by(|a, b| index_order(&a.name, &b.name));
    KeyImage {
        name: image.name.clone(),
        class: image.class.clone().filter(|c| !c.is_empty()),
        last_write: image.last_write,
        link: image.link,
        system_only: 0,
        security: Some(image.security.clone().unwrap_or_else(|| default_sd.clone())),
        values: image.values.clone(),
        subkeys,
    }
}

fn read_back(bytes: Vec<u8>) -> KeyImage {
    let hive = Hive::from_bytes(bytes).unwrap_or_else(|e| panic!("the reader refuses the written hive: {e}"));
    hive.to_image().unwrap_or_else(|e| panic!("the reader cannot walk the written hive: {e}"))
}

/// Asserts two images are equal, naming the first key that differs.
fn assert_same(got: &KeyImage, want: &KeyImage, path: &str) {
    let here = format!("{path}\\{}", want.name);
    assert_eq!(
        (&got.name, &got.class, got.last_write, got.link, &got.security),
        (&want.name, &want.class, want.last_write, want.link, &want.security),
        "key {here}"
    );
    assert_eq!(got.values, want.values, "values of {here}");
    let names = |k: &KeyImage| k.subkeys.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(got), names(want), "subkeys of {here}");
    for (g, w) in got.subkeys.iter().zip(&want.subkeys) {
        assert_same(g, w, &here);
    }
}

#[test]
fn the_feature_image_round_trips() {
    let image = images::everything();
    let back = read_back(write_hive(&image, &opts()).unwrap());
    let default_sd: Arc<[u8]> = default_security_descriptor().into();
    assert_same(&back, &as_written(&image, &default_sd), "");
}

/// Names: 1 to 8 characters from ASCII, Latin-1, Greek, CJK and an astral plane.
fn name() -> impl Strategy<Value = String> {
    let chars = prop::sample::select(vec!['a', 'B', 'z', '_', '0', '~', 'é', 'Ä', 'ÿ', 'ß', 'Ω', 'ω', '日', '😀', ' ']);
    prop::collection::vec(chars, 1..8).prop_map(|v| v.into_iter().collect())
}

fn value() -> impl Strategy<Value = (String, Value)> {
    let len = prop_oneof![8 => 0usize..40, 1 => 16_300usize..16_400, 1 => 30_000usize..50_000];
    (prop_oneof![name(), Just(String::new())], 0u32..14, len, any::<u64>())
        .prop_map(|(n, ty, len, seed)| (n, Value::new(ValueType(ty), images::bytes(len, seed))))
}

fn leaf(sds: Vec<Arc<[u8]>>) -> impl Strategy<Value = KeyImage> {
    let sd = prop::option::of(prop::sample::select(sds));
    (name(), prop::option::of(name()), any::<u64>(), any::<bool>(), sd, prop::collection::vec(value(), 0..4)).prop_map(
        |(name, class, last_write, link, security, values)| KeyImage {
            name,
            class,
            last_write,
            link,
            system_only: 0,
            security,
            values,
            subkeys: Vec::new(),
        },
    )
}

/// Random trees up to 4 levels deep; sibling names are made distinct (case-insensitively).
fn tree() -> impl Strategy<Value = KeyImage> {
    let sds: Vec<Arc<[u8]>> = (0..3).map(|i| images::descriptor(i, 0xF_003F)).collect();
    leaf(sds.clone()).prop_recursive(4, 64, 8, move |inner| {
        (leaf(sds.clone()), prop::collection::vec(inner, 0..8)).prop_map(|(mut k, mut kids)| {
            kids.sort_by(|a, b| index_order(&a.name, &b.name));
            kids.dedup_by(|a, b| index_order(&a.name, &b.name).is_eq());
            k.subkeys = kids;
            k
        })
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn random_images_round_trip(image in tree()) {
        let back = read_back(write_hive(&image, &opts()).unwrap());
        let default_sd: Arc<[u8]> = default_security_descriptor().into();
        assert_same(&back, &as_written(&image, &default_sd), "");
    }
}

/// The primary hive files of the corpus, relative to `hives/` and without `.xz`, each with its
/// transaction logs (the files beside it named like it plus `.LOG`, `.LOG1`, ..., in any case).
pub(crate) fn corpus_hives() -> Vec<(String, Vec<String>)> {
    fn walk(dir: &Path, rel: &str, out: &mut Vec<(String, Vec<String>)>) {
        let mut names = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") };
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &path, out);
            } else if !name.ends_with(".md") {
                names.push(name.strip_suffix(".xz").unwrap_or(&name).to_owned());
            }
        }
        names.sort();
        let is_log = |n: &str| n.to_ascii_lowercase().contains(".log");
        for primary in names.iter().filter(|n| !is_log(n)) {
            let prefix = format!("{}.log", primary.to_ascii_lowercase());
            let logs = names.iter().filter(|n| n.to_ascii_lowercase().starts_with(&prefix));
            let join = |n: &String| if rel.is_empty() { n.clone() } else { format!("{rel}/{n}") };
            out.push((join(primary), logs.map(join).collect()));
        }
    }
    let mut out = Vec::new();
    walk(&corpus::root().join("hives"), "", &mut out);
    out.sort();
    out
}

/// Corpus hives the reader refuses by design: deliberately damaged ones.
pub(crate) const DAMAGED: &[&str] = &[
    "plaso/corrupt_sub_key_list.hiv",
    "regipy/corrupted_system_hive",
    "yarp/DuplicateSubkeysHive",
    "yarp/WrongOrderHive",
];

#[test]
fn every_corpus_hive_resaves_to_the_same_content() {
    let mut resaved = 0;
    for (rel, logs) in corpus_hives() {
        let logs: Vec<Arc<Vec<u8>>> = logs.iter().map(|l| corpus::read(l)).collect();
        let logs: Vec<&[u8]> = logs.iter().map(|l| l.as_slice()).collect();
        let original = Hive::from_bytes_with_logs(corpus::read(&rel).to_vec(), &logs).and_then(|h| h.to_image());
        let image = match original {
            Ok(image) => image,
            Err(e) => {
                assert!(DAMAGED.contains(&rel.as_str()), "{rel} does not load: {e}");
                continue;
            }
        };
        let (bytes, stats) = write_hive_with_stats(&image, &opts()).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let back = read_back(bytes);
        let default_sd: Arc<[u8]> = default_security_descriptor().into();
        assert_same(&back, &as_written(&image, &default_sd), &rel);
        let original_size = corpus::read(&rel).len();
        println!(
            "{rel}: {} keys, {} values, {} sk; {original_size} -> {} bytes, free {:.2}%, slack {:.2}%",
            stats.keys,
            stats.values,
            stats.security_descriptors,
            stats.file_size,
            stats.free_percent(),
            100.0 * stats.slack_bytes as f64 / stats.file_size as f64
        );
        if stats.file_size > 1 << 20 {
            assert!(stats.free_percent() < 10.0, "{rel}: {:.2}% free", stats.free_percent());
        }
        resaved += 1;
    }
    assert!(resaved >= 30, "only {resaved} corpus hives re-saved");
}
