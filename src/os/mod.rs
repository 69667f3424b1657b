//! Every difference between Linux, macOS and Windows, behind OS-neutral functions.
//!
//! This is the only room that names an operating system (`#[cfg(unix)]`, `#[cfg(windows)]`,
//! `target_os`); the rest of cao calls what it offers here, so a new platform is this room's
//! work. One file per concern.
pub mod limits;
pub mod proc_net;
pub mod sockets;
