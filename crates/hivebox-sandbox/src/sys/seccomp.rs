//! The seccomp deny list of a box: the table of escape-prone system calls, compiled to classic
//! BPF with `seccompiler` before the fork, and installed in the child without allocating.
//!
//! Three filters are stacked (the kernel runs all of them and the most restrictive answer wins):
//! 1. the deny list: every listed call, or listed call with a matching argument, returns `EPERM`;
//!    everything else is allowed. A system call of another architecture (the i386 entry on
//!    x86_64) kills the process, which closes the 32-bit-numbering bypass.
//! 2. `clone3` returns `ENOSYS`: its flags live in memory, where seccomp cannot read them, so the
//!    C library falls back to `clone`, whose flags register filter 1 checks.
//! 3. (x86_64) any system call number with the x32 bit set returns `ENOSYS`: x32 calls share the
//!    x86_64 audit architecture, so without this a kernel built with x32 support would let
//!    `io_uring_setup | 0x4000_0000` through filter 1.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch, sock_filter,
};

/// `ioctl` requests that push input into a terminal (CVE-2017-5226, CVE-2019-10063).
pub const TIOCSTI: u64 = 0x5412;
/// `ioctl` request whose subcodes paste selections into a virtual console.
pub const TIOCLINUX: u64 = 0x541C;

/// Namespace flags that `clone` must not carry. (`CLONE_NEWTIME` is `0x80`, which in `clone`'s
/// first argument is part of the exit-signal byte, so only `unshare`/`clone3` could use it; both
/// are denied outright.)
pub const CLONE_NAMESPACE_FLAGS: [(&str, u64); 7] = [
    ("CLONE_NEWNS", 0x0002_0000),
    ("CLONE_NEWCGROUP", 0x0200_0000),
    ("CLONE_NEWUTS", 0x0400_0000),
    ("CLONE_NEWIPC", 0x0800_0000),
    ("CLONE_NEWUSER", 0x1000_0000),
    ("CLONE_NEWPID", 0x2000_0000),
    ("CLONE_NEWNET", 0x4000_0000),
];

/// Which calls of a denied system call are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// Every call.
    Always,
    /// `clone` whose flags (argument 0, low 32 bits as the kernel reads them) carry any of
    /// [`CLONE_NAMESPACE_FLAGS`].
    NamespaceFlags,
    /// `ioctl` whose request (argument 1, low 32 bits: the kernel's `cmd` is an `unsigned int`,
    /// so set high bits must not dodge the compare) is one of these.
    IoctlRequest(&'static [u64]),
}

/// One row of the deny list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Denied {
    /// The `libc` constant's name, `SYS_` and the system call's name.
    sys: &'static str,
    /// Its number on the architecture this crate is built for.
    pub nr: i64,
    /// Which calls are refused.
    pub when: Match,
    /// Group of the row, for documentation and `box inspect`.
    pub why: &'static str,
    /// Whether this row is about looking into or debugging other processes; dropped when the
    /// box allows debugging inside itself (Landlock still limits these to the box).
    pub debugging: bool,
}

const ASYNC: &str = "io_uring runs operations outside seccomp's view";
const KERNEL: &str = "kernel attack surface (eBPF, perf, keyrings, userfaultfd)";
const MOUNT: &str = "mounting or unmounting would reshape the box's view of the host";
const NS: &str = "new namespaces (a user namespace gives back capabilities)";
const PROC: &str = "reading or writing other processes";
const TTY: &str = "injecting input into a terminal outside the box";
const HANDLE: &str = "file handles bypass the box's mount view";
const HOST: &str = "host-wide state: modules, kexec, reboot, swap, accounting, quotas, clock";

macro_rules! row {
    ($sys:ident, $when:expr, $why:expr) => {
        row!($sys, $when, $why, false)
    };
    ($sys:ident, $when:expr, $why:expr, $dbg:expr) => {
        Denied { sys: stringify!($sys), nr: libc::$sys, when: $when, why: $why, debugging: $dbg }
    };
}

/// The deny list, in the order `docs/sandbox.md` explains it.
pub const DENY_LIST: &[Denied] = &[
    row!(SYS_io_uring_setup, Match::Always, ASYNC),
    row!(SYS_io_uring_enter, Match::Always, ASYNC),
    row!(SYS_io_uring_register, Match::Always, ASYNC),
    row!(SYS_bpf, Match::Always, KERNEL),
    row!(SYS_perf_event_open, Match::Always, KERNEL),
    row!(SYS_keyctl, Match::Always, KERNEL),
    row!(SYS_add_key, Match::Always, KERNEL),
    row!(SYS_request_key, Match::Always, KERNEL),
    row!(SYS_userfaultfd, Match::Always, KERNEL),
    row!(SYS_mount, Match::Always, MOUNT),
    row!(SYS_umount2, Match::Always, MOUNT),
    row!(SYS_fsopen, Match::Always, MOUNT),
    row!(SYS_fsmount, Match::Always, MOUNT),
    row!(SYS_fsconfig, Match::Always, MOUNT),
    row!(SYS_fspick, Match::Always, MOUNT),
    row!(SYS_move_mount, Match::Always, MOUNT),
    row!(SYS_open_tree, Match::Always, MOUNT),
    row!(SYS_mount_setattr, Match::Always, MOUNT),
    row!(SYS_pivot_root, Match::Always, MOUNT),
    row!(SYS_unshare, Match::Always, NS),
    row!(SYS_setns, Match::Always, NS),
    row!(SYS_clone, Match::NamespaceFlags, NS),
    row!(SYS_ptrace, Match::Always, PROC, true),
    row!(SYS_process_vm_readv, Match::Always, PROC, true),
    row!(SYS_process_vm_writev, Match::Always, PROC, true),
    row!(SYS_kcmp, Match::Always, PROC, true),
    row!(SYS_ioctl, Match::IoctlRequest(&[TIOCSTI, TIOCLINUX]), TTY),
    row!(SYS_open_by_handle_at, Match::Always, HANDLE),
    row!(SYS_init_module, Match::Always, HOST),
    row!(SYS_finit_module, Match::Always, HOST),
    row!(SYS_delete_module, Match::Always, HOST),
    row!(SYS_kexec_load, Match::Always, HOST),
    row!(SYS_kexec_file_load, Match::Always, HOST),
    row!(SYS_reboot, Match::Always, HOST),
    row!(SYS_swapon, Match::Always, HOST),
    row!(SYS_swapoff, Match::Always, HOST),
    row!(SYS_acct, Match::Always, HOST),
    row!(SYS_quotactl, Match::Always, HOST),
    row!(SYS_settimeofday, Match::Always, HOST),
    row!(SYS_clock_settime, Match::Always, HOST),
    row!(SYS_clock_adjtime, Match::Always, HOST),
    row!(SYS_adjtimex, Match::Always, HOST),
];

/// The architecture the filters are built for, or `None` where this crate has no table.
pub fn target_arch() -> Option<TargetArch> {
    match std::env::consts::ARCH {
        "x86_64" => Some(TargetArch::x86_64),
        "aarch64" => Some(TargetArch::aarch64),
        _ => None,
    }
}

/// The compiled filters, in installation order.
#[derive(Debug, Clone)]
pub struct Filters {
    programs: Vec<BpfProgram>,
}

fn dword(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)
}

fn rules_for(row: &Denied) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    match row.when {
        // An empty chain matches every call of the system call.
        Match::Always => Ok(Vec::new()),
        Match::NamespaceFlags => CLONE_NAMESPACE_FLAGS
            .iter()
            .map(|&(_, flag)| SeccompRule::new(vec![dword(0, SeccompCmpOp::MaskedEq(flag), flag)?]))
            .collect(),
        Match::IoctlRequest(requests) => {
            requests.iter().map(|&request| SeccompRule::new(vec![dword(1, SeccompCmpOp::Eq, request)?])).collect()
        }
    }
}

/// Compiles the deny list (without the debugging rows when `allow_debugging`) and the `clone3`
/// filter. `arch` must be [`target_arch`]: the numbers are this build target's.
pub fn compile(arch: TargetArch, allow_debugging: bool) -> Result<Filters, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for row in DENY_LIST.iter().filter(|row| !(allow_debugging && row.debugging)) {
        rules.insert(row.nr, rules_for(row)?);
    }
    let deny = SeccompFilter::new(rules, SeccompAction::Allow, SeccompAction::Errno(libc::EPERM as u32), arch)?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    let mut programs: Vec<BpfProgram> = vec![deny.try_into()?, clone3.try_into()?];
    if arch == TargetArch::x86_64 {
        programs.push(x32_filter());
    }
    Ok(Filters { programs })
}

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const X32_SYSCALL_BIT: u32 = 0x4000_0000;
// Classic BPF as seccomp uses it (`struct seccomp_data` offsets, opcodes, actions); the
// network filter (`unotify.rs`) shares them.
pub(crate) const SECCOMP_DATA_NR: u32 = 0;
pub(crate) const SECCOMP_DATA_ARCH: u32 = 4;
pub(crate) const BPF_LD_W_ABS: u16 = 0x20;
pub(crate) const BPF_JEQ_K: u16 = 0x15;
pub(crate) const BPF_JA: u16 = 0x05;
const BPF_JGE_K: u16 = 0x35;
pub(crate) const BPF_RET_K: u16 = 0x06;
pub(crate) const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
pub(crate) const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

/// One classic BPF instruction.
pub(crate) fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// x86_64 only: `ENOSYS` for x32 system call numbers (other architectures are killed by the
/// deny list's own architecture check).
fn x32_filter() -> BpfProgram {
    vec![
        insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        insn(BPF_JEQ_K, 0, 2, AUDIT_ARCH_X86_64),
        insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
        insn(BPF_JGE_K, 1, 0, X32_SYSCALL_BIT),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | libc::ENOSYS as u32),
    ]
}

impl Denied {
    /// The system call's name, as in `man 2`.
    pub fn name(&self) -> &'static str {
        self.sys.trim_start_matches("SYS_")
    }
}

impl Filters {
    /// The compiled programs, in installation order.
    pub fn programs(&self) -> &[BpfProgram] {
        &self.programs
    }

    /// Installs every filter on the calling thread (sets `no_new_privs` first, as the kernel
    /// requires without `CAP_SYS_ADMIN`). Allocates nothing: safe between `fork` and `exec`.
    /// On failure returns the errno.
    pub fn install(&self) -> Result<(), i32> {
        for program in &self.programs {
            seccompiler::apply_filter(program).map_err(|e| match e {
                seccompiler::Error::Prctl(io) | seccompiler::Error::Seccomp(io) => {
                    io.raw_os_error().unwrap_or(libc::EINVAL)
                }
                _ => libc::EINVAL,
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdict of a classic-BPF seccomp program for one system call, evaluated the way the
    /// kernel does (only the instructions the filters here use).
    use super::super::run_classic_bpf as run;

    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;

    fn arch_value(arch: TargetArch) -> u32 {
        match arch {
            TargetArch::x86_64 => AUDIT_ARCH_X86_64,
            TargetArch::aarch64 => 0xC000_00B7,
            TargetArch::riscv64 => 0xC000_00F3,
        }
    }

    /// The verdict of the whole stack: the most restrictive answer wins (kill < errno < allow).
    fn verdict(filters: &Filters, nr: i64, args: [u64; 6]) -> u32 {
        let arch = arch_value(target_arch().unwrap());
        filters.programs().iter().map(|p| run(p, arch, nr, args)).min_by_key(|v| v & 0xffff_0000).unwrap()
    }

    fn filters() -> Filters {
        compile(target_arch().expect("tests run on x86_64 or aarch64"), false).unwrap()
    }

    #[test]
    fn the_table_compiles_and_has_no_duplicates() {
        // The numbers are this target's (`libc::SYS_*`), so only this target's arch is built.
        for debugging in [false, true] {
            let filters = compile(target_arch().unwrap(), debugging).unwrap();
            assert!(filters.programs().iter().all(|p| !p.is_empty() && p.len() < 4096));
        }
        let mut names: Vec<_> = DENY_LIST.iter().map(Denied::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), DENY_LIST.len());
    }

    #[test]
    fn the_brief_s_calls_are_all_listed() {
        let names: Vec<_> = DENY_LIST.iter().map(Denied::name).collect();
        for name in [
            "io_uring_setup",
            "io_uring_enter",
            "io_uring_register",
            "bpf",
            "perf_event_open",
            "keyctl",
            "add_key",
            "request_key",
            "mount",
            "umount2",
            "fsopen",
            "fsmount",
            "fsconfig",
            "move_mount",
            "open_tree",
            "mount_setattr",
            "pivot_root",
            "unshare",
            "setns",
            "clone",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "kcmp",
            "userfaultfd",
            "open_by_handle_at",
            "ioctl",
            "init_module",
            "finit_module",
            "delete_module",
            "kexec_load",
            "kexec_file_load",
            "reboot",
            "swapon",
            "swapoff",
            "acct",
            "quotactl",
            "settimeofday",
            "clock_settime",
            "adjtimex",
        ] {
            assert!(names.contains(&name), "{name} missing from the deny list");
        }
    }

    #[test]
    fn every_unconditional_row_returns_eperm_whatever_the_arguments() {
        let filters = filters();
        for row in DENY_LIST.iter().filter(|r| r.when == Match::Always) {
            for args in [[0; 6], [u64::MAX; 6], [1, 2, 3, 4, 5, 6]] {
                assert_eq!(verdict(&filters, row.nr, args), EPERM, "{}", row.name());
            }
        }
    }

    #[test]
    fn ordinary_calls_are_allowed() {
        let filters = filters();
        for nr in [libc::SYS_read, libc::SYS_write, libc::SYS_execve, libc::SYS_kill, libc::SYS_wait4] {
            assert_eq!(verdict(&filters, nr, [0; 6]), ALLOW);
        }
        // name_to_handle_at only names a file; opening by handle is what is denied.
        assert_eq!(verdict(&filters, libc::SYS_name_to_handle_at, [0; 6]), ALLOW);
    }

    #[test]
    fn clone_is_denied_only_with_namespace_flags_in_the_low_32_bits() {
        let filters = filters();
        let sigchld = libc::SIGCHLD as u64;
        let thread = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        assert_eq!(verdict(&filters, libc::SYS_clone, [sigchld, 0, 0, 0, 0, 0]), ALLOW);
        assert_eq!(verdict(&filters, libc::SYS_clone, [thread, 0, 0, 0, 0, 0]), ALLOW);
        for (name, flag) in CLONE_NAMESPACE_FLAGS {
            for extra in [0, sigchld, thread, 0xffff_ffff_0000_0000] {
                let args = [flag | extra, 0, 0, 0, 0, 0];
                assert_eq!(verdict(&filters, libc::SYS_clone, args), EPERM, "{name}");
            }
        }
        // The kernel ignores the high half of clone's flags, and so does the filter.
        assert_eq!(verdict(&filters, libc::SYS_clone, [1 << 60 | sigchld, 0, 0, 0, 0, 0]), ALLOW);
    }

    #[test]
    fn clone3_is_enosys_so_libc_falls_back_to_clone() {
        assert_eq!(verdict(&filters(), libc::SYS_clone3, [0; 6]), ENOSYS);
    }

    #[test]
    fn ioctl_is_denied_for_tiocsti_and_tioclinux_even_with_high_bits_set() {
        let filters = filters();
        for request in [TIOCSTI, TIOCLINUX] {
            for high in [0, 0xffff_ffff_0000_0000, 1 << 32] {
                let args = [0, request | high, 0, 0, 0, 0];
                assert_eq!(verdict(&filters, libc::SYS_ioctl, args), EPERM);
            }
        }
        for request in [libc::TCGETS, libc::TIOCGWINSZ, libc::FIONREAD] {
            let args = [0, request, 0, 0, 0, 0];
            assert_eq!(verdict(&filters, libc::SYS_ioctl, args), ALLOW);
        }
    }

    #[test]
    fn debugging_rows_are_dropped_only_on_request() {
        let arch = target_arch().unwrap();
        let open = compile(arch, true).unwrap();
        for row in DENY_LIST {
            let expected = if row.debugging { ALLOW } else { verdict(&filters(), row.nr, [0; 6]) };
            assert_eq!(verdict(&open, row.nr, [0; 6]), expected, "{}", row.name());
        }
    }

    #[test]
    fn foreign_architectures_are_killed_and_x32_numbers_refused() {
        let filters = filters();
        let arch = arch_value(target_arch().unwrap());
        let foreign = 0x4000_0003; // AUDIT_ARCH_I386
        let first = &filters.programs()[0];
        assert_eq!(run(first, foreign, libc::SYS_read, [0; 6]), 0x8000_0000); // KILL_PROCESS
        assert_eq!(run(first, arch, libc::SYS_read, [0; 6]), ALLOW);
        if target_arch() == Some(TargetArch::x86_64) {
            let x32 = libc::SYS_io_uring_setup | i64::from(X32_SYSCALL_BIT);
            assert_eq!(verdict(&filters, x32, [0; 6]), ENOSYS);
        }
    }
}
