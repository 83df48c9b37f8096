//! The messages: a client's [`Request`]s, the daemon's [`Reply`]s and [`Push`]es, each with
//! its operation or tag byte and fields in `docs/protocol.md`'s order.

use crate::wire::{Reader, Writer};
use crate::{DecodeError, MAGIC, frame};
use hivebox_core::{Disposition, KeyImage, KeyInfo, NtStatus, SubkeyInfo, Value, ValueType};
use std::sync::Arc;

/// Deepest key image accepted (the registry's own limit on path depth).
const MAX_IMAGE_DEPTH: usize = hivebox_core::name::MAX_PATH_DEPTH;

/// A decider's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Let the operation through.
    Allow = 0,
    /// Refuse it.
    Deny = 1,
}

/// How a pending decision ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decided {
    /// A decider allowed it.
    Allowed = 0,
    /// A decider denied it.
    Denied = 1,
    /// Nobody answered in time: the policy's default verdict applied.
    TimedOut = 2,
}

/// One request. Handles are those the daemon returned on this connection (or a predefined
/// key, `HKEY_*`, as the parent of an open or create); `txn` 0 means no transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// First message on a connection: `MAGIC` and the protocol version.
    Hello {
        /// Must be [`crate::VERSION`].
        version: u16,
    },
    /// `NtOpenKey(Transacted)Ex`. `parent` 0: `path` is a native path (`\REGISTRY\...`).
    OpenKey {
        /// Key the path is relative to (0: none).
        parent: u64,
        /// Path, relative to `parent` or native.
        path: String,
        /// `REG_OPTION_*`.
        options: u32,
        /// Desired access.
        access: u32,
        /// Transaction (0: none).
        txn: u64,
    },
    /// `NtCreateKey(Transacted)`; with `all_levels`, every missing level (`RegCreateKeyEx`).
    CreateKey {
        /// Key the path is relative to (0: none).
        parent: u64,
        /// Path, relative to `parent` or native.
        path: String,
        /// Class name of a new key.
        class: Option<String>,
        /// `REG_OPTION_*`.
        options: u32,
        /// Desired access.
        access: u32,
        /// Transaction (0: none).
        txn: u64,
        /// Create missing intermediate keys too.
        all_levels: bool,
    },
    /// `NtClose`.
    CloseKey {
        /// The handle.
        handle: u64,
    },
    /// `NtDeleteKey`.
    DeleteKey {
        /// The handle.
        handle: u64,
    },
    /// `NtSetValueKey`.
    SetValue {
        /// The handle.
        handle: u64,
        /// Value name ("" is the default value).
        name: String,
        /// Type and data.
        value: Value,
    },
    /// `NtDeleteValueKey`.
    DeleteValue {
        /// The handle.
        handle: u64,
        /// Value name.
        name: String,
    },
    /// `NtQueryValueKey`.
    QueryValue {
        /// The handle.
        handle: u64,
        /// Value name.
        name: String,
    },
    /// `NtEnumerateKey`.
    EnumKey {
        /// The handle.
        handle: u64,
        /// Index of the subkey.
        index: u32,
    },
    /// `NtEnumerateValueKey`.
    EnumValue {
        /// The handle.
        handle: u64,
        /// Index of the value.
        index: u32,
    },
    /// `NtQueryKey(KeyFullInformation)`.
    QueryKey {
        /// The handle.
        handle: u64,
    },
    /// `NtQueryKey(KeyNameInformation)`: the full native name.
    QueryKeyName {
        /// The handle.
        handle: u64,
    },
    /// `NtRenameKey`.
    RenameKey {
        /// The handle.
        handle: u64,
        /// The new last component.
        new_name: String,
    },
    /// `NtSetInformationKey(KeyWriteTimeInformation)`.
    SetLastWriteTime {
        /// The handle.
        handle: u64,
        /// FILETIME.
        time: u64,
    },
    /// `NtFlushKey`.
    FlushKey {
        /// The handle.
        handle: u64,
    },
    /// `NtNotifyChangeKey`: arms a one-shot watch; its completion is pushed.
    NotifyChangeKey {
        /// The handle (needs `KEY_NOTIFY`).
        handle: u64,
        /// Watch the whole subtree.
        subtree: bool,
        /// `REG_NOTIFY_CHANGE_*`.
        filter: u32,
    },
    /// `NtSaveKey`: the key's tree comes back as an image.
    SaveKey {
        /// The handle.
        handle: u64,
    },
    /// `NtRestoreKey`: replaces the key's tree with an image.
    RestoreKey {
        /// The handle.
        handle: u64,
        /// The tree.
        image: KeyImage,
    },
    /// `NtLoadKey`: mounts a hive file (a path the daemon opens) at a native path.
    LoadHive {
        /// Native path to mount at.
        mount: String,
        /// The hive file.
        file: String,
    },
    /// `NtUnloadKey`.
    UnloadHive {
        /// Native path of the mount.
        mount: String,
    },
    /// The hives loaded with [`Request::LoadHive`].
    LoadedHives,
    /// `NtReplaceKey`: stages `new_file` to replace the hive at the next open.
    ReplaceKey {
        /// A handle to the hive's root.
        handle: u64,
        /// The replacement hive file.
        new_file: String,
        /// Where the current file is kept.
        old_file: String,
    },
    /// Starts a transaction owned by this connection.
    BeginTxn,
    /// Commits one.
    CommitTxn {
        /// The transaction.
        txn: u64,
    },
    /// Rolls one back.
    RollbackTxn {
        /// The transaction.
        txn: u64,
    },
    /// Pushes every later protection event (matching the filters) to this connection.
    SubscribeEvents {
        /// Only this box's events.
        box_name: Option<String>,
        /// Only events with this verdict (`denied`, `notified`, ...).
        verdict: Option<String>,
    },
    /// Makes this connection a decider: pending and later sync decisions are pushed to it.
    SubscribeDecisions,
    /// Answers a pushed decision.
    Decide {
        /// The decision's id.
        id: u64,
        /// The answer.
        verdict: Verdict,
        /// Apply the same answer to later decisions of the same rule and executable.
        remember: bool,
    },
    /// Reloads the policy file (as `SIGHUP` does).
    ReloadPolicy,
    /// Does nothing; answered with `Done`.
    Ping,
    /// Creates a box (`docs/boxes.md`): its directory, settings and empty private hive.
    BoxCreate {
        /// The box's name.
        name: String,
        /// Discard and delete the box once its last process exits.
        ephemeral: bool,
    },
    /// The boxes: answered with `Text`, a JSON array of
    /// `{name, ephemeral, bytes, processes, changes}`.
    BoxList,
    /// Deletes a box with its private hive (refused while processes run in it).
    BoxDelete {
        /// The box's name.
        name: String,
    },
    /// Throws a box's registry changes away: its private hive starts empty again.
    BoxDiscard {
        /// The box's name.
        name: String,
    },
    /// What a box changed, as text for a person (or JSON): answered with `Text`.
    BoxDiff {
        /// The box's name.
        name: String,
        /// JSON instead of the readable tree.
        json: bool,
    },
    /// A box's changes as a `.reg` file (`Text`).
    BoxExport {
        /// The box's name.
        name: String,
    },
    /// Applies a box's changes (all, or those under `key`) to the host registry in one
    /// transaction and clears them from the box; answered with a `Text` report.
    BoxCommit {
        /// The box's name.
        name: String,
        /// Only the changes at or below this key (a path as `reg` takes it).
        key: Option<String>,
        /// Overwrite host keys that changed since the box first changed them.
        force: bool,
    },
    /// Decides a boxed process's new network destination (`network = "decide"`) by the box's
    /// rules, asking the deciders when they say `ask`; answered with `NetVerdict`. Only a
    /// box's launcher may ask (a peer outside every seccomp filter).
    NetDecide {
        /// The box.
        box_name: String,
        /// The process making the connection (host pid; it must be in the box).
        pid: u32,
        /// `tcp` or `udp`.
        protocol: String,
        /// The destination address (IPv4 or IPv6 text).
        address: String,
        /// The destination port.
        port: u16,
    },
}

/// Who the daemon found the client to be (from the kernel).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Identity {
    /// The protocol version the daemon speaks.
    pub version: u16,
    /// The peer's process id.
    pub pid: u32,
    /// Its user id.
    pub uid: u32,
    /// Its group id.
    pub gid: u32,
    /// Its SID (`S-1-22-1-<uid>`): what `HKEY_CURRENT_USER` means.
    pub sid: String,
    /// Its executable.
    pub image: String,
    /// The box it runs in.
    pub box_name: Option<String>,
    /// Its process class in the policy (`ProcessFlags` bits).
    pub flags: u32,
}

/// The answer to one request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// The operation failed with `status`; `message` may say more.
    Error {
        /// The NTSTATUS.
        status: NtStatus,
        /// Details (may be empty).
        message: String,
    },
    /// The operation succeeded and returns nothing.
    Done,
    /// The answer to `Hello`.
    Hello(Identity),
    /// A new handle.
    Handle(u64),
    /// A handle from a create.
    Created {
        /// The handle.
        handle: u64,
        /// Whether the key was new.
        disposition: Disposition,
    },
    /// A value.
    Value(Value),
    /// One enumerated subkey.
    Subkey(SubkeyInfo),
    /// One enumerated value.
    NamedValue(String, Value),
    /// A key's information.
    KeyInfo(KeyInfo),
    /// A name.
    Name(String),
    /// A saved tree.
    Image(KeyImage),
    /// A new transaction.
    Txn(u64),
    /// An armed watch.
    Watch(u64),
    /// Loaded hives: mount path and file.
    Hives(Vec<(String, String)>),
    /// Text for a person (a reload's summary).
    Text(String),
    /// The answer to `NetDecide`.
    NetVerdict {
        /// Let the connection through.
        allow: bool,
        /// The same answer holds for this program and destination from now on.
        remember: bool,
    },
}

/// A message the daemon sends on its own (frame id 0).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Push {
    /// A watch completed.
    Notify {
        /// The watch.
        watch: u64,
        /// `STATUS_SUCCESS`, `STATUS_KEY_DELETED` or `STATUS_NOTIFY_CLEANUP`.
        status: NtStatus,
    },
    /// A protection event (its JSON line).
    Event(String),
    /// A sync notification waiting for a verdict: its id, and the event as JSON.
    Decision {
        /// The decision's id (for [`Request::Decide`]).
        id: u64,
        /// The event it is about.
        event: String,
        /// Milliseconds left before the default verdict applies.
        timeout_ms: u64,
    },
    /// A pending decision ended (answered here or elsewhere, or timed out).
    Decided {
        /// The decision's id.
        id: u64,
        /// How.
        outcome: Decided,
    },
}

mod op {
    pub const HELLO: u8 = 0x01;
    pub const OPEN_KEY: u8 = 0x10;
    pub const CREATE_KEY: u8 = 0x11;
    pub const CLOSE_KEY: u8 = 0x12;
    pub const DELETE_KEY: u8 = 0x13;
    pub const SET_VALUE: u8 = 0x14;
    pub const DELETE_VALUE: u8 = 0x15;
    pub const QUERY_VALUE: u8 = 0x16;
    pub const ENUM_KEY: u8 = 0x17;
    pub const ENUM_VALUE: u8 = 0x18;
    pub const QUERY_KEY: u8 = 0x19;
    pub const QUERY_KEY_NAME: u8 = 0x1A;
    pub const RENAME_KEY: u8 = 0x1B;
    pub const SET_LAST_WRITE: u8 = 0x1C;
    pub const FLUSH_KEY: u8 = 0x1D;
    pub const NOTIFY: u8 = 0x1E;
    pub const SAVE_KEY: u8 = 0x20;
    pub const RESTORE_KEY: u8 = 0x21;
    pub const LOAD_HIVE: u8 = 0x22;
    pub const UNLOAD_HIVE: u8 = 0x23;
    pub const LOADED_HIVES: u8 = 0x24;
    pub const REPLACE_KEY: u8 = 0x25;
    pub const BEGIN_TXN: u8 = 0x30;
    pub const COMMIT_TXN: u8 = 0x31;
    pub const ROLLBACK_TXN: u8 = 0x32;
    pub const SUBSCRIBE_EVENTS: u8 = 0x40;
    pub const SUBSCRIBE_DECISIONS: u8 = 0x41;
    pub const DECIDE: u8 = 0x42;
    pub const RELOAD_POLICY: u8 = 0x43;
    pub const PING: u8 = 0x44;
    pub const BOX_CREATE: u8 = 0x50;
    pub const BOX_LIST: u8 = 0x51;
    pub const BOX_DELETE: u8 = 0x52;
    pub const BOX_DISCARD: u8 = 0x53;
    pub const BOX_DIFF: u8 = 0x54;
    pub const BOX_EXPORT: u8 = 0x55;
    pub const BOX_COMMIT: u8 = 0x56;
    pub const NET_DECIDE: u8 = 0x60;
}

mod tag {
    pub const ERROR: u8 = 0x00;
    pub const DONE: u8 = 0x01;
    pub const HELLO: u8 = 0x02;
    pub const HANDLE: u8 = 0x03;
    pub const CREATED: u8 = 0x04;
    pub const VALUE: u8 = 0x05;
    pub const SUBKEY: u8 = 0x06;
    pub const NAMED_VALUE: u8 = 0x07;
    pub const KEY_INFO: u8 = 0x08;
    pub const NAME: u8 = 0x09;
    pub const IMAGE: u8 = 0x0A;
    pub const TXN: u8 = 0x0B;
    pub const WATCH: u8 = 0x0C;
    pub const HIVES: u8 = 0x0D;
    pub const TEXT: u8 = 0x0E;
    pub const NET_VERDICT: u8 = 0x0F;
    pub const NOTIFY: u8 = 0x80;
    pub const EVENT: u8 = 0x81;
    pub const DECISION: u8 = 0x82;
    pub const DECIDED: u8 = 0x83;
}

fn value(w: &mut Writer<'_>, v: &Value) {
    w.u32(v.ty.0).bytes(&v.data);
}

fn read_value(r: &mut Reader<'_>) -> Result<Value, DecodeError> {
    let ty = ValueType(r.u32("value type")?);
    let data = r.bytes("value data")?.to_vec();
    Ok(Value { ty, data })
}

fn image(w: &mut Writer<'_>, k: &KeyImage) {
    w.str(&k.name).opt_str(k.class.as_deref()).u64(k.last_write).bool(k.link).u32(k.system_only);
    match &k.security {
        None => w.u8(0),
        Some(s) => w.u8(1).bytes(s),
    };
    w.u32(k.values.len() as u32);
    for (name, v) in &k.values {
        w.str(name);
        value(w, v);
    }
    w.u32(k.subkeys.len() as u32);
    for s in &k.subkeys {
        image(w, s);
    }
}

fn read_image(r: &mut Reader<'_>, depth: usize) -> Result<KeyImage, DecodeError> {
    if depth > MAX_IMAGE_DEPTH {
        return Err(DecodeError::Invalid {
            what: "key image",
            at: r.pos(),
            why: format!("deeper than {MAX_IMAGE_DEPTH} levels"),
        });
    }
    let name = r.string("key name")?;
    let class = r.opt_string("key class")?;
    let last_write = r.u64("last write time")?;
    let link = r.bool("link flag")?;
    let system_only = r.u32("system-only rights")?;
    let security = match r.bool("security flag")? {
        false => None,
        true => Some(Arc::from(r.bytes("security descriptor")?)),
    };
    // A value takes at least 12 bytes (name length, type, data length); a key at least 27.
    let n = r.count("value count", 12)?;
    let mut values = Vec::with_capacity(n);
    for _ in 0..n {
        let name = r.string("value name")?;
        values.push((name, read_value(r)?));
    }
    let n = r.count("subkey count", 27)?;
    let mut subkeys = Vec::with_capacity(n);
    for _ in 0..n {
        subkeys.push(read_image(r, depth + 1)?);
    }
    Ok(KeyImage { name, class, last_write, link, system_only, security, values, subkeys })
}

fn verdict(r: &mut Reader<'_>) -> Result<Verdict, DecodeError> {
    let at = r.pos();
    match r.u8("verdict")? {
        0 => Ok(Verdict::Allow),
        1 => Ok(Verdict::Deny),
        v => Err(DecodeError::Invalid { what: "verdict", at, why: format!("{v} is neither 0 (allow) nor 1 (deny)") }),
    }
}

impl Request {
    /// Appends this request as one frame with id `id`.
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) {
        frame(out, |buf| {
            let mut w = Writer(buf);
            w.u32(id);
            match self {
                Request::Hello { version } => {
                    w.u8(op::HELLO);
                    w.0.extend_from_slice(&MAGIC);
                    w.u16(*version);
                }
                Request::OpenKey { parent, path, options, access, txn } => {
                    w.u8(op::OPEN_KEY).u64(*parent).str(path).u32(*options).u32(*access).u64(*txn);
                }
                Request::CreateKey { parent, path, class, options, access, txn, all_levels } => {
                    w.u8(op::CREATE_KEY).u64(*parent).str(path).opt_str(class.as_deref());
                    w.u32(*options).u32(*access).u64(*txn).bool(*all_levels);
                }
                Request::CloseKey { handle } => {
                    w.u8(op::CLOSE_KEY).u64(*handle);
                }
                Request::DeleteKey { handle } => {
                    w.u8(op::DELETE_KEY).u64(*handle);
                }
                Request::SetValue { handle, name, value: v } => {
                    w.u8(op::SET_VALUE).u64(*handle).str(name);
                    value(&mut w, v);
                }
                Request::DeleteValue { handle, name } => {
                    w.u8(op::DELETE_VALUE).u64(*handle).str(name);
                }
                Request::QueryValue { handle, name } => {
                    w.u8(op::QUERY_VALUE).u64(*handle).str(name);
                }
                Request::EnumKey { handle, index } => {
                    w.u8(op::ENUM_KEY).u64(*handle).u32(*index);
                }
                Request::EnumValue { handle, index } => {
                    w.u8(op::ENUM_VALUE).u64(*handle).u32(*index);
                }
                Request::QueryKey { handle } => {
                    w.u8(op::QUERY_KEY).u64(*handle);
                }
                Request::QueryKeyName { handle } => {
                    w.u8(op::QUERY_KEY_NAME).u64(*handle);
                }
                Request::RenameKey { handle, new_name } => {
                    w.u8(op::RENAME_KEY).u64(*handle).str(new_name);
                }
                Request::SetLastWriteTime { handle, time } => {
                    w.u8(op::SET_LAST_WRITE).u64(*handle).u64(*time);
                }
                Request::FlushKey { handle } => {
                    w.u8(op::FLUSH_KEY).u64(*handle);
                }
                Request::NotifyChangeKey { handle, subtree, filter } => {
                    w.u8(op::NOTIFY).u64(*handle).bool(*subtree).u32(*filter);
                }
                Request::SaveKey { handle } => {
                    w.u8(op::SAVE_KEY).u64(*handle);
                }
                Request::RestoreKey { handle, image: k } => {
                    w.u8(op::RESTORE_KEY).u64(*handle);
                    image(&mut w, k);
                }
                Request::LoadHive { mount, file } => {
                    w.u8(op::LOAD_HIVE).str(mount).str(file);
                }
                Request::UnloadHive { mount } => {
                    w.u8(op::UNLOAD_HIVE).str(mount);
                }
                Request::LoadedHives => {
                    w.u8(op::LOADED_HIVES);
                }
                Request::ReplaceKey { handle, new_file, old_file } => {
                    w.u8(op::REPLACE_KEY).u64(*handle).str(new_file).str(old_file);
                }
                Request::BeginTxn => {
                    w.u8(op::BEGIN_TXN);
                }
                Request::CommitTxn { txn } => {
                    w.u8(op::COMMIT_TXN).u64(*txn);
                }
                Request::RollbackTxn { txn } => {
                    w.u8(op::ROLLBACK_TXN).u64(*txn);
                }
                Request::SubscribeEvents { box_name, verdict } => {
                    w.u8(op::SUBSCRIBE_EVENTS).opt_str(box_name.as_deref()).opt_str(verdict.as_deref());
                }
                Request::SubscribeDecisions => {
                    w.u8(op::SUBSCRIBE_DECISIONS);
                }
                Request::Decide { id, verdict, remember } => {
                    w.u8(op::DECIDE).u64(*id).u8(*verdict as u8).bool(*remember);
                }
                Request::ReloadPolicy => {
                    w.u8(op::RELOAD_POLICY);
                }
                Request::Ping => {
                    w.u8(op::PING);
                }
                Request::BoxCreate { name, ephemeral } => {
                    w.u8(op::BOX_CREATE).str(name).bool(*ephemeral);
                }
                Request::BoxList => {
                    w.u8(op::BOX_LIST);
                }
                Request::BoxDelete { name } => {
                    w.u8(op::BOX_DELETE).str(name);
                }
                Request::BoxDiscard { name } => {
                    w.u8(op::BOX_DISCARD).str(name);
                }
                Request::BoxDiff { name, json } => {
                    w.u8(op::BOX_DIFF).str(name).bool(*json);
                }
                Request::BoxExport { name } => {
                    w.u8(op::BOX_EXPORT).str(name);
                }
                Request::BoxCommit { name, key, force } => {
                    w.u8(op::BOX_COMMIT).str(name).opt_str(key.as_deref()).bool(*force);
                }
                Request::NetDecide { box_name, pid, protocol, address, port } => {
                    w.u8(op::NET_DECIDE).str(box_name).u32(*pid).str(protocol).str(address).u16(*port);
                }
            }
        });
    }

    /// Decodes one frame body: the request id and the request.
    pub fn decode(body: &[u8]) -> Result<(u32, Request), DecodeError> {
        let mut r = Reader::new(body);
        let id = r.u32("request id")?;
        if id == 0 {
            // Id 0 marks the daemon's pushes: a reply to it would read as one.
            return Err(DecodeError::Invalid { what: "request id", at: 0, why: "0 is reserved for pushes".into() });
        }
        let code = r.u8("operation")?;
        let h = |r: &mut Reader<'_>| r.u64("handle");
        let req = match code {
            op::HELLO => {
                let at = r.pos();
                let magic = r.take(4, "magic")?;
                if magic != MAGIC {
                    return Err(DecodeError::Invalid {
                        what: "magic",
                        at,
                        why: format!("{magic:02x?} is not \"HVBX\""),
                    });
                }
                Request::Hello { version: r.u16("version")? }
            }
            op::OPEN_KEY => Request::OpenKey {
                parent: r.u64("parent handle")?,
                path: r.string("key path")?,
                options: r.u32("options")?,
                access: r.u32("desired access")?,
                txn: r.u64("transaction")?,
            },
            op::CREATE_KEY => Request::CreateKey {
                parent: r.u64("parent handle")?,
                path: r.string("key path")?,
                class: r.opt_string("class")?,
                options: r.u32("options")?,
                access: r.u32("desired access")?,
                txn: r.u64("transaction")?,
                all_levels: r.bool("all-levels flag")?,
            },
            op::CLOSE_KEY => Request::CloseKey { handle: h(&mut r)? },
            op::DELETE_KEY => Request::DeleteKey { handle: h(&mut r)? },
            op::SET_VALUE => {
                Request::SetValue { handle: h(&mut r)?, name: r.string("value name")?, value: read_value(&mut r)? }
            }
            op::DELETE_VALUE => Request::DeleteValue { handle: h(&mut r)?, name: r.string("value name")? },
            op::QUERY_VALUE => Request::QueryValue { handle: h(&mut r)?, name: r.string("value name")? },
            op::ENUM_KEY => Request::EnumKey { handle: h(&mut r)?, index: r.u32("index")? },
            op::ENUM_VALUE => Request::EnumValue { handle: h(&mut r)?, index: r.u32("index")? },
            op::QUERY_KEY => Request::QueryKey { handle: h(&mut r)? },
            op::QUERY_KEY_NAME => Request::QueryKeyName { handle: h(&mut r)? },
            op::RENAME_KEY => Request::RenameKey { handle: h(&mut r)?, new_name: r.string("new name")? },
            op::SET_LAST_WRITE => Request::SetLastWriteTime { handle: h(&mut r)?, time: r.u64("time")? },
            op::FLUSH_KEY => Request::FlushKey { handle: h(&mut r)? },
            op::NOTIFY => Request::NotifyChangeKey {
                handle: h(&mut r)?,
                subtree: r.bool("subtree flag")?,
                filter: r.u32("notify filter")?,
            },
            op::SAVE_KEY => Request::SaveKey { handle: h(&mut r)? },
            op::RESTORE_KEY => Request::RestoreKey { handle: h(&mut r)?, image: read_image(&mut r, 0)? },
            op::LOAD_HIVE => Request::LoadHive { mount: r.string("mount path")?, file: r.string("hive file")? },
            op::UNLOAD_HIVE => Request::UnloadHive { mount: r.string("mount path")? },
            op::LOADED_HIVES => Request::LoadedHives,
            op::REPLACE_KEY => Request::ReplaceKey {
                handle: h(&mut r)?,
                new_file: r.string("new hive file")?,
                old_file: r.string("old hive file")?,
            },
            op::BEGIN_TXN => Request::BeginTxn,
            op::COMMIT_TXN => Request::CommitTxn { txn: r.u64("transaction")? },
            op::ROLLBACK_TXN => Request::RollbackTxn { txn: r.u64("transaction")? },
            op::SUBSCRIBE_EVENTS => Request::SubscribeEvents {
                box_name: r.opt_string("box filter")?,
                verdict: r.opt_string("verdict filter")?,
            },
            op::SUBSCRIBE_DECISIONS => Request::SubscribeDecisions,
            op::DECIDE => Request::Decide {
                id: r.u64("decision id")?,
                verdict: verdict(&mut r)?,
                remember: r.bool("remember flag")?,
            },
            op::RELOAD_POLICY => Request::ReloadPolicy,
            op::PING => Request::Ping,
            op::BOX_CREATE => Request::BoxCreate { name: r.string("box name")?, ephemeral: r.bool("ephemeral flag")? },
            op::BOX_LIST => Request::BoxList,
            op::BOX_DELETE => Request::BoxDelete { name: r.string("box name")? },
            op::BOX_DISCARD => Request::BoxDiscard { name: r.string("box name")? },
            op::BOX_DIFF => Request::BoxDiff { name: r.string("box name")?, json: r.bool("json flag")? },
            op::BOX_EXPORT => Request::BoxExport { name: r.string("box name")? },
            op::BOX_COMMIT => Request::BoxCommit {
                name: r.string("box name")?,
                key: r.opt_string("key")?,
                force: r.bool("force flag")?,
            },
            op::NET_DECIDE => Request::NetDecide {
                box_name: r.string("box name")?,
                pid: r.u32("pid")?,
                protocol: r.string("protocol")?,
                address: r.string("address")?,
                port: r.u16("port")?,
            },
            code => return Err(DecodeError::Unknown { kind: "operation", code }),
        };
        r.end()?;
        Ok((id, req))
    }
}

/// One message from the daemon: a reply to a request, or a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerMessage {
    /// The reply to request `id`.
    Reply(u32, Reply),
    /// A message of the daemon's own.
    Push(Push),
}

impl Reply {
    /// The error reply for a status.
    pub fn error(status: NtStatus) -> Self {
        Reply::Error { status, message: String::new() }
    }

    /// Appends this reply to request `id` as one frame.
    pub fn encode(&self, id: u32, out: &mut Vec<u8>) {
        frame(out, |buf| {
            let mut w = Writer(buf);
            w.u32(id);
            match self {
                Reply::Error { status, message } => {
                    w.u8(tag::ERROR).u32(status.0).str(message);
                }
                Reply::Done => {
                    w.u8(tag::DONE);
                }
                Reply::Hello(i) => {
                    w.u8(tag::HELLO).u16(i.version).u32(i.pid).u32(i.uid).u32(i.gid).str(&i.sid).str(&i.image);
                    w.opt_str(i.box_name.as_deref()).u32(i.flags);
                }
                Reply::Handle(h) => {
                    w.u8(tag::HANDLE).u64(*h);
                }
                Reply::Created { handle, disposition } => {
                    w.u8(tag::CREATED).u64(*handle).u8(*disposition as u8);
                }
                Reply::Value(v) => {
                    w.u8(tag::VALUE);
                    value(&mut w, v);
                }
                Reply::Subkey(s) => {
                    w.u8(tag::SUBKEY).str(&s.name).opt_str(s.class.as_deref()).u64(s.last_write);
                }
                Reply::NamedValue(name, v) => {
                    w.u8(tag::NAMED_VALUE).str(name);
                    value(&mut w, v);
                }
                Reply::KeyInfo(k) => {
                    w.u8(tag::KEY_INFO).str(&k.name).opt_str(k.class.as_deref()).u64(k.last_write);
                    w.u32(k.subkeys).u32(k.max_subkey_name_len).u32(k.max_class_len).u32(k.values);
                    w.u32(k.max_value_name_len).u32(k.max_value_data_len).bool(k.volatile).bool(k.link);
                }
                Reply::Name(n) => {
                    w.u8(tag::NAME).str(n);
                }
                Reply::Image(k) => {
                    w.u8(tag::IMAGE);
                    image(&mut w, k);
                }
                Reply::Txn(t) => {
                    w.u8(tag::TXN).u64(*t);
                }
                Reply::Watch(t) => {
                    w.u8(tag::WATCH).u64(*t);
                }
                Reply::Hives(list) => {
                    w.u8(tag::HIVES).u32(list.len() as u32);
                    for (m, f) in list {
                        w.str(m).str(f);
                    }
                }
                Reply::Text(t) => {
                    w.u8(tag::TEXT).str(t);
                }
                Reply::NetVerdict { allow, remember } => {
                    w.u8(tag::NET_VERDICT).bool(*allow).bool(*remember);
                }
            }
        });
    }
}

impl Push {
    /// Appends this push as one frame (id 0).
    pub fn encode(&self, out: &mut Vec<u8>) {
        frame(out, |buf| {
            let mut w = Writer(buf);
            w.u32(0);
            match self {
                Push::Notify { watch, status } => {
                    w.u8(tag::NOTIFY).u64(*watch).u32(status.0);
                }
                Push::Event(json) => {
                    w.u8(tag::EVENT).str(json);
                }
                Push::Decision { id, event, timeout_ms } => {
                    w.u8(tag::DECISION).u64(*id).str(event).u64(*timeout_ms);
                }
                Push::Decided { id, outcome } => {
                    w.u8(tag::DECIDED).u64(*id).u8(*outcome as u8);
                }
            }
        });
    }
}

impl ServerMessage {
    /// Decodes one frame body from the daemon.
    pub fn decode(body: &[u8]) -> Result<ServerMessage, DecodeError> {
        let mut r = Reader::new(body);
        let id = r.u32("request id")?;
        let code = r.u8("reply tag")?;
        let msg = if id == 0 {
            ServerMessage::Push(match code {
                tag::NOTIFY => Push::Notify { watch: r.u64("watch")?, status: NtStatus(r.u32("status")?) },
                tag::EVENT => Push::Event(r.string("event")?),
                tag::DECISION => Push::Decision {
                    id: r.u64("decision id")?,
                    event: r.string("event")?,
                    timeout_ms: r.u64("timeout")?,
                },
                tag::DECIDED => {
                    let id = r.u64("decision id")?;
                    let at = r.pos();
                    let outcome = match r.u8("outcome")? {
                        0 => Decided::Allowed,
                        1 => Decided::Denied,
                        2 => Decided::TimedOut,
                        v => return Err(DecodeError::Invalid { what: "outcome", at, why: format!("{v} is not 0-2") }),
                    };
                    Push::Decided { id, outcome }
                }
                code => return Err(DecodeError::Unknown { kind: "push tag", code }),
            })
        } else {
            ServerMessage::Reply(id, Reply::decode_fields(code, &mut r)?)
        };
        r.end()?;
        Ok(msg)
    }
}

impl Reply {
    fn decode_fields(code: u8, r: &mut Reader<'_>) -> Result<Reply, DecodeError> {
        Ok(match code {
            tag::ERROR => Reply::Error { status: NtStatus(r.u32("status")?), message: r.string("message")? },
            tag::DONE => Reply::Done,
            tag::HELLO => Reply::Hello(Identity {
                version: r.u16("version")?,
                pid: r.u32("pid")?,
                uid: r.u32("uid")?,
                gid: r.u32("gid")?,
                sid: r.string("sid")?,
                image: r.string("image")?,
                box_name: r.opt_string("box")?,
                flags: r.u32("process flags")?,
            }),
            tag::HANDLE => Reply::Handle(r.u64("handle")?),
            tag::CREATED => {
                let handle = r.u64("handle")?;
                let at = r.pos();
                let disposition = match r.u8("disposition")? {
                    1 => Disposition::CreatedNewKey,
                    2 => Disposition::OpenedExistingKey,
                    v => {
                        return Err(DecodeError::Invalid {
                            what: "disposition",
                            at,
                            why: format!("{v} is not 1 or 2"),
                        });
                    }
                };
                Reply::Created { handle, disposition }
            }
            tag::VALUE => Reply::Value(read_value(r)?),
            tag::SUBKEY => Reply::Subkey(SubkeyInfo {
                name: r.string("subkey name")?,
                class: r.opt_string("class")?,
                last_write: r.u64("last write time")?,
            }),
            tag::NAMED_VALUE => {
                let name = r.string("value name")?;
                Reply::NamedValue(name, read_value(r)?)
            }
            tag::KEY_INFO => Reply::KeyInfo(KeyInfo {
                name: r.string("key name")?,
                class: r.opt_string("class")?,
                last_write: r.u64("last write time")?,
                subkeys: r.u32("subkey count")?,
                max_subkey_name_len: r.u32("longest subkey name")?,
                max_class_len: r.u32("longest class")?,
                values: r.u32("value count")?,
                max_value_name_len: r.u32("longest value name")?,
                max_value_data_len: r.u32("largest value")?,
                volatile: r.bool("volatile flag")?,
                link: r.bool("link flag")?,
            }),
            tag::NAME => Reply::Name(r.string("name")?),
            tag::IMAGE => Reply::Image(read_image(r, 0)?),
            tag::TXN => Reply::Txn(r.u64("transaction")?),
            tag::WATCH => Reply::Watch(r.u64("watch")?),
            tag::HIVES => {
                let n = r.count("hive count", 8)?;
                let mut list = Vec::with_capacity(n);
                for _ in 0..n {
                    list.push((r.string("mount path")?, r.string("hive file")?));
                }
                Reply::Hives(list)
            }
            tag::TEXT => Reply::Text(r.string("text")?),
            tag::NET_VERDICT => Reply::NetVerdict { allow: r.bool("allow flag")?, remember: r.bool("remember flag")? },
            code => return Err(DecodeError::Unknown { kind: "reply tag", code }),
        })
    }
}
