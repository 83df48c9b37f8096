//! Windows registry hive files (`regf`).
//!
//! **Reading** ([`Hive`]): [`Hive::open`] reads a hive file into memory, replays its
//! transaction logs if it is dirty (old dirty-vector logs and new `HvLE` logs, chosen and
//! ordered by sequence number as Windows does), frames every hive bin and cell once, and
//! hands out zero-copy views: [`KeyNode`] (`nk`), its subkeys (`lf`/`lh`/`li`/`ri`) and
//! values, [`ValueNode`] (`vk`) and its data (inline, one cell, or `db` big data).
//! [`Hive::to_image`] turns the whole tree into a [`hivebox_core::KeyImage`]. Every
//! structural error is a [`RegfError`] naming the file offset and kind of the record at fault;
//! nothing panics or allocates beyond the input's size on a damaged file, and free (deleted)
//! cells are never read as records. The reader does not recover deleted keys or values, and
//! does not read hives of format version 1.1 (Windows NT 3.x). The format as read is in
//! `docs/regf.md`.

mod write;
pub use write::{
    WriteError, WriteOptions, WriteStats, default_security_descriptor, save_hive, write_hive, write_hive_with_stats,
};

mod base;
mod cells;
mod error;
mod hive;
mod image;
mod key;
mod list;
mod log;
mod marvin;
mod value;

pub use base::{BASE_BLOCK_LEN, BaseBlock, CELL_NIL, HBIN_ALIGN, checksum};
pub use error::RegfError;
pub use hive::Hive;
pub use key::{
    KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_HIVE_EXIT, KEY_NO_DELETE, KEY_SYM_LINK, KEY_VOLATILE, KeyNode, MAX_DEPTH,
};
pub use list::{Subkeys, Values};
pub use log::{LogFormat, LogInfo, LogRecovery};
pub use value::{BIG_DATA_SEGMENT, DATA_INLINE, VALUE_COMP_NAME, ValueNode};
