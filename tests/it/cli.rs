//! The command line in odd surroundings: closed pipes, no HOME, a data dir that is a file or
//! written with `~`, existing directories cao did not create. Damaged data files are in
//! [`super::cli_files`], what cao says to people in [`super::cli_usage`], views on a terminal in
//! [`super::cli_views`].

use std::path::Path;
use std::process::{Command, Stdio};

use crate::common::files::mode;
use crate::common::{TestEnv, now_secs};

/// `cao --data-dir <dir>` with the test environment's HOME.
fn cao_at(env: &TestEnv, dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
    cmd.arg("--data-dir").arg(dir);
    cmd.env("HOME", env.dir.path().join("home"))
        .env("NO_COLOR", "1");
    cmd.env_remove("CAO_DATA_DIR");
    cmd
}

/// Run `cao <args>` with stdout a pipe whose reader is already closed; returns (code, stderr).
fn into_closed_pipe(env: &TestEnv, args: &[&str]) -> (Option<i32>, String) {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(assert_cmd::cargo::cargo_bin("cao"))
        .arg("--data-dir")
        .arg(env.data_dir())
        .env("HOME", env.dir.path().join("home"))
        .env("NO_COLOR", "1")
        .args(args)
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn output_into_a_closed_pipe_exits_quietly() {
    let env = TestEnv::new();
    env.add_logged_in("work", "acc-1", now_secs() + 3600);
    for args in [
        &["gateway", "status"][..],
        &["completions", "fish"],
        &["status", "--json"],
        &["status"],
        &["list"],
        &["status", "--doctor"],
    ] {
        let (code, stderr) = into_closed_pipe(&env, args);
        let expected = if args.contains(&"--doctor") {
            None
        } else {
            Some(0)
        };
        if let Some(expected) = expected {
            assert_eq!(code, Some(expected), "cao {args:?}: {stderr}");
        }
        assert!(
            stderr.is_empty(),
            "cao {args:?} must say nothing about the closed pipe, said: {stderr}"
        );
    }
}

#[test]
fn no_home_is_refused_with_advice_instead_of_writing_under_root() {
    let env = TestEnv::new();
    let run = |args: &[&str]| {
        let mut cmd = env.cao();
        cmd.env_remove("HOME").env_remove("CODEX_HOME").args(args);
        cmd.output().unwrap()
    };
    // The data dir default needs HOME.
    let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
    let out = cmd
        .env_remove("HOME")
        .env_remove("CAO_DATA_DIR")
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HOME is not set; pass --data-dir"),
        "stderr: {err}"
    );
    assert!(!Path::new("/.codex-account-orchestrator").exists());

    // `gateway enable` needs CODEX_HOME (or HOME) to find Codex's config.
    let out = run(&["gateway", "enable"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HOME is not set; pass --data-dir / set CODEX_HOME"),
        "stderr: {err}"
    );
    assert!(!Path::new("/.codex/config.toml").exists());

    // Commands that do not use the data dir still work.
    let out = run(&["completions", "bash"]);
    assert!(out.status.success());
}

#[test]
fn a_data_dir_that_is_a_file_is_an_error() {
    let env = TestEnv::new();
    let file = env.dir.path().join("not-a-dir");
    std::fs::write(&file, "x").unwrap();
    for args in [&["list"][..], &["status"], &["add", "work", "--no-login"]] {
        let out = cao_at(&env, &file).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("is not a directory") && err.contains(&*file.to_string_lossy()),
            "{args:?}: {err}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).is_empty());
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn a_leading_tilde_in_cao_data_dir_is_the_home_directory() {
    let env = TestEnv::new();
    let home = env.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let cao = || {
        let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
        cmd.env("HOME", &home).env("NO_COLOR", "1");
        cmd.current_dir(env.dir.path());
        cmd
    };
    cao()
        .env("CAO_DATA_DIR", "~/cao-data")
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert!(home.join("cao-data/work/config.toml").is_file());
    assert!(!env.dir.path().join("~").exists(), "no literal ~ directory");
    // `--data-dir=~/x` (no shell expansion after `=`) too.
    cao()
        .arg("--data-dir=~/cao-data")
        .args(["list"])
        .assert()
        .success()
        .stdout(predicates::str::contains("work"));
    // `~user` is refused rather than guessed.
    let out = cao()
        .env("CAO_DATA_DIR", "~nobody/x")
        .args(["list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only a leading `~/`"));
}

#[test]
fn existing_directories_keep_their_mode_new_ones_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let env = TestEnv::new();
    let shared = env.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    cao_at(&env, &shared)
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert_eq!(
        mode(&shared),
        0o755,
        "a directory cao did not create is left alone"
    );
    assert_eq!(mode(&shared.join("work")), 0o700);
    // A fresh data dir (and its missing parents) is created private.
    let fresh = env.dir.path().join("a/b/data");
    cao_at(&env, &fresh)
        .args(["add", "work", "--no-login"])
        .assert()
        .success();
    assert_eq!(mode(&fresh), 0o700);
    assert_eq!(mode(&env.dir.path().join("a")), 0o700);
}

#[test]
fn commands_without_a_data_dir_run_without_home_and_without_resolving_one() {
    let env = TestEnv::new();
    let bare = |args: &[&str]| {
        let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
        cmd.env_remove("HOME")
            .env_remove("CAO_DATA_DIR")
            .args(args)
            .output()
            .unwrap()
    };
    let key = env.dir.path().join("state.key");
    let out = bare(&["gateway", "state-key", key.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(key.is_file());
    // Before the command, the option is accepted by every command (an alias), also where it
    // changes nothing (tests/it/cli_data_dir.rs: after the name only where it is used).
    let file = env.dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let other = env.dir.path().join("other.key");
    let out = bare(&[
        "--data-dir",
        file.to_str().unwrap(),
        "gateway",
        "state-key",
        other.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = bare(&["--help"]);
    assert!(
        String::from_utf8_lossy(&help.stdout).contains("`gateway state-key` ignore it"),
        "{}",
        String::from_utf8_lossy(&help.stdout)
    );
}
