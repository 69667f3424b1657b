//! The PEM file Codex is started with as `CODEX_CA_CERTIFICATE`: cao's CA, then the CA
//! certificates the user had already given Codex, so a corporate proxy's CA keeps working.
//!
//! Codex reads one file: `CODEX_CA_CERTIFICATE`, else `SSL_CERT_FILE` (codex-rs
//! `codex-client/src/custom_ca.rs`; an empty value counts as unset) and adds every certificate
//! in it to its roots. Pointing `CODEX_CA_CERTIFICATE` at this bundle would hide the user's own
//! file, so the bundle carries a copy of it, taken by the same precedence. When the variable
//! already names this bundle (the shim, `launchctl setenv` or `environment.d` set it), the copy
//! is refreshed from the file recorded in the bundle itself.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use crate::codex::CODEX_CA_ENV;
use crate::policy::health::gateway::BundleState;
use crate::store::{StoreError, fsutil};

/// The variable Codex reads when `CODEX_CA_CERTIFICATE` is unset.
pub(crate) const SSL_CERT_FILE_ENV: &str = "SSL_CERT_FILE";

/// Marks where the user's own certificates start; followed by `VAR=path`.
const USER_MARK: &str = "# cao: your own CA certificates, copied from ";

/// Something the caller should tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleNote {
    /// The user's own CA file was copied in.
    Included { var: String, path: PathBuf },
    /// The user's own CA file could not be read or holds no certificate; left out (or the
    /// previous copy kept).
    Skipped {
        var: String,
        path: PathBuf,
        reason: String,
    },
}

/// The user's CA source and the text to include.
struct UserPart {
    var: String,
    path: PathBuf,
    text: Option<String>,
}

/// Write the bundle at `bundle` (0644 in the 0700 tls dir) with `ca_pem` first, reading the
/// user's own CA through `env`. Rewritten only when its content changes.
pub(crate) fn write(
    bundle: &Path,
    ca_pem: &str,
    ca_fingerprint: &str,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Result<Vec<BundleNote>, StoreError> {
    let existing = fsutil::read_optional(bundle)?;
    let (text, notes) = render(bundle, ca_pem, ca_fingerprint, existing.as_deref(), env);
    if existing.as_deref() != Some(text.as_str()) {
        fsutil::write_atomic(bundle, text.as_bytes(), 0o644)?;
    }
    Ok(notes)
}

/// The bundle's text and what to say about it (pure but for reading the user's CA file).
fn render(
    bundle: &Path,
    ca_pem: &str,
    ca_fingerprint: &str,
    existing: Option<&str>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> (String, Vec<BundleNote>) {
    let mut text = format!(
        "# CA bundle for Codex (CODEX_CA_CERTIFICATE), written by cao; it is rewritten when cao's CA changes.\n\
         # First cao's local gateway CA (SHA-256 {ca_fingerprint}), valid only for 127.0.0.1, ::1 and localhost.\n"
    );
    text.push_str(ca_pem.trim_end());
    text.push('\n');
    let mut notes = Vec::new();
    if let Some(user) = user_part(bundle, existing, env) {
        if let Some(body) = &user.text {
            notes.push(BundleNote::Included {
                var: user.var.clone(),
                path: user.path.clone(),
            });
            text.push_str(&format!(
                "{USER_MARK}{}={}\n",
                user.var,
                user.path.display()
            ));
            text.push_str(body.trim_end());
            text.push('\n');
        }
        if let Some(note) = skipped_note(&user) {
            notes.push(note);
        }
    }
    (text, notes)
}

fn skipped_note(user: &UserPart) -> Option<BundleNote> {
    let reason = match read_certificates(&user.path) {
        Ok(_) => return None,
        Err(reason) => reason,
    };
    Some(BundleNote::Skipped {
        var: user.var.clone(),
        path: user.path.clone(),
        reason: if user.text.is_some() {
            format!("{reason}; kept the copy taken earlier")
        } else {
            reason
        },
    })
}

/// Which file the user had given Codex, by Codex's own precedence, and its certificates.
fn user_part(
    bundle: &Path,
    existing: Option<&str>,
    env: &dyn Fn(&str) -> Option<OsString>,
) -> Option<UserPart> {
    let set = |var: &str| env(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    let is_bundle = |p: &Path| {
        p == bundle
            || std::fs::canonicalize(p).ok().is_some()
                && std::fs::canonicalize(p).ok() == std::fs::canonicalize(bundle).ok()
    };
    let recorded = || recorded_part(existing);
    let fresh = |var: &str, path: PathBuf| UserPart {
        var: var.to_string(),
        text: read_certificates(&path).ok(),
        path,
    };
    match set(CODEX_CA_ENV) {
        Some(p) if !is_bundle(&p) => return Some(fresh(CODEX_CA_ENV, p)),
        Some(_) => return recorded(),
        None => {}
    }
    match set(SSL_CERT_FILE_ENV) {
        Some(p) if !is_bundle(&p) => Some(fresh(SSL_CERT_FILE_ENV, p)),
        _ => recorded(),
    }
}

/// The source recorded in an earlier bundle, re-read from its file when it still reads, else
/// the copy kept in the bundle.
fn recorded_part(existing: Option<&str>) -> Option<UserPart> {
    let existing = existing?;
    let start = existing.find(USER_MARK)?;
    let rest = &existing[start + USER_MARK.len()..];
    let (line, copy) = rest.split_once('\n').unwrap_or((rest, ""));
    let (var, path) = line.split_once('=')?;
    let path = PathBuf::from(path);
    let text = read_certificates(&path)
        .ok()
        .or_else(|| (!copy.trim().is_empty()).then(|| copy.to_string()));
    Some(UserPart {
        var: var.to_string(),
        path,
        text,
    })
}

/// The file's text when it holds at least one PEM certificate (Codex also accepts
/// `TRUSTED CERTIFICATE` blocks and skips CRLs, so the text is copied as it is).
fn read_certificates(path: &Path) -> Result<String, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("could not read it ({e})"))?;
    let text = String::from_utf8(bytes).map_err(|_| "it is not PEM text".to_string())?;
    if text.contains("-----BEGIN CERTIFICATE-----")
        || text.contains("-----BEGIN TRUSTED CERTIFICATE-----")
    {
        Ok(text)
    } else {
        Err("it holds no PEM certificate".to_string())
    }
}

/// Make sure the CA and leaf exist (see [`crate::gateway::tls::certs::ensure`]) and write the bundle from this
/// process's environment. For the commands that start Codex against the gateway.
pub fn prepare(
    root: &Path,
    now_ms: i64,
) -> Result<
    (crate::gateway::tls::certs::TlsInfo, Vec<BundleNote>),
    crate::gateway::tls::certs::TlsError,
> {
    let (material, _) = crate::gateway::tls::certs::ensure(root, now_ms)?;
    let info = material.info;
    let notes = write(
        &info.bundle_path,
        &material.ca_pem,
        &info.ca_fingerprint,
        &process_env,
    )?;
    Ok((info, notes))
}

/// Whether the bundle at `bundle` is there and holds the CA certificate in `ca_cert`, for
/// doctor. Without a CA there is nothing to be stale against (the next gateway start makes one
/// and rewrites the bundle); an unreadable bundle is as good as missing to Codex.
pub(crate) fn state(bundle: &Path, ca_cert: &Path) -> BundleState {
    let Ok(Some(text)) = fsutil::read_optional(bundle) else {
        return BundleState::Missing;
    };
    let ca = fsutil::read_optional(ca_cert).ok().flatten();
    let Some(ca_der) = ca.and_then(|pem| CertificateDer::from_pem_slice(pem.as_bytes()).ok())
    else {
        return BundleState::Current;
    };
    if CertificateDer::pem_slice_iter(text.as_bytes())
        .flatten()
        .any(|c| c == ca_der)
    {
        BundleState::Current
    } else {
        BundleState::Stale
    }
}

/// The process environment, for [`write`].
pub(crate) fn process_env(var: &str) -> Option<OsString> {
    std::env::var_os(var)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CA: &str = "-----BEGIN CERTIFICATE-----\nCAO\n-----END CERTIFICATE-----\n";
    const CORP: &str = "-----BEGIN CERTIFICATE-----\nCORP\n-----END CERTIFICATE-----\n";

    fn env_of(pairs: &[(&str, &Path)]) -> impl Fn(&str) -> Option<OsString> + use<> {
        let pairs: Vec<(String, OsString)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_os_str().to_owned()))
            .collect();
        move |k| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
    }

    #[test]
    fn codex_precedence_picks_the_users_file_and_a_later_run_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        let corp = dir.path().join("corp.pem");
        let other = dir.path().join("other.pem");
        std::fs::write(&corp, CORP).unwrap();
        std::fs::write(&other, CA.replace("CAO", "OTHER")).unwrap();
        let env = env_of(&[(CODEX_CA_ENV, &corp), (SSL_CERT_FILE_ENV, &other)]);
        let notes = write(&bundle, CA, "AA", &env).unwrap();
        assert_eq!(
            notes,
            [BundleNote::Included {
                var: CODEX_CA_ENV.into(),
                path: corp.clone()
            }]
        );
        let text = std::fs::read_to_string(&bundle).unwrap();
        assert!(text.find("CAO").unwrap() < text.find("CORP").unwrap());
        assert!(!text.contains("OTHER"));
        // Started through the shim: CODEX_CA_CERTIFICATE is the bundle itself. The user's file
        // stays in, and SSL_CERT_FILE does not win over the recorded CODEX_CA_CERTIFICATE.
        let env = env_of(&[(CODEX_CA_ENV, &bundle), (SSL_CERT_FILE_ENV, &other)]);
        write(&bundle, CA, "AA", &env).unwrap();
        assert_eq!(std::fs::read_to_string(&bundle).unwrap(), text);
        // The user's file is gone: the copy is kept, with a note.
        std::fs::remove_file(&corp).unwrap();
        let notes = write(&bundle, CA, "AA", &env_of(&[])).unwrap();
        assert!(matches!(&notes[1], BundleNote::Skipped { reason, .. } if reason.contains("kept")));
        assert!(std::fs::read_to_string(&bundle).unwrap().contains("CORP"));
    }

    #[test]
    fn ssl_cert_file_is_used_without_codex_ca_and_junk_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let bundle = dir.path().join("bundle.pem");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate").unwrap();
        let notes = write(&bundle, CA, "AA", &env_of(&[(SSL_CERT_FILE_ENV, &junk)])).unwrap();
        assert!(matches!(&notes[0], BundleNote::Skipped { var, .. } if var == SSL_CERT_FILE_ENV));
        let text = std::fs::read_to_string(&bundle).unwrap();
        assert!(text.contains("CAO") && !text.contains("not a certificate"));
        assert_eq!(fsutil::mode_of(&bundle), Some(0o644));
    }
}
