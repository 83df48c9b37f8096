//! Key paths as people write them: `HKLM\...`, `HKEY_CURRENT_USER\...`, `\REGISTRY\...`.
//!
//! The registry itself only knows native paths below `\REGISTRY`. This module turns the
//! predefined roots (and their `HKEY_*` long forms) into native paths, and back for display.

use crate::name::{MAX_PATH_DEPTH, NameError, split_path};

/// A predefined root key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Root {
    /// `HKEY_LOCAL_MACHINE` = `\REGISTRY\MACHINE`
    LocalMachine,
    /// `HKEY_USERS` = `\REGISTRY\USER`
    Users,
    /// `HKEY_CURRENT_USER` = `\REGISTRY\USER\<sid>`
    CurrentUser,
    /// `HKEY_CLASSES_ROOT` = `\REGISTRY\MACHINE\SOFTWARE\Classes`
    ClassesRoot,
    /// `HKEY_CURRENT_CONFIG` = `\REGISTRY\MACHINE\SYSTEM\CurrentControlSet\Hardware Profiles\Current`
    CurrentConfig,
    /// `\REGISTRY` itself (native form).
    Registry,
}

impl Root {
    /// The `HKEY_*` long form (`\REGISTRY` for the native root).
    pub fn long_name(self) -> &'static str {
        match self {
            Root::LocalMachine => "HKEY_LOCAL_MACHINE",
            Root::Users => "HKEY_USERS",
            Root::CurrentUser => "HKEY_CURRENT_USER",
            Root::ClassesRoot => "HKEY_CLASSES_ROOT",
            Root::CurrentConfig => "HKEY_CURRENT_CONFIG",
            Root::Registry => "\\REGISTRY",
        }
    }

    /// The short alias (`HKLM`, ...).
    pub fn short_name(self) -> &'static str {
        match self {
            Root::LocalMachine => "HKLM",
            Root::Users => "HKU",
            Root::CurrentUser => "HKCU",
            Root::ClassesRoot => "HKCR",
            Root::CurrentConfig => "HKCC",
            Root::Registry => "\\REGISTRY",
        }
    }

    /// The native path of the root, for a user whose SID is `user_sid`.
    pub fn native(self, user_sid: &str) -> String {
        match self {
            Root::LocalMachine => "\\REGISTRY\\MACHINE".into(),
            Root::Users => "\\REGISTRY\\USER".into(),
            Root::CurrentUser => format!("\\REGISTRY\\USER\\{user_sid}"),
            Root::ClassesRoot => "\\REGISTRY\\MACHINE\\SOFTWARE\\Classes".into(),
            Root::CurrentConfig => "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current".into(),
            Root::Registry => "\\REGISTRY".into(),
        }
    }

    /// How many levels below `\REGISTRY` the root itself is.
    pub fn native_depth(self) -> usize {
        match self {
            Root::Registry => 0,
            Root::LocalMachine | Root::Users => 1,
            Root::CurrentUser => 2,
            Root::ClassesRoot => 3,
            Root::CurrentConfig => 6,
        }
    }

    fn from_name(name: &str) -> Option<Root> {
        const NAMES: [(&str, &str, Root); 5] = [
            ("HKLM", "HKEY_LOCAL_MACHINE", Root::LocalMachine),
            ("HKU", "HKEY_USERS", Root::Users),
            ("HKCU", "HKEY_CURRENT_USER", Root::CurrentUser),
            ("HKCR", "HKEY_CLASSES_ROOT", Root::ClassesRoot),
            ("HKCC", "HKEY_CURRENT_CONFIG", Root::CurrentConfig),
        ];
        NAMES
            .iter()
            .find(|(short, long, _)| name.eq_ignore_ascii_case(short) || name.eq_ignore_ascii_case(long))
            .map(|(_, _, r)| *r)
    }
}

/// A parsed key path: a root and the checked components below it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeyPath {
    /// The root it starts from.
    pub root: Root,
    /// Components below the root.
    pub components: Vec<String>,
}

/// A key path that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PathError {
    /// The first component is not a known root.
    #[error(
        "invalid key name {path:?}: it must start with HKLM, HKCU, HKCR, HKU, HKCC (or their HKEY_ forms) or \\REGISTRY"
    )]
    UnknownRoot {
        /// The path.
        path: String,
    },
    /// A remote path (`\\machine\...`).
    #[error("remote registry paths are not supported: {path:?}")]
    Remote {
        /// The path.
        path: String,
    },
    /// A component breaks the naming rules.
    #[error("invalid key name {path:?}: {source}")]
    Name {
        /// The path.
        path: String,
        /// The rule broken.
        source: NameError,
    },
}

impl PathError {
    /// The NTSTATUS the registry would return.
    pub fn status(&self) -> crate::NtStatus {
        match self {
            PathError::Name { source, .. } => source.status(),
            _ => crate::NtStatus::STATUS_OBJECT_PATH_SYNTAX_BAD,
        }
    }
}

impl KeyPath {
    /// Parses `HKLM\Software\X`, `HKEY_LOCAL_MACHINE\Software\X` or `\REGISTRY\MACHINE\Software\X`.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        if path.starts_with("\\\\") {
            return Err(PathError::Remote { path: path.to_owned() });
        }
        let name_err = |source| PathError::Name { path: path.to_owned(), source };
        if let Some(rest) = path.strip_prefix('\\') {
            let (first, rest) = rest.split_once('\\').unwrap_or((rest, ""));
            if !first.eq_ignore_ascii_case("REGISTRY") {
                return Err(PathError::UnknownRoot { path: path.to_owned() });
            }
            let components = split_path(rest).map_err(name_err)?.into_iter().map(str::to_owned).collect();
            return Self::checked(path, Root::Registry, components);
        }
        let (first, rest) = path.split_once('\\').unwrap_or((path, ""));
        let root = Root::from_name(first).ok_or_else(|| PathError::UnknownRoot { path: path.to_owned() })?;
        let components = split_path(rest).map_err(name_err)?.into_iter().map(str::to_owned).collect();
        Self::checked(path, root, components)
    }

    /// Checks the depth the path has below `\REGISTRY` once its root is expanded.
    fn checked(path: &str, root: Root, components: Vec<String>) -> Result<Self, PathError> {
        let depth = root.native_depth() + components.len();
        if depth > MAX_PATH_DEPTH {
            return Err(PathError::Name { path: path.to_owned(), source: NameError::TooDeep { depth } });
        }
        Ok(Self { root, components })
    }

    /// The native path (`\REGISTRY\...`).
    pub fn native(&self, user_sid: &str) -> String {
        let mut s = self.root.native(user_sid);
        for c in &self.components {
            s.push('\\');
            s.push_str(c);
        }
        s
    }

    /// The path in `reg.exe`'s display form, `HKEY_LOCAL_MACHINE\...`.
    pub fn display(&self) -> String {
        let mut s = self.root.long_name().to_owned();
        for c in &self.components {
            s.push('\\');
            s.push_str(c);
        }
        s
    }

    /// The path of a subkey.
    pub fn join(&self, name: &str) -> KeyPath {
        let mut components = self.components.clone();
        components.push(name.to_owned());
        KeyPath { root: self.root, components }
    }

    /// The parent path and the last component, if there is one below the root.
    pub fn split_last(&self) -> Option<(KeyPath, &str)> {
        let (last, rest) = self.components.split_last()?;
        Some((KeyPath { root: self.root, components: rest.to_vec() }, last))
    }
}

/// The well-known SID hivebox gives a Unix user: `S-1-22-1-<uid>` (the "Unix User" authority
/// that Samba uses), so `HKCU` of uid 1000 is `\REGISTRY\USER\S-1-22-1-1000`.
pub fn unix_user_sid(uid: u32) -> String {
    format!("S-1-22-1-{uid}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases() {
        let sid = "S-1-22-1-1000";
        for (input, native) in [
            ("HKLM\\Software\\X", "\\REGISTRY\\MACHINE\\Software\\X"),
            ("hkey_local_machine\\Software", "\\REGISTRY\\MACHINE\\Software"),
            ("HKU\\.DEFAULT", "\\REGISTRY\\USER\\.DEFAULT"),
            ("HKCU\\Software", "\\REGISTRY\\USER\\S-1-22-1-1000\\Software"),
            ("HKEY_CLASSES_ROOT\\.txt", "\\REGISTRY\\MACHINE\\SOFTWARE\\Classes\\.txt"),
            ("HKCC", "\\REGISTRY\\MACHINE\\SYSTEM\\CurrentControlSet\\Hardware Profiles\\Current"),
            ("\\Registry\\Machine\\System", "\\REGISTRY\\Machine\\System"),
            ("HKLM\\", "\\REGISTRY\\MACHINE"),
        ] {
            assert_eq!(KeyPath::parse(input).unwrap().native(sid), native, "{input}");
        }
        assert_eq!(KeyPath::parse("hklm\\A").unwrap().display(), "HKEY_LOCAL_MACHINE\\A");
    }

    #[test]
    fn bad_paths() {
        assert!(matches!(KeyPath::parse("HKXX\\A"), Err(PathError::UnknownRoot { .. })));
        assert!(matches!(KeyPath::parse("\\\\server\\HKLM"), Err(PathError::Remote { .. })));
        assert!(matches!(KeyPath::parse("HKLM\\A\\\\B"), Err(PathError::Name { .. })));
        assert!(matches!(KeyPath::parse("\\Foo\\Bar"), Err(PathError::UnknownRoot { .. })));
        let deep = |root: &str, n: usize| format!("{root}\\{}", vec!["k"; n].join("\\"));
        assert!(KeyPath::parse(&deep("HKLM", 511)).is_ok());
        assert!(KeyPath::parse(&deep("HKLM", 512)).is_err());
        assert!(KeyPath::parse(&deep("HKCC", 506)).is_ok());
        assert!(KeyPath::parse(&deep("HKCC", 507)).is_err());
    }
}
