//! Benchmark support for hivebox's regf reader (never published): the hivebox walker, and
//! libhivex's C walker (`c/hivex_walk.c`) behind a small safe wrapper. The nt-hive walker is
//! in the benchmark itself (`benches/walk.rs`), nt-hive being a dev-dependency only.

use hivebox_hive::regf::{Hive, KeyNode, RegfError};
use std::path::{Path, PathBuf};

/// What a full walk saw; equal across the three readers (names aside, which nt-hive hands out
/// undecoded).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Keys visited.
    pub keys: u64,
    /// Values visited.
    pub values: u64,
    /// Bytes of key and value names (UTF-8 for hivebox and libhivex, stored bytes for nt-hive).
    pub name_bytes: u64,
    /// Bytes of value data.
    pub data_bytes: u64,
}

/// How a walk takes names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names {
    /// As the file stores them (Latin-1 or UTF-16LE bytes), borrowed.
    Stored,
    /// As text (UTF-8).
    Text,
}

/// Walks every key and value with hivebox: each key's name, each value's name and data.
pub fn hivebox_walk(hive: &Hive, names: Names) -> Result<Counts, RegfError> {
    fn key(k: KeyNode<'_>, names: Names, c: &mut Counts) -> Result<(), RegfError> {
        c.keys += 1;
        c.name_bytes += match names {
            Names::Stored => k.raw_name().0.len(),
            Names::Text => k.name().len(),
        } as u64;
        for v in k.values()? {
            let v = v?;
            c.values += 1;
            c.name_bytes += match names {
                Names::Stored => v.raw_name().0.len(),
                Names::Text => v.name().len(),
            } as u64;
            c.data_bytes += v.data()?.len() as u64;
        }
        for s in k.subkeys()? {
            key(s?, names, c)?;
        }
        Ok(())
    }
    let mut c = Counts::default();
    key(hive.root()?, names, &mut c)?;
    Ok(c)
}

/// The corpus hive the benchmark walks: `$HIVEBOX_CORPUS/hives/dfwinreg-20190329-sdist/SOFTWARE`,
/// `HIVEBOX_CORPUS` defaulting to `../shared/data` beside the workspace.
pub fn software_hive() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus = match std::env::var_os("HIVEBOX_CORPUS").filter(|v| !v.is_empty()) {
        Some(dir) => workspace.join(dir),
        None => workspace.join("../shared/data"),
    };
    corpus.join("hives/dfwinreg-20190329-sdist/SOFTWARE")
}

#[allow(unsafe_code)] // FFI to libhivex; each call's contract is stated at the call
pub mod hivex {
    //! libhivex through `c/hivex_walk.c`.

    use super::Counts;
    use std::ffi::{CString, c_char, c_int, c_void};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;
    use std::ptr::NonNull;

    unsafe extern "C" {
        fn hb_hivex_open(path: *const c_char) -> *mut c_void;
        fn hb_hivex_close(h: *mut c_void);
        fn hb_hivex_walk(h: *mut c_void, out: *mut Counts) -> c_int;
    }

    /// An open libhivex handle.
    #[derive(Debug)]
    pub struct Hivex(NonNull<c_void>);

    impl Hivex {
        /// `hivex_open(path, 0)`: reads the file and builds hivex's map of cells.
        pub fn open(path: &Path) -> std::io::Result<Hivex> {
            let c = CString::new(path.as_os_str().as_bytes())?;
            // SAFETY: `c` is a NUL-terminated string that lives across the call; hivex_open
            // does not keep the pointer.
            let h = unsafe { hb_hivex_open(c.as_ptr()) };
            NonNull::new(h).map(Hivex).ok_or_else(std::io::Error::last_os_error)
        }

        /// The full walk; `None` if libhivex reported an error.
        pub fn walk(&self) -> Option<Counts> {
            let mut c = Counts::default();
            // SAFETY: `self.0` is a live handle from hivex_open (closed only by `Drop`), and
            // `c` is a valid, writable `Counts` with the C struct's layout (`repr(C)`, four u64).
            let rc = unsafe { hb_hivex_walk(self.0.as_ptr(), &mut c) };
            (rc == 0).then_some(c)
        }
    }

    impl Drop for Hivex {
        fn drop(&mut self) {
            // SAFETY: the handle is live and is closed exactly once, here.
            unsafe { hb_hivex_close(self.0.as_ptr()) }
        }
    }
}
