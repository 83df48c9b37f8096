//! Every kind of bad input: exit code 1, one `ERROR:` line, and nothing stored changes.

use crate::Home;

/// Runs each command; each must fail with a line containing its text and change nothing.
fn each_fails_cleanly(home: &Home, cases: &[(Vec<String>, &str)]) {
    for (args, expected) in cases {
        let before = home.state();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = home.fails(&args);
        assert!(err.contains(expected), "reg {args:?}: {err:?} does not mention {expected:?}");
        assert_eq!(home.state(), before, "reg {args:?} changed the registry");
    }
}

fn words(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| (*a).to_owned()).collect()
}

fn setup() -> Home {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Existing", "/v", "v", "/d", "old"]);
    home.ok(&["add", r"HKLM\SOFTWARE\Existing\Sub"]);
    home
}

#[test]
fn bad_names() {
    let home = setup();
    let long = format!(r"HKLM\SOFTWARE\{}", "k".repeat(256));
    let deep = format!(r"HKLM\{}", vec!["k"; 512].join(r"\"));
    let deeper = format!(r"HKLM\{}", vec!["k"; 513].join(r"\"));
    let long_value = "v".repeat(16_384);
    each_fails_cleanly(
        &home,
        &[
            (words(&["add", &long]), "is 256 characters long; the limit is 255 (STATUS_INVALID_PARAMETER)"),
            (words(&["add", r"HKLM\SOFTWARE\A\\B"]), "empty key name component"),
            (words(&["add", &deep, "/v", "x", "/d", "1"]), "levels deep; the limit is 512 (STATUS_NAME_TOO_LONG)"),
            (words(&["add", &deeper]), "(STATUS_NAME_TOO_LONG)"),
            (words(&["add", r"HKXX\Software\A"]), "must start with HKLM"),
            (words(&["query", r"\\server\HKLM\SOFTWARE"]), "remote registry paths are not supported"),
            (words(&["add", r"HKCU\Existing", "/v", &long_value, "/d", "x"]), "value name is 16384 characters long"),
            (words(&["rename", r"HKCU\Existing", &"n".repeat(256)]), "the limit is 255"),
            (words(&["rename", r"HKCU\Existing", r"A\B"]), "must be one key name, not a path"),
        ],
    );
}

#[test]
fn bad_types_and_data() {
    let home = setup();
    each_fails_cleanly(
        &home,
        &[
            (words(&["add", r"HKCU\New", "/v", "x", "/t", "REG_FOO", "/d", "1"]), r#"unknown value type "REG_FOO""#),
            (words(&["add", r"HKCU\New", "/t", "REG_FOO"]), "REG_FOO"),
            (
                words(&["add", r"HKCU\New\Deeper", "/v", "x", "/t", "REG_DWORD", "/d", "hello"]),
                r#"REG_DWORD data "hello" does not parse"#,
            ),
            (
                words(&["add", r"HKCU\Existing", "/v", "v", "/t", "REG_DWORD", "/d", "hello", "/f"]),
                "(STATUS_DATA_ERROR)",
            ),
            (words(&["add", r"HKCU\New", "/v", "x", "/t", "REG_DWORD", "/d", "4294967296"]), "does not fit in 32 bits"),
            (words(&["add", r"HKCU\New", "/v", "x", "/t", "REG_QWORD"]), "REG_QWORD"),
            (words(&["add", r"HKCU\New", "/v", "x", "/t", "REG_BINARY", "/d", "abc"]), "hexadecimal"),
            (words(&["add", r"HKCU\New", "/v", "x", "/t", "REG_MULTI_SZ", "/d", r"a\0\0b"]), "empty string"),
            (words(&["add", r"HKCU\New", "/v", "x", "/t", "REG_MULTI_SZ", "/s", "", "/d", "a"]), "empty separator"),
            (words(&["query", r"HKCU\Existing", "/t", "REG_NOPE"]), "REG_NOPE"),
        ],
    );
}

#[test]
fn missing_keys_and_values() {
    let home = setup();
    let not_found =
        "ERROR: The system was unable to find the specified registry key or value (STATUS_OBJECT_NAME_NOT_FOUND) at ";
    each_fails_cleanly(
        &home,
        &[
            (words(&["query", r"HKCU\Missing"]), &format!(r"{not_found}HKEY_CURRENT_USER\Missing")),
            (
                words(&["query", r"HKCU\Existing", "/v", "nope"]),
                &format!(r"{not_found}HKEY_CURRENT_USER\Existing\nope"),
            ),
            (words(&["delete", r"HKCU\Missing", "/f"]), &format!(r"{not_found}HKEY_CURRENT_USER\Missing")),
            (words(&["delete", r"HKCU\Existing", "/ve"]), &format!(r"{not_found}HKEY_CURRENT_USER\Existing\(Default)")),
            (words(&["delete", r"HKCU\Missing", "/va"]), "STATUS_OBJECT_NAME_NOT_FOUND"),
            (words(&["copy", r"HKCU\Missing", r"HKCU\Target", "/s"]), "STATUS_OBJECT_NAME_NOT_FOUND"),
            (words(&["rename", r"HKCU\Missing", "Other"]), "STATUS_OBJECT_NAME_NOT_FOUND"),
            (words(&["compare", r"HKCU\Existing", r"HKCU\Missing"]), "STATUS_OBJECT_NAME_NOT_FOUND"),
            (words(&["query", r"HKLM\SOFTWARE\Existing\Sub\Nope"]), "STATUS_OBJECT_NAME_NOT_FOUND"),
        ],
    );
}

#[test]
fn refusals() {
    let home = setup();
    each_fails_cleanly(
        &home,
        &[
            (
                words(&["add", r"HKCU\Existing", "/v", "V", "/d", "new"]),
                r"ERROR: value V already exists; pass /f to overwrite it (STATUS_OBJECT_NAME_COLLISION) at HKEY_CURRENT_USER\Existing\V",
            ),
            (words(&["delete", r"HKLM\SOFTWARE\Existing"]), "pass /f"),
            (words(&["delete", "HKCU", "/f"]), "a root or hive key cannot be deleted"),
        ],
    );
    assert!(home.ok(&["query", r"HKCU\Existing", "/v", "v"]).contains("old"));
}

#[test]
fn bad_syntax() {
    let home = setup();
    for args in [
        &["query"][..],
        &["query", r"HKCU\Existing", "/zz"],
        &["query", r"HKCU\Existing", "/v"],
        &["query", r"HKCU\Existing", "/v", "a", "/ve"],
        &["query", r"HKCU\Existing", "/s", "/s"],
        &["query", r"HKCU\Existing", "/k"],
        &["add"],
        &["add", r"HKCU\Existing", "--value"],
        &["add", r"HKCU\Existing", "--force=yes"],
        &["delete", r"HKCU\Existing", "/va", "/v", "v"],
        &["copy", r"HKCU\Existing"],
        &["compare", r"HKCU\Existing", r"HKCU\Existing", "/oa", "/os"],
        &["rename", r"HKCU\Existing"],
        &["frobnicate", r"HKCU\Existing"],
        &[],
    ] {
        let before = home.state();
        let err = home.fails(args);
        assert!(err.starts_with("ERROR: Invalid syntax. "), "{args:?}: {err}");
        assert!(err.ends_with("for usage."), "{args:?}: {err}");
        assert_eq!(home.state(), before);
    }
    let err = home.fails(&["query", r"HKCU\Existing", "/zz"]);
    assert_eq!(err, r#"ERROR: Invalid syntax. Unknown option /zz. Type "hivebox reg QUERY /?" for usage."#);
}
