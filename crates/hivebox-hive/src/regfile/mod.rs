//! `.reg` files, the text format of Windows' `regedit`: a parser ([`parse`]) and a writer
//! ([`export`]) that lays a key tree out exactly as `regedit` exports it.
//!
//! ```text
//! Windows Registry Editor Version 5.00
//!
//! [HKEY_CURRENT_USER\Software\Contoso]
//! @="the default value"
//! "Name"="Contoso \"Ltd\" C:\\Program Files"
//! "Port"=dword:00001f90
//! "Blob"=hex:01,02,ff
//! "Paths"=hex(7):61,00,00,00,62,00,00,00,00,00
//! "Old"=-
//!
//! [-HKEY_CURRENT_USER\Software\Contoso\Obsolete]
//! ```
//!
//! **Reading.** [`decode`] accepts UTF-16LE with a byte-order mark (what `regedit` writes), UTF-8
//! with or without one, UTF-16LE without one (recognised by its first character), and ANSI
//! (Windows-1252, for any file that is not valid UTF-8). The first non-blank line is the header:
//! `Windows Registry Editor Version 5.00` or `REGEDIT4`. Then, one per line (leading spaces and
//! tabs ignored; `\r\n`, `\n` and `\r` all end a line):
//! - blank lines, and comments from `;` to the end of the line (also after a value's data);
//! - `[KEY]` opens (creating) a key, `[-KEY]` deletes it with its subtree. `KEY` is a path as
//!   [`hivebox_core::KeyPath`] reads it (`HKEY_LOCAL_MACHINE\...`, `HKLM\...`, ...), up to the
//!   last `]` of the line; only spaces may follow that `]`;
//! - `NAME=DATA` sets a value of the key opened last. `NAME` is `@` (the default value) or a
//!   quoted string; spaces may surround the `=`. `DATA` is `"STRING"` (`REG_SZ`),
//!   `dword:` and 1 to 8 hex digits (`REG_DWORD`), `hex:` and comma-separated bytes
//!   (`REG_BINARY`), `hex(N):` and bytes (type `N`, in hex: `hex(2)` `REG_EXPAND_SZ`, `hex(7)`
//!   `REG_MULTI_SZ`, `hex(b)` `REG_QWORD`, any number up to `ffffffff`), or `-` to delete the
//!   value. In quoted strings `\\` is a backslash and `\"` a quote; `\n` and `\r` (which Wine's
//!   `regedit` writes for line breaks in names) are accepted too; any other escape is an error.
//!   Byte lists may go on over several lines: a `\` where a byte could follow continues the list
//!   on the next line that is not blank or a comment. A byte is one or two hex digits.
//!
//! In a `REGEDIT4` file, `hex(2)` and `hex(7)` data are ANSI strings (one byte per character, as
//! `regedit` wrote them then); they are converted to the UTF-16LE the registry stores (read as
//! UTF-8 when they are valid UTF-8, else as Windows-1252). Everything else means the same in both
//! versions.
//!
//! Anything else is an error naming the line (and, where it helps, the column): a value line
//! before the first key line or after a `[-KEY]` line, an unknown data format, an unterminated
//! string, a bad byte, a NUL character, an invalid key path or a value name over the registry's
//! limit. Parsing never panics, and allocates no more than in proportion to its input.
//!
//! **Writing.** [`export`] writes a key and its subtree as `regedit` does: UTF-16LE with a
//! byte-order mark, CRLF line ends, the version 5 header, a blank line before each key line,
//! the values in their order, subkeys after their parent sorted by name (case-insensitively, as
//! the registry enumerates them), and a blank line at the end. `REG_SZ` data is written as a
//! quoted string, `REG_DWORD` as `dword:`, `REG_BINARY` as `hex:` and every other type as
//! `hex(N):`. Byte lists are lowercase and wrapped like `regedit`'s: a line breaks after the
//! comma that takes it to 77 characters or more, with `\` and the next line indented by two
//! spaces (so no line is longer than 80 characters). Data that a quoted string or `dword:` would
//! not give back byte for byte (a `REG_SZ` without its terminating NUL, with a NUL or a line
//! break inside, a `REG_DWORD` that is not 4 bytes) is written as `hex(1):`/`hex(4):` instead,
//! so that parsing an export always gives back exactly the values exported.

mod parse;
mod text;
mod write;

pub use parse::{parse, parse_text};
pub use text::decode;
pub use write::{export, export_text};

use hivebox_core::Value;

/// The header of a version 5 file (what `regedit` writes since Windows 2000).
pub const HEADER_V5: &str = "Windows Registry Editor Version 5.00";
/// The header of a `REGEDIT4` (Windows 95/NT 4) file.
pub const HEADER_V4: &str = "REGEDIT4";

/// Which format a file declares in its header.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RegVersion {
    /// `Windows Registry Editor Version 5.00`: strings in `hex(2)`/`hex(7)` data are UTF-16LE.
    V5,
    /// `REGEDIT4`: strings in `hex(2)`/`hex(7)` data are ANSI, one byte per character.
    Regedit4,
}

/// A parsed `.reg` file: what it asks for, in file order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RegFile {
    /// The header's version.
    pub version: RegVersion,
    /// Key lines and value lines, in the order of the file.
    pub entries: Vec<RegEntry>,
}

/// One line (or, for continued byte lists, several lines) of a `.reg` file that asks for
/// something. Blank lines, comments and the header are not entries.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RegEntry {
    /// `[KEY]` (create or open the key) or `[-KEY]` (delete it with its subtree).
    Key {
        /// The path as written between the brackets (after the `-`), for example
        /// `HKEY_LOCAL_MACHINE\Software\X`. It parses with [`hivebox_core::KeyPath::parse`].
        path: String,
        /// `[-KEY]`.
        delete: bool,
        /// The line number (1-based).
        line: usize,
    },
    /// `NAME=DATA` or `NAME=-`.
    Value {
        /// The index in [`RegFile::entries`] of the `Key` entry this value belongs to (always a
        /// `Key` entry with `delete: false`).
        key_index: usize,
        /// The value name, unescaped; `""` is the default value (`@`).
        name: String,
        /// The value to set, or `None` to delete the value.
        action: Option<Value>,
        /// The line number (1-based) the value starts on.
        line: usize,
    },
}

impl RegEntry {
    /// The line the entry starts on.
    pub fn line(&self) -> usize {
        match self {
            RegEntry::Key { line, .. } | RegEntry::Value { line, .. } => *line,
        }
    }
}

/// A `.reg` file that does not parse: where, and why.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RegFileError {
    /// The line number (1-based; the header is line 1 when nothing comes before it).
    pub line: usize,
    /// The column (1-based, in characters), when one position is to blame.
    pub column: Option<usize>,
    /// What is wrong there, for example `expected "=" after the value name`.
    pub reason: String,
}

/// A key tree that a `.reg` file cannot hold, so [`export`] would write a file that does not
/// read back as the same tree.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("{reason}")]
pub struct ExportError {
    /// The path of the key that cannot be written (as it would appear in the file).
    pub key: String,
    /// Why, for example `the key name contains a line break`.
    pub reason: String,
}

#[cfg(test)]
mod tests;
