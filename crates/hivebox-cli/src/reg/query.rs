//! The reading verbs: `query` and `compare`.

use super::args::{CompareArgs, QueryArgs, ValueSel};
use super::error::RegError;
use super::output::{self, Matcher};
use super::session::{KeyData, Session};
use super::{Io, compare as cmp, parse_path, parse_type};
use hivebox_core::access::KEY_READ;
use hivebox_core::{KeyPath, NtStatus};
use serde_json::json;

/// Opens and reads a key (its subtree too with `recursive`).
fn read(s: &Session, path: &KeyPath, recursive: bool) -> Result<KeyData, RegError> {
    let key = s.open(path, KEY_READ)?;
    s.read(&key, path, recursive)
}

fn print_json(io: &mut Io<'_>, value: &serde_json::Value) -> Result<(), RegError> {
    serde_json::to_writer_pretty(&mut *io.out, value).map_err(|e| RegError::Output(e.into()))?;
    writeln!(io.out)?;
    Ok(())
}

/// `reg query KEY [/v NAME | /ve] [/s] [/f PATTERN [/k] [/d] [/c] [/e]] [/t TYPE] [--json]`.
pub fn query(s: &Session, a: &QueryArgs, io: &mut Io<'_>) -> Result<i32, RegError> {
    let path = parse_path(&a.key)?;
    let ty = a.ty.as_deref().map(parse_type).transpose()?;
    let mut data = read(s, &path, a.recursive)?;
    if let Some(ty) = ty {
        output::keep_type(&mut data, ty);
    }
    if let Some(find) = &a.find {
        let hits = output::find(&data, &Matcher::new(find), a.recursive);
        return finish_search(io, &data, &hits, a.json);
    }
    match &a.value {
        Some(sel) if a.recursive => {
            let hits = output::value_hits(&data, sel.name());
            finish_search(io, &data, &hits, a.json)
        }
        Some(sel) => single(io, &data, sel, a.json),
        None if a.json => {
            print_json(io, &output::json_tree(&data, a.recursive))?;
            Ok(0)
        }
        None => {
            io.out.write_all(output::listing(&data, a.recursive).as_bytes())?;
            Ok(0)
        }
    }
}

fn finish_search(io: &mut Io<'_>, data: &KeyData, hits: &[output::Hit<'_>], json: bool) -> Result<i32, RegError> {
    if json {
        print_json(io, &output::json_hits(&data.path, hits))?;
    } else {
        io.out.write_all(output::find_text(hits).as_bytes())?;
    }
    Ok(0)
}

/// `/v NAME` or `/ve` without `/s`.
fn single(io: &mut Io<'_>, data: &KeyData, sel: &ValueSel, json: bool) -> Result<i32, RegError> {
    let name = sel.name();
    let not_found = || RegError::at_value(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, &data.path, name);
    if json {
        let values: Vec<serde_json::Value> = match data.value(name) {
            Some(v) => vec![output::json_value(name, v)],
            // An unset default value is reported as no value, not as an error.
            None if name.is_empty() => Vec::new(),
            None => return Err(not_found()),
        };
        print_json(io, &json!({ "key": data.path, "values": values }))?;
    } else {
        let text = output::single_value(data, name).ok_or_else(not_found)?;
        io.out.write_all(text.as_bytes())?;
    }
    Ok(0)
}

/// `reg compare KEY1 KEY2 [/v NAME | /ve] [/s] [/oa | /od | /os | /on] [--json]`: exit code 0
/// when identical, 2 when different.
pub fn compare(s: &Session, a: &CompareArgs, io: &mut Io<'_>) -> Result<i32, RegError> {
    let p1 = parse_path(&a.key1)?;
    let p2 = parse_path(&a.key2)?;
    let d1 = read(s, &p1, a.recursive)?;
    let d2 = read(s, &p2, a.recursive)?;
    let entries = cmp::compare(&d1, &d2, a.value.as_ref().map(ValueSel::name), a.recursive);
    if a.json {
        print_json(io, &cmp::json(&d1.path, &d2.path, &entries, a.output))?;
    } else {
        io.out.write_all(cmp::text(&entries, a.output).as_bytes())?;
    }
    Ok(if cmp::identical(&entries) { 0 } else { 2 })
}
