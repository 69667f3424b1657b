//! Token sets at rest in the shared store, sealed with ChaCha20-Poly1305 (ring).
//!
//! Every replica holds the same 32-byte state key in a 0600 file (`--state-key-file`). A token
//! set goes into Redis as `base64(nonce || ciphertext || tag)` with its [`Label`] as associated
//! data: the account, the fingerprint of the set's refresh token and its generation, as they are
//! stored beside it. So a sealed set cannot be moved to another account, and an old set cannot
//! be put back under a newer generation or another fingerprint by someone who can write to
//! Redis but has no key (the replica also refuses a generation older than one it has seen:
//! `super::custody`). The key's fingerprint (a SHA-256 prefix, never the key) is stored once in
//! Redis: a replica whose key differs refuses to start instead of writing sets the others cannot
//! open.

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};

/// Bytes in a state key.
pub(crate) const KEY_LEN: usize = 32;

/// Why a key could not be loaded or a sealed value opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error(
        "the state key in {path} is not {KEY_LEN} bytes written as {hex} hex digits; create one with `cao gateway state-key PATH`",
        hex = KEY_LEN * 2
    )]
    BadKey { path: String },
    #[error(
        "the state key file {path} is readable by other users (mode {mode:o}); run `chmod 600 {path}`"
    )]
    KeyTooOpen { path: String, mode: u32 },
    #[error("could not read the state key file {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("could not write the state key file {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no randomness available from the operating system")]
    Random,
    /// The value was not sealed with this key for this label (or was altered).
    #[error(
        "the token set published for account {account:?} (generation {generation}) does not open with this state key: sealed with another key, or altered, or put back from an older generation"
    )]
    Open { account: String, generation: u64 },
}

/// What a sealed token set is bound to: the fields stored beside it in the shared state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label<'a> {
    pub account: &'a str,
    /// Fingerprint of the set's refresh token.
    pub fp: &'a str,
    /// The publication this set is (1 for the first).
    pub generation: u64,
}

impl Label<'_> {
    /// The associated data. Account names and fingerprints hold no newline.
    fn aad(&self) -> Vec<u8> {
        format!(
            "cao-token-set-v2\n{}\n{}\n{}",
            self.account, self.fp, self.generation
        )
        .into_bytes()
    }
}

/// The shared state key. Debug output shows the fingerprint only.
pub struct StateKey {
    key: LessSafeKey,
    fingerprint: String,
}

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateKey")
            .field("fingerprint", &self.fingerprint)
            .finish_non_exhaustive()
    }
}

impl StateKey {
    /// A key from its text form: 64 hex digits, surrounding whitespace ignored.
    pub fn from_text(text: &str, origin: &str) -> Result<Self, SealError> {
        let bad = || SealError::BadKey {
            path: origin.to_string(),
        };
        let hex = text.trim();
        if hex.len() != KEY_LEN * 2 || !hex.is_ascii() {
            return Err(bad());
        }
        let mut raw = [0u8; KEY_LEN];
        for (i, byte) in raw.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Self::from_bytes(&raw).ok_or_else(bad)
    }

    fn from_bytes(raw: &[u8; KEY_LEN]) -> Option<Self> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, raw).ok()?;
        let mut material = b"cao-state-key-v1:".to_vec();
        material.extend_from_slice(raw);
        let digest = ring::digest::digest(&ring::digest::SHA256, &material);
        Some(Self {
            key: LessSafeKey::new(unbound),
            fingerprint: hex(&digest.as_ref()[..8]),
        })
    }

    /// Load the key file, refusing one that other users can read.
    pub fn load(path: &Path) -> Result<Self, SealError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SealError::Read {
            path: shown.clone(),
            source,
        })?;
        if let Some(mode) = crate::store::fsutil::mode_of(path)
            && mode & 0o077 != 0
        {
            return Err(SealError::KeyTooOpen { path: shown, mode });
        }
        Self::from_text(&text, &shown)
    }

    /// Write a new random key to `path` (0600; never over an existing file).
    pub fn generate(path: &Path) -> Result<Self, SealError> {
        let mut raw = [0u8; KEY_LEN];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| SealError::Random)?;
        let shown = path.display().to_string();
        write_new_private(path, format!("{}\n", hex(&raw)).as_bytes()).map_err(|source| {
            SealError::Write {
                path: shown.clone(),
                source,
            }
        })?;
        Self::from_bytes(&raw).ok_or(SealError::BadKey { path: shown })
    }

    /// What replicas compare to know they share one key (not secret).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Seal `plain` under `label`.
    pub fn seal(&self, label: &Label<'_>, plain: &[u8]) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut buf = plain.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(label.aad()),
                &mut buf,
            )
            .map_err(|_| SealError::Random)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&buf);
        Ok(STANDARD.encode(out))
    }

    /// Open what [`seal`](Self::seal) made under the same `label`.
    pub fn open(&self, label: &Label<'_>, sealed: &str) -> Result<Vec<u8>, SealError> {
        let fail = || SealError::Open {
            account: label.account.to_string(),
            generation: label.generation,
        };
        let raw = STANDARD.decode(sealed.trim()).map_err(|_| fail())?;
        if raw.len() < NONCE_LEN {
            return Err(fail());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| fail())?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(label.aad()), &mut body)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn key(text: &str) -> StateKey {
        StateKey::from_text(text, "test").unwrap()
    }

    fn label<'a>(account: &'a str, fp: &'a str, generation: u64) -> Label<'a> {
        Label {
            account,
            fp,
            generation,
        }
    }

    #[test]
    fn a_sealed_set_opens_with_the_same_key_and_label_only() {
        let k = key(K1);
        let l = label("work", "fp1", 3);
        let sealed = k.seal(&l, b"{\"refresh_token\":\"rt-1\"}").unwrap();
        assert!(!sealed.contains("rt-1"));
        assert_eq!(
            k.open(&l, &sealed).unwrap(),
            b"{\"refresh_token\":\"rt-1\"}"
        );
        for other in [
            label("personal", "fp1", 3),
            label("work", "fp2", 3),
            label("work", "fp1", 4),
            label("work", "fp1", 2),
        ] {
            assert!(
                matches!(k.open(&other, &sealed), Err(SealError::Open { .. })),
                "{other:?}"
            );
        }
        assert!(key(K2).open(&l, &sealed).is_err());
    }

    #[test]
    fn an_old_set_put_back_under_a_newer_generation_does_not_open() {
        // Someone who can write to Redis but has no key copies generation 1's value over
        // generation 2's, keeping the stored generation (or the fingerprint) of the new one.
        let k = key(K1);
        let old = k.seal(&label("work", "fp-a", 1), b"old").unwrap();
        assert!(k.open(&label("work", "fp-b", 2), &old).is_err());
        assert!(k.open(&label("work", "fp-a", 2), &old).is_err());
        assert!(k.open(&label("work", "fp-a", 1), &old).is_ok());
    }

    #[test]
    fn two_seals_of_one_set_differ() {
        let k = key(K1);
        let l = label("a", "f", 1);
        assert_ne!(k.seal(&l, b"x").unwrap(), k.seal(&l, b"x").unwrap());
    }

    #[test]
    fn an_altered_or_short_value_does_not_open() {
        let k = key(K1);
        let l = label("a", "f", 1);
        let sealed = k.seal(&l, b"secret").unwrap();
        let mut raw = STANDARD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert!(k.open(&l, &STANDARD.encode(raw)).is_err());
        assert!(k.open(&l, "AAAA").is_err());
        assert!(k.open(&l, "not base64 !").is_err());
    }

    #[test]
    fn fingerprints_tell_keys_apart_and_hide_them() {
        let (a, b) = (key(K1), key(K2));
        assert_eq!(a.fingerprint(), key(&format!("  {K1}\n")).fingerprint());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 16);
        assert!(!K1.contains(a.fingerprint()));
        assert!(!format!("{a:?}").contains("0001020304"));
    }

    #[test]
    fn malformed_key_text_is_refused() {
        for bad in [
            "",
            "abc",
            &K1[..62],
            &format!("{}zz", &K1[..62]),
            "é".repeat(32).as_str(),
        ] {
            assert!(
                matches!(StateKey::from_text(bad, "k"), Err(SealError::BadKey { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn generate_writes_a_private_key_once_and_load_refuses_an_open_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.key");
        let made = StateKey::generate(&path).unwrap();
        assert_eq!(crate::store::fsutil::mode_of(&path), Some(0o600));
        assert_eq!(
            StateKey::load(&path).unwrap().fingerprint(),
            made.fingerprint()
        );
        assert!(matches!(
            StateKey::generate(&path),
            Err(SealError::Write { .. })
        ));
        crate::store::fsutil::set_mode(&path, 0o644).unwrap();
        assert!(matches!(
            StateKey::load(&path),
            Err(SealError::KeyTooOpen { .. })
        ));
    }
}
