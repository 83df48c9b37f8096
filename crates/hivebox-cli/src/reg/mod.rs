//! `hivebox reg`: `reg.exe`'s verbs against the durable registry under `$HIVEBOX_HOME`.
//!
//! The command talks to the hivebox daemon when one listens on its socket (`$HIVEBOX_SOCKET`,
//! else `$HIVEBOX_HOME/hivebox.sock`), and otherwise opens the store itself
//! (`hivebox_daemon::Embedded`, the daemon's own session code run in-process); the output and
//! exit code are the same either way. It runs as the calling Unix user, as the kernel reports
//! it (a user-mode caller whose SID is `S-1-22-1-<uid>`, so `HKCU` is that user's key), prints
//! in `reg.exe`'s layout and exits 0 on success, 1 on any error (one `ERROR:` line on stderr),
//! and 2 from `compare` when the keys differ. A command that fails changes nothing that was
//! stored before it: input is checked before the registry is touched, keys created on the way
//! to a failure are removed again, and a tree delete opens every key it will delete before
//! deleting any.
//!
//! `export` and `import` read and write `.reg` files (`hivebox_hive::regfile`); an import runs
//! in one registry transaction (`Session::atomically`), so one that fails halfway changes
//! nothing.
//!
//! `save` and `restore` write and read regf hive files (`hivebox_hive::regf`) here, in the
//! command; `load` and `unload` have the registry's side mount and unmount a hive file
//! (`hivebox_hive::Home::load_hive`), which mounts it again at every later open until it is
//! unloaded; `replace` has it stage a hive file to take a hive's place at the next open
//! (`NtReplaceKey`, `hivebox_hive::Home::stage_replacement`). Those three send absolute file
//! names: the daemon does not share the command's working directory.
//!
//! What it does not do: remote registries (`\\machine\...`), `/reg:32`/`/reg:64` views (accepted
//! and ignored: there is one view).

mod args;
mod compare;
mod copy;
mod edit;
mod error;
mod export;
mod help;
mod hive;
mod output;
mod query;
mod session;
mod switches;

use args::Command;
use error::{RegError, error_line};
use hivebox_core::name::MAX_PATH_DEPTH;
use hivebox_core::value::ValueError;
use hivebox_core::{KeyPath, NtStatus, ValueType};
use session::Session;
use std::io::{BufRead, BufWriter, IsTerminal, Write};
use std::sync::Arc;

/// Where a command writes, and how it asks the user a yes/no question.
pub struct Io<'a> {
    pub out: &'a mut dyn Write,
    /// Asks a question; `None` when there is nobody to ask (stdin is not a terminal).
    pub ask: &'a mut dyn FnMut(&str) -> Option<bool>,
}

/// Runs `hivebox reg ARGS...`; returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let command = match args::parse(args) {
        Ok(c) => c,
        Err(e) => return fail(&RegError::Syntax(e)),
    };
    if let Command::Help(verb) = command {
        // Help needs no store. A reader that went away early (`| head`) is not an error.
        let _ = std::io::stdout().write_all(help::text(verb).as_bytes());
        return 0;
    }
    let backend = match Backend::connect() {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let session = Session::new(hivebox_client::Registry::new(backend.transport()));
    let mut out = BufWriter::new(std::io::stdout().lock());
    let mut ask = ask_terminal;
    let result = execute(&session, &command, &mut Io { out: &mut out, ask: &mut ask });
    let result = result.and_then(|code| out.flush().map(|()| code).map_err(RegError::Output));
    drop(session);
    if let Err(e) = backend.finish() {
        eprintln!("hivebox: protection events could not be written: {e:#}");
    }
    match result {
        Ok(code) => code,
        // The reader went away (`| head`): nothing more to say to anyone.
        Err(RegError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => 1,
        Err(e) => fail(&e),
    }
}

/// Where the registry is: the daemon's, over its socket, or (when no daemon listens) the
/// store opened by this process, with the home's protection policy registered on it. Both
/// answer through the same session code, so a command's output and exit code are the same
/// either way.
enum Backend {
    Daemon(hivebox_client::Client),
    Embedded(Arc<hivebox_daemon::Embedded>),
}

impl Backend {
    fn connect() -> Result<Self, RegError> {
        let socket = crate::daemon::socket_path();
        match crate::daemon::connect(&socket) {
            Ok(Some(client)) => return Ok(Backend::Daemon(client)),
            Ok(None) => {}
            Err(e) => return Err(RegError::Setup(format!("{e:#}"))),
        }
        let embedded = hivebox_daemon::Embedded::open(&hivebox_hive::default_home())
            .map_err(|e| RegError::Setup(format!("{e:#}")))?;
        Ok(Backend::Embedded(Arc::new(embedded)))
    }

    fn transport(&self) -> Arc<dyn hivebox_client::Transport> {
        match self {
            Backend::Daemon(c) => Arc::new(c.clone()),
            Backend::Embedded(e) => e.clone(),
        }
    }

    /// Ends the session: in-process, the protection events are written out.
    fn finish(self) -> anyhow::Result<()> {
        match self {
            Backend::Daemon(_) => Ok(()),
            Backend::Embedded(e) => match Arc::try_unwrap(e) {
                Ok(e) => e.finish().map(drop),
                Err(_) => anyhow::bail!("the registry is still in use"),
            },
        }
    }
}

fn fail(e: &RegError) -> i32 {
    eprintln!("{}", error_line(e));
    1
}

/// Runs a parsed command against a session.
pub fn execute(s: &Session, command: &Command, io: &mut Io<'_>) -> Result<i32, RegError> {
    match command {
        Command::Help(verb) => {
            io.out.write_all(help::text(*verb).as_bytes())?;
            Ok(0)
        }
        Command::Query(a) => query::query(s, a, io),
        Command::Compare(a) => query::compare(s, a, io),
        Command::Add(a) => edit::add(s, a, io),
        Command::Delete(a) => edit::delete(s, a, io),
        Command::Copy(a) => copy::copy(s, a, io),
        Command::Rename { key, new_name } => edit::rename(s, key, new_name, io),
        Command::Flush { key } => edit::flush(s, key, io),
        Command::Export { key, file, force } => export::export(s, key, file, *force, io),
        Command::Import { file } => export::import(s, file, io),
        Command::Save { key, file, force } => hive::save(s, key, file, *force, io),
        Command::Load { key, file } => hive::load(s, key, file, io),
        Command::Unload { key } => hive::unload(s, key, io),
        Command::Restore { key, file } => hive::restore(s, key, file, io),
        Command::Replace { key, new_file, old_file } => hive::replace(s, key, new_file, old_file, io),
    }
}

/// Asks on the terminal; `None` when stdin is not one.
fn ask_terminal(question: &str) -> Option<bool> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    loop {
        eprint!("{question} ");
        let mut line = String::new();
        match stdin.lock().read_line(&mut line) {
            Ok(0) | Err(_) => return Some(false),
            Ok(_) => {}
        }
        match line.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => return Some(true),
            "n" | "no" => return Some(false),
            _ => {}
        }
    }
}

/// `The operation completed successfully.`
fn success(io: &mut Io<'_>) -> Result<i32, RegError> {
    writeln!(io.out, "The operation completed successfully.")?;
    Ok(0)
}

/// Parses a user's key path; a bad one is an error with the status the registry would give.
fn parse_path(text: &str) -> Result<KeyPath, RegError> {
    let path = KeyPath::parse(text).map_err(|e| RegError::Invalid { message: e.to_string(), status: e.status() })?;
    let depth = native_levels(&path.native("S")).len();
    if depth > MAX_PATH_DEPTH {
        let message = format!("key path {text:?} is {depth} levels deep; the limit is {MAX_PATH_DEPTH}");
        return Err(RegError::Invalid { message, status: NtStatus::STATUS_NAME_TOO_LONG });
    }
    Ok(path)
}

/// Parses a `REG_*` type name.
fn parse_type(text: &str) -> Result<ValueType, RegError> {
    ValueType::from_name(text).ok_or_else(|| RegError::Invalid {
        message: ValueError::UnknownType(text.to_owned()).to_string(),
        status: NtStatus::STATUS_INVALID_PARAMETER,
    })
}

/// The components of a native path below `\REGISTRY`.
fn native_levels(native: &str) -> Vec<&str> {
    native.split('\\').filter(|c| !c.is_empty()).skip(1).collect()
}

/// `\REGISTRY\` plus the first `n` levels.
fn native_prefix(levels: &[&str], n: usize) -> String {
    format!("\\REGISTRY\\{}", levels[..n].join("\\"))
}

/// How many levels of `native` exist already, if that can be told (the rest would be created).
fn existing_levels(s: &Session, native: &str) -> Option<usize> {
    let levels = native_levels(native);
    for n in 1..=levels.len() {
        match s.open_native(&native_prefix(&levels, n), 0) {
            Ok(_) => {}
            Err(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND) => return Some(n - 1),
            Err(_) => return None,
        }
    }
    Some(levels.len())
}

/// Deletes the levels of `native` below the first `keep`, deepest first: undoes the creation of
/// a path whose first `keep` levels existed before. Best effort: this runs on the way out of a
/// failure that is already being reported.
fn remove_created(s: &Session, native: &str, keep: Option<usize>) {
    let Some(keep) = keep else { return };
    let levels = native_levels(native);
    for n in (keep + 1..=levels.len()).rev() {
        if let Ok(k) = s.open_native(&native_prefix(&levels, n), hivebox_core::access::DELETE) {
            let _ = s.registry.delete_key(k.handle);
        }
    }
}

#[cfg(test)]
mod tests;
