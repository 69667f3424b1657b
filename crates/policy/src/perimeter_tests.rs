use super::*;

fn hosts() -> AllowedHosts {
    AllowedHosts {
        port: 4319,
        bind: IpAddr::from([127, 0, 0, 1]),
        extras: vec!["gw.internal".into(), "box.lan:8443".into()],
    }
}

#[test]
fn the_gateway_answers_to_its_loopback_names_on_its_port() {
    let h = hosts();
    for ok in [
        "127.0.0.1:4319",
        "localhost:4319",
        "LOCALHOST:4319",
        "localhost.:4319",
        "[::1]:4319",
        "127.0.0.2:4319",
        "gw.internal",
        "gw.internal:1234",
        "box.lan:8443",
    ] {
        assert!(h.allows(ok), "{ok}");
        assert!(h.allows_parsed(ok), "{ok}");
    }
    for bad in [
        "evil.example.com:4319",
        "evil.example.com",
        "127.0.0.1",
        "127.0.0.1:80",
        "localhost:4320",
        "[::1]",
        "::1:4319",
        "box.lan",
        "box.lan:8444",
        "192.168.1.5:4319",
        "user@127.0.0.1:4319",
        "127.0.0.1:4319/x",
        "127.0.0.1:99999",
        "127.0.0.1:",
        "[::1:4319",
        "",
        " ",
        "localhost.evil.com:4319",
        "127.0.0.1:+4319",
    ] {
        assert!(!h.allows(bad), "{bad}");
    }
}

#[test]
fn a_wildcard_bind_accepts_any_ip_literal_but_no_other_name() {
    let h = AllowedHosts {
        port: 4319,
        bind: IpAddr::from([0, 0, 0, 0]),
        extras: vec![],
    };
    assert!(h.allows("192.168.1.5:4319"));
    assert!(h.allows("[fe80::1]:4319"));
    assert!(!h.allows("rebind.example:4319"));
    let on_lan = AllowedHosts {
        bind: IpAddr::from([192, 168, 1, 5]),
        ..h
    };
    assert!(on_lan.allows("192.168.1.5:4319"), "the bound address");
    assert!(on_lan.allows("127.0.0.1:4319"));
    assert!(!on_lan.allows("192.168.1.6:4319"));
    assert!(!on_lan.allows("192.168.1.5:4320"));
}

#[test]
fn host_check_refuses_missing_empty_and_foreign_hosts_and_targets() {
    let h = hosts();
    assert!(check_host(Some("127.0.0.1:4319"), None, &h).is_ok());
    assert!(check_host(Some("127.0.0.1:4319"), Some("localhost:4319"), &h).is_ok());
    for (host, target) in [
        (None, None),
        (Some(""), None),
        (Some("evil.example.com:4319"), None),
        (Some("127.0.0.1:4319"), Some("chatgpt.com")),
    ] {
        let r = check_host(host, target, &h).unwrap_err();
        assert_eq!(r.status, 421);
        assert_eq!(r.kind, "host_not_allowed");
    }
}

#[test]
fn only_codex_paths_are_forwarded() {
    for p in ["/", "/health", "/status", "/metrics"] {
        assert_eq!(classify(p), PathClass::Own, "{p}");
    }
    for p in [
        "/responses",
        "/responses/",
        "/responses/compact",
        "/models",
        "/memories/trace_summarize",
        "/backend-api/codex/responses",
    ] {
        assert_eq!(classify(p), PathClass::Model, "{p}");
    }
    for p in [
        "/backend-api/wham/accounts/check",
        "/backend-api/wham/usage",
        "/backend-api/ps/plugins/installed",
        "/backend-api/ps/mcp",
        "/backend-api/codex/analytics-events/events",
        "/backend-api/connectors/directory/list",
    ] {
        assert_eq!(classify(p), PathClass::Backend, "{p}");
    }
    for p in [
        "/backend-api/conversations",
        "/backend-api/wham",
        "/backend-api/wham/",
        "/backend-api/",
        "/backend-api/accounts",
        "/api/codex/settings/user",
        "/v1/responses",
        "/responsesx",
        "/status/x",
        "/favicon.ico",
    ] {
        assert_eq!(classify(p), PathClass::NotForwarded, "{p}");
    }
}

#[test]
fn dot_segments_raw_or_encoded_are_refused() {
    for ok in [
        "/",
        "/responses",
        "/models/",
        "/backend-api/ps/plugins/a.b",
        "/backend-api/wham/tasks/...x",
    ] {
        assert!(check_path(ok).is_ok(), "{ok}");
    }
    for bad in [
        "/backend-api/../conversations",
        "/backend-api/./wham",
        "/backend-api/%2e%2e/conversations",
        "/backend-api/%2E%2e/x",
        "/backend-api/.%2e/x",
        "/backend-api/%2e/x",
        "/backend-api/%252e%252e/x",
        "/backend-api/wham/..",
        "/backend-api/wham%2f..%2fx",
        "/backend-api\\..\\x",
        "/backend-api/%5c../x",
        "/a//b",
        "/a%00b",
        "responses",
        "",
    ] {
        assert!(check_path(bad).is_err(), "{bad}");
    }
}

fn meta<'a>(path: &'a str, origin: Option<&'a str>, site: Option<&'a str>) -> FetchMeta<'a> {
    FetchMeta {
        method: "GET",
        path,
        origin,
        sec_fetch_site: site,
        host: Some("127.0.0.1:4319"),
        ..Default::default()
    }
}

#[test]
fn forwarded_requests_from_web_pages_are_refused() {
    assert!(check_origin(PathClass::Model, &meta("/responses", None, None)).is_ok());
    assert!(check_origin(PathClass::Model, &meta("/responses", None, Some("none"))).is_ok());
    for (o, s) in [
        (Some("http://evil.example"), None),
        (Some("http://127.0.0.1:4319"), None),
        (Some("null"), None),
        (None, Some("cross-site")),
        (None, Some("same-site")),
        (None, Some("same-origin")),
    ] {
        let r = check_origin(PathClass::Model, &meta("/responses", o, s)).unwrap_err();
        assert_eq!(r.status, 403, "{o:?} {s:?}");
    }
}

#[test]
fn own_pages_answer_their_own_origin_only() {
    let own = |o, s| check_origin(PathClass::Own, &meta("/status", o, s));
    assert!(own(None, None).is_ok());
    assert!(own(Some("http://127.0.0.1:4319"), Some("same-origin")).is_ok());
    assert!(own(None, Some("none")).is_ok());
    assert!(own(Some("http://127.0.0.1:4320"), None).is_err());
    assert!(own(Some("http://localhost:4319"), None).is_err());
    assert!(own(Some("null"), None).is_err());
    assert!(own(None, Some("same-site")).is_err());
    assert!(own(None, Some("cross-site")).is_err());
    // A link to the page from elsewhere opens it; a script fetching it does not.
    let nav = FetchMeta {
        sec_fetch_mode: Some("navigate"),
        sec_fetch_dest: Some("document"),
        ..meta("/", None, Some("cross-site"))
    };
    assert!(check_origin(PathClass::Own, &nav).is_ok());
    let nav_status = FetchMeta {
        path: "/status",
        ..nav
    };
    assert!(check_origin(PathClass::Own, &nav_status).is_err());
    let cors = FetchMeta {
        sec_fetch_mode: Some("cors"),
        ..nav
    };
    assert!(check_origin(PathClass::Own, &cors).is_err());
}

#[test]
fn own_origin_matches_scheme_default_ports() {
    assert!(is_own_origin(
        "http://127.0.0.1:4319",
        Some("127.0.0.1:4319")
    ));
    assert!(is_own_origin("HTTP://LocalHost", Some("localhost:80")));
    assert!(is_own_origin("https://gw.internal", Some("gw.internal")));
    assert!(!is_own_origin(
        "https://gw.internal",
        Some("gw.internal:80")
    ));
    assert!(!is_own_origin(
        "ftp://127.0.0.1:4319",
        Some("127.0.0.1:4319")
    ));
    assert!(!is_own_origin("http://127.0.0.1:4319", None));
}

#[test]
fn model_calls_must_be_json() {
    assert!(model_call_content_ok(Some("application/json"), None));
    assert!(model_call_content_ok(
        Some("Application/JSON; charset=utf-8"),
        Some("zstd")
    ));
    for (ct, ce) in [
        (None, None),
        (Some("text/plain"), None),
        (Some("application/x-www-form-urlencoded"), None),
        (Some("multipart/form-data; boundary=x"), None),
        (Some("application/json"), Some("gzip")),
    ] {
        assert!(!model_call_content_ok(ct, ce), "{ct:?} {ce:?}");
    }
}

#[test]
fn failed_key_attempts_slow_down_and_keys_must_be_long() {
    assert_eq!(failure_delay_ms(1), 0);
    assert_eq!(failure_delay_ms(2), 250);
    assert_eq!(failure_delay_ms(3), 500);
    assert_eq!(failure_delay_ms(50), 8_000);
    assert!(access_key_problem("short").is_some());
    assert!(access_key_problem("sixteen chars ok").is_some(), "spaces");
    assert!(access_key_problem("0123456789abcdef").is_none());
}

#[test]
fn the_loopback_shortcut_never_allows_what_the_parse_refuses() {
    let h = hosts();
    let mut tried = 0;
    for host in [
        "127.0.0.1",
        "localhost",
        "LOCALHOST",
        "127.0.0.1.",
        "localhost.",
    ] {
        for port in [
            "4319", "04319", "004319", "+4319", "4320", "", "65536", "4319/x", "43 19",
        ] {
            let a = format!("{host}:{port}");
            if h.is_plain_loopback(&a) {
                assert!(h.allows_parsed(&a), "{a}");
                tried += 1;
            }
        }
    }
    // The shortcut does take the everyday ones.
    assert!(h.is_plain_loopback("127.0.0.1:4319") && h.is_plain_loopback("localhost:4319"));
    assert!(tried >= 2);
}

#[test]
fn each_scheme_has_its_default_port() {
    for (scheme, port) in [("http", 80), ("ws", 80), ("HTTPS", 443), ("wss", 443)] {
        assert_eq!(default_port(scheme), Some(port), "{scheme}");
    }
    assert_eq!(default_port("ftp"), None);
    assert_eq!(default_port(""), None);
    // An origin is http(s) only.
    assert!(is_own_origin("http://127.0.0.1:80", Some("127.0.0.1")));
    assert!(!is_own_origin("ws://127.0.0.1:80", Some("127.0.0.1")));
}

#[test]
fn the_own_routes_table_is_what_classify_reads() {
    for route in OWN_ROUTES {
        assert_eq!(classify(route.path), route.checked_as, "{}", route.path);
        assert_eq!(own_route(route.path), Some(&route));
    }
    // The pooled usage answer at the backend's own path is checked like the backend call.
    assert_eq!(
        own_route("/backend-api/wham/usage").map(|r| r.answer),
        Some(OwnAnswer::PooledUsage)
    );
    assert_eq!(classify("/backend-api/wham/usage"), PathClass::Backend);
    assert_eq!(own_route("/responses"), None);
    assert_eq!(own_route("/status/"), None);
}
