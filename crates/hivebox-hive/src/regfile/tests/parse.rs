//! What each piece of the syntax parses to.

use super::*;
use crate::regfile::{RegVersion, parse};
use hivebox_core::ValueType;

#[test]
fn keys_deletions_and_every_root() {
    let file = ok(&v5(&[
        "",
        "[HKEY_LOCAL_MACHINE\\Software\\X]",
        "[-HKEY_CURRENT_USER\\Software\\Gone]",
        "[HKLM\\A]",
        "[HKCU]",
        "[HKCR\\.txt]",
        "[HKU\\.DEFAULT]",
        "[HKCC\\Sub]",
        "[HKEY_USERS\\S-1-5-18]",
        "[HKEY_CLASSES_ROOT\\*]",
        "[HKEY_CURRENT_CONFIG\\System]",
        "[hkey_local_machine\\lower]",
        "  [HKLM\\Indented]  ",
        "[HKLM\\Name]with]bracket]",
    ]));
    assert_eq!(file.version, RegVersion::V5);
    let keys: Vec<(&str, bool, usize)> = file
        .entries
        .iter()
        .map(|e| match e {
            RegEntry::Key { path, delete, line } => (path.as_str(), *delete, *line),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        keys,
        [
            ("HKEY_LOCAL_MACHINE\\Software\\X", false, 3),
            ("HKEY_CURRENT_USER\\Software\\Gone", true, 4),
            ("HKLM\\A", false, 5),
            ("HKCU", false, 6),
            ("HKCR\\.txt", false, 7),
            ("HKU\\.DEFAULT", false, 8),
            ("HKCC\\Sub", false, 9),
            ("HKEY_USERS\\S-1-5-18", false, 10),
            ("HKEY_CLASSES_ROOT\\*", false, 11),
            ("HKEY_CURRENT_CONFIG\\System", false, 12),
            ("hkey_local_machine\\lower", false, 13),
            ("HKLM\\Indented", false, 14),
            ("HKLM\\Name]with]bracket", false, 15),
        ]
    );
}

#[test]
fn strings_and_escapes() {
    assert_eq!(one_value("\"Name\"=\"Contoso Ltd\""), ("Name".into(), Some(Value::sz("Contoso Ltd"))));
    assert_eq!(one_value("@=\"default\""), (String::new(), Some(Value::sz("default"))));
    assert_eq!(one_value("\"\"=\"also default\"").0, "");
    assert_eq!(one_value("\"@\"=\"\"").0, "@");
    assert_eq!(data("\"v\"=\"\""), Value::sz(""));
    assert_eq!(data(r#""v"="C:\\Program Files\\""#), Value::sz(r"C:\Program Files\"));
    assert_eq!(data(r#""v"="say \"hi\"""#), Value::sz("say \"hi\""));
    assert_eq!(data(r#""v"="\\\"""#), Value::sz("\\\""));
    assert_eq!(data(r#""v"="a;b=c[d]""#), Value::sz("a;b=c[d]"));
    assert_eq!(data(r#""v"="two\r\nlines""#), Value::sz("two\r\nlines"));
    assert_eq!(data("\"v\"=\"ünï€😀\""), Value::sz("ünï€😀"));
    assert_eq!(one_value(r#""q\"uo\\te"="x""#).0, "q\"uo\\te");
    // Blanks around "=" and a comment after the data.
    assert_eq!(one_value("  \"v\" =\t\"x\"  ; why"), ("v".into(), Some(Value::sz("x"))));
    assert_eq!(one_value("@ = \"x\""), (String::new(), Some(Value::sz("x"))));
}

#[test]
fn dwords() {
    assert_eq!(data("\"v\"=dword:0000001f"), Value::dword(0x1f));
    assert_eq!(data("\"v\"=dword:FFFFFFFF"), Value::dword(u32::MAX));
    assert_eq!(data("\"v\"=dword:1"), Value::dword(1));
    assert_eq!(data("\"v\"=DWORD:00000002 ; two"), Value::dword(2));
}

#[test]
fn hex_of_every_type() {
    assert_eq!(data("\"v\"=hex:01,02,ff"), Value::binary(&[1, 2, 0xff]));
    assert_eq!(data("\"v\"=hex:"), Value::binary(&[]));
    assert_eq!(data("\"v\"=hex:0a,B,c"), Value::binary(&[0x0a, 0x0b, 0x0c]));
    assert_eq!(data("\"v\"=hex: 01 , 02 ,"), Value::binary(&[1, 2]));
    for ty in 0..=11u32 {
        let v = data(&format!("\"v\"=hex({ty:x}):de,ad"));
        assert_eq!(v, Value::new(ValueType(ty), vec![0xde, 0xad]), "hex({ty:x})");
    }
    assert_eq!(data("\"v\"=hex(B):01,00,00,00,00,00,00,80"), Value::qword(0x8000_0000_0000_0001));
    assert_eq!(data("\"v\"=hex(2):25,00,41,00,25,00,00,00"), Value::expand_sz("%A%"));
    assert_eq!(data("\"v\"=hex(ffffffff):"), Value::new(ValueType(u32::MAX), vec![]));
    assert_eq!(data("\"v\"=hex(100):00"), Value::new(ValueType(0x100), vec![0]));
}

#[test]
fn multi_strings_and_continuations() {
    let mut bytes = utf16("one\0two words\0\"three\"\0");
    bytes.extend([0, 0]);
    let list: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let (first, rest) = list.split_at(10);
    let text = v5(&[
        "[HKCU\\T]",
        &format!("\"Multi\"=hex(7):{},\\", first.join(",")),
        &format!("  {},\\", rest[..20].join(",")),
        "; a comment inside the list",
        "",
        &format!("\t{}", rest[20..].join(",")),
        "\"After\"=dword:00000001",
    ]);
    let file = ok(&text);
    let RegEntry::Value { name, action: Some(v), line, .. } = &file.entries[1] else { panic!("{file:?}") };
    assert_eq!((name.as_str(), *line), ("Multi", 3));
    assert_eq!(v.as_multi_sz().unwrap(), ["one", "two words", "\"three\""]);
    assert_eq!(v, &Value::multi_sz(&["one", "two words", "\"three\""]));
    let RegEntry::Value { name, line, .. } = &file.entries[2] else { panic!() };
    assert_eq!((name.as_str(), *line), ("After", 8));
    // A continuation right after the prefix, with a comment after the backslash; one at the
    // very end of the file ends the list.
    assert_eq!(ok(&v5(&["[HKCU\\T]", "\"v\"=hex:\\ ; next", "  01,02"])).entries.len(), 2);
    let file = ok("REGEDIT4\n[HKCU\\T]\n\"v\"=hex:01,\\");
    assert_eq!(
        file.entries[1],
        RegEntry::Value { key_index: 0, name: "v".into(), action: Some(Value::binary(&[1])), line: 3 }
    );
}

#[test]
fn value_deletions_and_comments() {
    let file = ok(&v5(&[
        "; leading comment",
        "[HKCU\\T]",
        "\"gone\"=-",
        "@=-",
        "   ; indented comment",
        "\"kept\"=\"x\" ; trailing",
        "[HKCU\\U]",
        "\"in U\"=- ; delete",
    ]));
    let summary: Vec<(usize, &str, bool, usize)> = file
        .entries
        .iter()
        .filter_map(|e| match e {
            RegEntry::Value { key_index, name, action, line } => {
                Some((*key_index, name.as_str(), action.is_some(), *line))
            }
            RegEntry::Key { .. } => None,
        })
        .collect();
    assert_eq!(summary, [(0, "gone", false, 4), (0, "", false, 5), (0, "kept", true, 7), (4, "in U", false, 9)]);
}

#[test]
fn line_ends_and_encodings() {
    let lf = "Windows Registry Editor Version 5.00\n\n[HKCU\\T]\n\"v\"=\"x\"\n";
    let crlf = lf.replace('\n', "\r\n");
    let cr = lf.replace('\n', "\r");
    let expected = ok(lf);
    assert_eq!(expected.entries.len(), 2);
    assert_eq!(ok(&crlf), expected);
    assert_eq!(ok(&cr), expected);
    // Bytes: UTF-16LE with a BOM, UTF-8 with and without one, UTF-16LE without one.
    let mut utf16_bom = vec![0xFF, 0xFE];
    utf16_bom.extend(utf16(&crlf));
    assert_eq!(parse(&utf16_bom).unwrap(), expected);
    assert_eq!(parse(utf16(&crlf).as_slice()).unwrap(), expected);
    let mut utf8_bom = vec![0xEF, 0xBB, 0xBF];
    utf8_bom.extend(crlf.as_bytes());
    assert_eq!(parse(&utf8_bom).unwrap(), expected);
    assert_eq!(parse(crlf.as_bytes()).unwrap(), expected);
    // NULs padding the end are ignored.
    utf16_bom.extend([0, 0, 0, 0]);
    assert_eq!(parse(&utf16_bom).unwrap(), expected);
    // Non-ASCII text in each encoding.
    let text = v5(&["[HKCU\\Grüße]", "\"Ä\"=\"€ 😀\""]);
    let mut wide = vec![0xFF, 0xFE];
    wide.extend(utf16(&text));
    for bytes in [wide, text.clone().into_bytes()] {
        let file = parse(&bytes).unwrap();
        assert_eq!(file, ok(&text));
        assert!(matches!(&file.entries[0], RegEntry::Key { path, .. } if path == "HKCU\\Grüße"));
    }
}

#[test]
fn regedit4_files() {
    // ANSI (Windows-1252): "Grüße" and "€" as single bytes.
    let mut bytes = b"REGEDIT4\r\n\r\n[HKEY_CURRENT_USER\\Gr".to_vec();
    bytes.extend([0xFC, b's', b's', b'e']);
    bytes.extend(b"]\r\n\"Euro\"=\"");
    bytes.push(0x80);
    bytes.extend(b"\"\r\n\"Path\"=hex(2):25,50,41,54,48,25,00\r\n\"List\"=hex(7):61,00,e4,00,00\r\n");
    bytes.extend(b"\"Bin\"=hex:e4,00\r\n\"N\"=dword:00000010\r\n");
    let file = parse(&bytes).unwrap();
    assert_eq!(file.version, RegVersion::Regedit4);
    let RegEntry::Key { path, .. } = &file.entries[0] else { panic!() };
    assert_eq!(path, "HKEY_CURRENT_USER\\Grüsse");
    let values: Vec<Value> = file
        .entries
        .iter()
        .filter_map(|e| match e {
            RegEntry::Value { action, .. } => action.clone(),
            RegEntry::Key { .. } => None,
        })
        .collect();
    // hex(2) and hex(7) are ANSI strings, turned into UTF-16LE; other hex data stays as it is.
    assert_eq!(
        values,
        [
            Value::sz("€"),
            Value::expand_sz("%PATH%"),
            Value::multi_sz(&["a", "ä"]),
            Value::binary(&[0xe4, 0]),
            Value::dword(16),
        ]
    );
    // A UTF-8 REGEDIT4 file, with UTF-8 strings in hex(7).
    let text = "REGEDIT4\n[HKCU\\T]\n\"M\"=hex(7):c3,a4,00,62,00,00\n\"S\"=\"ä\"\n";
    let file = ok(text);
    assert!(matches!(&file.entries[1], RegEntry::Value { action: Some(v), .. } if *v == Value::multi_sz(&["ä", "b"])));
    assert!(matches!(&file.entries[2], RegEntry::Value { action: Some(v), .. } if *v == Value::sz("ä")));
}

#[test]
fn headers() {
    assert_eq!(ok("\r\n  Windows Registry Editor Version 5.00  \r\n").entries, []);
    assert_eq!(ok("REGEDIT4").version, RegVersion::Regedit4);
    let e = err("Windows Registry Editor Version 4.00\r\n");
    assert_eq!((e.line, e.to_string().contains("not a registry file")), (1, true));
    assert_eq!(err("\n\nREGEDIT\n").line, 3);
    assert_eq!(err("").reason, "the file is empty");
    assert_eq!(err("\r\n\r\n").reason, "the file is empty");
    let e = parse(&[0xFE, 0xFF, 0, b'W']).unwrap_err();
    assert!(e.reason.contains("big-endian"), "{e}");
}
