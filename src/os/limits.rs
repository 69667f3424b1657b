//! Process limits the gateway adjusts at start.

/// Raise the soft open-file limit to the hard one (each proxied stream holds two sockets).
/// Returns the limit now in force, when the OS has such a limit and tells it.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use nix::sys::resource::{Resource, getrlimit, setrlimit};
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
        if soft < hard {
            match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                Ok(()) => return Some(hard),
                Err(e) => tracing::debug!("could not raise the open-file limit: {e}"),
            }
        }
        Some(soft)
    }
    // Windows has no per-process socket limit of this kind.
    #[cfg(not(unix))]
    None
}

/// The soft and hard open-file limits, where the OS has them.
pub fn fd_limits() -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE).ok()
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_soft_fd_limit_ends_at_the_hard_one() {
        let now = super::raise_fd_limit();
        if let Some((soft, hard)) = super::fd_limits() {
            assert_eq!(soft, hard);
            assert_eq!(now, Some(soft));
        } else {
            assert_eq!(now, None);
        }
    }
}
