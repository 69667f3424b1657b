//! Who owns a socket on this machine: the port-squatting defence asks it of the socket that
//! listens where the gateway should be.

use std::net::SocketAddr;

/// The owner of the socket listening on an address, as far as the OS tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenerOwner {
    /// This user (or nothing the OS lists: the caller connected, so something listens).
    Me,
    /// Another user: a description such as `uid 1001` for the message.
    Other { who: String, me: String },
    /// This OS gives cao no way to tell; the caller relies on the identity proof alone.
    Unknown,
}

/// The owner of the socket listening on `addr`.
pub fn listener_owner(addr: SocketAddr) -> ListenerOwner {
    #[cfg(target_os = "linux")]
    {
        let me = nix::unistd::getuid().as_raw();
        let mut owners = Vec::new();
        for table in super::proc_net::TABLES {
            if let Ok(text) = std::fs::read_to_string(table) {
                owners.extend(super::proc_net::listening_owners(&text, addr));
            }
        }
        match owners.into_iter().find(|u| *u != me) {
            Some(u) => ListenerOwner::Other {
                who: format!("uid {u}"),
                me: format!("uid {me}"),
            },
            None => ListenerOwner::Me,
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = addr;
        ListenerOwner::Unknown
    }
}
