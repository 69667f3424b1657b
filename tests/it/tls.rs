//! The gateway's HTTPS certificates over their whole life, with the real `cao` binary: made on
//! first start (keys 0600, dir 0700), reused across restarts, the leaf renewed when it has under
//! 60 days left, a damaged file backed up and made again, and Codex's CA bundle keeping the
//! user's own CA. Every check that matters is a real TLS handshake on 127.0.0.1 that trusts only
//! the CA on disk (or the bundle), so a certificate the gateway does not actually serve fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use cao::mock::Scenario;
use cao::policy::cert::DAY_MS;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::gateway::{GatewayProc, cao_command, get, gw, mock, two_accounts};
use crate::common::{TestEnv, now_ms};

fn tls_dir(env: &TestEnv) -> PathBuf {
    env.data_dir().join("tls")
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `<name>.corrupt-*` backup next to `name` in the tls dir.
fn backups(env: &TestEnv, name: &str) -> Vec<PathBuf> {
    let prefix = format!("{name}.corrupt-");
    std::fs::read_dir(tls_dir(env))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&prefix)
        })
        .collect()
}

/// A TLS handshake with the gateway at `tls_url` trusting only the certificates in `roots_pem`,
/// then `GET /health` over it. Returns the leaf the gateway served (DER), or the handshake error.
async fn handshake(tls_url: &str, roots_pem: &str) -> Result<Vec<u8>, String> {
    let port = url::Url::parse(tls_url).unwrap().port().unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(roots_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    let leaf = tls.get_ref().1.peer_certificates().unwrap()[0].to_vec();
    tls.write_all(
        format!("GET /health HTTP/1.1\r\nhost: 127.0.0.1:{port}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    Ok(leaf)
}

/// The leaf in `gateway.pem` (DER) and its expiry (ms).
fn leaf_on_disk(env: &TestEnv) -> (Vec<u8>, i64) {
    let pem = read(&tls_dir(env).join("gateway.pem"));
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    let (_, x509) = x509_parser::parse_x509_certificate(&der).unwrap();
    let until = x509.validity().not_after.timestamp() * 1000;
    (der.to_vec(), until)
}

/// The CA fingerprint the running gateway shows on `/status`.
async fn served_fingerprint(g: &GatewayProc) -> String {
    let st = get(&g.url, "/status", &[]).await;
    st.json()["served"]["caFingerprint"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn certificates_are_made_private_on_first_start_and_reused_across_restarts() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    assert!(!tls_dir(&env).exists());
    let g = gw(&env, &m, &[]);
    let tls = tls_dir(&env);
    assert_eq!(mode(&tls), 0o700);
    assert_eq!(mode(&tls.join("ca-key.pem")), 0o600);
    assert_eq!(mode(&tls.join("gateway-key.pem")), 0o600);
    for key in ["ca-key.pem", "gateway-key.pem"] {
        assert!(read(&tls.join(key)).contains("PRIVATE KEY"), "{key}");
    }
    let ca = read(&tls.join("ca.pem"));
    // The bundle Codex gets starts with that CA.
    let bundle = read(&tls.join("codex-ca-bundle.pem"));
    assert!(bundle.contains(ca.trim()), "{bundle}");
    let https = g.tls_url.clone().expect("https on loopback");
    let served = handshake(&https, &ca).await.unwrap();
    let (leaf, _) = leaf_on_disk(&env);
    assert_eq!(served, leaf, "the gateway serves the leaf on disk");
    let fingerprint = served_fingerprint(&g).await;
    g.stop();

    // A restart: nothing is made again, the same certificate is served.
    let files = |env: &TestEnv| {
        ["ca.pem", "ca-key.pem", "gateway.pem", "gateway-key.pem"]
            .map(|f| read(&tls_dir(env).join(f)))
    };
    let before = files(&env);
    let g = gw(&env, &m, &[]);
    assert_eq!(files(&env), before);
    assert_eq!(served_fingerprint(&g).await, fingerprint);
    let again = handshake(g.tls_url.as_deref().unwrap(), &ca).await.unwrap();
    assert_eq!(again, leaf);
    // A CA the gateway does not use is refused: the check above can fail.
    let other = TestEnv::new();
    cao::gateway::tls::certs::ensure(&other.data_dir(), now_ms()).unwrap();
    let stranger = read(&tls_dir(&other).join("ca.pem"));
    assert!(
        handshake(g.tls_url.as_deref().unwrap(), &stranger)
            .await
            .is_err()
    );
    assert!(backups(&env, "gateway.pem").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_leaf_with_under_60_days_left_is_renewed_at_start_under_the_same_ca() {
    let env = two_accounts();
    // Made 150 days ago: the leaf (180 days) has 30 left.
    cao::gateway::tls::certs::ensure(&env.data_dir(), now_ms() - 150 * DAY_MS).unwrap();
    let ca = read(&tls_dir(&env).join("ca.pem"));
    let (old_leaf, old_until) = leaf_on_disk(&env);
    assert!(old_until < now_ms() + 31 * DAY_MS);

    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let (leaf, until) = leaf_on_disk(&env);
    assert_ne!(leaf, old_leaf, "renewed");
    assert!(until > now_ms() + 170 * DAY_MS, "a fresh 180-day leaf");
    assert_eq!(read(&tls_dir(&env).join("ca.pem")), ca, "the CA is kept");
    assert_eq!(mode(&tls_dir(&env).join("gateway-key.pem")), 0o600);
    // Served, and trusted by the CA Codex already has.
    let served = handshake(g.tls_url.as_deref().unwrap(), &ca).await.unwrap();
    assert_eq!(served, leaf);
    assert!(
        g.log_when(|l| l.contains("renewed the server certificate"))
            .contains("renewed the server certificate"),
        "{}",
        g.log()
    );
    // Renewal is not damage: nothing was backed up.
    assert!(backups(&env, "gateway.pem").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_key_is_backed_up_and_made_again() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    let tls = tls_dir(&env);
    let ca = read(&tls.join("ca.pem"));
    let (old_leaf, _) = leaf_on_disk(&env);
    g.stop();

    // The leaf's key: the leaf is backed up with it and made again under the same CA.
    std::fs::write(tls.join("gateway-key.pem"), "not a key").unwrap();
    let g = gw(&env, &m, &[]);
    let kept = backups(&env, "gateway-key.pem");
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(read(&kept[0]), "not a key");
    assert_eq!(mode(&kept[0]), 0o600);
    assert_eq!(backups(&env, "gateway.pem").len(), 1);
    let (leaf, _) = leaf_on_disk(&env);
    assert_ne!(leaf, old_leaf);
    assert_eq!(read(&tls.join("ca.pem")), ca);
    assert_eq!(
        handshake(g.tls_url.as_deref().unwrap(), &ca).await,
        Ok(leaf)
    );
    g.stop();

    // The CA certificate itself: a new CA (and leaf), and the bundle follows it.
    std::fs::write(tls.join("ca.pem"), "-----BEGIN CERTIFICATE-----\nbroken\n").unwrap();
    let g = gw(&env, &m, &[]);
    assert_eq!(backups(&env, "ca.pem").len(), 1);
    assert_eq!(backups(&env, "ca-key.pem").len(), 1);
    let new_ca = read(&tls.join("ca.pem"));
    assert_ne!(new_ca, ca);
    assert!(read(&tls.join("codex-ca-bundle.pem")).contains(new_ca.trim()));
    assert!(handshake(g.tls_url.as_deref().unwrap(), &ca).await.is_err());
    assert!(
        handshake(g.tls_url.as_deref().unwrap(), &new_ca)
            .await
            .is_ok()
    );
    assert_eq!(mode(&tls.join("ca-key.pem")), 0o600);
}

/// A corporate CA the user had given Codex stays trusted: `gateway enable` puts it in the
/// bundle after cao's CA, and a client trusting only the bundle reaches both the gateway and a
/// server with a certificate from that corporate CA.
#[tokio::test(flavor = "multi_thread")]
async fn the_bundle_keeps_the_users_own_ca_next_to_caos() {
    let env = two_accounts();
    let m = mock(Scenario::default()).await;
    let g = gw(&env, &m, &[]);
    // "Corporate" CA: another cao data dir's CA will do (a real CA certificate on disk).
    let corp = two_accounts();
    cao::gateway::tls::certs::ensure(&corp.data_dir(), now_ms()).unwrap();
    let corp_ca = tls_dir(&corp).join("ca.pem");
    let codex_home = env.dir.path().join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let out = cao_command(&env)
        .args(["gateway", "enable", "--base-url"])
        .arg(g.tls_url.as_deref().unwrap())
        .env("CODEX_HOME", &codex_home)
        .env("CODEX_CA_CERTIFICATE", &corp_ca)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bundle = read(&tls_dir(&env).join("codex-ca-bundle.pem"));
    let ours = read(&tls_dir(&env).join("ca.pem"));
    let theirs = read(&corp_ca);
    let (at_ours, at_theirs) = (
        bundle.find(ours.trim()).unwrap(),
        bundle.find(theirs.trim()).unwrap(),
    );
    assert!(at_ours < at_theirs, "cao's CA first: {bundle}");
    assert!(
        bundle.contains(&format!("CODEX_CA_CERTIFICATE={}", corp_ca.display())),
        "{bundle}"
    );
    // Trusting only the bundle: the gateway's certificate verifies ...
    assert!(
        handshake(g.tls_url.as_deref().unwrap(), &bundle)
            .await
            .is_ok()
    );
    // ... and so does one issued by the corporate CA (the other data dir's gateway).
    let corp_gw = gw(&corp, &m, &[]);
    assert!(
        handshake(corp_gw.tls_url.as_deref().unwrap(), &bundle)
            .await
            .is_ok()
    );
    // A later enable from a shell where CODEX_CA_CERTIFICATE already is the bundle (the shim's
    // environment) keeps the corporate CA in.
    let out = cao_command(&env)
        .args(["gateway", "enable", "--base-url"])
        .arg(g.tls_url.as_deref().unwrap())
        .env("CODEX_HOME", &codex_home)
        .env(
            "CODEX_CA_CERTIFICATE",
            tls_dir(&env).join("codex-ca-bundle.pem"),
        )
        .env("PATH", "/usr/bin:/bin")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(read(&tls_dir(&env).join("codex-ca-bundle.pem")), bundle);
}
