//! `reg export` and `reg import`: `.reg` files written and read by the real binary.

use crate::{DONE, Home};

/// A tree with every kind of value under `root`.
fn tree(home: &Home, root: &str) {
    home.ok(&["add", root, "/ve", "/d", "the default"]);
    home.ok(&["add", root, "/v", "Quoted", "/d", r#"say "hi" C:\Program Files\"#]);
    home.ok(&["add", root, "/v", "Port", "/t", "REG_DWORD", "/d", "8080"]);
    home.ok(&["add", root, "/v", "Big", "/t", "REG_QWORD", "/d", "0x123456789abcdef0"]);
    home.ok(&["add", root, "/v", "Path", "/t", "REG_EXPAND_SZ", "/d", r"%SystemRoot%\system32"]);
    home.ok(&["add", root, "/v", "List", "/t", "REG_MULTI_SZ", "/s", ";", "/d", "one;two words;ü€"]);
    home.ok(&["add", root, "/v", "Blob", "/t", "REG_BINARY", "/d", &"0123456789abcdef".repeat(20)]);
    home.ok(&["add", root, "/v", "Nothing", "/t", "REG_NONE"]);
    home.ok(&["add", root, "/v", "BE", "/t", "REG_DWORD_BIG_ENDIAN", "/d", "1"]);
    home.ok(&["add", &format!(r"{root}\Sub"), "/v", "x", "/d", "y"]);
    home.ok(&["add", &format!(r"{root}\Sub\Deeper\Deepest"), "/v", "z", "/t", "REG_DWORD", "/d", "0"]);
    home.ok(&["add", &format!(r"{root}\another key")]);
}

/// A file under the home, by name.
fn file(home: &Home, name: &str) -> String {
    home.path().join(name).display().to_string()
}

fn utf16_text(bytes: &[u8]) -> String {
    assert_eq!(bytes[..2], [0xFF, 0xFE], "a UTF-16LE byte-order mark");
    let units: Vec<u16> = bytes[2..].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
    String::from_utf16(&units).expect("UTF-16")
}

fn utf16_bytes(text: &str) -> Vec<u8> {
    let mut out = vec![0xFF, 0xFE];
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

#[test]
fn export_then_import_elsewhere_gives_the_same_tree() {
    let home = Home::new();
    tree(&home, r"HKCU\Software\Src");
    let out = file(&home, "src.reg");
    assert_eq!(home.ok(&["export", r"HKCU\Software\Src", &out]), DONE);
    let text = utf16_text(&std::fs::read(&out).unwrap());
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Src]\r\n"));
    assert!(text.contains("\r\n\"Port\"=dword:00001f90\r\n"), "{text}");
    assert!(text.contains("\r\n\"Quoted\"=\"say \\\"hi\\\" C:\\\\Program Files\\\\\"\r\n"), "{text}");
    assert!(text.contains("\r\n[HKEY_CURRENT_USER\\Software\\Src\\Sub\\Deeper\\Deepest]\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n"));
    assert!(text.split("\r\n").all(|line| line.len() <= 80), "{text}");

    // The same file, moved to another key, imported.
    let moved = text.replace("[HKEY_CURRENT_USER\\Software\\Src", "[HKEY_CURRENT_USER\\Software\\Dst");
    let dst = file(&home, "dst.reg");
    std::fs::write(&dst, utf16_bytes(&moved)).unwrap();
    assert_eq!(home.ok(&["import", &dst]), DONE);
    let src = home.ok(&["query", r"HKCU\Software\Src", "/s"]);
    let copy = home.ok(&["query", r"HKCU\Software\Dst", "/s"]);
    assert_eq!(copy, src.replace(r"HKEY_CURRENT_USER\Software\Src", r"HKEY_CURRENT_USER\Software\Dst"));
    assert_eq!(home.reg(&["compare", r"HKCU\Software\Src", r"HKCU\Software\Dst", "/s"]).code, 0);
    // Importing it again changes nothing.
    home.ok(&["import", &dst]);
    assert_eq!(home.ok(&["query", r"HKCU\Software\Dst", "/s"]), copy);
}

#[test]
fn export_does_not_overwrite_without_y() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Software\E", "/v", "v", "/d", "1"]);
    let out = file(&home, "e.reg");
    std::fs::write(&out, "keep me").unwrap();
    let err = home.fails(&["export", r"HKCU\Software\E", &out]);
    assert_eq!(err, format!("ERROR: {out}: the file already exists; pass /y to overwrite it"));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "keep me");
    assert_eq!(home.ok(&["export", r"HKCU\Software\E", &out, "/y"]), DONE);
    assert!(utf16_text(&std::fs::read(&out).unwrap()).contains("\"v\"=\"1\""));
    // A key that does not exist is an error, and no file is written.
    let missing = file(&home, "missing.reg");
    let err = home.fails(&["export", r"HKCU\Software\Missing", &missing]);
    assert!(err.ends_with(r"(STATUS_OBJECT_NAME_NOT_FOUND) at HKEY_CURRENT_USER\Software\Missing"), "{err}");
    assert!(!std::path::Path::new(&missing).exists());
    let err = home.fails(&["export", r"HKCU\Software\E"]);
    assert!(err.contains("Invalid syntax. Missing FILE."), "{err}");
}

#[test]
fn a_bad_line_in_the_middle_changes_nothing() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Software\Keep", "/v", "v", "/d", "old"]);
    let before = home.state();
    let path = file(&home, "bad.reg");
    let text = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Keep]\r\n\
                \"v\"=\"new\"\r\n[HKEY_CURRENT_USER\\Software\\New]\r\n\"n\"=dword:00000001\r\n\
                \"broken\" \"no equals\"\r\n\"m\"=hex:01\r\n";
    std::fs::write(&path, text).unwrap();
    let err = home.fails(&["import", &path]);
    assert_eq!(err, format!("ERROR: {path}:7: expected \"=\" after the value name"));
    assert_eq!(home.state(), before);
    // A key path the registry would refuse is found before anything is changed, too.
    std::fs::write(&path, "REGEDIT4\n[HKCU\\Software\\Keep]\n\"v\"=\"new\"\n[HKXX\\Nope]\n").unwrap();
    let err = home.fails(&["import", &path]);
    assert!(err.starts_with(&format!("ERROR: {path}:4: invalid key name \"HKXX\\\\Nope\"")), "{err}");
    assert_eq!(home.state(), before);
    // A file that is not there.
    let err = home.fails(&["import", &file(&home, "nope.reg")]);
    assert!(err.contains("nope.reg: cannot read the file: No such file or directory"), "{err}");
}

#[test]
fn a_failure_midway_changes_nothing() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Software\App", "/v", "first", "/d", "1"]);
    home.ok(&["add", r"HKCU\Software\App", "/v", "second", "/t", "REG_DWORD", "/d", "2"]);
    home.ok(&["add", r"HKCU\Software\App", "/v", "third", "/d", "3"]);
    tree(&home, r"HKCU\Software\Tree");
    tree(&home, r"HKLM\SOFTWARE\Machine");
    let before = home.state();
    let path = file(&home, "midway.reg");
    let text = [
        "Windows Registry Editor Version 5.00",
        "",
        "[HKEY_CURRENT_USER\\Software\\App]",
        "\"first\"=\"changed\"",
        "\"second\"=-",
        "\"new\"=hex:01,02",
        "@=\"default\"",
        "[-HKEY_CURRENT_USER\\Software\\Tree]",
        "[HKEY_CURRENT_USER\\Software\\Brand\\New\\Keys]",
        "\"v\"=\"x\"",
        "[-HKEY_LOCAL_MACHINE\\SOFTWARE\\Machine\\Sub]",
        "[HKLM\\SOFTWARE\\Machine]",
        "\"Port\"=dword:00000001",
        "\"List\"=-",
        "[HKEY_CURRENT_USER\\Software\\Tree\\Again]",
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\\Services\\Imported]",
        "\"Start\"=dword:00000003",
        "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Foo]",
        "\"never\"=\"set\"",
        "",
    ]
    .join("\r\n");
    std::fs::write(&path, utf16_bytes(&text)).unwrap();
    let err = home.fails(&["import", &path]);
    assert_eq!(
        err,
        format!(
            "ERROR: {path}:18: access denied (STATUS_ACCESS_DENIED) at \
             HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Foo"
        )
    );
    assert_eq!(home.state(), before);
    // Without the last key line the same file goes through.
    let good = text.replace("[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Foo]\r\n\"never\"=\"set\"\r\n", "");
    std::fs::write(&path, utf16_bytes(&good)).unwrap();
    assert_eq!(home.ok(&["import", &path]), DONE);
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\App"]),
        "\nHKEY_CURRENT_USER\\Software\\App\n    first    REG_SZ    changed\n    third    REG_SZ    3\n    \
         new    REG_BINARY    0102\n    (Default)    REG_SZ    default\n\n"
    );
    assert_eq!(home.ok(&["query", r"HKCU\Software\Tree", "/s"]), "\nHKEY_CURRENT_USER\\Software\\Tree\\Again\n\n");
    home.fails(&["query", r"HKLM\SOFTWARE\Machine\Sub"]);
    home.ok(&["query", r"HKLM\SYSTEM\ControlSet001\Services\Imported", "/v", "Start"]);
}

#[test]
fn a_late_failure_leaves_the_store_as_it_was_and_a_success_is_durable() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Software\App", "/v", "setting", "/d", "old"]);
    home.ok(&["add", r"HKCU\Software\App\Doomed", "/v", "d", "/t", "REG_DWORD", "/d", "1"]);
    home.ok(&["add", r"HKLM\SOFTWARE\Vendor", "/v", "keep", "/d", "me"]);
    let before = home.state();
    let path = file(&home, "late.reg");
    let head = [
        "Windows Registry Editor Version 5.00",
        "",
        "[HKEY_CURRENT_USER\\Software\\App]",
        "\"setting\"=\"new\"",
        "[HKEY_CURRENT_USER\\Software\\Created\\Deep]",
        "\"made\"=dword:0000002a",
        "[-HKEY_CURRENT_USER\\Software\\App\\Doomed]",
        "[HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor]",
        "\"keep\"=-",
        "\"added\"=\"x\"",
    ]
    .join("\r\n");
    // The last line fails when it is applied: a root cannot be deleted; a key cannot be
    // created where the caller may not create one.
    let late = [
        (
            "[-HKEY_LOCAL_MACHINE\\SOFTWARE]",
            "a root or hive key cannot be deleted (STATUS_CANNOT_DELETE) at HKEY_LOCAL_MACHINE\\SOFTWARE",
        ),
        (
            "[HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Foo]\r\n\"never\"=\"set\"",
            "access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Foo",
        ),
    ];
    for (line, error) in late {
        std::fs::write(&path, format!("{head}\r\n{line}\r\n")).unwrap();
        assert_eq!(home.fails(&["import", &path]), format!("ERROR: {path}:11: {error}"));
        assert_eq!(home.state(), before);
        home.fails(&["query", r"HKCU\Software\Created"]);
        assert_eq!(
            home.ok(&["query", r"HKCU\Software\App", "/v", "setting"]),
            "\nHKEY_CURRENT_USER\\Software\\App\n    setting    REG_SZ    old\n\n"
        );
    }
    // Without a failing line it commits; every later process (each `ok` is one) sees it all.
    std::fs::write(&path, format!("{head}\r\n")).unwrap();
    assert_eq!(home.ok(&["import", &path]), DONE);
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\App", "/s"]),
        "\nHKEY_CURRENT_USER\\Software\\App\n    setting    REG_SZ    new\n\n"
    );
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Created", "/s"]),
        "\nHKEY_CURRENT_USER\\Software\\Created\\Deep\n    made    REG_DWORD    0x2a\n\n"
    );
    assert_eq!(
        home.ok(&["query", r"HKLM\SOFTWARE\Vendor"]),
        "\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor\n    added    REG_SZ    x\n\n"
    );
    let after = home.state();
    assert_ne!(after, before);
    // Importing it again changes nothing more.
    assert_eq!(home.ok(&["import", &path]), DONE);
    assert_eq!(home.state(), after);
}

#[test]
fn deletions_of_keys_and_values() {
    let home = Home::new();
    tree(&home, r"HKCU\Software\D");
    let path = file(&home, "delete.reg");
    let text = "Windows Registry Editor Version 5.00\n\n[-HKEY_CURRENT_USER\\Software\\D\\Sub]\n\
                [-HKEY_CURRENT_USER\\Software\\D\\Not There\\At All]\n[HKEY_CURRENT_USER\\Software\\D]\n\
                \"Port\"=-\n@=-\n\"not there\"=-\n\"BE\"=-\n";
    std::fs::write(&path, text).unwrap();
    assert_eq!(home.ok(&["import", &path]), DONE);
    let listing = home.ok(&["query", r"HKCU\Software\D", "/s"]);
    assert!(!listing.contains("Sub") && !listing.contains("Port") && !listing.contains("(Default)"), "{listing}");
    assert!(!listing.contains("REG_DWORD_BIG_ENDIAN"), "{listing}");
    assert!(
        listing.contains("    Quoted    REG_SZ") && listing.contains("HKEY_CURRENT_USER\\Software\\D\\another key")
    );
    // Roots and hives stay.
    std::fs::write(&path, "REGEDIT4\n\n[-HKEY_LOCAL_MACHINE\\SOFTWARE]\n").unwrap();
    let err = home.fails(&["import", &path]);
    assert!(
        err.ends_with(
            ":3: a root or hive key cannot be deleted (STATUS_CANNOT_DELETE) at HKEY_LOCAL_MACHINE\\SOFTWARE"
        ),
        "{err}"
    );
}

#[test]
fn utf8_and_regedit4_files() {
    let home = Home::new();
    let path = file(&home, "utf8.reg");
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend(
        "Windows Registry Editor Version 5.00\n\n[HKEY_CURRENT_USER\\Software\\Grüße]\n\"Ä\"=\"€\"\n".as_bytes(),
    );
    std::fs::write(&path, bytes).unwrap();
    home.ok(&["import", &path]);
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Grüße", "/v", "Ä"]),
        "\nHKEY_CURRENT_USER\\Software\\Grüße\n    Ä    REG_SZ    €\n\n"
    );
    // REGEDIT4 in ANSI: strings in hex(2) and hex(7) are one byte per character.
    let mut bytes = b"REGEDIT4\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\Old]\r\n\"Name\"=\"caf".to_vec();
    bytes.extend([0xE9, b'"']);
    bytes.extend(
        b"\r\n\"Path\"=hex(2):25,54,45,4d,50,25,00\r\n\"List\"=hex(7):61,00,62,00,00\r\n\"N\"=dword:0000000a\r\n",
    );
    std::fs::write(&path, bytes).unwrap();
    home.ok(&["import", &path]);
    assert_eq!(
        home.ok(&["query", r"HKLM\SOFTWARE\Old"]),
        "\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Old\n    Name    REG_SZ    café\n    Path    REG_EXPAND_SZ    %TEMP%\n    \
         List    REG_MULTI_SZ    a\\0b\n    N    REG_DWORD    0xa\n\n"
    );
}
