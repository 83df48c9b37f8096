//! The registry isolation filter: a boxed program's registry writes land in its box's private
//! hive, never in the real keys, and it reads the merge of the two.
//!
//! (Being written: the public API below is final.)

pub mod markers;

use crate::cm::{Argument, CallbackCx, Cookie, RegistryCallback};
use crate::{NtStatus, RegNotifyClass, Registry};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// The filter's altitude: low in the stack (the FSFilter "virtualization" range), so every
/// filter above it (protection, 328010) judges the path the caller named.
pub const ALTITUDE: &str = "135000";

/// The master key box hives are mounted under, as Windows mounts application hives: user-mode
/// callers cannot open anything below it by name.
pub const BOX_ROOT: &str = r"\REGISTRY\A";

/// Where box `name`'s private hive is mounted.
pub fn box_mount(name: &str) -> String {
    format!(r"{BOX_ROOT}\{name}")
}

/// The isolation filter.
#[derive(Debug, Default)]
pub struct IsolationFilter {
    boxes: RwLock<HashMap<String, Arc<BoxState>>>,
}

/// One box the filter serves.
#[derive(Debug)]
struct BoxState {
    name: String,
}

impl IsolationFilter {
    /// A filter serving no box yet.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers the filter at [`ALTITUDE`].
    pub fn register(self: &Arc<Self>, registry: &Registry) -> Result<Cookie, NtStatus> {
        registry.register(ALTITUDE, self.clone())
    }

    /// Serves box `name`, whose private hive the host has mounted at [`box_mount`]`(name)`.
    /// Until then, every registry operation of a process in that box is refused.
    pub fn add_box(&self, name: &str) {
        let key = crate::name::upcase(name);
        self.boxes.write().insert(key, Arc::new(BoxState { name: name.to_owned() }));
    }

    /// Stops serving box `name` (before its hive is unmounted).
    pub fn remove_box(&self, name: &str) {
        self.boxes.write().remove(&crate::name::upcase(name));
    }

    /// Whether box `name` is served.
    pub fn has_box(&self, name: &str) -> bool {
        self.boxes.read().contains_key(&crate::name::upcase(name))
    }
}

impl RegistryCallback for IsolationFilter {
    fn notify(&self, _cx: &CallbackCx<'_>, _class: RegNotifyClass, _arg: Argument<'_, '_>) -> NtStatus {
        NtStatus::STATUS_SUCCESS
    }
}
