//! Files: a boxed program's writes land in the box's shadow store and the host is unchanged,
//! whatever path it takes; hivebox's own state is invisible to it.

use hivebox_sandbox::BoxSpec;
use hivebox_sandbox::fs::{ChangeKind, diff, discard};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A fresh home with one box: `(home, box_dir)`. Homes live under `/var/tmp` (the host root
/// filesystem, as `/var/lib/hivebox` does), so the box's upper dir is inside the lower it
/// shadows, as in production.
fn new_box(name: &str) -> (tempfile::TempDir, PathBuf) {
    assert!(rustix::process::geteuid().is_root(), "the escape tests need root (CI runs them as root)");
    let home = tempfile::Builder::new().prefix("hivebox-escape-").tempdir_in("/var/tmp").unwrap();
    let dir = home.path().join("boxes").join(name);
    std::fs::create_dir_all(&dir).unwrap();
    (home, dir)
}

/// Runs `script` with `/bin/sh -c` in the box (confined as `hivebox run` does); returns its
/// exit code and its output (stdout and stderr).
fn sh(home: &Path, dir: &Path, script: &str) -> (i32, String) {
    let mut spec = BoxSpec::new("escape", dir, vec!["/bin/sh".into(), "-c".into(), script.into()]);
    spec.hide = vec![home.to_owned()];
    let (status, out) = crate::common::run_to_end(spec);
    (status.code().unwrap_or(-1), out)
}

/// A host path for this test that does not exist yet.
fn host_target(tag: &str) -> PathBuf {
    let p = Path::new("/var/tmp").join(format!("hivebox-escape-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_file(&p);
    p
}

#[test]
fn a_plain_write_lands_in_the_box_and_discard_removes_it() {
    let (home, dir) = new_box("plain");
    let target = host_target("plain");
    let (code, out) = sh(home.path(), &dir, &format!("echo boxed > {0} && cat {0}", target.display()));
    assert_eq!((code, out.as_str()), (0, "boxed\n"));
    assert!(!target.exists(), "the host sees the box's file");
    let changes = diff(&dir).unwrap();
    let c = changes.iter().find(|c| c.path == target).unwrap_or_else(|| panic!("not in the diff: {changes:?}"));
    assert_eq!((c.kind, c.new_size), (ChangeKind::Added, Some(6)));
    // A second process of the box sees it (same upper), until the changes are discarded.
    let (code, out) = sh(home.path(), &dir, &format!("cat {}", target.display()));
    assert_eq!((code, out.as_str()), (0, "boxed\n"));
    discard(&dir).unwrap();
    assert!(diff(&dir).unwrap().is_empty());
    let (code, _) = sh(home.path(), &dir, &format!("test -e {}", target.display()));
    assert_eq!(code, 1, "the file survived discard");
}

#[test]
fn deleting_and_modifying_a_host_file_stays_in_the_box() {
    let (home, dir) = new_box("delete");
    let victim = host_target("victim");
    std::fs::write(&victim, "host\n").unwrap();
    let (code, out) = sh(
        home.path(),
        &dir,
        &format!(
            "echo more >> {0} && cat {0} && rm /var/tmp/../tmp/$(basename {0}) && test ! -e {0} && echo gone",
            victim.display()
        ),
    );
    assert_eq!((code, out.as_str()), (0, "host\nmore\ngone\n"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "host\n", "the host file changed");
    let changes = diff(&dir).unwrap();
    assert!(changes.iter().any(|c| c.path == victim && c.kind == ChangeKind::Deleted), "{changes:?}");
    std::fs::remove_file(&victim).unwrap();
}

#[test]
fn dot_dot_symlinks_hard_links_and_proc_root_do_not_reach_the_host() {
    let (home, dir) = new_box("paths");
    let t = |tag| host_target(tag);
    let (dotdot, link, hard, procroot) = (t("dotdot"), t("symlink"), t("hardlink"), t("procroot"));
    let existing = t("existing");
    std::fs::write(&existing, "host\n").unwrap();
    let script = format!(
        "set -e
         cd /usr/bin && echo x > ../../../../../..{dotdot}
         ln -s {link} /tmp/link-out && echo x > /tmp/link-out
         ln -s / /tmp/root-link && echo x > /tmp/root-link{hard}.via
         ln {existing} /tmp/hard && echo boxed > /tmp/hard
         echo x > /proc/self/root{procroot}
         {{ echo x > /proc/1/root{procroot}.init; }} 2>/dev/null || true
         echo done",
        dotdot = dotdot.display(),
        link = link.display(),
        hard = hard.display(),
        existing = existing.display(),
        procroot = procroot.display(),
    );
    let (code, out) = sh(home.path(), &dir, &script);
    // The writes themselves work, in the box (through init's root: refused, init is outside
    // the Landlock domain).
    assert_eq!((code, out.as_str()), (0, "done\n"));
    for p in [&dotdot, &link, &procroot] {
        assert!(!p.exists(), "{} reached the host", p.display());
    }
    assert!(!PathBuf::from(format!("{}.via", hard.display())).exists());
    assert!(!PathBuf::from(format!("{}.init", procroot.display())).exists());
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "host\n", "the hard link wrote through");
    std::fs::remove_file(&existing).unwrap();
}

#[test]
fn host_processes_are_invisible() {
    let (home, dir) = new_box("pids");
    // This test process is a host process: its pid does not exist in the box.
    let me = std::process::id();
    let target = host_target("cwd");
    let script = format!(
        "test ! -e /proc/{me} || {{ echo host pid visible; exit 1; }}
         {{ echo x > /proc/{me}/cwd/{name}; }} 2>/dev/null && {{ echo wrote; exit 1; }}
         echo $$; ls /proc | grep -c '^[0-9]'",
        name = target.file_name().unwrap().to_string_lossy()
    );
    let (code, out) = sh(home.path(), &dir, &script);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    // sh is the box's command: PID 2 (its init is PID 1).
    assert_eq!(lines.next(), Some("2"), "{out}");
    let visible: u32 = lines.next().unwrap().trim().parse().unwrap();
    assert!(visible <= 4, "the box sees {visible} processes:\n{out}");
    assert!(!target.exists());
}

#[test]
fn mounting_is_refused_and_the_host_is_unaffected() {
    let (home, dir) = new_box("mounts");
    let target = host_target("bindmount");
    std::fs::create_dir_all(&target).unwrap();
    let script = format!(
        "mount --bind /tmp {t} 2>/dev/null && {{ echo mounted; exit 1; }}
         mount -t tmpfs none {t} 2>/dev/null && {{ echo mounted tmpfs; exit 1; }}
         unshare -m true 2>/dev/null && {{ echo new mount ns; exit 1; }}
         echo refused",
        t = target.display()
    );
    let (code, out) = sh(home.path(), &dir, &script);
    assert_eq!((code, out.as_str()), (0, "refused\n"));
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(!info.contains(&target.display().to_string()), "a mount appeared on the host");
    std::fs::remove_dir(&target).unwrap();
}

#[test]
fn the_box_has_no_capability_left() {
    let (home, dir) = new_box("caps");
    let (code, out) = sh(home.path(), &dir, "grep -E '^Cap(Inh|Prm|Eff|Bnd|Amb)' /proc/self/status");
    assert_eq!(code, 0, "{out}");
    for line in out.lines() {
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    // open_by_handle_at needs CAP_DAC_READ_SEARCH, which is not in the bounding set: no exec
    // can bring it back.
    assert_eq!(out.lines().count(), 5, "{out}");
}

#[test]
fn open_by_handle_at_is_refused() {
    // The box's files are on overlayfs, which gives no handles; an attacker would forge one for
    // the host's filesystem (inode 2, the root of ext4, generation 0) and hand it to
    // open_by_handle_at. Without CAP_DAC_READ_SEARCH (and past the seccomp list) that is EPERM.
    // The same forged handle opens the host root as root outside a box (checked by hand on
    // these machines), so the refusal is the sandbox's. python3 makes the raw calls; it must be
    // there (CI has it): no silent skip.
    let (home, dir) = new_box("handles");
    let script = "python3 - <<'EOF'
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
buf = ctypes.create_string_buffer(struct.pack('Ii', 8, 1) + struct.pack('II', 2, 0) + bytes(120))
fd = os.open('/', os.O_RDONLY)
r = libc.open_by_handle_at(fd, buf, os.O_RDONLY)
print('open_by_handle_at', r, ctypes.get_errno())
EOF";
    let (code, out) = sh(home.path(), &dir, script);
    assert_eq!((code, out.as_str()), (0, "open_by_handle_at -1 1\n"), "not refused with EPERM");
}

#[test]
fn hivebox_state_is_hidden() {
    let (home, dir) = new_box("state");
    let other = home.path().join("boxes/other");
    std::fs::create_dir_all(other.join("fs/root/upper")).unwrap();
    std::fs::write(other.join("registry.hiv"), "other box's hive").unwrap();
    std::fs::create_dir_all(home.path().join("hives")).unwrap();
    std::fs::write(home.path().join("hives/SYSTEM.hiv"), "the daemon's hive").unwrap();
    let h = home.path().display();
    let script = format!(
        "ls -A {h} | wc -l
         cat {h}/hives/SYSTEM.hiv 2>/dev/null && exit 1
         cat {h}/boxes/other/registry.hiv 2>/dev/null && exit 1
         ls {h}/boxes/state/fs 2>/dev/null && exit 1
         touch {h}/x 2>/dev/null && exit 1
         echo hidden"
    );
    let (code, out) = sh(home.path(), &dir, &script);
    assert_eq!((code, out.as_str()), (0, "0\nhidden\n"));
}

#[test]
fn two_processes_in_one_box_share_files() {
    let (home, dir) = new_box("share");
    let script = "echo hello > /tmp/shared-$$ && (cat /tmp/shared-$$ & wait) && rm /tmp/shared-$$";
    let (code, out) = sh(home.path(), &dir, script);
    assert_eq!((code, out.as_str()), (0, "hello\n"));
}

#[test]
fn the_exit_code_and_setup_errors_come_back() {
    let (home, dir) = new_box("codes");
    assert_eq!(sh(home.path(), &dir, "exit 7").0, 7);
    assert_eq!(sh(home.path(), &dir, "kill -TERM $$").0, 143);
    let mut spec = BoxSpec::new("codes", &dir, vec!["/no/such/program".into()]);
    spec.hide = vec![home.path().to_owned()];
    match hivebox_sandbox::spawn_boxed(&spec) {
        Err(hivebox_sandbox::SandboxError::Exec { source, status, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            assert_eq!(status.code(), Some(127));
        }
        other => panic!("{other:?}"),
    }
    let enforced = std::fs::read_to_string(dir.join("enforced.json")).unwrap();
    assert!(enforced.contains("overlayfs") && enforced.contains("seccomp"), "{enforced}");
}

#[test]
fn open_read_only_and_hidden_paths_do_what_they_say() {
    let (home, dir) = new_box("settings");
    let base = tempfile::Builder::new().prefix("hivebox-escape-settings-").tempdir_in("/var/tmp").unwrap();
    let (open, ro, hidden) = (base.path().join("open"), base.path().join("ro"), base.path().join("hidden"));
    for d in [&open, &ro, &hidden] {
        std::fs::create_dir(d).unwrap();
        std::fs::write(d.join("f"), "host\n").unwrap();
    }
    let mut spec = BoxSpec::new(
        "settings",
        &dir,
        vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "echo boxed > {o}/f && {{ echo boxed > {r}/f; }} 2>/dev/null; cat {r}/f; ls -A {h} | wc -l",
                o = open.display(),
                r = ro.display(),
                h = hidden.display()
            )
            .into(),
        ],
    );
    spec.hide = vec![home.path().to_owned()];
    spec.paths.open = vec![open.clone()];
    spec.paths.read_only = vec![ro.clone()];
    spec.paths.hidden = vec![hidden.clone()];
    let (mut reader, writer) = std::io::pipe().unwrap();
    spec.output = Some(Arc::new(writer.into()));
    let child = hivebox_sandbox::spawn_boxed(&spec).expect("the box starts");
    drop(spec);
    let mut out = String::new();
    reader.read_to_string(&mut out).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0), "{out}");
    assert_eq!(out, "host\n0\n");
    assert_eq!(std::fs::read_to_string(open.join("f")).unwrap(), "boxed\n", "the open path is written through");
    assert_eq!(std::fs::read_to_string(ro.join("f")).unwrap(), "host\n");
    assert!(diff(&dir).unwrap().iter().all(|c| !c.path.starts_with(base.path())), "settings paths are not shadowed");

    let mut bad = BoxSpec::new("settings", &dir, vec!["/bin/true".into()]);
    bad.paths.hidden = vec!["/var/../etc".into()];
    assert!(matches!(hivebox_sandbox::spawn_boxed(&bad), Err(hivebox_sandbox::SandboxError::Invalid(_))));
}
