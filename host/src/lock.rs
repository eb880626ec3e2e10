//! The run directory's exclusive lock: one process at a time writes a run.
//! The operating system releases it when the holder exits in any way
//! (kill -9 included), so a stale lock never blocks `nas-host resume`.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// File name of the lock in a run directory.
pub const LOCK_FILE: &str = "lock";

/// Held while the value lives.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

fn holder_text() -> String {
    let mut host = [0u8; 256];
    // SAFETY: the buffer is writable for its whole length.
    let named = unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0;
    let host = if named {
        let end = host.iter().position(|&b| b == 0).unwrap_or(host.len());
        String::from_utf8_lossy(&host[..end]).into_owned()
    } else {
        "an unknown host".to_string()
    };
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!(
        "process {} on {host} (locked at unix time {since})",
        std::process::id()
    )
}

impl RunLock {
    /// Takes the lock of run directory `dir` (creating the folder), or says
    /// which process holds it.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("create run directory {}", dir.display()))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("open lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                bail!(
                    "run directory {} is in use by {}: two processes must not write one run. Wait for it to finish, or stop it first",
                    dir.display(),
                    if holder.trim().is_empty() { "another process" } else { holder.trim() }
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("lock {}", path.display()))
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        file.write_all(holder_text().as_bytes())
            .with_context(|| format!("write {}", path.display()))?;
        Ok(RunLock { _file: file })
    }

    /// Who holds the lock of `dir` now, if anyone (without taking it).
    pub fn holder(dir: &Path) -> Option<String> {
        let mut file = File::open(dir.join(LOCK_FILE)).ok()?;
        match file.try_lock_shared() {
            Ok(()) => {
                let _ = file.unlock();
                None
            }
            Err(_) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                Some(holder.trim().to_string())
            }
        }
    }
}
