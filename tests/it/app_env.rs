//! `cao gateway enable` gives GUI apps (the Codex desktop app, IDEs) `CODEX_CA_CERTIFICATE`
//! through the systemd user manager and `~/.config/environment.d`, and `disable` (or
//! `enable --no-app-env`) puts back what was there. The real binary against a stand-in
//! `systemctl` on PATH that keeps the manager's environment in a file and logs every call, so
//! this machine's own session is never touched. (macOS' `launchctl` is covered by the unit tests
//! in `src/codex/app_env.rs` with a stand-in `launchctl`; not run on a Mac here.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use crate::common::TestEnv;
use crate::common::gateway::{cao_command, free_port};

struct Desk {
    env: TestEnv,
    bin: PathBuf,
    codex_home: PathBuf,
    port: u16,
}

fn exe(path: &std::path::Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

impl Desk {
    fn new() -> Self {
        let env = TestEnv::new();
        env.add_logged_in("a1", "acc-1", crate::common::now_secs() + 3600);
        let bin = env.dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        exe(&bin.join("codex"), "#!/bin/sh\nexit 0\n");
        let state = env.dir.path().join("manager-env");
        let log = env.dir.path().join("systemctl.log");
        std::fs::write(&state, "HOME=/home/someone\n").unwrap();
        exe(
            &bin.join("systemctl"),
            &format!(
                r#"#!/bin/sh
echo "$*" >> '{log}'
[ "$1" = "--user" ] || exit 1
case "$2" in
  show-environment) cat '{state}';;
  set-environment) name="${{3%%=*}}"; grep -v "^$name=" '{state}' > '{state}.new'; echo "$3" >> '{state}.new'; mv '{state}.new' '{state}';;
  unset-environment) grep -v "^$3=" '{state}' > '{state}.new'; mv '{state}.new' '{state}';;
  *) exit 1;;
esac
"#,
                log = log.display(),
                state = state.display()
            ),
        );
        let codex_home = env.dir.path().join("codex-home");
        std::fs::create_dir_all(&codex_home).unwrap();
        let port = free_port();
        Self {
            env,
            bin,
            codex_home,
            port,
        }
    }

    fn cao(&self, args: &[&str]) -> (bool, String, String) {
        let out = cao_command(&self.env)
            .args(args)
            .env_remove("CAO_NO_APP_ENV")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CODEX_CA_CERTIFICATE")
            .env_remove("SSL_CERT_FILE")
            .env("CODEX_HOME", &self.codex_home)
            .env("PATH", format!("{}:/usr/bin:/bin", self.bin.display()))
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    fn manager_env(&self) -> String {
        std::fs::read_to_string(self.env.dir.path().join("manager-env")).unwrap()
    }

    fn calls(&self) -> Vec<String> {
        std::fs::read_to_string(self.env.dir.path().join("systemctl.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn drop_in(&self) -> PathBuf {
        self.env
            .dir
            .path()
            .join("home/.config/environment.d/60-cao-codex-ca.conf")
    }

    fn bundle(&self) -> String {
        self.env
            .data_dir()
            .join("tls/codex-ca-bundle.pem")
            .display()
            .to_string()
    }
}

#[test]
fn enable_exports_the_bundle_to_the_user_manager_and_disable_puts_the_old_value_back() {
    let d = Desk::new();
    // The user had pointed GUI apps at a corporate CA.
    std::fs::write(
        d.env.dir.path().join("manager-env"),
        "HOME=/home/someone\nCODEX_CA_CERTIFICATE=/etc/corp-ca.pem\n",
    )
    .unwrap();
    let (ok, out, err) = d.cao(&["gateway", "enable", "--base-url", &d.url()]);
    assert!(ok, "{out}{err}");
    let want = format!("CODEX_CA_CERTIFICATE={}", d.bundle());
    assert!(d.manager_env().contains(&want), "{}", d.manager_env());
    assert!(
        d.calls()
            .contains(&format!("--user set-environment {want}")),
        "{:?}",
        d.calls()
    );
    let drop_in = std::fs::read_to_string(d.drop_in()).unwrap();
    assert!(drop_in.starts_with("# cao-app-env"), "{drop_in}");
    assert!(drop_in.contains(&format!("\n{want}\n")), "{drop_in}");
    assert!(
        out.contains("GUI apps: CODEX_CA_CERTIFICATE set in the running systemd user manager"),
        "{out}"
    );
    assert!(out.contains("(every later login)"), "{out}");
    assert!(
        out.contains("Quit and reopen the Codex desktop app"),
        "{out}"
    );
    assert!(!err.contains("cao did not set it for GUI apps"), "{err}");
    // Enabling again keeps the corporate value as the one to put back.
    assert!(d.cao(&["gateway", "enable", "--base-url", &d.url()]).0);

    let (ok, out, err) = d.cao(&["gateway", "disable"]);
    assert!(ok, "{out}{err}");
    let env_now = d.manager_env();
    assert!(
        env_now.contains("CODEX_CA_CERTIFICATE=/etc/corp-ca.pem") && !env_now.contains(&want),
        "{env_now}"
    );
    assert!(!d.drop_in().exists());
    assert!(!d.env.data_dir().join("app-env.json").exists());
    assert!(
        out.contains("GUI apps: CODEX_CA_CERTIFICATE for GUI apps is /etc/corp-ca.pem again"),
        "{out}"
    );
}

#[test]
fn no_app_env_exports_nothing_and_puts_back_an_earlier_export() {
    let d = Desk::new();
    let (ok, out, err) = d.cao(&["gateway", "enable", "--no-app-env", "--base-url", &d.url()]);
    assert!(ok, "{out}{err}");
    assert!(
        !d.calls().iter().any(|c| c.contains("set-environment")),
        "{:?}",
        d.calls()
    );
    assert!(!d.drop_in().exists());
    assert!(
        err.contains("cao did not set it for GUI apps (--no-app-env"),
        "{err}"
    );

    // Exported once, then turned off: the variable is unset again (it was not set before).
    assert!(d.cao(&["gateway", "enable", "--base-url", &d.url()]).0);
    assert!(d.manager_env().contains("CODEX_CA_CERTIFICATE="));
    let (ok, out, err) = d.cao(&["gateway", "enable", "--no-app-env", "--base-url", &d.url()]);
    assert!(ok, "{out}{err}");
    assert!(
        !d.manager_env().contains("CODEX_CA_CERTIFICATE="),
        "{}",
        d.manager_env()
    );
    assert!(
        d.calls()
            .last()
            .unwrap()
            .contains("--user unset-environment CODEX_CA_CERTIFICATE")
    );
    assert!(!d.drop_in().exists());
    // Nothing left to put back.
    let (ok, out, _) = d.cao(&["gateway", "disable"]);
    assert!(ok && !out.contains("GUI apps:"), "{out}");
}

#[test]
fn a_value_changed_since_enable_and_a_foreign_drop_in_are_left_alone() {
    let d = Desk::new();
    std::fs::create_dir_all(d.drop_in().parent().unwrap()).unwrap();
    std::fs::write(d.drop_in(), "CODEX_CA_CERTIFICATE=/mine.pem\n").unwrap();
    let (ok, out, err) = d.cao(&["gateway", "enable", "--base-url", &d.url()]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("is not cao's; left it alone"), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.drop_in()).unwrap(),
        "CODEX_CA_CERTIFICATE=/mine.pem\n"
    );
    // The user sets the manager's value by hand afterwards: disable leaves it.
    std::fs::write(
        d.env.dir.path().join("manager-env"),
        "CODEX_CA_CERTIFICATE=/by-hand.pem\n",
    )
    .unwrap();
    let (ok, out, err) = d.cao(&["gateway", "disable"]);
    assert!(ok, "{out}{err}");
    assert!(
        err.contains("was changed since `cao gateway enable`; left as it is"),
        "{err}"
    );
    assert!(d.manager_env().contains("/by-hand.pem"));
    assert!(d.drop_in().exists());
}

/// No user manager to talk to (a container, an ssh session): `systemctl --user` fails. The
/// drop-in still serves the next login; enable says what it could not do and succeeds.
#[test]
fn an_unreachable_user_manager_is_a_warning() {
    let d = Desk::new();
    exe(
        &d.bin.join("systemctl"),
        "#!/bin/sh\necho 'Failed to connect to bus: No medium found' >&2\nexit 1\n",
    );
    let (ok, out, err) = d.cao(&["gateway", "enable", "--base-url", &d.url()]);
    assert!(ok, "{out}{err}");
    assert!(err.contains("Failed to connect to bus"), "{err}");
    assert!(d.drop_in().exists());
    let (ok, out, err) = d.cao(&["gateway", "disable"]);
    assert!(ok, "{out}{err}");
    assert!(!d.drop_in().exists());
}
