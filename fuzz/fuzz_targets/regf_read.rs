//! The regf reader on arbitrary bytes: opening, walking every key and value, building the
//! image, and replaying a log must return (a hive or an error), never panic, hang or allocate
//! beyond the input's size. The first 4 bytes choose where the input splits into a primary
//! file and one transaction log.

#![no_main]

use hivebox_hive::regf::{Hive, KeyNode};
use libfuzzer_sys::fuzz_target;

/// Reads everything through the views, up to `budget` keys (a damaged list may name the same
/// key twice at every level; only `to_image` refuses that).
fn walk(k: KeyNode<'_>, budget: &mut u32) {
    if *budget == 0 {
        return;
    }
    *budget -= 1;
    let _ = (k.name(), k.class(), k.security());
    if let Ok(values) = k.values() {
        for v in values.flatten() {
            let _ = (v.name(), v.data());
        }
    }
    if let Ok(subkeys) = k.subkeys() {
        for s in subkeys.flatten() {
            walk(s, budget);
        }
    }
}

fn check(hive: Result<Hive, hivebox_hive::regf::RegfError>) {
    if let Ok(hive) = hive {
        if let Ok(root) = hive.root() {
            walk(root, &mut 20_000);
        }
        let _ = hive.to_image();
    }
}

fuzz_target!(|data: &[u8]| {
    check(Hive::from_bytes(data.to_vec()));
    if let Some((head, rest)) = data.split_first_chunk::<4>() {
        let split = u32::from_le_bytes(*head) as usize % (rest.len() + 1);
        let (primary, log) = rest.split_at(split);
        check(Hive::from_bytes_with_logs(primary.to_vec(), &[log]));
    }
});
