//! The `local` executor: trials run one at a time in the search process,
//! through the run's evaluator (the same trial function a worker runs), with
//! each epoch reported as it finishes.

use super::Update;
use crate::evaluator::Evaluator;
use crate::interrupt::Cancel;
use crate::train::Progress;
use crate::trial::TrialSpec;
use anyhow::Result;
use std::collections::VecDeque;
use std::rc::Rc;

/// Trials waiting to run in this process.
pub struct LocalRunner {
    evaluator: Rc<dyn Evaluator>,
    cancel: Cancel,
    queue: VecDeque<TrialSpec>,
}

impl LocalRunner {
    /// Runs trials on `evaluator`; training stops early once `cancel` is cancelled.
    pub fn new(evaluator: Rc<dyn Evaluator>, cancel: Cancel) -> Self {
        LocalRunner {
            evaluator,
            cancel,
            queue: VecDeque::new(),
        }
    }

    /// Queues `spec`.
    pub(super) fn submit(&mut self, spec: TrialSpec) {
        self.queue.push_back(spec);
    }

    /// Runs the next queued trial to its end.
    pub(super) fn poll(
        &mut self,
        on_progress: &mut dyn FnMut(u64, Progress),
    ) -> Result<Vec<Update>> {
        let Some(spec) = self.queue.pop_front() else {
            return Ok(Vec::new());
        };
        let outcome = self
            .evaluator
            .evaluate(&spec, &self.cancel, &mut |p| on_progress(spec.trial_id, p))?;
        Ok(vec![Update::Finished(outcome)])
    }

    /// Drops the queued trials.
    pub(super) fn stop(&mut self) {
        self.queue.clear();
    }
}
