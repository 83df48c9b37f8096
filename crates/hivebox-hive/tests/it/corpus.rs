//! The corpus of real hive files (`$HIVEBOX_CORPUS/hives`, by default `../shared/data/hives`
//! beside the workspace; see its `MANIFEST.md`). Files stored `.xz`-compressed are unpacked
//! in memory, once per test run. A missing corpus fails the test that needs it: these tests
//! never skip.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// The corpus root: `$HIVEBOX_CORPUS` (relative to the workspace root if relative), else
/// `../shared/data` relative to the workspace root.
pub fn root() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    match std::env::var_os("HIVEBOX_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("../shared/data"),
    }
}

/// The path of a hive in the corpus, as stored (`rel` is relative to `hives/`).
pub fn path(rel: &str) -> PathBuf {
    let p = root().join("hives").join(rel);
    assert!(
        p.exists(),
        "corpus file {} is missing; set HIVEBOX_CORPUS to the directory that holds hives/MANIFEST.md",
        p.display()
    );
    p
}

/// The bytes of a corpus file (`rel` without `.xz`; the compressed copy is unpacked if that
/// is what is stored).
pub fn read(rel: &str) -> Arc<Vec<u8>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<Vec<u8>>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(hit) = cache.lock().unwrap().get(rel) {
        return Arc::clone(hit);
    }
    let hives = root().join("hives");
    let plain = hives.join(rel);
    let packed = hives.join(format!("{rel}.xz"));
    let bytes = if plain.exists() {
        std::fs::read(&plain).unwrap_or_else(|e| panic!("reading {}: {e}", plain.display()))
    } else if packed.exists() {
        let raw = std::fs::read(&packed).unwrap_or_else(|e| panic!("reading {}: {e}", packed.display()));
        let mut out = Vec::new();
        lzma_rs::xz_decompress(&mut raw.as_slice(), &mut out)
            .unwrap_or_else(|e| panic!("unpacking {}: {e:?}", packed.display()));
        out
    } else {
        panic!(
            "corpus file {} (or .xz) is missing; set HIVEBOX_CORPUS to the directory that holds hives/MANIFEST.md",
            plain.display()
        );
    };
    let bytes = Arc::new(bytes);
    cache.lock().unwrap().insert(rel.to_owned(), Arc::clone(&bytes));
    bytes
}

/// Writes corpus files (unpacked) into `dir` under the given names; returns `dir/first name`.
pub fn unpack_into(dir: &Path, files: &[(&str, &str)]) -> PathBuf {
    for (rel, name) in files {
        std::fs::write(dir.join(name), read(rel).as_slice()).unwrap();
    }
    dir.join(files[0].1)
}
