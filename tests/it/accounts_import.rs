//! `cao import codex-auth` on the real binary: snapshots become accounts, what cannot be imported
//! is said, and the default follows the active marker.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns too

use crate::common;
use crate::common::accounts::{read_json, registry, snapshot_source};
use crate::common::files::mode;

use std::fs;

use common::{TestEnv, now_secs};
use predicates::prelude::*;
use serde_json::json;

#[test]
fn import_codex_auth_snapshots() {
    let env = TestEnv::new();
    let src = snapshot_source(&env);
    // Two snapshots could not be imported: the import says so and exits 1 for scripts.
    env.cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "Import complete. Imported: 2, skipped: 0, errors: 2.",
        ))
        .stdout(predicate::str::contains("Default account set to: personal"))
        .stderr(predicate::str::contains(
            "Skipping snapshot 'bad name.json'",
        ))
        .stderr(predicate::str::contains(
            "Skipping snapshot 'broken.json': invalid JSON",
        ));
    let data = env.data_dir();
    for name in ["work", "personal"] {
        let auth = data.join(name).join("auth.json");
        assert_eq!(mode(&auth), 0o600);
        assert_eq!(mode(&data.join(name)), 0o700);
        assert_eq!(
            read_json(&auth),
            read_json(&src.join(format!("{name}.json")))
        );
        assert!(data.join(name).join("config.toml").exists());
    }
    assert_eq!(
        registry(&env),
        json!({"default_account": "personal", "accounts": ["personal", "work"]})
    );
    // Again: existing auth.json files are kept unless --overwrite.
    fs::remove_file(src.parent().unwrap().join(".current")).unwrap();
    env.cao()
        .args(["import", "codex-auth", "--source"])
        .arg(&src)
        .assert()
        .code(1) // the source holds two broken snapshots
        .stdout(predicate::str::contains(
            "Imported: 0, skipped: 2, errors: 2.",
        ));
    env.cao()
        .args([
            "import",
            "codex-auth",
            "--overwrite",
            "--default",
            "work",
            "--source",
        ])
        .arg(&src)
        .assert()
        .code(1) // the source holds two broken snapshots
        .stdout(predicate::str::contains(
            "Imported: 2, skipped: 0, errors: 2.",
        ))
        .stdout(predicate::str::contains("Default account set to: work"));
    env.cao()
        .args(["import", "codex-auth", "--current", "ghost", "--source"])
        .arg(&src)
        .assert()
        .code(1) // the source holds two broken snapshots
        .stderr(predicate::str::contains("'ghost' not found"));
}

#[test]
fn import_default_source_and_active_marker_in_source() {
    let env = TestEnv::new();
    let src = env.dir.path().join("home/.codex/accounts");
    fs::create_dir_all(&src).unwrap();
    // Two different logins (two copies of one login are refused: see custody.rs).
    for (n, id) in [("one", "acc-1"), ("two", "acc-2")] {
        let auth = common::auth_json(id, &format!("{n}@example.com"), now_secs() + 86_400);
        fs::write(src.join(format!("{n}.json")), auth.to_string()).unwrap();
    }
    fs::write(src.join("active"), "two.json").unwrap();
    env.cao()
        .args(["import", "codex-auth"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "Imported: 2, skipped: 0, errors: 0.",
        ));
    env.cao().arg("current").assert().success().stdout("two\n");
    env.cao()
        .args(["import", "codex-auth", "--source", "/nonexistent/dir"])
        .assert()
        .failure()
        .stderr(
            predicate::str::contains("/nonexistent/dir").and(predicate::str::contains("--source")),
        );
}
