//! The text under a `.reg` file: its encoding, and its lines.

use super::RegFileError;

const BOM_UTF16LE: [u8; 2] = [0xFF, 0xFE];
const BOM_UTF16BE: [u8; 2] = [0xFE, 0xFF];
const BOM_UTF8: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Windows-1252's characters for the bytes 0x80..=0x9F (the rest of the code page is
/// Latin-1). The five bytes it leaves undefined map to the C1 control of the same number, as
/// Windows' `MultiByteToWideChar` maps them.
const CP1252_80_9F: [char; 32] = [
    '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}', '\u{2021}', '\u{02C6}',
    '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}', '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}',
    '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}',
    '\u{203A}', '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
];

/// Decodes a `.reg` file's bytes to text: UTF-16LE after its byte-order mark, UTF-8 after
/// its byte-order mark, UTF-16LE without a mark when the second byte is 0 (an ASCII first
/// character), else UTF-8 when the bytes are valid UTF-8, else Windows-1252 (ANSI). NUL
/// characters at the very end (some tools pad files with them) are dropped.
pub fn decode(bytes: &[u8]) -> Result<String, RegFileError> {
    let mut text = if let Some(rest) = bytes.strip_prefix(&BOM_UTF16LE) {
        utf16le(rest)?
    } else if bytes.starts_with(&BOM_UTF16BE) {
        return Err(RegFileError {
            line: 1,
            column: None,
            reason: "the file is UTF-16 big-endian; only UTF-16LE, UTF-8 and ANSI files can be read".into(),
        });
    } else if let Some(rest) = bytes.strip_prefix(&BOM_UTF8) {
        match std::str::from_utf8(rest) {
            Ok(s) => s.to_owned(),
            Err(e) => {
                let good = rest.get(..e.valid_up_to()).unwrap_or_default();
                let line = line_count(&String::from_utf8_lossy(good));
                return Err(RegFileError { line, column: None, reason: "invalid UTF-8 in a UTF-8 file".into() });
            }
        }
    } else if bytes.len() >= 2 && bytes[0] != 0 && bytes[1] == 0 {
        utf16le(bytes)?
    } else {
        match std::str::from_utf8(bytes) {
            Ok(s) => s.to_owned(),
            Err(_) => bytes.iter().map(|&b| cp1252(b)).collect(),
        }
    };
    let kept = text.trim_end_matches('\0').len();
    text.truncate(kept);
    Ok(text)
}

fn utf16le(bytes: &[u8]) -> Result<String, RegFileError> {
    let units = bytes.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]]));
    let mut text = String::with_capacity(bytes.len() / 2);
    for c in char::decode_utf16(units) {
        match c {
            Ok(c) => text.push(c),
            Err(e) => {
                return Err(RegFileError {
                    line: line_count(&text),
                    column: None,
                    reason: format!("invalid UTF-16: unpaired surrogate 0x{:04X}", e.unpaired_surrogate()),
                });
            }
        }
    }
    if bytes.len() % 2 == 1 {
        return Err(RegFileError {
            line: line_count(&text),
            column: None,
            reason: "the file ends in the middle of a UTF-16 character".into(),
        });
    }
    Ok(text)
}

/// The line a text ends on (1-based), counting line ends as [`Lines`] does.
fn line_count(text: &str) -> usize {
    Lines::new(text).count().max(1)
}

/// One Windows-1252 byte as a character.
pub(super) fn cp1252(b: u8) -> char {
    match b {
        0x80..=0x9F => CP1252_80_9F[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}

/// ANSI string bytes (a `REGEDIT4` file's `hex(2)`/`hex(7)` data) as the UTF-16LE bytes the
/// registry stores: UTF-8 when they are valid UTF-8, else Windows-1252. NUL bytes stay NUL
/// characters, so terminators and `REG_MULTI_SZ` separators carry over.
pub(super) fn ansi_to_utf16le(bytes: &[u8]) -> Vec<u8> {
    let text: String = match std::str::from_utf8(bytes) {
        Ok(s) => s.to_owned(),
        Err(_) => bytes.iter().map(|&b| cp1252(b)).collect(),
    };
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The lines of a text with their numbers (1-based). `\r\n`, `\n` and a lone `\r` each end a
/// line; a text that ends with a line end has no empty line after it.
#[derive(Clone, Debug)]
pub(super) struct Lines<'a> {
    rest: Option<&'a str>,
    number: usize,
}

impl<'a> Lines<'a> {
    pub(super) fn new(text: &'a str) -> Self {
        Self { rest: Some(text), number: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    type Item = (usize, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = self.rest?;
        if rest.is_empty() {
            self.rest = None;
            return None;
        }
        self.number += 1;
        match rest.find(['\r', '\n']) {
            Some(end) => {
                let skip = if rest[end..].starts_with("\r\n") { 2 } else { 1 };
                self.rest = Some(&rest[end + skip..]);
                Some((self.number, &rest[..end]))
            }
            None => {
                self.rest = None;
                Some((self.number, rest))
            }
        }
    }
}

/// A position in one line, for reading it left to right and pointing at errors.
#[derive(Clone, Copy, Debug)]
pub(super) struct Cursor<'a> {
    pub(super) line: &'a str,
    pub(super) number: usize,
    /// Byte offset into `line`, always at a character boundary.
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(number: usize, line: &'a str) -> Self {
        Self { line, number, pos: 0 }
    }

    pub(super) fn rest(&self) -> &'a str {
        self.line.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    pub(super) fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    /// Steps over `c` if it is next.
    pub(super) fn eat(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(c);
        if yes {
            self.pos += c.len_utf8();
        }
        yes
    }

    /// Steps over an ASCII `prefix` (any case) if it comes next.
    pub(super) fn eat_ignore_case(&mut self, prefix: &str) -> bool {
        let yes = self.rest().get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix));
        if yes {
            self.pos += prefix.len();
        }
        yes
    }

    pub(super) fn skip_blanks(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start_matches([' ', '\t']).len();
    }

    /// Takes the run of ASCII hex digits that comes next.
    pub(super) fn hex_digits(&mut self) -> &'a str {
        let rest = self.rest();
        let n = rest.bytes().take_while(u8::is_ascii_hexdigit).count();
        self.pos += n;
        rest.get(..n).unwrap_or_default()
    }

    /// Nothing but blanks, or a comment, up to the end of the line.
    pub(super) fn at_end(&self) -> bool {
        let rest = self.rest().trim_start_matches([' ', '\t']);
        rest.is_empty() || rest.starts_with(';')
    }

    /// An error at the cursor.
    pub(super) fn err(&self, reason: impl Into<String>) -> RegFileError {
        self.err_at(self.pos, reason)
    }

    /// An error at byte offset `pos` of the line.
    pub(super) fn err_at(&self, pos: usize, reason: impl Into<String>) -> RegFileError {
        let column = self.line.get(..pos).map_or(1, |s| s.chars().count() + 1);
        RegFileError { line: self.number, column: Some(column), reason: reason.into() }
    }
}
