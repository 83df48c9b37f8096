//! The crate's kernel calls that need `unsafe`, each with a `// SAFETY:` comment.

#![allow(unsafe_code)]

pub mod ebpf;
pub mod net;
pub mod pre_exec;
pub mod process;
pub mod seccomp;
pub mod unotify;

/// Runs a seccomp classic BPF program on one call (its number, audit architecture and
/// arguments) and returns the action: the filters' unit tests check verdicts with it.
#[cfg(test)]
pub(crate) fn run_classic_bpf(program: &[seccompiler::sock_filter], arch: u32, nr: i64, args: [u64; 6]) -> u32 {
    let mut data = [0u8; 64];
    data[0..4].copy_from_slice(&(nr as u32).to_ne_bytes());
    data[4..8].copy_from_slice(&arch.to_ne_bytes());
    for (i, arg) in args.iter().enumerate() {
        data[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
    }
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = &program[pc];
        pc += 1;
        let k = i.k;
        match i.code {
            0x20 => {
                let at = k as usize;
                acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
            }
            0x54 => acc &= k,
            0x05 => pc += k as usize,
            0x15 | 0x25 | 0x35 => {
                let taken = match i.code {
                    0x15 => acc == k,
                    0x25 => acc > k,
                    _ => acc >= k,
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            0x06 => return k,
            code => panic!("instruction {code:#x} not modelled"),
        }
    }
}
