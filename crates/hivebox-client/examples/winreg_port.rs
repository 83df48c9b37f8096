//! Code written for the `winreg` crate, ported to hivebox: only the `use` lines changed.
//!
//! Run it against a daemon (`hivebox daemon`, or `HIVEBOX_SOCKET=/path/to/hivebox.sock`):
//!
//! ```text
//! cargo run -p hivebox-client --example winreg_port
//! ```
//!
//! It keeps a product's settings under `HKEY_CURRENT_USER\Software\WinregPort`, counts its
//! runs in a transaction, lists what it stored, and with `--clean` removes it all again.

// Was: use winreg::enums::*; use winreg::transaction::Transaction; use winreg::{RegKey, RegValue};
use hivebox_client::winreg::enums::*;
use hivebox_client::winreg::transaction::Transaction;
use hivebox_client::winreg::{RegKey, RegValue, status_of};
use std::io;

const PRODUCT: &str = r"Software\WinregPort";

fn main() -> io::Result<()> {
    let hkcu = RegKey::predef(HKEY_CURRENT_USER);
    if std::env::args().any(|a| a == "--clean") {
        match hkcu.delete_subkey_all(PRODUCT) {
            Ok(()) => println!("removed HKCU\\{PRODUCT}"),
            Err(e) if e.kind() == io::ErrorKind::NotFound => println!("nothing to remove"),
            Err(e) => return Err(e),
        }
        return Ok(());
    }

    // Settings: created on the first run, read back on every run.
    let (settings, disp) = hkcu.create_subkey(format!(r"{PRODUCT}\Settings"))?;
    if disp == REG_CREATED_NEW_KEY {
        println!("first run: writing the default settings");
        settings.set_value("server", &"www.example.com")?;
        settings.set_value("port", &8080u32)?;
        settings.set_value("mirrors", &vec!["a.example.com", "b.example.com"])?;
        settings.set_raw_value("window", &RegValue { bytes: vec![0, 0, 32, 3, 88, 2], vtype: REG_BINARY })?;
    }
    let server: String = settings.get_value("server")?;
    let port: u32 = settings.get_value("port")?;
    let mirrors: Vec<String> = settings.get_value("mirrors")?;
    println!("server {server}:{port}, mirrors {mirrors:?}");

    // A value that may be missing.
    let proxy: Option<String> = match settings.get_value("proxy") {
        Ok(p) => Some(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e),
    };
    println!("proxy: {}", proxy.as_deref().unwrap_or("(none)"));

    // The run counter and the time of the last run change together or not at all.
    let t = Transaction::new()?;
    let (state, _) = hkcu.create_subkey_transacted(format!(r"{PRODUCT}\State"), &t)?;
    let runs: u64 = state.get_value("runs").unwrap_or(0);
    state.set_value("runs", &(runs + 1))?;
    state.set_value("last run", &format!("{:?}", std::time::SystemTime::now()))?;
    t.commit()?;
    println!("run number {}", runs + 1);

    // What is stored, as a Windows program would list it.
    let product = hkcu.open_subkey(PRODUCT)?;
    for name in product.enum_keys() {
        let name = name?;
        let key = product.open_subkey(&name)?;
        let info = key.query_info()?;
        let t = info.get_last_write_time_system();
        println!(
            "[{name}] {} values, written {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
            info.values, t.wYear, t.wMonth, t.wDay, t.wHour, t.wMinute, t.wSecond
        );
        for value in key.enum_values() {
            let (value_name, value) = value?;
            println!("  {value_name} ({:?}) = {value}", value.vtype);
        }
    }

    // Errors are io::Errors; the NTSTATUS is inside.
    if let Err(e) = hkcu.open_subkey(format!(r"{PRODUCT}\Missing")) {
        println!("opening a missing key: {:?}, {}", e.kind(), status_of(&e).map(|s| s.to_string()).unwrap_or_default());
    }
    Ok(())
}
