//! `hivebox daemon`: the registry served on a Unix socket (`hivebox_daemon::server`), in the
//! foreground; and how the other commands find a running one.

use anyhow::{Context, Result, bail};
use hivebox_client::Client;
use hivebox_daemon::DaemonOptions;
use std::io::{ErrorKind, IsTerminal};
use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: hivebox daemon [--home DIR] [--socket PATH]

Serves the registry of DIR (default: $HIVEBOX_HOME) on PATH (default: DIR/hivebox.sock) until
SIGTERM or SIGINT; SIGHUP (or `hivebox policy reload`) reloads DIR/policy.toml. Logs go to
stderr; HIVEBOX_LOG sets what is logged (a tracing filter such as `debug` or
`hivebox_daemon=debug`; default `info`).
";

/// The daemon's socket as the commands look for it: `$HIVEBOX_SOCKET`, else `hivebox.sock` in
/// the home (`$HIVEBOX_HOME`, ...).
pub fn socket_path() -> PathBuf {
    match std::env::var_os("HIVEBOX_SOCKET").filter(|s| !s.is_empty()) {
        Some(s) => PathBuf::from(s),
        None => hivebox_hive::default_home().join("hivebox.sock"),
    }
}

/// Connects to the daemon at `socket`; `None` when nothing listens there (no socket file, or a
/// dead daemon's). Any other failure is an error.
pub fn connect(socket: &Path) -> Result<Option<Client>> {
    match Client::connect(socket) {
        Ok(c) => Ok(Some(c)),
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot connect to the hivebox daemon at {}", socket.display())),
    }
}

/// Connects to the running daemon; its absence is an error.
pub fn require(socket: &Path) -> Result<Client> {
    match connect(socket)? {
        Some(c) => Ok(c),
        None => bail!("no hivebox daemon is running at {}", socket.display()),
    }
}

/// Runs `hivebox daemon ARGS...` until it is told to stop.
pub fn run(args: &[String]) -> Result<i32> {
    let mut home = None;
    let mut socket = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--home" => home = Some(PathBuf::from(it.next().context("--home needs a directory")?)),
            "--socket" => socket = Some(PathBuf::from(it.next().context("--socket needs a path")?)),
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    let filter = match std::env::var("HIVEBOX_LOG") {
        Ok(f) if !f.trim().is_empty() => tracing_subscriber::EnvFilter::try_new(f.trim())
            .with_context(|| format!("HIVEBOX_LOG={f:?} is not a log filter"))?,
        _ => tracing_subscriber::EnvFilter::new("info"),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours for a person at a terminal, plain text for journald and log files.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // Absolute, so that what the daemon logs and the paths it is given mean the same anywhere.
    let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
    let home = absolute(home.unwrap_or_else(hivebox_hive::default_home));
    let socket = socket.map(absolute);
    hivebox_daemon::server::run_foreground(&DaemonOptions { home, socket })?;
    Ok(0)
}
