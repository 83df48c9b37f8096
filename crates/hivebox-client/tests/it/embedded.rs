//! The same code in-process: the daemon's `Embedded` transport over an in-memory registry.

use super::*;
use hivebox_client::winreg::set_default_registry;
use hivebox_core::ManualClock;
use hivebox_daemon::Embedded;

/// An in-memory registry and a transport serving it to this process.
fn embedded() -> (hivebox_core::Registry, Registry) {
    let core = hivebox_core::Registry::fresh_in_memory(Arc::new(ManualClock::new(0)));
    let me = hivebox_daemon::identity::this_process().unwrap();
    let transport: Arc<dyn Transport> = Arc::new(Embedded::with_registry(core.clone(), None, &me));
    (core, Registry::new(transport))
}

#[test]
fn a_ported_program_runs_in_process() {
    let (_, reg) = embedded();
    ported_program(&reg, r"SOFTWARE\winreg-it\ported");
}

#[test]
fn every_value_kind_round_trips_in_process() {
    let (_, reg) = embedded();
    let (key, _) = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE).create_subkey(r"SOFTWARE\winreg-it\values").unwrap();
    value_round_trips(&key);
}

#[test]
fn hkcu_in_process() {
    let (core, reg) = embedded();
    let sid = reg.transport().identity().sid.clone();
    // A fresh in-memory registry has no user hive yet: mount one, as the daemon does when the
    // user connects.
    let user = format!(r"\REGISTRY\USER\{sid}");
    let image = hivebox_core::KeyImage { name: sid.clone(), ..Default::default() };
    let system = hivebox_core::Caller::system();
    core.load_key(&system, &user, "(memory)", image, Box::new(hivebox_core::MemoryStorage)).unwrap();
    let (k, _) = RegKey::predef_on(&reg, HKEY_CURRENT_USER).create_subkey(r"Software\x").unwrap();
    assert_eq!(k.native_name().unwrap(), format!(r"\REGISTRY\USER\{sid}\Software\x"));
}

/// Every handle a `RegKey` or an operation opens is closed: the registry's count of open
/// handles comes back to where it was.
#[test]
fn nothing_leaks_handles() {
    let (core, reg) = embedded();
    let hklm = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE);
    let baseline = core.open_handles();
    {
        let (base, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\handles\deep").unwrap();
        assert_eq!(core.open_handles(), baseline + 1, "the count sees an open key");
        base.set_value("v", &1u32).unwrap();
    }
    assert_eq!(core.open_handles(), baseline);

    for i in 0..200 {
        let k = hklm.open_subkey(r"SOFTWARE\winreg-it\handles").unwrap();
        let (c, _) = k.create_subkey(format!("c{}", i % 7)).unwrap();
        c.set_value("i", &(i as u32)).unwrap();
        assert!(k.open_subkey("missing").is_err());
        // Operations on predefined keys open a handle for the call and close it.
        assert!(hklm.enum_keys().count() > 2);
        assert!(hklm.enum_values().count() < 1000);
        let _ = hklm.enum_keys().nth(1);
        assert!(hklm.get_value::<String, _>("missing").is_err());
        hklm.query_info().unwrap();
        // A partial enumeration, dropped midway.
        let mut it = k.enum_keys();
        it.next().unwrap().unwrap();
    }
    assert_eq!(core.open_handles(), baseline);

    // Transactions, trees, renames and copies.
    for _ in 0..20 {
        let t = Transaction::new_on(&reg).unwrap();
        let (k, _) = hklm.create_subkey_transacted(r"SOFTWARE\winreg-it\txn\a\b", &t).unwrap();
        k.set_value("v", &"x").unwrap();
        drop(k);
        t.commit().unwrap();
        let (dest, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\copy").unwrap();
        hklm.open_subkey(r"SOFTWARE\winreg-it\txn").unwrap().copy_tree("", &dest).unwrap();
        drop(dest);
        hklm.rename_subkey(r"SOFTWARE\winreg-it\copy", "copied").unwrap();
        hklm.delete_subkey_all(r"SOFTWARE\winreg-it\copied").unwrap();
        hklm.delete_subkey_all(r"SOFTWARE\winreg-it\txn").unwrap();
    }
    assert_eq!(core.open_handles(), baseline);

    hklm.delete_subkey_all(r"SOFTWARE\winreg-it").unwrap();
    assert_eq!(core.open_handles(), baseline);
}

/// `RegKey::predef` and `Transaction::new` use the default connection, here an in-process
/// one. (The only test that sets the process-wide default.)
#[test]
fn the_default_connection() {
    let (_, reg) = embedded();
    set_default_registry(reg.clone());
    let hklm = RegKey::predef(HKEY_LOCAL_MACHINE);
    let (k, _) = hklm.create_subkey(r"SOFTWARE\winreg-it\default").unwrap();
    k.set_value("v", &5u32).unwrap();
    let through_reg = RegKey::predef_on(&reg, HKEY_LOCAL_MACHINE).open_subkey(r"SOFTWARE\winreg-it\default").unwrap();
    assert_eq!(through_reg.get_value::<u32, _>("v").unwrap(), 5);

    let t = Transaction::new().unwrap();
    let (k, _) = hklm.create_subkey_transacted(r"SOFTWARE\winreg-it\default\t", &t).unwrap();
    k.set_value("v", &6u32).unwrap();
    t.commit().unwrap();
    assert_eq!(hklm.open_subkey(r"SOFTWARE\winreg-it\default\t").unwrap().get_value::<u32, _>("v").unwrap(), 6);
    hklm.delete_subkey_all(r"SOFTWARE\winreg-it").unwrap();
}
