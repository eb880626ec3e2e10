//! What a run shows while it works: progress bars (an overall bar with trials
//! done, best so far, elapsed and estimated remaining time, and a bar for the
//! current trial), nothing (quiet), or one JSON object per event (for scripts).

use crate::store::TrialRecord;
use crate::train::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;
use std::io::{IsTerminal, Write};

/// Something that happened during a run.
pub enum Event<'a> {
    /// The run started.
    RunStarted {
        /// Run name.
        name: &'a str,
        /// What data was loaded.
        data: &'a str,
        /// Trial limit.
        max_trials: u64,
        /// Trials already recorded (when the run is resumed).
        recorded: u64,
    },
    /// A trial is about to train.
    TrialStarted {
        /// Its id.
        id: u64,
        /// The assignment's text.
        assignment: &'a str,
        /// Epochs.
        epochs: u32,
    },
    /// Training progress of the current trial.
    Training(Progress<'a>),
    /// A trial finished (or was reused or refused).
    TrialFinished {
        /// The stored record.
        trial: &'a TrialRecord,
        /// Best objective value so far.
        best: Option<f64>,
        /// The objective's metric name.
        metric: &'a str,
    },
    /// The run ended.
    RunFinished {
        /// Why it stopped.
        reason: &'a str,
    },
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Progress bars on stderr (plain lines when stderr is not a terminal).
    Bars,
    /// Nothing until the final summary.
    Quiet,
    /// One JSON object per line on stdout, and no summary text.
    Json,
}

/// Shows run events in one [`Mode`].
pub struct Reporter {
    mode: Mode,
    bars: Option<(MultiProgress, ProgressBar, ProgressBar)>,
    done: u64,
}

impl Mode {
    /// The mode that `--quiet` and `--json` ask for (bars otherwise).
    pub fn from_flags(quiet: bool, json: bool) -> Mode {
        if json {
            Mode::Json
        } else if quiet {
            Mode::Quiet
        } else {
            Mode::Bars
        }
    }
}

impl Reporter {
    /// A reporter in `mode`.
    pub fn new(mode: Mode) -> Self {
        Reporter {
            mode,
            bars: None,
            done: 0,
        }
    }

    /// Shows one event.
    pub fn event(&mut self, event: Event) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Json => json_line(&event),
            Mode::Bars => self.bar_event(event),
        }
    }

    fn bar_event(&mut self, event: Event) {
        let tty = std::io::stderr().is_terminal();
        match event {
            Event::RunStarted {
                name,
                data,
                max_trials,
                recorded,
            } => {
                if recorded > 0 {
                    eprintln!(
                        "nas-host: resume run `{name}` on {data} ({recorded} trials recorded)"
                    );
                } else {
                    eprintln!("nas-host: run `{name}` on {data}");
                }
                if tty {
                    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
                    let overall = multi.add(ProgressBar::new(max_trials));
                    overall.set_style(
                        ProgressStyle::with_template("trials [{bar:30.cyan/blue}] {pos}/{len}  best {msg}  {elapsed} elapsed, ~{eta} left")
                            .unwrap_or_else(|_| ProgressStyle::default_bar())
                            .progress_chars("=> "),
                    );
                    overall.set_message("-");
                    overall.set_position(recorded);
                    let trial = multi.add(ProgressBar::new(1));
                    trial.set_style(
                        ProgressStyle::with_template(
                            "  {prefix} [{bar:20}] {pos}/{len} batches  {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                    );
                    self.bars = Some((multi, overall, trial));
                }
            }
            Event::TrialStarted {
                id,
                assignment,
                epochs,
            } => {
                if let Some((_, _, trial)) = &self.bars {
                    trial.set_prefix(format!("trial {id} ({epochs} epochs)"));
                    trial.set_message(assignment.to_string());
                    trial.set_position(0);
                }
            }
            Event::Training(Progress::Batch {
                epoch,
                epochs,
                batch,
                batches,
                running_loss,
            }) => {
                if let Some((_, _, trial)) = &self.bars {
                    trial.set_length(batches as u64);
                    trial.set_position(batch as u64);
                    trial.set_message(format!("epoch {epoch}/{epochs}  loss {running_loss:.4}"));
                }
            }
            Event::Training(Progress::Epoch(_)) => {}
            Event::TrialFinished {
                trial,
                best,
                metric,
            } => {
                self.done += 1;
                let line = trial_line(trial, metric);
                match &self.bars {
                    Some((multi, overall, _)) => {
                        overall.set_position(self.done);
                        overall
                            .set_message(best.map_or("-".into(), |b| format!("{metric} {b:.4}")));
                        let _ = multi.println(line);
                    }
                    None => eprintln!("{line}"),
                }
            }
            Event::RunFinished { reason } => {
                if let Some((multi, overall, trial)) = self.bars.take() {
                    trial.finish_and_clear();
                    overall.finish();
                    let _ = multi.clear();
                }
                eprintln!("nas-host: stopped: {reason}");
            }
        }
    }
}

/// One line about a finished trial.
pub fn trial_line(t: &TrialRecord, metric: &str) -> String {
    let status = match (&t.reused_from, &t.reason) {
        (Some(from), _) => format!("reused trial {from}"),
        (None, Some(reason)) => format!("{}: {reason}", crate::store::status_text(t.status)),
        (None, None) => crate::store::status_text(t.status).to_string(),
    };
    let value = t
        .metrics
        .get(metric)
        .map_or("-".into(), |v| format!("{v:.4}"));
    format!(
        "trial {:>3}  {metric} {value}  {:>6.1}s  {}  [{status}]",
        t.id,
        t.seconds,
        crate::assignment::text(&t.assignment)
    )
}

fn json_line(event: &Event) {
    let value = match event {
        Event::RunStarted {
            name,
            data,
            max_trials,
            recorded,
        } => {
            json!({"event": "run_started", "name": name, "data": data, "max_trials": max_trials, "recorded": recorded})
        }
        Event::TrialStarted {
            id,
            assignment,
            epochs,
        } => {
            json!({"event": "trial_started", "trial": id, "assignment": assignment, "epochs": epochs})
        }
        Event::Training(Progress::Epoch(r)) => json!({"event": "epoch", "record": r}),
        Event::Training(Progress::Batch { .. }) => return,
        Event::TrialFinished { trial, best, .. } => {
            json!({"event": "trial_finished", "trial": trial, "best": best})
        }
        Event::RunFinished { reason } => json!({"event": "run_finished", "reason": reason}),
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
}
