//! Helpers shared by the integration tests: temp data dirs, fake Codex logins, the real binary.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

use serde_json::json;

/// A temp data dir plus a way to run the real `cao` binary against it.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The data dir (a subdirectory, so tests also cover its creation).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `cao --data-dir <data dir>` with a clean environment for colour and HOME.
    pub fn cao(&self) -> assert_cmd::Command {
        let mut cmd = assert_cmd::Command::cargo_bin("cao").expect("cao binary");
        cmd.arg("--data-dir").arg(self.data_dir());
        cmd.env("HOME", self.dir.path().join("home"));
        cmd.env("NO_COLOR", "1");
        cmd.env_remove("CAO_DATA_DIR");
        cmd.env_remove("CAO_LOG");
        cmd.env_remove("CAO_GATEWAY_KEY");
        // `gateway enable` must not export to this machine's real GUI environment (launchctl,
        // systemd); tests/it/app_env.rs turns it back on against a stand-in systemctl.
        cmd.env("CAO_NO_APP_ENV", "1");
        cmd
    }

    /// Write a logged-in account dir (auth.json with unsigned JWTs + config.toml) and register it
    /// the way the TypeScript tool would.
    pub fn add_logged_in(&self, name: &str, account_id: &str, exp_secs: i64) {
        write_account(&self.data_dir(), name, account_id, exp_secs);
        let reg_path = self.data_dir().join("registry.json");
        let mut reg: serde_json::Value = std::fs::read_to_string(&reg_path)
            .ok()
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(json!({"default_account": null, "accounts": []}));
        reg["accounts"].as_array_mut().unwrap().push(json!(name));
        if reg["default_account"].is_null() {
            reg["default_account"] = json!(name);
        }
        std::fs::write(
            &reg_path,
            serde_json::to_string_pretty(&reg).unwrap() + "\n",
        )
        .unwrap();
    }
}

/// An unsigned JWT with the given claims (Codex does not verify signatures locally).
pub fn jwt(claims: serde_json::Value) -> String {
    cao::store::auth_file::make_unsigned_jwt(&claims)
}

/// auth.json content for a ChatGPT login of `account_id`, access token expiring at `exp_secs`.
pub fn auth_json(account_id: &str, email: &str, exp_secs: i64) -> serde_json::Value {
    let auth_claims = json!({
        "chatgpt_account_id": account_id,
        "chatgpt_plan_type": "plus",
        "chatgpt_user_id": format!("user-{account_id}"),
    });
    json!({
        "OPENAI_API_KEY": null,
        "tokens": {
            "id_token": jwt(json!({"email": email, "exp": exp_secs, "https://api.openai.com/auth": auth_claims})),
            "access_token": jwt(json!({"exp": exp_secs, "https://api.openai.com/auth": auth_claims})),
            "refresh_token": format!("rt-{account_id}-0"),
            "account_id": account_id,
        },
        "last_refresh": "2026-11-01T00:00:00Z"
    })
}

/// Create `<data>/<name>/auth.json` (0600) and `config.toml` as the TypeScript tool does.
pub fn write_account(data: &Path, name: &str, account_id: &str, exp_secs: i64) {
    let dir = data.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let auth = auth_json(account_id, &format!("{name}@example.com"), exp_secs);
    let path = dir.join("auth.json");
    std::fs::write(&path, serde_json::to_string_pretty(&auth).unwrap()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(
        dir.join("config.toml"),
        "# Codex config for this account\ncli_auth_credentials_store = \"file\"\nforced_login_method = \"chatgpt\"\n",
    )
    .unwrap();
}

/// Seconds since the epoch, now.
/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The real Codex CLI for end-to-end tests: `$CAO_REAL_CODEX`, else `node_modules/.bin/codex`.
/// `None` (with a note) when absent locally; a panic under CI, where `scripts/test` installs it.
pub fn real_codex() -> Option<PathBuf> {
    let candidate = std::env::var_os("CAO_REAL_CODEX")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("node_modules/.bin/codex"));
    if candidate.exists() {
        return Some(candidate);
    }
    if std::env::var_os("CI").is_some() {
        panic!(
            "the real codex is required under CI but {} is missing; run scripts/test",
            candidate.display()
        );
    }
    eprintln!(
        "skipping: real codex not found at {} (run scripts/test to install it)",
        candidate.display()
    );
    None
}

/// File modes.
pub mod files;

/// The account tests' helpers: modes, the registry, a command's output.
pub mod accounts;

/// The fault-injection tests' helpers: a raw upstream, event-stream bytes.
pub mod faults;

/// The `cao gateway enable` tests' helpers: a temp HOME and CODEX_HOME.
pub mod routing;

/// The `cao run` tests' helpers: a fake codex over two accounts.
pub mod run;

/// The `cao status` tests' helpers: status files, three accounts with history.
pub mod status;

/// Running the gateway as a child process and sending it requests.
pub mod gateway;
pub mod redis;

/// The real `codex exec` in a home of its own.
pub mod codex;

/// A Responses-over-WebSocket client like Codex.
pub mod ws;

/// Run `cmd` on a new `rows` x `cols` pseudo-terminal, as a person at a terminal would; `during`
/// gets the terminal's master side while it runs (to resize it). Returns everything written to
/// the terminal and the exit code.
pub fn run_on_pty(
    cmd: portable_pty::CommandBuilder,
    rows: u16,
    cols: u16,
    during: impl FnOnce(&dyn portable_pty::MasterPty),
) -> (String, u32) {
    use std::io::Read;
    let pair = portable_pty::native_pty_system()
        .openpty(portable_pty::PtySize {
            rows,
            cols,
            pixel_width: 0,
            pixel_height: 0,
        })
        .unwrap();
    let mut child = pair.slave.spawn_command(cmd).unwrap();
    drop(pair.slave);
    let mut reader = pair.master.try_clone_reader().unwrap();
    // Kept open until the end: dropping the writer sends EOF to the program.
    let writer = pair.master.take_writer().unwrap();
    let collector = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        all
    });
    during(&*pair.master);
    let status = child.wait().unwrap();
    drop(pair.master);
    drop(writer);
    let out = collector.join().unwrap();
    (
        String::from_utf8_lossy(&out).into_owned(),
        status.exit_code(),
    )
}

/// `cao` on a pseudo-terminal of a chosen size, with keys typed like a person.
pub mod pty;

/// The real Codex TUI under tmux, and the set-up the TUI tests share.
pub mod tui;

/// Headless Chromium, and the gateway the page and perimeter tests open in it.
pub mod chromium;

/// `chattr +i` on a file or directory: writing, renaming onto or into it fails, for root too
/// (tests run as root, where file modes stop nothing). Undone on drop.
pub struct Immutable(PathBuf);

impl Immutable {
    pub fn set(path: &Path) -> Option<Self> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(path.to_path_buf()))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}
