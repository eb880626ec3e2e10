//! A trial's checkpoint after its last finished epoch: weights, batch-norm
//! statistics, optimiser moments, the batch order and the random stream's
//! position, so that training continues exactly where it stopped (the same
//! numbers as a run that never stopped). Written atomically: the tensors go
//! to a new file first, then the small JSON file that names it replaces the
//! previous one, so a kill at any moment leaves the old or the new checkpoint.

use crate::ir::EpochRecord;
use anyhow::{Context, Result};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

/// File name of the checkpoint's facts in a trial folder.
pub const FILE: &str = "checkpoint.json";

/// What a checkpoint records besides its tensors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Epochs finished.
    pub epoch: u32,
    /// The trial's seed: a checkpoint of another seed is never continued.
    pub seed: u64,
    /// Optimiser steps taken.
    pub optimizer_step: i32,
    /// Position of the trial's random stream (a u128, as text).
    pub rng_word_pos: String,
    /// Training seconds before this checkpoint.
    pub seconds: f64,
    /// The finished epochs' records.
    pub curve: Vec<EpochRecord>,
    /// The safetensors file, in the same folder, with the tensors.
    pub tensors: String,
}

/// Writes `path` through `write` (given a temporary path) so that a crash
/// leaves either the old file or the new one.
fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("tmp");
    write(&tmp)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .with_context(|| format!("sync {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("rename {} to {}", tmp.display(), path.display()))?;
    if let Some(dir) = path.parent() {
        // The rename itself must reach the disk before the next step relies on it.
        std::fs::File::open(dir)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("sync folder {}", dir.display()))?;
    }
    Ok(())
}

/// Saves `facts` and `tensors` as the checkpoint in `dir`, replacing the previous one.
pub fn save(dir: &Path, facts: &Checkpoint, tensors: &HashMap<String, Tensor>) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    let previous = read_facts(dir).ok().flatten();
    write_atomic(&dir.join(&facts.tensors), |tmp| {
        candle_core::safetensors::save(tensors, tmp)
            .with_context(|| format!("write checkpoint tensors {}", tmp.display()))
    })?;
    write_atomic(&dir.join(FILE), |tmp| {
        let mut f =
            std::fs::File::create(tmp).with_context(|| format!("create {}", tmp.display()))?;
        f.write_all(serde_json::to_string_pretty(facts)?.as_bytes())
            .with_context(|| format!("write {}", tmp.display()))
    })?;
    if let Some(old) = previous.filter(|p| p.tensors != facts.tensors) {
        // Best effort: a leftover file costs disk space, not correctness.
        let _ = std::fs::remove_file(dir.join(old.tensors));
    }
    Ok(())
}

fn read_facts(dir: &Path) -> Result<Option<Checkpoint>> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    let facts = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a checkpoint of nas-host", path.display()))?;
    Ok(Some(facts))
}

/// The checkpoint in `dir`, if there is one, with its tensors on `device`.
pub fn load(dir: &Path, device: &Device) -> Result<Option<(Checkpoint, HashMap<String, Tensor>)>> {
    let Some(facts) = read_facts(dir)? else {
        return Ok(None);
    };
    let path = dir.join(&facts.tensors);
    let tensors = candle_core::safetensors::load(&path, device)
        .with_context(|| format!("read checkpoint tensors {}", path.display()))?;
    Ok(Some((facts, tensors)))
}

/// Whether `dir` holds a checkpoint (damaged or not).
pub fn exists(dir: &Path) -> bool {
    dir.join(FILE).exists()
}

/// File name a checkpoint that could not be continued is kept under, for
/// inspection; its tensors file stays beside it.
pub const SET_ASIDE: &str = "damaged-checkpoint.json";

/// Renames the checkpoint in `dir`, if any, to [`SET_ASIDE`], so that the
/// trial trains from scratch.
pub fn set_aside(dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(());
    }
    let aside = dir.join(SET_ASIDE);
    std::fs::rename(&path, &aside)
        .with_context(|| format!("rename {} to {}", path.display(), aside.display()))
}

/// Removes the checkpoint in `dir` (after the trial finished).
pub fn remove(dir: &Path) -> Result<()> {
    if let Some(facts) = read_facts(dir)? {
        for file in [FILE, facts.tensors.as_str()] {
            let path = dir.join(file);
            std::fs::remove_file(&path).with_context(|| format!("remove {}", path.display()))?;
        }
    }
    Ok(())
}
