//! `hivebox decide`: answers the daemon's sync decisions (operations matched by a rule with
//! `sync = true`, waiting for a verdict until the policy's `sync-timeout-ms`).
//!
//! The daemon pushes each pending decision to every subscribed decider; the first answer wins
//! and every decider is told how it ended. With `--answer`, every decision gets that answer at
//! once; otherwise each is shown and asked about on the terminal. Pushes and the terminal are
//! read at the same time: a thread forwards the connection's pushes, another the lines typed,
//! into one channel.

use crate::events::summary;
use anyhow::{Context, Result, bail};
use hivebox_client::proto::{Decided, Verdict};
use hivebox_client::{Client, Push, Reply, Request, Transport};
use std::io::{BufRead, Write};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const USAGE: &str = "\
usage: hivebox decide [--answer allow|deny] [--remember]

Answers the running daemon's sync decisions. Each decision is printed as it comes; without
--answer you are asked on the terminal:

  [a]llow / [d]eny / al[w]ays / [n]ever

always and never also apply to later decisions about the same rules and executable, until the
daemon stops. When several decisions are open they are listed numbered: type the number before
the answer (`2 a`); without one the oldest is answered. A decision nobody answers in time gets
the policy's `sync-default`.

  --answer allow|deny   answer every decision at once, without asking
  --remember            with --answer: have the daemon remember the answer, as always/never
";

/// What the main loop waits for.
enum Input {
    Push(Push),
    Line(String),
    /// The terminal closed: nobody can answer any more.
    Eof,
    /// The daemon closed the connection.
    Gone,
}

/// A decision waiting for an answer.
struct Pending {
    id: u64,
    what: String,
    deadline: Instant,
}

/// Runs `hivebox decide ARGS...`.
pub fn run(args: &[String]) -> Result<i32> {
    let mut answer = None;
    let mut remember = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--answer" => {
                answer = Some(match it.next().map(String::as_str) {
                    Some("allow") => Verdict::Allow,
                    Some("deny") => Verdict::Deny,
                    Some(other) => bail!("--answer takes allow or deny, not {other:?}"),
                    None => bail!("--answer needs allow or deny"),
                })
            }
            "--remember" => remember = true,
            "-h" | "--help" => {
                print!("{USAGE}");
                return Ok(0);
            }
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    if remember && answer.is_none() {
        bail!("--remember goes with --answer (on the terminal, answer always or never)");
    }
    let socket = crate::daemon::socket_path();
    let client = crate::daemon::require(&socket)?;
    let pushes = client.pushes().context("the connection's pushes are already taken")?;
    let (tx, rx) = mpsc::channel();
    {
        let tx = tx.clone();
        std::thread::Builder::new()
            .name("pushes".into())
            .spawn(move || {
                for p in pushes {
                    if tx.send(Input::Push(p)).is_err() {
                        return;
                    }
                }
                let _ = tx.send(Input::Gone);
            })
            .context("cannot start a thread")?;
    }
    if answer.is_none() {
        std::thread::Builder::new()
            .name("terminal".into())
            .spawn(move || {
                let stdin = std::io::stdin();
                loop {
                    let mut line = String::new();
                    match stdin.lock().read_line(&mut line) {
                        Ok(0) | Err(_) => {
                            let _ = tx.send(Input::Eof);
                            return;
                        }
                        Ok(_) => {
                            if tx.send(Input::Line(line)).is_err() {
                                return;
                            }
                        }
                    }
                }
            })
            .context("cannot start a thread")?;
    } else {
        drop(tx);
    }
    match client.call(Request::SubscribeDecisions) {
        Reply::Done => {}
        Reply::Error { status, message } => bail!("the daemon refused to take decisions from here: {status} {message}"),
        other => bail!("the daemon answered the subscription with {other:?}"),
    }
    eprintln!("hivebox decide: deciding for the daemon at {}; waiting for decisions", socket.display());
    let mut pending: Vec<Pending> = Vec::new();
    // A question is on the terminal, its line not ended yet.
    let mut asking = false;
    let stdout = std::io::stdout();
    for input in rx {
        let mut out = stdout.lock();
        match &input {
            // What comes next starts on a line of its own.
            Input::Push(_) | Input::Gone | Input::Eof if asking => eprintln!(),
            _ => {}
        }
        asking = false;
        match input {
            Input::Push(Push::Decision { id, event, timeout_ms }) => {
                let what = match serde_json::from_str::<serde_json::Value>(&event) {
                    Ok(v) => summary(&v),
                    Err(_) => event,
                };
                let secs = (timeout_ms as f64 / 1000.0).ceil() as u64;
                writeln!(out, "decision {id}: {what} (answer within {secs} s)")?;
                match answer {
                    Some(verdict) => {
                        decide(&client, &mut out, id, verdict, remember)?;
                    }
                    None => {
                        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
                        pending.push(Pending { id, what, deadline });
                        asking = prompt(&pending);
                    }
                }
            }
            Input::Push(Push::Decided { id, outcome }) => {
                let was_open = pending.iter().any(|p| p.id == id);
                pending.retain(|p| p.id != id);
                let how = match outcome {
                    Decided::Allowed => "allowed",
                    Decided::Denied => "denied",
                    Decided::TimedOut => "timed out: the policy's default verdict applied",
                };
                writeln!(out, "decision {id}: {how}")?;
                if was_open && !pending.is_empty() {
                    asking = prompt(&pending);
                }
            }
            Input::Push(_) => {}
            Input::Line(line) => {
                let line = line.trim();
                if line.is_empty() || pending.is_empty() {
                    if !pending.is_empty() {
                        asking = prompt(&pending);
                    }
                    continue;
                }
                let Some((n, verdict, remember)) = parse_answer(line) else {
                    eprintln!(
                        "answer a (allow), d (deny), w (always allow) or n (never allow), after a number to pick one"
                    );
                    asking = prompt(&pending);
                    continue;
                };
                let Some(index) = n.checked_sub(1).filter(|i| *i < pending.len()) else {
                    eprintln!("there is no decision {n} (1 to {})", pending.len());
                    asking = prompt(&pending);
                    continue;
                };
                let p = pending.remove(index);
                decide(&client, &mut out, p.id, verdict, remember)?;
                if !pending.is_empty() {
                    asking = prompt(&pending);
                }
            }
            Input::Eof => {
                eprintln!("hivebox decide: the terminal closed; no more answers");
                return Ok(0);
            }
            Input::Gone => {
                eprintln!("hivebox decide: the daemon went away");
                return Ok(0);
            }
        }
    }
    Ok(0)
}

/// Sends an answer, and says what came of it.
fn decide(client: &Client, out: &mut dyn Write, id: u64, verdict: Verdict, remember: bool) -> Result<()> {
    let word = match verdict {
        Verdict::Allow => "allow",
        Verdict::Deny => "deny",
    };
    let remembered = if remember { ", remembered for these rules and this executable" } else { "" };
    match client.call(Request::Decide { id, verdict, remember }) {
        Reply::Done => writeln!(out, "decision {id}: answered {word}{remembered}")?,
        // Answered elsewhere first, or timed out: the push saying how it ended follows.
        Reply::Error { message, .. } => writeln!(out, "decision {id}: the answer came too late ({message})")?,
        other => bail!("the daemon answered a decision with {other:?}"),
    }
    Ok(())
}

/// Asks on stderr; several open decisions are listed, numbered. Returns true: a question is
/// on the terminal.
fn prompt(pending: &[Pending]) -> bool {
    let now = Instant::now();
    if pending.len() > 1 {
        eprintln!("{} decisions are open:", pending.len());
        for (i, p) in pending.iter().enumerate() {
            let left = p.deadline.saturating_duration_since(now).as_secs();
            eprintln!("  {}) decision {}: {} ({left} s left)", i + 1, p.id, p.what);
        }
        eprint!("[N] [a]llow / [d]eny / al[w]ays / [n]ever? ");
    } else {
        eprint!("decision {}: [a]llow / [d]eny / al[w]ays / [n]ever? ", pending[0].id);
    }
    let _ = std::io::stderr().flush();
    true
}

/// `a`, `2 a`, `2a`, `a 2`, `allow`, ...: which open decision (1 when not said), the verdict,
/// and whether to remember it.
fn parse_answer(line: &str) -> Option<(usize, Verdict, bool)> {
    let line = line.to_ascii_lowercase();
    let digits: String = line.chars().filter(char::is_ascii_digit).collect();
    let word: String = line.chars().filter(char::is_ascii_alphabetic).collect();
    let rest_ok = line.chars().all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || c == ')' || c == '.');
    if !rest_ok {
        return None;
    }
    let n = if digits.is_empty() { 1 } else { digits.parse().ok()? };
    let (verdict, remember) = match word.as_str() {
        "a" | "allow" => (Verdict::Allow, false),
        "d" | "deny" => (Verdict::Deny, false),
        "w" | "always" => (Verdict::Allow, true),
        "n" | "never" => (Verdict::Deny, true),
        _ => return None,
    };
    Some((n, verdict, remember))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse() {
        assert_eq!(parse_answer("a"), Some((1, Verdict::Allow, false)));
        assert_eq!(parse_answer("2 d"), Some((2, Verdict::Deny, false)));
        assert_eq!(parse_answer("3w"), Some((3, Verdict::Allow, true)));
        assert_eq!(parse_answer("Never 2"), Some((2, Verdict::Deny, true)));
        assert_eq!(parse_answer("x"), None);
        assert_eq!(parse_answer("a-1"), None);
    }
}
