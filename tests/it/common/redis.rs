//! A real `redis-server` on a free loopback port, for the shared-state tests (no mock of Redis).
//! Debian's `redis-server` (scripts/test installs it). Without it the tests skip locally and
//! fail under CI.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

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

impl RedisServer {
    /// Start one (append-only file on, as the docs advise for durable spend marks).
    pub fn start() -> Option<Self> {
        let bin = redis_binary()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
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
        let server = Self { child, port, dir };
        server.wait_ready();
        Some(server)
    }

    /// `redis://127.0.0.1:PORT/DB`.
    pub fn url(&self, db: u8) -> String {
        format!("redis://127.0.0.1:{}/{db}", self.port)
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
