//! Protecting a box from the host (`box.toml`: `deny-host-access = true`; Sandboxie's
//! `DenyHostAccess`): no process outside the box's cgroup may trace, read or write the memory
//! of, take descriptors from, or signal a process in it (`docs/sandbox.md`, "Protecting the
//! box from the host").
//!
//! Boxed processes run as uid 0, so the attacker to stop is a host process running as root,
//! which passes every credential and capability check: only an LSM can refuse it. Two BPF LSM
//! programs do, built here from the running kernel's BTF (no compiler or libbpf involved) and
//! attached by the launcher for the box's lifetime ([`HostAccessGuard`]):
//!
//! - `ptrace_access_check(child, mode)`: refused when `mode` has `PTRACE_MODE_ATTACH`
//!   (`ptrace` attach and seize, `/proc/PID/mem`, `process_vm_readv/writev`, `pidfd_getfd`).
//!   `PTRACE_MODE_READ` stays allowed: the daemon reads `/proc/PID/exe` to identify boxed
//!   callers, and `ps` and `box inspect` read the same class of files.
//! - `task_kill(p, info, sig, cred)`: refused for every signal but 0 (which only asks whether
//!   the process exists). Signals the kernel sends itself (a terminal's `SIGINT`, `SIGCHLD`,
//!   the PID namespace's end) do not pass through this hook.
//!
//! Each refuses with `EPERM` when the target task is in the box's cgroup (or a cgroup below
//! it) and the current task is not, unless the current task belongs to the launcher (its
//! thread group id), which forwards signals to the box and may take descriptors from it.
//! A task's cgroup is found by walking BTF-typed pointers from the task:
//! `task->cgroups->dfl_cgrp`, then `->kn->id` compared with the box cgroup's id, and up through
//! `->self.parent->cgroup` for at most [`CGROUP_LEVELS`] levels. The id of a cgroup v2
//! directory is its inode number (`kernfs_node.id` is the inode number on 64-bit kernels;
//! the unit test `the_decision_runs_in_the_kernel` checks it against the kernel itself).
//!
//! The programs live as long as a descriptor of their links does: the launcher's guard, and
//! the copies its box's keeper and init inherit (they never `exec`), so the protection lasts
//! as long as the box and nothing is left pinned. A launcher running several boxes must not
//! lend one box's links to another box's keeper (`fork` copies every descriptor): the live
//! links of this process are registered ([`with_links_fixed`]) and a keeper closes the ones
//! that are not its box's.

use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{PoisonError, RwLock};

use crate::btf::{Btf, BtfError, Kind, TypeId};
use crate::sys::ebpf::{self as lsm, Asm, AsmError, Insn, Label, R0, R1, R2, R6, R8, helper};

/// The name `box inspect` lists this protection under.
pub const MECHANISM: &str = "protection from the host";
/// How many cgroup levels, from a task's own up, are compared with the box's cgroup: a
/// process in a cgroup more than `CGROUP_LEVELS - 1` levels below the box's counts as
/// outside it (nothing in a box can create cgroups: no capabilities, `/sys` read-only).
pub const CGROUP_LEVELS: usize = 16;
/// `PTRACE_MODE_ATTACH` (`include/linux/ptrace.h`).
const PTRACE_MODE_ATTACH: u32 = 0x02;
/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_SUPER_MAGIC: u64 = 0x6367_7270;
/// The hooks: the LSM hook's name, the parameter that says whether there is anything to
/// decide, and the bits of it that do.
const HOOKS: [(&str, &str, u32); 2] =
    [("ptrace_access_check", "mode", PTRACE_MODE_ATTACH), ("task_kill", "sig", u32::MAX)];

/// The link descriptors of this process's live guards. Written (a guard made or dropped)
/// under the write lock; read, with the `fork` of a keeper, under the read lock, so no fork
/// sees a link that is not listed yet.
static LIVE_LINKS: RwLock<Vec<i32>> = RwLock::new(Vec::new());

/// Runs `f` (which forks a box's keeper) with the list of this process's live link
/// descriptors, which no guard changes until `f` returns.
pub fn with_links_fixed<T>(f: impl FnOnce(&[i32]) -> T) -> T {
    f(&LIVE_LINKS.read().unwrap_or_else(PoisonError::into_inner))
}

/// Why a box cannot be protected from the host. Nothing is attached when this is returned.
/// Each message says everything, causes included (none is also given as a `source`, which
/// would print it twice in an error chain).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostAccessError {
    /// The BPF LSM is built but not in the kernel's active LSM list.
    #[error(
        "the BPF LSM is not active (active LSMs: {active}); the kernel must be built with CONFIG_BPF_LSM and \
         booted with \"bpf\" in lsm="
    )]
    LsmInactive {
        /// The active LSMs.
        active: String,
    },
    /// Neither `lsm_list_modules(2)` nor `/sys/kernel/security/lsm` answered.
    #[error("cannot tell whether the BPF LSM is active: lsm_list_modules: {syscall}; /sys/kernel/security/lsm: {file}")]
    LsmUnknown {
        /// The system call's error.
        syscall: std::io::Error,
        /// The file's error.
        file: std::io::Error,
    },
    /// The box's cgroup cannot be used.
    #[error("the box's cgroup {}: {reason}", path.display())]
    Cgroup {
        /// Its directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The launcher's id is not a process id.
    #[error("launcher thread group id {0} is not a process id")]
    Launcher(u32),
    /// The kernel's BTF cannot be read.
    #[error("the kernel's type information: {0}")]
    Btf(BtfError),
    /// The kernel's BTF lacks something the programs need.
    #[error("the kernel's type information (BTF) has no {0}")]
    Missing(String),
    /// A program could not be assembled (a bug here).
    #[error("building the program for {hook}: {error}")]
    Program {
        /// The hook.
        hook: &'static str,
        /// Why.
        error: AsmError,
    },
    /// The kernel refused a program.
    #[error("the kernel refused the BPF LSM program for {hook}: {errno}{}", load_detail(errno, log, *capable))]
    Load {
        /// The hook.
        hook: &'static str,
        /// `bpf(BPF_PROG_LOAD)`'s error.
        errno: std::io::Error,
        /// The verifier's log (empty when the program was refused before verification).
        log: String,
        /// Whether this process had `CAP_BPF` and `CAP_PERFMON` (or `CAP_SYS_ADMIN`).
        capable: bool,
    },
    /// The kernel refused to attach a program.
    #[error("the kernel refused to attach the BPF LSM program to {hook}: {errno}")]
    Attach {
        /// The hook.
        hook: &'static str,
        /// `bpf(BPF_LINK_CREATE)`'s error.
        errno: std::io::Error,
    },
}

impl From<BtfError> for HostAccessError {
    fn from(e: BtfError) -> Self {
        HostAccessError::Btf(e)
    }
}

/// The verifier's last lines, or why there are none.
fn load_detail(errno: &std::io::Error, log: &str, capable: bool) -> String {
    if log.is_empty() {
        let hint = match (errno.raw_os_error() == Some(libc::EPERM), capable) {
            (true, true) => {
                ", although this process has CAP_BPF and CAP_PERFMON: this kernel does not allow BPF LSM programs"
            }
            (true, false) => ": loading BPF LSM programs needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN)",
            (false, _) => "",
        };
        return format!(" (refused before verification, with no verifier log{hint})");
    }
    let lines: Vec<&str> = log.lines().collect();
    format!("; the verifier's log ends:\n{}", lines[lines.len().saturating_sub(20)..].join("\n"))
}

/// The protection of one box, in force while this value (or a copy of its descriptors in a
/// child process) lives.
#[derive(Debug)]
pub struct HostAccessGuard {
    /// The links of the attached programs; closing the last descriptor detaches them.
    links: Vec<OwnedFd>,
    cgroup: PathBuf,
    cgroup_id: u64,
    launcher_tgid: u32,
}

impl HostAccessGuard {
    /// Attaches the programs protecting the processes in `cgroup_dir` (a cgroup v2 directory)
    /// from every process outside it except those of thread group `launcher_tgid` (a process
    /// id in the initial PID namespace: the launcher's own, `std::process::id()`).
    pub fn protect(cgroup_dir: &Path, launcher_tgid: u32) -> Result<HostAccessGuard, HostAccessError> {
        if launcher_tgid == 0 || launcher_tgid > i32::MAX as u32 {
            return Err(HostAccessError::Launcher(launcher_tgid));
        }
        bpf_lsm_active()?;
        let cgroup_id = cgroup_id(cgroup_dir)?;
        let btf = Btf::kernel()?;
        let layout = Layout::from_btf(&btf)?;
        // Before `links`, so that links made before a failure are closed while it is held.
        let mut live = LIVE_LINKS.write().unwrap_or_else(PoisonError::into_inner);
        let mut links = Vec::new();
        for (name, gate, mask) in HOOKS {
            let hook = Hook::from_btf(&btf, name, gate, mask)?;
            let insns = lsm_program(&layout, &hook, cgroup_id, launcher_tgid)
                .map_err(|error| HostAccessError::Program { hook: name, error })?;
            let prog = lsm::load_lsm(&insns, hook.func.0, &format!("hivebox_{name}"))
                .map_err(|e| HostAccessError::Load { hook: name, errno: e.errno, log: e.log, capable: may_load() })?;
            links.push(lsm::attach_lsm(&prog).map_err(|errno| HostAccessError::Attach { hook: name, errno })?);
        }
        live.extend(links.iter().map(|l| l.as_raw_fd()));
        Ok(HostAccessGuard { links, cgroup: cgroup_dir.to_owned(), cgroup_id, launcher_tgid })
    }

    /// The link descriptors (which a keeper forked for this box keeps).
    pub fn raw_links(&self) -> Vec<i32> {
        self.links.iter().map(|l| l.as_raw_fd()).collect()
    }

    /// What is enforced, for `box inspect` (under [`MECHANISM`]).
    pub fn describe(&self) -> String {
        format!(
            "BPF LSM programs on ptrace_access_check and task_kill refuse (EPERM) every process outside cgroup {} \
             (id {}) but the launcher (pid {}): ptrace attach and seize, /proc/PID/mem, process_vm_readv/writev, \
             pidfd_getfd, and signals other than 0 (kill, tgkill, pidfd_send_signal); read-mode access (ps, \
             /proc/PID/exe, /proc/PID/status) stays open to the host",
            self.cgroup.display(),
            self.cgroup_id,
            self.launcher_tgid
        )
    }
}

/// Whether this process has the capabilities that loading LSM programs needs.
fn may_load() -> bool {
    use rustix::thread::CapabilitySet as C;
    rustix::thread::capabilities(None)
        .is_ok_and(|c| c.effective.contains(C::BPF | C::PERFMON) || c.effective.contains(C::SYS_ADMIN))
}

impl Drop for HostAccessGuard {
    fn drop(&mut self) {
        let mut live = LIVE_LINKS.write().unwrap_or_else(PoisonError::into_inner);
        let mine = self.raw_links();
        live.retain(|fd| !mine.contains(fd));
        // Closed under the lock: a keeper forked now neither inherits nor lists them.
        self.links.clear();
    }
}

/// LSM names by `lsm_list_modules` id (`include/uapi/linux/lsm.h`).
fn lsm_name(id: u64) -> String {
    const NAMES: [&str; 14] = [
        "capability",
        "selinux",
        "smack",
        "tomoyo",
        "apparmor",
        "yama",
        "loadpin",
        "safesetid",
        "lockdown",
        "bpf",
        "landlock",
        "ima",
        "evm",
        "ipe",
    ];
    id.checked_sub(100).and_then(|i| NAMES.get(i as usize)).map_or_else(|| format!("id {id}"), |n| (*n).to_owned())
}

/// Checks that the BPF LSM is active: attached programs would silently never run otherwise.
fn bpf_lsm_active() -> Result<(), HostAccessError> {
    let active = match lsm::active_lsms() {
        Ok(ids) if ids.contains(&lsm::LSM_ID_BPF) => return Ok(()),
        Ok(ids) => ids.into_iter().map(lsm_name).collect::<Vec<_>>().join(","),
        // Before Linux 6.8: securityfs has the list, when it is mounted.
        Err(syscall) => match std::fs::read_to_string("/sys/kernel/security/lsm") {
            Ok(list) if list.trim().split(',').any(|l| l == "bpf") => return Ok(()),
            Ok(list) => list.trim().to_owned(),
            Err(file) => return Err(HostAccessError::LsmUnknown { syscall, file }),
        },
    };
    Err(HostAccessError::LsmInactive { active })
}

/// The id of cgroup v2 directory `dir`: its inode number.
fn cgroup_id(dir: &Path) -> Result<u64, HostAccessError> {
    let bad = |reason: String| HostAccessError::Cgroup { path: dir.to_owned(), reason };
    let fs = rustix::fs::statfs(dir).map_err(|e| bad(format!("cannot statfs it: {e}")))?;
    if fs.f_type as u64 != CGROUP2_SUPER_MAGIC {
        return Err(bad(format!("not a cgroup v2 directory (filesystem type {:#x})", fs.f_type)));
    }
    Ok(std::fs::metadata(dir).map_err(|e| bad(format!("cannot stat it: {e}")))?.ino())
}

/// The byte offsets of the members the programs load, from the kernel's BTF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// `task_struct.cgroups` (`struct css_set *`).
    task_cgroups: u32,
    /// `css_set.dfl_cgrp` (`struct cgroup *`): the task's cgroup in the v2 hierarchy.
    cset_dfl_cgrp: u32,
    /// `cgroup.kn` (`struct kernfs_node *`).
    cgroup_kn: u32,
    /// `cgroup.self.parent` (`struct cgroup_subsys_state *`; `NULL` at the root).
    cgroup_parent: u32,
    /// `cgroup_subsys_state.cgroup` (`struct cgroup *`).
    css_cgroup: u32,
    /// `kernfs_node.id` (`u64`).
    kn_id: u32,
}

impl Layout {
    fn from_btf(btf: &Btf) -> Result<Layout, HostAccessError> {
        let strukt =
            |name: &str| btf.find(Kind::Struct, name).ok_or_else(|| HostAccessError::Missing(format!("struct {name}")));
        // A member's byte offset, checked to be a pointer to `to` (or an 8-byte integer).
        let member = |s: &str, m: &str, to: Option<&str>| {
            let missing = || HostAccessError::Missing(format!("{s}.{m} of the expected type"));
            let found = btf.member(strukt(s)?, m).ok_or_else(missing)?;
            let typed = match to {
                Some(t) => btf.is_pointer_to_struct(found.ty, t),
                None => btf.int_size(found.ty) == Some(8),
            };
            if !typed {
                return Err(missing());
            }
            found.byte_offset().ok_or_else(missing)
        };
        let self_css = btf.member(strukt("cgroup")?, "self").and_then(|m| m.byte_offset());
        let self_css = self_css.ok_or_else(|| HostAccessError::Missing("cgroup.self".into()))?;
        Ok(Layout {
            task_cgroups: member("task_struct", "cgroups", Some("css_set"))?,
            cset_dfl_cgrp: member("css_set", "dfl_cgrp", Some("cgroup"))?,
            cgroup_kn: member("cgroup", "kn", Some("kernfs_node"))?,
            cgroup_parent: self_css + member("cgroup_subsys_state", "parent", Some("cgroup_subsys_state"))?,
            css_cgroup: member("cgroup_subsys_state", "cgroup", Some("cgroup"))?,
            kn_id: member("kernfs_node", "id", None)?,
        })
    }
}

/// One LSM hook: its `bpf_lsm_*` function and which arguments the program reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hook {
    func: TypeId,
    /// The argument holding the target task.
    target: usize,
    /// The argument that says whether there is anything to decide ...
    gate: usize,
    /// ... when one of these bits is set in it.
    gate_mask: u32,
}

impl Hook {
    fn from_btf(btf: &Btf, name: &str, gate_param: &str, gate_mask: u32) -> Result<Hook, HostAccessError> {
        let func_name = format!("bpf_lsm_{name}");
        let func = btf.find(Kind::Func, &func_name).ok_or_else(|| {
            HostAccessError::Missing(format!("{func_name} (is the kernel built with CONFIG_BPF_LSM?)"))
        })?;
        let params = btf.params(func).unwrap_or_default();
        let target = params.iter().position(|p| btf.is_pointer_to_struct(p.ty, "task_struct"));
        let gate = params.iter().position(|p| p.name == gate_param && btf.int_size(p.ty) == Some(4));
        match (target, gate) {
            (Some(target), Some(gate)) => Ok(Hook { func, target, gate, gate_mask }),
            _ => Err(HostAccessError::Missing(format!(
                "{func_name} with a struct task_struct * and a 4-byte {gate_param} parameter"
            ))),
        }
    }
}

/// Where a decision ends.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    /// Nothing to decide: the target is outside the box, or the access is one left open.
    outside: Label,
    /// The target is in the box, and so is the current task (or it is the launcher's).
    allowed: Label,
    /// The target is in the box and the current task is not.
    denied: Label,
}

/// Emits the decision for a hook whose context arguments are `ctx[target]` (a task) and
/// `ctx[gate]`; uses `r6` (the context) and `r8` (the box's cgroup id).
fn decide(a: &mut Asm, layout: &Layout, hook: &Hook, box_id: u64, launcher_tgid: u32) -> Verdict {
    let v = Verdict { outside: a.label(), allowed: a.label(), denied: a.label() };
    a.mov(R6, R1);
    a.load64(R2, R6, 8 * hook.gate as u32);
    a.and32_imm(R2, hook.gate_mask);
    a.jeq_imm(R2, 0, v.outside);
    a.ld_imm64(R8, box_id);
    a.load64(R1, R6, 8 * hook.target as u32);
    let target_in = a.label();
    in_box(a, layout, target_in, v.outside);
    a.bind(target_in);
    a.call(helper::GET_CURRENT_PID_TGID);
    a.rsh_imm(R0, 32);
    a.jeq_imm(R0, launcher_tgid as i32, v.allowed);
    a.call(helper::GET_CURRENT_TASK_BTF);
    a.mov(R1, R0);
    in_box(a, layout, v.allowed, v.denied);
    v
}

/// Emits "is the task in `r1` in the box (id in `r8`)?", jumping to `yes` or `no`; clobbers
/// `r1` and `r2`. Loads through a `NULL` pointer read 0 (the kernel's exception table covers
/// loads through BTF pointers), which matches no cgroup id.
fn in_box(a: &mut Asm, layout: &Layout, yes: Label, no: Label) {
    a.load64(R1, R1, layout.task_cgroups);
    a.load64(R1, R1, layout.cset_dfl_cgrp);
    for _ in 0..CGROUP_LEVELS {
        a.load64(R2, R1, layout.cgroup_kn);
        a.load64(R2, R2, layout.kn_id);
        a.jeq(R2, R8, yes);
        a.load64(R1, R1, layout.cgroup_parent);
        a.jeq_imm(R1, 0, no);
        a.load64(R1, R1, layout.css_cgroup);
    }
    a.ja(no);
}

/// The LSM program for `hook`: 0 (allow) or `-EPERM`.
fn lsm_program(layout: &Layout, hook: &Hook, box_id: u64, launcher_tgid: u32) -> Result<Vec<Insn>, AsmError> {
    let mut a = Asm::new();
    let v = decide(&mut a, layout, hook, box_id, launcher_tgid);
    a.bind(v.denied);
    a.mov_imm(R0, -libc::EPERM);
    a.exit();
    a.bind(v.outside);
    a.bind(v.allowed);
    a.mov_imm(R0, 0);
    a.exit();
    a.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::ebpf::{R10, testing};
    use std::process::{Command, Stdio};

    fn layout() -> (Btf, Layout) {
        let btf = Btf::kernel().unwrap();
        let layout = Layout::from_btf(&btf).unwrap();
        (btf, layout)
    }

    #[test]
    fn the_kernel_has_what_the_programs_read() {
        let (btf, layout) = layout();
        assert!(layout.task_cgroups > 0 && layout.kn_id > 0, "{layout:?}");
        let ptrace = Hook::from_btf(&btf, "ptrace_access_check", "mode", PTRACE_MODE_ATTACH).unwrap();
        assert_eq!((ptrace.target, ptrace.gate), (0, 1));
        let kill = Hook::from_btf(&btf, "task_kill", "sig", u32::MAX).unwrap();
        assert_eq!((kill.target, kill.gate), (0, 2));
        assert!(Hook::from_btf(&btf, "no_such_hook", "sig", 1).is_err());
    }

    #[test]
    fn a_program_returns_0_or_eperm_and_fits_the_verifier_easily() {
        let (btf, layout) = layout();
        let hook = Hook::from_btf(&btf, "task_kill", "sig", u32::MAX).unwrap();
        let p = lsm_program(&layout, &hook, 4242, 1).unwrap();
        assert!(p.len() < 300, "{} instructions", p.len());
        let exits: Vec<usize> = (0..p.len()).filter(|&i| p[i].code() == 0x95).collect();
        assert_eq!(exits.len(), 2);
        assert!(exits.iter().all(|&i| p[i - 1].code() == 0xb7), "r0 is set right before each exit");
        let returns: Vec<i32> = exits.iter().map(|&i| p[i - 1].imm()).collect();
        assert_eq!(returns, [-libc::EPERM, 0]);
    }

    #[test]
    fn bad_launchers_and_cgroups_are_refused_before_anything_is_loaded() {
        assert!(matches!(HostAccessGuard::protect(Path::new("/"), 0), Err(HostAccessError::Launcher(0))));
        let e = HostAccessGuard::protect(Path::new("/tmp"), std::process::id()).unwrap_err();
        assert!(e.to_string().contains("not a cgroup v2 directory"), "{e}");
    }

    #[test]
    fn a_refusal_without_a_log_says_so() {
        let e = HostAccessError::Load {
            hook: "task_kill",
            errno: std::io::Error::from_raw_os_error(libc::EPERM),
            log: String::new(),
            capable: true,
        };
        assert!(e.to_string().contains("refused before verification"), "{e}");
        assert!(e.to_string().contains("this kernel does not allow BPF LSM programs"), "{e}");
        let e = HostAccessError::Load {
            hook: "task_kill",
            errno: std::io::Error::from_raw_os_error(libc::EACCES),
            log: "0: (b7) r0 = 0\nR0 !read_ok".into(),
            capable: true,
        };
        assert!(e.to_string().ends_with("R0 !read_ok"), "{e}");
    }

    fn cgroup2_root() -> PathBuf {
        let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        info.lines()
            .find_map(|l| {
                let (pre, post) = l.split_once(" - ")?;
                if post.starts_with("cgroup2 ") { pre.split(' ').nth(4).map(PathBuf::from) } else { None }
            })
            .expect("a cgroup v2 hierarchy is mounted")
    }

    /// Runs `script` with `sh -c`, first moving the shell into `cgroup` if given.
    fn sh(cgroup: Option<&Path>, script: &str) -> Command {
        let join = cgroup.map(|c| format!("echo 0 > {}/cgroup.procs && ", c.display())).unwrap_or_default();
        let mut c = Command::new("/bin/sh");
        c.args(["-c", &format!("{join}{script}")]).stdin(Stdio::null());
        c
    }

    /// The decision of the `task_kill` program, run by the kernel on the `signal_generate`
    /// tracepoint (the BPF LSM may be unusable where this runs; a BTF tracepoint is not) and
    /// counted in a map: checks the BTF pointer walk, the cgroup id (inode number = kernfs
    /// id), the walk up from a child cgroup and the launcher's exemption, with real processes.
    #[test]
    fn the_decision_runs_in_the_kernel() {
        assert!(rustix::process::geteuid().is_root(), "this test loads BPF programs: it needs root");
        let (btf, layout) = layout();
        let typedef = btf.find(Kind::Typedef, "btf_trace_signal_generate").unwrap();
        let params = btf.params(btf.pointee(typedef).unwrap()).unwrap();
        // (void *data, int sig, struct kernel_siginfo *info, struct task_struct *task, ...): the
        // program's context starts at `sig`. (A prototype behind a typedef has no names.)
        assert_eq!(btf.int_size(params[1].ty), Some(4), "signal_generate's sig");
        assert!(btf.is_pointer_to_struct(params[3].ty, "task_struct"), "signal_generate's task");
        let hook = Hook { func: typedef, target: 2, gate: 0, gate_mask: u32::MAX };

        let dir = cgroup2_root().join(format!("hivebox-hostaccess-unit-{}", std::process::id()));
        let below = dir.join("below");
        std::fs::create_dir_all(&below).unwrap();
        let box_id = cgroup_id(&dir).unwrap();
        let counts = testing::counters(2).unwrap();
        let mut a = Asm::new();
        let v = decide(&mut a, &layout, &hook, box_id, std::process::id());
        let count = a.label();
        a.bind(v.allowed);
        a.store32_imm(R10, -4, 0);
        a.ja(count);
        a.bind(v.denied);
        a.store32_imm(R10, -4, 1);
        a.bind(count);
        use std::os::fd::AsRawFd;
        a.ld_map_fd(R1, counts.as_raw_fd());
        a.mov(R2, R10);
        a.add_imm(R2, -4);
        a.call(helper::MAP_LOOKUP_ELEM);
        a.jeq_imm(R0, 0, v.outside);
        a.mov_imm(R1, 1);
        a.atomic_add64(R0, R1, 0);
        a.bind(v.outside);
        a.mov_imm(R0, 0);
        a.exit();
        let link = testing::attach_tracepoint(&a.finish().unwrap(), typedef.0).expect("a BTF tracepoint program");

        let mut boxed = sh(Some(&dir), "exec sleep 30").spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let pid = boxed.id();
        let read = |i| testing::counter(&counts, i).unwrap();
        let signal = |cg: Option<&Path>, sig: &str| {
            let status = sh(cg, &format!("kill -{sig} {pid}")).status().unwrap();
            assert!(status.success(), "kill -{sig} {pid}");
        };
        let seen = |what: &str, allowed: u64, denied: u64| assert_eq!((read(0), read(1)), (allowed, denied), "{what}");
        seen("before any signal", 0, 0);
        signal(None, "CONT");
        seen("a host process signals the boxed one", 0, 1);
        signal(None, "0");
        seen("signal 0 is not decided", 0, 1);
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid as i32).unwrap(),
            rustix::process::Signal::CONT,
        )
        .unwrap();
        seen("the launcher signals it", 1, 1);
        signal(Some(&dir), "CONT");
        seen("a process of the box signals it", 2, 1);
        signal(Some(&below), "CONT");
        seen("a process of a cgroup below the box's signals it", 3, 1);
        drop(link);
        let _ = boxed.kill();
        let _ = boxed.wait();
        for d in [&below, &dir] {
            for _ in 0..50 {
                if std::fs::remove_dir(d).is_ok() {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
