//! Protection events: what a matched operation reports, with Sysmon's field names, and its
//! JSON-lines form.

use super::bits::RegOp;
use crate::{UNIX_EPOCH_FILETIME, Value, ValueType};
use std::fmt::Write;

/// The outcome an event reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventVerdict {
    /// The operation went ahead.
    Allowed,
    /// The operation was refused.
    Denied,
}

impl EventVerdict {
    /// `allowed` / `denied`.
    pub const fn name(self) -> &'static str {
        match self {
            EventVerdict::Allowed => "allowed",
            EventVerdict::Denied => "denied",
        }
    }
}

/// One matched operation (the content of WdFilter's `RegNotification`).
#[derive(Clone, Debug, PartialEq)]
pub struct ProtectionEvent {
    /// The operation (Sysmon's `EventType`).
    pub op: RegOp,
    /// Sysmon's `TargetObject`: key, plus `\value` for value operations.
    pub target_object: String,
    /// Sysmon's `Details`: the data written, as Sysmon prints it.
    pub details: Option<String>,
    /// Sysmon's `NewName` (renames): the new full name.
    pub new_name: Option<String>,
    /// Sysmon's `Image`: the caller's executable, from the kernel.
    pub image: String,
    /// Sysmon's `ProcessId`.
    pub process_id: u32,
    /// When, as a FILETIME.
    pub time: u64,
    /// The caller's box.
    pub box_name: Option<String>,
    /// What happened.
    pub verdict: EventVerdict,
    /// Why it was denied: `hardening`, `tamper-protection`, `rule`, `service`.
    pub reason: Option<&'static str>,
    /// The ids of the rules that matched.
    pub rules: Vec<String>,
    /// `FinalKeyRules`: the OR of the matched rule bits.
    pub final_key_rules: u32,
    /// The old value (type and data), when a rule asked for it.
    pub old: Option<Value>,
    /// The notification was synchronous (the service was asked).
    pub sync: bool,
    /// Who decided a sync notification: `service` or `default` (no answer in time).
    pub decided_by: Option<&'static str>,
}

/// Sysmon's rendering of data in `Details`: `DWORD (0x00000001)`, `QWORD (0x00000000-0x00000001)`
/// (high, low), a string with `%` doubled (`(Empty)` when empty), `Binary Data` for the rest
/// (`REG_MULTI_SZ` included), as the shared traces show.
pub fn render_details(v: &Value) -> String {
    match v.ty {
        ValueType::REG_DWORD if v.data.len() == 4 => {
            format!("DWORD (0x{:08x})", u32::from_le_bytes(v.data[..4].try_into().expect("four bytes")))
        }
        ValueType::REG_QWORD if v.data.len() == 8 => {
            let q = u64::from_le_bytes(v.data[..8].try_into().expect("eight bytes"));
            format!("QWORD (0x{:08x}-0x{:08x})", q >> 32, q & 0xFFFF_FFFF)
        }
        ValueType::REG_SZ | ValueType::REG_EXPAND_SZ => match v.as_string() {
            Ok(s) if s.is_empty() => "(Empty)".into(),
            // Sysmon doubles `%` (its message formatting escapes it).
            Ok(s) => s.replace('%', "%%"),
            Err(_) => "Binary Data".into(),
        },
        _ => "Binary Data".into(),
    }
}

/// A FILETIME as Sysmon's `UtcTime`: `2024-05-14 23:11:56.123`.
pub fn utc_time(filetime: u64) -> String {
    let unix_100ns = filetime.saturating_sub(UNIX_EPOCH_FILETIME);
    let secs = unix_100ns / 10_000_000;
    let millis = (unix_100ns % 10_000_000) / 10_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl ProtectionEvent {
    /// The event as one JSON object (no newline), Sysmon's field names first.
    pub fn to_json(&self) -> String {
        let mut o = String::with_capacity(256);
        o.push_str("{\"EventType\":");
        json_str(&mut o, self.op.event_type());
        o.push_str(",\"UtcTime\":");
        json_str(&mut o, &utc_time(self.time));
        o.push_str(",\"ProcessId\":");
        let _ = write!(o, "{}", self.process_id);
        o.push_str(",\"Image\":");
        json_str(&mut o, &self.image);
        o.push_str(",\"TargetObject\":");
        json_str(&mut o, &self.target_object);
        if let Some(d) = &self.details {
            o.push_str(",\"Details\":");
            json_str(&mut o, d);
        }
        if let Some(n) = &self.new_name {
            o.push_str(",\"NewName\":");
            json_str(&mut o, n);
        }
        o.push_str(",\"box\":");
        match &self.box_name {
            Some(b) => json_str(&mut o, b),
            None => o.push_str("null"),
        }
        o.push_str(",\"verdict\":");
        json_str(&mut o, self.verdict.name());
        if let Some(r) = self.reason {
            o.push_str(",\"reason\":");
            json_str(&mut o, r);
        }
        o.push_str(",\"rules\":[");
        for (i, r) in self.rules.iter().enumerate() {
            if i > 0 {
                o.push(',');
            }
            json_str(&mut o, r);
        }
        o.push(']');
        let _ = write!(o, ",\"final_key_rules\":\"0x{:x}\"", self.final_key_rules);
        if let Some(old) = &self.old {
            o.push_str(",\"old\":{\"type\":");
            json_str(&mut o, old.ty.name().unwrap_or("REG_UNKNOWN"));
            o.push_str(",\"data\":");
            json_str(&mut o, &render_details(old));
            o.push_str(",\"hex\":");
            json_str(&mut o, &crate::value::hex(&old.data));
            o.push('}');
        }
        if self.sync {
            o.push_str(",\"sync\":true,\"decided_by\":");
            json_str(&mut o, self.decided_by.unwrap_or("default"));
        }
        o.push('}');
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_as_sysmon_prints_them() {
        assert_eq!(render_details(&Value::dword(1)), "DWORD (0x00000001)");
        assert_eq!(render_details(&Value::qword(0x1_0000_0002)), "QWORD (0x00000001-0x00000002)");
        assert_eq!(render_details(&Value::sz(r"C:\x.exe")), r"C:\x.exe");
        assert_eq!(render_details(&Value::binary(&[1, 2])), "Binary Data");
        assert_eq!(render_details(&Value::multi_sz(&["a", "b"])), "Binary Data");
        assert_eq!(render_details(&Value::sz("")), "(Empty)");
        assert_eq!(render_details(&Value::expand_sz(r"%SystemRoot%\x.exe")), r"%%SystemRoot%%\x.exe");
    }

    #[test]
    fn utc_time_is_sysmon_format() {
        // 2022-02-02 22:54:57.032 UTC
        let unix = 1_643_842_497u64;
        let ft = UNIX_EPOCH_FILETIME + unix * 10_000_000 + 32 * 10_000;
        assert_eq!(utc_time(ft), "2022-02-02 22:54:57.032");
        assert_eq!(utc_time(UNIX_EPOCH_FILETIME), "1970-01-01 00:00:00.000");
    }
}
