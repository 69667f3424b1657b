//! Codex executables on `PATH`: every one in order, the real one past cao's own shims
//! ([`super::shim`]), and whether a directory is on `PATH` at all (the shim's must be).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::shim::file_is_cao_shim;

/// Every `codex` executable on `path_var`, in PATH order.
pub fn codex_on_path(path_var: &OsStr) -> Vec<PathBuf> {
    std::env::split_paths(path_var)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join("codex"))
        .filter(|candidate| is_executable(candidate))
        .collect()
}

/// The real Codex on `path_var`: the first `codex` that is neither `shim` nor any cao shim.
pub fn find_real_codex(path_var: &OsStr, shim: &Path) -> Option<PathBuf> {
    let shim_real = std::fs::canonicalize(shim).ok();
    codex_on_path(path_var).into_iter().find(|candidate| {
        let same = candidate == shim
            || shim_real.is_some() && std::fs::canonicalize(candidate).ok() == shim_real;
        !same && !file_is_cao_shim(candidate)
    })
}

/// True when `dir` is one of the entries of `path_var`.
pub fn dir_on_path(path_var: &OsStr, dir: &Path) -> bool {
    let canonical = std::fs::canonicalize(dir).ok();
    std::env::split_paths(path_var).any(|entry| {
        entry == dir || canonical.is_some() && std::fs::canonicalize(&entry).ok() == canonical
    })
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codex::shim::tests::exe;
    use crate::codex::shim::{script, shim_dir, shim_path};

    fn path_of(dirs: &[&Path]) -> std::ffi::OsString {
        std::env::join_paths(dirs).unwrap()
    }

    #[test]
    fn finding_the_real_codex_skips_the_shim_and_other_cao_shims() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let shim = shim_path(home);
        exe(
            &shim,
            &script(Path::new("/x/codex"), "http://h", None, None),
        );
        let other_shim_dir = dir.path().join("old");
        exe(
            &other_shim_dir.join("codex"),
            &script(Path::new("/x"), "http://h", None, None),
        );
        let not_exe = dir.path().join("plain");
        std::fs::create_dir_all(&not_exe).unwrap();
        std::fs::write(not_exe.join("codex"), "data").unwrap();
        let real_dir = dir.path().join("real");
        exe(&real_dir.join("codex"), "#!/bin/sh\n");
        let path = path_of(&[&shim_dir(home), &other_shim_dir, &not_exe, &real_dir]);
        assert_eq!(find_real_codex(&path, &shim), Some(real_dir.join("codex")));
        // Through a symlinked directory the shim is still recognised.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(shim_dir(home), &link).unwrap();
        let path = path_of(&[&link, &real_dir]);
        assert_eq!(find_real_codex(&path, &shim), Some(real_dir.join("codex")));
        assert_eq!(find_real_codex(&path_of(&[&shim_dir(home)]), &shim), None);
    }

    #[test]
    fn dir_on_path_matches_exact_and_symlinked_entries() {
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&bin, &link).unwrap();
        assert!(dir_on_path(&path_of(&[Path::new("/usr/bin"), &bin]), &bin));
        assert!(dir_on_path(&path_of(&[&link]), &bin));
        assert!(!dir_on_path(&path_of(&[Path::new("/usr/bin")]), &bin));
    }
}
