//! Helpers of the account tests ([`crate::accounts`] and its siblings): file modes, the registry,
//! a command's output, and a codex-auth snapshot dir to import.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{TestEnv, now_secs};
use serde_json::Value;

pub fn read_json(p: &Path) -> Value {
    serde_json::from_str(&fs::read_to_string(p).unwrap()).unwrap()
}

pub fn registry(env: &TestEnv) -> Value {
    read_json(&env.data_dir().join("registry.json"))
}

pub fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn snapshot_source(env: &TestEnv) -> PathBuf {
    let src = env.dir.path().join("codex/accounts");
    fs::create_dir_all(&src).unwrap();
    for (name, acc) in [("work", "acc-work"), ("personal", "acc-personal")] {
        let auth = common::auth_json(acc, &format!("{name}@example.com"), now_secs() + 86_400);
        fs::write(
            src.join(format!("{name}.json")),
            serde_json::to_string_pretty(&auth).unwrap(),
        )
        .unwrap();
    }
    fs::write(src.join("bad name.json"), "{}").unwrap();
    fs::write(src.join("broken.json"), "{not json").unwrap();
    fs::write(src.join("notes.txt"), "ignored").unwrap();
    // codex-auth marks the active snapshot next to the accounts dir.
    fs::write(src.parent().unwrap().join(".current"), "personal\n").unwrap();
    src
}
