//! The commit journal, `<boxes_dir>/<box>/commit.journal`: what a commit is about to apply,
//! made durable before anything is applied, removed once the commit is complete.
//!
//! ```text
//! hivebox commit journal 1
//! {"box":"...","caller":{...},"ops":[...],"drop":[...],"restamp":[...]}
//! crc32 1a2b3c4d
//! ```
//!
//! Three lines: the header, one line of JSON, and the CRC-32 (IEEE) of that JSON line's bytes
//! in hex. It is written to `commit.journal.tmp`, synced, renamed into place and the directory
//! synced, so it exists whole or not at all; the checksum catches a file damaged since.
//!
//! - `caller`: who committed (`mode` `"user"`/`"kernel"`, `sid`, `system`, `pid`, `image`,
//!   `uid`, `flags`, `rules`), so that a recovery is judged by the protection filter as the
//!   commit was.
//! - `ops`, in order, each the final state of one host key (native path `key`):
//!   `{"op":"delete","key":K}` (K and its subtree must not exist),
//!   `{"op":"replace","key":K,"image":IMAGE}` (K must be exactly IMAGE:
//!   `{"name","class","values":[VALUE...],"subkeys":[IMAGE...]}`),
//!   `{"op":"values","key":K,"class":C,"set":[VALUE...],"delete":[NAME...]}` (K must exist with
//!   these values, and without those). A VALUE is `{"name","type","data"}` (type number, data
//!   in hex). `stamp` (optional) is the box key's `hivebox:base-time`.
//! - `drop`: the box's keys (paths below its hive's root) the commit removes.
//! - `restamp`: `{"key":PATH,"from":T}`: a box key above the committed ones whose
//!   `hivebox:base-time` was `T`, equal to its host key's last write time before the commit;
//!   it becomes that key's time after the commit (the commit itself changed it).

use super::walk::{Unit, UnitKind, native_of};
use super::{ChangeError, walk};
use hivebox_core::cm::Mode;
use hivebox_core::{Caller, KeyImage, NtStatus, ProcessInfo, Token, Value, ValueType};
use serde_json::{Value as Json, json};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The journal's first line.
const HEADER: &str = "hivebox commit journal 1";
/// The journal's name in the box's directory.
pub(crate) const FILE: &str = "commit.journal";

/// A commit in progress.
#[derive(Debug, Clone)]
pub(crate) struct Journal {
    pub box_name: String,
    pub caller: Caller,
    pub ops: Vec<Unit>,
    pub drop: Vec<Vec<String>>,
    pub restamp: Vec<(Vec<String>, u64)>,
}

/// The journal of box directory `dir`.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

fn crc32(bytes: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = i as u32;
            let mut k = 0;
            while k < 8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
                k += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    let mut c = !0u32;
    for &b in bytes {
        c = TABLE[((c ^ b as u32) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

fn caller_json(c: &Caller) -> Json {
    let p = &c.process;
    json!({
        "mode": if c.mode == Mode::Kernel { "kernel" } else { "user" },
        "sid": c.token.user_sid,
        "system": c.token.system,
        "pid": p.pid,
        "image": p.image,
        "uid": p.uid,
        "flags": p.flags,
        "rules": p.rules,
    })
}

fn value_json(name: &str, v: &Value) -> Json {
    json!({ "name": name, "type": v.ty.0, "data": hivebox_core::value::hex(&v.data) })
}

fn image_json(i: &KeyImage) -> Json {
    json!({
        "name": i.name,
        "class": i.class,
        "values": i.values.iter().map(|(n, v)| value_json(n, v)).collect::<Vec<_>>(),
        "subkeys": i.subkeys.iter().map(image_json).collect::<Vec<_>>(),
    })
}

fn op_json(u: &Unit) -> Json {
    let key = native_of(&u.comps);
    let mut j = match &u.kind {
        UnitKind::Delete => json!({ "op": "delete", "key": key }),
        UnitKind::Replace { image, existed } => {
            json!({ "op": "replace", "key": key, "existed": existed, "image": image_json(image) })
        }
        UnitKind::Values { class, set, delete } => json!({
            "op": "values",
            "key": key,
            "class": class,
            "set": set.iter().map(|(n, v)| value_json(n, v)).collect::<Vec<_>>(),
            "delete": delete,
        }),
    };
    if let Some(stamp) = u.stamp {
        j["stamp"] = stamp.into();
    }
    j
}

/// The journal's bytes.
pub(crate) fn encode(j: &Journal) -> Vec<u8> {
    let body = json!({
        "box": j.box_name,
        "caller": caller_json(&j.caller),
        "ops": j.ops.iter().map(op_json).collect::<Vec<_>>(),
        "drop": j.drop,
        "restamp": j.restamp.iter().map(|(k, t)| json!({ "key": k, "from": t })).collect::<Vec<_>>(),
    })
    .to_string();
    format!("{HEADER}\n{body}\ncrc32 {:08x}\n", crc32(body.as_bytes())).into_bytes()
}

fn bad(what: &str) -> String {
    what.to_owned()
}

fn unhex(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(bad("odd number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2).ok_or("not hex")?, 16).map_err(|e| e.to_string()))
        .collect()
}

fn str_of<'a>(j: &'a Json, field: &str) -> Result<&'a str, String> {
    j.get(field).and_then(Json::as_str).ok_or_else(|| format!("{field}: expected a string"))
}

fn u64_of(j: &Json, field: &str) -> Result<u64, String> {
    j.get(field).and_then(Json::as_u64).ok_or_else(|| format!("{field}: expected a number"))
}

fn array_of<'a>(j: &'a Json, field: &str) -> Result<&'a Vec<Json>, String> {
    j.get(field).and_then(Json::as_array).ok_or_else(|| format!("{field}: expected an array"))
}

fn value_of(j: &Json) -> Result<(String, Value), String> {
    let ty = u32::try_from(u64_of(j, "type")?).map_err(|e| e.to_string())?;
    Ok((str_of(j, "name")?.to_owned(), Value::new(ValueType(ty), unhex(str_of(j, "data")?)?)))
}

fn class_of(j: &Json) -> Option<String> {
    j.get("class").and_then(Json::as_str).map(str::to_owned)
}

fn image_of(j: &Json, depth: usize) -> Result<KeyImage, String> {
    if depth > hivebox_core::name::MAX_PATH_DEPTH {
        return Err(bad("image too deep"));
    }
    Ok(KeyImage {
        name: str_of(j, "name")?.to_owned(),
        class: class_of(j),
        values: array_of(j, "values")?.iter().map(value_of).collect::<Result<_, _>>()?,
        subkeys: array_of(j, "subkeys")?.iter().map(|s| image_of(s, depth + 1)).collect::<Result<_, _>>()?,
        ..KeyImage::default()
    })
}

fn comps_of(j: &Json) -> Result<Vec<String>, String> {
    j.as_array()
        .ok_or("expected an array of key names")?
        .iter()
        .map(|c| c.as_str().map(str::to_owned).ok_or_else(|| bad("expected a key name")))
        .collect()
}

fn op_of(j: &Json) -> Result<Unit, String> {
    let key = str_of(j, "key")?;
    let comps = walk::comps_of_native(key).ok_or_else(|| format!("{key:?} is not a native path"))?;
    let kind = match str_of(j, "op")? {
        "delete" => UnitKind::Delete,
        "replace" => UnitKind::Replace {
            image: image_of(j.get("image").ok_or("image: missing")?, 0)?,
            existed: j.get("existed").and_then(Json::as_bool).unwrap_or(true),
        },
        "values" => UnitKind::Values {
            class: class_of(j),
            set: array_of(j, "set")?.iter().map(value_of).collect::<Result<_, _>>()?,
            delete: array_of(j, "delete")?
                .iter()
                .map(|n| n.as_str().map(str::to_owned).ok_or_else(|| bad("delete: expected names")))
                .collect::<Result<_, _>>()?,
        },
        other => return Err(format!("unknown op {other:?}")),
    };
    Ok(Unit { comps, kind, stamp: j.get("stamp").and_then(Json::as_u64) })
}

fn caller_of(j: &Json) -> Result<Caller, String> {
    if str_of(j, "mode")? == "kernel" {
        return Ok(Caller::system());
    }
    let token = Token {
        user_sid: str_of(j, "sid")?.to_owned(),
        system: j.get("system").and_then(Json::as_bool).unwrap_or(false),
    };
    let process = ProcessInfo {
        pid: u32::try_from(u64_of(j, "pid")?).map_err(|e| e.to_string())?,
        image: str_of(j, "image")?.to_owned(),
        box_name: None,
        flags: u32::try_from(u64_of(j, "flags")?).map_err(|e| e.to_string())?,
        rules: u32::try_from(u64_of(j, "rules")?).map_err(|e| e.to_string())?,
        uid: j.get("uid").and_then(Json::as_u64).and_then(|u| u32::try_from(u).ok()),
    };
    Ok(Caller::user(token, process))
}

/// Reads a journal back: `Err` says why it is not one (damaged, or not a journal at all).
pub(crate) fn decode(bytes: &[u8]) -> Result<Journal, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| bad("not UTF-8"))?;
    let mut lines = text.split('\n');
    if lines.next() != Some(HEADER) {
        return Err(bad("no journal header"));
    }
    let body = lines.next().ok_or("no body")?;
    let sum = lines.next().and_then(|l| l.strip_prefix("crc32 ")).ok_or("no checksum line")?;
    let sum = u32::from_str_radix(sum, 16).map_err(|_| bad("the checksum line is damaged"))?;
    if sum != crc32(body.as_bytes()) {
        return Err(bad("the checksum does not match"));
    }
    let j: Json = serde_json::from_str(body).map_err(|e| e.to_string())?;
    Ok(Journal {
        box_name: str_of(&j, "box")?.to_owned(),
        caller: caller_of(j.get("caller").ok_or("caller: missing")?)?,
        ops: array_of(&j, "ops")?.iter().map(op_of).collect::<Result<_, _>>()?,
        drop: array_of(&j, "drop")?.iter().map(comps_of).collect::<Result<_, _>>()?,
        restamp: array_of(&j, "restamp")?
            .iter()
            .map(|r| Ok((comps_of(r.get("key").ok_or("restamp key: missing")?)?, u64_of(r, "from")?)))
            .collect::<Result<_, String>>()?,
    })
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> ChangeError {
    ChangeError::new(NtStatus::STATUS_UNSUCCESSFUL, format!("cannot {what} the commit journal {}: {e}", path.display()))
}

/// Syncs a directory (so a rename or removal in it is durable).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// Makes the journal durable in `dir` (created if missing): written whole beside, synced,
/// renamed into place, the directory synced.
pub(crate) fn write(dir: &Path, j: &Journal) -> Result<PathBuf, ChangeError> {
    let target = path(dir);
    std::fs::create_dir_all(dir).map_err(|e| io_error("create the directory of", &target, e))?;
    let tmp = dir.join(format!("{FILE}.tmp"));
    let r = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&encode(j))?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &target)?;
        sync_dir(dir)
    })();
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io_error("write", &target, e)
    })?;
    Ok(target)
}

/// Removes a journal durably (nothing to do if it is gone).
pub(crate) fn remove(file: &Path) -> Result<(), ChangeError> {
    match std::fs::remove_file(file) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_error("remove", file, e)),
    }
    if let Some(dir) = file.parent() {
        sync_dir(dir).map_err(|e| io_error("remove", file, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_is_the_ieee_one() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn round_trip_and_damage() {
        let image = KeyImage {
            name: "New".into(),
            class: Some("C".into()),
            values: vec![("a".into(), Value::sz("x")), ("".into(), Value::dword(7))],
            subkeys: vec![KeyImage { name: "Sub".into(), ..KeyImage::default() }],
            ..KeyImage::default()
        };
        let caller = Caller::user(
            Token { user_sid: "S-1-22-1-1000".into(), system: false },
            ProcessInfo {
                pid: 42,
                image: "/usr/bin/hivebox".into(),
                uid: Some(1000),
                flags: 0x20,
                ..ProcessInfo::default()
            },
        );
        let j = Journal {
            box_name: "b".into(),
            caller,
            ops: vec![
                Unit {
                    comps: vec!["MACHINE".into(), "SOFTWARE".into(), "Old".into()],
                    kind: UnitKind::Delete,
                    stamp: Some(5),
                },
                Unit {
                    comps: vec!["MACHINE".into(), "SOFTWARE".into(), "New".into()],
                    kind: UnitKind::Replace { image, existed: false },
                    stamp: None,
                },
                Unit {
                    comps: vec!["USER".into(), "S-1-22-1-1000".into(), "K".into()],
                    kind: UnitKind::Values {
                        class: None,
                        set: vec![("v\"\\".into(), Value::new(ValueType(0x1234), vec![0, 255]))],
                        delete: vec!["gone".into()],
                    },
                    stamp: None,
                },
            ],
            drop: vec![vec!["MACHINE".into()]],
            restamp: vec![(vec!["MACHINE".into(), "SOFTWARE".into()], 99)],
        };
        let bytes = encode(&j);
        let back = decode(&bytes).unwrap();
        assert_eq!(back.ops, j.ops);
        assert_eq!(back.drop, j.drop);
        assert_eq!(back.restamp, j.restamp);
        assert_eq!(caller_json(&back.caller), caller_json(&j.caller));
        // Any flipped byte of the body is caught.
        let header = HEADER.len() + 1;
        for at in [header, header + 10, bytes.len() - 20] {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x01;
            assert!(decode(&damaged).is_err(), "byte {at}");
        }
        assert!(decode(&bytes[..bytes.len() / 2]).is_err());
    }
}
