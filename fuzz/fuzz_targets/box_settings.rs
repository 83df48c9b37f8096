//! A box's `box.toml` and its name: never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = hivebox_daemon::boxes::parse_settings(text);
        let _ = hivebox_daemon::boxes::check_name(text);
    }
});
