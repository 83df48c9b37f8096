//! The kernel backstop of `network = "decide"` (`crate::netdecide`): eBPF programs on the box's
//! cgroup (cgroup v2 `connect4`/`connect6`/`sendmsg4`/`sendmsg6` hooks) that refuse, with
//! `EPERM`, every connect and every addressed UDP send made on a socket of the box's network
//! namespace by any process but the launcher. The launcher makes the allowed connections
//! itself, on its copy of the box's socket, so whatever a boxed program manages to slip past
//! the seccomp filter cannot reach the network undecided. Sockets of other namespaces (pasta's,
//! on the host side) pass.
//!
//! Each program is a dozen instructions (`crate::sys::ebpf`), attached through BPF links: the
//! links close, and the programs go, when the launcher exits.

use crate::sys::ebpf::{self, Asm, BPF_PROG_TYPE_CGROUP_SOCK_ADDR, Insn, R0, R1, R6, helper};
use std::os::fd::{BorrowedFd, OwnedFd};

/// The hooks the backstop takes: attach type and name.
pub const HOOKS: [(u32, &str); 4] = [(10, "connect4"), (11, "connect6"), (14, "sendmsg4"), (15, "sendmsg6")];

/// The programs attached to one cgroup; detached when dropped.
#[derive(Debug)]
pub struct Backstop {
    _links: Vec<OwnedFd>,
}

/// The program: allow (1) unless the socket is in the box's namespace (`cookie`) and the caller
/// is not the launcher (`tgid`).
fn program(cookie: u64, tgid: u32) -> Vec<Insn> {
    let mut a = Asm::new();
    let (in_box, launcher) = (a.label(), a.label());
    a.mov(R6, R1);
    a.call(helper::GET_NETNS_COOKIE);
    a.ld_imm64(R1, cookie);
    a.jeq(R0, R1, in_box);
    // Another namespace's socket: not the box's business.
    a.mov_imm(R0, 1);
    a.exit();
    a.bind(in_box);
    a.call(helper::GET_CURRENT_PID_TGID);
    a.rsh_imm(R0, 32);
    a.jeq_imm(R0, tgid as i32, launcher);
    a.mov_imm(R0, 0);
    a.exit();
    a.bind(launcher);
    a.mov_imm(R0, 1);
    a.exit();
    a.finish().expect("a fixed program with bound labels and short jumps")
}

/// Loads and attaches the four programs to the cgroup directory `cgroup`: on sockets of the
/// network namespace `netns_cookie`, only process `launcher_tgid` may connect or send to an
/// address.
pub fn attach(cgroup: BorrowedFd<'_>, netns_cookie: u64, launcher_tgid: u32) -> Result<Backstop, String> {
    let code = program(netns_cookie, launcher_tgid);
    let mut links = Vec::new();
    for (attach_type, name) in HOOKS {
        let prog = ebpf::load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, attach_type, &code, "hivebox_net").map_err(|e| {
            let log = if e.log.is_empty() { String::new() } else { format!(" ({})", e.log.replace('\n', "; ")) };
            format!("the kernel refused the {name} program: {}{log}", e.errno)
        })?;
        let link = ebpf::attach_cgroup(&prog, cgroup, attach_type)
            .map_err(|e| format!("the kernel refused to attach the {name} program to the box's cgroup: {e}"))?;
        links.push(link);
    }
    Ok(Backstop { _links: links })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_checks_the_namespace_then_the_caller() {
        let p = program(0x1122_3344_5566_7788, 4242);
        let codes: Vec<u8> = p.iter().map(Insn::code).collect();
        // mov, call, ld_imm64 (two slots), jeq, mov, exit, call, rsh, jeq, mov, exit, mov, exit.
        assert_eq!(codes, [0xbf, 0x85, 0x18, 0x00, 0x1d, 0xb7, 0x95, 0x85, 0x77, 0x15, 0xb7, 0x95, 0xb7, 0x95]);
        assert_eq!((p[2].imm() as u32, p[3].imm() as u32), (0x5566_7788, 0x1122_3344));
        assert_eq!(p[9].imm(), 4242);
    }
}
