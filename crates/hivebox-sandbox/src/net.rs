//! The box's network (`box.toml`: `network`): every box has its own network namespace with
//! `lo` up; `full` connects it to the outside through `pasta` (Debian package `passt`),
//! without mapping the host's loopback into the box (`docs/sandbox.md`, "Network").

use crate::launch::SandboxError;
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Command, Stdio};

/// The box's address on the `pasta` link (IPv4, /24) and its gateway.
pub const BOX_IPV4: (&str, &str) = ("10.213.77.2", "10.213.77.1");
/// The box's address on the `pasta` link (IPv6, /64) and its gateway.
pub const BOX_IPV6: (&str, &str) = ("fd68:6976::2", "fd68:6976::1");

/// What the box may reach over the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NetworkMode {
    /// Only the box's own loopback (the default).
    #[default]
    None,
    /// The outside through `pasta`; the host's loopback stays unreachable.
    Full,
    /// The outside through `pasta`, each new destination decided (`crate::netdecide`): the
    /// box's rules, or a person through `hivebox decide`.
    Decide,
}

impl NetworkMode {
    /// Its `box.toml` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::None => "none",
            NetworkMode::Full => "full",
            NetworkMode::Decide => "decide",
        }
    }

    /// Refuses the modes that cannot be enforced here (every mode can, on Linux 5.19 or later
    /// with cgroup v2; what the kernel refuses is reported when the box starts).
    pub fn check(self) -> Result<(), SandboxError> {
        Ok(())
    }

    /// What it enforces, for the `Enforced` record.
    pub fn describe(self) -> String {
        match self {
            NetworkMode::None => "none: a private network namespace with only lo up (no route out; host \
                                  loopback and abstract sockets unreachable both ways)"
                .into(),
            NetworkMode::Full => format!(
                "full: a private network namespace connected by pasta ({}/24, {}/64; host loopback not \
                 mapped, no port forwarding either way; abstract sockets split)",
                BOX_IPV4.0, BOX_IPV6.0
            ),
            NetworkMode::Decide => format!(
                "decide: a private network namespace connected by pasta ({}/24, {}/64; host loopback not mapped, no \
                 port forwarding); every connect, addressed sendto, sendmsg and sendmmsg of a TCP or UDP socket is \
                 stopped by seccomp user notification and decided (the box's own loopback is always allowed); \
                 allowed ones are made by the launcher on its copy of the socket with the checked copy of the \
                 address; other IP protocols cannot be opened; kernel backstop: eBPF cgroup hooks (connect4, \
                 connect6, sendmsg4, sendmsg6) refuse every connect and addressed send on the box's sockets by any \
                 process but the launcher",
                BOX_IPV4.0, BOX_IPV6.0
            ),
        }
    }
}

/// A running `pasta` serving one box's namespace; stopped when dropped.
#[derive(Debug)]
pub struct Pasta {
    pidfd: std::os::fd::OwnedFd,
}

impl Pasta {
    /// Connects the network namespace of process `pid` (the box's keeper). Returns once
    /// `pasta` has configured the namespace and gone to the background; its pid is recorded
    /// in `pid_file`.
    pub fn start(pid: u32, pid_file: &Path) -> Result<Pasta, SandboxError> {
        let os = |what: &'static str| move |source| SandboxError::Os { what, source };
        // pasta drops its capabilities before opening the namespace, after which the kernel no
        // longer lets it open /proc/<pid>/ns/net; it gets the namespace as its descriptor 3.
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).map_err(os("open the box's network namespace"))?;
        let _ = std::fs::remove_file(pid_file);
        let mut cmd = Command::new("pasta");
        cmd.args(["--quiet", "--runas", "0:0", "--config-net", "--no-map-gw"])
            .args(["-t", "none", "-u", "none", "-T", "none", "-U", "none"])
            .args(["-a", BOX_IPV4.0, "-n", "24", "-g", BOX_IPV4.1, "-a", BOX_IPV6.0, "-g", BOX_IPV6.1])
            .arg("--pid")
            .arg(pid_file)
            .args(["--netns", "/proc/self/fd/3"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        crate::sys::net::pass_as_fd3(&mut cmd, ns.as_fd());
        let out = cmd.output().map_err(|e| {
            let hint = if e.kind() == std::io::ErrorKind::NotFound { " (install the passt package)" } else { "" };
            SandboxError::Invalid(format!("cannot run pasta{hint}: {e}"))
        })?;
        drop(ns);
        let text = std::fs::read_to_string(pid_file).unwrap_or_default();
        let daemon = text.trim().parse::<i32>().ok().and_then(rustix::process::Pid::from_raw);
        let (true, Some(daemon)) = (out.status.success(), daemon) else {
            let why: Vec<_> = String::from_utf8_lossy(&out.stderr)
                .lines()
                .filter(|l| !l.starts_with("Failed to send") && !l.trim().is_empty())
                .map(str::to_owned)
                .collect();
            return Err(SandboxError::Invalid(format!("pasta failed ({}): {}", out.status, why.join("; "))));
        };
        let pidfd = rustix::process::pidfd_open(daemon, rustix::process::PidfdFlags::empty())
            .map_err(|e| SandboxError::Os { what: "pidfd_open pasta", source: e.into() })?;
        Ok(Pasta { pidfd })
    }
}

impl Drop for Pasta {
    /// Stops pasta and waits (up to two seconds) until it is gone, so that the box's cgroup is
    /// empty when the launcher returns.
    fn drop(&mut self) {
        use rustix::event::{PollFd, PollFlags, poll};
        if rustix::process::pidfd_send_signal(&self.pidfd, rustix::process::Signal::TERM).is_err() {
            return;
        }
        let mut fds = [PollFd::new(&self.pidfd, PollFlags::IN)];
        let limit = rustix::event::Timespec { tv_sec: 2, tv_nsec: 0 };
        let _ = poll(&mut fds, Some(&limit));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_is_no_network() {
        assert_eq!(NetworkMode::default(), NetworkMode::None);
        assert_eq!(NetworkMode::Decide.as_str(), "decide");
    }
}
