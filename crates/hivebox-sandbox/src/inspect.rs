//! `hivebox box inspect`: what was enforced for a box's processes, as the launcher recorded it
//! (`<box>/enforced.json`, written when the box's command was started), with live facts read
//! from the kernel: the processes in the box's cgroup and, for each, which namespaces it does
//! not share with the inspecting (host) process. Nothing is claimed that was not recorded
//! or seen; what the sandbox does not do yet is listed as such.

use crate::Enforced;
use std::path::Path;

/// The mechanisms a box may lack: listed as not enforced unless the record names them.
pub const NOT_ENFORCED: [(&str, &str); 2] = [
    (
        "D-Bus decisions",
        "not enforced: the bus proxy applies the box's fixed rules (names, interfaces, members, object paths), \
         never a method's arguments, and asks no one",
    ),
    (
        crate::hostaccess::MECHANISM,
        "not enforced: host processes running as root can trace, read and write the memory of, take descriptors \
         from and signal boxed processes (deny-host-access = true in box.toml refuses them, where the kernel \
         allows BPF LSM programs)",
    ),
];

/// The namespaces compared.
const NAMESPACES: [&str; 7] = ["mnt", "pid", "ipc", "uts", "net", "user", "cgroup"];

/// One live process of the box.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessFacts {
    /// Its host pid.
    pub pid: u32,
    /// Its command name (`/proc/PID/comm`).
    pub command: String,
    /// The namespaces it does not share with the host (of [`NAMESPACES`]).
    pub own_namespaces: Vec<String>,
    /// The namespaces it shares with the host.
    pub host_namespaces: Vec<String>,
}

/// What `box inspect` reports.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Inspection {
    /// The box.
    pub name: String,
    /// What the launcher recorded as enforced for the last command it started in the box
    /// (`None`: nothing recorded, so nothing is claimed).
    pub enforced: Option<Enforced>,
    /// Why `enforced.json` could not be read, when it exists but is damaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enforced_error: Option<String>,
    /// Mechanisms not enforced.
    pub not_enforced: Vec<(String, String)>,
    /// The processes in the box's cgroup now.
    pub processes: Vec<ProcessFacts>,
}

fn namespace_id(pid: &str, ns: &str) -> Option<String> {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok().map(|l| l.to_string_lossy().into_owned())
}

/// The pids in `cgroup` and the cgroups below it.
fn cgroup_pids(cgroup: &Path, out: &mut Vec<u32>) {
    if let Ok(text) = std::fs::read_to_string(cgroup.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
    }
    if let Ok(entries) = std::fs::read_dir(cgroup) {
        for e in entries.flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                cgroup_pids(&e.path(), out);
            }
        }
    }
}

/// Inspects box `name` (directory `box_dir`, cgroup `cgroup`).
pub fn inspect(name: &str, box_dir: &Path, cgroup: Option<&Path>) -> Inspection {
    let (enforced, enforced_error) = match std::fs::read_to_string(box_dir.join("enforced.json")) {
        Ok(text) => match serde_json::from_str::<Enforced>(&text) {
            Ok(e) => (Some(e), None),
            Err(e) => (None, Some(format!("{}: {e}", box_dir.join("enforced.json").display()))),
        },
        Err(_) => (None, None),
    };
    let mut pids = Vec::new();
    if let Some(cg) = cgroup {
        cgroup_pids(cg, &mut pids);
    }
    pids.sort_unstable();
    pids.dedup();
    let processes = pids
        .into_iter()
        .map(|pid| {
            let p = pid.to_string();
            let (mut own, mut host) = (Vec::new(), Vec::new());
            for ns in NAMESPACES {
                match (namespace_id(&p, ns), namespace_id("self", ns)) {
                    (Some(a), Some(b)) if a == b => host.push(ns.to_owned()),
                    (Some(_), Some(_)) => own.push(ns.to_owned()),
                    _ => {}
                }
            }
            let command = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default().trim().to_owned();
            ProcessFacts { pid, command, own_namespaces: own, host_namespaces: host }
        })
        .collect();
    let recorded = |m: &str| enforced.as_ref().is_some_and(|e| e.mechanisms.iter().any(|(name, _)| name == m));
    let mut not_enforced: Vec<(String, String)> =
        NOT_ENFORCED.iter().filter(|(m, _)| !recorded(m)).map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect();
    if enforced.is_none() {
        not_enforced.insert(
            0,
            (
                "sandbox".to_owned(),
                "nothing recorded: no command was started in this box by the sandboxing launcher (or its \
                 enforced.json is gone), so no isolation beyond the registry is claimed"
                    .to_owned(),
            ),
        );
    }
    Inspection { name: name.to_owned(), enforced, enforced_error, not_enforced, processes }
}

/// The inspection as text.
pub fn render_text(i: &Inspection) -> String {
    let mut out = format!("Box {}\n\nEnforced (recorded when its command was started):\n", i.name);
    match &i.enforced {
        Some(e) if !e.mechanisms.is_empty() => {
            for (m, what) in &e.mechanisms {
                out.push_str(&format!("  {m}: {what}\n"));
            }
        }
        _ => out.push_str("  nothing\n"),
    }
    if let Some(e) = &i.enforced_error {
        out.push_str(&format!("  (cannot read the record: {e})\n"));
    }
    out.push_str("\nNot enforced:\n");
    for (m, what) in &i.not_enforced {
        out.push_str(&format!("  {m}: {what}\n"));
    }
    out.push_str(&format!("\nProcesses ({}):\n", i.processes.len()));
    for p in &i.processes {
        let own = if p.own_namespaces.is_empty() { "none".to_owned() } else { p.own_namespaces.join(", ") };
        out.push_str(&format!(
            "  {} {}: own namespaces: {own}; shared with the host: {}\n",
            p.pid,
            p.command,
            p.host_namespaces.join(", ")
        ));
        if p.host_namespaces.iter().any(|n| n == "mnt") {
            out.push_str("    warning: this process shares the host's mount namespace: its files are NOT isolated\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_recorded_claims_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let i = inspect("b", dir.path(), None);
        assert_eq!(i.enforced, None);
        assert_eq!(i.not_enforced[0].0, "sandbox");
        let text = render_text(&i);
        assert!(text.contains("Enforced (recorded when its command was started):\n  nothing\n"), "{text}");
        for (what, _) in NOT_ENFORCED {
            assert!(text.contains(&format!("{what}: not enforced")), "{text}");
        }
    }

    #[test]
    fn a_recorded_mechanism_is_not_listed_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let missing = |i: &Inspection| i.not_enforced.iter().any(|(m, _)| m == crate::hostaccess::MECHANISM);
        let record = |mechanisms: Vec<(String, String)>| {
            let json = serde_json::to_string(&Enforced { mechanisms }).unwrap();
            std::fs::write(dir.path().join("enforced.json"), json).unwrap();
        };
        record(vec![("namespaces".into(), "new".into())]);
        assert!(missing(&inspect("b", dir.path(), None)));
        record(vec![(crate::hostaccess::MECHANISM.into(), "BPF LSM".into())]);
        let i = inspect("b", dir.path(), None);
        assert!(!missing(&i), "{:?}", i.not_enforced);
        assert!(render_text(&i).contains("protection from the host: BPF LSM"));
    }

    #[test]
    fn this_process_shares_every_namespace_with_itself() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cgroup.procs"), format!("{}\n", std::process::id())).unwrap();
        let i = inspect("b", dir.path(), Some(dir.path()));
        assert_eq!(i.processes.len(), 1);
        assert!(i.processes[0].own_namespaces.is_empty());
        assert!(render_text(&i).contains("NOT isolated"));
    }
}
