//! Generators for every message, one fixed example of each, and helpers to encode and split.

use hivebox_core::{Disposition, KeyImage, KeyInfo, NtStatus, SubkeyInfo, Value, ValueType};
use hivebox_proto::{Decided, FrameBuffer, Identity, Push, Reply, Request, ServerMessage, Verdict};
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use std::sync::Arc;

/// Any string, control characters and NUL included.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![vec(any::<char>(), 0..12).prop_map(String::from_iter), "[a-zA-Z0-9\\\\ é]{0,24}"]
}

pub fn bytes() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..48)
}

pub fn value() -> impl Strategy<Value = Value> {
    (any::<u32>(), bytes()).prop_map(|(ty, data)| Value { ty: ValueType(ty), data })
}

fn image_with(subkeys: BoxedStrategy<Vec<KeyImage>>) -> impl Strategy<Value = KeyImage> {
    (
        text(),
        option::of(text()),
        any::<u64>(),
        any::<bool>(),
        any::<u32>(),
        option::of(bytes()),
        vec((text(), value()), 0..4),
        subkeys,
    )
        .prop_map(|(name, class, last_write, link, system_only, security, values, subkeys)| KeyImage {
            name,
            class,
            last_write,
            link,
            system_only,
            security: security.map(Arc::from),
            values,
            subkeys,
        })
}

/// A key tree: up to five levels, values and security descriptors at any of them.
pub fn key_image() -> impl Strategy<Value = KeyImage> {
    image_with(Just(Vec::new()).boxed()).prop_recursive(4, 32, 4, |inner| image_with(vec(inner, 0..4).boxed()).boxed())
}

fn verdict() -> impl Strategy<Value = Verdict> {
    prop_oneof![Just(Verdict::Allow), Just(Verdict::Deny)]
}

pub fn request() -> impl Strategy<Value = Request> {
    let h = any::<u64>;
    prop_oneof![
        any::<u16>().prop_map(|version| Request::Hello { version }),
        (h(), text(), any::<u32>(), any::<u32>(), h())
            .prop_map(|(parent, path, options, access, txn)| Request::OpenKey { parent, path, options, access, txn }),
        (h(), text(), option::of(text()), any::<u32>(), any::<u32>(), h(), any::<bool>()).prop_map(
            |(parent, path, class, options, access, txn, all_levels)| Request::CreateKey {
                parent,
                path,
                class,
                options,
                access,
                txn,
                all_levels
            }
        ),
        h().prop_map(|handle| Request::CloseKey { handle }),
        h().prop_map(|handle| Request::DeleteKey { handle }),
        (h(), text(), value()).prop_map(|(handle, name, value)| Request::SetValue { handle, name, value }),
        (h(), text()).prop_map(|(handle, name)| Request::DeleteValue { handle, name }),
        (h(), text()).prop_map(|(handle, name)| Request::QueryValue { handle, name }),
        (h(), any::<u32>()).prop_map(|(handle, index)| Request::EnumKey { handle, index }),
        (h(), any::<u32>()).prop_map(|(handle, index)| Request::EnumValue { handle, index }),
        h().prop_map(|handle| Request::QueryKey { handle }),
        h().prop_map(|handle| Request::QueryKeyName { handle }),
        (h(), text()).prop_map(|(handle, new_name)| Request::RenameKey { handle, new_name }),
        (h(), h()).prop_map(|(handle, time)| Request::SetLastWriteTime { handle, time }),
        h().prop_map(|handle| Request::FlushKey { handle }),
        (h(), any::<bool>(), any::<u32>()).prop_map(|(handle, subtree, filter)| Request::NotifyChangeKey {
            handle,
            subtree,
            filter
        }),
        h().prop_map(|handle| Request::SaveKey { handle }),
        (h(), key_image()).prop_map(|(handle, image)| Request::RestoreKey { handle, image }),
        (text(), text()).prop_map(|(mount, file)| Request::LoadHive { mount, file }),
        text().prop_map(|mount| Request::UnloadHive { mount }),
        Just(Request::LoadedHives),
        (h(), text(), text()).prop_map(|(handle, new_file, old_file)| Request::ReplaceKey {
            handle,
            new_file,
            old_file
        }),
        Just(Request::BeginTxn),
        h().prop_map(|txn| Request::CommitTxn { txn }),
        h().prop_map(|txn| Request::RollbackTxn { txn }),
        (option::of(text()), option::of(text()))
            .prop_map(|(box_name, verdict)| Request::SubscribeEvents { box_name, verdict }),
        Just(Request::SubscribeDecisions),
        (h(), verdict(), any::<bool>()).prop_map(|(id, verdict, remember)| Request::Decide { id, verdict, remember }),
        Just(Request::ReloadPolicy),
        Just(Request::Ping),
        (text(), any::<bool>()).prop_map(|(name, ephemeral)| Request::BoxCreate { name, ephemeral }),
        Just(Request::BoxList),
        text().prop_map(|name| Request::BoxDelete { name }),
        text().prop_map(|name| Request::BoxDiscard { name }),
        (text(), any::<bool>()).prop_map(|(name, json)| Request::BoxDiff { name, json }),
        text().prop_map(|name| Request::BoxExport { name }),
        (text(), option::of(text()), any::<bool>()).prop_map(|(name, key, force)| Request::BoxCommit {
            name,
            key,
            force
        }),
        (text(), any::<u32>(), text(), text(), any::<u16>()).prop_map(|(box_name, pid, protocol, address, port)| {
            Request::NetDecide { box_name, pid, protocol, address, port }
        }),
    ]
}

fn identity() -> impl Strategy<Value = Identity> {
    (any::<u16>(), any::<u32>(), any::<u32>(), any::<u32>(), text(), text(), option::of(text()), any::<u32>()).prop_map(
        |(version, pid, uid, gid, sid, image, box_name, flags)| Identity {
            version,
            pid,
            uid,
            gid,
            sid,
            image,
            box_name,
            flags,
        },
    )
}

fn key_info() -> impl Strategy<Value = KeyInfo> {
    ((text(), option::of(text()), any::<u64>()), [any::<u32>(); 6], any::<bool>(), any::<bool>()).prop_map(
        |((name, class, last_write), n, volatile, link)| KeyInfo {
            name,
            class,
            last_write,
            subkeys: n[0],
            max_subkey_name_len: n[1],
            max_class_len: n[2],
            values: n[3],
            max_value_name_len: n[4],
            max_value_data_len: n[5],
            volatile,
            link,
        },
    )
}

pub fn reply() -> impl Strategy<Value = Reply> {
    let h = any::<u64>;
    prop_oneof![
        (any::<u32>(), text()).prop_map(|(s, message)| Reply::Error { status: NtStatus(s), message }),
        Just(Reply::Done),
        identity().prop_map(Reply::Hello),
        h().prop_map(Reply::Handle),
        (h(), prop_oneof![Just(Disposition::CreatedNewKey), Just(Disposition::OpenedExistingKey)])
            .prop_map(|(handle, disposition)| Reply::Created { handle, disposition }),
        value().prop_map(Reply::Value),
        (text(), option::of(text()), any::<u64>()).prop_map(|(name, class, last_write)| Reply::Subkey(SubkeyInfo {
            name,
            class,
            last_write
        })),
        (text(), value()).prop_map(|(name, v)| Reply::NamedValue(name, v)),
        key_info().prop_map(Reply::KeyInfo),
        text().prop_map(Reply::Name),
        key_image().prop_map(Reply::Image),
        h().prop_map(Reply::Txn),
        h().prop_map(Reply::Watch),
        vec((text(), text()), 0..5).prop_map(Reply::Hives),
        text().prop_map(Reply::Text),
        (any::<bool>(), any::<bool>()).prop_map(|(allow, remember)| Reply::NetVerdict { allow, remember }),
    ]
}

pub fn push() -> impl Strategy<Value = Push> {
    prop_oneof![
        (any::<u64>(), any::<u32>()).prop_map(|(watch, s)| Push::Notify { watch, status: NtStatus(s) }),
        text().prop_map(Push::Event),
        (any::<u64>(), text(), any::<u64>()).prop_map(|(id, event, timeout_ms)| Push::Decision {
            id,
            event,
            timeout_ms
        }),
        (any::<u64>(), prop_oneof![Just(Decided::Allowed), Just(Decided::Denied), Just(Decided::TimedOut)])
            .prop_map(|(id, outcome)| Push::Decided { id, outcome }),
    ]
}

/// A message the daemon sends: a reply (to a non-zero id) or a push.
pub fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        3 => (1..=u32::MAX, reply()).prop_map(|(id, r)| ServerMessage::Reply(id, r)),
        1 => push().prop_map(ServerMessage::Push),
    ]
}

pub fn encode_server(m: &ServerMessage, out: &mut Vec<u8>) {
    match m {
        ServerMessage::Reply(id, r) => r.encode(*id, out),
        ServerMessage::Push(p) => p.encode(out),
    }
}

/// A small tree with a value, a class, a security descriptor and two levels of subkeys.
pub fn sample_image() -> KeyImage {
    let leaf = KeyImage {
        name: "Leaf".into(),
        values: vec![("".into(), Value { ty: ValueType(1), data: b"d\0\0\0".to_vec() })],
        ..KeyImage::default()
    };
    KeyImage {
        name: "Run".into(),
        class: Some("cls".into()),
        last_write: 0x01DB_0000_0000_0000,
        link: false,
        system_only: 0x0002_0000,
        security: Some(Arc::from(&[1u8, 0, 4, 0x80][..])),
        values: vec![
            ("Updater".into(), Value { ty: ValueType(2), data: vec![0x25, 0, 0x41, 0, 0, 0] }),
            ("n".into(), Value { ty: ValueType(4), data: vec![1, 0, 0, 0] }),
        ],
        subkeys: vec![KeyImage { name: "Mid".into(), subkeys: vec![leaf], link: true, ..KeyImage::default() }],
    }
}

/// One request of every kind, with non-empty strings and options set where it has them.
pub fn every_request() -> Vec<Request> {
    vec![
        Request::Hello { version: hivebox_proto::VERSION },
        Request::OpenKey {
            parent: hivebox_proto::HKEY_LOCAL_MACHINE,
            path: r"SOFTWARE\Microsoft".into(),
            options: 0,
            access: 0x0002_0019,
            txn: 0,
        },
        Request::CreateKey {
            parent: 7,
            path: "a\\b".into(),
            class: Some("c".into()),
            options: 1,
            access: 0xF003F,
            txn: 3,
            all_levels: true,
        },
        Request::CloseKey { handle: 7 },
        Request::DeleteKey { handle: 7 },
        Request::SetValue { handle: 7, name: "v".into(), value: Value { ty: ValueType(3), data: vec![1, 2, 3] } },
        Request::DeleteValue { handle: 7, name: "v".into() },
        Request::QueryValue { handle: 7, name: "v".into() },
        Request::EnumKey { handle: 7, index: 2 },
        Request::EnumValue { handle: 7, index: 2 },
        Request::QueryKey { handle: 7 },
        Request::QueryKeyName { handle: 7 },
        Request::RenameKey { handle: 7, new_name: "n".into() },
        Request::SetLastWriteTime { handle: 7, time: 1 << 60 },
        Request::FlushKey { handle: 7 },
        Request::NotifyChangeKey { handle: 7, subtree: true, filter: 0xF },
        Request::SaveKey { handle: 7 },
        Request::RestoreKey { handle: 7, image: sample_image() },
        Request::LoadHive { mount: r"\REGISTRY\MACHINE\X".into(), file: "/tmp/x.hiv".into() },
        Request::UnloadHive { mount: r"\REGISTRY\MACHINE\X".into() },
        Request::LoadedHives,
        Request::ReplaceKey { handle: 7, new_file: "/tmp/n".into(), old_file: "/tmp/o".into() },
        Request::BeginTxn,
        Request::CommitTxn { txn: 3 },
        Request::RollbackTxn { txn: 3 },
        Request::SubscribeEvents { box_name: Some("web".into()), verdict: Some("denied".into()) },
        Request::SubscribeDecisions,
        Request::Decide { id: 9, verdict: Verdict::Deny, remember: true },
        Request::ReloadPolicy,
        Request::Ping,
        Request::BoxCreate { name: "trial".into(), ephemeral: true },
        Request::BoxList,
        Request::BoxDelete { name: "trial".into() },
        Request::BoxDiscard { name: "trial".into() },
        Request::BoxDiff { name: "trial".into(), json: true },
        Request::BoxExport { name: "trial".into() },
        Request::BoxCommit { name: "trial".into(), key: Some(r"HKLM\Software\Contoso".into()), force: true },
        Request::NetDecide {
            box_name: "trial".into(),
            pid: 4242,
            protocol: "tcp".into(),
            address: "192.0.2.1".into(),
            port: 443,
        },
    ]
}

/// One daemon message of every kind.
pub fn every_server_message() -> Vec<ServerMessage> {
    let identity = Identity {
        version: 1,
        pid: 4242,
        uid: 1000,
        gid: 1000,
        sid: "S-1-22-1-1000".into(),
        image: "/usr/bin/regedit".into(),
        box_name: Some("web".into()),
        flags: 0x20,
    };
    let replies = vec![
        Reply::Error { status: NtStatus::STATUS_ACCESS_DENIED, message: "denied by rule 3".into() },
        Reply::Done,
        Reply::Hello(identity),
        Reply::Handle(0x10),
        Reply::Created { handle: 0x11, disposition: Disposition::OpenedExistingKey },
        Reply::Value(Value { ty: ValueType(4), data: vec![1, 0, 0, 0] }),
        Reply::Subkey(SubkeyInfo { name: "s".into(), class: Some("c".into()), last_write: 5 }),
        Reply::NamedValue("v".into(), Value { ty: ValueType(0), data: vec![] }),
        Reply::KeyInfo(KeyInfo {
            name: "k".into(),
            class: Some("c".into()),
            subkeys: 2,
            values: 1,
            ..KeyInfo::default()
        }),
        Reply::Name(r"\REGISTRY\MACHINE".into()),
        Reply::Image(sample_image()),
        Reply::Txn(3),
        Reply::Watch(4),
        Reply::Hives(vec![(r"\REGISTRY\MACHINE\X".into(), "/tmp/x.hiv".into())]),
        Reply::Text("reloaded".into()),
        Reply::NetVerdict { allow: true, remember: false },
    ];
    let pushes = vec![
        Push::Notify { watch: 4, status: NtStatus::STATUS_NOTIFY_CLEANUP },
        Push::Event("{\"verdict\":\"denied\"}".into()),
        Push::Decision { id: 9, event: "{}".into(), timeout_ms: 5000 },
        Push::Decided { id: 9, outcome: Decided::TimedOut },
    ];
    let mut all: Vec<ServerMessage> = (1..).zip(replies).map(|(id, r)| ServerMessage::Reply(id, r)).collect();
    all.extend(pushes.into_iter().map(ServerMessage::Push));
    all
}

/// The body of the single frame in `frame` (checking its length field).
pub fn body(frame: &[u8]) -> &[u8] {
    let len = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
    assert_eq!(len, frame.len() - 4, "the length field counts the body");
    &frame[4..]
}

pub fn request_body(id: u32, r: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    r.encode(id, &mut out);
    body(&out).to_vec()
}

pub fn server_body(m: &ServerMessage) -> Vec<u8> {
    let mut out = Vec::new();
    encode_server(m, &mut out);
    body(&out).to_vec()
}

/// Feeds `stream` to a fresh buffer in chunks of the given sizes (cycled; 0 means 1) and
/// collects the frames in the order they come out.
pub fn split(stream: &[u8], chunks: &[usize]) -> Vec<Vec<u8>> {
    let mut fb = FrameBuffer::new();
    let mut frames = Vec::new();
    let mut rest = stream;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        fb.extend(chunk);
        while let Some(f) = fb.next_frame().expect("valid frames") {
            frames.push(f.to_vec());
        }
    }
    assert_eq!(fb.partial(), 0, "nothing left over");
    frames
}
