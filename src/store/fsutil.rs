//! The two primitives every state write goes through: a cross-process lock and an atomic write.
//!
//! Every file cao owns is written by [`write_atomic`] (temp file in the same directory, fsync,
//! rename, fsync of the directory), so a crash leaves either the old or the new content, never a
//! torn file. Read-modify-write cycles hold a [`FileLock`] so two cao processes never lose each
//! other's updates.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::StoreError;

/// Mode for files that hold tokens or account state.
pub(crate) const SECRET_FILE_MODE: u32 = 0o600;
/// Mode for the data dir and account dirs.
pub(crate) const PRIVATE_DIR_MODE: u32 = 0o700;

/// An exclusive advisory lock on a lock file, released on drop.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
}

impl FileLock {
    /// Block until the exclusive lock on `path` is held. The lock file is created (0600) if
    /// missing and never removed, so every process locks the same inode.
    pub fn acquire(path: &Path) -> Result<Self, StoreError> {
        let file = open_lock_file(path)?;
        file.lock()
            .map_err(|source| StoreError::io("lock", path, source))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
        })
    }

    /// Take the lock only if it is free right now (`Ok(None)` when another holder has it,
    /// including another handle in this process).
    pub fn try_acquire(path: &Path) -> Result<Option<Self>, StoreError> {
        let file = open_lock_file(path)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Self {
                file,
                path: path.to_path_buf(),
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(StoreError::io("lock", path, source)),
        }
    }

    /// The lock file this lock holds.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

fn open_lock_file(path: &Path) -> Result<File, StoreError> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(SECRET_FILE_MODE);
    }
    options
        .open(path)
        .map_err(|source| StoreError::io("open lock file", path, source))
}

/// Write `bytes` to `path` atomically with the given unix mode: temp file in the same directory,
/// fsync, rename over the target, fsync the directory. A symlink at `path` is written through:
/// the temp file goes next to the link's target and replaces the target, so the link (and
/// whoever else reads the target, e.g. `~/.codex/auth.json`) sees the new content.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), StoreError> {
    let target = link_target(path);
    let path = target.as_path();
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".cao-tmp-")
        .tempfile_in(dir)
        .map_err(|source| StoreError::io("create temp file in", dir, source))?;
    set_mode(tmp.path(), mode)?;
    tmp.write_all(bytes)
        .map_err(|source| StoreError::io("write", tmp.path(), source))?;
    tmp.as_file()
        .sync_all()
        .map_err(|source| StoreError::io("fsync", tmp.path(), source))?;
    tmp.persist(path)
        .map_err(|e| StoreError::io("rename temp file onto", path, e.error))?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Where a write to `path` must land: `path` itself, or the final target when it is a symlink
/// (followed through chains; a dangling link resolves to where it points).
pub(crate) fn link_target(path: &Path) -> PathBuf {
    let mut cur = path.to_path_buf();
    for _ in 0..16 {
        let is_link = std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink());
        if !is_link {
            return cur;
        }
        let Ok(next) = std::fs::read_link(&cur) else {
            return cur;
        };
        cur = match cur.parent() {
            Some(parent) if next.is_relative() => parent.join(next),
            _ => next,
        };
    }
    cur
}

/// fsync the directory holding `file` (best effort: makes a rename or a new file durable).
pub(crate) fn sync_dir(file: &Path) {
    if let Some(dir) = file.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(d) = File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// Set the unix permission bits of `path` (no-op elsewhere).
pub(crate) fn set_mode(path: &Path, mode: u32) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|source| StoreError::io("set permissions on", path, source))?;
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
    Ok(())
}

/// The permission bits of `path`, if it exists (always `None` off unix).
pub fn mode_of(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .ok()
            .map(|m| m.permissions().mode() & 0o777)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

/// Create `dir` (and any missing parents) private (0700). A directory that already exists is
/// left exactly as it is: cao changes the mode only of directories it created (a `--data-dir`
/// pointing at an existing shared directory must not have its permissions changed).
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(PRIVATE_DIR_MODE);
    }
    builder
        .create(dir)
        .map_err(|source| StoreError::io("create directory", dir, source))?;
    // The umask may have taken bits away (never added them); make the new one exactly 0700.
    if mode_of(dir).is_some_and(|m| m != PRIVATE_DIR_MODE) {
        set_mode(dir, PRIVATE_DIR_MODE)?;
    }
    Ok(())
}

/// Read a file to a string; `Ok(None)` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, StoreError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::io("read", path, source)),
    }
}

/// Copy an unparsable file aside to `<file>.corrupt-<ms>` before anything replaces it.
/// Returns the backup path.
pub(crate) fn back_up_corrupt(path: &Path, raw: &str, now_ms: i64) -> Result<PathBuf, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".corrupt-{now_ms}"));
    let backup = PathBuf::from(name);
    write_atomic(&backup, raw.as_bytes(), SECRET_FILE_MODE)?;
    Ok(backup)
}
