//! The hivebox service (`hivebox daemon`): the registry served on a Unix socket to any number
//! of clients, each identified from kernel facts; the protection filter's user-mode side
//! (event log, live subscribers, sync decisions); policy reload.
//!
//! - [`server`]: the socket, one thread per connection, pipelined requests, pushes.
//! - [`session`]: one client's handles and transactions, and the dispatch of its requests
//!   (also used in-process by [`embedded::Embedded`], so both give the same answers).
//! - [`identity`]: who a peer is (`SO_PEERCRED`, `SO_PEERPIDFD`, `/proc`, cgroup).
//! - [`decide`]: sync notifications waiting for a decider, with timeout and default.
//! - [`events`], [`protection`]: the event log and the filter with its policy.
//! - [`boxes`]: the boxes of the home (create, mount on demand, list, discard, delete; the
//!   ephemeral boxes' watcher), served by the isolation filter; [`changes`]: what a box
//!   changed (diff, export, commit).
//!
//! What it does not do: run boxed programs (that is `hivebox run`), or trust anything a
//! client says about itself.

#![warn(missing_docs)]

pub mod boxes;
pub mod changes;
pub mod decide;
pub mod embedded;
pub mod events;
pub mod identity;
pub mod netdecide;
pub mod protection;
pub mod server;
pub mod session;
mod sys;

pub use embedded::Embedded;
pub use server::{Daemon, DaemonOptions};
