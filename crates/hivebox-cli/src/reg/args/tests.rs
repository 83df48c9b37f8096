//! The argument parser.

use super::*;

fn parse_line(line: &str) -> Result<Command, SyntaxError> {
    let args: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
    parse(&args)
}

fn add(line: &str) -> AddArgs {
    match parse_line(line).unwrap() {
        Command::Add(a) => a,
        other => panic!("not an add: {other:?}"),
    }
}

fn query(line: &str) -> QueryArgs {
    match parse_line(line).unwrap() {
        Command::Query(q) => q,
        other => panic!("not a query: {other:?}"),
    }
}

#[test]
fn switches_are_case_insensitive_with_either_prefix() {
    for line in [
        r"add HKLM\X /v Name /t REG_DWORD /d 5 /f",
        r"ADD HKLM\X -V Name -T REG_DWORD -D 5 -F",
        r"Add HKLM\X --value Name --type REG_DWORD --data 5 --force",
        r"add HKLM\X --value=Name --type=REG_DWORD --data=5 --FORCE",
    ] {
        let a = add(line);
        assert_eq!(a.key, r"HKLM\X", "{line}");
        assert_eq!(a.value, Some(ValueSel::Named("Name".into())), "{line}");
        assert_eq!(a.ty.as_deref(), Some("REG_DWORD"), "{line}");
        assert_eq!(a.data.as_deref(), Some("5"), "{line}");
        assert!(a.force, "{line}");
    }
}

#[test]
fn letters_mean_different_things_per_verb() {
    let a = add(r"add HKLM\X /v M /t REG_MULTI_SZ /s # /d a#b");
    assert_eq!(a.separator.as_deref(), Some("#"));
    assert!(!a.force);
    let q = query(r"query HKLM\X /s /f pat /d");
    assert!(q.recursive);
    assert_eq!(q.find.as_ref().map(|f| (f.pattern.as_str(), f.data_only, f.keys_only)), Some(("pat", true, false)));
    let Command::Delete(d) = parse_line(r"delete HKLM\X /f").unwrap() else { panic!() };
    assert!(d.force);
    assert_eq!(d.what, DeleteWhat::Key);
}

#[test]
fn value_selection() {
    assert_eq!(add(r"add HKLM\X /ve /d hi").value, Some(ValueSel::Default));
    assert_eq!(add(r"add HKLM\X --default").value, Some(ValueSel::Default));
    // reg.exe: data without a value name goes to the default value.
    assert_eq!(add(r"add HKLM\X /d hi").value, Some(ValueSel::Default));
    assert_eq!(add(r"add HKLM\X").value, None);
    assert_eq!(add(r"add HKLM\X /t REG_SZ").value, None);
    let Command::Delete(d) = parse_line(r"delete HKLM\X --all-values").unwrap() else { panic!() };
    assert_eq!(d.what, DeleteWhat::AllValues);
    let Command::Delete(d) = parse_line(r"delete HKLM\X /ve").unwrap() else { panic!() };
    assert_eq!(d.what, DeleteWhat::Value(ValueSel::Default));
    assert_eq!(query(r"query HKLM\X /v a").value, Some(ValueSel::Named("a".into())));
}

#[test]
fn syntax_errors() {
    for line in [
        "",
        "frobnicate HKLM",
        "query",
        r"query HKLM\X HKLM\Y",
        r"query HKLM\X /v",
        r"query HKLM\X /v a /v b",
        r"query HKLM\X /v a /ve",
        r"query HKLM\X /s /s",
        r"query HKLM\X /k",
        r"query HKLM\X /x",
        r"query HKLM\X /f a /v b",
        r"query HKLM\X --json=yes",
        r"add HKLM\X /oa",
        r"delete HKLM\X /va /v a",
        r"copy HKLM\X",
        r"compare HKLM\X HKLM\Y /oa /od",
        r"compare HKLM\X HKLM\Y --output sideways",
        r"rename HKLM\X",
        r"rename HKLM\X Y Z",
        r"flush HKLM\X /s",
    ] {
        assert!(parse_line(line).is_err(), "{line:?} parsed");
    }
    let e = parse_line(r"query HKLM\X /zz").unwrap_err();
    assert_eq!(e.verb, Some(Verb::Query));
    assert_eq!(e.to_string(), "Invalid syntax. Unknown option /zz. Type \"hivebox reg QUERY /?\" for usage.");
}

#[test]
fn help_anywhere() {
    assert_eq!(parse_line("/?").unwrap(), Command::Help(None));
    assert_eq!(parse_line("--help").unwrap(), Command::Help(None));
    assert_eq!(parse_line("query /?").unwrap(), Command::Help(Some(Verb::Query)));
    assert_eq!(parse_line(r"add HKLM\X -h").unwrap(), Command::Help(Some(Verb::Add)));
}

#[test]
fn compare_modes_and_views() {
    let Command::Compare(c) = parse_line(r"compare HKLM\X HKLM\Y /S /OA --json /reg:64").unwrap() else { panic!() };
    assert!(c.recursive && c.json);
    assert_eq!(c.output, OutputMode::All);
    let Command::Compare(c) = parse_line(r"compare HKLM\X HKLM\Y --output=same").unwrap() else { panic!() };
    assert_eq!(c.output, OutputMode::Same);
    let Command::Compare(c) = parse_line(r"compare HKLM\X HKLM\Y").unwrap() else { panic!() };
    assert_eq!(c.output, OutputMode::Diff);
    assert_eq!(
        parse_line(r"rename HKLM\X Y").unwrap(),
        Command::Rename { key: r"HKLM\X".into(), new_name: "Y".into() }
    );
}

#[test]
fn option_values_may_look_like_switches() {
    let a = add(r"add HKLM\X /v -5 /d /f");
    assert_eq!(a.value, Some(ValueSel::Named("-5".into())));
    assert_eq!(a.data.as_deref(), Some("/f"));
    assert!(!a.force);
    let args: Vec<String> = ["add", r"HKLM\X", "/v", "with space", "/d", ""].map(String::from).to_vec();
    let Command::Add(a) = parse(&args).unwrap() else { panic!() };
    assert_eq!(a.value, Some(ValueSel::Named("with space".into())));
    assert_eq!(a.data.as_deref(), Some(""));
}

#[test]
fn export_and_import_take_unix_paths() {
    let export = |key: &str, file: &str, force| Command::Export { key: key.into(), file: file.into(), force };
    assert_eq!(parse_line(r"export HKCU\X out.reg").unwrap(), export(r"HKCU\X", "out.reg", false));
    assert_eq!(parse_line(r"EXPORT HKCU\X /tmp/out.reg /Y").unwrap(), export(r"HKCU\X", "/tmp/out.reg", true));
    assert_eq!(parse_line(r"export HKCU\X --yes /out.reg").unwrap(), export(r"HKCU\X", "/out.reg", true));
    assert_eq!(parse_line(r"import /tmp/in.reg /reg:64").unwrap(), Command::Import { file: "/tmp/in.reg".into() });
    // `--` ends the switches: a file may start with `-`, or be called /y.
    assert_eq!(parse_line(r"export HKCU\X -- /y").unwrap(), export(r"HKCU\X", "/y", false));
    assert_eq!(parse_line(r"import -- -in.reg").unwrap(), Command::Import { file: "-in.reg".into() });
    assert!(parse_line(r"import -in.reg").unwrap_err().to_string().contains("Unknown option -in.reg"));
    assert!(parse_line(r"export HKCU\X").unwrap_err().to_string().contains("Missing FILE"));
    assert!(parse_line(r"import a.reg b.reg").unwrap_err().to_string().contains("Unexpected argument"));
    // Other verbs still refuse unknown switches that start with /.
    assert!(parse_line(r"query HKCU\X /tmp/x").unwrap_err().to_string().contains("Unknown option /tmp/x"));
}
