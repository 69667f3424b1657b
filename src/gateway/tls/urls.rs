//! The gateway's two URLs on one port: the `https://` twin of a plain loopback URL and back.
//! The leaf names only loopback ([`crate::gateway::tls::certs::LEAF_NAMES`]), so only loopback URLs have a twin.

/// `https://` URL for a gateway listening on `addr`, when the leaf covers how clients reach it
/// (loopback, or a wildcard bind reached over loopback).
pub fn https_url(addr: std::net::SocketAddr) -> Option<String> {
    use std::net::IpAddr;
    match addr.ip() {
        IpAddr::V4(a) if a.is_loopback() || a.is_unspecified() => {
            Some(format!("https://127.0.0.1:{}", addr.port()))
        }
        IpAddr::V6(a) if a.is_loopback() || a.is_unspecified() => {
            Some(format!("https://[::1]:{}", addr.port()))
        }
        _ => None,
    }
}

/// True when `url` names this machine by one of the leaf's names ([`crate::gateway::tls::certs::LEAF_NAMES`]' kind).
pub fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// The `https://` twin of a gateway's plain `http://` loopback URL (same port: cao serves both
/// there); `None` for other URLs.
pub fn https_for(url: &str) -> Option<String> {
    let mut u = url::Url::parse(url).ok()?;
    if u.scheme() != "http" || !is_loopback(&u) {
        return None;
    }
    let port = u.port_or_known_default()?;
    u.set_scheme("https").ok()?;
    u.set_port(Some(port)).ok()?;
    Some(u.as_str().trim_end_matches('/').to_string())
}

/// The plain `http://` twin of a loopback `https://` gateway URL, to ask it `/health` without
/// trusting its certificate (cao serves both on one port). Other URLs come back unchanged.
pub fn plain_for(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return url.to_string();
    };
    if !is_loopback(&u) {
        return url.to_string();
    }
    let Some(port) = u.port_or_known_default() else {
        return url.to_string();
    };
    if u.scheme() != "https" || u.set_scheme("http").is_err() || u.set_port(Some(port)).is_err() {
        return url.to_string();
    }
    u.as_str().trim_end_matches('/').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_switch_scheme_on_the_same_port() {
        assert_eq!(
            https_for("http://127.0.0.1:4319").as_deref(),
            Some("https://127.0.0.1:4319")
        );
        assert_eq!(
            https_for("http://[::1]:80").as_deref(),
            Some("https://[::1]:80")
        );
        assert_eq!(https_for("http://192.168.1.2:4319"), None);
        assert_eq!(https_for("https://127.0.0.1:4319"), None);
        assert_eq!(plain_for("https://127.0.0.1:4319"), "http://127.0.0.1:4319");
        assert_eq!(plain_for("https://127.0.0.1"), "http://127.0.0.1:443");
        assert_eq!(plain_for("http://h:1"), "http://h:1");
        assert_eq!(plain_for("https://example.com"), "https://example.com");
    }
}
