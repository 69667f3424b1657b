//! Helpers of the `cao gateway enable` tests ([`crate::routing`] and [`crate::routing_shim`]): a
//! temp HOME and CODEX_HOME with a fake `codex`, and the user's own config.toml.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::{Path, PathBuf};

use common::TestEnv;

/// Port 9 (discard): nothing listens there, so no test here depends on what else runs on this
/// machine.
pub const URL: &str = "http://127.0.0.1:9";

pub struct Routing {
    pub env: TestEnv,
}

impl Routing {
    pub fn new() -> Self {
        let r = Self {
            env: TestEnv::new(),
        };
        std::fs::create_dir_all(r.home()).unwrap();
        // A stand-in for the real Codex: prints its arguments, one per line.
        write_exe(
            &r.real_codex(),
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
        );
        r
    }
    pub fn home(&self) -> PathBuf {
        self.env.dir.path().join("home")
    }
    pub fn codex_home(&self) -> PathBuf {
        self.home().join(".codex")
    }
    pub fn config(&self) -> PathBuf {
        self.codex_home().join("config.toml")
    }
    pub fn shim(&self) -> PathBuf {
        self.home().join(".local/bin/codex")
    }
    pub fn real_bin(&self) -> PathBuf {
        self.env.dir.path().join("real bin")
    }
    pub fn real_codex(&self) -> PathBuf {
        self.real_bin().join("codex")
    }
    /// PATH with the shim dir first (as a user who followed the advice has it).
    pub fn path_with_shim(&self) -> std::ffi::OsString {
        std::env::join_paths([
            self.home().join(".local/bin"),
            self.real_bin(),
            "/usr/bin".into(),
            "/bin".into(),
        ])
        .unwrap()
    }
    pub fn path_without_shim(&self) -> std::ffi::OsString {
        std::env::join_paths([self.real_bin(), "/usr/bin".into(), "/bin".into()]).unwrap()
    }
    pub fn cao(&self, path: &std::ffi::OsStr) -> assert_cmd::Command {
        let mut cmd = self.env.cao();
        cmd.env_remove("CODEX_HOME").env("PATH", path);
        cmd
    }
    pub fn enable(&self) -> assert_cmd::assert::Assert {
        self.cao(&self.path_with_shim())
            .args(["gateway", "enable", "--base-url", URL])
            .assert()
    }
    pub fn disable(&self) -> assert_cmd::assert::Assert {
        self.cao(&self.path_with_shim())
            .args(["gateway", "disable"])
            .assert()
    }
    pub fn write_config(&self, text: &str) {
        std::fs::create_dir_all(self.codex_home()).unwrap();
        std::fs::write(self.config(), text).unwrap();
    }
    pub fn read_config(&self) -> String {
        std::fs::read_to_string(self.config()).unwrap()
    }
    pub fn sidecar(&self, suffix: &str) -> PathBuf {
        PathBuf::from(format!("{}{suffix}", self.config().display()))
    }
}

pub fn write_exe(path: &Path, body: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, body).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}
