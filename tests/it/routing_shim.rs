//! The `codex` shim of `cao gateway enable` on temp HOME and CODEX_HOME dirs: it runs the real
//! Codex with the routing overrides, warns about a PATH that misses it, and never touches a `codex`
//! that is not cao's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;
use crate::common::routing::{Routing, write_exe};

use predicates::prelude::*;

#[test]
fn the_shim_runs_the_real_codex_with_the_routing_overrides() {
    let r = Routing::new();
    // The shim asks cao to verify the gateway before Codex starts: run a real one.
    let g = common::gateway::GatewayProc::start(&r.env, &[]);
    r.cao(&r.path_with_shim())
        .args(["gateway", "enable", "--base-url", &g.url])
        .assert()
        .success()
        .stdout(predicate::str::contains(r.shim().display().to_string()));
    let shim = std::fs::read_to_string(r.shim()).unwrap();
    assert!(shim.contains("cao-gateway-shim"));
    assert!(shim.contains("gateway verify --quiet --url"), "{shim}");
    // Through PATH, `codex` is now the shim, which hands everything to the real one.
    let run_codex = || {
        std::process::Command::new("codex")
            .env("PATH", r.path_with_shim())
            .args(["exec", "two words"])
            .output()
            .unwrap()
    };
    let out = run_codex();
    let args: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(
        args,
        [
            "-c".to_string(),
            "model_provider=\"openai\"".into(),
            "-c".into(),
            format!("openai_base_url=\"{}\"", g.url),
            "-c".into(),
            format!("chatgpt_base_url=\"{}/backend-api\"", g.url),
            "exec".into(),
            "two words".into()
        ]
    );
    // Enabling again with the shim first on PATH still finds the real codex, not the shim.
    r.cao(&r.path_with_shim())
        .args(["gateway", "enable", "--base-url", &g.url])
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(r.shim())
            .unwrap()
            .contains(&*r.real_codex().display().to_string())
    );
    // With the gateway gone, the shim says so and Codex does not start.
    assert!(g.stop().success());
    let out = run_codex();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "codex ran: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no cao gateway answers at"), "{err}");
}

#[test]
fn a_shim_dir_missing_from_path_is_warned_about() {
    let r = Routing::new();
    r.cao(&r.path_without_shim())
        .args(["gateway", "enable"])
        .assert()
        .success()
        .stderr(predicate::str::contains(".local/bin is not on PATH"));
    r.enable()
        .success()
        .stderr(predicate::str::contains("not on PATH").not());
}

#[test]
fn a_codex_earlier_on_path_than_the_shim_is_warned_about() {
    let r = Routing::new();
    let path = std::env::join_paths([r.real_bin(), r.home().join(".local/bin")]).unwrap();
    r.cao(&path)
        .args(["gateway", "enable"])
        .assert()
        .success()
        .stderr(predicate::str::contains("before the shim"));
}

#[test]
fn a_codex_that_is_not_caos_is_never_overwritten_or_removed() {
    let r = Routing::new();
    write_exe(&r.shim(), "#!/bin/sh\necho mine\n");
    r.enable()
        .success()
        .stderr(predicate::str::contains("is not cao's shim"));
    assert_eq!(
        std::fs::read_to_string(r.shim()).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
    assert!(
        r.read_config().contains("openai_base_url"),
        "config.toml is still routed"
    );
    r.disable()
        .success()
        .stderr(predicate::str::contains("is not cao's shim"));
    assert_eq!(
        std::fs::read_to_string(r.shim()).unwrap(),
        "#!/bin/sh\necho mine\n"
    );
}

#[test]
fn without_codex_on_path_the_config_is_still_routed() {
    let r = Routing::new();
    r.cao(std::ffi::OsStr::new("/usr/bin:/bin"))
        .args(["gateway", "enable"])
        .assert()
        .success()
        .stderr(predicate::str::contains("no codex found on PATH"));
    assert!(!r.shim().exists());
    assert!(r.read_config().contains("openai_base_url"));
}

#[test]
fn a_codex_home_without_a_login_is_pointed_out() {
    let r = Routing::new();
    r.enable()
        .success()
        .stderr(predicate::str::contains("has no auth.json"));
    std::fs::write(r.codex_home().join("auth.json"), "{}").unwrap();
    r.enable()
        .success()
        .stderr(predicate::str::contains("has no auth.json").not());
}
