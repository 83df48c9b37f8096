//! The compact binary encoding of [`KeyImage`]s (snapshot payloads) and [`Mutation`]s (log
//! record payloads). Byte layout in `docs/store.md`.
//!
//! Everything is little-endian. A string is `len: u32` then that many bytes of UTF-8; a byte
//! string is `len: u32` then the bytes; an optional string is a tag byte (0 = none, 1 = some)
//! then the string; a flag is one byte, 0 or 1.
//!
//! The decoders are total: any input gives a value or a [`CodecError`] naming the byte
//! offset, never a panic. A claimed length is checked against the bytes that remain before
//! anything is read or allocated, and nesting is bounded by [`MAX_DEPTH`], so hostile input
//! can neither exhaust memory nor the stack.

use hivebox_core::{KeyImage, Mutation, Value, ValueType};

/// The deepest key below `\REGISTRY` an image may hold (the registry's own path limit).
pub const MAX_DEPTH: usize = hivebox_core::name::MAX_PATH_DEPTH;

const TAG_CREATE_KEY: u8 = 1;
const TAG_DELETE_KEY: u8 = 2;
const TAG_SET_VALUE: u8 = 3;
const TAG_DELETE_VALUE: u8 = 4;
const TAG_RENAME_KEY: u8 = 5;
const TAG_SET_LAST_WRITE: u8 = 6;
const TAG_REPLACE_KEY: u8 = 7;
const TAG_BATCH: u8 = 8;

/// True if `tag` starts a mutation this version knows (a cheap test before a checksum).
pub(crate) fn is_mutation_tag(tag: u8) -> bool {
    (TAG_CREATE_KEY..=TAG_REPLACE_KEY).contains(&tag)
}

/// Data that cannot be encoded or decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The input does not decode.
    #[error("malformed data at byte {offset}: {reason}")]
    Malformed {
        /// Offset into the input where decoding stopped.
        offset: u64,
        /// What was wrong there.
        reason: String,
    },
    /// A mutation variant this store version does not know how to write.
    #[error("unsupported mutation {0}")]
    Unsupported(String),
    /// A string or byte string longer than a `u32` length can say.
    #[error("{what} is {len} bytes long, more than the format's limit of 4 GiB")]
    TooLong {
        /// Which field.
        what: &'static str,
        /// Its length.
        len: usize,
    },
    /// An image nested deeper than [`MAX_DEPTH`].
    #[error("image is nested deeper than {MAX_DEPTH} keys")]
    TooDeep,
}

/// Encodes a whole key tree.
pub fn encode_image(image: &KeyImage) -> Result<Vec<u8>, CodecError> {
    let mut w = Writer(Vec::new());
    put_key(&mut w, image, 0)?;
    Ok(w.0)
}

/// Decodes a whole key tree; the input must hold exactly one image.
pub fn decode_image(bytes: &[u8]) -> Result<KeyImage, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let image = get_key(&mut r, 0)?;
    r.finish()?;
    Ok(image)
}

/// Encodes one mutation (a log record's payload).
pub fn encode_mutation(m: &Mutation) -> Result<Vec<u8>, CodecError> {
    let mut w = Writer(Vec::new());
    match m {
        Mutation::CreateKey { path, class, link, time } => {
            w.u8(TAG_CREATE_KEY);
            w.str("key path", path)?;
            w.opt_str("class name", class.as_deref())?;
            w.u8(u8::from(*link));
            w.u64(*time);
        }
        Mutation::DeleteKey { path, time } => {
            w.u8(TAG_DELETE_KEY);
            w.str("key path", path)?;
            w.u64(*time);
        }
        Mutation::SetValue { path, name, value, time } => {
            w.u8(TAG_SET_VALUE);
            w.str("key path", path)?;
            w.str("value name", name)?;
            w.u32(value.ty.0);
            w.bytes("value data", &value.data)?;
            w.u64(*time);
        }
        Mutation::DeleteValue { path, name, time } => {
            w.u8(TAG_DELETE_VALUE);
            w.str("key path", path)?;
            w.str("value name", name)?;
            w.u64(*time);
        }
        Mutation::RenameKey { path, new_name, time } => {
            w.u8(TAG_RENAME_KEY);
            w.str("key path", path)?;
            w.str("new key name", new_name)?;
            w.u64(*time);
        }
        Mutation::SetLastWrite { path, time } => {
            w.u8(TAG_SET_LAST_WRITE);
            w.str("key path", path)?;
            w.u64(*time);
        }
        Mutation::ReplaceKey { path, image, time } => {
            w.u8(TAG_REPLACE_KEY);
            w.str("key path", path)?;
            put_key(&mut w, image, 0)?;
            w.u64(*time);
        }
        Mutation::Batch { mutations } => {
            w.u8(TAG_BATCH);
            w.count("batch", mutations.len())?;
            for m in mutations {
                if matches!(m, Mutation::Batch { .. }) {
                    return Err(CodecError::Unsupported("a batch inside a batch".to_owned()));
                }
                w.bytes("batched change", &encode_mutation(m)?)?;
            }
        }
        other => {
            let shown: String = format!("{other:?}").chars().take(120).collect();
            return Err(CodecError::Unsupported(shown));
        }
    }
    Ok(w.0)
}

/// Decodes one mutation; the input must hold exactly one.
pub fn decode_mutation(bytes: &[u8]) -> Result<Mutation, CodecError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let tag_at = r.pos;
    let m = match r.u8("mutation tag")? {
        TAG_CREATE_KEY => Mutation::CreateKey {
            path: r.string("key path")?,
            class: r.opt_string("class name")?,
            link: r.flag("link flag")?,
            time: r.u64("time")?,
        },
        TAG_DELETE_KEY => Mutation::DeleteKey { path: r.string("key path")?, time: r.u64("time")? },
        TAG_SET_VALUE => Mutation::SetValue {
            path: r.string("key path")?,
            name: r.string("value name")?,
            value: Value::new(ValueType(r.u32("value type")?), r.bytes("value data")?),
            time: r.u64("time")?,
        },
        TAG_DELETE_VALUE => {
            Mutation::DeleteValue { path: r.string("key path")?, name: r.string("value name")?, time: r.u64("time")? }
        }
        TAG_RENAME_KEY => Mutation::RenameKey {
            path: r.string("key path")?,
            new_name: r.string("new key name")?,
            time: r.u64("time")?,
        },
        TAG_SET_LAST_WRITE => Mutation::SetLastWrite { path: r.string("key path")?, time: r.u64("time")? },
        TAG_REPLACE_KEY => {
            Mutation::ReplaceKey { path: r.string("key path")?, image: get_key(&mut r, 0)?, time: r.u64("time")? }
        }
        TAG_BATCH => {
            let n = r.u32("batch length")? as usize;
            // Each batched change takes at least its 4-byte length: bound the allocation.
            let mut mutations = Vec::with_capacity(n.min((r.buf.len() - r.pos) / 4));
            for _ in 0..n {
                let at = r.pos + 4;
                let inner = r.bytes("batched change")?;
                if inner.first() == Some(&TAG_BATCH) {
                    return Err(malformed(at, "a batch inside a batch".to_owned()));
                }
                let m = decode_mutation(&inner).map_err(|e| match e {
                    CodecError::Malformed { offset, reason } => malformed(at + offset as usize, reason),
                    other => other,
                })?;
                mutations.push(m);
            }
            Mutation::Batch { mutations }
        }
        tag => return Err(malformed(tag_at, format!("unknown mutation tag {tag}"))),
    };
    r.finish()?;
    Ok(m)
}

fn put_key(w: &mut Writer, k: &KeyImage, depth: usize) -> Result<(), CodecError> {
    if depth > MAX_DEPTH {
        return Err(CodecError::TooDeep);
    }
    w.str("key name", &k.name)?;
    w.opt_str("class name", k.class.as_deref())?;
    w.u64(k.last_write);
    w.u8(u8::from(k.link));
    w.u32(k.system_only);
    match &k.security {
        None => w.u8(0),
        Some(sd) => {
            w.u8(1);
            w.bytes("security descriptor", sd)?;
        }
    }
    w.count("value list", k.values.len())?;
    for (name, value) in &k.values {
        w.str("value name", name)?;
        w.u32(value.ty.0);
        w.bytes("value data", &value.data)?;
    }
    w.count("subkey list", k.subkeys.len())?;
    for sub in &k.subkeys {
        put_key(w, sub, depth + 1)?;
    }
    Ok(())
}

fn get_key(r: &mut Reader<'_>, depth: usize) -> Result<KeyImage, CodecError> {
    if depth > MAX_DEPTH {
        return Err(malformed(r.pos, format!("keys nested deeper than {MAX_DEPTH}")));
    }
    let name = r.string("key name")?;
    let class = r.opt_string("class name")?;
    let last_write = r.u64("last write time")?;
    let link = r.flag("link flag")?;
    let system_only = r.u32("system-only rights")?;
    let security =
        if r.flag("security descriptor flag")? { Some(r.bytes("security descriptor")?.into()) } else { None };
    let value_count = r.u32("value count")?;
    // No capacity from the claimed count: each entry must first prove it is really there.
    let mut values = Vec::new();
    for _ in 0..value_count {
        let name = r.string("value name")?;
        let ty = ValueType(r.u32("value type")?);
        values.push((name, Value::new(ty, r.bytes("value data")?)));
    }
    let subkey_count = r.u32("subkey count")?;
    let mut subkeys = Vec::new();
    for _ in 0..subkey_count {
        subkeys.push(get_key(r, depth + 1)?);
    }
    Ok(KeyImage { name, class, last_write, link, system_only, security, values, subkeys })
}

fn malformed(offset: usize, reason: String) -> CodecError {
    CodecError::Malformed { offset: offset as u64, reason }
}

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    fn count(&mut self, what: &'static str, len: usize) -> Result<(), CodecError> {
        let n = u32::try_from(len).map_err(|_| CodecError::TooLong { what, len })?;
        self.u32(n);
        Ok(())
    }

    fn bytes(&mut self, what: &'static str, b: &[u8]) -> Result<(), CodecError> {
        self.count(what, b.len())?;
        self.0.extend_from_slice(b);
        Ok(())
    }

    fn str(&mut self, what: &'static str, s: &str) -> Result<(), CodecError> {
        self.bytes(what, s.as_bytes())
    }

    fn opt_str(&mut self, what: &'static str, s: Option<&str>) -> Result<(), CodecError> {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(what, s)?;
            }
        }
        Ok(())
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], CodecError> {
        let left = self.buf.len() - self.pos;
        if n > left {
            return Err(malformed(self.pos, format!("{what} needs {n} bytes but only {left} remain")));
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], CodecError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, CodecError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u32(&mut self, what: &str) -> Result<u32, CodecError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, CodecError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn flag(&mut self, what: &str) -> Result<bool, CodecError> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(malformed(at, format!("{what} is {b}, not 0 or 1"))),
        }
    }

    fn bytes(&mut self, what: &str) -> Result<Vec<u8>, CodecError> {
        let len = self.u32(what)? as usize;
        Ok(self.take(len, what)?.to_vec())
    }

    fn string(&mut self, what: &str) -> Result<String, CodecError> {
        let len = self.u32(what)? as usize;
        let at = self.pos;
        let raw = self.take(len, what)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|e| malformed(at + e.valid_up_to(), format!("{what} is not valid UTF-8")))
    }

    fn opt_string(&mut self, what: &str) -> Result<Option<String>, CodecError> {
        let at = self.pos;
        match self.u8(what)? {
            0 => Ok(None),
            1 => self.string(what).map(Some),
            b => Err(malformed(at, format!("{what} presence tag is {b}, not 0 or 1"))),
        }
    }

    fn finish(&self) -> Result<(), CodecError> {
        let left = self.buf.len() - self.pos;
        if left != 0 {
            return Err(malformed(self.pos, format!("{left} unexpected bytes after the end")));
        }
        Ok(())
    }
}
