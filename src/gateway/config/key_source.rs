//! Where the gateway's access key comes from: the environment, a key file, a generated one, or,
//! visible to every local user in `ps`, the command line; and how long it must be. The
//! middleware that checks it is [`crate::gateway::front::access_key`].

use std::path::Path;

use anyhow::{Context, bail};
use base64::Engine;

use crate::gateway::config::overrides::{ACCESS_KEY_ENV, Overrides};
use crate::policy::perimeter as rules;

/// `--access-key generate`.
pub const GENERATE: &str = "generate";

/// Where the access key came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File,
    Generated,
    /// `--access-key KEY`: readable by every local user through `ps` / `/proc/*/cmdline`.
    CommandLine,
}

/// Where `args`' access key comes from, if any (clap fills `access_key` from the environment
/// too; the two are told apart by comparing with the variable).
pub fn source_of(args: &Overrides) -> Option<KeySource> {
    if args.access_key_file.is_some() {
        return Some(KeySource::File);
    }
    let key = args.access_key.as_deref().filter(|k| !k.is_empty())?;
    if key == GENERATE {
        return Some(KeySource::Generated);
    }
    if std::env::var(ACCESS_KEY_ENV).ok().as_deref() == Some(key) {
        Some(KeySource::Environment)
    } else {
        Some(KeySource::CommandLine)
    }
}

/// The access key for `args`: read from `--access-key-file`, generated for
/// `--access-key generate`, else as given. Checked for length ([`rules::access_key_problem`]).
pub fn resolve(args: &Overrides) -> anyhow::Result<Option<String>> {
    let key = match (&args.access_key_file, args.access_key.as_deref()) {
        (Some(path), _) => Some(read_key_file(path)?),
        (None, Some(GENERATE)) => Some(generate()?),
        (None, Some(k)) if !k.is_empty() => Some(k.to_string()),
        _ => None,
    };
    if let Some(k) = &key
        && let Some(problem) = rules::access_key_problem(k)
    {
        bail!("{problem}");
    }
    Ok(key)
}

/// A fresh random key: 24 bytes from the system's CSPRNG, base64url (32 characters).
pub fn generate() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .ok()
        .context("the system random generator failed")?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

fn read_key_file(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("could not read the access key file {}", path.display()))?;
    let key = text.lines().next().unwrap_or("").trim().to_string();
    if key.is_empty() {
        bail!("the access key file {} is empty", path.display());
    }
    Ok(key)
}

/// Whether a key file is readable by other users (worth a warning).
pub fn key_file_too_open(path: &Path) -> bool {
    crate::store::fsutil::mode_of(path).is_some_and(|m| m & 0o077 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_come_from_a_file_or_are_generated_and_must_be_long() {
        let dir = tempfile::tempdir().unwrap_or_else(|_| std::process::abort());
        let file = dir.path().join("key");
        let _ = std::fs::write(&file, "0123456789abcdef0123\nignored\n");
        let args = |key: Option<&str>, file: Option<&Path>| Overrides {
            access_key: key.map(str::to_string),
            access_key_file: file.map(Path::to_path_buf),
            ..Default::default()
        };
        let from_file = resolve(&args(None, Some(&file))).ok().flatten();
        assert_eq!(from_file.as_deref(), Some("0123456789abcdef0123"));
        assert_eq!(source_of(&args(None, Some(&file))), Some(KeySource::File));
        let generated = resolve(&args(Some(GENERATE), None)).ok().flatten();
        assert_eq!(generated.as_ref().map(String::len), Some(32));
        assert_ne!(
            generated,
            resolve(&args(Some(GENERATE), None)).ok().flatten()
        );
        assert!(resolve(&args(Some("short"), None)).is_err());
        assert_eq!(resolve(&args(None, None)).ok().flatten(), None);
        assert_eq!(
            source_of(&args(Some("some-long-key-0123456789"), None)),
            Some(KeySource::CommandLine)
        );
    }
}
