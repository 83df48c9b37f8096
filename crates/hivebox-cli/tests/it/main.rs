//! The `hivebox` binary, run for real against a store in a temporary `$HIVEBOX_HOME`.

mod bad_input;
mod boxes;
mod daemon;
mod demo;
mod edit;
mod hives;
mod protection;
mod query;
mod regfile;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one run of the binary did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A registry home of its own, removed at the end of the test.
#[derive(Debug)]
pub struct Home {
    dir: tempfile::TempDir,
}

impl Default for Home {
    fn default() -> Self {
        Self::new()
    }
}

impl Home {
    pub fn new() -> Self {
        Self { dir: tempfile::tempdir().expect("a temporary directory") }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `hivebox ARGS...`, with stdin not a terminal (so nothing ever prompts).
    pub fn run(&self, args: &[&str]) -> Out {
        let out = Command::new(env!("CARGO_BIN_EXE_hivebox"))
            .args(args)
            .env("HIVEBOX_HOME", self.path())
            // No daemon listens in the home: the command opens the store itself.
            .env_remove("HIVEBOX_SOCKET")
            .stdin(Stdio::null())
            .output()
            .expect("hivebox runs");
        Out {
            code: out.status.code().expect("hivebox exits normally"),
            stdout: String::from_utf8(out.stdout).expect("utf-8 stdout"),
            stderr: String::from_utf8(out.stderr).expect("utf-8 stderr"),
        }
    }

    /// `hivebox reg ARGS...`.
    pub fn reg(&self, args: &[&str]) -> Out {
        let mut all = vec!["reg"];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// Runs a `reg` command that must succeed quietly on stderr; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.reg(args);
        assert_eq!((out.code, out.stderr.as_str()), (0, ""), "reg {args:?}: {out:?}");
        out.stdout
    }

    /// Runs a `reg` command that must fail with exit code 1 and exactly one `ERROR:` line on
    /// stderr; returns that line.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.reg(args);
        assert_eq!(out.code, 1, "reg {args:?} should fail: {out:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "reg {args:?}: not one line: {out:?}");
        assert!(lines[0].starts_with("ERROR: "), "reg {args:?}: {out:?}");
        lines[0].to_owned()
    }

    /// Everything a user could have changed, as `reg query /s` prints it.
    pub fn state(&self) -> String {
        let mut s = self.ok(&["query", r"HKLM\SOFTWARE", "/s"]);
        s.push_str(&self.ok(&["query", r"HKLM\SYSTEM", "/s"]));
        s.push_str(&self.ok(&["query", "HKCU", "/s"]));
        s
    }
}

/// The SID this process's user has, as `hivebox` computes it.
pub fn my_sid() -> String {
    let uid = std::fs::metadata("/proc/self").expect("/proc/self").uid();
    format!("S-1-22-1-{uid}")
}

/// The success line of the writing verbs.
pub const DONE: &str = "The operation completed successfully.\n";

#[test]
fn top_level_usage() {
    let home = Home::new();
    let out = home.run(&["frobnicate"]);
    assert_eq!(out.code, 2);
    assert!(out.stdout.is_empty());
    assert!(out.stderr.contains("usage: hivebox <command> [args]"), "{out:?}");
    let out = home.run(&[]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("usage:"));
    let out = home.run(&["--version"]);
    assert_eq!((out.code, out.stdout.trim()), (0, concat!("hivebox ", env!("CARGO_PKG_VERSION"))));
    let out = home.run(&["help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("reg"));
}

#[test]
fn help_texts() {
    let home = Home::new();
    let overview = home.ok(&["/?"]);
    assert!(overview.contains("QUERY | ADD | DELETE | COPY | COMPARE | RENAME | FLUSH"), "{overview}");
    assert!(overview.contains("EXPORT | IMPORT | SAVE | RESTORE | LOAD | UNLOAD | REPLACE"), "{overview}");
    for verb in [
        "query", "add", "delete", "copy", "compare", "rename", "flush", "export", "import", "save", "restore", "load",
        "unload", "replace",
    ] {
        let text = home.ok(&[verb, "/?"]);
        assert!(text.contains(&format!("hivebox reg {}", verb.to_uppercase())), "{verb}: {text}");
        assert_eq!(home.ok(&[verb, "-h"]), text);
    }
    assert!(home.ok(&["add", "/?"]).contains("--separator"));
}
