//! A box's network rules (`box.toml`, table `[net]`), for `network = "decide"`: which new
//! destinations the box may reach. The first rule matching a connection decides (`allow`,
//! `deny` or `ask`); none matching, `unmatched` does. An `ask` nobody answers within
//! `ask-timeout` seconds gets `ask-default` (`docs/sandbox.md`, "Network decisions").
//!
//! ```toml
//! network = "decide"
//! [net]
//! unmatched = "ask"
//! ask-timeout = 30
//! ask-default = "deny"
//! [[net.rule]]
//! action = "allow"
//! to = "192.0.2.0/24"
//! port = "443"
//! proto = "tcp"
//! exe = "/usr/bin/curl"
//! ```

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// What a rule (or the absence of one) says about a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Action {
    /// Let it through.
    Allow,
    /// Refuse it (`EACCES`).
    Deny,
    /// Ask a decider (`hivebox decide`).
    Ask,
}

impl Action {
    /// Its `box.toml` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Ask => "ask",
        }
    }
}

/// The transport protocol of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl Proto {
    /// `tcp` or `udp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }

    /// Parses `tcp` / `udp`.
    pub fn parse(s: &str) -> Option<Proto> {
        match s {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            _ => None,
        }
    }
}

/// A set of addresses: one, a CIDR block, or any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrMatch {
    /// Every address.
    Any,
    /// The addresses sharing the first `prefix` bits of `net`.
    Net {
        /// The block's address.
        net: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
}

impl AddrMatch {
    /// Parses `any`, an address or `address/prefix`.
    pub fn parse(s: &str) -> Result<AddrMatch, String> {
        if s == "any" || s == "*" {
            return Ok(AddrMatch::Any);
        }
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net: IpAddr =
            addr.parse().map_err(|_| format!("{s:?} is not an address, an address/prefix block or \"any\""))?;
        let net = net.to_canonical();
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("{s:?}: the prefix length must be 0 to {max}")),
            },
        };
        Ok(AddrMatch::Net { net, prefix })
    }

    /// Whether `ip` is in the set (IPv4-mapped IPv6 addresses count as their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let AddrMatch::Net { net, prefix } = *self else { return true };
        match (net, ip.to_canonical()) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl fmt::Display for AddrMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrMatch::Any => f.write_str("any"),
            AddrMatch::Net { net, prefix } if *prefix == if net.is_ipv4() { 32 } else { 128 } => write!(f, "{net}"),
            AddrMatch::Net { net, prefix } => write!(f, "{net}/{prefix}"),
        }
    }
}

/// A range of ports (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortMatch {
    /// Lowest port.
    pub low: u16,
    /// Highest port.
    pub high: u16,
}

impl PortMatch {
    /// Every port.
    pub const ANY: PortMatch = PortMatch { low: 0, high: u16::MAX };

    /// Parses `any`, `N` or `LOW-HIGH`.
    pub fn parse(s: &str) -> Result<PortMatch, String> {
        if s == "any" || s == "*" {
            return Ok(PortMatch::ANY);
        }
        let bad = || format!("port {s:?}: expected a port (0-65535), a range LOW-HIGH or \"any\"");
        let (low, high) = match s.split_once('-') {
            Some((l, h)) => (l.trim().parse().map_err(|_| bad())?, h.trim().parse().map_err(|_| bad())?),
            None => {
                let p = s.trim().parse().map_err(|_| bad())?;
                (p, p)
            }
        };
        if low > high {
            return Err(format!("port range {s:?} is empty (the low end is above the high end)"));
        }
        Ok(PortMatch { low, high })
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Rule {
    /// What it says.
    pub action: Action,
    /// Destination addresses (`any` when absent).
    #[serde(default = "any_addr", deserialize_with = "de_addr")]
    pub to: AddrMatch,
    /// Destination ports (`any` when absent).
    #[serde(default = "any_port", deserialize_with = "de_port")]
    pub port: PortMatch,
    /// Protocol (both when absent).
    #[serde(default)]
    pub proto: Option<Proto>,
    /// The calling program's executable, as the kernel names it (any when absent).
    #[serde(default)]
    pub exe: Option<String>,
}

fn any_addr() -> AddrMatch {
    AddrMatch::Any
}

fn any_port() -> PortMatch {
    PortMatch::ANY
}

fn de_addr<'de, D: Deserializer<'de>>(d: D) -> Result<AddrMatch, D::Error> {
    let s = String::deserialize(d)?;
    AddrMatch::parse(&s).map_err(serde::de::Error::custom)
}

fn de_port<'de, D: Deserializer<'de>>(d: D) -> Result<PortMatch, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(i64),
        Text(String),
    }
    match Port::deserialize(d)? {
        Port::Number(n) => {
            let p = u16::try_from(n).map_err(|_| serde::de::Error::custom(format!("port {n} is not 0 to 65535")))?;
            Ok(PortMatch { low: p, high: p })
        }
        Port::Text(s) => PortMatch::parse(&s).map_err(serde::de::Error::custom),
    }
}

impl Rule {
    /// Whether the rule covers `c`.
    pub fn matches(&self, c: &Connection) -> bool {
        self.to.contains(c.dest.ip())
            && (self.port.low..=self.port.high).contains(&c.dest.port())
            && self.proto.is_none_or(|p| p == c.proto)
            && self.exe.as_deref().is_none_or(|e| e == c.exe)
    }

    /// One line for a person: `allow tcp to 192.0.2.0/24 port 443 from /usr/bin/curl`.
    pub fn describe(&self) -> String {
        let mut s = format!("{} {} to {}", self.action.as_str(), self.proto.map_or("tcp/udp", Proto::as_str), self.to);
        if self.port != PortMatch::ANY {
            if self.port.low == self.port.high {
                s.push_str(&format!(" port {}", self.port.low));
            } else {
                s.push_str(&format!(" ports {}-{}", self.port.low, self.port.high));
            }
        }
        if let Some(e) = &self.exe {
            s.push_str(&format!(" from {e}"));
        }
        s
    }
}

/// The `[net]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct NetRules {
    /// What happens to a connection no rule matches.
    #[serde(default = "ask")]
    pub unmatched: Action,
    /// Seconds an `ask` waits for an answer.
    #[serde(default = "thirty")]
    pub ask_timeout: u32,
    /// The answer when nobody answers in time, or no decider is listening.
    #[serde(default = "deny", deserialize_with = "de_verdict")]
    pub ask_default: Action,
    /// The rules, first match wins.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

fn ask() -> Action {
    Action::Ask
}

fn deny() -> Action {
    Action::Deny
}

fn thirty() -> u32 {
    30
}

fn de_verdict<'de, D: Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
    match Action::deserialize(d)? {
        Action::Ask => Err(serde::de::Error::custom("ask-default must be \"allow\" or \"deny\"")),
        a => Ok(a),
    }
}

impl Default for NetRules {
    fn default() -> Self {
        NetRules { unmatched: Action::Ask, ask_timeout: 30, ask_default: Action::Deny, rules: Vec::new() }
    }
}

/// A connection to decide.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Connection {
    /// The calling process (host pid).
    pub pid: u32,
    /// Its executable.
    pub exe: String,
    /// TCP or UDP.
    pub proto: Proto,
    /// Where to (IPv4-mapped IPv6 addresses given as IPv4).
    pub dest: SocketAddr,
}

/// What the rules say about a connection, and which rule said it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The action.
    pub action: Action,
    /// The index of the rule that matched (`None`: `unmatched` applied).
    pub rule: Option<usize>,
}

impl NetRules {
    /// The first matching rule's action, or `unmatched`.
    pub fn evaluate(&self, c: &Connection) -> Outcome {
        match self.rules.iter().position(|r| r.matches(c)) {
            Some(i) => Outcome { action: self.rules[i].action, rule: Some(i) },
            None => Outcome { action: self.unmatched, rule: None },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(exe: &str, proto: Proto, dest: &str) -> Connection {
        Connection { pid: 1, exe: exe.into(), proto, dest: dest.parse().unwrap() }
    }

    fn rules(text: &str) -> NetRules {
        #[derive(Deserialize)]
        struct T {
            net: NetRules,
        }
        toml::from_str::<T>(text).unwrap().net
    }

    #[test]
    fn the_first_matching_rule_decides() {
        let r = rules(
            r#"
            [net]
            unmatched = "deny"
            [[net.rule]]
            action = "deny"
            to = "192.0.2.66"
            [[net.rule]]
            action = "allow"
            to = "192.0.2.0/24"
            port = "80-443"
            proto = "tcp"
            [[net.rule]]
            action = "ask"
            exe = "/usr/bin/curl"
            "#,
        );
        let o = |c| r.evaluate(&c);
        assert_eq!(o(conn("/bin/x", Proto::Tcp, "192.0.2.66:443")), Outcome { action: Action::Deny, rule: Some(0) });
        assert_eq!(o(conn("/bin/x", Proto::Tcp, "192.0.2.7:443")), Outcome { action: Action::Allow, rule: Some(1) });
        assert_eq!(o(conn("/bin/x", Proto::Udp, "192.0.2.7:443")).action, Action::Deny);
        assert_eq!(o(conn("/bin/x", Proto::Tcp, "192.0.2.7:8080")).action, Action::Deny);
        assert_eq!(
            o(conn("/usr/bin/curl", Proto::Tcp, "198.51.100.1:22")),
            Outcome { action: Action::Ask, rule: Some(2) }
        );
        // An IPv4-mapped IPv6 destination is its IPv4 address: no way around rule 0.
        assert_eq!(o(conn("/bin/x", Proto::Tcp, "[::ffff:192.0.2.66]:443")).action, Action::Deny);
    }

    #[test]
    fn defaults_ask_and_deny_after_thirty_seconds() {
        let r = NetRules::default();
        assert_eq!(r.evaluate(&conn("/bin/x", Proto::Tcp, "[2001:db8::1]:443")).action, Action::Ask);
        assert_eq!((r.ask_timeout, r.ask_default), (30, Action::Deny));
    }

    #[test]
    fn bad_rules_are_refused_with_the_offending_text() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct T {
            net: NetRules,
        }
        for (text, needle) in [
            ("[net]\n[[net.rule]]\naction = \"allow\"\nto = \"10.0.0.0/33\"\n", "0 to 32"),
            ("[net]\n[[net.rule]]\naction = \"allow\"\nto = \"example.org\"\n", "example.org"),
            ("[net]\n[[net.rule]]\naction = \"allow\"\nport = 70000\n", "70000"),
            ("[net]\n[[net.rule]]\naction = \"allow\"\nport = \"9-1\"\n", "empty"),
            ("[net]\n[[net.rule]]\naction = \"maybe\"\n", "maybe"),
            ("[net]\nask-default = \"ask\"\n", "allow"),
            ("[net]\n[[net.rule]]\naction = \"allow\"\nhost = \"x\"\n", "host"),
        ] {
            let e = toml::from_str::<T>(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
    }

    #[test]
    fn blocks_match_by_prefix() {
        let b = AddrMatch::parse("fd00::/8").unwrap();
        assert!(b.contains("fd12::1".parse().unwrap()));
        assert!(!b.contains("fe80::1".parse().unwrap()));
        assert!(!b.contains("10.0.0.1".parse().unwrap()));
        assert!(AddrMatch::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert_eq!(AddrMatch::parse("10.1.2.3").unwrap().to_string(), "10.1.2.3");
        assert_eq!(AddrMatch::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
    }
}
