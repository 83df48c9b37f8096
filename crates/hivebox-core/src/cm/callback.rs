//! What a registry callback receives: the notification arguments and its context.
//!
//! The structures mirror the WDK's `REG_*_INFORMATION` structures field for field where the
//! fields mean something here (see `reference/cm-callbacks.md` section 1.1); output buffers are
//! `Option`s that a bypassing pre callback fills.

use super::{Caller, Cookie, ObjectId, Registry};
use crate::access::Disposition;
use crate::tree::{KeyId, KeyInfo, SubkeyInfo};
use crate::{KeyImage, NtStatus, RegNotifyClass, Value};
use std::any::Any;
use std::sync::Arc;

/// A per-operation context a callback sets in its pre and reads back in its post.
pub type CallContext = Box<dyn Any + Send>;

/// A per-key-object context (`CmSetCallbackObjectContext`).
pub type ObjectContext = Arc<dyn Any + Send + Sync>;

/// The processor mode of a caller (`KPROCESSOR_MODE`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Mode {
    /// A kernel-mode caller: a filter's own registry calls. No access check unless
    /// `OBJ_FORCE_ACCESS_CHECK` is given.
    Kernel,
    /// A user-mode caller: every access is checked.
    User,
}

/// `REG_CREATE_KEY_INFORMATION_V1` / `REG_OPEN_KEY_INFORMATION_V1` (one layout for both).
#[derive(Debug, Clone)]
pub struct CreateKeyInfo {
    /// The name as the caller gave it: absolute (`\REGISTRY\...`) or relative to the root.
    pub complete_name: String,
    /// The object the name is relative to (`\REGISTRY` for absolute names).
    pub root_object: ObjectId,
    /// The name relative to `root_object`, always.
    pub remaining_name: String,
    /// `REG_OPTION_*`.
    pub options: u32,
    /// Class name for a create.
    pub class: Option<String>,
    /// The access the caller asked for.
    pub desired_access: u32,
    /// Output: the access granted (a bypassing filter must set it).
    pub granted_access: u32,
    /// Output (create only): created or opened.
    pub disposition: Option<Disposition>,
    /// Output: the referenced object the caller's handle will point to.
    pub result_object: Option<ObjectId>,
    /// `OBJ_*` attributes.
    pub attributes: u32,
    /// Structure version (1).
    pub version: u32,
    /// The mode access is checked for.
    pub check_access_mode: Mode,
    /// The transaction of a transacted create/open (`RegCreateKeyTransacted`); `None` also
    /// when the root key is bound to one (ask [`crate::Registry::bound_transaction`]).
    pub transaction: Option<super::TxnId>,
}

/// The arguments of one registry operation, as the pre callback sees them.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Operation {
    /// `REG_DELETE_KEY_INFORMATION`
    DeleteKey {
        /// The key object.
        object: ObjectId,
    },
    /// `REG_SET_VALUE_KEY_INFORMATION`
    SetValueKey {
        /// The key object.
        object: ObjectId,
        /// Value name.
        value_name: String,
        /// Title index (unused, kept for fidelity).
        title_index: u32,
        /// Type and data.
        value: Value,
    },
    /// `REG_DELETE_VALUE_KEY_INFORMATION`
    DeleteValueKey {
        /// The key object.
        object: ObjectId,
        /// Value name.
        value_name: String,
    },
    /// `REG_SET_INFORMATION_KEY_INFORMATION` (`KeyWriteTimeInformation`).
    SetInformationKey {
        /// The key object.
        object: ObjectId,
        /// The new last write time.
        last_write: u64,
    },
    /// `REG_RENAME_KEY_INFORMATION`
    RenameKey {
        /// The key object.
        object: ObjectId,
        /// The new last path component.
        new_name: String,
    },
    /// `REG_ENUMERATE_KEY_INFORMATION`
    EnumerateKey {
        /// The key object.
        object: ObjectId,
        /// Subkey index.
        index: u32,
        /// Output.
        result: Option<SubkeyInfo>,
    },
    /// `REG_ENUMERATE_VALUE_KEY_INFORMATION`
    EnumerateValueKey {
        /// The key object.
        object: ObjectId,
        /// Value index.
        index: u32,
        /// Output: name and value.
        result: Option<(String, Value)>,
    },
    /// `REG_QUERY_KEY_INFORMATION`
    QueryKey {
        /// The key object.
        object: ObjectId,
        /// Output.
        result: Option<KeyInfo>,
    },
    /// `REG_QUERY_VALUE_KEY_INFORMATION`
    QueryValueKey {
        /// The key object.
        object: ObjectId,
        /// Value name.
        value_name: String,
        /// Output.
        result: Option<Value>,
    },
    /// `REG_KEY_HANDLE_CLOSE_INFORMATION`
    KeyHandleClose {
        /// The key object being torn down.
        object: ObjectId,
    },
    /// `REG_CREATE_KEY_INFORMATION_V1`
    CreateKey(CreateKeyInfo),
    /// `REG_OPEN_KEY_INFORMATION_V1`
    OpenKey(CreateKeyInfo),
    /// `REG_FLUSH_KEY_INFORMATION`
    FlushKey {
        /// The key object.
        object: ObjectId,
    },
    /// `REG_QUERY_KEY_NAME`
    QueryKeyName {
        /// The key object.
        object: ObjectId,
        /// Output: the full name.
        result: Option<String>,
    },
    /// `REG_LOAD_KEY_INFORMATION`: a hive is being mounted (`Object` is `\REGISTRY`).
    LoadKey {
        /// The `\REGISTRY` root object.
        object: ObjectId,
        /// The native path it is mounted at.
        key_name: String,
        /// Where it comes from (a file path), as the caller named it.
        source_file: String,
    },
    /// `REG_UNLOAD_KEY_INFORMATION`: the hive whose root is `object` is being unmounted.
    UnLoadKey {
        /// The hive root's key object.
        object: ObjectId,
    },
    /// `REG_SAVE_KEY_INFORMATION`: the key's subtree is being saved.
    SaveKey {
        /// The key object.
        object: ObjectId,
        /// Output: the saved contents.
        result: Option<KeyImage>,
    },
    /// `REG_RESTORE_KEY_INFORMATION`: the key's contents are being replaced.
    RestoreKey {
        /// The key object.
        object: ObjectId,
        /// The new contents.
        image: KeyImage,
    },
    /// `REG_REPLACE_KEY_INFORMATION`: the file behind the hive holding the key is being
    /// replaced, from the next time the hive is loaded.
    ReplaceKey {
        /// The key object (any key of the hive).
        object: ObjectId,
        /// Where the hive's current file is to be kept.
        old_file_name: String,
        /// The file that becomes the hive.
        new_file_name: String,
    },
}

impl Operation {
    /// The pre class of this operation.
    pub fn pre_class(&self) -> RegNotifyClass {
        use RegNotifyClass::*;
        match self {
            Operation::DeleteKey { .. } => RegNtPreDeleteKey,
            Operation::SetValueKey { .. } => RegNtPreSetValueKey,
            Operation::DeleteValueKey { .. } => RegNtPreDeleteValueKey,
            Operation::SetInformationKey { .. } => RegNtPreSetInformationKey,
            Operation::RenameKey { .. } => RegNtPreRenameKey,
            Operation::EnumerateKey { .. } => RegNtPreEnumerateKey,
            Operation::EnumerateValueKey { .. } => RegNtPreEnumerateValueKey,
            Operation::QueryKey { .. } => RegNtPreQueryKey,
            Operation::QueryValueKey { .. } => RegNtPreQueryValueKey,
            Operation::KeyHandleClose { .. } => RegNtPreKeyHandleClose,
            Operation::CreateKey(_) => RegNtPreCreateKeyEx,
            Operation::OpenKey(_) => RegNtPreOpenKeyEx,
            Operation::FlushKey { .. } => RegNtPreFlushKey,
            Operation::QueryKeyName { .. } => RegNtPreQueryKeyName,
            Operation::LoadKey { .. } => RegNtPreLoadKey,
            Operation::UnLoadKey { .. } => RegNtPreUnLoadKey,
            Operation::SaveKey { .. } => RegNtPreSaveKey,
            Operation::RestoreKey { .. } => RegNtPreRestoreKey,
            Operation::ReplaceKey { .. } => RegNtPreReplaceKey,
        }
    }

    /// The key object the operation acts on (the root object for create/open).
    pub fn object(&self) -> ObjectId {
        match self {
            Operation::DeleteKey { object }
            | Operation::SetValueKey { object, .. }
            | Operation::DeleteValueKey { object, .. }
            | Operation::SetInformationKey { object, .. }
            | Operation::RenameKey { object, .. }
            | Operation::EnumerateKey { object, .. }
            | Operation::EnumerateValueKey { object, .. }
            | Operation::QueryKey { object, .. }
            | Operation::QueryValueKey { object, .. }
            | Operation::KeyHandleClose { object }
            | Operation::FlushKey { object }
            | Operation::QueryKeyName { object, .. }
            | Operation::LoadKey { object, .. }
            | Operation::UnLoadKey { object }
            | Operation::SaveKey { object, .. }
            | Operation::RestoreKey { object, .. }
            | Operation::ReplaceKey { object, .. } => *object,
            Operation::CreateKey(info) | Operation::OpenKey(info) => info.root_object,
        }
    }

    /// The create/open information, for those two operations.
    pub fn create_info(&mut self) -> Option<&mut CreateKeyInfo> {
        match self {
            Operation::CreateKey(info) | Operation::OpenKey(info) => Some(info),
            _ => None,
        }
    }
}

/// What a pre callback receives.
#[derive(Debug)]
pub struct PreInfo<'o> {
    /// The operation's arguments and outputs.
    pub op: &'o mut Operation,
    /// This callback's call context: starts `None`; whatever is left here comes back in the post.
    pub call_context: Option<CallContext>,
    /// This callback's context on the key object (`RootObjectContext` for create/open).
    pub object_context: Option<ObjectContext>,
}

/// What a post callback receives (`REG_POST_OPERATION_INFORMATION`).
#[derive(Debug)]
pub struct PostInfo<'o> {
    /// The key object: for create/open, the new object (only valid when `status` is success).
    pub object: Option<ObjectId>,
    /// The operation's status so far.
    pub status: NtStatus,
    /// The pre information, including its outputs.
    pub pre_information: &'o mut Operation,
    /// Set this and return `STATUS_CALLBACK_BYPASS` to change what the caller gets.
    pub return_status: NtStatus,
    /// The call context this callback set in its pre.
    pub call_context: Option<CallContext>,
    /// This callback's context on the key object.
    pub object_context: Option<ObjectContext>,
}

/// The argument of a notification.
#[derive(Debug)]
pub enum Argument<'a, 'o> {
    /// A pre notification.
    Pre(&'a mut PreInfo<'o>),
    /// A post notification.
    Post(&'a mut PostInfo<'o>),
    /// `RegNtCallbackObjectContextCleanup`: the context is being released.
    ContextCleanup {
        /// The object (being torn down, or the callback is unregistering).
        object: ObjectId,
        /// The context to free.
        object_context: ObjectContext,
    },
}

/// A registered callback (`EX_CALLBACK_FUNCTION`).
pub trait RegistryCallback: Send + Sync {
    /// Handles one notification. Pre: `STATUS_SUCCESS` continues, an error blocks,
    /// `STATUS_CALLBACK_BYPASS` completes the operation. Post: `STATUS_CALLBACK_BYPASS` makes
    /// `return_status` the operation's status; anything else is ignored.
    fn notify(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus;
}

impl<F> RegistryCallback for F
where
    F: Fn(&CallbackCx<'_>, RegNotifyClass, Argument<'_, '_>) -> NtStatus + Send + Sync,
{
    fn notify(&self, cx: &CallbackCx<'_>, class: RegNotifyClass, arg: Argument<'_, '_>) -> NtStatus {
        self(cx, class, arg)
    }
}

/// What a callback can do while it runs: its cookie, the caller, and registry calls of its own
/// that only the callbacks below it see.
pub struct CallbackCx<'a> {
    pub(crate) registry: &'a Registry,
    pub(crate) caller: &'a Caller,
    pub(crate) entry: &'a Arc<super::Entry>,
}

impl std::fmt::Debug for CallbackCx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallbackCx").field("cookie", &self.entry.cookie).finish()
    }
}

impl CallbackCx<'_> {
    /// The registry.
    pub fn registry(&self) -> &Registry {
        self.registry
    }

    /// The caller of the operation being filtered.
    pub fn caller(&self) -> &Caller {
        self.caller
    }

    /// This callback's cookie.
    pub fn cookie(&self) -> Cookie {
        self.entry.cookie
    }

    /// The identity for this callback's own registry calls: kernel mode, the same process and
    /// token, and dispatch starting *below* this callback.
    pub fn nested(&self) -> Caller {
        let mut c = self.caller.clone();
        c.mode = Mode::Kernel;
        c.stack.push(self.entry.clone());
        c
    }

    /// `CmSetCallbackObjectContext`: sets this callback's context on a key object; returns the old one.
    pub fn set_object_context(
        &self,
        object: ObjectId,
        context: ObjectContext,
    ) -> Result<Option<ObjectContext>, NtStatus> {
        self.registry.set_object_context(self.entry.cookie, object, context)
    }

    /// `CmCallbackGetKeyObjectIDEx`: the key's id (stable across renames) and current full name.
    pub fn key_object_id(&self, object: ObjectId) -> Result<(KeyId, String), NtStatus> {
        self.registry.key_object_id(object)
    }

    /// Takes a reference on the object behind a handle (`ObReferenceObjectByHandle`), to hand
    /// out as a create/open `result_object`.
    pub fn reference_object_by_handle(&self, handle: super::Handle) -> Result<ObjectId, NtStatus> {
        self.registry.reference_object_by_handle(handle)
    }

    /// Drops a reference taken with [`CallbackCx::reference_object_by_handle`].
    pub fn dereference_object(&self, object: ObjectId) {
        self.registry.dereference_object(object)
    }
}
