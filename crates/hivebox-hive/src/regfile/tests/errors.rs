//! Malformed files: each error names the right line (and column).

use super::*;
use crate::regfile::parse;

/// The error of a file whose line 3 (after the header and a key line) is `line`:
/// (line, column, message).
fn bad(line: &str) -> (usize, Option<usize>, String) {
    let e = err(&v5(&["[HKCU\\T]", line]));
    (e.line, e.column, e.to_string())
}

#[test]
fn value_lines() {
    assert_eq!(bad("\"v\" \"x\""), (3, Some(5), "line 3: expected \"=\" after the value name".into()));
    assert_eq!(bad("@\"x\"").1, Some(2));
    assert_eq!(
        bad("\"v\"=\"unterminated").2,
        "line 3: missing closing quote (write \\\" for a quote inside the string)"
    );
    assert_eq!(bad(r#""v"="C:\""#).0, 3);
    assert_eq!(
        bad(r#""v"="a\qb""#),
        (3, Some(7), r"line 3: unknown escape sequence \q (write \\ for a backslash)".into())
    );
    assert_eq!(bad(r#""v"="a\0""#).1, Some(7));
    assert_eq!(bad("\"v\"=\"x\" junk"), (3, Some(9), "line 3: unexpected text after the data".into()));
    assert_eq!(bad("\"v\"=-x").1, Some(6));
    assert_eq!(
        bad("\"v\"="),
        (3, Some(5), "line 3: expected the data: \"STRING\", dword:, hex:, hex(N): or - (to delete the value)".into())
    );
    assert_eq!(bad("\"v\"=str:\"x\"").1, Some(5));
    assert_eq!(
        bad("\"unterminated name=1").2,
        "line 3: missing closing quote (write \\\" for a quote inside the string)"
    );
    assert_eq!(
        bad("v=1"),
        (3, Some(1), "line 3: expected a key line ([KEY] or [-KEY]), a value line (\"NAME\"=DATA) or a comment".into())
    );
}

#[test]
fn numbers_and_bytes() {
    assert_eq!(bad("\"v\"=dword:").1, Some(5));
    assert_eq!(bad("\"v\"=dword:123456789").2, "line 3: dword: takes 1 to 8 hex digits, such as dword:0000001f");
    assert_eq!(bad("\"v\"=dword:12g").1, Some(13));
    assert_eq!(bad("\"v\"=dword:-1").1, Some(5));
    assert_eq!(bad("\"v\"=hex(7)01").2, "line 3: expected a type number in hex and a colon, such as hex(7):");
    assert_eq!(bad("\"v\"=hex():01").1, Some(5));
    assert_eq!(bad("\"v\"=hex(123456789):01").1, Some(5));
    assert_eq!(bad("\"v\"=hex:01,,02"), (3, Some(12), "line 3: expected a hex byte before \",\"".into()));
    assert_eq!(bad("\"v\"=hex:,01").1, Some(9));
    assert_eq!(bad("\"v\"=hex:012"), (3, Some(9), "line 3: a byte has one or two hex digits".into()));
    assert_eq!(bad("\"v\"=hex:01 02"), (3, Some(12), "line 3: expected \",\" between bytes".into()));
    assert_eq!(bad("\"v\"=hex:0x01").1, Some(10));
    assert_eq!(bad("\"v\"=hex:01,zz"), (3, Some(12), "line 3: expected a hex byte such as 0a".into()));
    assert_eq!(bad("\"v\"=hex:01,\\ 02").2, "line 3: unexpected text after the \"\\\" that continues the line");
}

#[test]
fn errors_in_continuation_lines_name_that_line() {
    let e = err(&v5(&["[HKCU\\T]", "\"v\"=hex:01,02,\\", "  03,04,\\", "", "  05,x6", "\"w\"=\"\""]));
    assert_eq!((e.line, e.column), (6, Some(6)));
    // A continuation that runs into the next value line.
    let e = err(&v5(&["[HKCU\\T]", "\"v\"=hex:01,\\", "\"w\"=\"\""]));
    assert_eq!((e.line, e.column), (4, Some(1)));
}

#[test]
fn key_lines() {
    let e = err(&v5(&["[HKCU\\T"]));
    assert_eq!((e.line, e.column, e.reason.as_str()), (2, Some(8), "missing \"]\" at the end of the key line"));
    let e = err(&v5(&["[HKCU\\T] x"]));
    assert_eq!((e.line, e.column), (2, Some(10)));
    assert_eq!(err(&v5(&["[]"])).reason, "empty key path");
    assert_eq!(err(&v5(&["[-]"])).column, Some(3));
    let e = err(&v5(&["", "[HKXX\\T]"]));
    assert_eq!((e.line, e.column), (3, Some(2)));
    assert!(e.reason.contains("it must start with HKLM"), "{e}");
    assert!(err(&v5(&["[HKLM\\A\\\\B]"])).reason.contains("empty key name component"));
    assert!(err(&v5(&[&format!("[HKLM\\{}]", "k".repeat(256))])).reason.contains("the limit is 255"));
    assert!(err(&v5(&[&format!("[HKLM\\{}]", vec!["k"; 512].join("\\"))])).reason.contains("levels deep"));
    assert!(err(&v5(&["[\\\\server\\HKLM\\X]"])).reason.contains("remote"));
}

#[test]
fn structure() {
    let e = err(&v5(&["", "\"v\"=\"x\""]));
    assert_eq!((e.line, e.reason.as_str()), (3, "a value line must follow a [KEY] line"));
    let e = err(&v5(&["[-HKCU\\T]", "\"v\"=\"x\""]));
    assert_eq!((e.line, e.reason.as_str()), (3, "a value line cannot follow a [-KEY] line, which deletes the key"));
    // A value name over the registry's limit.
    let e = err(&v5(&["[HKCU\\T]", &format!("\"{}\"=\"\"", "n".repeat(16_384))]));
    assert_eq!((e.line, e.column), (3, Some(1)));
    assert!(e.reason.contains("the limit is 16383"), "{e}");
    // NUL characters anywhere but at the very end.
    let e = err(&v5(&["[HKCU\\T]", "\"v\"=\"a\0b\""]));
    assert_eq!((e.line, e.column, e.reason.as_str()), (3, Some(7), "unexpected NUL character"));
}

#[test]
fn the_bad_line_in_the_middle_of_a_long_file() {
    let mut lines = vec!["[HKCU\\T]".to_owned()];
    for i in 0..40 {
        lines.push(format!("\"v{i}\"=dword:{i:08x}"));
    }
    lines[25] = "\"v24\"=dword:xyz".into();
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let e = err(&v5(&refs));
    assert_eq!(e.to_string(), "line 27: dword: takes 1 to 8 hex digits, such as dword:0000001f");
}

#[test]
fn encodings() {
    // An unpaired surrogate on line 2 of a UTF-16 file.
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(utf16("REGEDIT4\r\n[HKCU\\"));
    bytes.extend([0x00, 0xD8]);
    bytes.extend(utf16("]\r\n"));
    let e = parse(&bytes).unwrap_err();
    assert_eq!(e.line, 2);
    assert!(e.reason.contains("unpaired surrogate 0xD800"), "{e}");
    // An odd number of bytes.
    let mut bytes = vec![0xFF, 0xFE];
    bytes.extend(utf16("REGEDIT4\r\n"));
    bytes.push(b'[');
    assert_eq!(parse(&bytes).unwrap_err().reason, "the file ends in the middle of a UTF-16 character");
    // Invalid UTF-8 after a UTF-8 BOM.
    let mut bytes = vec![0xEF, 0xBB, 0xBF];
    bytes.extend(b"REGEDIT4\n\n[HKCU\\\xFF]\n");
    assert_eq!(parse(&bytes).unwrap_err().line, 3);
}
