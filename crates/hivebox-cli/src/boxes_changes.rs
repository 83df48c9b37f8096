//! `hivebox box diff|export|commit`: what a box changed in the registry, as a tree or JSON,
//! as a `.reg` file, or applied to the host (`hivebox_daemon::changes` does the work, in the
//! daemon or in-process; this parses, asks and prints).
//!
//! ```text
//! hivebox box diff NAME [--json]
//! hivebox box export NAME --reg FILE.reg     (--reg - writes the text to stdout)
//! hivebox box commit NAME [--key KEY] [--force]
//! ```
//!
//! Exit codes: 0 done, 1 refused or failed (one line, or the list of conflicting keys, on
//! stderr), 2 bad arguments.

use crate::boxes::Backend;
use anyhow::{Context, Result};
use hivebox_daemon::boxes::check_name;
use hivebox_proto::{Reply, Request};
use std::io::Write;
use std::path::Path;

const USAGE: &str = "\
usage: hivebox box diff NAME [--json]
       hivebox box export NAME --reg FILE.reg
       hivebox box commit NAME [--key KEY] [--force]
       hivebox box commit NAME --path PATH

  diff      the box's registry changes: keys added (+), deleted (-), renamed (>), values
            added, modified (~) and deleted, with old and new type and data; then its file
            changes (Files: + added, ~ modified, - deleted, ! replaced directory, sizes);
            --json for the JSON array of change objects (file ones have kind file-*)
  export    the changes as a .reg file (UTF-16LE, as regedit writes them) that regedit or
            `hivebox reg import` applies to make the host what the box sees; --reg - prints it
  commit    applies the changes (all, or those at or below KEY) to the host registry in one
            transaction, as you (protection applies), then clears them from the box. A key
            the host changed since the box first changed it is a conflict: nothing is
            committed unless --force. Without --key the box's files are committed too;
            --path PATH commits only the files at or below PATH
";

fn usage(what: &str) -> i32 {
    eprintln!("hivebox box: {what}\n\n{USAGE}");
    2
}

/// The parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Diff {
        name: String,
        json: bool,
    },
    Export {
        name: String,
        file: String,
    },
    Commit {
        name: String,
        key: Option<String>,
        force: bool,
    },
    /// `commit NAME --path PATH`: the box's files at or below PATH only.
    CommitFiles {
        name: String,
        path: String,
    },
}

fn parse(verb: &str, args: &[String]) -> std::result::Result<Command, String> {
    let mut name: Option<String> = None;
    let mut json = false;
    let mut file: Option<String> = None;
    let mut key: Option<String> = None;
    let mut force = false;
    let mut path: Option<String> = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match (verb, a.as_str()) {
            ("diff", "--json") => json = true,
            ("export", "--reg") => file = Some(it.next().ok_or("--reg needs a file name")?.clone()),
            ("commit", "--key") => key = Some(it.next().ok_or("--key needs a key path")?.clone()),
            ("commit", "--force") => force = true,
            ("commit", "--path") => path = Some(it.next().ok_or("--path needs a path")?.clone()),
            (_, o) if o.starts_with("--") || (o.starts_with('-') && o.len() > 1) => {
                return Err(format!("unknown option {o:?} for {verb}"));
            }
            (_, n) if name.is_none() => name = Some(n.to_owned()),
            (_, n) => return Err(format!("unexpected argument {n:?}")),
        }
    }
    let name = name.ok_or_else(|| format!("{verb} needs a box name"))?;
    Ok(match verb {
        "diff" => Command::Diff { name, json },
        "export" => Command::Export { name, file: file.ok_or("export needs --reg FILE")? },
        "commit" => match path {
            Some(_) if key.is_some() => return Err("--key and --path cannot be combined".into()),
            Some(path) => Command::CommitFiles { name, path },
            None => Command::Commit { name, key, force },
        },
        other => return Err(format!("unknown box command {other:?}")),
    })
}

/// The `.reg` bytes `regedit` writes: UTF-16LE with a byte-order mark.
fn utf16_file(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(2 + text.len() * 2);
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

/// Runs `hivebox box VERB ARGS...` for `diff`, `export` and `commit`.
pub fn run(verb: &str, args: &[String]) -> Result<i32> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(0);
    }
    let command = match parse(verb, args) {
        Ok(c) => c,
        Err(e) => return Ok(usage(&e)),
    };
    let (Command::Diff { name, .. }
    | Command::Export { name, .. }
    | Command::Commit { name, .. }
    | Command::CommitFiles { name, .. }) = &command;
    check_name(name).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Command::CommitFiles { name, path } = &command {
        return commit_files(name, Path::new(path));
    }
    let request = match &command {
        Command::Diff { name, json } => Request::BoxDiff { name: name.clone(), json: *json },
        Command::Export { name, .. } => Request::BoxExport { name: name.clone() },
        Command::Commit { name, key, force } => {
            Request::BoxCommit { name: name.clone(), key: key.clone(), force: *force }
        }
        Command::CommitFiles { .. } => return Ok(2),
    };
    let backend = Backend::connect()?;
    let reply = backend.call(request);
    if let Err(e) = backend.finish() {
        eprintln!("hivebox: protection events could not be written: {e:#}");
    }
    let text = match reply {
        Reply::Text(t) => t,
        Reply::Error { status, message } => {
            let message = if message.is_empty() { status.describe().to_owned() } else { message };
            eprintln!("hivebox box {verb}: {message}");
            return Ok(1);
        }
        other => anyhow::bail!("unexpected reply from the registry: {other:?}"),
    };
    let mut out = std::io::stdout().lock();
    match &command {
        Command::Export { file, .. } if file != "-" => {
            std::fs::write(file, utf16_file(&text)).with_context(|| format!("cannot write {file}"))?;
        }
        Command::Export { .. } => out.write_all(text.as_bytes())?,
        Command::Diff { .. } | Command::Commit { .. } | Command::CommitFiles { .. } => {
            out.write_all(text.as_bytes())?
        }
    }
    out.flush()?;
    Ok(0)
}

/// `box commit NAME --path PATH`: copies the box's files at or below PATH to the host, here
/// (the box's directory is readable by root, who alone may manage boxes), with the box's
/// processes frozen through its cgroup meanwhile. The box's copies are removed only when no
/// process runs in it.
fn commit_files(name: &str, path: &Path) -> Result<i32> {
    hivebox_sandbox::launch::check_box_path(path).map_err(|why| anyhow::anyhow!("--path {}: {why}", path.display()))?;
    let dir = hivebox_hive::default_home().join(hivebox_hive::BOXES_DIR).join(name);
    anyhow::ensure!(dir.is_dir(), "there is no box named {name} ({} does not exist)", dir.display());
    let cgroup = hivebox_daemon::boxes::box_cgroup(name)
        .filter(|c| std::fs::read_to_string(c.join("cgroup.procs")).is_ok_and(|t| !t.trim().is_empty()));
    if let Some(cg) = &cgroup {
        let frozen = hivebox_daemon::boxes::freeze_cgroup(cg)
            .with_context(|| format!("cannot freeze box {name}'s processes ({})", cg.display()))?;
        anyhow::ensure!(frozen, "box {name}'s processes did not freeze within 2 s; nothing was committed");
    }
    let result = hivebox_sandbox::fs::commit(&dir, Some(path), cgroup.is_none());
    if let Some(cg) = &cgroup
        && let Err(e) = hivebox_daemon::boxes::thaw_cgroup(cg)
    {
        eprintln!("hivebox box commit: cannot thaw box {name}'s processes ({}): {e}", cg.display());
    }
    let (done, skipped) = result?;
    if done.is_empty() && skipped.is_empty() {
        println!("Box {name:?} has no file changes at or below {}: nothing was committed.", path.display());
        return Ok(0);
    }
    print!("Files committed ({}):\n{}", done.len(), hivebox_sandbox::fs::render_text(&done));
    if cgroup.is_some() {
        println!("(processes run in the box: its copies stay until box discard)");
    }
    if !skipped.is_empty() {
        print!("Files not committed (FIFOs, sockets, devices):\n{}", hivebox_sandbox::fs::render_text(&skipped));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn command_lines() {
        assert_eq!(parse("diff", &args("b --json")), Ok(Command::Diff { name: "b".into(), json: true }));
        assert_eq!(
            parse("export", &args("b --reg x.reg")),
            Ok(Command::Export { name: "b".into(), file: "x.reg".into() })
        );
        assert_eq!(
            parse("commit", &args(r"b --key HKLM\Software\X --force")),
            Ok(Command::Commit { name: "b".into(), key: Some(r"HKLM\Software\X".into()), force: true })
        );
        assert_eq!(parse("commit", &args("b")), Ok(Command::Commit { name: "b".into(), key: None, force: false }));
        assert!(parse("export", &args("b")).is_err());
        assert!(parse("diff", &args("")).is_err());
        assert!(parse("diff", &args("a b")).is_err());
        assert!(parse("diff", &args("a --force")).is_err());
        assert!(parse("commit", &args("a --key")).is_err());
    }

    #[test]
    fn reg_files_are_utf16_with_a_bom() {
        assert_eq!(utf16_file("Wé"), vec![0xFF, 0xFE, b'W', 0, 0xE9, 0]);
    }
}
