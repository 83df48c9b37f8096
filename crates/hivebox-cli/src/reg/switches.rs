//! The switch tables of the `reg` verbs and the tokenizer that reads a command line against
//! one: `/x`, `-x` (case-insensitive) and `--long[=value]` switches, and positional arguments.

use super::args::{OutputMode, SyntaxError, ValueSel, Verb};

/// What a switch means (the same meaning may have different letters in different verbs).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Opt {
    Value,
    Default,
    AllValues,
    Recursive,
    Separator,
    Type,
    Data,
    Force,
    Find,
    KeysOnly,
    DataOnly,
    CaseSensitive,
    Exact,
    Output(OutputMode),
    OutputNamed,
    Json,
    View32,
    View64,
}

/// One switch a verb accepts: its short (`/x`) and long (`--x`) names.
#[derive(Clone, Copy)]
pub(super) struct Spec {
    pub(super) opt: Opt,
    pub(super) short: &'static str,
    long: &'static str,
    takes_arg: bool,
}

const fn sw(opt: Opt, short: &'static str, long: &'static str) -> Spec {
    Spec { opt, short, long, takes_arg: false }
}

const fn arg(opt: Opt, short: &'static str, long: &'static str) -> Spec {
    Spec { opt, short, long, takes_arg: true }
}

/// `/reg:32` and `/reg:64` are accepted everywhere and change nothing: hivebox has one view.
const VIEWS: [Spec; 2] = [sw(Opt::View32, "reg:32", ""), sw(Opt::View64, "reg:64", "")];

pub(super) const QUERY: &[Spec] = &[
    arg(Opt::Value, "v", "value"),
    sw(Opt::Default, "ve", "default"),
    sw(Opt::Recursive, "s", "recursive"),
    arg(Opt::Find, "f", "find"),
    sw(Opt::KeysOnly, "k", "keys-only"),
    sw(Opt::DataOnly, "d", "data-only"),
    sw(Opt::CaseSensitive, "c", "case-sensitive"),
    sw(Opt::Exact, "e", "exact"),
    arg(Opt::Type, "t", "type"),
    sw(Opt::Json, "", "json"),
    VIEWS[0],
    VIEWS[1],
];

const ADD: &[Spec] = &[
    arg(Opt::Value, "v", "value"),
    sw(Opt::Default, "ve", "default"),
    arg(Opt::Type, "t", "type"),
    arg(Opt::Separator, "s", "separator"),
    arg(Opt::Data, "d", "data"),
    sw(Opt::Force, "f", "force"),
    VIEWS[0],
    VIEWS[1],
];

const DELETE: &[Spec] = &[
    arg(Opt::Value, "v", "value"),
    sw(Opt::Default, "ve", "default"),
    sw(Opt::AllValues, "va", "all-values"),
    sw(Opt::Force, "f", "force"),
    VIEWS[0],
    VIEWS[1],
];

const COPY: &[Spec] = &[sw(Opt::Recursive, "s", "recursive"), sw(Opt::Force, "f", "force"), VIEWS[0], VIEWS[1]];

const COMPARE: &[Spec] = &[
    arg(Opt::Value, "v", "value"),
    sw(Opt::Default, "ve", "default"),
    sw(Opt::Recursive, "s", "recursive"),
    sw(Opt::Output(OutputMode::All), "oa", ""),
    sw(Opt::Output(OutputMode::Diff), "od", ""),
    sw(Opt::Output(OutputMode::Same), "os", ""),
    sw(Opt::Output(OutputMode::None), "on", ""),
    arg(Opt::OutputNamed, "", "output"),
    sw(Opt::Json, "", "json"),
    VIEWS[0],
    VIEWS[1],
];

/// `export`'s and `save`'s `/y` overwrites the file without asking, as `add`'s `/f` overwrites a value.
const EXPORT: &[Spec] = &[sw(Opt::Force, "y", "yes"), VIEWS[0], VIEWS[1]];

const VIEW_ONLY: &[Spec] = &VIEWS;

pub(super) fn is_help(arg: &str) -> bool {
    ["/?", "-?", "/h", "-h", "--help"].iter().any(|h| h.eq_ignore_ascii_case(arg))
}

/// The switches and positional arguments of one verb's command line.
pub(super) struct Parsed {
    pub(super) verb: Verb,
    pub(super) opts: Vec<(Opt, Option<String>)>,
    pub(super) positional: Vec<String>,
}

impl Parsed {
    pub(super) fn err(&self, detail: impl Into<String>) -> SyntaxError {
        SyntaxError { verb: Some(self.verb), detail: detail.into() }
    }

    pub(super) fn flag(&self, opt: Opt) -> bool {
        self.opts.iter().any(|(o, _)| *o == opt)
    }

    pub(super) fn text(&self, opt: Opt) -> Option<String> {
        self.opts.iter().find(|(o, _)| *o == opt).and_then(|(_, v)| v.clone())
    }

    /// Exactly `N` positional arguments, named for the message.
    pub(super) fn positionals<const N: usize>(&self, names: [&str; N]) -> Result<[String; N], SyntaxError> {
        if self.positional.len() < N {
            return Err(self.err(format!("missing {}", names[self.positional.len()])));
        }
        if let Some(extra) = self.positional.get(N) {
            return Err(self.err(format!("unexpected argument {extra:?}")));
        }
        let mut it = self.positional.iter().cloned();
        Ok(names.map(|_| it.next().unwrap_or_default()))
    }

    /// `/v NAME` or `/ve`, not both.
    pub(super) fn value_sel(&self) -> Result<Option<ValueSel>, SyntaxError> {
        match (self.text(Opt::Value), self.flag(Opt::Default)) {
            (Some(_), true) => Err(self.err("/v and /ve cannot be used together")),
            (Some(name), false) => Ok(Some(ValueSel::Named(name))),
            (None, true) => Ok(Some(ValueSel::Default)),
            (None, false) => Ok(None),
        }
    }
}

pub(super) fn tokenize(verb: Verb, rest: &[String]) -> Result<Parsed, SyntaxError> {
    let specs = table(verb);
    let mut parsed = Parsed { verb, opts: Vec::new(), positional: Vec::new() };
    let mut i = 0;
    while i < rest.len() {
        let token = &rest[i];
        i += 1;
        if token == "--" {
            // Everything after `--` is a positional argument, even if it looks like a switch.
            parsed.positional.extend(rest[i..].iter().cloned());
            break;
        }
        let (spec, inline) = if let Some(long) = token.strip_prefix("--") {
            let (name, inline) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let spec = specs.iter().find(|s| !s.long.is_empty() && s.long.eq_ignore_ascii_case(name));
            (spec.ok_or_else(|| parsed.err(format!("unknown option {token}")))?, inline)
        } else if token.len() > 1 && (token.starts_with('/') || token.starts_with('-')) {
            let name = &token[1..];
            match specs.iter().find(|s| !s.short.is_empty() && s.short.eq_ignore_ascii_case(name)) {
                Some(spec) => (spec, None),
                // A verb that takes a file reads an absolute path (`/tmp/x.reg`) as one.
                None if token.starts_with('/') && takes_file(verb) => {
                    parsed.positional.push(token.clone());
                    continue;
                }
                None => return Err(parsed.err(format!("unknown option {token}"))),
            }
        } else {
            parsed.positional.push(token.clone());
            continue;
        };
        let value = match (spec.takes_arg, inline) {
            (true, Some(v)) => Some(v),
            (true, None) => {
                let v = rest.get(i).ok_or_else(|| parsed.err(format!("option {token} needs a value")))?;
                i += 1;
                Some(v.clone())
            }
            (false, Some(_)) => {
                return Err(parsed.err(format!("option --{} takes no value", spec.long)));
            }
            (false, None) => None,
        };
        if parsed.flag(spec.opt) {
            return Err(parsed.err(format!("option {token} given twice")));
        }
        parsed.opts.push((spec.opt, value));
    }
    Ok(parsed)
}

/// Whether a verb takes a file name, which may start with `/`.
fn takes_file(verb: Verb) -> bool {
    matches!(verb, Verb::Export | Verb::Import | Verb::Save | Verb::Load | Verb::Restore | Verb::Replace)
}

/// The switches a verb accepts.
fn table(verb: Verb) -> &'static [Spec] {
    match verb {
        Verb::Query => QUERY,
        Verb::Add => ADD,
        Verb::Delete => DELETE,
        Verb::Copy => COPY,
        Verb::Compare => COMPARE,
        Verb::Export | Verb::Save => EXPORT,
        Verb::Rename | Verb::Flush | Verb::Import | Verb::Load | Verb::Unload | Verb::Restore | Verb::Replace => {
            VIEW_ONLY
        }
    }
}
