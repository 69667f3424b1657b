//! A real `redis-server` on a free loopback port, for the shared-state tests (no mock of Redis).
//! Debian's `redis-server` (scripts/test installs it). Without it the tests skip locally and
//! fail under CI.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cao::mock::MockUpstream;

use super::TestEnv;
use super::gateway::{GatewayProc, gw, two_accounts};

/// A `redis-server` child process, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    /// TLS only ([`RedisServer::start_secured`]): the private CA (PEM) its certificate chains to.
    pub ca_file: Option<PathBuf>,
}

/// The password of the default user of a [`RedisServer::start_secured`] server.
pub const PASSWORD: &str = "hunter2-default-pw";
/// An ACL user of a [`RedisServer::start_secured`] server and its password.
pub const ACL_USER: (&str, &str) = ("alice", "s3cret-alice-pw");

/// Where the server binary is, or why the test is skipped.
pub fn redis_binary() -> Option<PathBuf> {
    let found = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is missing under CI (scripts/test installs it)"
        );
        eprintln!("skipping: redis-server not installed");
    }
    found
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A private CA and a server certificate for 127.0.0.1 and localhost it signed (rcgen), as
/// `ca.pem`, `server.pem` and `server.key` in `dir`.
fn make_certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(DnType::CommonName, "cao test Redis CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::from_ca_cert_der(ca_cert.der(), &ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let mut leaf =
        CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    leaf.distinguished_name
        .push(DnType::CommonName, "cao test Redis");
    leaf.is_ca = IsCa::ExplicitNoCa;
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();
    let paths = (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    );
    std::fs::write(&paths.0, ca_cert.pem()).unwrap();
    std::fs::write(&paths.1, cert.pem()).unwrap();
    std::fs::write(&paths.2, key.serialize_pem()).unwrap();
    (paths.0, paths.1, paths.2)
}

/// Whether this `redis-server` was built with TLS (Debian's is).
fn has_tls(bin: &Path) -> bool {
    let out = Command::new(bin)
        .args(["--port", "0", "--tls-port", "0", "--loglevel", "warning"])
        .output();
    // Without TLS support the option itself is refused ("Bad directive or wrong number of
    // arguments"); with it, a server that listens nowhere exits saying so.
    out.is_ok_and(|o| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        !text.contains("Bad directive")
    })
}

impl RedisServer {
    /// Start one (append-only file on, as the docs advise for durable spend marks).
    pub fn start() -> Option<Self> {
        Self::spawn(false)
    }

    /// Start one that speaks TLS only (its certificate from a private CA made here, no client
    /// certificates asked), with a password on the default user ([`PASSWORD`]) and an ACL user
    /// ([`ACL_USER`]). `None` (skipped) without a `redis-server` built with TLS.
    pub fn start_secured() -> Option<Self> {
        let bin = redis_binary()?;
        if !has_tls(&bin) {
            assert!(
                std::env::var_os("CI").is_none(),
                "this redis-server has no TLS support"
            );
            eprintln!("skipping: redis-server built without TLS");
            return None;
        }
        Self::spawn(true)
    }

    fn spawn(secured: bool) -> Option<Self> {
        let bin = redis_binary()?;
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(bin);
        cmd.args(["--bind", "127.0.0.1"]);
        let mut ca_file = None;
        if secured {
            let (ca, cert, key) = make_certificates(dir.path());
            cmd.args(["--port", "0", "--tls-port", &port.to_string()])
                .arg("--tls-cert-file")
                .arg(&cert)
                .arg("--tls-key-file")
                .arg(&key)
                .arg("--tls-ca-cert-file")
                .arg(&ca)
                .args(["--tls-auth-clients", "no"])
                .args(["--requirepass", PASSWORD])
                .args(["--user", ACL_USER.0, "on"])
                .arg(format!(">{}", ACL_USER.1))
                .args(["~*", "&*", "+@all"]);
            ca_file = Some(ca);
        } else {
            cmd.args(["--port", &port.to_string()]);
        }
        let child = cmd
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = Self {
            child,
            port,
            dir,
            ca_file,
        };
        server.wait_ready();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT/DB` (`rediss://` when secured).
    pub fn url(&self, db: u8) -> String {
        self.url_as("", db)
    }

    /// [`Self::url`] with `userinfo` (`:password` or `user:password`) before the host.
    pub fn url_as(&self, userinfo: &str, db: u8) -> String {
        let scheme = if self.ca_file.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let at = if userinfo.is_empty() { "" } else { "@" };
        format!("{scheme}://{userinfo}{at}127.0.0.1:{}/{db}", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Freeze the server (SIGSTOP) or thaw it (SIGCONT), to test an unreachable Redis.
    pub fn signal(&self, sig: &str) {
        Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A state key file shared by the replicas of one test (`cao gateway state-key`), in `dir`.
pub fn state_key_file(dir: &std::path::Path) -> String {
    let path = dir.join("state.key");
    if !path.exists() {
        let out = Command::new(assert_cmd::cargo::cargo_bin("cao"))
            .args(["gateway", "state-key"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    path.display().to_string()
}

/// Publish `auth` (an auth.json) as the latest token set of `account` in the shared state at
/// `url`, from outside any gateway but the way a replica publishes a set that replaces the one
/// holding refresh token `replaces`: that token retired ("replaced"), the set sealed with the
/// state key in `key_file` (the library's own `StateKey::seal`), then the compare-and-set on
/// `replaces`'s fingerprint. Returns how the compare-and-set ended.
pub async fn publish_out_of_band(
    url: &str,
    key_file: &str,
    account: &str,
    replaces: &str,
    auth: &serde_json::Value,
) -> cao::shared::redis::Publish {
    use cao::store::custody::fingerprint;
    let key = cao::shared::seal::StateKey::load(Path::new(key_file)).unwrap();
    let shared =
        cao::shared::redis::SharedState::connect(url, cao::gateway::pool::replicas::KEY_PREFIX)
            .await
            .unwrap();
    let new_rt = auth["tokens"]["refresh_token"].as_str().unwrap();
    let old = fingerprint(replaces);
    shared
        .mark_spending(account, &old, "replaced/out-of-band")
        .await
        .unwrap();
    let text = serde_json::to_string_pretty(auth).unwrap();
    let generation = shared
        .tokens(account)
        .await
        .unwrap()
        .map_or(0, |p| p.generation)
        + 1;
    let new_fp = fingerprint(new_rt);
    let label = cao::shared::seal::Label {
        account,
        fp: &new_fp,
        generation,
    };
    let sealed = key.seal(&label, text.as_bytes()).unwrap();
    shared
        .publish_tokens(account, Some(&old), &new_fp, &sealed, generation)
        .await
        .unwrap()
}

/// One shared pool for a test: a `redis-server` and one state key, which every replica of it
/// starts with (`--state`, `--state-key-file`). `None` (the test skips) without `redis-server`.
pub struct SharedPool {
    pub redis: RedisServer,
    /// The `--state-key-file` path.
    pub key: String,
    _key_dir: tempfile::TempDir,
}

impl SharedPool {
    pub fn start() -> Option<Self> {
        let redis = RedisServer::start()?;
        let key_dir = tempfile::tempdir().unwrap();
        let key = state_key_file(key_dir.path());
        Some(Self {
            redis,
            key,
            _key_dir: key_dir,
        })
    }

    /// The `--state` URL.
    pub fn url(&self) -> String {
        self.redis.url(0)
    }

    /// A replica of the pool on the data dir `env`, started with `extra` too.
    pub fn replica(&self, env: &TestEnv, m: &MockUpstream, extra: &[&str]) -> GatewayProc {
        let url = self.url();
        let mut args = vec!["--state", url.as_str(), "--state-key-file", &self.key];
        args.extend_from_slice(extra);
        gw(env, m, &args)
    }
}

/// Two replicas of one pool, each on a data dir of its own holding the two accounts of
/// [`two_accounts`]. Dropped in order: the gateways, their data dirs, then Redis.
pub struct Pair {
    pub a: GatewayProc,
    pub b: GatewayProc,
    pub env_a: TestEnv,
    pub env_b: TestEnv,
    pub pool: SharedPool,
}

/// [`Pair`] on the mock `m`, both replicas started with `extra` too. `None` (the test skips)
/// without `redis-server`.
pub fn pair(m: &MockUpstream, extra: &[&str]) -> Option<Pair> {
    let pool = SharedPool::start()?;
    let (env_a, env_b) = (two_accounts(), two_accounts());
    let a = pool.replica(&env_a, m, extra);
    let b = pool.replica(&env_b, m, extra);
    Some(Pair {
        a,
        b,
        env_a,
        env_b,
        pool,
    })
}
