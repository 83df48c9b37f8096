//! Escape tests: each tries to reach the host from inside a box and must fail. They run for
//! real, as root (CI is root on Linux 6.x); a missing kernel feature fails them loudly.

mod common;
mod dbus;
mod decide;
mod files;
mod hostaccess;
mod ipc;
mod network;
mod processes;
