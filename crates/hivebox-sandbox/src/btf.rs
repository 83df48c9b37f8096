//! The kernel's type information (BTF, `/sys/kernel/btf/vmlinux`), read just far enough to
//! build the host-access programs (`crate::hostaccess`): the id of an LSM hook's function, its
//! parameters, and the byte offset and type of a struct member.
//!
//! Layout (the kernel's `Documentation/bpf/btf.rst`): a header, then a type section and a
//! string section at offsets the header gives (relative to the header's end). The type
//! section is a sequence of records, type id 1 first: 12 bytes (name offset, info word, size
//! or type) followed by kind-specific data whose length depends on the kind and, for most
//! kinds, the record's `vlen`. There is no index, so every record is walked once at parse
//! time. The byte order is the kernel's; the magic number tells which it is.
//!
//! The parser trusts nothing it reads (`fuzz/fuzz_targets/btf.rs`): every offset is checked,
//! a malformed file is an error, and lookups through type references are bounded, so a cycle
//! in a crafted file ends them instead of looping.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where the running kernel publishes its BTF.
pub const VMLINUX: &str = "/sys/kernel/btf/vmlinux";

const MAGIC: u16 = 0xeb9f;
const VERSION: u8 = 1;
// Header fields (bytes from the start of the file).
const HDR_MAGIC: usize = 0;
const HDR_VERSION: usize = 2;
const HDR_LEN: usize = 4;
const HDR_TYPE_OFF: usize = 8;
const HDR_TYPE_LEN: usize = 12;
const HDR_STR_OFF: usize = 16;
const HDR_STR_LEN: usize = 20;
/// The header's size up to the last field read.
const HDR_MIN: usize = 24;
/// A type record before its kind-specific data: `name_off`, `info`, `size`/`type`.
const RECORD: usize = 12;
/// How many references (typedefs, qualifiers, nested anonymous members) a lookup follows.
const MAX_CHAIN: usize = 32;

/// A type id (1 and up; 0 is `void`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TypeId(pub u32);

/// A BTF kind (the `info` word's bits 24-28).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// An integer; 4 bytes of encoding follow.
    Int,
    /// A pointer to `type`.
    Ptr,
    /// An array; a 12-byte `btf_array` follows.
    Array,
    /// A struct; `vlen` 12-byte members follow.
    Struct,
    /// A union; `vlen` 12-byte members follow.
    Union,
    /// An enum; `vlen` 8-byte values follow.
    Enum,
    /// A forward declaration.
    Fwd,
    /// A typedef of `type`.
    Typedef,
    /// `volatile type`.
    Volatile,
    /// `const type`.
    Const,
    /// `restrict type`.
    Restrict,
    /// A function; `type` is its prototype.
    Func,
    /// A function prototype; `type` is the return type, `vlen` 8-byte parameters follow.
    FuncProto,
    /// A variable; 4 bytes of linkage follow.
    Var,
    /// A data section; `vlen` 12-byte variables follow.
    Datasec,
    /// A floating-point type.
    Float,
    /// A declaration tag; 4 bytes (component index) follow.
    DeclTag,
    /// A type tag (`__rcu`, `__user`, ...) on `type`.
    TypeTag,
    /// A 64-bit enum; `vlen` 12-byte values follow.
    Enum64,
}

impl Kind {
    fn from_raw(k: u32) -> Option<Kind> {
        Some(match k {
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// Bytes of kind-specific data after the record.
    fn trailing(self, vlen: usize) -> usize {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            Kind::Ptr
            | Kind::Fwd
            | Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::Func
            | Kind::Float
            | Kind::TypeTag => 0,
        }
    }
}

/// Why BTF could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BtfError {
    /// The file could not be read.
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        error: std::io::Error,
    },
    /// The magic number is not BTF's in either byte order.
    #[error("not BTF: magic {0:#06x}")]
    Magic(u16),
    /// A version this parser does not know.
    #[error("BTF version {0} is not supported (only {VERSION})")]
    Version(u8),
    /// Something ends past the end of the data.
    #[error("truncated BTF: {what} at byte {offset}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Where it starts.
        offset: usize,
    },
    /// A type record of a kind this parser does not know: its length is unknown, so
    /// nothing after it can be read.
    #[error("BTF type {id} has unknown kind {kind}")]
    UnknownKind {
        /// The type id.
        id: u32,
        /// The raw kind.
        kind: u32,
    },
}

/// A function parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// Its name (empty when unnamed).
    pub name: String,
    /// Its type.
    pub ty: TypeId,
}

/// A struct or union member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// Its offset from the start of the outermost struct looked in, in bits.
    pub bit_offset: u32,
    /// Its width in bits when it is a bitfield, else 0.
    pub bitfield_size: u32,
    /// Its type.
    pub ty: TypeId,
}

impl Member {
    /// Its offset in bytes, unless it is a bitfield or not byte-aligned.
    pub fn byte_offset(&self) -> Option<u32> {
        (self.bitfield_size == 0 && self.bit_offset.is_multiple_of(8)).then_some(self.bit_offset / 8)
    }
}

/// Parsed BTF: the data and where each type record starts.
#[derive(Debug)]
pub struct Btf {
    data: Vec<u8>,
    big_endian: bool,
    /// Offsets of the records of types 1, 2, ... in `data`.
    types: Vec<usize>,
    strings: Range<usize>,
}

fn slice(data: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    data.get(at..at.checked_add(len)?)
}

impl Btf {
    /// Reads and parses the running kernel's BTF ([`VMLINUX`]).
    pub fn kernel() -> Result<Btf, BtfError> {
        Btf::read(Path::new(VMLINUX))
    }

    /// Reads and parses a BTF file.
    pub fn read(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|error| BtfError::Read { path: path.to_owned(), error })?;
        Btf::parse(data)
    }

    /// Parses BTF data: checks the header and walks the type section once.
    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        let truncated = |what, offset| BtfError::Truncated { what, offset };
        let magic = slice(&data, HDR_MAGIC, 2).ok_or(truncated("header", 0))?;
        let big_endian = match [magic[0], magic[1]] {
            m if u16::from_le_bytes(m) == MAGIC => false,
            m if u16::from_be_bytes(m) == MAGIC => true,
            m => return Err(BtfError::Magic(u16::from_le_bytes(m))),
        };
        let mut btf = Btf { data, big_endian, types: Vec::new(), strings: 0..0 };
        let version = btf.data.get(HDR_VERSION).copied().ok_or(truncated("header", 0))?;
        if version != VERSION {
            return Err(BtfError::Version(version));
        }
        let field = |btf: &Btf, at| btf.u32_at(at).map(|v| v as usize).ok_or(truncated("header", 0));
        let hdr_len = field(&btf, HDR_LEN)?;
        if hdr_len < HDR_MIN || hdr_len > btf.data.len() {
            return Err(truncated("header", 0));
        }
        let section = |off: usize, len: usize, what| {
            let start = hdr_len.checked_add(off).ok_or(truncated(what, hdr_len))?;
            let end = start.checked_add(len).filter(|e| *e <= btf.data.len()).ok_or(truncated(what, start))?;
            Ok::<_, BtfError>(start..end)
        };
        let types = section(field(&btf, HDR_TYPE_OFF)?, field(&btf, HDR_TYPE_LEN)?, "type section")?;
        btf.strings = section(field(&btf, HDR_STR_OFF)?, field(&btf, HDR_STR_LEN)?, "string section")?;
        let mut at = types.start;
        while at < types.end {
            let id = btf.types.len() as u32 + 1;
            if at + RECORD > types.end {
                return Err(truncated("type record", at));
            }
            let info = btf.u32_at(at + 4).ok_or(truncated("type record", at))?;
            let raw = (info >> 24) & 0x1f;
            let kind = Kind::from_raw(raw).ok_or(BtfError::UnknownKind { id, kind: raw })?;
            let next = at + RECORD + kind.trailing((info & 0xffff) as usize);
            if next > types.end {
                return Err(truncated("type record", at));
            }
            btf.types.push(at);
            at = next;
        }
        Ok(btf)
    }

    fn u32_at(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = slice(&self.data, at, 4)?.try_into().ok()?;
        Some(if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) })
    }

    /// The number of types (the largest type id).
    pub fn len(&self) -> usize {
        self.types.len()
    }

    /// Whether there are no types.
    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    fn record(&self, id: TypeId) -> Option<usize> {
        self.types.get((id.0 as usize).checked_sub(1)?).copied()
    }

    fn info(&self, id: TypeId) -> Option<(Kind, usize, bool)> {
        let info = self.u32_at(self.record(id)? + 4)?;
        Some((Kind::from_raw((info >> 24) & 0x1f)?, (info & 0xffff) as usize, info >> 31 == 1))
    }

    /// The string at `off` in the string section (`None` if out of range or not UTF-8).
    fn string(&self, off: u32) -> Option<&str> {
        let s = self.data.get(self.strings.start.checked_add(off as usize)?..self.strings.end)?;
        let end = s.iter().position(|b| *b == 0)?;
        std::str::from_utf8(&s[..end]).ok()
    }

    /// A type's kind.
    pub fn kind(&self, id: TypeId) -> Option<Kind> {
        self.info(id).map(|(k, _, _)| k)
    }

    /// A type's name (empty for anonymous types).
    pub fn name(&self, id: TypeId) -> Option<&str> {
        self.string(self.u32_at(self.record(id)?)?)
    }

    /// The record's third word: the size of an int, struct or union, the referenced type of
    /// the others.
    fn size_or_type(&self, id: TypeId) -> Option<u32> {
        self.u32_at(self.record(id)? + 8)
    }

    /// The first type of `kind` named `name`.
    pub fn find(&self, kind: Kind, name: &str) -> Option<TypeId> {
        (1..=self.types.len() as u32).map(TypeId).find(|&id| self.kind(id) == Some(kind) && self.name(id) == Some(name))
    }

    /// The parameters of a function (a `FUNC`, whose type is its `FUNC_PROTO`) or prototype.
    pub fn params(&self, id: TypeId) -> Option<Vec<Param>> {
        let proto = match self.kind(id)? {
            Kind::Func => TypeId(self.size_or_type(id)?),
            _ => id,
        };
        let (kind, vlen, _) = self.info(proto)?;
        if kind != Kind::FuncProto {
            return None;
        }
        let first = self.record(proto)? + RECORD;
        (0..vlen)
            .map(|i| {
                let at = first + 8 * i;
                Some(Param { name: self.string(self.u32_at(at)?)?.to_owned(), ty: TypeId(self.u32_at(at + 4)?) })
            })
            .collect()
    }

    /// Member `name` of struct or union `id`, looking into anonymous struct and union members
    /// too (the kernel wraps some fields in them); its offset is from the start of `id`.
    pub fn member(&self, id: TypeId, name: &str) -> Option<Member> {
        self.member_within(id, name, 0)
    }

    fn member_within(&self, id: TypeId, name: &str, depth: usize) -> Option<Member> {
        let (kind, vlen, kind_flag) = self.info(id)?;
        if !matches!(kind, Kind::Struct | Kind::Union) || depth > MAX_CHAIN {
            return None;
        }
        let first = self.record(id)? + RECORD;
        for i in 0..vlen {
            let at = first + 12 * i;
            let member_name = self.string(self.u32_at(at)?)?;
            let ty = TypeId(self.u32_at(at + 4)?);
            let raw = self.u32_at(at + 8)?;
            let (bit_offset, bitfield_size) = if kind_flag { (raw & 0xff_ffff, raw >> 24) } else { (raw, 0) };
            if member_name == name {
                return Some(Member { bit_offset, bitfield_size, ty });
            }
            if member_name.is_empty()
                && let Some(inner) = self.member_within(self.resolve(ty)?, name, depth + 1)
            {
                return Some(Member { bit_offset: bit_offset.checked_add(inner.bit_offset)?, ..inner });
            }
        }
        None
    }

    /// `id` with typedefs, qualifiers and type tags peeled off.
    pub fn resolve(&self, mut id: TypeId) -> Option<TypeId> {
        for _ in 0..MAX_CHAIN {
            match self.kind(id)? {
                Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag => {
                    id = TypeId(self.size_or_type(id)?);
                }
                _ => return Some(id),
            }
        }
        None
    }

    /// The type `id` points to (resolved), if `id` resolves to a pointer.
    pub fn pointee(&self, id: TypeId) -> Option<TypeId> {
        let ptr = self.resolve(id)?;
        if self.kind(ptr)? != Kind::Ptr {
            return None;
        }
        self.resolve(TypeId(self.size_or_type(ptr)?))
    }

    /// Whether `id` is a pointer to the struct named `name`.
    pub fn is_pointer_to_struct(&self, id: TypeId, name: &str) -> bool {
        self.pointee(id).is_some_and(|t| self.kind(t) == Some(Kind::Struct) && self.name(t) == Some(name))
    }

    /// The size in bytes of `id` if it resolves to an integer.
    pub fn int_size(&self, id: TypeId) -> Option<u32> {
        let id = self.resolve(id)?;
        (self.kind(id)? == Kind::Int).then(|| self.size_or_type(id)).flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian BTF blob from raw type records (each: name, info, size/type, trailing
    /// words) and a string section.
    fn blob(types: &[Vec<u32>], strings: &[u8]) -> Vec<u8> {
        let type_bytes: Vec<u8> = types.iter().flatten().flat_map(|w| w.to_le_bytes()).collect();
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&[VERSION, 0]);
        for w in [HDR_MIN as u32, 0, type_bytes.len() as u32, type_bytes.len() as u32, strings.len() as u32] {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out.extend_from_slice(&type_bytes);
        out.extend_from_slice(strings);
        out
    }

    fn info(kind: u32, vlen: u32) -> u32 {
        kind << 24 | vlen
    }

    #[test]
    fn a_small_blob_is_walked_and_looked_into() {
        // Strings: 0 "", 1 "int", 5 "s", 7 "a", 9 "b", 11 "f", 13 "x".
        let strings = b"\0int\0s\0a\0b\0f\0x\0";
        let types = vec![
            vec![1, info(1, 0), 4, 32],                 // 1: int (4 bytes)
            vec![0, info(2, 0), 1],                     // 2: int *
            vec![0, info(4, 1), 8, 9, 2, 0],            // 3: anonymous struct { int *b; }
            vec![5, info(4, 2), 16, 7, 1, 0, 0, 3, 64], // 4: struct s { int a; struct { int *b; }; }
            vec![0, info(13, 1), 1, 13, 2],             // 5: int (int *x)
            vec![11, info(12, 0), 5],                   // 6: f
            vec![0, info(8, 0), 4],                     // 7: anonymous typedef of s
        ];
        let btf = Btf::parse(blob(&types, strings)).unwrap();
        assert_eq!(btf.len(), 7);
        let s = btf.find(Kind::Struct, "s").unwrap();
        assert_eq!(s, TypeId(4));
        assert_eq!(btf.member(s, "a").unwrap().byte_offset(), Some(0));
        let b = btf.member(s, "b").unwrap();
        assert_eq!(b.byte_offset(), Some(8), "b is found through the anonymous member");
        assert_eq!(btf.int_size(btf.pointee(b.ty).unwrap()), Some(4));
        let f = btf.find(Kind::Func, "f").unwrap();
        assert_eq!(btf.params(f).unwrap(), vec![Param { name: "x".into(), ty: TypeId(2) }]);
        assert_eq!(btf.resolve(TypeId(7)), Some(s));
        assert_eq!(btf.member(s, "c"), None);
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        assert!(matches!(Btf::parse(vec![]), Err(BtfError::Truncated { .. })));
        assert!(matches!(Btf::parse(vec![0x12, 0x34, 1, 0]), Err(BtfError::Magic(_))));
        let mut b = blob(&[vec![0, info(1, 0), 4, 32]], b"\0");
        b.truncate(b.len() - 3);
        assert!(Btf::parse(b).is_err());
        let unknown = blob(&[vec![0, info(31, 0), 0]], b"\0");
        assert!(matches!(Btf::parse(unknown), Err(BtfError::UnknownKind { id: 1, kind: 31 })));
        // A typedef cycle ends the lookup instead of looping.
        let cycle = Btf::parse(blob(&[vec![0, info(8, 0), 2], vec![0, info(8, 0), 1]], b"\0")).unwrap();
        assert_eq!(cycle.resolve(TypeId(1)), None);
    }

    #[test]
    fn the_kernels_btf_has_what_the_host_access_programs_use() {
        let btf = Btf::kernel().expect("the kernel's BTF (CONFIG_DEBUG_INFO_BTF) at /sys/kernel/btf/vmlinux");
        assert!(btf.len() > 10_000, "{} types", btf.len());
        let task = btf.find(Kind::Struct, "task_struct").unwrap();
        let cgroups = btf.member(task, "cgroups").unwrap();
        assert!(btf.is_pointer_to_struct(cgroups.ty, "css_set"));
        assert!(cgroups.byte_offset().unwrap() > 0);
        let tgid = btf.member(task, "tgid").unwrap();
        assert_eq!(btf.int_size(tgid.ty), Some(4));
        let kn = btf.find(Kind::Struct, "kernfs_node").unwrap();
        assert_eq!(btf.int_size(btf.member(kn, "id").unwrap().ty), Some(8));
        let cgroup = btf.find(Kind::Struct, "cgroup").unwrap();
        assert_eq!(btf.member(cgroup, "self").unwrap().byte_offset(), Some(0));
        for (func, params) in [
            ("bpf_lsm_ptrace_access_check", &["child", "mode"][..]),
            ("bpf_lsm_task_kill", &["p", "info", "sig", "cred"][..]),
        ] {
            let id = btf.find(Kind::Func, func).unwrap_or_else(|| panic!("{func}: is CONFIG_BPF_LSM set?"));
            let names: Vec<String> = btf.params(id).unwrap().into_iter().map(|p| p.name).collect();
            assert_eq!(names, params, "{func}");
        }
    }
}
