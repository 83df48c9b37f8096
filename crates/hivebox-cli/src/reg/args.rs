//! The `reg` command line: `reg.exe`'s verbs and switches, parsed into one struct per verb.
//!
//! Switches are case-insensitive and take either prefix (`/v`, `-V`); each also has a GNU long
//! form (`--value NAME`, `--value=NAME`). The same letter means different things to different
//! verbs (`/s` is "recursive" for `query` but "separator" for `add`; `/f` is "find" for `query`
//! but "force" elsewhere), so every verb has its own switch table. Anything the table does not
//! know, a switch given twice, or a missing argument is a [`SyntaxError`].

use super::switches::{Opt, Parsed, QUERY, is_help, tokenize};
use std::fmt;

/// The `reg` operations.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Verb {
    Query,
    Add,
    Delete,
    Copy,
    Compare,
    Rename,
    Flush,
    Export,
    Import,
    Save,
    Load,
    Unload,
    Restore,
    Replace,
}

impl Verb {
    const ALL: [Verb; 14] = [
        Verb::Query,
        Verb::Add,
        Verb::Delete,
        Verb::Copy,
        Verb::Compare,
        Verb::Rename,
        Verb::Flush,
        Verb::Export,
        Verb::Import,
        Verb::Save,
        Verb::Load,
        Verb::Unload,
        Verb::Restore,
        Verb::Replace,
    ];

    /// The verb as `reg.exe` spells it in messages (`QUERY`).
    pub fn upper(self) -> &'static str {
        match self {
            Verb::Query => "QUERY",
            Verb::Add => "ADD",
            Verb::Delete => "DELETE",
            Verb::Copy => "COPY",
            Verb::Compare => "COMPARE",
            Verb::Rename => "RENAME",
            Verb::Flush => "FLUSH",
            Verb::Export => "EXPORT",
            Verb::Import => "IMPORT",
            Verb::Save => "SAVE",
            Verb::Load => "LOAD",
            Verb::Unload => "UNLOAD",
            Verb::Restore => "RESTORE",
            Verb::Replace => "REPLACE",
        }
    }

    fn from_name(name: &str) -> Option<Verb> {
        Verb::ALL.into_iter().find(|v| v.upper().eq_ignore_ascii_case(name))
    }
}

/// Which value a verb works on: `/v NAME` or `/ve` (the default value, named `""`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ValueSel {
    Named(String),
    Default,
}

impl ValueSel {
    /// The registry's name for the value (`""` for the default value).
    pub fn name(&self) -> &str {
        match self {
            ValueSel::Named(n) => n,
            ValueSel::Default => "",
        }
    }
}

/// `query /f PATTERN [/k] [/d] [/c] [/e]`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Find {
    pub pattern: String,
    /// `/k`: search key names.
    pub keys_only: bool,
    /// `/d`: search data.
    pub data_only: bool,
    /// `/c`: case-sensitive.
    pub case_sensitive: bool,
    /// `/e`: whole-name (exact) matches only.
    pub exact: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct QueryArgs {
    pub key: String,
    pub value: Option<ValueSel>,
    pub recursive: bool,
    pub find: Option<Find>,
    pub ty: Option<String>,
    pub json: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct AddArgs {
    pub key: String,
    /// The value to set; `None` only creates the key.
    pub value: Option<ValueSel>,
    pub ty: Option<String>,
    pub separator: Option<String>,
    pub data: Option<String>,
    pub force: bool,
}

/// What `delete` removes.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DeleteWhat {
    Key,
    Value(ValueSel),
    AllValues,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct DeleteArgs {
    pub key: String,
    pub what: DeleteWhat,
    pub force: bool,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CopyArgs {
    pub src: String,
    pub dst: String,
    pub recursive: bool,
    pub force: bool,
}

/// `compare`'s `/oa`, `/od`, `/os`, `/on`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum OutputMode {
    /// Differences and matches.
    All,
    /// Differences only (the default).
    Diff,
    /// Matches only.
    Same,
    /// Only the result.
    None,
}

#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CompareArgs {
    pub key1: String,
    pub key2: String,
    pub value: Option<ValueSel>,
    pub recursive: bool,
    pub output: OutputMode,
    pub json: bool,
}

/// A parsed `reg` command line.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Command {
    /// `reg /?` (`None`) or `reg VERB /?`.
    Help(Option<Verb>),
    Query(QueryArgs),
    Add(AddArgs),
    Delete(DeleteArgs),
    Copy(CopyArgs),
    Compare(CompareArgs),
    Rename {
        key: String,
        new_name: String,
    },
    Flush {
        key: String,
    },
    /// `export KEY FILE [/y]`.
    Export {
        key: String,
        file: String,
        /// `/y`: overwrite an existing file without asking.
        force: bool,
    },
    Import {
        file: String,
    },
    /// `save KEY FILE [/y]`.
    Save {
        key: String,
        file: String,
        /// `/y`: overwrite an existing file without asking.
        force: bool,
    },
    Load {
        key: String,
        file: String,
    },
    Unload {
        key: String,
    },
    Restore {
        key: String,
        file: String,
    },
    /// `replace KEY NEWFILE OLDFILE`.
    Replace {
        key: String,
        new_file: String,
        old_file: String,
    },
}

/// A command line `reg` cannot understand.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SyntaxError {
    /// The verb whose help to point at, if it got that far.
    pub verb: Option<Verb>,
    pub detail: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // reg.exe's "Invalid syntax." first, then what was wrong and where to look.
        let mut detail = self.detail.chars();
        let first = detail.next().map(|c| c.to_uppercase().collect::<String>()).unwrap_or_default();
        let help = self.verb.map_or_else(|| "hivebox reg /?".to_owned(), |v| format!("hivebox reg {} /?", v.upper()));
        write!(f, "Invalid syntax. {first}{}. Type \"{help}\" for usage.", detail.as_str())
    }
}

/// Parses the arguments after `reg`.
pub fn parse(args: &[String]) -> Result<Command, SyntaxError> {
    let Some(first) = args.first() else {
        return Err(SyntaxError { verb: None, detail: "no operation given".into() });
    };
    if is_help(first) {
        return Ok(Command::Help(None));
    }
    let verb = Verb::from_name(first)
        .ok_or_else(|| SyntaxError { verb: None, detail: format!("unknown operation {first:?}") })?;
    let rest = &args[1..];
    if rest.iter().any(|a| is_help(a)) {
        return Ok(Command::Help(Some(verb)));
    }
    let p = tokenize(verb, rest)?;
    match verb {
        Verb::Query => query(&p),
        Verb::Add => {
            let [key] = p.positionals(["KEY"])?;
            let data = p.text(Opt::Data);
            // As reg.exe: `/d` without `/v` or `/ve` sets the default value.
            let value = p.value_sel()?.or_else(|| data.as_ref().map(|_| ValueSel::Default));
            Ok(Command::Add(AddArgs {
                key,
                value,
                ty: p.text(Opt::Type),
                separator: p.text(Opt::Separator),
                data,
                force: p.flag(Opt::Force),
            }))
        }
        Verb::Delete => {
            let [key] = p.positionals(["KEY"])?;
            let what = match (p.value_sel()?, p.flag(Opt::AllValues)) {
                (Some(_), true) => return Err(p.err("/va cannot be used with /v or /ve")),
                (Some(sel), false) => DeleteWhat::Value(sel),
                (None, true) => DeleteWhat::AllValues,
                (None, false) => DeleteWhat::Key,
            };
            Ok(Command::Delete(DeleteArgs { key, what, force: p.flag(Opt::Force) }))
        }
        Verb::Copy => {
            let [src, dst] = p.positionals(["SOURCE KEY", "DESTINATION KEY"])?;
            Ok(Command::Copy(CopyArgs { src, dst, recursive: p.flag(Opt::Recursive), force: p.flag(Opt::Force) }))
        }
        Verb::Compare => compare(&p),
        Verb::Rename => {
            let [key, new_name] = p.positionals(["KEY", "NEW NAME"])?;
            Ok(Command::Rename { key, new_name })
        }
        Verb::Flush => {
            let [key] = p.positionals(["KEY"])?;
            Ok(Command::Flush { key })
        }
        Verb::Export => {
            let [key, file] = p.positionals(["KEY", "FILE"])?;
            Ok(Command::Export { key, file, force: p.flag(Opt::Force) })
        }
        Verb::Import => {
            let [file] = p.positionals(["FILE"])?;
            Ok(Command::Import { file })
        }
        Verb::Save => {
            let [key, file] = p.positionals(["KEY", "FILE"])?;
            Ok(Command::Save { key, file, force: p.flag(Opt::Force) })
        }
        Verb::Load => {
            let [key, file] = p.positionals(["KEY", "FILE"])?;
            Ok(Command::Load { key, file })
        }
        Verb::Unload => {
            let [key] = p.positionals(["KEY"])?;
            Ok(Command::Unload { key })
        }
        Verb::Restore => {
            let [key, file] = p.positionals(["KEY", "FILE"])?;
            Ok(Command::Restore { key, file })
        }
        Verb::Replace => {
            let [key, new_file, old_file] = p.positionals(["KEY", "NEWFILE", "OLDFILE"])?;
            Ok(Command::Replace { key, new_file, old_file })
        }
    }
}

fn query(p: &Parsed) -> Result<Command, SyntaxError> {
    let [key] = p.positionals(["KEY"])?;
    let value = p.value_sel()?;
    let find = match p.text(Opt::Find) {
        Some(pattern) => {
            if value.is_some() {
                return Err(p.err("/f cannot be used with /v or /ve"));
            }
            Some(Find {
                pattern,
                keys_only: p.flag(Opt::KeysOnly),
                data_only: p.flag(Opt::DataOnly),
                case_sensitive: p.flag(Opt::CaseSensitive),
                exact: p.flag(Opt::Exact),
            })
        }
        None => {
            if let Some(s) = [Opt::KeysOnly, Opt::DataOnly, Opt::CaseSensitive, Opt::Exact].iter().find(|o| p.flag(**o))
            {
                let name = QUERY.iter().find(|spec| spec.opt == *s).map_or("", |spec| spec.short);
                return Err(p.err(format!("/{name} needs /f")));
            }
            None
        }
    };
    Ok(Command::Query(QueryArgs {
        key,
        value,
        recursive: p.flag(Opt::Recursive),
        find,
        ty: p.text(Opt::Type),
        json: p.flag(Opt::Json),
    }))
}

fn compare(p: &Parsed) -> Result<Command, SyntaxError> {
    let [key1, key2] = p.positionals(["FIRST KEY", "SECOND KEY"])?;
    let mut modes: Vec<OutputMode> = p
        .opts
        .iter()
        .filter_map(|(o, _)| match o {
            Opt::Output(m) => Some(*m),
            _ => None,
        })
        .collect();
    if let Some(named) = p.text(Opt::OutputNamed) {
        modes.push(match named.to_ascii_lowercase().as_str() {
            "all" | "a" => OutputMode::All,
            "diff" | "d" => OutputMode::Diff,
            "same" | "s" => OutputMode::Same,
            "none" | "n" => OutputMode::None,
            _ => {
                return Err(p.err(format!("--output takes all, diff, same or none, not {named:?}")));
            }
        });
    }
    if modes.len() > 1 {
        return Err(p.err("only one of /oa, /od, /os, /on may be given"));
    }
    Ok(Command::Compare(CompareArgs {
        key1,
        key2,
        value: p.value_sel()?,
        recursive: p.flag(Opt::Recursive),
        output: modes.first().copied().unwrap_or(OutputMode::Diff),
        json: p.flag(Opt::Json),
    }))
}

#[cfg(test)]
mod tests;
