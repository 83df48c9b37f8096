//! The policy file: parsing, errors with lines, and the decisions a compiled policy makes.

use hivebox_core::protect::bits::*;
use hivebox_core::protect::policy::{Actor, DenyReason, Details, Subject};
use hivebox_core::protect::{CompiledPolicy, RegOp};
use hivebox_policy::{DEFAULT_POLICY, compile, default_policy, parse};

const ISSUE_EXAMPLE: &str = r#"
[[rule]]
id = "persistence-run-keys"
key = 'HKLM\Software\Microsoft\Windows\CurrentVersion\Run'   # HK* aliases or \REGISTRY\...
values = ["*"]
deny = ["set-value", "delete-value"]
notify = ["create-key", "delete-key"]
sync = false

[[hardening]]
prefix = 'HKLM\SYSTEM\CurrentControlSet\Services\hivebox'

[[tamper-protection]]
key = 'HKLM\Software\hivebox\Policy'

[processes]
friendly = ["/usr/lib/hivebox/*"]
excluded = []
service = ["/usr/bin/hivebox"]
"#;

fn actor(image: &str) -> Actor<'_> {
    Actor { image, pid: 100, ..Actor::default() }
}

fn judge(p: &CompiledPolicy, op: RegOp, key: &str, value: Option<&str>, image: &str) -> Option<DenyReason> {
    p.judge(&Subject { op, key, value_name: value, new_key: None, details: None }, &actor(image)).denied
}

const RUN: &str = r"\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run";

#[test]
fn the_documented_example_compiles_and_decides() {
    let p = compile("policy.toml", ISSUE_EXAMPLE).unwrap();
    assert_eq!(judge(&p, RegOp::SetValue, RUN, Some("evil"), "/tmp/x"), Some(DenyReason::Rule));
    // Exempt classes from kernel facts: friendly and service images.
    assert_eq!(judge(&p, RegOp::SetValue, RUN, Some("evil"), "/usr/lib/hivebox/helper"), None);
    assert_eq!(judge(&p, RegOp::SetValue, RUN, Some("evil"), "/usr/bin/hivebox"), None);
    // A glob `*` stays within one path component.
    assert_eq!(judge(&p, RegOp::SetValue, RUN, Some("evil"), "/usr/lib/hivebox/x/helper"), Some(DenyReason::Rule));
    // Notify-only operations are not denied.
    let j = p.judge(
        &Subject { op: RegOp::CreateKey, key: RUN, value_name: None, new_key: None, details: None },
        &actor("/tmp/x"),
    );
    assert_eq!(j.denied, None);
    assert!(j.notify);
    // Hardening: every handled operation under the prefix, resolved control set included.
    let svc = r"\REGISTRY\MACHINE\SYSTEM\ControlSet001\Services\hivebox\Parameters";
    assert!(matches!(judge(&p, RegOp::SetValue, svc, Some("x"), "/tmp/x"), Some(DenyReason::Hardening(_))));
    assert_eq!(judge(&p, RegOp::SetValue, svc, Some("x"), "/usr/bin/hivebox"), None);
    // Tamper protection: everyone, the service included, on the key and below.
    let pol = r"\REGISTRY\MACHINE\SOFTWARE\hivebox\Policy\Rules";
    assert_eq!(judge(&p, RegOp::DeleteKey, pol, None, "/usr/bin/hivebox"), Some(DenyReason::TamperProtection));
}

#[test]
fn errors_name_file_line_and_rule() {
    let text = "[[rule]]\nid = \"a\"\nkey = 'HKLM\\x'\nnotify = [\"set-valu\"]\n\n[[rule]]\nid = \"a\"\nkey = 'HKXX\\y'\nnotify = [\"create-key\"]\n";
    let errs = parse("p.toml", text).unwrap_err();
    let msgs: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    assert!(msgs.iter().any(|m| m.starts_with("p.toml:4: rule `a`: unknown operation `set-valu`")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("p.toml:7: rule `a`: duplicate id (first used on line 2)")), "{msgs:?}");
    assert!(msgs.iter().any(|m| m.starts_with("p.toml:8: rule `a`: key `HKXX\\y`")), "{msgs:?}");
    let errs = parse("p.toml", "[[rule]]\nid = \"b\"\nkey = 'HKLM\\x'\nnotify = [\"create-key\"]\nwhen = { field = \"User\", equals = \"x\" }\n").unwrap_err();
    assert!(errs.to_string().contains("p.toml:5: rule `b`: when: unknown field `User`"), "{errs}");
    let errs =
        parse("p.toml", "[[rule]]\nid = \"c\"\nkey = 'HKLM\\x'\nnotify = [\"create-key\"]\nbogus = 1\n").unwrap_err();
    assert!(errs.to_string().starts_with("p.toml:"), "{errs}");
    assert!(errs.to_string().contains("bogus"), "{errs}");
    let errs = parse("p.toml", "[[rule]]\nid = \"d\"\nkey = 'HKLM\\x\\{0}'\nnotify = [\"create-key\"]\n").unwrap_err();
    assert!(errs.to_string().contains("p.toml:3: rule `d`"), "{errs}");
    let errs = parse("p.toml", "[[rule]]\nid = \"e\"\nkey = 'HKLM\\x'\ndeny = [\"set-value\"]\nin-box = \"maybe\"\n")
        .unwrap_err();
    assert!(errs.to_string().contains("p.toml:5: rule `e`: `in-box` is \"allow\" or \"deny\""), "{errs}");
}

#[test]
fn conditions_refine_key_rules_and_index_sigma_style_rules() {
    let text = r#"
[[rule]]
id = "run-from-temp"
notify = ["set-value"]
when = { all = [ { field = "TargetObject", contains = '\CurrentVersion\Run\' }, { field = "Details", contains = '\Temp\' }, { not = { field = "Image", endswith = '\msiexec.exe' } } ] }
"#;
    let p = compile("p.toml", text).unwrap();
    let s = |details, image| {
        p.judge(
            &Subject {
                op: RegOp::SetValue,
                key: RUN,
                value_name: Some("x"),
                new_key: None,
                details: Some(Details::Text(details)),
            },
            &actor(image),
        )
        .notify
    };
    assert!(s(r"C:\Users\a\AppData\Local\Temp\x.exe", r"C:\x\evil.exe"));
    assert!(!s(r"C:\Users\a\AppData\Local\Temp\x.exe", r"C:\Windows\System32\msiexec.exe"));
    assert!(!s(r"C:\Program Files\x.exe", r"C:\x\evil.exe"));
}

#[test]
fn the_default_policy_is_valid_and_in_notify_mode() {
    let spec = parse("default", DEFAULT_POLICY).unwrap();
    assert!(spec.rules.len() >= 90, "{}", spec.rules.len());
    for r in &spec.rules {
        assert!(r.deny.is_empty(), "{} denies: the default policy only notifies", r.id);
    }
    let p = default_policy();
    let j = p.judge(
        &Subject { op: RegOp::SetValue, key: RUN, value_name: Some("updater"), new_key: None, details: None },
        &actor("/tmp/x"),
    );
    assert_eq!(j.denied, None);
    assert!(j.notify && j.retrieve_old);
    assert_eq!(j.final_rules & SET_VALUE_KEY_OPERATION, SET_VALUE_KEY_OPERATION);
}
