//! `--data-dir` is offered only by the commands that use it (issue 15): `demo` (a temporary data
//! dir of its own), `mock-upstream`, `completions` and `gateway state-key` show it neither in
//! `--help` nor in the generated completion scripts, and refuse it after their name; every other
//! command takes it after its name as well as before (`cao --data-dir X list`, which scripts and
//! the codex shim write), and `CAO_DATA_DIR` still works.

use std::path::Path;

use crate::common::TestEnv;

/// The option as `--help` lists it (the demo's examples mention `cao --data-dir ... status`).
const OPTION: &str = "--data-dir <PATH>";

const IGNORE_IT: [&[&str]; 4] = [
    &["demo"],
    &["mock-upstream"],
    &["completions"],
    &["gateway", "state-key"],
];

const USE_IT: [&[&str]; 16] = [
    &["add"],
    &["list"],
    &["current"],
    &["switch"],
    &["use"],
    &["remove"],
    &["import", "codex-auth"],
    &["status"],
    &["doctor"],
    &["report"],
    &["run"],
    &["gateway", "start"],
    &["gateway", "status"],
    &["gateway", "enable"],
    &["gateway", "disable"],
    &["gateway", "verify"],
];

/// `cao <args>` with no `--data-dir` of the harness, a HOME of its own and no `CAO_DATA_DIR`.
fn cao(env: &TestEnv, args: &[&str]) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("cao").unwrap();
    cmd.args(args)
        .env("HOME", env.dir.path().join("home"))
        .env("NO_COLOR", "1")
        .env("CAO_NO_APP_ENV", "1")
        .env_remove("CAO_DATA_DIR")
        .env_remove("CAO_GATEWAY_KEY");
    cmd
}

fn help(env: &TestEnv, cmd: &[&str]) -> String {
    let mut args = cmd.to_vec();
    args.push("--help");
    let out = cao(env, &args).output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn only_the_commands_that_use_the_data_dir_offer_it_in_help() {
    let env = TestEnv::new();
    for cmd in IGNORE_IT {
        let text = help(&env, cmd);
        assert!(!text.contains(OPTION), "{cmd:?} offers it:\n{text}");
        // And it is not quietly accepted after their name either.
        let mut args = cmd.to_vec();
        args.extend(["--data-dir", "/nonexistent"]);
        let out = cao(&env, &args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("unexpected argument '--data-dir'"),
            "{cmd:?}: {stderr}"
        );
    }
    for cmd in USE_IT {
        let text = help(&env, cmd);
        assert!(text.contains(OPTION), "{cmd:?} does not offer it:\n{text}");
    }
    // Before any command, for the ones that use it.
    let top = help(&env, &[]);
    assert!(top.contains(OPTION), "{top}");
}

/// Fish lines offering `--data-dir` for the (sub)command `path`, e.g. `["gateway", "start"]`.
fn fish_offers(script: &str, path: &[&str]) -> bool {
    let condition = match path {
        [one] => format!("\"__fish_cao_using_subcommand {one}\""),
        [group, sub] => format!(
            "\"__fish_cao_using_subcommand {group}; and __fish_seen_subcommand_from {sub}\""
        ),
        _ => unreachable!(),
    };
    script
        .lines()
        .any(|l| l.contains(&condition) && l.contains(" -l data-dir "))
}

/// The options bash completes for the (sub)command `path`.
fn bash_opts<'s>(script: &'s str, path: &[&str]) -> &'s str {
    let case = format!(
        "        cao__subcmd__{})",
        path.join("__subcmd__").replace('-', "__subcmd__")
    );
    let mut lines = script.lines().skip_while(|l| *l != case);
    assert!(
        lines.next().is_some(),
        "no case {case:?} in the bash script"
    );
    let opts = lines.next().unwrap().trim();
    assert!(opts.starts_with("opts=\""), "{case}: {opts}");
    opts
}

#[test]
fn completion_scripts_offer_the_data_dir_only_where_it_is_used() {
    let env = TestEnv::new();
    let script = |shell: &str| {
        let out = cao(&env, &["completions", shell]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let fish = script("fish");
    let bash = script("bash");
    for cmd in IGNORE_IT {
        assert!(!fish_offers(&fish, cmd), "fish offers it for {cmd:?}");
        let opts = bash_opts(&bash, cmd);
        assert!(!opts.contains("--data-dir"), "bash, {cmd:?}: {opts}");
    }
    for cmd in USE_IT {
        assert!(
            fish_offers(&fish, cmd),
            "fish does not offer it for {cmd:?}"
        );
        let opts = bash_opts(&bash, cmd);
        assert!(opts.contains("--data-dir"), "bash, {cmd:?}: {opts}");
    }
    // Before the command name, as before.
    assert!(
        fish.lines()
            .any(|l| l.contains("__fish_cao_needs_command") && l.contains(" -l data-dir ")),
        "{fish}"
    );
}

#[test]
fn the_data_dir_works_before_or_after_the_command_and_from_the_environment() {
    let env = TestEnv::new();
    let dir = env.dir.path().join("accounts");
    let other = env.dir.path().join("other");
    let d = dir.to_str().unwrap();
    cao(&env, &["--data-dir", d, "add", "work", "--no-login"])
        .assert()
        .success();
    let listed = "* work (needs-login)\n";
    cao(&env, &["--data-dir", d, "list"])
        .assert()
        .success()
        .stdout(listed);
    cao(&env, &["list", "--data-dir", d])
        .assert()
        .success()
        .stdout(listed);
    cao(&env, &["status", "--data-dir", d, "--json"])
        .assert()
        .success();
    cao(&env, &["list"])
        .env("CAO_DATA_DIR", &dir)
        .assert()
        .success()
        .stdout(listed);
    // After the command name beats before it (an alias `cao --data-dir X` stays overridable).
    let o = other.to_str().unwrap();
    cao(&env, &["--data-dir", o, "list", "--data-dir", d])
        .assert()
        .success()
        .stdout(listed);
    assert!(!Path::new(o).join("registry.json").exists());
    // A `cao --data-dir X` alias still runs the commands that ignore it.
    cao(&env, &["--data-dir", d, "completions", "bash"])
        .assert()
        .success();
}
