//! eBPF for the sandbox's kernel programs: instructions and a small assembler for them, loading
//! programs and attaching them with links (`bpf(2)`), and asking which LSMs are active
//! (`lsm_list_modules(2)`). Used by the host-access protection (`crate::hostaccess`: LSM
//! programs built from the kernel's BTF) and the network decisions' backstop
//! (`crate::backstop`: cgroup socket-address programs). There is no libbpf here: the programs
//! are a few dozen instructions, assembled at run time.
//!
//! Instruction set and `union bpf_attr` layouts: the kernel's `include/uapi/linux/bpf.h` and
//! `Documentation/bpf/standardization/instruction-set.rst`.

use std::ffi::c_void;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// `lsm_list_modules(2)` (the same number on every architecture: the generic syscall table).
const SYS_LSM_LIST_MODULES: libc::c_long = 461;
/// The BPF LSM's id (`include/uapi/linux/lsm.h`).
pub const LSM_ID_BPF: u64 = 109;

// bpf(2) commands.
const BPF_PROG_LOAD: libc::c_int = 5;
const BPF_LINK_CREATE: libc::c_int = 28;
// Program types and attach types.
const BPF_PROG_TYPE_LSM: u32 = 29;
const BPF_LSM_MAC: u32 = 27;

/// A register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reg(u8);

/// Return value, and the helpers' results.
pub const R0: Reg = Reg(0);
/// First argument (the program's context on entry).
pub const R1: Reg = Reg(1);
/// Second argument.
pub const R2: Reg = Reg(2);
/// Third argument.
pub const R3: Reg = Reg(3);
/// Callee-saved.
pub const R6: Reg = Reg(6);
/// Callee-saved.
pub const R7: Reg = Reg(7);
/// Callee-saved.
pub const R8: Reg = Reg(8);
/// The read-only frame pointer.
pub const R10: Reg = Reg(10);

/// Helper functions called (`enum bpf_func_id`).
pub mod helper {
    /// `bpf_map_lookup_elem`.
    pub const MAP_LOOKUP_ELEM: i32 = 1;
    /// `bpf_get_current_pid_tgid`: tgid in the upper 32 bits (initial PID namespace).
    pub const GET_CURRENT_PID_TGID: i32 = 14;
    /// `bpf_get_current_task_btf`: the current task as a BTF-typed pointer.
    pub const GET_CURRENT_TASK_BTF: i32 = 158;
    /// `bpf_get_netns_cookie`: the network namespace cookie of the context's socket.
    pub const GET_NETNS_COOKIE: i32 = 122;
}

/// `BPF_PROG_TYPE_CGROUP_SOCK_ADDR`: connect and sendmsg hooks of a cgroup.
pub const BPF_PROG_TYPE_CGROUP_SOCK_ADDR: u32 = 18;

// Opcode parts.
const LD: u8 = 0x00;
const LDX: u8 = 0x01;
const STX: u8 = 0x03;
const ST: u8 = 0x02;
const ALU: u8 = 0x04;
const JMP: u8 = 0x05;
const ALU64: u8 = 0x07;
const W: u8 = 0x00;
const DW: u8 = 0x18;
const IMM: u8 = 0x00;
const MEM: u8 = 0x60;
const ATOMIC: u8 = 0xc0;
const K: u8 = 0x00;
const X: u8 = 0x08;
const ADD: u8 = 0x00;
const AND: u8 = 0x50;
const RSH: u8 = 0x70;
const MOV: u8 = 0xb0;
const JA: u8 = 0x00;
const JEQ: u8 = 0x10;
const CALL: u8 = 0x80;
const EXIT: u8 = 0x90;
/// `src_reg` of an `ld_imm64` whose immediate is a map's file descriptor.
const PSEUDO_MAP_FD: u8 = 1;

/// One instruction (`struct bpf_insn`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// `dst_reg:4, src_reg:4`, in the bitfield order of the host's byte order.
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    fn new(code: u8, dst: Reg, src: Reg, off: i16, imm: i32) -> Insn {
        let regs = if cfg!(target_endian = "little") { dst.0 | src.0 << 4 } else { dst.0 << 4 | src.0 };
        Insn { code, regs, off, imm }
    }

    /// The opcode byte.
    pub fn code(&self) -> u8 {
        self.code
    }

    /// The immediate.
    pub fn imm(&self) -> i32 {
        self.imm
    }
}

/// A jump target, bound to an instruction index by [`Asm::bind`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label(usize);

/// Why a program could not be assembled (a bug in its builder).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AsmError {
    /// A jump to a label never bound.
    #[error("label {0} is used but never bound")]
    Unbound(usize),
    /// A jump farther than 16 bits reach, or a struct offset past 16 bits.
    #[error("offset out of range at instruction {0}")]
    Range(usize),
}

/// Builds a program: instructions, with jumps to labels resolved by [`Asm::finish`].
#[derive(Debug, Default)]
pub struct Asm {
    insns: Vec<Insn>,
    labels: Vec<Option<usize>>,
    jumps: Vec<(usize, Label)>,
    /// The first memory offset that did not fit 16 bits.
    bad_offset: Option<usize>,
}

impl Asm {
    /// An empty program.
    pub fn new() -> Asm {
        Asm::default()
    }

    /// A new, unbound label.
    pub fn label(&mut self) -> Label {
        self.labels.push(None);
        Label(self.labels.len() - 1)
    }

    /// Binds `l` to the next instruction.
    pub fn bind(&mut self, l: Label) {
        self.labels[l.0] = Some(self.insns.len());
    }

    fn push(&mut self, i: Insn) {
        self.insns.push(i);
    }

    fn jump(&mut self, i: Insn, to: Label) {
        self.jumps.push((self.insns.len(), to));
        self.insns.push(i);
    }

    fn offset(&mut self, off: u32) -> i16 {
        i16::try_from(off).unwrap_or_else(|_| {
            self.bad_offset.get_or_insert(self.insns.len());
            0
        })
    }

    /// `dst = src` (64 bits).
    pub fn mov(&mut self, dst: Reg, src: Reg) {
        self.push(Insn::new(ALU64 | MOV | X, dst, src, 0, 0));
    }

    /// `dst = imm` (sign-extended to 64 bits).
    pub fn mov_imm(&mut self, dst: Reg, imm: i32) {
        self.push(Insn::new(ALU64 | MOV | K, dst, R0, 0, imm));
    }

    /// `dst = value` (a 64-bit immediate: two instruction slots).
    pub fn ld_imm64(&mut self, dst: Reg, value: u64) {
        self.push(Insn::new(LD | DW | IMM, dst, R0, 0, value as u32 as i32));
        self.push(Insn::new(0, R0, R0, 0, (value >> 32) as u32 as i32));
    }

    /// `dst = map` (the map whose descriptor is `fd`, resolved by the kernel at load).
    pub fn ld_map_fd(&mut self, dst: Reg, fd: i32) {
        self.push(Insn::new(LD | DW | IMM, dst, Reg(PSEUDO_MAP_FD), 0, fd));
        self.push(Insn::new(0, R0, R0, 0, 0));
    }

    /// `dst = *(u64 *)(src + off)`.
    pub fn load64(&mut self, dst: Reg, src: Reg, off: u32) {
        let off = self.offset(off);
        self.push(Insn::new(LDX | DW | MEM, dst, src, off, 0));
    }

    /// `*(u32 *)(dst + off) = imm`.
    pub fn store32_imm(&mut self, dst: Reg, off: i16, imm: i32) {
        self.push(Insn::new(ST | W | MEM, dst, R0, off, imm));
    }

    /// `lock *(u64 *)(dst + off) += src`.
    pub fn atomic_add64(&mut self, dst: Reg, src: Reg, off: i16) {
        self.push(Insn::new(STX | DW | ATOMIC, dst, src, off, ADD as i32));
    }

    /// `dst += imm` (64 bits).
    pub fn add_imm(&mut self, dst: Reg, imm: i32) {
        self.push(Insn::new(ALU64 | ADD | K, dst, R0, 0, imm));
    }

    /// `dst = (u32)dst & imm` (32 bits: the upper half is cleared).
    pub fn and32_imm(&mut self, dst: Reg, imm: u32) {
        self.push(Insn::new(ALU | AND | K, dst, R0, 0, imm as i32));
    }

    /// `dst >>= imm` (64 bits, logical).
    pub fn rsh_imm(&mut self, dst: Reg, imm: i32) {
        self.push(Insn::new(ALU64 | RSH | K, dst, R0, 0, imm));
    }

    /// `if dst == imm goto to` (64 bits; `imm` sign-extended).
    pub fn jeq_imm(&mut self, dst: Reg, imm: i32, to: Label) {
        self.jump(Insn::new(JMP | JEQ | K, dst, R0, 0, imm), to);
    }

    /// `if dst == src goto to` (64 bits).
    pub fn jeq(&mut self, dst: Reg, src: Reg, to: Label) {
        self.jump(Insn::new(JMP | JEQ | X, dst, src, 0, 0), to);
    }

    /// `goto to`.
    pub fn ja(&mut self, to: Label) {
        self.jump(Insn::new(JMP | JA, R0, R0, 0, 0), to);
    }

    /// Calls helper `id` (arguments in `r1`-`r5`, result in `r0`; `r1`-`r5` are clobbered).
    pub fn call(&mut self, id: i32) {
        self.push(Insn::new(JMP | CALL, R0, R0, 0, id));
    }

    /// Returns `r0`.
    pub fn exit(&mut self) {
        self.push(Insn::new(JMP | EXIT, R0, R0, 0, 0));
    }

    /// The program, jumps resolved.
    pub fn finish(mut self) -> Result<Vec<Insn>, AsmError> {
        if let Some(at) = self.bad_offset {
            return Err(AsmError::Range(at));
        }
        for (at, label) in std::mem::take(&mut self.jumps) {
            let target = self.labels[label.0].ok_or(AsmError::Unbound(label.0))?;
            let off = target as i64 - at as i64 - 1;
            self.insns[at].off = i16::try_from(off).map_err(|_| AsmError::Range(at))?;
        }
        Ok(self.insns)
    }
}

/// The ids of the active LSMs, in the order they are called (`lsm_list_modules(2)`, Linux
/// 6.8 and later).
pub fn active_lsms() -> io::Result<Vec<u64>> {
    let mut ids = vec![0u64; 32];
    loop {
        let mut size = (ids.len() * 8) as u32;
        // SAFETY: `ids` is a writable buffer of `size` bytes and `size` a valid u32 the
        // kernel updates; flags must be 0.
        let n = unsafe { libc::syscall(SYS_LSM_LIST_MODULES, ids.as_mut_ptr(), &mut size as *mut u32, 0u32) };
        if n >= 0 {
            ids.truncate(n as usize);
            return Ok(ids);
        }
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::E2BIG) || size as usize <= ids.len() * 8 {
            return Err(e);
        }
        ids.resize(size as usize / 8, 0);
    }
}

/// `union bpf_attr` for `BPF_PROG_LOAD`, up to `attach_btf_obj_fd` (the kernel zero-extends a
/// shorter attribute).
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
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
    prog_btf_fd: u32,
    func_info_rec_size: u32,
    func_info: u64,
    func_info_cnt: u32,
    line_info_rec_size: u32,
    line_info: u64,
    line_info_cnt: u32,
    attach_btf_id: u32,
    attach_btf_obj_fd: u32,
    _pad: u32,
}

/// `union bpf_attr` for `BPF_LINK_CREATE` (through `target_btf_id`).
#[repr(C)]
#[derive(Default)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    target_btf_id: u32,
    _pad: [u32; 3],
}

/// `bpf(cmd, attr, size_of(attr))`, returning the new descriptor.
///
/// # Safety
/// `attr` must be the attribute struct `cmd` expects, and every pointer in it must be valid
/// for what the kernel does with it during the call.
unsafe fn bpf_fd<T>(cmd: libc::c_int, attr: &mut T) -> io::Result<OwnedFd> {
    // SAFETY: per this function's contract; the size passed is the struct's own.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T as *mut c_void, size_of::<T>() as u32) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: on success these commands return a new descriptor this process owns.
    Ok(unsafe { OwnedFd::from_raw_fd(r as i32) })
}

/// A program the kernel refused.
#[derive(Debug)]
pub struct LoadError {
    /// `bpf(2)`'s error.
    pub errno: io::Error,
    /// The verifier's log (empty when the kernel refused the program before verifying it).
    pub log: String,
}

/// The license the programs are loaded under: LSM programs must declare a GPL-compatible
/// one. They are generated by this MIT-or-Apache-2.0 crate at run time and call only
/// helpers; "Dual MIT/GPL" says both, and the kernel accepts it.
const LICENSE: &[u8] = b"Dual MIT/GPL\0";

/// Loads `insns` as a program of `prog_type` / `expected_attach_type` attached at BTF type
/// `attach_btf_id` of vmlinux. A refused program is loaded again with the verifier's log on,
/// for the error.
fn prog_load(
    prog_type: u32,
    expected_attach_type: u32,
    insns: &[Insn],
    attach_btf_id: u32,
    name: &str,
) -> Result<OwnedFd, LoadError> {
    let mut attr = ProgLoadAttr {
        prog_type,
        insn_cnt: insns.len() as u32,
        insns: insns.as_ptr() as u64,
        license: LICENSE.as_ptr() as u64,
        expected_attach_type,
        attach_btf_id,
        ..Default::default()
    };
    // Names are up to 15 characters of [A-Za-z0-9_.].
    for (d, s) in
        attr.prog_name.iter_mut().zip(name.bytes().filter(|b| b.is_ascii_alphanumeric() || *b == b'_')).take(15)
    {
        *d = s;
    }
    // SAFETY: `attr` is a BPF_PROG_LOAD attribute; `insns` and `LICENSE` outlive the call;
    // no log buffer is given (size 0).
    let errno = match unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) } {
        Ok(fd) => return Ok(fd),
        Err(e) => e,
    };
    let mut log = vec![0u8; 1 << 20];
    attr.log_level = 1;
    attr.log_size = log.len() as u32;
    attr.log_buf = log.as_mut_ptr() as u64;
    // SAFETY: as above; `log` is writable for `log_size` bytes and outlives the call.
    match unsafe { bpf_fd(BPF_PROG_LOAD, &mut attr) } {
        // Accepted the second time (a transient failure): use it.
        Ok(fd) => Ok(fd),
        Err(_) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(log.len());
            Err(LoadError { errno, log: String::from_utf8_lossy(&log[..end]).trim_end().to_owned() })
        }
    }
}

/// Loads `insns` as a `BPF_PROG_TYPE_LSM` program for the hook whose `bpf_lsm_*` function is
/// BTF type `hook_btf_id`.
pub fn load_lsm(insns: &[Insn], hook_btf_id: u32, name: &str) -> Result<OwnedFd, LoadError> {
    prog_load(BPF_PROG_TYPE_LSM, BPF_LSM_MAC, insns, hook_btf_id, name)
}

/// Loads `insns` as a program of `prog_type` for `expected_attach_type` (no BTF target).
pub fn load(prog_type: u32, expected_attach_type: u32, insns: &[Insn], name: &str) -> Result<OwnedFd, LoadError> {
    prog_load(prog_type, expected_attach_type, insns, 0, name)
}

/// Attaches a loaded program to the cgroup directory `cgroup` with a link; it runs for the
/// cgroup's processes until the last descriptor of the link is closed.
pub fn attach_cgroup(prog: &OwnedFd, cgroup: std::os::fd::BorrowedFd<'_>, attach_type: u32) -> io::Result<OwnedFd> {
    link_create(prog, cgroup.as_raw_fd() as u32, attach_type)
}

/// Attaches a loaded program with a link (`BPF_LINK_CREATE`) to `target_fd` (0: none, for
/// LSM and tracing programs); the program runs until the last descriptor of the link is
/// closed. Nothing is pinned.
fn link_create(prog: &OwnedFd, target_fd: u32, attach_type: u32) -> io::Result<OwnedFd> {
    let mut attr = LinkCreateAttr { prog_fd: prog.as_raw_fd() as u32, target_fd, attach_type, ..Default::default() };
    // SAFETY: `attr` is a BPF_LINK_CREATE attribute holding only integers.
    unsafe { bpf_fd(BPF_LINK_CREATE, &mut attr) }
}

/// Attaches an LSM program loaded by [`load_lsm`] to its hook.
pub fn attach_lsm(prog: &OwnedFd) -> io::Result<OwnedFd> {
    link_create(prog, 0, BPF_LSM_MAC)
}

/// What the unit tests of `crate::hostaccess` use to run a decision on a tracepoint (where no
/// BPF LSM can be loaded, a BTF tracepoint still can) and read what it decided.
#[cfg(test)]
pub mod testing {
    use super::*;

    const BPF_MAP_CREATE: libc::c_int = 0;
    const BPF_MAP_LOOKUP_ELEM: libc::c_int = 1;
    const BPF_MAP_TYPE_ARRAY: u32 = 2;
    const BPF_PROG_TYPE_TRACING: u32 = 26;
    const BPF_TRACE_RAW_TP: u32 = 23;

    #[repr(C)]
    #[derive(Default)]
    struct MapCreateAttr {
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        map_flags: u32,
        _rest: [u32; 11],
    }

    #[repr(C)]
    #[derive(Default)]
    struct MapElemAttr {
        map_fd: u32,
        _pad: u32,
        key: u64,
        value: u64,
        flags: u64,
    }

    /// An array map of `n` u64 counters.
    pub fn counters(n: u32) -> io::Result<OwnedFd> {
        let mut attr = MapCreateAttr {
            map_type: BPF_MAP_TYPE_ARRAY,
            key_size: 4,
            value_size: 8,
            max_entries: n,
            ..Default::default()
        };
        // SAFETY: a BPF_MAP_CREATE attribute holding only integers.
        unsafe { bpf_fd(BPF_MAP_CREATE, &mut attr) }
    }

    /// Counter `i` of a [`counters`] map.
    pub fn counter(map: &OwnedFd, i: u32) -> io::Result<u64> {
        let mut value = 0u64;
        let mut attr = MapElemAttr {
            map_fd: map.as_raw_fd() as u32,
            key: &i as *const u32 as u64,
            value: &mut value as *mut u64 as u64,
            ..Default::default()
        };
        // SAFETY: a BPF_MAP_LOOKUP_ELEM attribute whose key (4 bytes) and value (8 bytes)
        // pointers are valid for the call and match the map's sizes.
        let r = unsafe {
            libc::syscall(libc::SYS_bpf, BPF_MAP_LOOKUP_ELEM, &mut attr as *mut MapElemAttr, size_of::<MapElemAttr>())
        };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(value) }
    }

    /// Loads and attaches `insns` as a BTF tracepoint program (`tp_btf`) on the tracepoint
    /// whose `btf_trace_*` typedef is BTF type `typedef_id`. Returns the link.
    pub fn attach_tracepoint(insns: &[Insn], typedef_id: u32) -> Result<OwnedFd, String> {
        let prog = prog_load(BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, insns, typedef_id, "hivebox_test")
            .map_err(|e| format!("{}\n{}", e.errno, e.log))?;
        link_create(&prog, 0, BPF_TRACE_RAW_TP).map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jumps_are_resolved_relative_to_the_next_instruction() {
        let mut a = Asm::new();
        let end = a.label();
        a.jeq_imm(R1, 0, end);
        a.mov_imm(R0, 1);
        a.bind(end);
        a.exit();
        let p = a.finish().unwrap();
        assert_eq!(p[0].off, 1);
        assert_eq!(p[0].code(), 0x15);
        assert_eq!(p[1], Insn::new(0xb7, R0, R0, 0, 1));
        assert_eq!(p[2].code(), 0x95);
    }

    #[test]
    fn a_64_bit_immediate_takes_two_slots() {
        let mut a = Asm::new();
        a.ld_imm64(R8, 0x1234_5678_9abc_def0);
        let p = a.finish().unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].code(), p[0].imm() as u32, p[1].imm() as u32), (0x18, 0x9abc_def0, 0x1234_5678));
        assert_eq!(p[0].regs & 0x0f, 8);
    }

    #[test]
    fn assembly_errors_are_reported() {
        let mut a = Asm::new();
        let nowhere = a.label();
        a.ja(nowhere);
        assert_eq!(a.finish(), Err(AsmError::Unbound(0)));
        let mut a = Asm::new();
        a.load64(R1, R1, 40_000);
        assert_eq!(a.finish(), Err(AsmError::Range(0)));
    }

    #[test]
    fn the_bpf_lsm_is_listed_among_the_active_lsms() {
        let ids = active_lsms().expect("lsm_list_modules (Linux 6.8+)");
        assert!(ids.contains(&LSM_ID_BPF), "active LSM ids: {ids:?}");
    }
}
