//! WdFilter's `RegOperationMessage`: what its registry filter tells the user-mode service about
//! one registry operation, as a little-endian x64 byte layout.
//!
//! The header is WdFilter's (n4r1b's reconstruction of WdFilter 4.18.1910.4, see
//! `reference/cm-callbacks.md` section 4.6), laid out with natural x64 alignment, which here
//! needs no padding: `sizeof(RegOperationMessage)` is [`HEADER_LEN`] = 0x88.
//!
//! | Offset | Size | C field                               | Rust field                       |
//! |-------:|-----:|---------------------------------------|----------------------------------|
//! | 0x00   | 8    | `INT64 OffsetKeyName`                 | `key_name`                       |
//! | 0x08   | 8    | `INT64 OffsetValueName`               | `value_name`                     |
//! | 0x10   | 8    | `INT64 OffsetNewKeyName`              | `new_key_name`                   |
//! | 0x18   | 8    | `INT64 OffsetOldFileName`             | `old_file_name`                  |
//! | 0x20   | 8    | `INT64 OffsetNewFileName`             | `new_file_name`                  |
//! | 0x28   | 8    | `HANDLE Process.Pid`                  | `pid`                            |
//! | 0x30   | 8    | `LARGE_INTEGER Process.CreationTime`  | `creation_time`                  |
//! | 0x38   | 8    | `HANDLE ThreadId`                     | `thread_id`                      |
//! | 0x40   | 4    | `DWORD SessionId`                     | `session_id`                     |
//! | 0x44   | 4    | `ULONG FinalKeyRules`                 | `final_key_rules`                |
//! | 0x48   | 4    | `ULONG NewValueType`                  | `new_value.0`                    |
//! | 0x4C   | 4    | `ULONG BufferNewValueDataLen`         | `new_value.1.len()`              |
//! | 0x50   | 8    | `INT64 OffsetNewValueData`            | `new_value.1`                    |
//! | 0x58   | 4    | `ULONG ValueType`                     | `value.0`                        |
//! | 0x5C   | 4    | `ULONG BufferValueDataLen`            | `value.1.len()`                  |
//! | 0x60   | 8    | `INT64 OffsetValueData`               | `value.1`                        |
//! | 0x68   | 4    | `ULONG RegRestoreFlags`               | `restore_flags`                  |
//! | 0x6C   | 16   | `GUID TransactionId` (4-aligned)      | `transaction_id`                 |
//! | 0x7C   | 4    | `INT HashesCount`                     | `hashes.len()`                   |
//! | 0x80   | 8    | `INT64 OffsetHashesArray`             | `hashes`                         |
//! | 0x88   |      | end of the header, variable data next |                                  |
//!
//! The variable data follows the header. Every `Offset*` field counts from the start of the
//! message; 0 means absent. Value data is `Buffer*DataLen` raw bytes; the hash array is
//! `HashesCount` × 16 bytes; `TransactionId` is the GUID's 16 bytes as they lie in memory.
//! The blog does not say how a string's length is carried, so **hivebox's choice** (the header
//! is WdFilter's) is a `u16` byte length followed by that many bytes of UTF-16LE, the
//! `Length` of the `UNICODE_STRING` the string came from. The encoder starts each item at a
//! multiple of 8 (zero padding) in field order; the decoder accepts any placement outside the
//! header, as a reader of the C structure would.
//!
//! A message is sent wrapped in an `AsyncMessageData` header ([`ASYNC_HEADER_LEN`] = 0x18;
//! the widths are hivebox's choice, the blog names only the fields):
//!
//! | Offset | Size | C field                      | hivebox writes                                   |
//! |-------:|-----:|------------------------------|--------------------------------------------------|
//! | 0x00   | 2    | `USHORT Magic`               | [`MESSAGE_MAGIC`] (hivebox's, `"hb"`)            |
//! | 0x02   | 2    | `USHORT Size`                | [`ASYNC_HEADER_LEN`]                             |
//! | 0x04   | 4    | `ULONG NotificationNumber`   | the caller's sequence number                     |
//! | 0x08   | 4    | `ULONG SizeOfData`           | bytes of the `RegOperationMessage` with its data |
//! | 0x0C   | 4    | `LONG RefCount`              | 1 (kernel bookkeeping; ignored when decoding)    |
//! | 0x10   | 4    | `ULONG TypeOfOperation`      | RegistryEvent (1), or RegistryEventSync (2)      |
//! | 0x14   | 4    | padding (the union is 8-aligned) | zero                                         |
//! | 0x18   |      | `RegOperationMessage`        | offsets inside it count from here                |
//!
//! WdFilter's synchronous path uses a 0x30-byte header of its own; hivebox uses the one header
//! above for both and tells them apart by `TypeOfOperation` only.
//!
//! Decoding never panics: every read is bounds-checked and every failure is a
//! [`MessageError`] naming the field and the offset.

use std::fmt;

/// `sizeof(RegOperationMessage)` on x64: the fixed header before the variable data.
pub const HEADER_LEN: usize = 0x88;

/// The length of the `AsyncMessageData` header before the `RegOperationMessage`.
pub const ASYNC_HEADER_LEN: usize = 0x18;

/// `AsyncMessageData.Magic` as hivebox writes it: the bytes `"hb"` (hivebox's own value).
pub const MESSAGE_MAGIC: u16 = u16::from_le_bytes(*b"hb");

/// `TypeOfOperation` of an asynchronous registry notification (WdFilter's `RegistryEvent`).
pub const REGISTRY_EVENT: u32 = 1;

/// `TypeOfOperation` of a synchronous registry notification (WdFilter's `RegistryEventSync`).
pub const REGISTRY_EVENT_SYNC: u32 = 2;

/// The largest string in bytes: a `UNICODE_STRING`'s `Length` is a `USHORT`, and even.
const MAX_STRING_BYTES: usize = 0xFFFE;

/// Bytes per hash in the hash array.
const HASH_LEN: usize = 16;

const OFF_KEY_NAME: usize = 0x00;
const OFF_VALUE_NAME: usize = 0x08;
const OFF_NEW_KEY_NAME: usize = 0x10;
const OFF_OLD_FILE_NAME: usize = 0x18;
const OFF_NEW_FILE_NAME: usize = 0x20;
const OFF_PID: usize = 0x28;
const OFF_CREATION_TIME: usize = 0x30;
const OFF_THREAD_ID: usize = 0x38;
const OFF_SESSION_ID: usize = 0x40;
const OFF_FINAL_KEY_RULES: usize = 0x44;
const OFF_NEW_VALUE_TYPE: usize = 0x48;
const OFF_NEW_VALUE_LEN: usize = 0x4C;
const OFF_NEW_VALUE_DATA: usize = 0x50;
const OFF_VALUE_TYPE: usize = 0x58;
const OFF_VALUE_LEN: usize = 0x5C;
const OFF_VALUE_DATA: usize = 0x60;
const OFF_RESTORE_FLAGS: usize = 0x68;
const OFF_TRANSACTION_ID: usize = 0x6C;
const OFF_HASHES_COUNT: usize = 0x7C;
const OFF_HASHES_ARRAY: usize = 0x80;

/// Every header field: name, offset, size (in order, contiguous, ending at [`HEADER_LEN`]).
const HEADER_FIELDS: [(Field, usize, usize); 20] = [
    (Field::KeyName, OFF_KEY_NAME, 8),
    (Field::ValueName, OFF_VALUE_NAME, 8),
    (Field::NewKeyName, OFF_NEW_KEY_NAME, 8),
    (Field::OldFileName, OFF_OLD_FILE_NAME, 8),
    (Field::NewFileName, OFF_NEW_FILE_NAME, 8),
    (Field::Pid, OFF_PID, 8),
    (Field::CreationTime, OFF_CREATION_TIME, 8),
    (Field::ThreadId, OFF_THREAD_ID, 8),
    (Field::SessionId, OFF_SESSION_ID, 4),
    (Field::FinalKeyRules, OFF_FINAL_KEY_RULES, 4),
    (Field::NewValueType, OFF_NEW_VALUE_TYPE, 4),
    (Field::NewValueDataLen, OFF_NEW_VALUE_LEN, 4),
    (Field::NewValueData, OFF_NEW_VALUE_DATA, 8),
    (Field::ValueType, OFF_VALUE_TYPE, 4),
    (Field::ValueDataLen, OFF_VALUE_LEN, 4),
    (Field::ValueData, OFF_VALUE_DATA, 8),
    (Field::RestoreFlags, OFF_RESTORE_FLAGS, 4),
    (Field::TransactionId, OFF_TRANSACTION_ID, 16),
    (Field::HashesCount, OFF_HASHES_COUNT, 4),
    (Field::HashesArray, OFF_HASHES_ARRAY, 8),
];

const OFF_MAGIC: usize = 0x00;
const OFF_SIZE: usize = 0x02;
const OFF_NOTIFICATION_NUMBER: usize = 0x04;
const OFF_SIZE_OF_DATA: usize = 0x08;
const OFF_REF_COUNT: usize = 0x0C;
const OFF_TYPE_OF_OPERATION: usize = 0x10;

/// One registry operation as WdFilter reports it to its service.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RegOperationMessage {
    /// The key's full name.
    pub key_name: Option<String>,
    /// The value's name (value operations).
    pub value_name: Option<String>,
    /// The new name (rename).
    pub new_key_name: Option<String>,
    /// The file the hive's current contents are kept in (replace).
    pub old_file_name: Option<String>,
    /// The file loaded, restored from, or staged (load, restore, replace).
    pub new_file_name: Option<String>,
    /// `Process.Pid`.
    pub pid: u64,
    /// `Process.CreationTime` (a FILETIME).
    pub creation_time: i64,
    /// The calling thread.
    pub thread_id: u64,
    /// The caller's session.
    pub session_id: u32,
    /// The rules that matched the key (`MP_REG_RULES`).
    pub final_key_rules: u32,
    /// The value being set: type and data.
    pub new_value: Option<(u32, Vec<u8>)>,
    /// The value as it was: type and data.
    pub value: Option<(u32, Vec<u8>)>,
    /// `REG_*` restore flags.
    pub restore_flags: u32,
    /// The transaction's GUID, as its 16 bytes lie in memory (all zero outside a transaction).
    pub transaction_id: [u8; 16],
    /// Hashes (16 bytes each) of the matched rules.
    pub hashes: Vec<[u8; 16]>,
}

/// A [`RegOperationMessage`] unwrapped from its `AsyncMessageData` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncMessage {
    /// `NotificationNumber`.
    pub notification_number: u32,
    /// `TypeOfOperation` is RegistryEventSync rather than RegistryEvent.
    pub sync: bool,
    /// The message.
    pub message: RegOperationMessage,
}

/// A field of the message, or of its `AsyncMessageData` header, by its C name. A string, data
/// or array is named by the `Offset*` field that points to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // Each variant is the C field its `name` gives.
pub enum Field {
    KeyName,
    ValueName,
    NewKeyName,
    OldFileName,
    NewFileName,
    Pid,
    CreationTime,
    ThreadId,
    SessionId,
    FinalKeyRules,
    NewValueType,
    NewValueDataLen,
    NewValueData,
    ValueType,
    ValueDataLen,
    ValueData,
    RestoreFlags,
    TransactionId,
    HashesCount,
    HashesArray,
    Magic,
    Size,
    NotificationNumber,
    SizeOfData,
    RefCount,
    TypeOfOperation,
    /// The 4 bytes between `TypeOfOperation` and the message.
    Padding,
}

impl Field {
    /// The field's C name.
    pub fn name(self) -> &'static str {
        match self {
            Field::KeyName => "OffsetKeyName",
            Field::ValueName => "OffsetValueName",
            Field::NewKeyName => "OffsetNewKeyName",
            Field::OldFileName => "OffsetOldFileName",
            Field::NewFileName => "OffsetNewFileName",
            Field::Pid => "Process.Pid",
            Field::CreationTime => "Process.CreationTime",
            Field::ThreadId => "ThreadId",
            Field::SessionId => "SessionId",
            Field::FinalKeyRules => "FinalKeyRules",
            Field::NewValueType => "NewValueType",
            Field::NewValueDataLen => "BufferNewValueDataLen",
            Field::NewValueData => "OffsetNewValueData",
            Field::ValueType => "ValueType",
            Field::ValueDataLen => "BufferValueDataLen",
            Field::ValueData => "OffsetValueData",
            Field::RestoreFlags => "RegRestoreFlags",
            Field::TransactionId => "TransactionId",
            Field::HashesCount => "HashesCount",
            Field::HashesArray => "OffsetHashesArray",
            Field::Magic => "Magic",
            Field::Size => "Size",
            Field::NotificationNumber => "NotificationNumber",
            Field::SizeOfData => "SizeOfData",
            Field::RefCount => "RefCount",
            Field::TypeOfOperation => "TypeOfOperation",
            Field::Padding => "padding",
        }
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A message that does not decode, or cannot be encoded. Offsets are bytes from the start of
/// the buffer being decoded (for [`RegOperationMessage::decode_async`], errors inside the
/// wrapped message count from the start of that message, [`ASYNC_HEADER_LEN`] bytes in).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MessageError {
    /// The bytes end inside a field or the data it points to.
    #[error("{field}: {needed} bytes at offset {offset} run past the end of the {len}-byte message")]
    Truncated {
        /// The field.
        field: Field,
        /// Where its bytes start.
        offset: u64,
        /// How many bytes it needs there.
        needed: u64,
        /// The message's length.
        len: u64,
    },
    /// An offset is negative or beyond the end of the message.
    #[error("{field}: offset {offset} is outside the {len}-byte message")]
    OffsetOutOfRange {
        /// The offset field.
        field: Field,
        /// Its value.
        offset: i64,
        /// The message's length.
        len: u64,
    },
    /// An offset points into the fixed header.
    #[error("{field}: offset {offset} points into the {HEADER_LEN}-byte header")]
    OverlapsHeader {
        /// The offset field.
        field: Field,
        /// Its value.
        offset: i64,
    },
    /// A string's byte length is odd, so it is not UTF-16.
    #[error("{field}: the string at offset {offset} has an odd byte length {len}")]
    OddUtf16Length {
        /// The offset field.
        field: Field,
        /// Where the string (its length) starts.
        offset: u64,
        /// The length.
        len: u16,
    },
    /// A string holds a surrogate without its pair.
    #[error("{field}: unpaired surrogate {unit:#06x} at offset {offset}")]
    UnpairedSurrogate {
        /// The offset field.
        field: Field,
        /// Where the code unit is.
        offset: u64,
        /// The code unit.
        unit: u16,
    },
    /// A length or count does not fit its field (encoding), or overflows the offsets (decoding).
    #[error("{field}: length {len} is beyond the limit {max}")]
    LengthOverflow {
        /// The field.
        field: Field,
        /// The length or count.
        len: u64,
        /// The most the field can carry.
        max: u64,
    },
    /// `HashesCount` is negative.
    #[error("{field}: negative count {count}")]
    NegativeCount {
        /// The count field.
        field: Field,
        /// Its value.
        count: i32,
    },
    /// A type, length or count describes data whose offset is 0 (absent).
    #[error("{field} is 0 (absent) but its type or length is not: type {value_type}, length {len}")]
    DataWithoutOffset {
        /// The offset field.
        field: Field,
        /// The type given with it (0 for the hash array).
        value_type: u32,
        /// The length or count given with it.
        len: u64,
    },
    /// A header field holds a value other than the one it must hold.
    #[error("{field} at offset {offset} is {found:#x}, expected {expected:#x}")]
    Mismatch {
        /// The field.
        field: Field,
        /// Where it is.
        offset: u64,
        /// Its value.
        found: u64,
        /// The value it must have.
        expected: u64,
    },
    /// `TypeOfOperation` is neither RegistryEvent nor RegistryEventSync.
    #[error("{field} at offset {offset} is {found}, not a registry notification (1 or 2)")]
    UnknownType {
        /// The field.
        field: Field,
        /// Where it is.
        offset: u64,
        /// Its value.
        found: u32,
    },
}

/// Bounds-checked little-endian reads from a message.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn bytes(&self, field: Field, offset: usize, needed: usize) -> Result<&[u8], MessageError> {
        offset.checked_add(needed).and_then(|end| self.0.get(offset..end)).ok_or(MessageError::Truncated {
            field,
            offset: offset as u64,
            needed: needed as u64,
            len: self.len(),
        })
    }

    fn array<const N: usize>(&self, field: Field, offset: usize) -> Result<[u8; N], MessageError> {
        let mut out = [0; N];
        out.copy_from_slice(self.bytes(field, offset, N)?);
        Ok(out)
    }

    fn u16(&self, field: Field, offset: usize) -> Result<u16, MessageError> {
        self.array(field, offset).map(u16::from_le_bytes)
    }

    fn u32(&self, field: Field, offset: usize) -> Result<u32, MessageError> {
        self.array(field, offset).map(u32::from_le_bytes)
    }

    fn i32(&self, field: Field, offset: usize) -> Result<i32, MessageError> {
        self.array(field, offset).map(i32::from_le_bytes)
    }

    fn u64(&self, field: Field, offset: usize) -> Result<u64, MessageError> {
        self.array(field, offset).map(u64::from_le_bytes)
    }

    fn i64(&self, field: Field, offset: usize) -> Result<i64, MessageError> {
        self.array(field, offset).map(i64::from_le_bytes)
    }

    /// Where the item an offset field (at `at`) points to starts: `None` for offset 0.
    fn target(&self, field: Field, at: usize) -> Result<Option<usize>, MessageError> {
        let offset = self.i64(field, at)?;
        if offset == 0 {
            return Ok(None);
        }
        let out_of_range = MessageError::OffsetOutOfRange { field, offset, len: self.len() };
        let start = usize::try_from(offset).map_err(|_| out_of_range.clone())?;
        if start < HEADER_LEN {
            return Err(MessageError::OverlapsHeader { field, offset });
        }
        if start > self.0.len() {
            return Err(out_of_range);
        }
        Ok(Some(start))
    }

    fn string(&self, field: Field, at: usize) -> Result<Option<String>, MessageError> {
        let Some(start) = self.target(field, at)? else { return Ok(None) };
        let len = self.u16(field, start)?;
        if len % 2 != 0 {
            return Err(MessageError::OddUtf16Length { field, offset: start as u64, len });
        }
        let body = start + 2;
        let units =
            self.bytes(field, body, usize::from(len))?.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
        let mut out = String::with_capacity(usize::from(len) / 2);
        let mut at_unit = body;
        for c in char::decode_utf16(units) {
            match c {
                Ok(c) => {
                    out.push(c);
                    at_unit += c.len_utf16() * 2;
                }
                Err(e) => {
                    let unit = e.unpaired_surrogate();
                    return Err(MessageError::UnpairedSurrogate { field, offset: at_unit as u64, unit });
                }
            }
        }
        Ok(Some(out))
    }

    /// A value's type and data: the type at `type_at`, the length at `len_at`, the offset at `at`.
    fn data(
        &self,
        (type_field, type_at): (Field, usize),
        (len_field, len_at): (Field, usize),
        (field, at): (Field, usize),
    ) -> Result<Option<(u32, Vec<u8>)>, MessageError> {
        let value_type = self.u32(type_field, type_at)?;
        let len = self.u32(len_field, len_at)?;
        let Some(start) = self.target(field, at)? else {
            if value_type != 0 || len != 0 {
                return Err(MessageError::DataWithoutOffset { field, value_type, len: u64::from(len) });
            }
            return Ok(None);
        };
        let len = usize::try_from(len).map_err(|_| MessageError::LengthOverflow {
            field,
            len: u64::from(len),
            max: usize::MAX as u64,
        })?;
        Ok(Some((value_type, self.bytes(field, start, len)?.to_vec())))
    }

    fn hashes(&self) -> Result<Vec<[u8; 16]>, MessageError> {
        let count = self.i32(Field::HashesCount, OFF_HASHES_COUNT)?;
        let field = Field::HashesArray;
        let start = self.target(field, OFF_HASHES_ARRAY)?;
        let count =
            usize::try_from(count).map_err(|_| MessageError::NegativeCount { field: Field::HashesCount, count })?;
        let Some(start) = start else {
            if count != 0 {
                return Err(MessageError::DataWithoutOffset { field, value_type: 0, len: count as u64 });
            }
            return Ok(Vec::new());
        };
        let len = count.checked_mul(HASH_LEN).ok_or(MessageError::LengthOverflow {
            field: Field::HashesCount,
            len: count as u64,
            max: (usize::MAX / HASH_LEN) as u64,
        })?;
        let bytes = self.bytes(field, start, len)?;
        Ok(bytes
            .chunks_exact(HASH_LEN)
            .map(|c| {
                let mut h = [0; HASH_LEN];
                h.copy_from_slice(c);
                h
            })
            .collect())
    }
}

/// Builds a message: the header, then items appended at multiples of 8.
struct Writer(Vec<u8>);

impl Writer {
    fn put(&mut self, offset: usize, bytes: &[u8]) {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// Appends `item` at the next multiple of 8 and stores its offset at `at`.
    fn append(&mut self, at: usize, item: &[&[u8]]) {
        let start = self.0.len().next_multiple_of(8);
        self.0.resize(start, 0);
        for part in item {
            self.0.extend_from_slice(part);
        }
        self.put(at, &(start as i64).to_le_bytes());
    }

    fn string(&mut self, field: Field, at: usize, s: &Option<String>) -> Result<(), MessageError> {
        let Some(s) = s else { return Ok(()) };
        let bytes: Vec<u8> = s.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let len = u16::try_from(bytes.len())
            .ok()
            .filter(|l| usize::from(*l) <= MAX_STRING_BYTES)
            .ok_or(MessageError::LengthOverflow { field, len: bytes.len() as u64, max: MAX_STRING_BYTES as u64 })?;
        self.append(at, &[&len.to_le_bytes(), &bytes]);
        Ok(())
    }

    fn data(
        &mut self,
        (type_at, len_at, field, at): (usize, usize, Field, usize),
        value: &Option<(u32, Vec<u8>)>,
    ) -> Result<(), MessageError> {
        let Some((value_type, data)) = value else { return Ok(()) };
        let len = u32::try_from(data.len()).map_err(|_| MessageError::LengthOverflow {
            field,
            len: data.len() as u64,
            max: u64::from(u32::MAX),
        })?;
        self.put(type_at, &value_type.to_le_bytes());
        self.put(len_at, &len.to_le_bytes());
        self.append(at, &[data]);
        Ok(())
    }
}

impl RegOperationMessage {
    /// The message's bytes: the header, then the strings, the new and old value data and the
    /// hash array, each at a multiple of 8. Fails only for a string longer than a
    /// `UNICODE_STRING` can be (0xFFFE bytes), value data of 4 GiB or more, or more than
    /// `i32::MAX` hashes.
    pub fn encode(&self) -> Result<Vec<u8>, MessageError> {
        let mut w = Writer(vec![0; HEADER_LEN]);
        w.put(OFF_PID, &self.pid.to_le_bytes());
        w.put(OFF_CREATION_TIME, &self.creation_time.to_le_bytes());
        w.put(OFF_THREAD_ID, &self.thread_id.to_le_bytes());
        w.put(OFF_SESSION_ID, &self.session_id.to_le_bytes());
        w.put(OFF_FINAL_KEY_RULES, &self.final_key_rules.to_le_bytes());
        w.put(OFF_RESTORE_FLAGS, &self.restore_flags.to_le_bytes());
        w.put(OFF_TRANSACTION_ID, &self.transaction_id);
        w.string(Field::KeyName, OFF_KEY_NAME, &self.key_name)?;
        w.string(Field::ValueName, OFF_VALUE_NAME, &self.value_name)?;
        w.string(Field::NewKeyName, OFF_NEW_KEY_NAME, &self.new_key_name)?;
        w.string(Field::OldFileName, OFF_OLD_FILE_NAME, &self.old_file_name)?;
        w.string(Field::NewFileName, OFF_NEW_FILE_NAME, &self.new_file_name)?;
        w.data((OFF_NEW_VALUE_TYPE, OFF_NEW_VALUE_LEN, Field::NewValueData, OFF_NEW_VALUE_DATA), &self.new_value)?;
        w.data((OFF_VALUE_TYPE, OFF_VALUE_LEN, Field::ValueData, OFF_VALUE_DATA), &self.value)?;
        if !self.hashes.is_empty() {
            let count = i32::try_from(self.hashes.len()).map_err(|_| MessageError::LengthOverflow {
                field: Field::HashesCount,
                len: self.hashes.len() as u64,
                max: i32::MAX as u64,
            })?;
            w.put(OFF_HASHES_COUNT, &count.to_le_bytes());
            let array: Vec<u8> = self.hashes.concat();
            w.append(OFF_HASHES_ARRAY, &[&array]);
        }
        Ok(w.0)
    }

    /// Reads a message from `bytes` (exactly the message: offsets count from `bytes[0]`).
    /// Bytes no offset points to are ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let r = Reader(bytes);
        // A short header is reported at the first field it cuts, before any offset is followed.
        if let Some(&(field, offset, size)) = HEADER_FIELDS.iter().find(|(_, off, size)| off + size > bytes.len()) {
            return Err(MessageError::Truncated { field, offset: offset as u64, needed: size as u64, len: r.len() });
        }
        Ok(Self {
            key_name: r.string(Field::KeyName, OFF_KEY_NAME)?,
            value_name: r.string(Field::ValueName, OFF_VALUE_NAME)?,
            new_key_name: r.string(Field::NewKeyName, OFF_NEW_KEY_NAME)?,
            old_file_name: r.string(Field::OldFileName, OFF_OLD_FILE_NAME)?,
            new_file_name: r.string(Field::NewFileName, OFF_NEW_FILE_NAME)?,
            pid: r.u64(Field::Pid, OFF_PID)?,
            creation_time: r.i64(Field::CreationTime, OFF_CREATION_TIME)?,
            thread_id: r.u64(Field::ThreadId, OFF_THREAD_ID)?,
            session_id: r.u32(Field::SessionId, OFF_SESSION_ID)?,
            final_key_rules: r.u32(Field::FinalKeyRules, OFF_FINAL_KEY_RULES)?,
            new_value: r.data(
                (Field::NewValueType, OFF_NEW_VALUE_TYPE),
                (Field::NewValueDataLen, OFF_NEW_VALUE_LEN),
                (Field::NewValueData, OFF_NEW_VALUE_DATA),
            )?,
            value: r.data(
                (Field::ValueType, OFF_VALUE_TYPE),
                (Field::ValueDataLen, OFF_VALUE_LEN),
                (Field::ValueData, OFF_VALUE_DATA),
            )?,
            restore_flags: r.u32(Field::RestoreFlags, OFF_RESTORE_FLAGS)?,
            transaction_id: r.array(Field::TransactionId, OFF_TRANSACTION_ID)?,
            hashes: r.hashes()?,
        })
    }

    /// The message wrapped in its `AsyncMessageData` header, as notification number
    /// `notification_number`, RegistryEventSync if `sync` else RegistryEvent.
    pub fn encode_async(&self, notification_number: u32, sync: bool) -> Result<Vec<u8>, MessageError> {
        let message = self.encode()?;
        let size = u32::try_from(message.len()).map_err(|_| MessageError::LengthOverflow {
            field: Field::SizeOfData,
            len: message.len() as u64,
            max: u64::from(u32::MAX),
        })?;
        let mut out = Writer(vec![0; ASYNC_HEADER_LEN]);
        out.put(OFF_MAGIC, &MESSAGE_MAGIC.to_le_bytes());
        out.put(OFF_SIZE, &(ASYNC_HEADER_LEN as u16).to_le_bytes());
        out.put(OFF_NOTIFICATION_NUMBER, &notification_number.to_le_bytes());
        out.put(OFF_SIZE_OF_DATA, &size.to_le_bytes());
        out.put(OFF_REF_COUNT, &1i32.to_le_bytes());
        let kind = if sync { REGISTRY_EVENT_SYNC } else { REGISTRY_EVENT };
        out.put(OFF_TYPE_OF_OPERATION, &kind.to_le_bytes());
        out.0.extend_from_slice(&message);
        Ok(out.0)
    }

    /// Reads a message wrapped in its `AsyncMessageData` header. `SizeOfData` must account for
    /// every byte after the header; `RefCount` and the padding are not checked.
    pub fn decode_async(bytes: &[u8]) -> Result<AsyncMessage, MessageError> {
        let r = Reader(bytes);
        let expect = |field, offset: usize, found: u64, expected: u64| {
            if found == expected {
                Ok(())
            } else {
                Err(MessageError::Mismatch { field, offset: offset as u64, found, expected })
            }
        };
        expect(Field::Magic, OFF_MAGIC, r.u16(Field::Magic, OFF_MAGIC)?.into(), MESSAGE_MAGIC.into())?;
        expect(Field::Size, OFF_SIZE, r.u16(Field::Size, OFF_SIZE)?.into(), ASYNC_HEADER_LEN as u64)?;
        let notification_number = r.u32(Field::NotificationNumber, OFF_NOTIFICATION_NUMBER)?;
        let size = r.u32(Field::SizeOfData, OFF_SIZE_OF_DATA)?;
        r.i32(Field::RefCount, OFF_REF_COUNT)?;
        let sync = match r.u32(Field::TypeOfOperation, OFF_TYPE_OF_OPERATION)? {
            REGISTRY_EVENT => false,
            REGISTRY_EVENT_SYNC => true,
            found => {
                let offset = OFF_TYPE_OF_OPERATION as u64;
                return Err(MessageError::UnknownType { field: Field::TypeOfOperation, offset, found });
            }
        };
        // The padding after `TypeOfOperation`: the header must be whole.
        r.bytes(Field::Padding, ASYNC_HEADER_LEN - 4, 4)?;
        let rest = (bytes.len() - ASYNC_HEADER_LEN) as u64;
        if u64::from(size) > rest {
            let (offset, needed) = (ASYNC_HEADER_LEN as u64, u64::from(size));
            return Err(MessageError::Truncated { field: Field::SizeOfData, offset, needed, len: r.len() });
        }
        expect(Field::SizeOfData, OFF_SIZE_OF_DATA, u64::from(size), rest)?;
        let message = Self::decode(&bytes[ASYNC_HEADER_LEN..])?;
        Ok(AsyncMessage { notification_number, sync, message })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> RegOperationMessage {
        RegOperationMessage {
            key_name: Some(r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows Defender".into()),
            value_name: Some("DisableAntiSpyware".into()),
            new_key_name: None,
            old_file_name: Some("/var/lib/old.hiv".into()),
            new_file_name: Some("ü€😀".into()),
            pid: 0x1122_3344_5566_7788,
            creation_time: -2,
            thread_id: 77,
            session_id: 1,
            final_key_rules: 0x8000_0001,
            new_value: Some((4, vec![1, 0, 0, 0])),
            value: Some((1, vec![])),
            restore_flags: 8,
            transaction_id: *b"0123456789abcdef",
            hashes: vec![[0xAA; 16], [0x55; 16]],
        }
    }

    fn le_u64(b: &[u8], at: usize) -> u64 {
        u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
    }

    fn put_i64(b: &mut [u8], at: usize, v: i64) {
        b[at..at + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[test]
    fn header_is_0x88_bytes_naturally_aligned() {
        assert_eq!(HEADER_LEN, 0x88);
        assert_eq!(ASYNC_HEADER_LEN, 0x18);
        let mut end = 0;
        for (field, offset, size) in HEADER_FIELDS {
            assert_eq!(offset, end, "{field} follows the previous field without padding");
            // A GUID is aligned as its first member, a ULONG.
            let align = if field == Field::TransactionId { 4 } else { size };
            assert_eq!(offset % align, 0, "{field} is naturally aligned");
            end = offset + size;
        }
        assert_eq!(end, HEADER_LEN);
        assert_eq!(RegOperationMessage::default().encode().unwrap(), vec![0; HEADER_LEN], "all absent: all zero");
    }

    #[test]
    fn encodes_the_documented_layout() {
        let m = sample();
        let b = m.encode().unwrap();
        assert_eq!(le_u64(&b, 0x28), m.pid);
        assert_eq!(le_u64(&b, 0x30), m.creation_time as u64);
        assert_eq!(le_u64(&b, 0x38), 77);
        assert_eq!(&b[0x40..0x48], &[1, 0, 0, 0, 1, 0, 0, 0x80]);
        assert_eq!(&b[0x48..0x50], &[4, 0, 0, 0, 4, 0, 0, 0], "NewValueType, BufferNewValueDataLen");
        assert_eq!(&b[0x58..0x60], &[1, 0, 0, 0, 0, 0, 0, 0], "ValueType, BufferValueDataLen");
        assert_eq!(&b[0x68..0x6C], &[8, 0, 0, 0]);
        assert_eq!(&b[0x6C..0x7C], b"0123456789abcdef");
        assert_eq!(&b[0x7C..0x80], &[2, 0, 0, 0]);
        // The key name comes first after the header: a byte length, then UTF-16LE.
        assert_eq!(le_u64(&b, 0x00), HEADER_LEN as u64);
        let name = m.key_name.as_deref().unwrap();
        assert_eq!(u16::from_le_bytes([b[0x88], b[0x89]]) as usize, name.len() * 2);
        assert_eq!(&b[0x8A..0x8C], &[b'\\', 0]);
        assert_eq!(le_u64(&b, 0x10), 0, "no new key name");
        // Every item starts at a multiple of 8; the hash array ends the message.
        for at in [0x00, 0x08, 0x18, 0x20, 0x50, 0x60, 0x80] {
            assert_eq!(le_u64(&b, at) % 8, 0);
        }
        let hashes = le_u64(&b, 0x80) as usize;
        assert_eq!(&b[hashes..], [[0xAA; 16], [0x55; 16]].concat());
        assert_eq!(RegOperationMessage::decode(&b).unwrap(), m);
    }

    #[test]
    fn empty_is_not_absent() {
        let m = RegOperationMessage {
            key_name: Some(String::new()),
            new_value: Some((0, Vec::new())),
            ..RegOperationMessage::default()
        };
        let b = m.encode().unwrap();
        assert_eq!(RegOperationMessage::decode(&b).unwrap(), m);
        // The empty data points at the very end of the message.
        assert_eq!(le_u64(&b, 0x50), b.len() as u64);
    }

    #[test]
    fn errors_name_the_field_and_offset() {
        let good = sample().encode().unwrap();
        let decode = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut b = good.clone();
            edit(&mut b);
            RegOperationMessage::decode(&b).unwrap_err()
        };
        let len = good.len() as u64;
        assert_eq!(
            RegOperationMessage::decode(&good[..0x45]).unwrap_err(),
            MessageError::Truncated { field: Field::FinalKeyRules, offset: 0x44, needed: 4, len: 0x45 }
        );
        assert_eq!(
            decode(&|b| put_i64(b, OFF_VALUE_NAME, 0x10)),
            MessageError::OverlapsHeader { field: Field::ValueName, offset: 0x10 }
        );
        assert_eq!(
            decode(&|b| put_i64(b, OFF_KEY_NAME, -8)),
            MessageError::OffsetOutOfRange { field: Field::KeyName, offset: -8, len }
        );
        assert_eq!(
            decode(&|b| put_i64(b, OFF_VALUE_DATA, len as i64 + 1)),
            MessageError::OffsetOutOfRange { field: Field::ValueData, offset: len as i64 + 1, len }
        );
        assert_eq!(
            decode(&|b| put_i64(b, OFF_HASHES_ARRAY, len as i64 - 8)),
            MessageError::Truncated { field: Field::HashesArray, offset: len - 8, needed: 32, len }
        );
        assert_eq!(
            decode(&|b| b[0x88] = 3),
            MessageError::OddUtf16Length { field: Field::KeyName, offset: 0x88, len: 3 }
        );
        assert_eq!(
            decode(&|b| b[0x88..0x8A].copy_from_slice(&0xFFFEu16.to_le_bytes())),
            MessageError::Truncated { field: Field::KeyName, offset: 0x8A, needed: 0xFFFE, len }
        );
        assert_eq!(
            decode(&|b| b[0x8C..0x8E].copy_from_slice(&0xD800u16.to_le_bytes())),
            MessageError::UnpairedSurrogate { field: Field::KeyName, offset: 0x8C, unit: 0xD800 }
        );
        assert_eq!(
            decode(&|b| put_i64(b, OFF_NEW_VALUE_DATA, 0)),
            MessageError::DataWithoutOffset { field: Field::NewValueData, value_type: 4, len: 4 }
        );
        assert_eq!(
            decode(&|b| b[0x7C..0x80].copy_from_slice(&(-1i32).to_le_bytes())),
            MessageError::NegativeCount { field: Field::HashesCount, count: -1 }
        );
        let e = decode(&|b| b[0x88] = 3);
        assert_eq!(e.to_string(), "OffsetKeyName: the string at offset 136 has an odd byte length 3");
    }

    #[test]
    fn encode_refuses_what_its_fields_cannot_carry() {
        let long = RegOperationMessage { value_name: Some("x".repeat(0x7FFF)), ..Default::default() };
        assert_eq!(RegOperationMessage::decode(&long.encode().unwrap()).unwrap(), long);
        let too_long = RegOperationMessage { value_name: Some("x".repeat(0x8000)), ..Default::default() };
        assert_eq!(
            too_long.encode().unwrap_err(),
            MessageError::LengthOverflow { field: Field::ValueName, len: 0x10000, max: 0xFFFE }
        );
    }

    #[test]
    fn async_wrapper() {
        let m = sample();
        let b = m.encode_async(42, true).unwrap();
        assert_eq!(&b[..2], b"hb");
        assert_eq!(&b[2..4], &[0x18, 0]);
        assert_eq!(&b[4..8], &42u32.to_le_bytes());
        assert_eq!(&b[8..12], &((b.len() - 0x18) as u32).to_le_bytes());
        assert_eq!(&b[12..16], &1i32.to_le_bytes());
        assert_eq!(&b[16..20], &REGISTRY_EVENT_SYNC.to_le_bytes());
        assert_eq!(&b[0x18..], m.encode().unwrap());
        let got = RegOperationMessage::decode_async(&b).unwrap();
        assert_eq!(got, AsyncMessage { notification_number: 42, sync: true, message: m.clone() });
        let b = m.encode_async(7, false).unwrap();
        assert!(!RegOperationMessage::decode_async(&b).unwrap().sync);

        let bad = |edit: &dyn Fn(&mut Vec<u8>)| {
            let mut c = b.clone();
            edit(&mut c);
            RegOperationMessage::decode_async(&c).unwrap_err()
        };
        assert!(matches!(bad(&|c| c[0] = b'x'), MessageError::Mismatch { field: Field::Magic, offset: 0, .. }));
        assert!(matches!(bad(&|c| c[2] = 0x30), MessageError::Mismatch { field: Field::Size, found: 0x30, .. }));
        assert_eq!(
            bad(&|c| c[16] = 0),
            MessageError::UnknownType { field: Field::TypeOfOperation, offset: 16, found: 0 }
        );
        assert!(matches!(bad(&|c| c.push(0)), MessageError::Mismatch { field: Field::SizeOfData, offset: 8, .. }));
        assert!(matches!(
            bad(&|c| {
                c.pop();
            }),
            MessageError::Truncated { field: Field::SizeOfData, .. }
        ));
    }

    fn name() -> impl Strategy<Value = Option<String>> {
        proptest::option::of(any::<String>())
    }

    fn data() -> impl Strategy<Value = Option<(u32, Vec<u8>)>> {
        proptest::option::of((any::<u32>(), proptest::collection::vec(any::<u8>(), 0..40)))
    }

    prop_compose! {
        fn message()(
            names in (name(), name(), name(), name(), name()),
            ids in (any::<u64>(), any::<i64>(), any::<u64>(), any::<u32>(), any::<u32>()),
            new_value in data(),
            value in data(),
            restore_flags in any::<u32>(),
            transaction_id in any::<[u8; 16]>(),
            hashes in proptest::collection::vec(any::<[u8; 16]>(), 0..4),
        ) -> RegOperationMessage {
            let (key_name, value_name, new_key_name, old_file_name, new_file_name) = names;
            let (pid, creation_time, thread_id, session_id, final_key_rules) = ids;
            RegOperationMessage {
                key_name, value_name, new_key_name, old_file_name, new_file_name,
                pid, creation_time, thread_id, session_id, final_key_rules,
                new_value, value, restore_flags, transaction_id, hashes,
            }
        }
    }

    proptest! {
        #[test]
        fn round_trips_and_every_truncation_fails(m in message(), number in any::<u32>(), sync in any::<bool>()) {
            let b = m.encode().unwrap();
            prop_assert_eq!(&RegOperationMessage::decode(&b).unwrap(), &m);
            for n in 0..b.len() {
                prop_assert!(RegOperationMessage::decode(&b[..n]).is_err(), "a {}-byte prefix decoded", n);
            }
            let a = m.encode_async(number, sync).unwrap();
            let got = RegOperationMessage::decode_async(&a).unwrap();
            prop_assert_eq!(got, AsyncMessage { notification_number: number, sync, message: m });
            for n in 0..a.len() {
                prop_assert!(RegOperationMessage::decode_async(&a[..n]).is_err(), "a {}-byte prefix decoded", n);
            }
        }

        #[test]
        fn damaged_messages_fail_or_reencode_stably(
            m in message(),
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        ) {
            let mut b = m.encode().unwrap();
            for (at, byte) in edits {
                let i = at.index(b.len());
                b[i] = byte;
            }
            if let Ok(d) = RegOperationMessage::decode(&b) {
                let again = d.encode().unwrap();
                prop_assert_eq!(RegOperationMessage::decode(&again).unwrap(), d);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = RegOperationMessage::decode(&b);
            let _ = RegOperationMessage::decode_async(&b);
        }
    }
}
