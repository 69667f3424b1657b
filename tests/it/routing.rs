//! `cao gateway enable` / `disable` on temp HOME and CODEX_HOME dirs (never the real ones): what
//! they change in config.toml and how exactly disable puts it back. The `codex` shim is in
//! [`super::routing_shim`].
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::routing::Routing;

use predicates::prelude::*;

const USER_CONFIG: &str = "# my settings\nmodel = \"o3\" # best\n\n[model_providers.local]\nname = \"Local\"\nbase_url = \"http://localhost:1234/v1\"\n\n[tui]\nnotifications = true\n";

#[test]
fn enable_routes_config_and_disable_restores_it_byte_for_byte() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    r.enable().success().stdout(predicate::str::contains(
        "Codex now goes through the gateway at http://127.0.0.1:9",
    ));
    let text = r.read_config();
    assert!(
        text.contains("openai_base_url = \"http://127.0.0.1:9\""),
        "{text}"
    );
    assert!(
        text.contains("chatgpt_base_url = \"http://127.0.0.1:9/backend-api\""),
        "{text}"
    );
    assert!(
        !text.contains("model_provider ="),
        "the built-in provider is kept: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(r.sidecar(".cao.bak")).unwrap(),
        USER_CONFIG
    );
    assert!(r.sidecar(".cao-routing.json").exists());

    r.disable()
        .success()
        .stdout(predicate::str::contains("Restored"));
    assert_eq!(r.read_config(), USER_CONFIG);
    assert!(!r.sidecar(".cao-routing.json").exists());
    assert!(
        !r.sidecar(".cao.bak").exists(),
        "an exact restore makes the backup redundant"
    );
}

#[test]
fn enabling_twice_is_harmless() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    r.enable().success();
    let once = r.read_config();
    r.enable().success();
    assert_eq!(r.read_config(), once);
    assert_eq!(
        std::fs::read_to_string(r.sidecar(".cao.bak")).unwrap(),
        USER_CONFIG
    );
    r.disable().success();
    assert_eq!(r.read_config(), USER_CONFIG);
}

#[test]
fn a_new_url_replaces_the_old_one() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    r.enable().success();
    r.cao(&r.path_with_shim())
        .args(["gateway", "enable", "--base-url", "http://127.0.0.1:5555/"])
        .assert()
        .success();
    let text = r.read_config();
    assert!(!text.contains("127.0.0.1:9\""), "{text}");
    assert!(
        text.contains("openai_base_url = \"http://127.0.0.1:5555\""),
        "{text}"
    );
    assert!(
        text.contains("chatgpt_base_url = \"http://127.0.0.1:5555/backend-api\""),
        "{text}"
    );
    assert!(std::fs::read_to_string(r.shim()).unwrap().contains("5555"));
    r.disable().success();
    assert_eq!(r.read_config(), USER_CONFIG);
}

#[test]
fn user_edits_made_while_enabled_survive_disable() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    r.enable().success();
    let edited = r
        .read_config()
        .replace("notifications = true", "notifications = false")
        + "[features]\nweb_search = true\n";
    std::fs::write(r.config(), edited).unwrap();
    r.disable()
        .success()
        .stdout(predicate::str::contains("your other edits are kept"));
    let expected = USER_CONFIG.replace("notifications = true", "notifications = false")
        + "[features]\nweb_search = true\n";
    assert_eq!(r.read_config(), expected);
}

#[test]
fn a_missing_config_is_created_and_removed_again() {
    let r = Routing::new();
    r.enable().success();
    assert!(r.read_config().contains("openai_base_url"));
    assert!(!r.sidecar(".cao.bak").exists(), "nothing to back up");
    r.disable().success();
    assert!(!r.config().exists());
}

#[test]
fn an_unparsable_config_is_left_untouched_with_an_error_naming_it() {
    let r = Routing::new();
    let broken = "model = \"o3\n[tui\n";
    r.write_config(broken);
    r.enable()
        .failure()
        .stderr(predicate::str::contains(r.config().display().to_string()))
        .stderr(predicate::str::contains("not valid TOML"))
        .stderr(predicate::str::contains("left untouched"));
    assert_eq!(r.read_config(), broken);
    assert!(!r.sidecar(".cao-routing.json").exists());
    assert!(!r.shim().exists());
}

#[test]
fn disable_on_a_config_broken_since_enable_changes_nothing() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    r.enable().success();
    let broken = format!("{}[tui\n", r.read_config());
    std::fs::write(r.config(), &broken).unwrap();
    r.disable()
        .failure()
        .stderr(predicate::str::contains("nothing was changed"));
    assert_eq!(r.read_config(), broken);
    assert!(
        r.shim().exists(),
        "the shim stays until the config can be undone too"
    );
    assert!(r.sidecar(".cao-routing.json").exists());
}

#[test]
fn a_user_set_provider_is_switched_and_restored() {
    let r = Routing::new();
    let original = "model_provider = \"azure\"\n[model_providers.azure]\nname = \"Azure\"\nbase_url = \"https://x/openai\"\n";
    r.write_config(original);
    r.enable()
        .success()
        .stderr(predicate::str::contains("model_provider was \"azure\""));
    assert!(r.read_config().starts_with("model_provider = \"openai\"\n"));
    r.disable().success();
    assert_eq!(r.read_config(), original);
}

#[test]
fn codex_home_is_respected() {
    let r = Routing::new();
    let other = r.env.dir.path().join("other-codex-home");
    std::fs::create_dir_all(&other).unwrap();
    r.cao(&r.path_with_shim())
        .env("CODEX_HOME", &other)
        .args(["gateway", "enable"])
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(other.join("config.toml"))
            .unwrap()
            .contains("openai_base_url")
    );
    assert!(!r.config().exists());
    r.cao(&r.path_with_shim())
        .env("CODEX_HOME", &other)
        .args(["gateway", "disable"])
        .assert()
        .success();
    assert!(!other.join("config.toml").exists());
}

#[test]
fn a_symlinked_config_stays_a_symlink() {
    let r = Routing::new();
    let dotfiles = r.env.dir.path().join("dotfiles");
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(dotfiles.join("codex.toml"), USER_CONFIG).unwrap();
    std::fs::create_dir_all(r.codex_home()).unwrap();
    std::os::unix::fs::symlink(dotfiles.join("codex.toml"), r.config()).unwrap();
    r.enable().success();
    assert!(
        std::fs::symlink_metadata(r.config())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::read_to_string(dotfiles.join("codex.toml"))
            .unwrap()
            .contains("openai_base_url")
    );
    r.disable().success();
    assert!(
        std::fs::symlink_metadata(r.config())
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(dotfiles.join("codex.toml")).unwrap(),
        USER_CONFIG
    );
}

#[test]
fn disable_without_enable_changes_nothing() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    r.disable()
        .success()
        .stdout(predicate::str::contains("nothing to undo"));
    assert_eq!(r.read_config(), USER_CONFIG);
}

#[test]
fn without_base_url_the_saved_gateway_address_is_used() {
    let r = Routing::new();
    std::fs::create_dir_all(r.env.data_dir()).unwrap();
    std::fs::write(
        r.env.data_dir().join("gateway.json"),
        r#"{"bindAddress": "0.0.0.0", "port": 5055}"#,
    )
    .unwrap();
    r.cao(&r.path_with_shim())
        .args(["gateway", "enable"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "gateway at https://127.0.0.1:5055",
        ));
    assert!(
        r.read_config()
            .contains("openai_base_url = \"https://127.0.0.1:5055\"")
    );
}

#[test]
fn a_bad_url_is_refused() {
    let r = Routing::new();
    r.cao(&r.path_with_shim())
        .args(["gateway", "enable", "--base-url", "localhost:4319"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not a URL").or(predicate::str::contains("not an http")));
    assert!(!r.config().exists());
}

#[test]
fn enable_says_which_of_the_users_own_urls_it_replaces_and_where_they_are_kept() {
    let r = Routing::new();
    r.write_config("openai_base_url = \"https://proxy.corp.example/v1\"\nmodel = \"o3\"\n");
    let out = r.enable().success().get_output().stdout.clone();
    let out = String::from_utf8_lossy(&out);
    assert!(
        out.contains(
            "replaced your own openai_base_url = \"https://proxy.corp.example/v1\" (kept in the backup"
        ),
        "{out}"
    );
    assert!(!out.contains("replaced your own chatgpt_base_url"), "{out}");
    assert!(
        out.contains(&format!("backup: {}", r.sidecar(".cao.bak").display())),
        "{out}"
    );
    // Enabling again (a new URL) still names the user's value, not cao's previous one.
    let again = r
        .cao(&r.path_with_shim())
        .args(["gateway", "enable", "--base-url", "http://127.0.0.1:5555"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let again = String::from_utf8_lossy(&again);
    assert!(
        again.contains("replaced your own openai_base_url = \"https://proxy.corp.example/v1\""),
        "{again}"
    );
    assert!(!again.contains("127.0.0.1:9"), "{again}");
    r.disable().success();
    assert!(r.read_config().contains("https://proxy.corp.example/v1"));
}

#[test]
fn enable_on_a_config_without_urls_replaces_nothing() {
    let r = Routing::new();
    r.write_config(USER_CONFIG);
    let out = r.enable().success().get_output().stdout.clone();
    assert!(!String::from_utf8_lossy(&out).contains("replaced your own"));
}
