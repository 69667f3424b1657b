//! One login in two places is two custodians of one refresh token: whichever refreshes second
//! presents a spent token and the token endpoint revokes the login for both. So each login is
//! fingerprinted (a SHA-256 prefix of its refresh token, and the user/account id pair) across
//! every account and Codex's own `$CODEX_HOME/auth.json` (default `~/.codex/auth.json`).
//!
//! Two files are the same login when they hold the same refresh token. Two separate logins of
//! one ChatGPT account (two `codex login`s) have different refresh tokens and are independent:
//! that is the safe way to use one account both in cao and in your own Codex. The id pair is
//! only used when a file has no refresh token. A symlink to another file is the same place for
//! `add` and `import` (cao writes through it), but when that file is also Codex's own auth.json
//! or another account's, two programs still refresh one login: [`shared`] reports it too.

use std::path::{Path, PathBuf};

use super::custody::fingerprint;
use super::{AuthFile, AuthState, Store};

/// One login found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Login {
    pub place: PathBuf,
    refresh_fp: Option<String>,
    identity: Option<(String, String)>,
}

impl Login {
    /// The login `file` holds at `place` (`None` without ChatGPT tokens).
    pub fn of(place: &Path, file: &AuthFile) -> Option<Self> {
        let tokens = file.tokens()?;
        let claims = file.claims();
        Some(Self {
            place: place.to_path_buf(),
            refresh_fp: tokens.refresh_token.as_deref().map(fingerprint),
            identity: claims.user_id.zip(claims.chatgpt_account_id),
        })
    }

    /// Whether both are the same login (see the module docs).
    pub fn same_as(&self, other: &Login) -> bool {
        match (&self.refresh_fp, &other.refresh_fp) {
            (Some(a), Some(b)) => a == b,
            (None, None) => self.identity.is_some() && self.identity == other.identity,
            _ => false,
        }
    }

    fn same_place(&self, other: &Path) -> bool {
        let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        canon(&self.place) == canon(other)
    }
}

/// Codex's own auth.json: `$CODEX_HOME/auth.json`, else `~/.codex/auth.json`.
pub fn codex_home_auth() -> Option<PathBuf> {
    match std::env::var_os("CODEX_HOME").filter(|v| !v.is_empty()) {
        Some(h) => Some(PathBuf::from(h).join(super::AUTH_FILE)),
        None => super::home_dir("")
            .ok()
            .map(|h| h.join(".codex").join(super::AUTH_FILE)),
    }
}

/// Codex's own login (`$CODEX_HOME/auth.json`, else `~/.codex/auth.json`), if it holds one.
pub fn codex_home_login() -> Option<Login> {
    codex_home_auth().and_then(|p| read_login(&p))
}

fn read_login(path: &Path) -> Option<Login> {
    let text = std::fs::read_to_string(path).ok()?;
    Login::of(path, &AuthFile::parse(&text).ok()?)
}

impl Store {
    /// Every login held: each registered account's auth.json, then Codex's own.
    pub fn logins(&self) -> Vec<Login> {
        let mut out = Vec::new();
        if let Ok(reg) = self.load_registry() {
            for name in &reg.accounts {
                if let Ok(AuthState::Present(f)) = self.load_auth(name)
                    && let Some(l) = Login::of(&self.auth_path(name), &f)
                {
                    out.push(l);
                }
            }
        }
        out.extend(codex_home_login());
        out
    }
}

/// Where else `candidate` is held, among `logins` (ignoring `candidate`'s own place).
pub fn held_elsewhere<'a>(logins: &'a [Login], candidate: &Login) -> Option<&'a Login> {
    logins
        .iter()
        .find(|l| !l.same_place(&candidate.place) && l.same_as(candidate))
}

/// Two places holding one login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shared {
    pub a: Login,
    pub b: Login,
    /// Both paths lead to one file (a symlink), rather than two copies.
    pub linked: bool,
}

/// Every pair of places holding one login: copies of one refresh token, and paths that lead to
/// one file (a symlinked auth.json, or `~/.codex` linked to an account dir). A path listed twice
/// (`CODEX_HOME` set to an account dir) is one place, not a pair.
pub fn shared(logins: &[Login]) -> Vec<Shared> {
    let canon: Vec<PathBuf> = logins
        .iter()
        .map(|l| std::fs::canonicalize(&l.place).unwrap_or_else(|_| l.place.clone()))
        .collect();
    let mut out = Vec::new();
    for (i, a) in logins.iter().enumerate() {
        for (j, b) in logins.iter().enumerate().skip(i + 1) {
            if a.place == b.place {
                continue;
            }
            let linked = canon[i] == canon[j];
            if linked || a.same_as(b) {
                out.push(Shared {
                    a: a.clone(),
                    b: b.clone(),
                    linked,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::auth_file::TokenSet;

    fn login(place: &str, rt: Option<&str>) -> Login {
        let t = TokenSet {
            access_token: "a".into(),
            refresh_token: rt.map(str::to_string),
            ..TokenSet::default()
        };
        Login::of(
            Path::new(place),
            &AuthFile::new_chatgpt(&t, "2026-12-01T00:00:00Z"),
        )
        .unwrap_or_else(|| panic!("a login"))
    }

    #[test]
    fn the_same_refresh_token_in_two_files_is_one_login() {
        let all = vec![
            login("/x/a/auth.json", Some("rt-1")),
            login("/x/b/auth.json", Some("rt-2")),
        ];
        let copy = login("/home/.codex/auth.json", Some("rt-1"));
        assert_eq!(
            held_elsewhere(&all, &copy).map(|l| l.place.clone()),
            Some(PathBuf::from("/x/a/auth.json"))
        );
        assert!(held_elsewhere(&all, &login("/y/auth.json", Some("rt-3"))).is_none());
        let mut with_copy = all.clone();
        with_copy.push(copy);
        let pairs = shared(&with_copy);
        assert_eq!(pairs.len(), 1);
        assert!(!pairs[0].linked);
        assert!(shared(&all).is_empty());
        // One path listed twice (CODEX_HOME set to an account dir) is one place.
        let twice = vec![all[0].clone(), all[0].clone()];
        assert!(shared(&twice).is_empty());
    }

    #[test]
    fn a_symlink_to_another_login_file_is_one_login_in_two_places() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let target = dir.path().join("codex-auth.json");
        let link = dir.path().join("link-auth.json");
        std::fs::write(&target, "{}").unwrap_or_else(|e| panic!("{e}"));
        std::os::unix::fs::symlink(&target, &link).unwrap_or_else(|e| panic!("{e}"));
        let (a, b) = (
            login(&link.to_string_lossy(), Some("rt-1")),
            login(&target.to_string_lossy(), Some("rt-1")),
        );
        // add/import: the same place (cao writes through the link).
        assert!(held_elsewhere(std::slice::from_ref(&b), &a).is_none());
        // doctor and the gateway: two programs refresh this one login.
        let pairs = shared(&[a, b]);
        assert_eq!(pairs.len(), 1);
        assert!(pairs[0].linked);
    }
}
