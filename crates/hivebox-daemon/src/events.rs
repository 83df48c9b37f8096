//! The event log: protection events as JSON lines in `$HIVEBOX_HOME/events/events.jsonl`,
//! rotated by size (`events.jsonl.1` is the newest rotated file, up to `.{KEEP}`), written
//! by a worker thread that drains the filter's queue (denials first, WdFilter's way).

use anyhow::{Context, Result};
use hivebox_core::protect::{EventQueue, ProtectionEvent};
use parking_lot::Mutex;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The live log file's name.
pub const LOG: &str = "events.jsonl";
/// Rotated files kept.
pub const KEEP: u32 = 5;
/// Default size at which the log rotates (`HIVEBOX_EVENTS_MAX_BYTES` overrides).
pub const DEFAULT_MAX_BYTES: u64 = 16 << 20;

/// What else sees each logged event, with its JSON line.
pub type EventHook = Box<dyn Fn(&ProtectionEvent, &str) + Send>;

/// An appending, size-rotated JSON-lines file.
#[derive(Debug)]
pub struct EventLog {
    dir: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
}

impl EventLog {
    /// Opens (creating) the log in `dir`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create the event directory {}", dir.display()))?;
        let path = dir.join(LOG);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open the event log {}", path.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(EventLog { dir: dir.to_owned(), file, size, max_bytes })
    }

    /// Appends one event (one line), rotating first if the line would pass the limit;
    /// returns the line (without its newline).
    pub fn append(&mut self, event: &ProtectionEvent) -> Result<String> {
        let line = event.to_json();
        self.append_line(&line)?;
        Ok(line)
    }

    /// Appends one JSON line (an event of another kind: a network decision), rotating as
    /// [`EventLog::append`] does.
    pub fn append_line(&mut self, json: &str) -> Result<()> {
        let mut line = String::with_capacity(json.len() + 1);
        line.push_str(json);
        line.push('\n');
        if self.size > 0 && self.size + line.len() as u64 > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes()).context("cannot write to the event log")?;
        self.size += line.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<()> {
        let name = |n: u32| self.dir.join(format!("{LOG}.{n}"));
        let _ = std::fs::remove_file(name(KEEP));
        for n in (1..KEEP).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        std::fs::rename(self.dir.join(LOG), name(1)).context("cannot rotate the event log")?;
        self.file = OpenOptions::new().create(true).append(true).open(self.dir.join(LOG))?;
        self.size = 0;
        Ok(())
    }

    /// Flushes to disk.
    pub fn sync(&mut self) -> Result<()> {
        self.file.sync_data().context("cannot sync the event log")
    }
}

/// The worker that drains a queue into a log; [`Writer::finish`] closes the queue and waits
/// for every queued event to be written.
#[derive(Debug)]
pub struct Writer {
    queue: Arc<EventQueue>,
    worker: Option<JoinHandle<Result<u64>>>,
}

impl Writer {
    /// Starts the worker; `also` sees each event and its JSON line once it is logged (the
    /// daemon hands them to live subscribers).
    pub fn start(queue: Arc<EventQueue>, log: Arc<Mutex<EventLog>>, also: Option<EventHook>) -> Result<Self> {
        let q = queue.clone();
        let worker = std::thread::Builder::new()
            .name("hivebox-events".into())
            .spawn(move || {
                let mut n = 0;
                while let Some(e) = q.pop() {
                    let line = log.lock().append(&e)?;
                    if let Some(f) = &also {
                        f(&e, &line);
                    }
                    n += 1;
                }
                log.lock().sync()?;
                Ok(n)
            })
            .context("cannot start the event writer thread")?;
        Ok(Writer { queue, worker: Some(worker) })
    }

    /// Writes what is queued and stops; returns how many events were written.
    pub fn finish(mut self) -> Result<u64> {
        self.queue.close();
        match self.worker.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => anyhow::bail!("the event writer panicked"),
            None => Ok(0),
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.queue.close();
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The log files of `dir`, oldest first.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> =
        (1..=KEEP).rev().map(|n| dir.join(format!("{LOG}.{n}"))).filter(|p| p.exists()).collect();
    let live = dir.join(LOG);
    if live.exists() {
        out.push(live);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use hivebox_core::protect::{EventVerdict, RegOp};

    fn ev(i: u32) -> ProtectionEvent {
        ProtectionEvent {
            op: RegOp::SetValue,
            target_object: format!(r"HKLM\SOFTWARE\Run\v{i}"),
            details: Some("x".repeat(100)),
            new_name: None,
            image: "/bin/x".into(),
            process_id: i,
            time: hivebox_core::UNIX_EPOCH_FILETIME,
            box_name: None,
            verdict: EventVerdict::Allowed,
            reason: None,
            rules: vec!["r".into()],
            final_key_rules: 0x100,
            old: None,
            sync: false,
            decided_by: None,
        }
    }

    #[test]
    fn the_log_rotates_by_size_and_keeps_every_line_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = EventLog::open(dir.path(), 1000).unwrap();
        for i in 0..40 {
            log.append(&ev(i)).unwrap();
        }
        log.sync().unwrap();
        let files = files(dir.path());
        assert_eq!(files.len(), 6, "the live file and {KEEP} rotated ones");
        let mut pids = Vec::new();
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 1000);
            for line in std::fs::read_to_string(f).unwrap().lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                pids.push(v["ProcessId"].as_u64().unwrap());
            }
        }
        // The oldest rotated away; the rest in order.
        assert_eq!(pids.last(), Some(&39));
        assert!(pids.windows(2).all(|w| w[0] + 1 == w[1]), "{pids:?}");
    }
}
