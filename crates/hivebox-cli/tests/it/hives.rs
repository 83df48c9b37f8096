//! `reg save`, `restore`, `load`, `unload` and `replace`: regf hive files written, read and
//! mounted by the real binary, and checked with hivex (`hivexget`) or the hive reader.

use crate::{DONE, Home};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A file under the home, by name.
fn file(home: &Home, name: &str) -> String {
    home.path().join(name).display().to_string()
}

/// `hivexget HIVE KEY NAME`: one value as hivex prints it.
fn hivexget(hive: &str, key: &str, name: &str) -> String {
    let out = Command::new("hivexget")
        .args([hive, key, name])
        .output()
        .expect("hivexget runs (install it with `apt-get install libhivex-bin`)");
    assert!(out.status.success(), "hivexget {hive} {key} {name}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
}

/// A corpus hive (`$HIVEBOX_CORPUS/hives/REL`, by default `../shared/data` beside the workspace)
/// copied, writable, into `dir`.
fn corpus_copy(rel: &str, dir: &Path) -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let root = match std::env::var_os("HIVEBOX_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("../shared/data"),
    };
    let src = root.join("hives").join(rel);
    assert!(src.exists(), "corpus file {} is missing; set HIVEBOX_CORPUS", src.display());
    let dst = dir.join(rel.replace('/', "_"));
    std::fs::write(&dst, std::fs::read(&src).unwrap()).unwrap();
    dst
}

fn contoso(home: &Home) {
    home.ok(&["add", r"HKCU\Software\Contoso", "/v", "Name", "/d", "Contoso Ltd"]);
    home.ok(&["add", r"HKCU\Software\Contoso", "/v", "Port", "/t", "REG_DWORD", "/d", "8080"]);
    home.ok(&["add", r"HKCU\Software\Contoso\Sub", "/v", "List", "/t", "REG_MULTI_SZ", "/d", r"a\0b"]);
}

#[test]
fn save_writes_a_hive_hivex_reads() {
    let home = Home::new();
    contoso(&home);
    let hive = file(&home, "contoso.hiv");
    assert_eq!(home.ok(&["save", r"HKCU\Software\Contoso", &hive]), DONE);
    assert_eq!(hivexget(&hive, r"\", "Name"), "Contoso Ltd");
    assert_eq!(hivexget(&hive, r"\", "Port"), "8080");
    assert_eq!(hivexget(&hive, r"\Sub", "List"), "a\nb");
    // An existing file is not overwritten without /y (nobody to ask here).
    let err = home.fails(&["save", r"HKCU\Software\Contoso", &hive]);
    assert_eq!(err, format!("ERROR: {hive}: the file already exists; pass /y to overwrite it"));
    home.ok(&["add", r"HKCU\Software\Contoso", "/v", "Port", "/t", "REG_DWORD", "/d", "1", "/f"]);
    assert_eq!(home.ok(&["save", r"HKCU\Software\Contoso", &hive, "/y"]), DONE);
    assert_eq!(hivexget(&hive, r"\", "Port"), "1");
    let err = home.fails(&["save", r"HKCU\Software\Missing", &file(&home, "missing.hiv")]);
    assert!(err.contains("(STATUS_OBJECT_NAME_NOT_FOUND)"), "{err}");
    assert!(!home.path().join("missing.hiv").exists());
}

#[test]
fn load_persists_and_unload_writes_the_file() {
    let home = Home::new();
    contoso(&home);
    let hive = file(&home, "offline.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso", &hive]);
    assert_eq!(home.ok(&["load", r"HKLM\OFFLINE", &hive]), DONE);
    // A later invocation still has it mounted.
    let q = home.ok(&["query", r"HKLM\OFFLINE", "/s"]);
    assert!(q.contains("Contoso Ltd") && q.contains(r"HKEY_LOCAL_MACHINE\OFFLINE\Sub"), "{q}");
    home.ok(&["add", r"HKLM\OFFLINE\New", "/v", "Added", "/d", "later"]);
    home.ok(&["delete", r"HKLM\OFFLINE", "/v", "Port", "/f"]);
    // Loading the same file again, or onto a key that exists, is refused.
    let err = home.fails(&["load", r"HKLM\OTHER", &hive]);
    assert!(err.contains(r"already loaded at \REGISTRY\MACHINE\OFFLINE"), "{err}");
    let other = file(&home, "other.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso\Sub", &other]);
    let err = home.fails(&["load", r"HKLM\SOFTWARE", &other]);
    assert!(err.contains("exists already"), "{err}");
    let err = home.fails(&["load", r"HKLM\SOFTWARE\Deeper", &other]);
    assert!(err.contains("directly below"), "{err}");

    assert_eq!(home.ok(&["unload", r"HKLM\OFFLINE"]), DONE);
    assert!(home.reg(&["query", r"HKLM\OFFLINE"]).code == 1);
    assert!(!Path::new(&format!("{hive}.wal")).exists());
    assert_eq!(std::fs::read_to_string(home.path().join("hives/mounts")).unwrap(), "");
    // The change is in the file itself, which hivex reads.
    assert_eq!(hivexget(&hive, r"\New", "Added"), "later");
    // Loaded again, it has the change.
    home.ok(&["load", r"HKLM\OFFLINE", &hive]);
    let q = home.ok(&["query", r"HKLM\OFFLINE", "/s"]);
    assert!(q.contains("later") && !q.contains("Port"), "{q}");
    home.ok(&["unload", r"HKLM\OFFLINE"]);
}

#[test]
fn unload_refuses_what_load_did_not_mount() {
    let home = Home::new();
    let err = home.fails(&["unload", r"HKLM\Nothing"]);
    assert!(err.contains(r"(STATUS_OBJECT_NAME_NOT_FOUND) at HKEY_LOCAL_MACHINE\Nothing"), "{err}");
    let err = home.fails(&["unload", r"HKLM\SOFTWARE"]);
    assert!(
        err.contains(r"not a hive loaded with LOAD (STATUS_INVALID_PARAMETER) at HKEY_LOCAL_MACHINE\SOFTWARE"),
        "{err}"
    );
    let err = home.fails(&["unload", r"HKLM\SOFTWARE\Microsoft"]);
    assert!(err.contains("directly below"), "{err}");
    // The store's own hives are all still there.
    home.ok(&["query", r"HKLM\SOFTWARE"]);
}

#[test]
fn a_missing_mounted_file_is_a_clear_error() {
    let home = Home::new();
    contoso(&home);
    let hive = file(&home, "gone.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso", &hive]);
    home.ok(&["load", r"HKLM\GONE", &hive]);
    std::fs::remove_file(&hive).unwrap();
    let err = home.fails(&["query", r"HKLM\SOFTWARE"]);
    assert!(err.contains("hives/mounts:1:") && err.contains("is missing"), "{err}");
}

#[test]
fn restore_replaces_the_contents() {
    let home = Home::new();
    contoso(&home);
    let hive = file(&home, "contoso.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso", &hive]);
    home.ok(&["add", r"HKCU\Software\Target\Old", "/v", "Stale", "/d", "x"]);
    home.ok(&["add", r"HKCU\Software\Target", "/v", "Stale", "/d", "x"]);
    assert_eq!(home.ok(&["restore", r"HKCU\Software\Target", &hive]), DONE);
    let restored = home.ok(&["query", r"HKCU\Software\Target", "/s"]);
    let original = home.ok(&["query", r"HKCU\Software\Contoso", "/s"]);
    assert_eq!(restored, original.replace(r"Software\Contoso", r"Software\Target"));
    let err = home.fails(&["restore", r"HKCU\Software\Target", &file(&home, "nope.hiv")]);
    assert!(err.contains("cannot read the hive"), "{err}");
}

#[test]
fn load_real_corpus_hives() {
    let home = Home::new();
    for (n, rel) in ["python-registry/UNICODE_TESTS", "hivex/minimal"].into_iter().enumerate() {
        let copy = corpus_copy(rel, home.path());
        let key = format!(r"HKLM\CORPUS{n}");
        home.ok(&["load", &key, copy.to_str().unwrap()]);
        let q = home.ok(&["query", &key, "/s"]);
        if rel.contains("UNICODE") {
            // Its keys and values have non-ASCII names.
            assert!(q.contains(&format!("HKEY_LOCAL_MACHINE\\CORPUS{n}\\")), "{rel}: {q}");
            assert!(!q.is_ascii(), "{rel}: {q}");
        }
        home.ok(&["unload", &key]);
    }
}

/// The value `name` of the key at `path` (relative to the root) in a hive file, by the reader.
fn value_in(hive: &str, path: &[&str], name: &str) -> Option<hivebox_core::Value> {
    let image = hivebox_hive::regf::Hive::open(Path::new(hive)).unwrap().to_image().unwrap();
    let mut key = &image;
    for c in path {
        key = key.subkeys.iter().find(|k| k.name.eq_ignore_ascii_case(c))?;
    }
    key.values.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
}

#[test]
fn replace_takes_effect_at_the_next_command() {
    let home = Home::new();
    contoso(&home);
    let saved = file(&home, "saved.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso", &saved]);
    let live = file(&home, "live.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso", &live]);
    home.ok(&["load", r"HKLM\OFFLINE", &live]);
    // The live hive changes after the save.
    home.ok(&["add", r"HKLM\OFFLINE", "/v", "Port", "/t", "REG_DWORD", "/d", "1", "/f"]);
    home.ok(&["add", r"HKLM\OFFLINE\Extra"]);
    let before = home.ok(&["query", r"HKLM\OFFLINE", "/s"]);
    let live_bytes = std::fs::read(&live).unwrap();

    let old = file(&home, "old.hiv");
    // A key below the root names its hive, as RegReplaceKey documents.
    assert_eq!(home.ok(&["replace", r"HKLM\OFFLINE\Sub", &saved, &old]), DONE);
    // Nothing changed in that command: the hive's file is as it was and OLDFILE is not there yet.
    assert_eq!(std::fs::read(&live).unwrap(), live_bytes);
    assert!(!Path::new(&old).exists());
    assert!(Path::new(&format!("{live}.replace")).is_file());

    // The next command sees the saved contents.
    let after = home.ok(&["query", r"HKLM\OFFLINE", "/s"]);
    let original = home.ok(&["query", r"HKCU\Software\Contoso", "/s"]);
    assert_eq!(after, original.replace(r"HKEY_CURRENT_USER\Software\Contoso", r"HKEY_LOCAL_MACHINE\OFFLINE"));
    assert_ne!(after, before);
    assert!(!Path::new(&format!("{live}.replace")).exists());
    // OLDFILE holds what the hive held before, the changes made after the save included.
    assert_eq!(value_in(&old, &[], "Port"), Some(hivebox_core::Value::dword(1)));
    assert_eq!(value_in(&old, &[], "Name"), Some(hivebox_core::Value::sz("Contoso Ltd")));
    let image = hivebox_hive::regf::Hive::open(Path::new(&old)).unwrap().to_image().unwrap();
    assert!(image.subkeys.iter().any(|k| k.name == "Extra"), "{image:?}");
    // The replaced hive takes changes and keeps them.
    home.ok(&["add", r"HKLM\OFFLINE", "/v", "Later", "/d", "yes"]);
    assert!(home.ok(&["query", r"HKLM\OFFLINE", "/v", "Later"]).contains("yes"));
    home.ok(&["unload", r"HKLM\OFFLINE"]);
    assert_eq!(value_in(&live, &[], "Later"), Some(hivebox_core::Value::sz("yes")));
}

#[test]
fn replace_a_base_hive_and_what_it_refuses() {
    let home = Home::new();
    contoso(&home);
    let saved = file(&home, "saved.hiv");
    home.ok(&["save", r"HKCU\Software\Contoso", &saved]);
    let state = home.state();

    let err = home.fails(&["replace", "HKCU", &file(&home, "nope.hiv"), &file(&home, "o.hiv")]);
    assert!(err.starts_with(&format!("ERROR: {}: cannot read the hive", file(&home, "nope.hiv"))), "{err}");
    let err = home.fails(&["replace", "HKCU", &saved, &saved]);
    assert_eq!(err, format!("ERROR: {saved}: the file exists already (the hive's current file is moved there)"));
    let err = home.fails(&["replace", "HKLM", &saved, &file(&home, "o.hiv")]);
    assert!(err.contains("(STATUS_INVALID_PARAMETER) at HKEY_LOCAL_MACHINE"), "{err}");
    let err = home.fails(&["replace", "HKCU", &saved]);
    assert!(err.contains("Missing OLDFILE"), "{err}");
    assert_eq!(home.state(), state, "a refused replace changes nothing");

    // HKCU is the user's hive: it becomes the saved key.
    let old = file(&home, "hkcu-old.hiv");
    assert_eq!(home.ok(&["replace", "HKCU", &saved, &old]), DONE);
    let q = home.ok(&["query", "HKCU", "/v", "Name"]);
    assert!(q.contains("Contoso Ltd"), "{q}");
    assert!(home.ok(&["query", r"HKCU\Sub", "/v", "List"]).contains("REG_MULTI_SZ"));
    assert_eq!(value_in(&old, &["Software", "Contoso"], "Port"), Some(hivebox_core::Value::dword(8080)));
}
