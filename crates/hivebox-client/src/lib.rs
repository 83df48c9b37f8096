//! A client of the hivebox daemon (`hivebox daemon`).
//!
//! - [`Connection`]: one socket, owned by one thread, for callers that pipeline by hand
//!   (queue many requests, flush once, read the replies in order).
//! - [`Client`]: a shared connection any number of threads call through at once; a reader
//!   thread hands each reply to its caller and pushes (change notifications, events,
//!   decisions) to [`Client::pushes`].
//! - [`Registry`]: the registry's operations as typed calls over any [`Transport`] (a
//!   [`Client`], or the daemon's embedded form that runs the same code in-process).
//! - [`winreg`]: an API shaped like the `winreg` crate's (`RegKey::predef(HKEY_LOCAL_MACHINE)
//!   .open_subkey(..)`, `get_value`, `set_value`, `enum_keys`, transactions), so code written
//!   for Windows ports with few changes.
//!
//! The daemon learns who a client is from the kernel; nothing here can claim an identity.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod api;
mod socket;
pub mod winreg;

pub use api::{Error, Registry};
pub use hivebox_proto::{self as proto, Identity, Push, Reply, Request};
pub use socket::{Client, Connection, default_socket};

/// Something that answers requests: a connection to the daemon, or the daemon's code run
/// in-process. A transport failure is a [`Reply::Error`] with
/// `STATUS_CONNECTION_DISCONNECTED` and a message saying what happened.
pub trait Transport: Send + Sync {
    /// Performs one request and returns its reply.
    fn call(&self, request: Request) -> Reply;

    /// Who the other side found this caller to be.
    fn identity(&self) -> &Identity;
}
