//! `cao status --doctor`'s gateway section with the real binary: Codex routed over plain http
//! (which the TUI of a personal account refuses), Codex's CA bundle missing or without the
//! current CA, and a server certificate near its end; in text, JSON and the Markdown report,
//! counted in the exit code (0 healthy, 1 warnings).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use cao::policy::cert::DAY_MS;
use serde_json::Value;

use crate::common::gateway::free_port;
use crate::common::{TestEnv, now_ms, now_secs};

struct Routed {
    env: TestEnv,
    codex_home: PathBuf,
    bin: PathBuf,
}

/// Two healthy accounts (tokens good for a month, so only the gateway section can warn), an
/// empty Codex home, and a stand-in `codex` on PATH so `enable` installs its shim.
fn setup() -> Routed {
    let env = TestEnv::new();
    let exp = now_secs() + 30 * 24 * 3600;
    env.add_logged_in("a1", "acc-1", exp);
    env.add_logged_in("a2", "acc-2", exp);
    let codex_home = env.dir.path().join("codex-home");
    std::fs::create_dir_all(&codex_home).unwrap();
    let bin = env.dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let codex = bin.join("codex");
    std::fs::write(&codex, "#!/bin/sh\nexit 0\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&codex, std::fs::Permissions::from_mode(0o755)).unwrap();
    Routed {
        env,
        codex_home,
        bin,
    }
}

impl Routed {
    fn cao(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = crate::common::gateway::cao_command(&self.env);
        cmd.args(args)
            .env("CODEX_HOME", &self.codex_home)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .env_remove("CODEX_CA_CERTIFICATE")
            .env_remove("SSL_CERT_FILE");
        cmd.output().unwrap()
    }

    fn enable(&self, url: &str) {
        let out = self.cao(&["gateway", "enable", "--base-url", url]);
        assert!(out.status.success(), "{out:?}");
    }

    /// `status --doctor --json`: the exit code and the gateway section's codes.
    fn doctor(&self) -> (i32, Vec<String>, Value) {
        let out = self.cao(&["status", "--doctor", "--json"]);
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let codes = v["gateway"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|i| i["code"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default();
        (out.status.code().unwrap(), codes, v)
    }

    fn tls(&self) -> PathBuf {
        self.env.data_dir().join("tls")
    }
}

#[test]
fn doctor_warns_when_codex_is_routed_over_plain_http() {
    let s = setup();
    let (code, codes, v) = s.doctor();
    assert_eq!((code, codes.len()), (0, 0), "nothing routed: {v}");
    assert!(v.get("gateway").is_none(), "{v}");

    let port = free_port();
    s.enable(&format!("http://127.0.0.1:{port}"));
    let (code, codes, v) = s.doctor();
    // config.toml and the shim both say plain http.
    assert_eq!(code, 1, "{v}");
    assert_eq!(codes, ["routing_plain_http", "routing_plain_http"], "{v}");
    let message = v["gateway"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("https://127.0.0.1:{port}")) && message.contains("config.toml"),
        "{message}"
    );
    assert_eq!(v["totals"]["warnings"], 2, "{v}");
    assert_eq!(
        v["totals"]["ok"], 2,
        "the accounts themselves are fine: {v}"
    );

    let out = s.cao(&["status", "--doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("All accounts look healthy."), "{text}");
    assert!(
        text.contains("Gateway and HTTPS") && text.contains("[warn] routing_plain_http:"),
        "{text}"
    );
    let out = s.cao(&["status", "--report", "md"]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("## Gateway and HTTPS") && md.contains("**routing_plain_http**"),
        "{md}"
    );

    // Routed over https again: the section is quiet.
    s.enable(&format!("https://127.0.0.1:{port}"));
    let (code, codes, v) = s.doctor();
    assert_eq!((code, codes.len()), (0, 0), "{v}");
    // Undone: nothing to say either.
    assert!(s.cao(&["gateway", "disable"]).status.success());
    assert_eq!(s.doctor().0, 0);
}

#[test]
fn doctor_warns_when_the_ca_bundle_is_missing_or_lacks_the_current_ca() {
    let s = setup();
    s.enable(&format!("https://127.0.0.1:{}", free_port()));
    assert_eq!(s.doctor().0, 0);
    let bundle = s.tls().join("codex-ca-bundle.pem");
    let text = std::fs::read_to_string(&bundle).unwrap();

    std::fs::remove_file(&bundle).unwrap();
    let (code, codes, v) = s.doctor();
    // The shim and config.toml rely on the same file: one warning.
    assert_eq!(
        (code, codes),
        (1, vec!["ca_bundle_missing".to_string()]),
        "{v}"
    );
    assert!(
        v["gateway"][0]["message"]
            .as_str()
            .unwrap()
            .contains(&bundle.display().to_string()),
        "{v}"
    );

    // A bundle holding another CA (cao's CA was made again since it was written).
    let other = TestEnv::new();
    cao::gateway::tls::certs::ensure(&other.data_dir(), now_ms()).unwrap();
    let stranger = std::fs::read_to_string(other.data_dir().join("tls/ca.pem")).unwrap();
    std::fs::write(&bundle, &stranger).unwrap();
    let (code, codes, v) = s.doctor();
    assert_eq!(
        (code, codes),
        (1, vec!["ca_bundle_stale".to_string()]),
        "{v}"
    );

    // `enable` again writes it right.
    s.enable(&format!("https://127.0.0.1:{}", free_port()));
    assert_eq!(s.doctor().0, 0);
    assert!(
        std::fs::read_to_string(&bundle)
            .unwrap()
            .contains(text.lines().find(|l| l.starts_with("MII")).unwrap())
    );
}

#[test]
fn doctor_warns_about_a_server_certificate_near_its_end_until_a_start_renews_it() {
    let s = setup();
    s.enable(&format!("https://127.0.0.1:{}", free_port()));
    // Certificates (and the bundle) as if made 160 days ago: the leaf has 20 days left, which
    // a gateway started since would have renewed.
    std::fs::remove_dir_all(s.tls()).unwrap();
    cao::gateway::tls::bundle::prepare(&s.env.data_dir(), now_ms() - 160 * DAY_MS).unwrap();
    let (code, codes, v) = s.doctor();
    assert_eq!(
        (code, codes),
        (1, vec!["tls_leaf_expiring".to_string()]),
        "{v}"
    );
    let message = v["gateway"][0]["message"].as_str().unwrap();
    assert!(message.contains("expires in 19 day(s)"), "{message}");

    // Anything that prepares the certificate renews it (here `enable`; the gateway at start).
    s.enable(&format!("https://127.0.0.1:{}", free_port()));
    let (code, codes, v) = s.doctor();
    assert_eq!((code, codes.len()), (0, 0), "{v}");
}
