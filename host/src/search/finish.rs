//! The end of a run: `best/` written for the best completed trial (its
//! architecture, summary, weights and metrics on the held-out split), and
//! the facts about it recorded in the store.

use super::{BestModel, Search};
use crate::network::summary;
use anyhow::{Context, Result};

impl Search<'_> {
    /// Writes `best/` for the best completed trial and reports it on the held-out split.
    pub(super) fn finish(&mut self) -> Result<Option<BestModel>> {
        let Some((objective, id)) = self.best else {
            return Ok(None);
        };
        let mut trial = self
            .trials
            .iter()
            .find(|t| t.id == id)
            .with_context(|| format!("the best trial {id} is not recorded"))?
            .clone();
        let network = match &trial.network {
            Some(network) => network.clone(),
            None => {
                // A table trial: its network is built again and kept for the report.
                let network = self
                    .space
                    .build(&trial.assignment)
                    .with_context(|| format!("building the best trial {id}'s network again"))?;
                self.store.keep_network(&network)?;
                trial.network = Some(network.clone());
                network
            }
        };
        let dir = self.dir.join("best");
        std::fs::create_dir_all(&dir).with_context(|| format!("create {}", dir.display()))?;
        let held_out = self.evaluator.report_best(&trial, &self.dir, &dir)?;
        let summary = summary(&network, &self.evaluator.task())?;
        std::fs::write(
            dir.join("architecture.json"),
            serde_json::to_string_pretty(&network)?,
        )?;
        std::fs::write(dir.join("summary.txt"), &summary)?;
        let mut metrics = trial.metrics.clone();
        metrics.extend(held_out.clone());
        let facts = serde_json::json!({"trial": trial.id, "key": trial.key, "task": self.evaluator.task(), "classes": self.evaluator.classes(), "seed": trial.seed, "epochs": trial.budget, "metrics": metrics});
        std::fs::write(
            dir.join("metrics.json"),
            serde_json::to_string_pretty(&facts)?,
        )?;
        self.store.set_meta("best_trial", &trial.id.to_string())?;
        for (k, v) in &held_out {
            self.store.set_meta(k, &v.to_string())?;
        }
        Ok(Some(BestModel {
            trial,
            objective,
            held_out,
            summary,
            dir,
        }))
    }
}
