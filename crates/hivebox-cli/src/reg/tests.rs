//! The verbs run in-process against an in-memory registry (the binary's own tests, against
//! the durable store, are in `tests/it`).

use super::args::parse;
use super::error::error_line;
use super::session::tests::{registry, session};
use super::{Io, execute};
use hivebox_core::access::REG_OPTION_CREATE_LINK;
use hivebox_core::{Caller, CreateOptions, Registry, Value};

/// Runs one `reg` command line (words split on spaces; `~` stands for a space inside a word):
/// exit code, stdout, error line. Nobody answers questions.
pub(super) fn reg(r: &Registry, line: &str) -> (i32, String, String) {
    answering(r, line, &[]).0
}

/// Like [`reg`], answering the command's questions in turn; also returns the questions.
pub(super) fn answering(r: &Registry, line: &str, answers: &[bool]) -> ((i32, String, String), Vec<String>) {
    let args: Vec<String> = line.split(' ').map(|w| w.replace('~', " ")).collect();
    let s = session(r);
    let mut out = Vec::new();
    let mut asked = Vec::new();
    let mut ask = |q: &str| {
        asked.push(q.to_owned());
        answers.get(asked.len() - 1).copied()
    };
    let mut io = Io { out: &mut out, ask: &mut ask };
    let result = parse(&args).map_err(Into::into).and_then(|c| execute(&s, &c, &mut io));
    let text = String::from_utf8(out).unwrap();
    let outcome = match result {
        Ok(code) => (code, text, String::new()),
        Err(e) => (1, text, error_line(&e)),
    };
    (outcome, asked)
}

pub(super) fn ok(r: &Registry, line: &str) -> String {
    let (code, out, err) = reg(r, line);
    assert_eq!((code, err.as_str()), (0, ""), "{line}");
    out
}

pub(super) fn fails(r: &Registry, line: &str) -> String {
    let (code, _, err) = reg(r, line);
    assert_eq!(code, 1, "{line} succeeded");
    err
}

#[test]
fn add_then_query() {
    let r = registry();
    assert_eq!(ok(&r, r"add HKLM\SOFTWARE\T /v Greeting /d hello"), "The operation completed successfully.\n");
    ok(&r, r"add HKLM\SOFTWARE\T\Sub /v N /t REG_DWORD /d 0x2A");
    assert_eq!(
        ok(&r, r"query hklm\software\t"),
        "\nHKEY_LOCAL_MACHINE\\software\\t\n    Greeting    REG_SZ    hello\n\nHKEY_LOCAL_MACHINE\\software\\t\\Sub\n"
    );
    assert_eq!(
        ok(&r, r"query HKLM\SOFTWARE\T\Sub /v n"),
        "\nHKEY_LOCAL_MACHINE\\SOFTWARE\\T\\Sub\n    n    REG_DWORD    0x2a\n\n"
    );
    assert_eq!(r.open_handles(), 0);
}

#[test]
fn bad_input_changes_nothing() {
    let r = registry();
    let err = fails(&r, r"add HKLM\SOFTWARE\New\Deeper /v N /t REG_DWORD /d hello");
    assert!(err.contains("REG_DWORD") && err.contains("hello"), "{err}");
    assert!(fails(&r, r"add HKLM\SOFTWARE\New /v N /t REG_WHATEVER /d 1").contains("REG_WHATEVER"));
    let missing = fails(&r, r"query HKLM\SOFTWARE\New");
    assert!(missing.contains("STATUS_OBJECT_NAME_NOT_FOUND"), "{missing}");
    // An existing value is not overwritten without /f when nobody can be asked.
    ok(&r, r"add HKLM\SOFTWARE\T /v V /d one");
    assert!(fails(&r, r"add HKLM\SOFTWARE\T /v V /d two").contains("/f"));
    assert!(ok(&r, r"query HKLM\SOFTWARE\T /v V").contains("one"));
    ok(&r, r"add HKLM\SOFTWARE\T /v V /d two /f");
    assert!(ok(&r, r"query HKLM\SOFTWARE\T /v V").contains("two"));
}

#[test]
fn denied_create_leaves_no_keys_behind() {
    let r = registry();
    let err = fails(&r, r"add HKLM\SYSTEM\ControlSet001\Enum\Foo\Bar /v X /d 1");
    assert_eq!(
        err,
        r"ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\SYSTEM\ControlSet001\Enum\Foo\Bar"
    );
    assert_eq!(
        ok(&r, r"query HKLM\SYSTEM\ControlSet001\Enum"),
        "\nHKEY_LOCAL_MACHINE\\SYSTEM\\ControlSet001\\Enum\\Root\n"
    );
    // A tree delete that reaches Enum deletes nothing at all.
    let err = fails(&r, r"delete HKLM\SYSTEM\ControlSet001 /f");
    assert!(err.contains("STATUS_ACCESS_DENIED") && err.contains("Enum"), "{err}");
    assert!(ok(&r, r"query HKLM\SYSTEM\ControlSet001").contains(r"ControlSet001\Control"));
    assert_eq!(r.open_handles(), 0);
}

#[test]
fn delete_tree_needs_force_and_removes_links_not_targets() {
    let r = registry();
    ok(&r, r"add HKCU\A\B\C /v x /d 1");
    assert!(fails(&r, r"delete HKCU\A").contains("/f"));
    ok(&r, r"delete HKCU\A\B\C");
    ok(&r, r"add HKCU\A\B\C");
    ok(&r, r"delete HKCU\A /f");
    fails(&r, r"query HKCU\A");
    assert!(fails(&r, r"delete HKLM\SOFTWARE /f").contains("STATUS_CANNOT_DELETE"));
    // A link inside the tree goes, the key it points to stays.
    ok(&r, r"add HKLM\SOFTWARE\Target\Kept /v k /d 1");
    ok(&r, r"add HKLM\SOFTWARE\Tree\Sub");
    let system = Caller::system();
    let opts = CreateOptions { options: REG_OPTION_CREATE_LINK, ..CreateOptions::default() };
    let (link, _) = r.create_key(&system, None, r"\REGISTRY\MACHINE\SOFTWARE\Tree\Sub\Link", &opts).unwrap();
    r.set_value(&system, link, "SymbolicLinkValue", Value::link(r"\REGISTRY\MACHINE\SOFTWARE\Target")).unwrap();
    r.close_key(&system, link).unwrap();
    assert!(ok(&r, r"query HKLM\SOFTWARE\Tree\Sub\Link").contains("Kept"));
    ok(&r, r"delete HKLM\SOFTWARE\Tree /f");
    fails(&r, r"query HKLM\SOFTWARE\Tree");
    assert!(ok(&r, r"query HKLM\SOFTWARE\Target\Kept").contains("    k    REG_SZ    1"));
    assert_eq!(r.open_handles(), 0);
}

#[test]
fn copy_and_compare() {
    let r = registry();
    ok(&r, r"add HKCU\Src /v a /d 1");
    ok(&r, r"add HKCU\Src\Kid /v b /t REG_QWORD /d 7");
    ok(&r, r"copy HKCU\Src HKCU\Dst /s");
    let (code, out, _) = reg(&r, r"compare HKCU\Src HKCU\Dst /s");
    assert_eq!((code, out.as_str()), (0, "\nResult Compared: Identical\nThe operation completed successfully.\n"));
    ok(&r, r"add HKCU\Dst\Kid /v b /t REG_QWORD /d 8 /f");
    let (code, out, _) = reg(&r, r"compare HKCU\Src HKCU\Dst /s");
    assert_eq!(code, 2);
    assert!(out.contains("< Value: HKEY_CURRENT_USER\\Src\\Kid  b  REG_QWORD  0x7\n"), "{out}");
    assert!(out.contains("> Value: HKEY_CURRENT_USER\\Dst\\Kid  b  REG_QWORD  0x8\n"), "{out}");
    // Copying onto existing values needs /f; nothing is written without it.
    assert!(fails(&r, r"copy HKCU\Src HKCU\Dst /s").contains("/f"));
    assert!(ok(&r, r"query HKCU\Dst\Kid").contains("0x8"));
    ok(&r, r"copy HKCU\Src HKCU\Dst /s /f");
    assert_eq!(reg(&r, r"compare HKCU\Src HKCU\Dst /s").0, 0);
    assert!(fails(&r, r"copy HKCU\Src hkcu\src").contains("same key"));
    assert_eq!(r.open_handles(), 0);
}

#[test]
fn rename_and_flush() {
    let r = registry();
    ok(&r, r"add HKCU\Old /v a /d 1");
    ok(&r, r"rename HKCU\Old New");
    fails(&r, r"query HKCU\Old");
    assert!(ok(&r, r"query HKCU\New").contains("    a    REG_SZ    1"));
    assert!(fails(&r, r"rename HKCU\New A\B").contains("one key name"));
    ok(&r, r"flush HKCU\New");
}

#[test]
fn search() {
    let r = registry();
    ok(&r, r"add HKCU\S /v Path /d /usr/bin");
    ok(&r, r"add HKCU\S\Binaries /v other /d x");
    let out = ok(&r, r"query HKCU\S /f bin /s");
    assert_eq!(
        out,
        "\nHKEY_CURRENT_USER\\S\n    Path    REG_SZ    /usr/bin\n\nHKEY_CURRENT_USER\\S\\Binaries\nEnd of search: 2 match(es) found.\n"
    );
    assert!(ok(&r, r"query HKCU\S /f bin /s /c").contains("End of search: 1 match(es) found."));
    assert!(ok(&r, r"query HKCU\S /f bin /s /e").contains("End of search: 0 match(es) found."));
}

#[test]
fn overwriting_asks_when_someone_can_answer() {
    let r = registry();
    ok(&r, r"add HKCU\Q /v v /d one");
    let ((code, out, _), asked) = answering(&r, r"add HKCU\Q /v V /d two", &[false]);
    assert_eq!((code, out.as_str()), (0, "The operation was cancelled.\n"));
    assert_eq!(asked, ["Value V exists, overwrite(Yes/No)?"]);
    assert!(ok(&r, r"query HKCU\Q /v v").contains("one"));
    let ((code, _, _), _) = answering(&r, r"add HKCU\Q /v v /d two", &[true]);
    assert_eq!(code, 0);
    assert!(ok(&r, r"query HKCU\Q /v v").contains("two"));
    // copy asks per value, and keeps the ones the answer says to keep.
    ok(&r, r"add HKCU\C /v v /d three");
    ok(&r, r"add HKCU\C /v w /d four");
    ok(&r, r"add HKCU\Q /v w /d old");
    let ((code, _, _), asked) = answering(&r, r"copy HKCU\C HKCU\Q", &[false, true]);
    assert_eq!((code, asked.len()), (0, 2));
    assert_eq!(ok(&r, r"query HKCU\Q"), "\nHKEY_CURRENT_USER\\Q\n    v    REG_SZ    two\n    w    REG_SZ    four\n\n");
}
