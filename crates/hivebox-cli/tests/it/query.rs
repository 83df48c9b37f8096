//! `reg add` and `reg query`: every type, reg.exe's layout, recursion, search, JSON.

use crate::{DONE, Home, my_sid};

/// Adds one value and returns the value line `reg query /v` prints for it.
fn round_trip(home: &Home, name: &str, add: &[&str]) -> String {
    let mut args = vec!["add", r"HKLM\SOFTWARE\Types", "/v", name];
    args.extend_from_slice(add);
    assert_eq!(home.ok(&args), DONE);
    let out = home.ok(&["query", r"HKLM\SOFTWARE\Types", "/v", name]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out:?}");
    assert_eq!((lines[0], lines[1], lines[3]), ("", r"HKEY_LOCAL_MACHINE\SOFTWARE\Types", ""));
    lines[2].to_owned()
}

#[test]
fn every_type_round_trips() {
    let home = Home::new();
    let cases: &[(&str, &[&str], &str)] = &[
        ("Sz", &["/d", "hello world"], "    Sz    REG_SZ    hello world"),
        ("NoData", &[], "    NoData    REG_SZ    "),
        ("Expand", &["/t", "REG_EXPAND_SZ", "/d", "%HOME%/bin"], "    Expand    REG_EXPAND_SZ    %HOME%/bin"),
        ("Multi", &["/t", "REG_MULTI_SZ", "/d", r"a\0b\0c"], r"    Multi    REG_MULTI_SZ    a\0b\0c"),
        ("MultiSep", &["/t", "REG_MULTI_SZ", "/s", "#", "/d", "x#y z"], r"    MultiSep    REG_MULTI_SZ    x\0y z"),
        ("DwordDec", &["/t", "REG_DWORD", "/d", "42"], "    DwordDec    REG_DWORD    0x2a"),
        ("DwordHex", &["/t", "reg_dword", "/d", "0xFFFFFFFF"], "    DwordHex    REG_DWORD    0xffffffff"),
        ("Qword", &["/t", "REG_QWORD", "/d", "0x100000000"], "    Qword    REG_QWORD    0x100000000"),
        (
            "QwordDec",
            &["/t", "REG_QWORD", "/d", "18446744073709551615"],
            "    QwordDec    REG_QWORD    0xffffffffffffffff",
        ),
        ("Binary", &["/t", "REG_BINARY", "/d", "0aff10"], "    Binary    REG_BINARY    0AFF10"),
        ("None", &["/t", "REG_NONE", "/d", "00ff"], "    None    REG_NONE    00FF"),
        ("NoneEmpty", &["/t", "REG_NONE"], "    NoneEmpty    REG_NONE    "),
        (
            "BigEndian",
            &["/t", "REG_DWORD_BIG_ENDIAN", "/d", "0x1234"],
            "    BigEndian    REG_DWORD_BIG_ENDIAN    0x1234",
        ),
    ];
    for (name, add, line) in cases {
        assert_eq!(round_trip(&home, name, add), *line, "{name}");
    }
    // The stored bytes, through --json: little-endian DWORD, big-endian DWORD_BIG_ENDIAN,
    // UTF-16LE strings with their terminators.
    let json: serde_json::Value =
        serde_json::from_str(&home.ok(&["query", r"HKLM\SOFTWARE\Types", "--json"])).expect("json");
    let raw = |name: &str| {
        let values = json["values"].as_array().expect("values");
        let v = values.iter().find(|v| v["name"] == name).expect("value present");
        v["raw"].as_str().expect("raw").to_owned()
    };
    assert_eq!(raw("DwordDec"), "2A000000");
    assert_eq!(raw("BigEndian"), "00001234");
    assert_eq!(raw("Multi"), "6100000062000000630000000000");
    assert_eq!(raw("Sz"), "680065006C006C006F00200077006F0072006C0064000000");
}

#[test]
fn layout_is_reg_exe_s() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Software\Layout", "/v", "Test1", "/d", "Hello, World"]);
    home.ok(&["add", r"HKCU\Software\Layout", "/v", "Test2", "/t", "REG_DWORD", "/d", "0x123"]);
    // No subkeys yet: values, then one blank line.
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Layout"]),
        "\nHKEY_CURRENT_USER\\Software\\Layout\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n\n"
    );
    home.ok(&["add", r"HKCU\Software\Layout\subkey", "/v", "Test3", "/d", "Some string data"]);
    home.ok(&["add", r"HKCU\Software\Layout\empty"]);
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Layout"]),
        "\nHKEY_CURRENT_USER\\Software\\Layout\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n\n\
         HKEY_CURRENT_USER\\Software\\Layout\\empty\nHKEY_CURRENT_USER\\Software\\Layout\\subkey\n"
    );
    // /s: each key's section; a key without values still gets its line and a blank line,
    // except the starting key.
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Layout", "/s"]),
        "\nHKEY_CURRENT_USER\\Software\\Layout\n    Test1    REG_SZ    Hello, World\n    Test2    REG_DWORD    0x123\n\n\
         HKEY_CURRENT_USER\\Software\\Layout\\empty\n\n\
         HKEY_CURRENT_USER\\Software\\Layout\\subkey\n    Test3    REG_SZ    Some string data\n\n"
    );
    // A trailing backslash changes nothing.
    assert_eq!(home.ok(&["query", r"HKCU\Software\Layout\", "/s"]), home.ok(&["query", r"HKCU\Software\Layout", "/s"]));
    // /v NAME /s: every key holding the value, then the count.
    home.ok(&["add", r"HKCU\Software\Layout\subkey", "/v", "Test1", "/d", "again"]);
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Layout", "/v", "Test1", "/s"]),
        "\nHKEY_CURRENT_USER\\Software\\Layout\n    Test1    REG_SZ    Hello, World\n\n\
         HKEY_CURRENT_USER\\Software\\Layout\\subkey\n    Test1    REG_SZ    again\n\nEnd of search: 2 match(es) found.\n"
    );
    // /t filters the values shown.
    assert_eq!(
        home.ok(&["query", r"HKCU\Software\Layout", "/t", "REG_DWORD"]),
        "\nHKEY_CURRENT_USER\\Software\\Layout\n    Test2    REG_DWORD    0x123\n\n\
         HKEY_CURRENT_USER\\Software\\Layout\\empty\nHKEY_CURRENT_USER\\Software\\Layout\\subkey\n"
    );
}

#[test]
fn default_value() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\D"]);
    // Unset: only /ve mentions it.
    assert_eq!(home.ok(&["query", r"HKCU\D"]), "\n");
    assert_eq!(
        home.ok(&["query", r"HKCU\D", "/ve"]),
        "\nHKEY_CURRENT_USER\\D\n    (Default)    REG_SZ    (value not set)\n\n"
    );
    home.ok(&["add", r"HKCU\D", "/ve", "/d", "dflt"]);
    assert_eq!(home.ok(&["query", r"HKCU\D", "/ve"]), "\nHKEY_CURRENT_USER\\D\n    (Default)    REG_SZ    dflt\n\n");
    assert_eq!(home.ok(&["query", r"HKCU\D"]), "\nHKEY_CURRENT_USER\\D\n    (Default)    REG_SZ    dflt\n\n");
    // /d without /v sets the default value too, as in reg.exe (with /f, since it exists).
    home.ok(&["add", r"HKCU\D", "/d", "other", "/f"]);
    assert!(home.ok(&["query", r"HKCU\D", "--default"]).contains("(Default)    REG_SZ    other"));
    home.ok(&["delete", r"HKCU\D", "/ve"]);
    assert_eq!(home.ok(&["query", r"HKCU\D"]), "\n");
}

#[test]
fn search_with_match_count() {
    let home = Home::new();
    home.ok(&["add", r"HKLM\SOFTWARE\Find", "/v", "InstallPath", "/d", "/opt/app"]);
    home.ok(&["add", r"HKLM\SOFTWARE\Find", "/v", "Version", "/d", "1.0"]);
    home.ok(&["add", r"HKLM\SOFTWARE\Find\AppPlugins", "/v", "Dir", "/d", "/OPT/app/plugins"]);
    home.ok(&["add", r"HKLM\SOFTWARE\Find\Other\Application"]);
    assert_eq!(
        home.ok(&["query", r"HKLM\SOFTWARE\Find", "/f", "app", "/s"]),
        "\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Find\n    InstallPath    REG_SZ    /opt/app\n\n\
         HKEY_LOCAL_MACHINE\\SOFTWARE\\Find\\AppPlugins\n    Dir    REG_SZ    /OPT/app/plugins\n\n\
         HKEY_LOCAL_MACHINE\\SOFTWARE\\Find\\Other\\Application\nEnd of search: 4 match(es) found.\n"
    );
    // Without /s: the key's values and its subkeys' names only.
    assert!(home.ok(&["query", r"HKLM\SOFTWARE\Find", "/f", "app"]).ends_with("End of search: 2 match(es) found.\n"));
    // /k keys only, /d data only, /c case, /e exact.
    let keys = home.ok(&["query", r"HKLM\SOFTWARE\Find", "/f", "app", "/s", "/k"]);
    assert!(keys.ends_with("End of search: 2 match(es) found.\n"), "{keys}");
    let data =
        home.ok(&["query", r"HKLM\SOFTWARE\Find", "--find", "OPT", "--recursive", "--data-only", "--case-sensitive"]);
    assert!(data.contains("Dir    REG_SZ") && data.ends_with("End of search: 1 match(es) found.\n"), "{data}");
    let exact = home.ok(&["query", r"HKLM\SOFTWARE\Find", "/f", "version", "/e", "/s"]);
    assert!(exact.ends_with("End of search: 1 match(es) found.\n"), "{exact}");
    assert!(
        home.ok(&["query", r"HKLM\SOFTWARE\Find", "/f", "nothing*here", "/s"])
            .ends_with("\nEnd of search: 0 match(es) found.\n")
    );
    let json: serde_json::Value =
        serde_json::from_str(&home.ok(&["query", r"HKLM\SOFTWARE\Find", "/f", "app", "/s", "--json"])).expect("json");
    assert_eq!(json["count"], 4);
    assert_eq!(json["matches"][2]["key"], r"HKEY_LOCAL_MACHINE\SOFTWARE\Find\Other\Application");
    assert_eq!(json["matches"][2]["key_matched"], true);
}

#[test]
fn names_are_case_insensitive() {
    let home = Home::new();
    home.ok(&["add", r"HKLM\SOFTWARE\x", "/v", "Name", "/d", "v"]);
    let out = home.ok(&["query", r"hklm\software\X"]);
    assert_eq!(out, "\nHKEY_LOCAL_MACHINE\\software\\X\n    Name    REG_SZ    v\n\n");
    assert!(home.ok(&["query", r"HKEY_LOCAL_MACHINE\SOFTWARE\X", "/v", "NAME"]).contains("    NAME    REG_SZ    v"));
    // The key keeps the case it was created with.
    assert!(home.ok(&["query", r"HKLM\SOFTWARE"]).contains("HKEY_LOCAL_MACHINE\\SOFTWARE\\x\n"));
}

#[test]
fn current_control_set_is_a_link() {
    let home = Home::new();
    home.ok(&["add", r"HKLM\SYSTEM\CurrentControlSet\Services\Foo", "/v", "Start", "/t", "REG_DWORD", "/d", "3"]);
    assert_eq!(
        home.ok(&["query", r"HKLM\SYSTEM\ControlSet001\Services\Foo"]),
        "\nHKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Services\\Foo\n    Start    REG_DWORD    0x3\n\n"
    );
}

#[test]
fn hkcu_is_the_users_key() {
    let home = Home::new();
    assert_eq!(home.ok(&["query", "HKCU"]), "\n");
    home.ok(&["add", r"HKCU\Software\Mine", "/v", "x", "/d", "1"]);
    let through_users = format!(r"HKU\{}\Software\Mine", my_sid());
    assert!(home.ok(&["query", &through_users]).contains("    x    REG_SZ    1"));
    assert!(home.ok(&["query", r"HKEY_CURRENT_USER\Software\Mine"]).contains("    x    REG_SZ    1"));
}

#[test]
fn json_output() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\J", "/v", "n", "/t", "REG_DWORD", "/d", "7"]);
    home.ok(&["add", r"HKCU\J\Kid", "/v", "s", "/d", "text"]);
    let j: serde_json::Value = serde_json::from_str(&home.ok(&["query", r"HKCU\J", "--json"])).expect("json");
    assert_eq!(j["key"], r"HKEY_CURRENT_USER\J");
    assert_eq!(j["values"][0]["name"], "n");
    assert_eq!(j["values"][0]["type"], "REG_DWORD");
    assert_eq!(j["values"][0]["data"], "0x7");
    assert_eq!(j["values"][0]["raw"], "07000000");
    assert_eq!(j["subkeys"], serde_json::json!(["Kid"]));
    assert!(j.get("children").is_none());
    let j: serde_json::Value = serde_json::from_str(&home.ok(&["query", r"HKCU\J", "/s", "--json"])).expect("json");
    assert_eq!(j["children"][0]["key"], r"HKEY_CURRENT_USER\J\Kid");
    assert_eq!(j["children"][0]["values"][0]["data"], "text");
    let j: serde_json::Value =
        serde_json::from_str(&home.ok(&["query", r"HKCU\J", "/v", "N", "--json"])).expect("json");
    assert_eq!(j["values"].as_array().map(Vec::len), Some(1));
}

#[test]
fn gnu_long_options() {
    let home = Home::new();
    assert_eq!(
        home.ok(&["add", r"HKCU\Long", "--value", "Port", "--type", "REG_DWORD", "--data", "8080", "--force"]),
        DONE
    );
    home.ok(&["add", r"HKCU\Long", "--value=List", "--type=REG_MULTI_SZ", "--separator=,", "--data=a,b"]);
    home.ok(&["add", r"HKCU\Long\Sub", "--default", "--data", "d"]);
    assert!(home.ok(&["query", r"HKCU\Long", "--value", "Port"]).contains("0x1f90"));
    assert!(home.ok(&["query", r"HKCU\Long", "--value", "List"]).contains(r"a\0b"));
    assert!(home.ok(&["query", r"HKCU\Long", "--recursive"]).contains("(Default)    REG_SZ    d"));
    home.ok(&["delete", r"HKCU\Long", "--all-values"]);
    assert_eq!(home.ok(&["query", r"HKCU\Long"]), "\nHKEY_CURRENT_USER\\Long\\Sub\n");
    home.ok(&["delete", r"HKCU\Long", "--force"]);
    home.fails(&["query", r"HKCU\Long"]);
    // Switches in either case and with either prefix.
    home.ok(&["ADD", r"HKCU\Case", "-V", "a", "-T", "REG_SZ", "-D", "b", "-F"]);
    assert!(home.ok(&["Query", r"HKCU\Case", "/V", "A"]).contains("    A    REG_SZ    b"));
}

#[test]
fn durable_across_invocations() {
    let home = Home::new();
    home.ok(&["add", r"HKLM\SOFTWARE\Durable", "/v", "one", "/d", "1"]);
    home.ok(&["flush", r"HKLM\SOFTWARE\Durable"]);
    home.ok(&["add", r"HKLM\SOFTWARE\Durable", "/v", "two", "/d", "2"]);
    // Each command above was its own process; this one reads what they stored.
    assert_eq!(
        home.ok(&["query", r"HKLM\SOFTWARE\Durable"]),
        "\nHKEY_LOCAL_MACHINE\\SOFTWARE\\Durable\n    one    REG_SZ    1\n    two    REG_SZ    2\n\n"
    );
    assert!(home.path().join("hives").is_dir());
}
