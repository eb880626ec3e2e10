//! An on-disk cache of compiled components, keyed by the component's content
//! hash and the engine's compatibility hash (wasmtime version and settings),
//! so a large Python or JavaScript component compiles once, not every run.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use wasmtime::component::Component;
use wasmtime::Engine;

/// A directory of precompiled components.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

impl ComponentCache {
    /// A cache in `dir` (created on first use).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ComponentCache { dir: dir.into() }
    }

    /// The default cache: `$NAS_HOST_CACHE_DIR`, else `$XDG_CACHE_HOME/nas-host/components`,
    /// else `~/.cache/nas-host/components`; `None` when no home is known.
    pub fn default_location() -> Option<Self> {
        if let Some(dir) = std::env::var_os("NAS_HOST_CACHE_DIR") {
            return Some(Self::new(dir));
        }
        let base = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))?;
        Some(Self::new(base.join("nas-host").join("components")))
    }

    fn entry(&self, engine: &Engine, bytes: &[u8]) -> PathBuf {
        let mut engine_hash = std::collections::hash_map::DefaultHasher::new();
        engine
            .precompile_compatibility_hash()
            .hash(&mut engine_hash);
        let content = Sha256::digest(bytes);
        let hex: String = content.iter().map(|b| format!("{b:02x}")).collect();
        self.dir
            .join(format!("{hex}-{:016x}.cwasm", engine_hash.finish()))
    }

    /// The compiled component for `bytes`, from the cache when present and
    /// readable, else compiled and stored. A broken or unwritable cache only
    /// costs a compile, never a failed load.
    pub fn load(&self, engine: &Engine, bytes: &[u8]) -> Result<Component> {
        let path = self.entry(engine, bytes);
        if path.exists() {
            // SAFETY: files in this cache are written only by `store` below, from
            // `Engine::precompile_component` of an engine with the same
            // compatibility hash (part of the file name).
            if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
                return Ok(component);
            }
        }
        let compiled = engine
            .precompile_component(bytes)
            .map_err(anyhow::Error::from)?;
        // SAFETY: `compiled` was produced just above by `precompile_component`
        // of this same engine, which is what `deserialize` requires.
        let component = unsafe { Component::deserialize(engine, &compiled) }
            .map_err(anyhow::Error::from)
            .context("load freshly compiled component")?;
        if let Err(e) = self.store(&path, &compiled) {
            eprintln!(
                "nas-host: warning: could not write the component cache {}: {e:#}",
                path.display()
            );
        }
        Ok(component)
    }

    fn store(&self, path: &Path, compiled: &[u8]) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("create {}", self.dir.display()))?;
        // Unique per process and per call: threads of one process (a
        // comparison's parallel runs) may compile the same component at once.
        static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WRITES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = path.with_extension(format!("tmp{}-{n}", std::process::id()));
        std::fs::write(&tmp, compiled).with_context(|| format!("write {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("rename into {}", path.display()))?;
        Ok(())
    }
}
