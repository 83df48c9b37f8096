//! `hivebox`: the command line. It parses, calls the registry and prints; the registry itself
//! is `hivebox-core`, its durable store `hivebox-hive`, and the service that serves it to every
//! command `hivebox-daemon` (`hivebox daemon`). Without a running daemon, a command opens the
//! store itself (`hivebox_daemon::Embedded`).

#![forbid(unsafe_code)]

mod boxes;
mod boxes_changes;
mod daemon;
mod decide;
mod demo;
mod events;
mod policy;
mod reg;

use std::process::ExitCode;

const USAGE: &str = "\
usage: hivebox <command> [args]

commands:
  reg        query and change the registry, as Windows' reg.exe (hivebox reg /? for help)
  run        run a program in a box: hivebox run --box NAME [--ephemeral] -- CMD [ARGS...]
             (its registry changes land in the box; starts the daemon if none runs; root)
  box        manage boxes: create NAME [--ephemeral], list [--json], delete NAME, discard NAME,
             diff NAME [--json], export NAME --reg FILE, commit NAME [--key KEY] [--force]
  policy     check, show, reload, import (Sigma) and test protection policies (hivebox policy help)
  events     the protection events logged in $HIVEBOX_HOME/events; --follow for new ones live
  daemon     serve the registry of $HIVEBOX_HOME to every command, in the foreground
             ([--home DIR] [--socket PATH]; logs to stderr, HIVEBOX_LOG sets the level)
  decide     answer the daemon's sync decisions ([--answer allow|deny] [--remember])
  demo       a scratch registry with three filters on the callback stack, and their trace
  help       show this help
  --version  show the version
";

fn report(command: &str, r: anyhow::Result<i32>) -> i32 {
    r.unwrap_or_else(|e| {
        eprintln!("hivebox {command}: {e:#}");
        1
    })
}

fn main() -> ExitCode {
    let args: Vec<String> = match std::env::args_os().skip(1).map(|a| a.into_string()).collect() {
        Ok(args) => args,
        Err(bad) => {
            eprintln!("hivebox: argument {bad:?} is not valid UTF-8");
            return ExitCode::from(2);
        }
    };
    let code = match args.first().map(String::as_str) {
        Some("reg") => reg::run(&args[1..]),
        Some("run") => report("run", boxes::run_in_box(&args[1..])),
        Some("box") => report("box", boxes::run(&args[1..])),
        Some("policy") => report("policy", policy::run(&args[1..])),
        Some("events") => report("events", events::run(&args[1..])),
        Some("daemon") => report("daemon", daemon::run(&args[1..])),
        Some("decide") => report("decide", decide::run(&args[1..])),
        Some("demo") => match demo::run(&args[1..]) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("hivebox demo: {e:#}");
                1
            }
        },
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            0
        }
        Some("--version" | "-V") => {
            println!("hivebox {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some(other) => {
            eprintln!("hivebox: unknown command {other:?}\n\n{USAGE}");
            2
        }
        None => {
            eprint!("{USAGE}");
            2
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
