//! The writer's layout, byte for byte.

use super::*;
use crate::regfile::{export, export_text};
use hivebox_core::{KeyImage, ValueType};

fn key(name: &str, values: Vec<(&str, Value)>, subkeys: Vec<KeyImage>) -> KeyImage {
    KeyImage {
        name: name.into(),
        values: values.into_iter().map(|(n, v)| (n.to_owned(), v)).collect(),
        subkeys,
        ..KeyImage::default()
    }
}

#[test]
fn a_small_tree_byte_for_byte() {
    let tree = key(
        "ignored",
        vec![
            ("", Value::sz("Contoso")),
            ("Name", Value::sz("say \"hi\" C:\\x")),
            ("Port", Value::dword(0x1f90)),
            ("Blob", Value::binary(&[1, 2, 0xff])),
            ("Path", Value::expand_sz("%A%")),
            ("List", Value::multi_sz(&["a", "b"])),
            ("Big", Value::qword(1)),
            ("Empty", Value::binary(&[])),
            ("Odd", Value::new(ValueType::REG_SZ, utf16("a"))),
            ("BE", Value::dword_big_endian(1)),
            ("None", Value::new(ValueType::REG_NONE, vec![])),
            ("Short", Value::new(ValueType::REG_DWORD, vec![1, 2])),
            ("Lines", Value::sz("a\r\nb")),
            ("Q\"\\\n", Value::sz("")),
        ],
        vec![key("b", vec![], vec![]), key("A", vec![("x", Value::sz("y"))], vec![key("Deep", vec![], vec![])])],
    );
    let expected = [
        "Windows Registry Editor Version 5.00",
        "",
        "[HKEY_CURRENT_USER\\Software\\Contoso]",
        "@=\"Contoso\"",
        "\"Name\"=\"say \\\"hi\\\" C:\\\\x\"",
        "\"Port\"=dword:00001f90",
        "\"Blob\"=hex:01,02,ff",
        "\"Path\"=hex(2):25,00,41,00,25,00,00,00",
        "\"List\"=hex(7):61,00,00,00,62,00,00,00,00,00",
        "\"Big\"=hex(b):01,00,00,00,00,00,00,00",
        "\"Empty\"=hex:",
        "\"Odd\"=hex(1):61,00",
        "\"BE\"=hex(5):00,00,00,01",
        "\"None\"=hex(0):",
        "\"Short\"=hex(4):01,02",
        "\"Lines\"=hex(1):61,00,0d,00,0a,00,62,00,00,00",
        "\"Q\\\"\\\\\\n\"=\"\"",
        "",
        "[HKEY_CURRENT_USER\\Software\\Contoso\\A]",
        "\"x\"=\"y\"",
        "",
        "[HKEY_CURRENT_USER\\Software\\Contoso\\A\\Deep]",
        "",
        "[HKEY_CURRENT_USER\\Software\\Contoso\\b]",
        "",
        "",
    ]
    .join("\r\n");
    let text = export_text("HKEY_CURRENT_USER\\Software\\Contoso", &tree).unwrap();
    assert_eq!(text, expected);
    let bytes = export("HKEY_CURRENT_USER\\Software\\Contoso", &tree).unwrap();
    let mut expected_bytes = vec![0xFF, 0xFE];
    expected_bytes.extend(utf16(&expected));
    assert_eq!(bytes, expected_bytes);
    // It reads back as what was written.
    let file = crate::regfile::parse(&bytes).unwrap();
    let RegEntry::Value { action: Some(v), .. } = &file.entries[2] else { panic!() };
    assert_eq!(v, &Value::sz("say \"hi\" C:\\x"));
}

#[test]
fn hex_lines_wrap_like_regedit() {
    // As regedit exports a default `Path`: 21 bytes after `"Path"=hex(2):`, then the rest.
    let tree = key("", vec![("Path", Value::expand_sz("%SystemRoot%\\system32"))], vec![]);
    let text = export_text("HKEY_LOCAL_MACHINE\\X", &tree).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert_eq!(
        lines[3..5],
        [
            "\"Path\"=hex(2):25,00,53,00,79,00,73,00,74,00,65,00,6d,00,52,00,6f,00,6f,00,74,\\",
            "  00,25,00,5c,00,73,00,79,00,73,00,74,00,65,00,6d,00,33,00,32,00,00,00",
        ]
    );
    // 80 bytes under a short name: 22 on the first line, then 25 per line.
    let data: Vec<u8> = (0..80).collect();
    let tree = key("", vec![("Data", Value::binary(&data))], vec![]);
    let text = export_text("HKEY_LOCAL_MACHINE\\X", &tree).unwrap();
    let lines: Vec<&str> = text.split("\r\n").collect();
    let bytes_per_line: Vec<usize> = lines[3..7].iter().map(|l| l.matches(',').count()).collect();
    assert_eq!(bytes_per_line, [22, 25, 25, 7]);
    assert_eq!(lines[3].len(), 78);
    assert_eq!(lines[4], format!("  {},\\", (22..47).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(",")));
    assert_eq!(lines[6], "  48,49,4a,4b,4c,4d,4e,4f");
    assert_eq!(lines[7], "");
}

#[test]
fn lines_stay_within_80_characters() {
    for name_len in 0..90 {
        let name = "n".repeat(name_len);
        let data: Vec<u8> = (0..=255).collect();
        for ty in [ValueType::REG_BINARY, ValueType(7), ValueType(0x1234_5678)] {
            let tree = key("", vec![(name.as_str(), Value::new(ty, data.clone()))], vec![]);
            let text = export_text("HKLM\\X", &tree).unwrap();
            let lines: Vec<&str> = text.split("\r\n").collect();
            // The first line holds at least one byte however long the name; continuation lines
            // hold 25.
            let prefix = lines[3].find(':').unwrap() + 1;
            assert!(lines[3].len() <= 80.max(prefix + 4), "{name_len} {ty}: {:?}", lines[3]);
            for line in &lines[4..] {
                assert!(line.len() <= 78, "{name_len} {ty}: {line:?} is {} long", line.len());
            }
            let file = ok(&text);
            let RegEntry::Value { action: Some(v), .. } = &file.entries[1] else { panic!() };
            assert_eq!(v.data, data);
        }
    }
}

#[test]
fn what_a_reg_file_cannot_hold() {
    let bad_key = key("", vec![], vec![key("line\nbreak", vec![], vec![])]);
    let e = export_text("HKCU\\T", &bad_key).unwrap_err();
    assert_eq!((e.key.as_str(), e.reason.as_str()), ("HKCU\\T\\line\nbreak", "the path contains a line break"));
    assert!(export_text("HKCU\\T", &key("", vec![], vec![key("a\\b", vec![], vec![])])).is_err());
    assert!(export_text("HKCU\\T", &key("", vec![], vec![key("", vec![], vec![])])).is_err());
    assert!(export_text("HKCU\\T\r", &key("", vec![], vec![])).is_err());
    let e = export_text("HKCU\\T", &key("", vec![("a\0b", Value::sz(""))], vec![])).unwrap_err();
    assert_eq!(e.key, "HKCU\\T");
    assert!(e.to_string().contains("NUL"), "{e}");
}
