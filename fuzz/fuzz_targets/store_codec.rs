//! The store's decoders on arbitrary bytes: they must return, never panic, hang or exhaust
//! memory; and whatever decodes must encode back to the same bytes.

#![no_main]

use hivebox_hive::codec::{decode_image, decode_mutation, encode_image, encode_mutation};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = decode_image(data) {
        assert_eq!(encode_image(&image).expect("a decoded image encodes"), data);
    }
    if let Ok(m) = decode_mutation(data) {
        assert_eq!(
            encode_mutation(&m).expect("a decoded mutation encodes"),
            data
        );
    }
});
