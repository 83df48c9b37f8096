//! The kernel backstop of `network = "decide"`: eBPF programs on the box's cgroup (cgroup v2
//! `connect4`/`connect6`/`sendmsg4`/`sendmsg6` hooks) that refuse, with `EPERM`, every connect
//! and every addressed UDP send made on a socket of the box's network namespace by any
//! process but the launcher. The launcher makes the allowed connections itself, on its copy of
//! the box's socket, so whatever a boxed program manages to slip past the seccomp filter
//! cannot reach the network undecided.
//!
//! Each program is eleven instructions, assembled here (no compiler needed) and attached
//! through a BPF link: the link closes, and the programs go, when the launcher exits.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// One eBPF instruction, the kernel's `struct bpf_insn`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn { code, regs: (src << 4) | (dst & 0x0f), off, imm }
}

const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;
const FUNC_GET_CURRENT_PID_TGID: i32 = 14;
const FUNC_GET_NETNS_COOKIE: i32 = 122;

/// The hooks the backstop takes.
pub const HOOKS: [(u32, &str); 4] =
    [(10, "connect4"), (11, "connect6"), (14, "sendmsg4 (UDP)"), (15, "sendmsg6 (UDP)")];

/// The program: allow (1) unless the socket is in the box's namespace (`cookie`) and the
/// caller is not the launcher (`tgid`).
fn program(cookie: u64, tgid: u32) -> [Insn; 12] {
    const MOV64_X: u8 = 0xbf;
    const MOV64_K: u8 = 0xb7;
    const CALL: u8 = 0x85;
    const LD_DW_IMM: u8 = 0x18;
    const JNE_X: u8 = 0x5d;
    const JEQ_K: u8 = 0x15;
    const RSH64_K: u8 = 0x77;
    const EXIT: u8 = 0x95;
    [
        insn(MOV64_X, 6, 1, 0, 0),
        insn(CALL, 0, 0, 0, FUNC_GET_NETNS_COOKIE),
        insn(LD_DW_IMM, 1, 0, 0, cookie as u32 as i32),
        insn(0, 0, 0, 0, (cookie >> 32) as u32 as i32),
        insn(JNE_X, 0, 1, 5, 0),
        insn(CALL, 0, 0, 0, FUNC_GET_CURRENT_PID_TGID),
        insn(RSH64_K, 0, 0, 0, 32),
        insn(JEQ_K, 0, 0, 2, tgid as i32),
        insn(MOV64_K, 0, 0, 0, 0),
        insn(EXIT, 0, 0, 0, 0),
        insn(MOV64_K, 0, 0, 0, 1),
        insn(EXIT, 0, 0, 0, 0),
    ]
}

/// `union bpf_attr` for BPF_PROG_LOAD (the fields up to `expected_attach_type`).
#[repr(C)]
#[derive(Default)]
struct ProgLoad {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_LINK_CREATE (cgroup targets).
#[repr(C)]
#[derive(Default)]
struct LinkCreate {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
}

fn bpf<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<i32> {
    // SAFETY: `attr` is a valid, initialised `#[repr(C)]` prefix of `union bpf_attr` for
    // `cmd`, and its size is passed, so the kernel reads no further (it zero-checks the rest
    // of the union it knows of only up to `size`). Pointers inside it are to live buffers.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(r as i32) }
}

/// The programs attached to one cgroup; detached when dropped.
#[derive(Debug)]
pub struct Backstop {
    _links: Vec<OwnedFd>,
}

/// Loads and attaches the four programs to the cgroup directory `cgroup`.
pub fn attach(cgroup: BorrowedFd<'_>, netns_cookie: u64, launcher_tgid: u32) -> Result<Backstop, String> {
    let code = program(netns_cookie, launcher_tgid);
    let license = c"Dual MIT/Apache-2.0";
    let mut links = Vec::new();
    for (attach_type, name) in HOOKS {
        let mut log = vec![0u8; 4096];
        let mut load = ProgLoad {
            prog_type: BPF_PROG_TYPE_CGROUP_SOCK_ADDR,
            insn_cnt: code.len() as u32,
            insns: code.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            expected_attach_type: attach_type,
            ..Default::default()
        };
        load.prog_name[..8].copy_from_slice(b"hivebox\0");
        let prog = bpf(BPF_PROG_LOAD, &mut load).map_err(|e| {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            let verifier = String::from_utf8_lossy(&log[..end]).trim().replace('\n', "; ");
            format!(
                "the kernel refused the {name} program: {e}{}",
                if verifier.is_empty() { String::new() } else { format!(" ({verifier})") }
            )
        })?;
        // SAFETY: BPF_PROG_LOAD returned a new descriptor that nothing else owns.
        let prog = unsafe { OwnedFd::from_raw_fd(prog) };
        let mut link = LinkCreate {
            prog_fd: prog.as_raw_fd() as u32,
            target_fd: cgroup.as_raw_fd() as u32,
            attach_type,
            flags: 0,
        };
        let fd = bpf(BPF_LINK_CREATE, &mut link)
            .map_err(|e| format!("the kernel refused to attach the {name} program to the box's cgroup: {e}"))?;
        // SAFETY: BPF_LINK_CREATE returned a new descriptor that nothing else owns.
        links.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    Ok(Backstop { _links: links })
}
