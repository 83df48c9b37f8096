//! `hivebox_client::winreg` against a real daemon started in this process (on a fresh home,
//! reached over its socket), and the same code over the daemon's in-process `Embedded`
//! transport.

mod daemon;
mod embedded;

use hivebox_client::winreg::enums::*;
use hivebox_client::winreg::transaction::Transaction;
use hivebox_client::winreg::{RegKey, RegValue, status_of};
use hivebox_client::{Client, Registry, Transport};
use hivebox_core::NtStatus;
use hivebox_daemon::{Daemon, DaemonOptions};
use std::ffi::{OsStr, OsString};
use std::io;
use std::sync::Arc;

/// A daemon running in this process on a fresh home.
#[derive(Debug)]
pub struct TestDaemon {
    pub daemon: Option<Daemon>,
    pub home: tempfile::TempDir,
}

impl TestDaemon {
    pub fn start() -> Self {
        let home = tempfile::tempdir().unwrap();
        let daemon = Daemon::start(&DaemonOptions { home: home.path().to_owned(), socket: None }).unwrap();
        TestDaemon { daemon: Some(daemon), home }
    }

    /// A new connection to the daemon.
    pub fn registry(&self) -> Registry {
        let socket = self.daemon.as_ref().unwrap().socket();
        let c: Arc<dyn Transport> = Arc::new(Client::connect(socket).unwrap());
        Registry::new(c)
    }

    /// Stops the daemon (its connections are closed).
    pub fn stop(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.stop().unwrap();
        }
    }
}

impl Drop for TestDaemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Asserts that `r` failed with `kind`, and with `status` inside.
#[track_caller]
pub fn assert_fails<T: std::fmt::Debug>(r: io::Result<T>, kind: io::ErrorKind, status: NtStatus) {
    let e = r.expect_err("the call should fail");
    assert_eq!((e.kind(), status_of(&e)), (kind, Some(status)), "{e}");
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<hivebox_client::Error>()).expect("a hivebox error inside");
    assert_eq!(inner.status, status);
}

/// Typical ported code: what a Windows program does with winreg, run under `base` (a path
/// under `HKEY_LOCAL_MACHINE`) over `reg`'s transport.
pub fn ported_program(reg: &Registry, base: &str) {
    let hklm = RegKey::predef_on(reg, HKEY_LOCAL_MACHINE);
    let software = hklm.open_subkey("SOFTWARE").unwrap();
    let names: Vec<String> = software.enum_keys().map(Result::unwrap).collect();
    assert!(names.iter().any(|n| n == "Microsoft"), "{names:?}");

    let (settings, disp) = hklm.create_subkey(format!(r"{base}\Settings")).unwrap();
    assert_eq!(disp, REG_CREATED_NEW_KEY);
    settings.set_value("server", &"www.example.com").unwrap();
    settings.set_value("port", &8080u32).unwrap();
    settings.set_value("mirrors", &vec!["a.example.com", "b.example.com"]).unwrap();
    let server: String = settings.get_value("server").unwrap();
    let port: u32 = settings.get_value("port").unwrap();
    let mirrors: Vec<String> = settings.get_value("mirrors").unwrap();
    assert_eq!((server.as_str(), port), ("www.example.com", 8080));
    assert_eq!(mirrors, ["a.example.com", "b.example.com"]);
    let shown: Vec<String> = settings.enum_values().map(|v| v.map(|(n, v)| format!("{n}={v}")).unwrap()).collect();
    assert_eq!(shown, ["server=www.example.com", "port=8080", "mirrors=a.example.com\nb.example.com"]);

    let (again, disp) = hklm.create_subkey(format!(r"{base}\Settings")).unwrap();
    assert_eq!(disp, REG_OPENED_EXISTING_KEY);
    assert_eq!(again.get_value::<u32, _>("port").unwrap(), 8080);

    let t = Transaction::new_on(reg).unwrap();
    let (state, _) = hklm.create_subkey_transacted(format!(r"{base}\State"), &t).unwrap();
    state.set_value("generation", &2u64).unwrap();
    assert_fails(
        hklm.open_subkey(format!(r"{base}\State")),
        io::ErrorKind::NotFound,
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND,
    );
    t.commit().unwrap();
    let state = hklm.open_subkey(format!(r"{base}\State")).unwrap();
    assert_eq!(state.get_value::<u64, _>("generation").unwrap(), 2);

    drop((settings, again, state));
    hklm.delete_subkey_all(base).unwrap();
    assert_fails(hklm.open_subkey(base), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
}

/// Every value kind written and read back through `key`.
pub fn value_round_trips(key: &RegKey) {
    key.set_value("sz", &"text").unwrap();
    key.set_value("string", &String::from("owned")).unwrap();
    key.set_value("os", OsStr::new("os string")).unwrap();
    key.set_value("unicode", "ünïcødé ✓ 𝄞").unwrap();
    key.set_value("dword", &0xDEAD_BEEFu32).unwrap();
    key.set_value("qword", &0x0123_4567_89AB_CDEFu64).unwrap();
    key.set_value("multi", &vec![String::from("one"), String::from("two")]).unwrap();
    key.set_value("multi_slice", &["x", "y", "z"][..]).unwrap();
    key.set_value("multi_empty", &Vec::<String>::new()).unwrap();
    key.set_value("", &"the default value").unwrap();
    let blob = RegValue { bytes: vec![0, 1, 2, 254, 255], vtype: REG_BINARY };
    key.set_raw_value("binary", &blob).unwrap();
    let expand = RegValue { bytes: "%PATH%;x".to_reg().bytes, vtype: REG_EXPAND_SZ };
    key.set_raw_value("expand", &expand).unwrap();
    key.set_raw_value("none", &RegValue { bytes: vec![], vtype: REG_NONE }).unwrap();

    assert_eq!(key.get_value::<String, _>("sz").unwrap(), "text");
    assert_eq!(key.get_value::<String, _>("string").unwrap(), "owned");
    assert_eq!(key.get_value::<OsString, _>("os").unwrap(), "os string");
    assert_eq!(key.get_value::<String, _>("UNICODE").unwrap(), "ünïcødé ✓ 𝄞", "names are case-insensitive");
    assert_eq!(key.get_value::<u32, _>("dword").unwrap(), 0xDEAD_BEEF);
    assert_eq!(key.get_value::<u64, _>("qword").unwrap(), 0x0123_4567_89AB_CDEF);
    assert_eq!(key.get_value::<Vec<String>, _>("multi").unwrap(), ["one", "two"]);
    assert_eq!(key.get_value::<Vec<OsString>, _>("multi_slice").unwrap(), ["x", "y", "z"]);
    assert_eq!(key.get_value::<Vec<String>, _>("multi_empty").unwrap(), Vec::<String>::new());
    assert_eq!(key.get_value::<String, _>("multi").unwrap(), "one\ntwo");
    assert_eq!(key.get_value::<String, _>("").unwrap(), "the default value");
    assert_eq!(key.get_raw_value("binary").unwrap(), blob);
    assert_eq!(key.get_value::<String, _>("expand").unwrap(), "%PATH%;x");
    assert_eq!(key.get_raw_value("expand").unwrap().vtype, REG_EXPAND_SZ);
    assert_eq!(key.get_raw_value("none").unwrap(), RegValue { bytes: vec![], vtype: REG_NONE });

    // The bytes are Windows' bytes.
    let raw = key.get_raw_value("sz").unwrap();
    assert_eq!((raw.vtype, raw.bytes.as_slice()), (REG_SZ, &b"t\0e\0x\0t\0\0\0"[..]));
    assert_eq!(key.get_raw_value("dword").unwrap().bytes, [0xEF, 0xBE, 0xAD, 0xDE]);
    assert_eq!(key.get_raw_value("qword").unwrap().vtype, REG_QWORD);
    assert_eq!(key.get_raw_value("multi").unwrap().bytes, b"o\0n\0e\0\0\0t\0w\0o\0\0\0\0\0");

    // Overwriting changes the type too; deleting removes the value.
    key.set_value("dword", &"now a string").unwrap();
    assert_eq!(key.get_raw_value("dword").unwrap().vtype, REG_SZ);
    assert_fails(key.get_value::<u32, _>("dword"), io::ErrorKind::InvalidData, NtStatus::STATUS_OBJECT_TYPE_MISMATCH);
    key.delete_value("dword").unwrap();
    assert_fails(key.get_raw_value("dword"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
    assert_fails(key.delete_value("dword"), io::ErrorKind::NotFound, NtStatus::STATUS_OBJECT_NAME_NOT_FOUND);
}

/// `ToRegValue` in test code.
trait ToReg {
    fn to_reg(&self) -> RegValue;
}

impl ToReg for str {
    fn to_reg(&self) -> RegValue {
        hivebox_client::winreg::types::ToRegValue::to_reg_value(self)
    }
}
