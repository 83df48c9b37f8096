//! The reader against libhivex (through python3-hivex): the same keys in the same order, and
//! the same values (name, type, every data byte) in every key. python3-hivex is required: a
//! machine without it fails this test with the command that installs it.

use crate::corpus;
use hivebox_core::KeyImage;
use hivebox_hive::regf::Hive;
use serde_json::{Value as Json, json};
use std::path::Path;
use std::process::Command;

const INSTALL: &str = "apt-get install -y python3-hivex";

/// A Python that can `import hivex`: `$HIVEBOX_PYTHON`, `python3`, or `/usr/bin/python3`
/// (where Debian's python3-hivex lives).
fn python() -> String {
    let candidates = [std::env::var("HIVEBOX_PYTHON").ok(), Some("python3".into()), Some("/usr/bin/python3".into())];
    for py in candidates.into_iter().flatten() {
        if Command::new(&py).args(["-c", "import hivex"]).output().is_ok_and(|o| o.status.success()) {
            return py;
        }
    }
    panic!("no python3 can `import hivex`; install it with `{INSTALL}` (this cross-check is required)");
}

fn hivex_dump(py: &str, hive: &Path) -> Json {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/regf_read/hivex_walk.py");
    let out = Command::new(py).arg(script).arg(hive).output().expect("running python3");
    assert!(out.status.success(), "hivex_walk.py on {}: {}", hive.display(), String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("hivex_walk.py prints JSON")
}

/// The image in hivex_walk.py's shape.
fn our_dump(img: &KeyImage) -> Json {
    fn key(k: &KeyImage, path: String, out: &mut Vec<Json>) {
        let values: Vec<Json> = k
            .values
            .iter()
            .map(|(n, v)| json!([n, v.ty.0, v.data.iter().map(|b| format!("{b:02x}")).collect::<String>()]))
            .collect();
        out.push(json!([path, values]));
        for s in &k.subkeys {
            key(s, format!("{path}\\{}", s.name), out);
        }
    }
    let mut out = Vec::new();
    key(img, img.name.clone(), &mut out);
    Json::Array(out)
}

#[test]
fn keys_and_values_match_libhivex() {
    let py = python();
    let hives = [
        "dfwinreg-20190329-sdist/SYSTEM",
        "notatin/win7_ntuser.dat",
        "nt-hive/testhive",
        "hivex/special",
        "hivex/rlenvalue_test_hive",
        "python-registry/UNICODE_TESTS",
        "yarp/BigDataHive",
    ];
    for rel in hives {
        let path = corpus::path(rel);
        let ours = our_dump(&Hive::open(&path).unwrap().to_image().unwrap());
        let theirs = hivex_dump(&py, &path);
        let (ours, theirs) = (ours.as_array().unwrap(), theirs.as_array().unwrap());
        assert_eq!(ours.len(), theirs.len(), "{rel}: number of keys");
        for (a, b) in ours.iter().zip(theirs) {
            assert_eq!(a, b, "{rel}");
        }
    }
}
