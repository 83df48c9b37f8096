//! `KeyPath::parse` on arbitrary text: it must return, never panic; whatever parses must give
//! a native and a display form, and the display form must parse back to the same path.

#![no_main]

use hivebox_core::KeyPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let Ok(path) = KeyPath::parse(text) else { return };
    let native = path.native("S-1-22-1-0");
    assert!(native.starts_with("\\REGISTRY"), "{native:?}");
    let display = path.display();
    let again = KeyPath::parse(&display).expect("the display form parses");
    assert_eq!(again, path, "{text:?} -> {display:?}");
    // The native form names the same key below `\REGISTRY`.
    let native_again = KeyPath::parse(&native).expect("the native form parses");
    assert_eq!(native_again.native("S-1-22-1-0"), native);
});
