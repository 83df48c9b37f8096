//! `reg delete`, `copy`, `compare`, `rename`, `flush`, and access checks.

use crate::{DONE, Home};

fn tree(home: &Home, root: &str) {
    home.ok(&["add", root, "/v", "top", "/d", "t"]);
    home.ok(&["add", &format!(r"{root}\A"), "/v", "a", "/t", "REG_DWORD", "/d", "1"]);
    home.ok(&["add", &format!(r"{root}\A\Deep"), "/v", "d", "/t", "REG_BINARY", "/d", "CAFE"]);
    home.ok(&["add", &format!(r"{root}\B")]);
}

#[test]
fn delete_values() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\Del", "/v", "a", "/d", "1"]);
    home.ok(&["add", r"HKCU\Del", "/v", "b", "/d", "2"]);
    home.ok(&["add", r"HKCU\Del", "/ve", "/d", "3"]);
    assert_eq!(home.ok(&["delete", r"HKCU\Del", "/v", "A"]), DONE);
    assert_eq!(
        home.ok(&["query", r"HKCU\Del"]),
        "\nHKEY_CURRENT_USER\\Del\n    b    REG_SZ    2\n    (Default)    REG_SZ    3\n\n"
    );
    assert_eq!(home.ok(&["delete", r"HKCU\Del", "/va"]), DONE);
    assert_eq!(home.ok(&["query", r"HKCU\Del"]), "\n");
    // The key itself stays.
    assert_eq!(
        home.ok(&["query", r"HKCU\Del", "/ve"]),
        "\nHKEY_CURRENT_USER\\Del\n    (Default)    REG_SZ    (value not set)\n\n"
    );
    let err = home.fails(&["delete", r"HKCU\Del", "/v", "gone"]);
    assert_eq!(
        err,
        r"ERROR: The system was unable to find the specified registry key or value (STATUS_OBJECT_NAME_NOT_FOUND) at HKEY_CURRENT_USER\Del\gone"
    );
}

#[test]
fn delete_keys_and_trees() {
    let home = Home::new();
    tree(&home, r"HKLM\SOFTWARE\Tree");
    // A key without subkeys goes without /f.
    assert_eq!(home.ok(&["delete", r"HKLM\SOFTWARE\Tree\B"]), DONE);
    home.fails(&["query", r"HKLM\SOFTWARE\Tree\B"]);
    // A key with subkeys needs /f; without it nothing at all is deleted.
    let before = home.state();
    let err = home.fails(&["delete", r"HKLM\SOFTWARE\Tree"]);
    assert_eq!(
        err,
        r"ERROR: the key has 1 subkey(s); pass /f to delete it with all its subkeys (STATUS_CANNOT_DELETE) at HKEY_LOCAL_MACHINE\SOFTWARE\Tree"
    );
    assert_eq!(home.state(), before);
    assert_eq!(home.ok(&["delete", r"HKLM\SOFTWARE\Tree", "/f"]), DONE);
    let err = home.fails(&["query", r"HKLM\SOFTWARE\Tree"]);
    assert!(err.contains("(STATUS_OBJECT_NAME_NOT_FOUND) at HKEY_LOCAL_MACHINE\\SOFTWARE\\Tree"), "{err}");
    assert!(!home.ok(&["query", r"HKLM\SOFTWARE"]).contains("Tree"));
    // Roots and hives are never deleted.
    let err = home.fails(&["delete", r"HKLM\SOFTWARE", "/f"]);
    assert!(err.contains("STATUS_CANNOT_DELETE"), "{err}");
}

#[test]
fn deleting_through_a_link() {
    let home = Home::new();
    // A path through CurrentControlSet names the key in ControlSet001; the link stays.
    home.ok(&["add", r"HKLM\SYSTEM\CurrentControlSet\Services\Gone\Sub"]);
    home.ok(&["delete", r"HKLM\SYSTEM\CurrentControlSet\Services\Gone", "/f"]);
    home.fails(&["query", r"HKLM\SYSTEM\ControlSet001\Services\Gone"]);
    assert!(home.ok(&["query", r"HKLM\SYSTEM"]).contains("HKEY_LOCAL_MACHINE\\SYSTEM\\CurrentControlSet\n"));
}

#[test]
fn access_denied_under_enum() {
    let home = Home::new();
    let before = home.state();
    assert_eq!(
        home.fails(&["add", r"HKLM\SYSTEM\ControlSet001\Enum\Foo", "/v", "X", "/d", "1"]),
        r"ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Enum\Foo"
    );
    assert_eq!(
        home.fails(&["add", r"HKLM\SYSTEM\ControlSet001\Enum", "/v", "X", "/d", "1"]),
        r"ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Enum"
    );
    assert_eq!(
        home.fails(&["add", r"HKLM\SYSTEM\CurrentControlSet\Enum\Root\Dev"]),
        r"ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Enum\Root\Dev"
    );
    assert_eq!(
        home.fails(&["delete", r"HKLM\SYSTEM\ControlSet001\Enum\Root"]),
        r"ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Enum\Root"
    );
    // A tree delete that would reach Enum deletes nothing, not even the keys before it.
    let err = home.fails(&["delete", r"HKLM\SYSTEM\ControlSet001", "/f"]);
    assert!(err.starts_with("ERROR: access denied (STATUS_ACCESS_DENIED) at ") && err.contains("Enum"), "{err}");
    assert_eq!(home.state(), before);
    // Reading is allowed.
    assert_eq!(
        home.ok(&["query", r"HKLM\SYSTEM\ControlSet001\Enum"]),
        "\nHKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Root\n"
    );
}

#[test]
fn copy_subtree() {
    let home = Home::new();
    tree(&home, r"HKLM\SOFTWARE\Src");
    // Without /s: values only.
    assert_eq!(home.ok(&["copy", r"HKLM\SOFTWARE\Src", r"HKCU\Flat"]), DONE);
    assert_eq!(home.ok(&["query", r"HKCU\Flat"]), "\nHKEY_CURRENT_USER\\Flat\n    top    REG_SZ    t\n\n");
    assert_eq!(home.ok(&["copy", r"HKLM\SOFTWARE\Src", r"HKCU\Copies\Deep\Dst", "/s"]), DONE);
    assert_eq!(
        home.ok(&["query", r"HKCU\Copies\Deep\Dst", "/s"]),
        "\nHKEY_CURRENT_USER\\Copies\\Deep\\Dst\n    top    REG_SZ    t\n\n\
         HKEY_CURRENT_USER\\Copies\\Deep\\Dst\\A\n    a    REG_DWORD    0x1\n\n\
         HKEY_CURRENT_USER\\Copies\\Deep\\Dst\\A\\Deep\n    d    REG_BINARY    CAFE\n\n\
         HKEY_CURRENT_USER\\Copies\\Deep\\Dst\\B\n\n"
    );
    let out = home.reg(&["compare", r"HKLM\SOFTWARE\Src", r"HKCU\Copies\Deep\Dst", "/s"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "\nResult Compared: Identical\nThe operation completed successfully.\n")
    );
    // Existing values are not overwritten without /f (and nothing else is written either).
    home.ok(&["add", r"HKCU\Copies\Deep\Dst\A", "/v", "a", "/t", "REG_DWORD", "/d", "2", "/f"]);
    home.ok(&["delete", r"HKCU\Copies\Deep\Dst\B"]);
    let before = home.state();
    let err = home.fails(&["copy", r"HKLM\SOFTWARE\Src", r"HKCU\Copies\Deep\Dst", "/s"]);
    assert!(err.contains("pass /f") && err.contains("STATUS_OBJECT_NAME_COLLISION"), "{err}");
    assert_eq!(home.state(), before);
    home.ok(&["copy", r"HKLM\SOFTWARE\Src", r"HKCU\Copies\Deep\Dst", "/s", "/f"]);
    assert_eq!(home.reg(&["compare", r"HKLM\SOFTWARE\Src", r"HKCU\Copies\Deep\Dst", "/s"]).code, 0);
    assert!(home.fails(&["copy", r"HKLM\SOFTWARE\Src", r"hklm\software\SRC", "/s"]).contains("same key"));
    // Copying into a key the user may not write creates nothing.
    let before = home.state();
    home.fails(&["copy", r"HKLM\SOFTWARE\Src", r"HKLM\SYSTEM\ControlSet001\Enum\Root\Copy", "/s"]);
    assert_eq!(home.state(), before);
}

#[test]
fn compare_keys() {
    let home = Home::new();
    tree(&home, r"HKCU\One");
    tree(&home, r"HKCU\Two");
    let out = home.reg(&["compare", r"HKCU\One", r"HKCU\Two"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (0, "\nResult Compared: Identical\nThe operation completed successfully.\n")
    );
    home.ok(&["add", r"HKCU\Two", "/v", "top", "/d", "T", "/f"]);
    home.ok(&["add", r"HKCU\Two\A\Deep", "/v", "extra", "/d", "x"]);
    home.ok(&["add", r"HKCU\Two\C"]);
    let out = home.reg(&["compare", r"HKCU\One", r"HKCU\Two"]);
    assert_eq!(out.code, 2, "{out:?}");
    assert_eq!(
        out.stdout,
        "< Value: HKEY_CURRENT_USER\\One  top  REG_SZ  t\n> Value: HKEY_CURRENT_USER\\Two  top  REG_SZ  T\n\
         > Key: HKEY_CURRENT_USER\\Two\\C\n\nResult Compared: Different\nThe operation completed successfully.\n"
    );
    let out = home.reg(&["compare", r"HKCU\One", r"HKCU\Two", "/s"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.contains("> Value: HKEY_CURRENT_USER\\Two\\A\\Deep  extra  REG_SZ  x\n"), "{}", out.stdout);
    // /os shows the matches, /on nothing but the result; /v one value.
    let same = home.reg(&["compare", r"HKCU\One", r"HKCU\Two", "/os"]);
    assert!(same.stdout.starts_with("= Key: HKEY_CURRENT_USER\\One\\A\n"), "{}", same.stdout);
    let none = home.reg(&["compare", r"HKCU\One", r"HKCU\Two", "/s", "/on"]);
    assert_eq!(
        (none.code, none.stdout.as_str()),
        (2, "\nResult Compared: Different\nThe operation completed successfully.\n")
    );
    assert_eq!(home.reg(&["compare", r"HKCU\One\A", r"HKCU\Two\A", "/v", "a"]).code, 0);
    let j = home.reg(&["compare", r"HKCU\One", r"HKCU\Two", "/s", "--json"]);
    assert_eq!(j.code, 2);
    let j: serde_json::Value = serde_json::from_str(&j.stdout).expect("json");
    assert_eq!(j["identical"], false);
    assert_eq!(j["key1"], r"HKEY_CURRENT_USER\One");
    assert_eq!(j["entries"][0]["side"], "<");
    assert_eq!(j["entries"][0]["name"], "top");
    // A missing key is an error, not a difference.
    home.fails(&["compare", r"HKCU\One", r"HKCU\Missing"]);
}

#[test]
fn rename_key() {
    let home = Home::new();
    tree(&home, r"HKCU\Before");
    assert_eq!(home.ok(&["rename", r"HKCU\Before", "After"]), DONE);
    home.fails(&["query", r"HKCU\Before"]);
    assert!(home.ok(&["query", r"HKCU\After\A\Deep"]).contains("CAFE"));
    home.ok(&["add", r"HKCU\Other"]);
    let before = home.state();
    let err = home.fails(&["rename", r"HKCU\After", "other"]);
    assert_eq!(
        err,
        r"ERROR: a key with that name already exists (STATUS_OBJECT_NAME_COLLISION) at HKEY_CURRENT_USER\After"
    );
    assert!(home.fails(&["rename", r"HKCU\After", r"X\Y"]).contains("one key name"));
    assert_eq!(home.state(), before);
}

#[test]
fn flush_checkpoints() {
    let home = Home::new();
    home.ok(&["add", r"HKCU\F", "/v", "x", "/d", "1"]);
    assert_eq!(home.ok(&["flush", "HKLM"]), DONE);
    assert!(home.ok(&["query", r"HKCU\F"]).contains("    x    REG_SZ    1"));
    home.fails(&["flush", r"HKCU\NotThere"]);
}
