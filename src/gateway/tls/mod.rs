//! The gateway's HTTPS on loopback: the private CA and the leaf it signs ([`certs`], made by
//! [`make`]), serving them and renewing in place ([`serving`]), the CA bundle Codex is
//! started with ([`bundle`]), and the two URLs on one port ([`urls`]).
pub mod bundle;
pub mod certs;
pub(crate) mod make;
pub mod serving;
pub(crate) mod urls;

pub use certs::{TlsEvent, TlsInfo, TlsMaterial, ensure};
pub(crate) use certs::{TlsPaths, leaf_not_after_ms};
pub use make::{LEAF_NAMES, TlsError};
pub use serving::{LiveCert, Served};
