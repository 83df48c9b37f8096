//! `hivebox demo`: the scenes run and end with every claim of the summary true.

use crate::Home;

#[test]
fn the_demo_boxes_the_trial_installer_and_leaves_the_host_untouched() {
    let out = Home::new().run(&["demo"]);
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    for line in [
        "the Run key write was blocked (STATUS_ACCESS_DENIED)",
        "the boxed Run key write was blocked too",
        "the host registry is untouched",
        "after the discard the trial is gone",
        "(renamed from HKEY_LOCAL_MACHINE\\SOFTWARE\\Vendor\\Legacy)",
        "box trial",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in:\n{}", out.stdout);
    }
    // The box's view and the host's, side by side.
    assert!(out.stdout.contains("HKLM\\SOFTWARE\\Trial\\Settings                   exists   absent"), "{}", out.stdout);
    assert!(out.stdout.contains("HKLM\\SOFTWARE\\Vendor\\OldTool                   absent   exists"), "{}", out.stdout);
}
