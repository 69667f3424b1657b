//! The `codex` shim that `cao gateway enable` puts in `~/.local/bin`.
//!
//! It is a tiny POSIX shell script that runs the real Codex with the routing passed as `-c`
//! overrides ([`crate::codex::config_edit::cli_overrides`]), so every Codex started from a shell
//! goes through the gateway whatever its `CODEX_HOME` (including the per-account homes `cao run`
//! uses). With an `https://` gateway it also exports `CODEX_CA_CERTIFICATE` naming cao's CA
//! bundle (written by the gateway, which keeps the user's own CA inside), so Codex trusts
//! the gateway's certificate, and (unless already set) `CODEX_REFRESH_TOKEN_URL_OVERRIDE` naming
//! the gateway's `/oauth/token`, so Codex refreshes through cao's token custody. The script carries [`SHIM_MARKER`]; cao only ever overwrites or removes a file with that
//! marker, never a `codex` someone else put there.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::store::StoreError;
use crate::store::fsutil;

/// Marks a file as a shim cao wrote.
pub(crate) const SHIM_MARKER: &str = "# cao-gateway-shim";

/// `~/.local/bin`, where the shim goes.
pub(crate) fn shim_dir(home: &Path) -> PathBuf {
    home.join(".local").join("bin")
}

/// `~/.local/bin/codex`.
pub(crate) fn shim_path(home: &Path) -> PathBuf {
    shim_dir(home).join("codex")
}

/// How the shim asks cao whether the gateway is the user's own before Codex starts (and sends
/// its login there): `cao --data-dir DIR gateway verify --quiet --url URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verifier {
    pub cao: PathBuf,
    pub data_dir: PathBuf,
}

impl Verifier {
    /// This cao binary, for `store`'s data dir.
    pub fn this_cao(store: &crate::store::Store) -> Option<Self> {
        let cao = std::env::current_exe().ok()?;
        let data_dir = std::path::absolute(store.root()).ok()?;
        Some(Self { cao, data_dir })
    }
}

/// The shim script that runs `real_codex` routed to `base_url`, after `verifier` (when given)
/// confirmed the gateway there is the user's, trusting `ca_bundle` when given.
pub(crate) fn script(
    real_codex: &Path,
    base_url: &str,
    verifier: Option<&Verifier>,
    ca_bundle: Option<&Path>,
) -> String {
    let check = verifier.map_or(String::new(), |v| {
        format!(
            "{} --data-dir {} gateway verify --quiet --url {} || exit 1\n",
            sh_quote(&v.cao.to_string_lossy()),
            sh_quote(&v.data_dir.to_string_lossy()),
            sh_quote(base_url)
        )
    });
    let ca = match ca_bundle {
        Some(bundle) => format!(
            "{var}={}\nexport {var}\n",
            sh_quote(&bundle.to_string_lossy()),
            var = crate::codex::CODEX_CA_ENV
        ),
        None => String::new(),
    };
    // Refreshes go through the gateway's token custody (a login the gateway also holds is then
    // never spent twice; any other is passed on), unless the person set their own token URL.
    let refresh = format!(
        "[ -n \"${var}\" ] || {var}={}\nexport {var}\n",
        sh_quote(&format!("{}/oauth/token", base_url.trim_end_matches('/'))),
        var = super::REFRESH_TOKEN_URL_ENV
    );
    let mut line = format!("exec {}", sh_quote(&real_codex.to_string_lossy()));
    for arg in crate::codex::config_edit::cli_overrides(base_url) {
        line.push(' ');
        line.push_str(&sh_quote(&arg));
    }
    line.push_str(" \"$@\"");
    format!(
        "#!/bin/sh\n{SHIM_MARKER} v1: written by `cao gateway enable`; `cao gateway disable` removes it.\n\
         # Runs the real Codex with its traffic routed through the cao gateway at {base_url}.\n\
         {check}{ca}{refresh}{line}\n"
    )
}

/// True when `head` (the start of a file) is a shim cao wrote.
pub(crate) fn is_cao_shim(head: &[u8]) -> bool {
    head.starts_with(b"#!")
        && head
            .windows(SHIM_MARKER.len())
            .any(|w| w == SHIM_MARKER.as_bytes())
}

/// True when the file at `path` is a shim cao wrote (reads only its first bytes).
pub fn file_is_cao_shim(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let n = file.read(&mut head).unwrap_or(0);
    is_cao_shim(&head[..n])
}

/// What an installed shim routes to, read back from its text (for doctor).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ShimRoute {
    pub path: PathBuf,
    pub base_url: String,
    /// The `CODEX_CA_CERTIFICATE` it exports (an `https://` shim).
    pub ca_bundle: Option<PathBuf>,
}

/// The route of the cao shim in `home`'s `~/.local/bin`, if cao wrote one there.
pub(crate) fn installed(home: &Path) -> Option<ShimRoute> {
    let path = shim_path(home);
    if !file_is_cao_shim(&path) {
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    parse_route(&text).map(|(base_url, ca_bundle)| ShimRoute {
        path,
        base_url,
        ca_bundle,
    })
}

/// The URL and bundle of a shim [`script`] wrote.
fn parse_route(text: &str) -> Option<(String, Option<PathBuf>)> {
    const URL_LINE: &str =
        "# Runs the real Codex with its traffic routed through the cao gateway at ";
    let url = text
        .lines()
        .find_map(|l| l.strip_prefix(URL_LINE))?
        .trim_end_matches('.')
        .to_string();
    let prefix = format!("{}=", crate::codex::CODEX_CA_ENV);
    let bundle = text
        .lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .map(|quoted| PathBuf::from(sh_unquote(quoted)));
    Some((url, bundle))
}

/// The inverse of [`sh_quote`].
fn sh_unquote(s: &str) -> String {
    s.strip_prefix('\'')
        .and_then(|s| s.strip_suffix('\''))
        .unwrap_or(s)
        .replace(r"'\''", "'")
}

/// What [`install`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Installed {
    /// The shim was written (or rewritten).
    Written(PathBuf),
    /// A `codex` that is not cao's is at the shim path; it was left alone.
    Occupied(PathBuf),
}

/// Write the shim into `home`'s `~/.local/bin` (creating the directory), mode 0755.
pub(crate) fn install(
    home: &Path,
    real_codex: &Path,
    base_url: &str,
    verifier: &Option<Verifier>,
    ca_bundle: Option<&Path>,
) -> Result<Installed, StoreError> {
    let path = shim_path(home);
    if path.symlink_metadata().is_ok() && !file_is_cao_shim(&path) {
        return Ok(Installed::Occupied(path));
    }
    let dir = shim_dir(home);
    std::fs::create_dir_all(&dir)
        .map_err(|source| StoreError::io("create directory", &dir, source))?;
    fsutil::write_atomic(
        &path,
        script(real_codex, base_url, verifier.as_ref(), ca_bundle).as_bytes(),
        0o755,
    )?;
    Ok(Installed::Written(path))
}

/// What [`remove`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removed {
    Removed(PathBuf),
    /// Nothing at the shim path.
    Absent(PathBuf),
    /// A `codex` that is not cao's is at the shim path; it was left alone.
    NotOurs(PathBuf),
}

/// Remove the shim from `home`'s `~/.local/bin` if, and only if, cao wrote it.
pub(crate) fn remove(home: &Path) -> Result<Removed, StoreError> {
    let path = shim_path(home);
    if path.symlink_metadata().is_err() {
        return Ok(Removed::Absent(path));
    }
    if !file_is_cao_shim(&path) {
        return Ok(Removed::NotOurs(path));
    }
    std::fs::remove_file(&path).map_err(|source| StoreError::io("remove", &path, source))?;
    Ok(Removed::Removed(path))
}

/// Quote `s` for a POSIX shell: single quotes, with `'` written as `'\''`.
fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An executable file at `path` (directories made) holding `body`.
    pub(crate) fn exe(path: &Path, body: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, body).unwrap();
        fsutil::set_mode(path, 0o755).unwrap();
    }

    #[test]
    fn script_routes_every_argument_through_the_real_codex() {
        let s = script(
            Path::new("/opt/it's/codex"),
            "http://127.0.0.1:4319",
            None,
            None,
        );
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(is_cao_shim(s.as_bytes()));
        assert!(s.contains(r"exec '/opt/it'\''s/codex' '-c' 'model_provider="));
        assert!(s.contains("'openai_base_url=\"http://127.0.0.1:4319\"'"));
        assert!(s.contains("'chatgpt_base_url=\"http://127.0.0.1:4319/backend-api\"'"));
        assert!(s.trim_end().ends_with("\"$@\""));
    }

    #[test]
    fn the_shell_runs_the_script_with_arguments_intact() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real dir").join("codex");
        exe(
            &real,
            "#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done\n",
        );
        let shim = dir.path().join("shim");
        exe(&shim, &script(&real, "http://127.0.0.1:1", None, None));
        let out = std::process::Command::new(&shim)
            .args(["exec", "it's \"quoted\"", "$HOME"])
            .output()
            .unwrap();
        let lines: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        assert_eq!(lines[0], "-c");
        assert_eq!(lines[1], "model_provider=\"openai\"");
        assert_eq!(lines[3], "openai_base_url=\"http://127.0.0.1:1\"");
        assert_eq!(&lines[6..], ["exec", "it's \"quoted\"", "$HOME"]);
    }

    #[test]
    fn the_shim_runs_codex_only_after_cao_verified_the_gateway() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("codex");
        exe(&real, "#!/bin/sh\necho codex ran\n");
        for (verdict, ran) in [("exit 0", true), ("echo refused >&2; exit 1", false)] {
            let cao = dir.path().join("cao dir").join("cao");
            exe(
                &cao,
                &format!("#!/bin/sh\necho \"$@\" > \"$0.args\"\n{verdict}\n"),
            );
            let verifier = Verifier {
                cao: cao.clone(),
                data_dir: dir.path().join("data dir"),
            };
            let shim = dir.path().join("shim");
            exe(
                &shim,
                &script(&real, "http://127.0.0.1:1", Some(&verifier), None),
            );
            let out = std::process::Command::new(&shim).output().unwrap();
            assert_eq!(out.status.success(), ran);
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).contains("codex ran"),
                ran
            );
            let args = std::fs::read_to_string(dir.path().join("cao dir/cao.args")).unwrap();
            assert!(
                args.contains("gateway verify --quiet --url http://127.0.0.1:1"),
                "{args}"
            );
            assert!(args.contains("--data-dir "), "{args}");
        }
    }

    #[test]
    fn an_https_shim_gives_codex_the_ca_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("codex");
        exe(
            &real,
            "#!/bin/sh\nprintf '%s\\n' \"$CODEX_CA_CERTIFICATE\"\n",
        );
        let shim = dir.path().join("shim");
        let bundle = dir.path().join("it's bundle.pem");
        exe(
            &shim,
            &script(&real, "https://127.0.0.1:1", None, Some(&bundle)),
        );
        let out = std::process::Command::new(&shim)
            .env("CODEX_CA_CERTIFICATE", "/elsewhere.pem")
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim_end(),
            bundle.display().to_string()
        );
    }

    #[test]
    fn an_installed_shim_tells_its_url_and_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        assert_eq!(installed(home), None);
        let bundle = dir.path().join("it's").join("bundle.pem");
        install(
            home,
            Path::new("/x/codex"),
            "https://127.0.0.1:4319",
            &None,
            Some(&bundle),
        )
        .unwrap();
        let route = installed(home).unwrap();
        assert_eq!(route.base_url, "https://127.0.0.1:4319");
        assert_eq!(route.ca_bundle, Some(bundle));
        install(
            home,
            Path::new("/x/codex"),
            "http://127.0.0.1:1",
            &None,
            None,
        )
        .unwrap();
        let route = installed(home).unwrap();
        assert_eq!(route.base_url, "http://127.0.0.1:1");
        assert_eq!(route.ca_bundle, None);
    }

    #[test]
    fn the_shim_sends_codex_s_token_refreshes_to_the_gateway_unless_the_person_chose_a_url() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("codex");
        exe(
            &real,
            "#!/bin/sh\nprintf '%s\\n' \"$CODEX_REFRESH_TOKEN_URL_OVERRIDE\"\n",
        );
        let shim = dir.path().join("shim");
        exe(&shim, &script(&real, "https://127.0.0.1:4319/", None, None));
        let run = |own: Option<&str>| {
            let mut c = std::process::Command::new(&shim);
            c.env_remove("CODEX_REFRESH_TOKEN_URL_OVERRIDE");
            if let Some(u) = own {
                c.env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", u);
            }
            String::from_utf8(c.output().unwrap().stdout).unwrap()
        };
        assert_eq!(run(None).trim_end(), "https://127.0.0.1:4319/oauth/token");
        assert_eq!(
            run(Some("http://127.0.0.1:1/t")).trim_end(),
            "http://127.0.0.1:1/t"
        );
    }

    #[test]
    fn install_and_remove_touch_only_cao_shims() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let real = Path::new("/usr/bin/codex");
        let path = shim_path(home);
        assert_eq!(remove(home).unwrap(), Removed::Absent(path.clone()));
        assert_eq!(
            install(home, real, "http://a", &None, None).unwrap(),
            Installed::Written(path.clone())
        );
        assert_eq!(fsutil::mode_of(&path), Some(0o755));
        // Rewriting our own shim is fine (enable twice, or a new URL).
        assert_eq!(
            install(home, real, "http://b", &None, None).unwrap(),
            Installed::Written(path.clone())
        );
        assert!(std::fs::read_to_string(&path).unwrap().contains("http://b"));
        assert_eq!(remove(home).unwrap(), Removed::Removed(path.clone()));
        assert!(!path.exists());

        exe(&path, "#!/bin/sh\necho user's own codex\n");
        assert_eq!(
            install(home, real, "http://a", &None, None).unwrap(),
            Installed::Occupied(path.clone())
        );
        assert_eq!(remove(home).unwrap(), Removed::NotOurs(path.clone()));
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("user's own")
        );
    }
}
