//! The regf writer, checked from outside: hives written from images are read back by hivex
//! (python3-hivex, hivexsh) and regipy and compared byte for byte with the image, and walked
//! by an independent structural checker (`regf_check.py`). The tools are required: a missing
//! one fails the test with the command that installs it.

mod cross;
pub(crate) mod roundtrip;

use hivebox_core::KeyImage;
use hivebox_hive::regf::{WriteOptions, WriteStats, default_security_descriptor, write_hive_with_stats};
use serde_json::{Value as Json, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// This directory (the Python scripts live here).
fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/regf_write")
}

/// A Python interpreter that can import `module`: `$HIVEBOX_PYTHON`, `python3`, or
/// `/usr/bin/python3` (where Debian's `python3-hivex` lives).
pub fn python_with(module: &str, install: &str) -> String {
    let candidates = [std::env::var("HIVEBOX_PYTHON").ok(), Some("python3".into()), Some("/usr/bin/python3".into())];
    for python in candidates.into_iter().flatten() {
        let ok = Command::new(&python).args(["-c", &format!("import {module}")]).output();
        if ok.is_ok_and(|o| o.status.success()) {
            return python;
        }
    }
    panic!("no python3 can import `{module}`; install it with `{install}` (this cross-check is required)");
}

/// Runs `script` (in this directory) on `hive` with `python`, and parses what it prints.
pub fn run_script(python: &str, script: &str, hive: &Path) -> Json {
    let out = Command::new(python)
        .arg(here().join(script))
        .arg(hive)
        .output()
        .unwrap_or_else(|e| panic!("running {python} {script}: {e}"));
    assert!(out.status.success(), "{script} failed on {}:\n{}", hive.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} printed no JSON ({e})"))
}

/// The options the tests write with.
pub fn opts() -> WriteOptions {
    WriteOptions {
        root_name: None,
        sequence: 7,
        timestamp: 133_000_000_000_000_000,
        file_name: "\\??\\C:\\hivebox\\tests\\some\\deep\\directory\\TEST.hiv".into(),
    }
}

/// Writes `image` to a file in `dir`, checks it with `regf_check.py`, and returns its path
/// and the writer's figures.
pub fn write_checked(dir: &Path, file: &str, image: &KeyImage) -> (PathBuf, WriteStats) {
    let (bytes, stats) = write_hive_with_stats(image, &opts()).expect("the image is writable");
    let path = dir.join(file);
    std::fs::write(&path, &bytes).unwrap();
    let report = run_script("python3", "regf_check.py", &path);
    let errors = report["errors"].as_array().unwrap();
    assert!(errors.is_empty(), "regf_check.py found problems in {file}: {errors:#?}");
    let s = &report["stats"];
    assert_eq!(s["keys"].as_u64(), Some(stats.keys as u64), "{file}: keys");
    assert_eq!(s["values"].as_u64(), Some(stats.values as u64), "{file}: values");
    assert_eq!(s["free"].as_u64(), Some(stats.free_bytes), "{file}: free bytes");
    assert_eq!(s["slack"].as_u64(), Some(stats.slack_bytes), "{file}: slack bytes");
    (path, stats)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Upcases one UTF-16 unit (the test's own version of the Configuration Manager's rule).
fn upcase(u: u16) -> u16 {
    match char::from_u32(u32::from(u)) {
        Some(c) => {
            let up: Vec<char> = c.to_uppercase().collect();
            match up[..] {
                [one] if (one as u32) <= 0xFFFF => one as u16,
                _ => u,
            }
        }
        None => u,
    }
}

/// The order of a subkey index.
pub fn index_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.encode_utf16().map(upcase).cmp(b.encode_utf16().map(upcase))
}

/// What a reader should find for `image` (its root named `name`): the keys in depth-first
/// order, subkeys in index order, no descriptor shown as the default one. `class` and `sd`
/// say whether the reader reports them. Each record also has the key's path, for messages.
pub fn expected(image: &KeyImage, name: &str, class: bool, sd: bool) -> Vec<Json> {
    let default_sd = default_security_descriptor();
    let mut out = Vec::new();
    let mut stack = vec![(image, name.to_owned(), String::new())];
    while let Some((key, name, parent)) = stack.pop() {
        let path = format!("{parent}\\{name}");
        let mut kids: Vec<&KeyImage> = key.subkeys.iter().collect();
        kids.sort_by(|a, b| index_order(&a.name, &b.name));
        out.push(json!({
            "path": path,
            "name": name,
            "time": key.last_write,
            "class": if class { json!(key.class.as_deref().filter(|c| !c.is_empty())) } else { Json::Null },
            "sd": if sd { json!(hex(key.security.as_deref().unwrap_or(&default_sd))) } else { Json::Null },
            "values": key.values.iter().map(|(n, v)| json!([n, v.ty.0, hex(&v.data)])).collect::<Vec<_>>(),
            "subkeys": kids.len(),
        }));
        stack.extend(kids.into_iter().rev().map(|k| (k, k.name.clone(), path.clone())));
    }
    out
}

/// Compares a reader's dump with the expectation, naming the first difference.
pub fn compare(tool: &str, got: &Json, want: &[Json]) {
    let got = got.as_array().unwrap_or_else(|| panic!("{tool}: the dump is not a list"));
    for (g, w) in got.iter().zip(want) {
        let path = w["path"].as_str().unwrap_or("?");
        for field in ["name", "time", "class", "sd", "subkeys"] {
            assert_eq!(g[field], w[field], "{tool}: {field} of {path}");
        }
        let (gv, wv) = (g["values"].as_array().unwrap(), w["values"].as_array().unwrap());
        assert_eq!(gv.len(), wv.len(), "{tool}: number of values of {path}");
        for (a, b) in gv.iter().zip(wv) {
            assert_eq!(a, b, "{tool}: value of {path}");
        }
    }
    assert_eq!(got.len(), want.len(), "{tool}: number of keys");
}

/// Key images that exercise every part of the writer.
pub mod images {
    use hivebox_core::{KeyImage, Value, ValueType};
    use std::sync::Arc;

    /// A key with `name`, a fixed time, and nothing else.
    pub fn key(name: &str) -> KeyImage {
        KeyImage { name: name.into(), last_write: 132_000_000_000_000_000 + name.len() as u64, ..KeyImage::default() }
    }

    /// Deterministic pseudo-random bytes.
    pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Values of every type 0..=11 and a few beyond, with data from empty to 1 MiB: inline
    /// (0..=4 bytes), in a cell (up to 16344), and big data (16345, 100 KB, 1 MB).
    pub fn all_types() -> KeyImage {
        let mut k = key("Types");
        k.values.push((String::new(), Value::sz("the default value")));
        for ty in 0..=11u32 {
            for len in [0usize, 1, 3, 4, 5, 8, 100] {
                k.values.push((
                    format!("t{ty}_len{len}"),
                    Value::new(ValueType(ty), bytes(len, (ty * 1000) as u64 + len as u64)),
                ));
            }
        }
        k.values.push(("sz".into(), Value::sz("Hello, hive")));
        k.values.push(("expand".into(), Value::expand_sz("%SystemRoot%\\system32")));
        k.values.push(("multi".into(), Value::multi_sz(&["a", "bc", "Ünï"])));
        k.values.push(("dword".into(), Value::dword(0xDEAD_BEEF)));
        k.values.push(("dword_be".into(), Value::dword_big_endian(0x0102_0304)));
        k.values.push(("qword".into(), Value::qword(u64::MAX - 1)));
        k.values.push(("link".into(), Value::link("\\REGISTRY\\MACHINE\\SOFTWARE")));
        k.values.push(("odd type".into(), Value::new(ValueType(0xFFFF_0012), bytes(7, 3))));
        for len in [16_343usize, 16_344, 16_345, 16_352, 32_688, 32_689, 100_000, 1_000_000] {
            k.values.push((format!("big{len}"), Value::binary(&bytes(len, len as u64))));
        }
        k.values.push(("big sz".into(), Value::sz(&"long string ".repeat(3000))));
        k
    }

    /// Unicode names: Latin-1 (stored compressed), Greek, CJK and astral (surrogate pairs),
    /// in key names, value names and classes.
    pub fn unicode() -> KeyImage {
        let mut k = key("Unicode");
        for (i, name) in ["Ärger", "ärger2", "Ωmega", "日本語", "😀 smile", "mixé日", "ÿ-umlaut", "\u{FF21}wide", "zz"]
            .iter()
            .enumerate()
        {
            let mut sub = key(name);
            sub.class = Some(format!("Klasse {name}"));
            sub.values.push((name.to_string(), Value::sz(name)));
            sub.values.push((format!("Wert {i} Ünïcödé"), Value::dword(i as u32)));
            sub.values.push((format!("值 {i}"), Value::qword(i as u64)));
            k.subkeys.push(sub);
        }
        k.class = Some("Plain class".into());
        k
    }

    /// A symbolic link key and its target.
    pub fn links() -> KeyImage {
        let mut k = key("Links");
        let mut link = key("CurrentControlSet");
        link.link = true;
        link.values.push(("SymbolicLinkValue".into(), Value::link("\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001")));
        k.subkeys.push(link);
        k.subkeys.push(key("ControlSet001"));
        k
    }

    /// `n` subkeys under one key, in scrambled order and mixed case.
    pub fn wide(n: usize) -> KeyImage {
        let mut k = key("Wide");
        for i in 0..n {
            let j = (i * 7919) % n;
            let name = if j.is_multiple_of(3) { format!("key{j:05}") } else { format!("Key{j:05}_{}", j % 10) };
            let mut sub = key(&name);
            if j.is_multiple_of(1000) {
                sub.values.push(("n".into(), Value::dword(j as u32)));
            }
            k.subkeys.push(sub);
        }
        k
    }

    /// A chain of `depth` nested keys.
    pub fn deep(depth: usize) -> KeyImage {
        let mut k = key(&format!("Level{depth}"));
        k.values.push(("depth".into(), Value::dword(depth as u32)));
        for level in (0..depth).rev() {
            let mut parent = key(&format!("Level{level}"));
            parent.subkeys.push(k);
            k = parent;
        }
        k
    }

    /// A self-relative descriptor: owner S-1-5-21-`n`, no group, a DACL with one ACE granting
    /// Everyone `mask`.
    pub fn descriptor(n: u32, mask: u32) -> Arc<[u8]> {
        let owner = [&[1u8, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0][..], &n.to_le_bytes()].concat();
        let ace = [&[0u8, 2, 20, 0][..], &mask.to_le_bytes(), &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]].concat();
        let acl = [&[2u8, 0, 28, 0, 1, 0, 0, 0][..], &ace].concat();
        let dacl_at = 20u32;
        let owner_at = dacl_at + acl.len() as u32;
        let header = [
            &[1u8, 0, 0x04, 0x80][..],
            &owner_at.to_le_bytes(),
            &0u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            &dacl_at.to_le_bytes(),
        ]
        .concat();
        [header, acl, owner].concat().into()
    }

    /// Keys with 40 distinct descriptors, the same descriptor in distinct `Arc`s (shared by
    /// content), one `Arc` shared by many keys, and keys with none (the default descriptor).
    pub fn security() -> KeyImage {
        let mut k = key("Security");
        let shared = descriptor(1000, 0x2_0019);
        for i in 0..40u32 {
            let mut sub = key(&format!("Distinct{i:02}"));
            sub.security = Some(descriptor(i, 0xF_003F - i));
            k.subkeys.push(sub);
            let mut copy = key(&format!("SameContent{i:02}"));
            copy.security = Some(descriptor(i % 5, 0xF_003F - i % 5)); // equal to Distinct0..4
            k.subkeys.push(copy);
            let mut sharing = key(&format!("SharedArc{i:02}"));
            sharing.security = Some(shared.clone());
            k.subkeys.push(sharing);
            k.subkeys.push(key(&format!("NoDescriptor{i:02}")));
        }
        k
    }

    /// Everything above under one root, with a class on the root and a descriptor on it.
    pub fn everything() -> KeyImage {
        let mut root = key("HiveboxTestRoot");
        root.class = Some("RootClass".into());
        root.security = Some(descriptor(7, 0xF_003F));
        root.values.push(("RootValue".into(), Value::sz("root")));
        root.subkeys = vec![all_types(), unicode(), links(), wide(10_000), deep(100), security()];
        root
    }
}
