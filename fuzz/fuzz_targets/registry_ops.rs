//! Arbitrary sequences of registry operations on a fresh in-memory registry: create, open,
//! set, delete, rename, enumerate, query, links, watches, filters. Nothing may panic; at the
//! end every handle closes, and replaying the mutations the store was given onto the starting
//! image must give the registry's final image (an acknowledged change is a stored change).

#![no_main]

use hivebox_core::access::{
    KEY_ALL_ACCESS, KEY_READ, REG_OPTION_CREATE_LINK, REG_OPTION_OPEN_LINK, REG_OPTION_VOLATILE,
};
use hivebox_core::fresh::fresh_image;
use hivebox_core::{
    Argument, CallbackCx, Caller, Cookie, CreateOptions, Handle, KeyImage, ManualClock, Mutation, NtStatus,
    OpenOptions, Operation, ProcessInfo, RegNotifyClass, Registry, RegistryOptions, Storage, StorageError, Token,
    Tree, Value, ValueType,
};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, Mutex};

const BASE: &str = r"\REGISTRY\MACHINE\SOFTWARE\Fuzz";
const KEY_NAMES: [&str; 8] = ["A", "a", "B", "Sub", "ä", "Ä", "ß", "Link"];
const VALUE_NAMES: [&str; 5] = ["", "V", "v", "Ä", "SymbolicLinkValue"];
const LINK_TARGETS: [&str; 6] = [
    r"\REGISTRY\MACHINE\SOFTWARE\Fuzz",
    r"\REGISTRY\MACHINE\SOFTWARE\Fuzz\A",
    r"\REGISTRY\MACHINE\SOFTWARE\Fuzz\Link",
    r"\REGISTRY\MACHINE\SOFTWARE\Fuzz\a\Link",
    r"\REGISTRY",
    "not a path",
];

/// A store that keeps every mutation it acknowledges.
struct Recorder(Arc<Mutex<Vec<Mutation>>>);

impl Storage for Recorder {
    fn append(&mut self, mutation: &Mutation) -> Result<(), StorageError> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(mutation.clone());
        Ok(())
    }

    fn flush(&mut self, _: &dyn Fn() -> KeyImage) -> Result<(), StorageError> {
        Ok(())
    }
}

/// The fuzz input as a stream of small numbers (zeros once it runs out).
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn pick<'s, T>(&mut self, items: &'s [T]) -> &'s T {
        &items[self.byte() as usize % items.len()]
    }

    fn key_path(&mut self) -> String {
        let depth = 1 + self.byte() % 3;
        (0..depth).map(|_| *self.pick(&KEY_NAMES)).collect::<Vec<_>>().join("\\")
    }

    fn value(&mut self) -> Value {
        match self.byte() % 5 {
            0 => Value::dword(u32::from(self.byte())),
            1 => Value::sz(self.pick(&KEY_NAMES)),
            2 => Value::link(self.pick(&LINK_TARGETS)),
            3 => {
                let len = self.byte() % 8;
                let bytes: Vec<u8> = (0..len).map(|_| self.byte()).collect();
                Value::new(ValueType(u32::from(self.byte() % 13)), bytes)
            }
            _ => Value::multi_sz(&[self.pick(&KEY_NAMES), self.pick(&KEY_NAMES)]),
        }
    }
}

/// A filter whose behaviour is chosen by the input: pass everything, block set-value,
/// bypass queries with its own answer, or attach object contexts and look up key names.
fn filter(mode: u8) -> Arc<dyn hivebox_core::RegistryCallback> {
    Arc::new(move |cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>| -> NtStatus {
        match arg {
            Argument::Pre(pre) => match (mode % 4, &mut *pre.op) {
                (1, Operation::SetValueKey { .. }) => NtStatus::STATUS_ACCESS_DENIED,
                (2, Operation::QueryValueKey { result, .. }) => {
                    *result = Some(Value::dword(7));
                    NtStatus::STATUS_CALLBACK_BYPASS
                }
                (3, op) => {
                    let object = op.object();
                    let _ = cx.key_object_id(object);
                    if class != RegNotifyClass::RegNtPreKeyHandleClose {
                        let _ = cx.set_object_context(object, Arc::new(class));
                    }
                    NtStatus::STATUS_SUCCESS
                }
                _ => NtStatus::STATUS_SUCCESS,
            },
            Argument::Post(post) => {
                if mode % 4 == 3 && post.status.is_success() {
                    if let Some(object) = post.object {
                        let _ = cx.key_object_id(object);
                    }
                }
                NtStatus::STATUS_SUCCESS
            }
            Argument::ContextCleanup { .. } => NtStatus::STATUS_SUCCESS,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let log = Arc::new(Mutex::new(Vec::new()));
    let start = fresh_image(0);
    let registry = Registry::new(
        &start,
        Box::new(Recorder(log.clone())),
        Arc::new(ManualClock::new(1)),
        RegistryOptions { max_call_records: 1 + usize::from(input.byte() % 8), ..RegistryOptions::default() },
    )
    .expect("the fresh image loads");
    let system = Caller::system();
    let user = Caller::user(Token { user_sid: "S-1-22-1-1000".into(), system: false }, ProcessInfo::default());
    let (base, _) = registry.create_key(&system, None, BASE, &CreateOptions::default()).expect("create the base key");
    let mut handles: Vec<Handle> = vec![base];
    let mut cookies: Vec<Cookie> = Vec::new();
    let mut as_user = false;

    for _ in 0..256 {
        if input.0.is_empty() {
            break;
        }
        let caller = if as_user { &user } else { &system };
        let op = input.byte() % 16;
        let h = *input.pick(&handles);
        match op {
            0 => {
                let flags = input.byte();
                let mut options = 0;
                if flags & 1 != 0 {
                    options |= REG_OPTION_VOLATILE;
                }
                if flags & 2 != 0 {
                    options |= REG_OPTION_CREATE_LINK;
                }
                if flags & 4 != 0 {
                    options |= REG_OPTION_OPEN_LINK;
                }
                let access = if flags & 8 != 0 { KEY_READ } else { KEY_ALL_ACCESS };
                let opts = CreateOptions { desired_access: access, options, ..CreateOptions::default() };
                let name = *input.pick(&KEY_NAMES);
                let r = if flags & 16 != 0 {
                    registry.create_key(caller, None, &format!("{BASE}\\{name}"), &opts)
                } else {
                    registry.create_key(caller, Some(h), name, &opts)
                };
                if let Ok((k, _)) = r {
                    handles.push(k);
                }
            }
            1 => {
                let path = input.key_path();
                if let Ok((k, _)) = registry.create_key_path(caller, Some(h), &path, &CreateOptions::default()) {
                    handles.push(k);
                }
            }
            2 => {
                let flags = input.byte();
                let path = input.key_path();
                let opts = OpenOptions {
                    options: if flags & 1 != 0 { REG_OPTION_OPEN_LINK } else { 0 },
                    ..OpenOptions::access(if flags & 2 != 0 { KEY_READ } else { KEY_ALL_ACCESS })
                };
                let r = if flags & 4 != 0 {
                    registry.open_key(caller, None, &format!("{BASE}\\{path}"), &opts)
                } else {
                    registry.open_key(caller, Some(h), &path, &opts)
                };
                if let Ok(k) = r {
                    handles.push(k);
                }
            }
            3 => {
                let name = *input.pick(&VALUE_NAMES);
                let value = input.value();
                let _ = registry.set_value(caller, h, name, value);
            }
            4 => {
                let _ = registry.delete_value(caller, h, input.pick(&VALUE_NAMES));
            }
            5 => {
                let _ = registry.delete_key(caller, h);
            }
            6 => {
                let _ = registry.rename_key(caller, h, input.pick(&KEY_NAMES));
            }
            7 => {
                let _ = registry.enumerate_key(caller, h, u32::from(input.byte() % 8));
            }
            8 => {
                let _ = registry.enumerate_value(caller, h, u32::from(input.byte() % 8));
            }
            9 => {
                let _ = registry.query_key(caller, h);
                let _ = registry.query_key_name(caller, h);
            }
            10 => {
                let _ = registry.query_value(caller, h, input.pick(&VALUE_NAMES));
            }
            11 => {
                if handles.len() > 1 {
                    let i = input.byte() as usize % handles.len();
                    let gone = handles.swap_remove(i);
                    registry.close_key(caller, gone).expect("an open handle closes");
                }
            }
            12 => {
                let filter = u32::from(input.byte() % 16);
                let _ = registry.notify_change_key(caller, h, input.byte() & 1 != 0, filter, None);
            }
            13 => {
                let _ = registry.flush_key(caller, h);
                let _ = registry.set_last_write_time(caller, h, u64::from(input.byte()));
            }
            14 => as_user = !as_user,
            _ => {
                let b = input.byte();
                if b & 1 == 0 || cookies.is_empty() {
                    let altitude = format!("{}", 380_000 + u32::from(b >> 1));
                    if let Ok(cookie) = registry.register(&altitude, filter(b >> 1)) {
                        cookies.push(cookie);
                    }
                } else {
                    let cookie = cookies.swap_remove(usize::from(b >> 1) % cookies.len());
                    registry.unregister(cookie).expect("a registered cookie unregisters");
                }
            }
        }
        if handles.len() > 32 {
            let gone = handles.swap_remove(1);
            registry.close_key(caller, gone).expect("an open handle closes");
        }
    }

    for cookie in cookies {
        registry.unregister(cookie).expect("a registered cookie unregisters");
    }
    for h in handles {
        registry.close_key(&system, h).expect("an open handle closes");
    }
    assert_eq!(registry.open_handles(), 0, "every handle was closed");

    // The store saw exactly the persistent changes.
    let mut replayed = Tree::from_image(&start).expect("the fresh image loads");
    for m in log.lock().unwrap_or_else(|e| e.into_inner()).iter() {
        replayed.replay(m).unwrap_or_else(|e| panic!("replaying {m:?}: {e}"));
    }
    assert_eq!(replayed.image(), registry.image(), "the log replays to the registry's image");
});
