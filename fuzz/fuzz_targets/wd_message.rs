//! WdFilter's `RegOperationMessage` decoders on arbitrary bytes: they must return, never panic;
//! and whatever decodes must encode and decode back to the same message.

#![no_main]

use hivebox_core::protect::message::RegOperationMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = RegOperationMessage::decode(data) {
        let bytes = m.encode().expect("a decoded message encodes");
        assert_eq!(RegOperationMessage::decode(&bytes).expect("an encoded message decodes"), m);
    }
    if let Ok(a) = RegOperationMessage::decode_async(data) {
        let bytes = a.message.encode_async(a.notification_number, a.sync).expect("a decoded message encodes");
        assert_eq!(RegOperationMessage::decode_async(&bytes).expect("an encoded message decodes"), a);
    }
});
