//! Resume's replay: a recorded run's finished trials taken back in, and the
//! strategy's state rebuilt by replaying every recorded ask and tell
//! against a fresh instance, which must propose exactly what it did before.

use super::run_loop::result_of;
use super::Search;
use crate::assignment;
use crate::ir::{Binding, Proposal, TrialResult};
use crate::store::{Asked, EventKind, Told};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
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
            let damaged = || format!("the run database's event {} is damaged", event.seq);
            if event.kind == EventKind::Told {
                let results = match serde_json::from_str(&event.data).with_context(damaged)? {
                    Recorded::Results(results) => results,
                    Recorded::Trials(Told { trials }) => trials
                        .iter()
                        .map(|id| self.result_again(*id, &asked))
                        .collect::<Result<_>>()
                        .with_context(damaged)?,
                };
                self.strategy
                    .tell(&results)
                    .context("replaying the run: telling the strategy a recorded result")?;
                told.extend(results.iter().map(|r| r.trial_id));
                continue;
            }
            asks += 1;
            let recorded: RecordedAsk = serde_json::from_str(&event.data).with_context(damaged)?;
            let (max, trials) = match &recorded {
                RecordedAsk::Digest(a) => (a.max, &a.trials),
                RecordedAsk::Proposals { max, trials, .. } => (*max, trials),
            };
            let again = self
                .strategy
                .ask(max)
                .context("replaying the run: asking the strategy")?;
            let same = match &recorded {
                RecordedAsk::Digest(a) => Asked::digest(&again)? == a.digest,
                RecordedAsk::Proposals { proposals, .. } => again == *proposals,
            };
            if !same {
                let was = match &recorded {
                    RecordedAsk::Proposals { proposals, .. } => {
                        shown(proposals.iter().map(|p| &p.assignment[..]))
                    }
                    RecordedAsk::Digest(_) => self.stored_proposals(trials),
                };
                bail!(
                    "strategy plugin `{}` is not deterministic, so the run cannot be resumed: replaying its recorded calls, ask #{asks} now proposes {} but the run recorded {was}. A strategy's proposals must depend only on its seed, its config and the results it was told; fix the plugin and resume again (the store is unchanged), or start a new run",
                    self.strategy.name(),
                    shown(again.iter().map(|p| &p.assignment[..])),
                );
            }
            asked.extend(trials.iter().copied().zip(again));
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

    /// What trials `ids` were proposed as, from their stored rows.
    fn stored_proposals(&self, ids: &[u64]) -> String {
        let stored: Vec<_> = ids
            .iter()
            .filter_map(|id| {
                let i = self.trials.binary_search_by_key(id, |t| t.id).ok()?;
                Some(&self.trials[i].assignment[..])
            })
            .collect();
        let missing = ids.len() - stored.len();
        let mut text = shown(stored.into_iter());
        if missing > 0 {
            text += &format!(" and {missing} proposals not yet recorded as trials");
        }
        text
    }

    /// The result trial `id` was told, from its stored row and the proposal
    /// it was asked as (both lists are in order of trial id).
    fn result_again(&self, id: u64, asked: &[(u64, Proposal)]) -> Result<TrialResult> {
        let proposal = asked
            .binary_search_by_key(&id, |(a, _)| *a)
            .map(|i| &asked[i].1)
            .ok()
            .with_context(|| format!("it tells trial {id}, which was never asked for"))?;
        let record = self
            .trials
            .binary_search_by_key(&id, |t| t.id)
            .map(|i| &self.trials[i])
            .ok()
            .with_context(|| format!("it tells trial {id}, which is not recorded"))?;
        Ok(result_of(proposal, record))
    }
}

/// Assignments as `[a=1, b=x], [...]`.
fn shown<'a>(assignments: impl Iterator<Item = &'a [Binding]>) -> String {
    let all: Vec<_> = assignments
        .map(|a| format!("[{}]", assignment::text(a)))
        .collect();
    if all.is_empty() {
        "nothing".into()
    } else {
        all.join(", ")
    }
}

/// An `asked` event's data: trials and digest (format 3 on), or the
/// proposals themselves (earlier formats).
#[derive(Deserialize)]
#[serde(untagged)]
enum RecordedAsk {
    Digest(Asked),
    Proposals {
        max: u32,
        proposals: Vec<Proposal>,
        trials: Vec<u64>,
    },
}

/// A `told` event's data: the trials told (format 3 on), or the results
/// themselves (earlier formats).
#[derive(Deserialize)]
#[serde(untagged)]
enum Recorded {
    Trials(Told),
    Results(Vec<TrialResult>),
}
