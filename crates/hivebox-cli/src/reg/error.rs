//! What can go wrong in a `reg` command, and the one line it prints as.
//!
//! Every failure is printed once, by `reg::run`, as `ERROR: ...` on stderr; the process then
//! exits 1. Registry refusals name the NTSTATUS and where it happened:
//! `ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\SYSTEM\...\Enum\Foo`.

use super::args::SyntaxError;
use hivebox_core::NtStatus;
use std::fmt;

/// `reg.exe`'s sentence for a missing key or value.
const NOT_FOUND: &str = "The system was unable to find the specified registry key or value";

/// A failed `reg` command.
#[derive(Debug)]
pub enum RegError {
    /// The command line does not parse.
    Syntax(SyntaxError),
    /// The registry returned `status` for an operation on `at` (a display path, followed by
    /// `\value` for value operations).
    Status { status: NtStatus, at: String },
    /// A refusal with its own explanation, the status it amounts to, and where.
    Refused { message: String, status: NtStatus, at: String },
    /// Input that is not acceptable before the registry is even asked (a bad name, type or
    /// data), with the status the registry would have returned.
    Invalid { message: String, status: NtStatus },
    /// The command could not get going: the store would not open, the user is unknown.
    Setup(String),
    /// A problem with a file (`export`, `import`), at a line of it if that is known: the file
    /// does not read, does not parse, or what it asks for failed.
    File { file: String, line: Option<usize>, message: String },
    /// The store refused to load or unload a hive at `at` (a display path).
    Hive { message: String, at: String },
    /// Writing the output failed.
    Output(std::io::Error),
}

impl RegError {
    /// A registry status at a path.
    pub fn at(status: NtStatus, at: impl Into<String>) -> Self {
        RegError::Status { status, at: at.into() }
    }

    /// A registry status at a value of a key.
    pub fn at_value(status: NtStatus, key: &str, value: &str) -> Self {
        RegError::Status { status, at: value_path(key, value) }
    }
}

/// `KEY\NAME`, with `(Default)` for the default value.
pub fn value_path(key: &str, value: &str) -> String {
    format!("{key}\\{}", if value.is_empty() { "(Default)" } else { value })
}

/// `STATUS_NAME`, or the number for a status without a name.
pub fn status_name(status: NtStatus) -> String {
    status.name().map_or_else(|| format!("NTSTATUS 0x{:08X}", status.0), str::to_owned)
}

/// A status's description: `reg.exe`'s own sentence for a missing key or value.
fn describe(status: NtStatus) -> &'static str {
    match status {
        NtStatus::STATUS_OBJECT_NAME_NOT_FOUND | NtStatus::STATUS_OBJECT_PATH_NOT_FOUND => NOT_FOUND,
        other => other.describe(),
    }
}

impl fmt::Display for RegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RegError::Syntax(e) => write!(f, "{e}"),
            RegError::Status { status, at } => write!(f, "{} ({}) at {at}", describe(*status), status_name(*status)),
            RegError::Refused { message, status, at } => write!(f, "{message} ({}) at {at}", status_name(*status)),
            RegError::Invalid { message, status } => {
                write!(f, "{message} ({})", status_name(*status))
            }
            RegError::Setup(message) => f.write_str(message),
            RegError::File { file, line: Some(line), message } => write!(f, "{file}:{line}: {message}"),
            RegError::File { file, line: None, message } => write!(f, "{file}: {message}"),
            RegError::Hive { message, at } => write!(f, "{message} at {at}"),
            RegError::Output(e) => write!(f, "writing the output failed: {e}"),
        }
    }
}

impl From<SyntaxError> for RegError {
    fn from(e: SyntaxError) -> Self {
        RegError::Syntax(e)
    }
}

impl From<std::io::Error> for RegError {
    fn from(e: std::io::Error) -> Self {
        RegError::Output(e)
    }
}

/// The error line as printed: `ERROR: ...`, with control characters (a newline in a key name,
/// say) escaped so that it stays one line.
pub fn error_line(e: &RegError) -> String {
    let mut line = String::from("ERROR: ");
    for c in e.to_string().chars() {
        if c.is_control() {
            line.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            line.push(c);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let e = RegError::at(NtStatus::STATUS_ACCESS_DENIED, r"HKEY_LOCAL_MACHINE\Software\X");
        assert_eq!(error_line(&e), r"ERROR: access denied (STATUS_ACCESS_DENIED) at HKEY_LOCAL_MACHINE\Software\X");
        let e = RegError::at_value(NtStatus::STATUS_OBJECT_NAME_NOT_FOUND, r"HKEY_CURRENT_USER\A", "");
        assert_eq!(
            error_line(&e),
            r"ERROR: The system was unable to find the specified registry key or value (STATUS_OBJECT_NAME_NOT_FOUND) at HKEY_CURRENT_USER\A\(Default)"
        );
        let e = RegError::at(NtStatus(0xC0DE_0001), "K\nX");
        assert_eq!(error_line(&e), r"ERROR: error (NTSTATUS 0xC0DE0001) at K\u{a}X");
    }
}
