//! Traces of registry events to replay through a policy: Sysmon's JSON lines (event ids 12,
//! 13, 14 with Sysmon's field names) or the same events as registry operations (`op`,
//! `key_native`, `value_name`, ...), one event per line.

use hivebox_core::protect::RegOp;
use serde::Deserialize;
use std::borrow::Cow;

/// One registry operation of a trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceOp {
    /// The operation.
    pub op: RegOp,
    /// The key (native `\REGISTRY\...`, or Sysmon's `HKLM\...`).
    pub key: String,
    /// The value name, for value operations.
    pub value_name: Option<String>,
    /// A rename's new full name.
    pub new_key: Option<String>,
    /// The data written, as Sysmon printed it.
    pub details: Option<String>,
    /// The process's executable.
    pub image: String,
    /// The process id (0 when the trace lost it).
    pub pid: u32,
}

impl TraceOp {
    /// The operation as the policy judges it.
    pub fn subject(&self) -> hivebox_core::protect::Subject<'_> {
        hivebox_core::protect::Subject {
            op: self.op,
            key: &self.key,
            value_name: self.value_name.as_deref(),
            new_key: self.new_key.as_deref(),
            details: self.details.as_deref().map(hivebox_core::protect::Details::Text),
        }
    }

    /// The process as the policy sees it: the recorded image and process id.
    pub fn actor(&self) -> hivebox_core::protect::Actor<'_> {
        hivebox_core::protect::Actor { image: &self.image, pid: self.pid, ..Default::default() }
    }
}

/// Why a line is not an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// Not JSON, or fields of the wrong type.
    #[error("not a JSON event: {0}")]
    Json(String),
    /// Neither format.
    #[error("neither a Sysmon registry event (EventType/TargetObject) nor an operation (op/key_native)")]
    Unknown,
    /// A Sysmon event without its key.
    #[error("Sysmon event {0} has no TargetObject")]
    NoTarget(u32),
    /// An operation hivebox does not know.
    #[error("unknown operation `{0}`")]
    Op(String),
    /// A value operation without a value name.
    #[error("a {0} without a value name")]
    NoValue(&'static str),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Num<'a> {
    N(u64),
    #[serde(borrow)]
    S(Cow<'a, str>),
}

impl Num<'_> {
    fn get(&self) -> u32 {
        match self {
            Num::N(n) => u32::try_from(*n).unwrap_or(0),
            Num::S(s) => s.trim().parse().unwrap_or(0),
        }
    }
}

#[derive(Deserialize)]
struct Line<'a> {
    // The operations form.
    #[serde(borrow)]
    op: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key_native: Option<Cow<'a, str>>,
    #[serde(borrow)]
    key_sysmon: Option<Cow<'a, str>>,
    #[serde(borrow)]
    value_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    details_raw: Option<Cow<'a, str>>,
    #[serde(borrow)]
    new_name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    image: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pid: Option<Num<'a>>,
    // Sysmon's form.
    #[serde(rename = "EventID")]
    event_id: Option<u32>,
    #[serde(rename = "EventType", borrow)]
    event_type: Option<Cow<'a, str>>,
    #[serde(rename = "TargetObject", borrow)]
    target_object: Option<Cow<'a, str>>,
    #[serde(rename = "Details", borrow)]
    details: Option<Cow<'a, str>>,
    #[serde(rename = "NewName", borrow)]
    new_name_sysmon: Option<Cow<'a, str>>,
    #[serde(rename = "Image", borrow)]
    image_sysmon: Option<Cow<'a, str>>,
    #[serde(rename = "ProcessId", borrow)]
    process_id: Option<Num<'a>>,
}

fn own(c: Option<Cow<'_, str>>) -> Option<String> {
    c.map(Cow::into_owned)
}

/// Parses one line of a trace.
pub fn parse_line(line: &str) -> Result<TraceOp, TraceError> {
    let l: Line<'_> = serde_json::from_str(line).map_err(|e| TraceError::Json(e.to_string()))?;
    if let Some(op) = &l.op {
        let op = match op.as_ref() {
            "create_key" => RegOp::CreateKey,
            "delete_key" => RegOp::DeleteKey,
            "set_value" => RegOp::SetValue,
            "delete_value" => RegOp::DeleteValue,
            "rename_key" => RegOp::RenameKey,
            "restore_key" => RegOp::RestoreKey,
            "replace_key" => RegOp::ReplaceKey,
            other => return Err(TraceError::Op(other.to_owned())),
        };
        let key = l.key_native.or(l.key_sysmon).ok_or(TraceError::Unknown)?.into_owned();
        if op.is_value_op() && l.value_name.is_none() {
            return Err(TraceError::NoValue(op.name()));
        }
        return Ok(TraceOp {
            op,
            key,
            value_name: own(l.value_name),
            new_key: own(l.new_name),
            details: own(l.details_raw),
            image: own(l.image).unwrap_or_default(),
            pid: l.pid.map_or(0, |p| p.get()),
        });
    }
    let target = match (l.target_object, l.event_id) {
        (Some(t), _) => t,
        (None, Some(id)) => return Err(TraceError::NoTarget(id)),
        (None, None) => return Err(TraceError::Unknown),
    };
    let op = match (&l.event_type, l.event_id) {
        (Some(t), _) => RegOp::from_event_type(t).ok_or_else(|| TraceError::Op(t.clone().into_owned()))?,
        // Sysmon logs creates and deletes under id 12; a lost type there is a create.
        (None, Some(12)) => RegOp::CreateKey,
        (None, Some(13)) => RegOp::SetValue,
        (None, Some(14)) => RegOp::RenameKey,
        (None, _) => return Err(TraceError::Unknown),
    };
    let (key, value_name) = if op.is_value_op() {
        match target.rfind('\\') {
            Some(i) => (target[..i].to_owned(), Some(target[i + 1..].to_owned())),
            None => return Err(TraceError::NoValue(op.name())),
        }
    } else {
        (target.into_owned(), None)
    };
    let value_name = value_name.map(|v| if v == "(Default)" { String::new() } else { v });
    Ok(TraceOp {
        op,
        key,
        value_name,
        new_key: own(l.new_name_sysmon),
        details: own(l.details),
        image: own(l.image_sysmon).unwrap_or_default(),
        pid: l.process_id.map_or(0, |p| p.get()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_parse() {
        let ops = r#"{"seq": 1, "op": "set_value", "image": "C:\\x.exe", "pid": "6196", "key_sysmon": "HKLM\\S", "value_name": "v", "details_raw": "DWORD (0x00000001)", "key_native": "\\REGISTRY\\MACHINE\\S"}"#;
        let t = parse_line(ops).unwrap();
        assert_eq!(
            (t.op, t.key.as_str(), t.value_name.as_deref(), t.pid),
            (RegOp::SetValue, r"\REGISTRY\MACHINE\S", Some("v"), 6196)
        );
        let sysmon = r#"{"EventID": 13, "EventType": "SetValue", "ProcessId": 648, "Image": "C:\\s.exe", "TargetObject": "HKLM\\System\\CurrentControlSet\\Services\\WdNisDrv\\Start", "Details": "DWORD (0x00000003)"}"#;
        let t = parse_line(sysmon).unwrap();
        assert_eq!(t.key, r"HKLM\System\CurrentControlSet\Services\WdNisDrv");
        assert_eq!(t.value_name.as_deref(), Some("Start"));
        assert_eq!(t.details.as_deref(), Some("DWORD (0x00000003)"));
        let lost = r#"{"EventID": 12, "TargetObject": "HKLM\\x", "Image": "a", "ProcessId": null}"#;
        assert_eq!(parse_line(lost).unwrap().op, RegOp::CreateKey);
        assert!(matches!(parse_line("{"), Err(TraceError::Json(_))));
        assert_eq!(parse_line(r#"{"a": 1}"#), Err(TraceError::Unknown));
        assert_eq!(parse_line(r#"{"op": "frob", "key_native": "x"}"#), Err(TraceError::Op("frob".into())));
        assert_eq!(parse_line(r#"{"op": "set_value", "key_native": "x"}"#), Err(TraceError::NoValue("set-value")));
    }
}
