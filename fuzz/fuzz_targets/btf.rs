//! The BTF parser (`hivebox_sandbox::btf`) on arbitrary bytes: parsing and every lookup must
//! return, never panic or loop (a crafted file can make types refer to each other in cycles).
#![no_main]

use hivebox_sandbox::btf::{Btf, Kind, TypeId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(btf) = Btf::parse(data.to_vec()) else { return };
    for id in 0..=btf.len() as u32 + 1 {
        let id = TypeId(id);
        let name = btf.name(id).unwrap_or_default().to_owned();
        let _ = (btf.kind(id), btf.resolve(id), btf.pointee(id), btf.int_size(id), btf.params(id));
        let _ = btf.is_pointer_to_struct(id, "task_struct");
        if let Some(m) = btf.member(id, &name).or_else(|| btf.member(id, "")) {
            let _ = m.byte_offset();
        }
        if let (Some(kind), Some(_)) = (btf.kind(id), btf.name(id)) {
            assert!(btf.find(kind, &name).is_some(), "type {id:?} is found by its own kind and name");
        }
    }
    let _ = btf.find(Kind::Struct, "task_struct");
});
