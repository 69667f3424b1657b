//! The gateway's perimeter on whatever a client sends: line 1 a Host, line 2 an Origin, line 3
//! a path, line 4 Sec-Fetch-Site, line 5 a content type. Besides "no panic": an accepted Host
//! parses, an accepted path holds no dot segment or escape that decodes to one, and only the
//! gateway's own origin is ever its own.
#![no_main]

use cao::policy::perimeter::{
    AllowedHosts, FetchMeta, PathClass, check_host, check_origin, check_path, classify,
    is_own_origin, model_call_content_ok, parse_authority,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let host = lines.next().unwrap_or("");
    let origin = lines.next();
    let path = lines.next().unwrap_or("/");
    let site = lines.next();
    let content_type = lines.next();
    let allowed = AllowedHosts {
        port: 4319,
        bind: std::net::IpAddr::from([127, 0, 0, 1]),
        extras: vec!["gw.internal".into(), "box.lan:8443".into()],
    };
    if allowed.allows(host) {
        assert!(parse_authority(host).is_some(), "{host:?}");
    }
    let _ = check_host(Some(host), Some(host), &allowed);
    if check_path(path).is_ok() {
        let lower = path.to_ascii_lowercase();
        assert!(!lower.contains("%2f") && !lower.contains("%5c"), "{path:?}");
        // No segment is a dot segment, raw or once decoded (`%2e%2e1` is a name, not `..`).
        for seg in lower.split('/') {
            let decoded = seg.replace("%2e", ".");
            assert!(decoded != ".." && decoded != ".", "{path:?}");
        }
        let class = classify(path);
        if class != PathClass::NotForwarded && class != PathClass::Own {
            assert!(path.starts_with('/'), "{path:?}");
        }
        let meta = FetchMeta {
            method: "GET",
            path,
            origin,
            sec_fetch_site: site,
            host: Some(host),
            ..Default::default()
        };
        let verdict = check_origin(class, &meta);
        if class != PathClass::Own && (origin.is_some() || site.is_some_and(|s| s.trim() != "none")) {
            assert!(verdict.is_err(), "{meta:?}");
        }
    }
    if let Some(o) = origin
        && is_own_origin(o, Some(host))
    {
        assert!(o.contains("://"), "{o:?}");
    }
    let _ = model_call_content_ok(content_type, lines.next());
});
