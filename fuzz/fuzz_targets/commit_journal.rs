//! A commit journal as recovery reads it: never a panic, and what reads writes back the same.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = hivebox_daemon::changes::check_journal(data)
        && e.starts_with("a decoded journal")
    {
        panic!("{e}");
    }
});
