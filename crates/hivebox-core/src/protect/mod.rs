//! The protection filter: WdFilter's registry protection, on hivebox's CM stack.
//!
//! - [`bits`]: WdFilter's rule bits, process flags and process rules, with their numbers.
//! - [`pattern`], [`path`], [`tree`]: the monitored-keys tree a policy compiles into, and
//!   the forms of a path it walks.
//! - [`policy`]: a compiled policy and the decision for one operation.
//! - [`filter`]: the callback on the CM stack, its call contexts and notifications.
//! - [`event`], [`queue`], [`message`]: what a notification carries, how it is queued, and
//!   WdFilter's binary message layout.

pub mod bits;
pub mod event;
pub mod filter;
pub mod message;
pub mod path;
pub mod pattern;
pub mod policy;
pub mod queue;
pub mod tree;

pub use bits::{OpSet, RegOp};
pub use event::{EventVerdict, ProtectionEvent};
pub use filter::{PROTECTION_ALTITUDE, ProtectionFilter};
pub use policy::{Actor, CompiledPolicy, Details, Judgement, PolicySpec, RuleSpec, Subject};
pub use queue::{Decider, Decision, EventQueue, EventSink};
