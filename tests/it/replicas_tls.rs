//! Replicas on a Redis that speaks TLS only (`rediss://`, its certificate from a private CA the
//! test makes with rcgen, trusted with `--state-ca-file`) and asks for a password (`requirepass`
//! on the default user, and an ACL user with its own): a real `redis-server` on 127.0.0.1.
//! The password is never shown: not in logs, errors, `/status`, `/metrics` nor
//! `cao gateway status`.

use cao::mock::AccountFaults;
use cao::shared::connect::StateCa;
use cao::shared::error::SharedError;
use cao::shared::redis::SharedState;
use serde_json::Value;

use crate::common::TestEnv;
use crate::common::gateway::{cao_command, get, gw, gw_with, mock_acc1, model_call, two_accounts};
use crate::common::redis::{ACL_USER, PASSWORD, RedisServer, state_key_file};
use crate::replicas::{assert_a_cooldown_is_shared, spent_acc1};

fn ca_of(r: &RedisServer) -> String {
    r.ca_file.as_ref().unwrap().display().to_string()
}

/// Neither password anywhere in `text`.
fn assert_no_password(what: &str, text: &str) {
    assert!(
        !text.contains(PASSWORD),
        "{what} shows the password:\n{text}"
    );
    assert!(
        !text.contains(ACL_USER.1),
        "{what} shows the ACL user's password:\n{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shared_state_speaks_tls_with_a_private_ca_and_either_password_form() {
    let Some(r) = RedisServer::start_secured() else {
        return;
    };
    let ca = StateCa::load(r.ca_file.as_ref().unwrap()).unwrap();
    let default_user = r.url_as(&format!(":{PASSWORD}"), 0);
    let alice = r.url_as(&format!("{}:{}", ACL_USER.0, ACL_USER.1), 0);
    let a = SharedState::connect_trusting(&default_user, "cao:", Some(&ca))
        .await
        .unwrap();
    let b = SharedState::connect_trusting(&alice, "cao:", Some(&ca))
        .await
        .unwrap();
    assert_eq!(a.next_cursor("rr").await.unwrap(), 1);
    assert_eq!(b.next_cursor("rr").await.unwrap(), 2);
    assert_eq!(
        a.url(),
        format!("rediss://:***@127.0.0.1:{}/0", r.port),
        "the URL it shows"
    );
    assert_eq!(
        b.url(),
        format!("rediss://alice:***@127.0.0.1:{}/0", r.port)
    );
    assert_no_password("Debug", &format!("{a:?} {b:?}"));

    // A wrong password, the ACL user's wrong password, no password: refused, the URL named
    // with its password hidden.
    let cases = [
        (r.url_as(":wrong-pw-1", 0), "rediss://:***@"),
        (r.url_as("alice:wrong-pw-2", 0), "rediss://alice:***@"),
        (r.url(0), "rediss://127.0.0.1"),
    ];
    for (url, shown) in cases {
        let err = SharedState::connect_trusting(&url, "cao:", Some(&ca))
            .await
            .unwrap_err();
        let text = format!("{:#}", anyhow::Error::from(err));
        assert!(text.contains("refused the credentials"), "{text}");
        assert!(text.contains(shown), "{text}");
        assert!(!text.contains("wrong-pw"), "{text}");
    }
    // Without the CA: the web PKI roots do not know it; the error says what to pass.
    let err = SharedState::connect(&default_user, "cao:")
        .await
        .unwrap_err();
    assert!(matches!(err, SharedError::Untrusted { .. }), "{err:#}");
    let text = format!("{:#}", anyhow::Error::from(err));
    assert!(text.contains("--state-ca-file"), "{text}");
    assert_no_password("the error", &text);
    // A CA with a plain redis:// URL is a mistake, said before anything is sent.
    let plain = format!("redis://:{PASSWORD}@127.0.0.1:{}/0", r.port);
    let err = SharedState::connect_trusting(&plain, "cao:", Some(&ca))
        .await
        .unwrap_err();
    assert!(matches!(err, SharedError::CaWithoutTls { .. }), "{err}");
    assert_no_password("the error", &err.to_string());
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_a_tls_redis_with_passwords_share_a_cooldown_and_never_show_a_password() {
    let Some(redis) = RedisServer::start_secured() else {
        return;
    };
    let m = mock_acc1(spent_acc1()).await;
    let keys = TestEnv::new();
    let key = state_key_file(keys.dir.path());
    let ca = ca_of(&redis);
    let url_a = redis.url_as(&format!(":{PASSWORD}"), 0);
    let url_b = redis.url_as(&format!("{}:{}", ACL_USER.0, ACL_USER.1), 0);
    let (env_a, env_b) = (two_accounts(), two_accounts());
    // A: the options on the command line, saved; B: the URL and the CA from the environment.
    let a = gw(
        &env_a,
        &m,
        &[
            "--state",
            &url_a,
            "--state-key-file",
            &key,
            "--state-ca-file",
            &ca,
            "--save",
        ],
    );
    let b = gw_with(
        &env_b,
        &m,
        &["--state-key-file", &key],
        &[("CAO_STATE_URL", &url_b), ("CAO_STATE_CA_FILE", &ca)],
    );

    // Over the TLS Redis, with both password forms.
    assert_a_cooldown_is_shared(&m, &a.url, &b.url).await;

    // Both see each other over TLS; the URL is shown with the password hidden.
    let mut seen = Value::Null;
    for _ in 0..100 {
        seen = get(&a.url, "/status", &[]).await.json()["shared"].clone();
        if seen["replicas"].as_array().is_some_and(|r| r.len() == 2) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen["replicas"].as_array().map(Vec::len), Some(2), "{seen}");
    assert_eq!(seen["reachable"], true, "{seen}");
    let port = redis.port;
    assert_eq!(seen["url"], format!("rediss://:***@127.0.0.1:{port}/0"));
    let b_seen = get(&b.url, "/status", &[]).await.json()["shared"].clone();
    assert_eq!(
        b_seen["url"],
        format!("rediss://alice:***@127.0.0.1:{port}/0")
    );
    for g in [&a, &b] {
        assert_no_password("/status", &get(&g.url, "/status", &[]).await.body);
        assert_no_password("/metrics", &get(&g.url, "/metrics", &[]).await.body);
    }

    // `cao gateway status`, text and JSON (whose config comes from gateway.json, where
    // --save kept the URL with its password: 0600).
    let saved = env_a.data_dir().join("gateway.json");
    let text = std::fs::read_to_string(&saved).unwrap();
    assert!(text.contains(PASSWORD), "--save keeps the URL: {text}");
    assert!(text.contains("stateCaFile"), "{text}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&saved).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    for args in [
        &["gateway", "status"][..],
        &["gateway", "status", "--json"][..],
    ] {
        let out = cao_command(&env_a).args(args).output().unwrap();
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{shown}");
        assert!(
            shown.contains(&format!("rediss://:***@127.0.0.1:{port}/0")),
            "{args:?}: {shown}"
        );
        assert_no_password("cao gateway status", &shown);
    }
    let log_a = a.log_when(|l| l.contains("joined the shared pool"));
    let log_b = b.log();
    assert!(log_a.contains("joined the shared pool"), "{log_a}");
    assert_no_password("A's log", &log_a);
    assert_no_password("B's log", &log_b);
    assert!(a.stop().success() && b.stop().success());
}

#[test]
fn a_wrong_password_or_an_untrusted_redis_certificate_keeps_a_replica_from_starting() {
    let Some(redis) = RedisServer::start_secured() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let m = rt.block_on(mock_acc1(AccountFaults::default()));
    let keys = TestEnv::new();
    let key = state_key_file(keys.dir.path());
    let ca = ca_of(&redis);
    let start = |url: &str, extra: &[&str]| {
        let env = two_accounts();
        let out = cao_command(&env)
            .args(["gateway", "start", "--port", "0", "--base-url"])
            .arg(m.base_url())
            .args(["--state", url, "--state-key-file", &key])
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "started: {err}");
        assert!(out.stdout.is_empty(), "announced itself: {err}");
        err
    };
    let port = redis.port;
    let with_ca = ["--state-ca-file", ca.as_str()];
    for (userinfo, shown) in [(":wrong-pw-1", ""), ("alice:wrong-pw-2", "alice")] {
        let err = start(&redis.url_as(userinfo, 0), &with_ca);
        assert!(err.contains("refused the credentials"), "{err}");
        assert!(
            err.contains(&format!("rediss://{shown}:***@127.0.0.1:{port}/0")),
            "{err}"
        );
        assert!(!err.contains("wrong-pw"), "{err}");
    }
    // The right password but not the CA: the certificate is not trusted, and the error says
    // how to trust it.
    let err = start(&redis.url_as(&format!(":{PASSWORD}"), 0), &[]);
    assert!(err.contains("does not trust"), "{err}");
    assert!(err.contains("--state-ca-file"), "{err}");
    // The rustls cause once (the redis crate's error repeats its source's text).
    assert_eq!(err.matches("invalid peer certificate").count(), 1, "{err}");
    assert_no_password("the error", &err);
    // A CA file with a plain redis:// URL, or one that holds no certificate.
    let plain = format!("redis://:{PASSWORD}@127.0.0.1:{port}/0");
    let err = start(&plain, &with_ca);
    assert!(err.contains("rediss://"), "{err}");
    assert_no_password("the error", &err);
    let junk = keys.dir.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let junk = junk.display().to_string();
    let err = start(
        &redis.url_as(&format!(":{PASSWORD}"), 0),
        &["--state-ca-file", &junk],
    );
    assert!(
        err.contains(&junk) && err.contains("no PEM certificate"),
        "{err}"
    );
    assert_no_password("the error", &err);
}

/// Set the default user's password of `r` to `new` and drop every client connection, as an
/// operator rotating the password would (the redis crate, as a plain client).
async fn rotate_password(r: &RedisServer, old: &str, new: &str) {
    let pem = std::fs::read(r.ca_file.as_ref().unwrap()).unwrap();
    let certs = redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    };
    let client = redis::Client::build_with_tls(r.url_as(&format!(":{old}"), 0), certs).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let () = redis::cmd("CONFIG")
        .arg(&["SET", "requirepass", new])
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = redis::cmd("CLIENT")
        .arg(&["KILL", "TYPE", "normal", "SKIPME", "yes"])
        .query_async(&mut c)
        .await
        .unwrap();
}

/// The gateway's `/status` `shared` view once `reachable` is `want` (or after 15 s).
async fn reachable_becomes(g_url: &str, want: bool) -> Value {
    let mut view = Value::Null;
    for _ in 0..150 {
        view = get(g_url, "/status", &[]).await.json()["shared"].clone();
        if view["reachable"] == want {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    view
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_whose_redis_password_changes_under_it_fails_closed_and_catches_up_when_it_is_back()
 {
    let Some(redis) = RedisServer::start_secured() else {
        return;
    };
    let m = mock_acc1(AccountFaults::default()).await;
    let keys = TestEnv::new();
    let key = state_key_file(keys.dir.path());
    let ca = ca_of(&redis);
    // a1's access token has expired (the next request on it needs a refresh); a2's is good.
    let env = TestEnv::new();
    env.add_logged_in("a1", "acc-1", crate::common::now_secs() - 60);
    env.add_logged_in("a2", "acc-2", crate::common::now_secs() + 3600);
    let url = redis.url_as(&format!(":{PASSWORD}"), 0);
    let g = gw(
        &env,
        &m,
        &[
            "--state",
            &url,
            "--state-key-file",
            &key,
            "--state-ca-file",
            &ca,
        ],
    );
    rotate_password(&redis, PASSWORD, "rotated-pw-3").await;
    let view = reachable_becomes(&g.url, false).await;
    assert_eq!(view["reachable"], false, "{view}\n{}", g.log());
    // Fail closed: a1 is not refreshed while the shared state refuses this replica; a2 serves.
    for i in 0..3 {
        let r = model_call(&g.url, Some(&format!("s-{i}"))).await;
        assert_eq!(r.status, 200, "{}\n{}", r.body, g.log());
        assert!(r.body.contains("Mock reply from acc-2."), "{}", r.body);
    }
    assert!(
        m.presented_tokens().is_empty(),
        "{:?}",
        m.presented_tokens()
    );
    let log = g.log_when(|l| l.contains("no token refresh until it is back"));
    assert!(log.contains("no token refresh until it is back"), "{log}");
    // The old password back: the replica dials again by itself and catches up.
    rotate_password(&redis, "rotated-pw-3", PASSWORD).await;
    let back = reachable_becomes(&g.url, true).await;
    assert_eq!(back["reachable"], true, "{back}\n{}", g.log());
    let log = g.log_when(|l| l.contains("shared state reachable again"));
    assert!(log.contains("shared state reachable again"), "{log}");
    assert_no_password("the log", &log);
    assert!(!log.contains("rotated-pw-3"), "{log}");
    assert!(m.spent_tokens_presented().is_empty());
}
