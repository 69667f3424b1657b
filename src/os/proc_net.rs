//! Linux's socket tables, `/proc/net/tcp` and `/proc/net/tcp6`, read as text.
//!
//! The parser is plain text work and builds on every OS (the fuzz target and the tests run it
//! anywhere); only [`super::sockets`] reads the files, on Linux.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The tables, IPv4 then IPv6.
pub const TABLES: [&str; 2] = ["/proc/net/tcp", "/proc/net/tcp6"];

/// The state column's value for a listening socket.
const LISTEN: &str = "0A";

/// The uids owning LISTEN sockets in a `/proc/net/tcp{,6}` table that would take a connection
/// to `target`: its port on its address or a wildcard address.
pub fn listening_owners(table: &str, target: SocketAddr) -> Vec<u32> {
    let mut out = Vec::new();
    for line in table.lines().skip(1) {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(state), Some(uid)) = (cols.get(1), cols.get(3), cols.get(7)) else {
            continue;
        };
        if *state != LISTEN {
            continue;
        }
        let (Some((ip, port)), Ok(uid)) = (endpoint(local), uid.parse::<u32>()) else {
            continue;
        };
        let same = ip == target.ip()
            || ip.is_unspecified()
            || matches!(ip, IpAddr::V6(v6) if v6.to_ipv4_mapped() == Some(match target.ip() {
                IpAddr::V4(a) => a,
                IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
            }));
        if port == target.port() && same {
            out.push(uid);
        }
    }
    out
}

/// `ADDR:PORT` as the table prints an endpoint, both in hex.
fn endpoint(text: &str) -> Option<(IpAddr, u16)> {
    let (ip_hex, port_hex) = text.split_once(':')?;
    Some((proc_ip(ip_hex)?, u16::from_str_radix(port_hex, 16).ok()?))
}

/// An address as `/proc/net/tcp` prints it: 32-bit words in host (little-endian) order.
fn proc_ip(h: &str) -> Option<IpAddr> {
    match h.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(
            u32::from_str_radix(h, 16).ok()?.to_le_bytes(),
        ))),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                let w = u32::from_str_radix(h.get(8 * i..8 * i + 8)?, 16).ok()?;
                bytes[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:10DF 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 1 1 0 100 0 0 10 0
   1: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2 1 0 100 0 0 10 0
   2: 0100007F:10DF 0100007F:D431 01 00000000:00000000 00:00000000 00000000  2000        0 3 1 0 100 0 0 10 0
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:10DF 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  3000        0 4 1 0 100 0 0 10 0
   1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  4000        0 5 1 0 100 0 0 10 0
";

    fn at(s: &str) -> SocketAddr {
        s.parse::<SocketAddr>()
            .unwrap_or_else(|_| std::process::abort())
    }

    #[test]
    fn listening_owners_are_read_from_proc_net_tcp() {
        // 0x10DF = 4319 on 127.0.0.1 (LISTEN, uid 1000); the ESTABLISHED line is ignored.
        assert_eq!(listening_owners(TCP, at("127.0.0.1:4319")), vec![1000]);
        // 0x1F90 = 8080 on 0.0.0.0 takes connections to any address.
        assert_eq!(listening_owners(TCP, at("127.0.0.1:8080")), vec![0]);
        assert!(listening_owners(TCP, at("127.0.0.1:9")).is_empty());
        assert_eq!(listening_owners(TCP6, at("[::1]:4319")), vec![3000]);
        assert_eq!(listening_owners(TCP6, at("127.0.0.1:8080")), vec![4000]);
        assert!(listening_owners("garbage\n1: x y z\n", at("127.0.0.1:1")).is_empty());
    }

    #[test]
    fn odd_addresses_are_skipped_not_panicked_on() {
        for local in [
            "é0000000000000000000000001000000:10DF",
            "0100007F",
            ":",
            "0100007F:",
        ] {
            let table = format!("h\n 0: {local} 0:0 0A x x x 1 0 1\n");
            assert!(
                listening_owners(&table, at("127.0.0.1:4319")).is_empty(),
                "{local}"
            );
        }
    }
}
