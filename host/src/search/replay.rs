//! Resume's replay: a recorded run's finished trials taken back in, and the
//! strategy's state rebuilt by replaying every recorded ask and tell
//! against a fresh instance, which must propose exactly what it did before.

use super::Search;
use crate::assignment;
use crate::ir::{Proposal, TrialResult};
use crate::store::{Asked, EventKind};
use anyhow::{bail, Context, Result};
use std::collections::HashSet;
use std::time::Instant;

impl Search<'_> {
    /// Rebuilds the state of a recorded run: its finished trials, and the
    /// strategy's state by replaying every recorded ask and tell against the
    /// fresh instance, which must propose exactly what it proposed before.
    pub(super) fn replay(&mut self) -> Result<()> {
        for record in self.store.trials()? {
            self.count(record);
        }
        let mut told = HashSet::new();
        let mut asked = Vec::new();
        let events = self.store.events(&[EventKind::Asked, EventKind::Told])?;
        let mut asks = 0;
        for event in events {
            if event.kind == EventKind::Told {
                let results: Vec<TrialResult> =
                    serde_json::from_str(&event.data).with_context(|| {
                        format!("the run database's event {} is damaged", event.seq)
                    })?;
                self.strategy
                    .tell(&results)
                    .context("replaying the run: telling the strategy a recorded result")?;
                told.extend(results.iter().map(|r| r.trial_id));
                continue;
            }
            asks += 1;
            let recorded: Asked = serde_json::from_str(&event.data)
                .with_context(|| format!("the run database's event {} is damaged", event.seq))?;
            let again = self
                .strategy
                .ask(recorded.max)
                .context("replaying the run: asking the strategy")?;
            if again != recorded.proposals {
                let show = |p: &[Proposal]| {
                    p.iter()
                        .map(|p| format!("[{}]", assignment::text(&p.assignment)))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                bail!(
                    "strategy plugin `{}` is not deterministic, so the run cannot be resumed: replaying its recorded calls, ask #{asks} now proposes {} but the run recorded {}. A strategy's proposals must depend only on its seed, its config and the results it was told; fix the plugin and resume again (the store is unchanged), or start a new run",
                    self.strategy.name(),
                    show(&again),
                    show(&recorded.proposals)
                );
            }
            asked.extend(recorded.trials.into_iter().zip(recorded.proposals));
        }
        self.next_id = asked
            .iter()
            .map(|(id, _)| id + 1)
            .chain(self.trials.iter().map(|t| t.id + 1))
            .max()
            .unwrap_or(1);
        self.pending = asked
            .into_iter()
            .filter(|(id, _)| !told.contains(id))
            .collect();
        for event in self
            .store
            .events(&[EventKind::Submitted, EventKind::Retried])?
        {
            let job = serde_json::from_str::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|d| d["job"].as_str().map(str::to_string));
            if let (Some(trial), Some(job)) = (event.trial, job) {
                self.submitted.insert(trial, job);
            }
        }
        self.clock_before = self.store.last_elapsed()?;
        self.started = Instant::now();
        Ok(())
    }
}
