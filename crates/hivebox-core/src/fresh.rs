//! The layout of a fresh registry: the standard roots and hives, `CurrentControlSet` as a
//! symbolic link to `ControlSet001`, and the volatile `HARDWARE` key rebuilt at every start.

use crate::access::{DELETE, KEY_CREATE_LINK, KEY_CREATE_SUB_KEY, KEY_SET_VALUE, WRITE_DAC, WRITE_OWNER};
use crate::storage::KeyImage;
use crate::tree::Tree;
use crate::value::Value;

/// Rights reserved to SYSTEM on `ControlSet001\Enum`, as its Windows ACL reserves them.
pub const ENUM_SYSTEM_ONLY: u32 =
    KEY_SET_VALUE | KEY_CREATE_SUB_KEY | KEY_CREATE_LINK | DELETE | WRITE_DAC | WRITE_OWNER;

fn key(name: &str, now: u64, subkeys: Vec<KeyImage>) -> KeyImage {
    KeyImage { name: name.into(), last_write: now, subkeys, ..KeyImage::default() }
}

fn with_values(mut k: KeyImage, values: Vec<(&str, Value)>) -> KeyImage {
    k.values = values.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
    k
}

/// The image of a fresh registry at time `now`.
pub fn fresh_image(now: u64) -> KeyImage {
    let k = |name: &str, subkeys| key(name, now, subkeys);
    let mut enum_key = k("Enum", vec![k("Root", vec![])]);
    // As on Windows, only SYSTEM may change Enum; everyone may read it.
    let enum_sd: std::sync::Arc<[u8]> = crate::security::descriptor(&[
        (crate::security::SID_SYSTEM, crate::access::KEY_ALL_ACCESS),
        (crate::security::SID_ADMINISTRATORS, crate::access::KEY_READ),
        (crate::security::SID_EVERYONE, crate::access::KEY_READ),
    ])
    .into();
    enum_key.system_only = ENUM_SYSTEM_ONLY;
    enum_key.security = Some(enum_sd.clone());
    enum_key.subkeys[0].system_only = ENUM_SYSTEM_ONLY;
    enum_key.subkeys[0].security = Some(enum_sd);
    let control_set = k(
        "ControlSet001",
        vec![
            k("Control", vec![k("Session Manager", vec![k("Environment", vec![])]), k("Lsa", vec![])]),
            enum_key,
            k("Hardware Profiles", vec![k("0001", vec![]), k("Current", vec![])]),
            k("Services", vec![]),
        ],
    );
    let mut current = k("CurrentControlSet", vec![]);
    current.link = true;
    current.values = vec![("SymbolicLinkValue".into(), Value::link("\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001"))];
    let select = with_values(
        k("Select", vec![]),
        vec![
            ("Current", Value::dword(1)),
            ("Default", Value::dword(1)),
            ("Failed", Value::dword(0)),
            ("LastKnownGood", Value::dword(1)),
        ],
    );
    let windows_cv = k(
        "CurrentVersion",
        vec![k("Run", vec![]), k("RunOnce", vec![]), k("Policies", vec![]), k("Uninstall", vec![])],
    );
    let nt_cv = with_values(
        k("CurrentVersion", vec![k("Winlogon", vec![]), k("Image File Execution Options", vec![])]),
        vec![("ProductName", Value::sz("hivebox")), ("CurrentBuild", Value::sz("26100"))],
    );
    let software = k(
        "SOFTWARE",
        vec![
            k("Classes", vec![]),
            k("Microsoft", vec![k("Windows", vec![windows_cv]), k("Windows NT", vec![nt_cv])]),
            k("Policies", vec![]),
        ],
    );
    let machine = k(
        "MACHINE",
        vec![k("SAM", vec![]), k("SECURITY", vec![]), software, k("SYSTEM", vec![control_set, current, select])],
    );
    let default_user = k(".DEFAULT", vec![k("Software", vec![]), k("Environment", vec![])]);
    let users = k("USER", vec![default_user]);
    key("REGISTRY", now, vec![machine, users])
}

/// The base hives of a fresh registry, each with its native mount path: `SAM`, `SECURITY`,
/// `SOFTWARE`, `SYSTEM` under `\REGISTRY\MACHINE` and `.DEFAULT` under `\REGISTRY\USER`.
pub fn fresh_hives(now: u64) -> Vec<(String, KeyImage)> {
    let image = fresh_image(now);
    let mut out = Vec::new();
    for master in image.subkeys {
        for hive in master.subkeys {
            out.push((format!("\\REGISTRY\\{}\\{}", master.name, hive.name), hive));
        }
    }
    out
}

/// Adds the volatile keys every start rebuilds (`HKLM\HARDWARE`), if missing.
pub(crate) fn add_volatile_keys(tree: &mut Tree, now: u64) {
    let root = tree.root();
    let Some(machine) = tree.child(root, "MACHINE") else { return };
    if tree.child(machine, "HARDWARE").is_some() {
        return;
    }
    // Rebuilding the volatile key is not a change to MACHINE: keep its stored last write time.
    let machine_time = tree.node(machine).last_write;
    let hardware = tree.insert_child(machine, "HARDWARE", None, now);
    tree.node_mut(hardware).volatile = true;
    tree.node_mut(machine).last_write = machine_time;
    for name in ["DESCRIPTION", "DEVICEMAP", "RESOURCEMAP"] {
        tree.insert_child(hardware, name, None, now);
    }
}
