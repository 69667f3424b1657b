//! `<data dir>/gateway.runtime.json`: where the running gateway really listens.
//!
//! `cao gateway start --port 5055` without `--save` (or `--port 0`) listens somewhere
//! `gateway.json` does not say. So the gateway writes this file right after it has bound its
//! port (pid, the URLs clients reach it at, the port) and removes it when it stops; `cao gateway
//! status`, `cao status --watch`, `cao run --gateway` and `cao gateway enable` look here first
//! ([`crate::gateway::running::find_url`]). A file whose process is gone (the gateway was killed)
//! is stale and ignored.

use serde::{Deserialize, Serialize};

use super::{Store, StoreError, fsutil};

/// The file name inside the data dir.
pub const RUNTIME_FILE: &str = "gateway.runtime.json";

/// What a running gateway says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayRuntime {
    /// The gateway's process id.
    pub pid: u32,
    /// The address it bound (`127.0.0.1`, `0.0.0.0`, `::1`).
    pub bind: String,
    /// The port it bound (never 0).
    pub port: u16,
    /// `http://HOST:PORT` as a client on this machine reaches it (a wildcard bind over loopback).
    pub url: String,
    /// `https://127.0.0.1:PORT` (the same port) when it serves HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub https_url: Option<String>,
    /// When it started (ms since the epoch).
    pub started_at_ms: i64,
    /// The cao version that wrote the file.
    #[serde(default)]
    pub version: String,
}

impl Store {
    pub fn runtime_path(&self) -> std::path::PathBuf {
        self.root.join(RUNTIME_FILE)
    }

    /// Record the running gateway (atomic, 0600, under the state lock). A second gateway on the
    /// same data dir replaces the first one's record: the newest is the one commands talk to.
    pub fn write_runtime(&self, runtime: &GatewayRuntime) -> Result<(), StoreError> {
        self.ensure_root()?;
        let _lock = self.lock_state()?;
        self.write_json(&self.runtime_path(), runtime)
    }

    /// The running gateway's record, if there is one and its process is alive. A record that
    /// does not parse is backed up (with a notice) and counts as none.
    pub fn load_runtime(&self) -> Result<Option<GatewayRuntime>, StoreError> {
        let path = self.runtime_path();
        let runtime = self.read_json_or_back_up::<GatewayRuntime>(&path)?;
        Ok(runtime.filter(|r| process_alive(r.pid)))
    }

    /// Remove the record if it is still `pid`'s (a newer gateway's record stays).
    pub fn remove_runtime(&self, pid: u32) -> Result<(), StoreError> {
        let path = self.runtime_path();
        let _lock = self.lock_state()?;
        let Some(raw) = fsutil::read_optional(&path)? else {
            return Ok(());
        };
        let ours = serde_json::from_str::<GatewayRuntime>(&raw).is_ok_and(|r| r.pid == pid);
        if ours {
            std::fs::remove_file(&path).map_err(|e| StoreError::io("remove", &path, e))?;
        }
        Ok(())
    }
}

/// Whether a process with this id exists (signal 0: no signal is sent). A process of another
/// user counts as alive (EPERM).
pub fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(raw) = i32::try_from(pid) else {
            return false;
        };
        if raw <= 0 {
            return false;
        }
        match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
            Ok(()) => true,
            Err(e) => e == nix::errno::Errno::EPERM,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(pid: u32) -> GatewayRuntime {
        GatewayRuntime {
            pid,
            bind: "127.0.0.1".into(),
            port: 5055,
            url: "http://127.0.0.1:5055".into(),
            https_url: Some("https://127.0.0.1:5055".into()),
            started_at_ms: 1,
            version: "test".into(),
        }
    }

    #[test]
    fn a_live_record_is_read_back_and_removed_only_by_its_owner() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::at(dir.path());
        let me = std::process::id();
        store
            .write_runtime(&record(me))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.load_runtime().ok().flatten(), Some(record(me)));
        assert_eq!(
            fsutil::mode_of(&store.runtime_path()),
            Some(fsutil::SECRET_FILE_MODE)
        );
        store
            .remove_runtime(me + 1)
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(store.runtime_path().exists(), "another pid's removal");
        store.remove_runtime(me).unwrap_or_else(|e| panic!("{e}"));
        assert!(!store.runtime_path().exists());
        assert_eq!(store.load_runtime().ok().flatten(), None);
    }

    #[test]
    fn a_dead_process_record_is_stale() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::at(dir.path());
        // pid_max is at most 2^22 on Linux: this pid cannot exist.
        store
            .write_runtime(&record(4_194_305))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(store.load_runtime().ok().flatten(), None);
    }

    #[test]
    fn a_corrupt_record_is_backed_up_and_ignored() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let store = Store::at(dir.path());
        let _ = std::fs::write(store.runtime_path(), "{not json");
        assert_eq!(store.load_runtime().ok().flatten(), None);
        assert_eq!(store.take_notices().len(), 1);
    }
}
