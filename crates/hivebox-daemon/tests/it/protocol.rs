//! The protocol's guarantees seen from clients: pipelined replies in order, change
//! notifications pushed, handles and transactions private to their connection, hive loading
//! reserved to the privileged.

use super::*;
use hivebox_core::access::{KEY_ALL_ACCESS, KEY_NOTIFY, KEY_READ};
use hivebox_core::{NtStatus, Value};
use hivebox_proto::{HKEY_LOCAL_MACHINE, Push, Reply, Request};

#[test]
fn pipelined_requests_are_answered_in_order() {
    let d = TestDaemon::start();
    let mut c = d.connection();
    let open = Request::CreateKey {
        parent: HKEY_LOCAL_MACHINE,
        path: r"SOFTWARE\pipe".into(),
        class: None,
        options: 0,
        access: KEY_ALL_ACCESS,
        txn: 0,
        all_levels: true,
    };
    let Reply::Created { handle: h, .. } = c.call(&open).unwrap() else { panic!() };
    // A thousand writes and reads in flight at once: each read sees the write queued before it.
    let mut ids = Vec::new();
    for i in 0..500u32 {
        ids.push(c.queue(&Request::SetValue { handle: h, name: "n".into(), value: Value::dword(i) }));
        ids.push(c.queue(&Request::QueryValue { handle: h, name: "n".into() }));
    }
    c.flush().unwrap();
    for (k, want) in ids.iter().enumerate() {
        let (id, reply) = c.recv().unwrap();
        assert_eq!(id, *want, "replies come in request order");
        if k % 2 == 0 {
            assert_eq!(reply, Reply::Done);
        } else {
            assert_eq!(reply, Reply::Value(Value::dword(k as u32 / 2)));
        }
    }
}

#[test]
fn a_watch_completion_is_pushed_to_its_client() {
    let d = TestDaemon::start();
    let watcher = Client::connect(&d.socket()).unwrap();
    let pushes = watcher.pushes().unwrap();
    let w = Registry::new(Arc::new(watcher));
    let (h, _) = w.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\watched", None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    let watch = w.notify_change_key(h, true, 0xF).unwrap();
    // Another client changes the key.
    let other = d.registry();
    let k = other.open_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\watched", 0, KEY_ALL_ACCESS, 0).unwrap();
    other.set_value(k, "v", Value::dword(1)).unwrap();
    let got = pushes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, Push::Notify { watch, status: NtStatus::STATUS_SUCCESS });
    // A watch whose handle closes completes with STATUS_NOTIFY_CLEANUP.
    let h2 = w.open_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\watched", 0, KEY_READ | KEY_NOTIFY, 0).unwrap();
    let watch2 = w.notify_change_key(h2, false, 0xF).unwrap();
    w.close_key(h2).unwrap();
    let got = pushes.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(got, Push::Notify { watch: watch2, status: NtStatus::STATUS_NOTIFY_CLEANUP });
}

#[test]
fn handles_and_transactions_belong_to_their_connection() {
    let d = TestDaemon::start();
    let a = d.registry();
    let b = d.registry();
    let (h, _) = a.create_key(HKEY_LOCAL_MACHINE, r"SOFTWARE\mine", None, 0, KEY_ALL_ACCESS, 0, true).unwrap();
    a.set_value(h, "secret", Value::dword(1)).unwrap();
    assert_eq!(b.query_value(h, "secret").unwrap_err().status, NtStatus::STATUS_INVALID_HANDLE);
    assert_eq!(b.delete_key(h).unwrap_err().status, NtStatus::STATUS_INVALID_HANDLE);
    assert_eq!(b.close_key(h).unwrap_err().status, NtStatus::STATUS_INVALID_HANDLE);
    let t = a.begin_transaction().unwrap();
    assert_eq!(b.commit_transaction(t).unwrap_err().status, NtStatus::STATUS_INVALID_TRANSACTION);
    let opened = b.open_key(HKEY_LOCAL_MACHINE, "SOFTWARE", 0, KEY_READ, t);
    assert_eq!(opened.unwrap_err().status, NtStatus::STATUS_INVALID_TRANSACTION);
    // Still A's.
    assert_eq!(a.query_value(h, "secret").unwrap(), Value::dword(1));
    a.rollback_transaction(t).unwrap();
}

#[test]
fn hive_files_are_only_for_the_privileged() {
    use hivebox_daemon::session::Session;
    let reg = hivebox_core::Registry::fresh_in_memory(Arc::new(hivebox_core::ManualClock::new(0)));
    let me = hivebox_daemon::identity::this_process().unwrap();
    let identity = hivebox_proto::Identity { sid: me.sid(), ..Default::default() };
    let mut s = Session::new(reg, None, me.caller(), identity, false);
    for r in [
        Request::LoadHive { mount: r"\REGISTRY\MACHINE\X".into(), file: "/etc/passwd".into() },
        Request::UnloadHive { mount: r"\REGISTRY\MACHINE\X".into() },
    ] {
        let Reply::Error { status, .. } = s.call(r) else { panic!() };
        assert_eq!(status, NtStatus::STATUS_PRIVILEGE_NOT_HELD);
    }
}
