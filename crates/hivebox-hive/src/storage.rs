//! [`FileStorage`]: one hive's [`Storage`] over its image `NAME.hiv` and its log `NAME.hiv.wal`.
//!
//! `append` writes one record to the log; the registry applies the change in memory only
//! after that, then releases its lock and waits on the record's [`Pending`] before it
//! acknowledges the operation. That wait is the *group commit*: the first waiter runs one
//! `fdatasync` covering every record written so far while the others wait for it, so
//! concurrent writers share syncs. A failed append cuts the log back to its previous length,
//! so no partial record stays behind a later good one. `flush` checkpoints: a new image of
//! generation g+1, then the log is reset to an empty log of generation g+1.
//! If anything fails at a point where the files no longer agree with this object's idea of
//! them (a failed sync, image or log reset), the store is *poisoned*: every later append
//! fails, because a record written now could land where recovery would not read it.

use crate::hivefile::HiveFiles;
use crate::lock::LockFile;
use crate::{codec, hivefile, wal};
use hivebox_core::{Durability, KeyImage, Mutation, Pending, Storage, StorageError};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};

/// `fdatasync`s of logs made by this process (for the benchmarks' syncs per operation).
static LOG_SYNCS: AtomicU64 = AtomicU64::new(0);

/// How many times this process has synced a hive log.
pub fn log_syncs() -> u64 {
    LOG_SYNCS.load(Ordering::Relaxed)
}

/// `ENOSPC` and `EDQUOT`: the device or the user's quota is full.
const FULL_ERRNOS: [i32; 2] = [28, 122];

/// The durable store of one home.
#[derive(Debug)]
pub(crate) struct FileStorage {
    /// The hive's files.
    files: HiveFiles,
    wal_path: PathBuf,
    /// The log, opened for appending (shared with `syncer`).
    wal: Arc<File>,
    /// Syncs the log for waiting writers.
    syncer: Arc<Syncer>,
    /// Bytes of the log that hold a header and complete, synced records.
    wal_len: u64,
    /// Generation of the current image (and of the log continuing it).
    generation: u64,
    /// Why appends are refused, after a failure that left the files in an unknown state.
    poisoned: Option<String>,
    /// Kept while the registry can still write, even if the `Home` is gone.
    _lock: Arc<LockFile>,
}

/// An I/O failure on one of the store's files.
#[derive(Debug)]
pub(crate) struct IoFailure {
    pub what: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for IoFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.what, self.path.display(), self.source)
    }
}

/// The `StorageError` for an I/O failure on `path`.
pub(crate) fn storage_error(what: &str, path: &Path, e: &io::Error) -> StorageError {
    let msg = format!("{what} {}: {e}", path.display());
    match e.raw_os_error() {
        Some(code) if FULL_ERRNOS.contains(&code) => StorageError::Full(msg),
        _ => StorageError::Io(msg),
    }
}

impl FileStorage {
    /// A store over an open log of `wal_len` good bytes continuing image `generation`.
    pub(crate) fn new(files: &HiveFiles, wal: File, wal_len: u64, generation: u64, lock: Arc<LockFile>) -> Self {
        let wal = Arc::new(wal);
        Self {
            files: files.clone(),
            wal_path: files.wal.clone(),
            syncer: Arc::new(Syncer::new(Arc::clone(&wal))),
            wal,
            wal_len,
            generation,
            poisoned: None,
            _lock: lock,
        }
    }

    /// Bytes of the log beyond its header.
    pub(crate) fn logged_bytes(&self) -> u64 {
        self.wal_len.saturating_sub(wal::HEADER_LEN as u64)
    }

    fn check_usable(&mut self) -> Result<(), StorageError> {
        if let Some(why) = self.syncer.failure() {
            self.poison(why);
        }
        match &self.poisoned {
            Some(why) => Err(StorageError::Io(format!("the store refuses writes after an earlier failure: {why}"))),
            None => Ok(()),
        }
    }

    fn poison(&mut self, why: String) {
        self.poisoned.get_or_insert(why);
    }

    /// Writes a image of `image` as the next generation and empties the log.
    pub(crate) fn checkpoint(&mut self, image: &KeyImage) -> Result<(), IoFailure> {
        let next = self.generation + 1;
        if let Err(e) = hivefile::write(&self.files, next, image) {
            let failure = IoFailure { what: "cannot write the image", path: e.path, source: e.source };
            if e.maybe_replaced {
                // Recovery may find either image; a record appended to the old log would be
                // discarded as stale if the new one won, so nothing more may be appended.
                self.poison(failure.to_string());
            }
            return Err(failure);
        }
        // The new image covers every logged record; the old log is now stale.
        self.generation = next;
        if let Err(source) = self.reset_log() {
            let failure = IoFailure { what: "cannot reset the log", path: self.wal_path.clone(), source };
            self.poison(failure.to_string());
            return Err(failure);
        }
        Ok(())
    }

    /// Cuts the log back to `len` bytes (a torn tail found by recovery).
    pub(crate) fn truncate(&mut self, len: u64) -> Result<(), IoFailure> {
        let cut = self.wal.set_len(len).and_then(|()| sync(&self.wal));
        cut.map_err(|source| IoFailure { what: "cannot cut the torn tail off", path: self.wal_path.clone(), source })?;
        self.wal_len = len;
        Ok(())
    }

    /// Empties the log and gives it the current generation (with `O_APPEND`, the header
    /// lands at offset 0 once the file is cut to nothing).
    pub(crate) fn reset_log(&mut self) -> io::Result<()> {
        self.wal.set_len(0)?;
        (&*self.wal).write_all(&wal::header(self.generation))?;
        sync(&self.wal)?;
        self.wal_len = wal::HEADER_LEN as u64;
        // Every record written so far is in the synced image (or was cut off by recovery).
        self.syncer.all_durable();
        Ok(())
    }
}

impl Storage for FileStorage {
    fn append(&mut self, mutation: &Mutation) -> Result<(), StorageError> {
        self.check_usable()?;
        let payload =
            codec::encode_mutation(mutation).map_err(|e| StorageError::Io(format!("cannot log a change: {e}")))?;
        let Some(record) = wal::record(&payload) else {
            return Err(StorageError::Io(format!(
                "cannot log a change of {} bytes: over the 4 GiB record limit",
                payload.len()
            )));
        };
        match (&*self.wal).write_all(&record) {
            Ok(()) => {
                self.wal_len += record.len() as u64;
                self.syncer.written(record.len() as u64);
                Ok(())
            }
            Err(e) => {
                let err = storage_error("cannot append to", &self.wal_path, &e);
                // Cut off whatever part of the record reached the file.
                let cut = self.wal.set_len(self.wal_len).and_then(|()| sync(&self.wal));
                if let Err(cut) = cut {
                    self.poison(format!("{err}; then cannot cut the log back to {} bytes: {cut}", self.wal_len));
                }
                Err(err)
            }
        }
    }

    fn pending(&mut self) -> Option<Pending> {
        let mark = self.syncer.mark();
        Some(Pending::new(Arc::clone(&self.syncer) as Arc<dyn Durability>, mark))
    }

    fn flush(&mut self, image: &dyn Fn() -> KeyImage) -> Result<(), StorageError> {
        self.check_usable()?;
        // Every acknowledged record is already synced; checkpoint only when there is a log.
        if self.logged_bytes() == 0 {
            return Ok(());
        }
        self.checkpoint(&image()).map_err(|f| storage_error(f.what, &f.path, &f.source))
    }
}

/// How many times a sync leader yields to let the writers of the last group join the next.
const GATHER_YIELDS: u32 = 32;

/// `fdatasync`, counted.
fn sync(file: &File) -> io::Result<()> {
    LOG_SYNCS.fetch_add(1, Ordering::Relaxed);
    file.sync_data()
}

/// Group commit over one log: positions are bytes ever written to it (across resets).
#[derive(Debug)]
struct Syncer {
    wal: Arc<File>,
    state: Mutex<SyncState>,
    synced: Condvar,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Bytes written to the log so far.
    written: u64,
    /// Bytes known durable.
    durable: u64,
    /// A waiter is running a sync.
    syncing: bool,
    /// Records written so far, and how many of them the last sync covered.
    records: u64,
    synced_records: u64,
    /// Records the last sync made durable.
    last_group: u64,
    /// A sync failed: nothing written after the last good one is known durable.
    failed: Option<String>,
}

impl Syncer {
    fn new(wal: Arc<File>) -> Self {
        Self { wal, state: Mutex::new(SyncState::default()), synced: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SyncState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `len` more bytes reached the log.
    fn written(&self, len: u64) {
        let mut st = self.lock();
        st.written += len;
        st.records += 1;
    }

    /// The position of everything written so far.
    fn mark(&self) -> u64 {
        self.lock().written
    }

    /// Everything written is durable by other means (a checkpoint).
    fn all_durable(&self) {
        let mut st = self.lock();
        st.durable = st.written;
        self.synced.notify_all();
    }

    fn failure(&self) -> Option<String> {
        self.lock().failed.clone()
    }
}

impl Durability for Syncer {
    fn wait(&self, mark: u64) -> Result<(), StorageError> {
        let mut st = self.lock();
        loop {
            if st.durable >= mark {
                return Ok(());
            }
            if let Some(why) = &st.failed {
                return Err(StorageError::Io(format!("cannot sync the log: {why}")));
            }
            if st.syncing {
                st = self.synced.wait(st).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead a sync covering everything written up to now, outside the lock so that
            // writers keep appending (they will share the next sync).
            st.syncing = true;
            // Writers woken by the last sync are on their way with their next record: let
            // them write it (a few yields at most), so that this sync covers them too.
            for _ in 0..GATHER_YIELDS {
                if st.records - st.synced_records >= st.last_group {
                    break;
                }
                drop(st);
                std::thread::yield_now();
                st = self.lock();
            }
            let target = st.written;
            let records = st.records;
            drop(st);
            let r = sync(&self.wal);
            st = self.lock();
            st.syncing = false;
            match r {
                Ok(()) => {
                    st.durable = st.durable.max(target);
                    st.last_group = records - st.synced_records;
                    st.synced_records = records;
                }
                Err(e) => {
                    st.failed.get_or_insert_with(|| e.to_string());
                }
            }
            self.synced.notify_all();
        }
    }
}
