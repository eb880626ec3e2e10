//! `[executor] kind = "process"`: `workers` child processes on this machine,
//! each running `nas-host trial --spec` with its own share of the cores
//! (`RAYON_NUM_THREADS`), so N workers do not oversubscribe the machine.

use super::{log_tail, read_result, write_spec, ExecutorConfig, Update};
use crate::trial::TrialSpec;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// File name of a worker's output in its trial folder.
pub const LOG_FILE: &str = "trial.log";

struct Worker {
    child: Child,
    spec: TrialSpec,
    attempt: u32,
}

/// Worker processes, one per running trial.
pub struct ProcessPool {
    command: PathBuf,
    threads: usize,
    max_retries: u32,
    workers: BTreeMap<u64, Worker>,
}

impl ProcessPool {
    /// A pool for `config.workers` workers.
    pub fn new(config: &ExecutorConfig) -> Result<Self> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(ProcessPool {
            command: config.command()?,
            threads: config
                .threads_per_worker
                .unwrap_or((cores / config.workers).max(1)),
            max_retries: config.max_retries,
            workers: BTreeMap::new(),
        })
    }

    fn start(&mut self, spec: TrialSpec, attempt: u32) -> Result<()> {
        let spec_file = write_spec(&spec)?;
        let log = std::fs::File::create(spec.dir.join(LOG_FILE))
            .with_context(|| format!("create {}", spec.dir.join(LOG_FILE).display()))?;
        let mut command = Command::new(&self.command);
        // Its own process group: Ctrl-C in the terminal reaches the search
        // process only, which stops the workers itself. And a worker dies
        // with the search process, so no orphan writes a trial that
        // `resume` runs again.
        command.process_group(0);
        // SAFETY: prctl is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            command.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = command
            .arg("trial")
            .arg("--spec")
            .arg(&spec_file)
            .env("RAYON_NUM_THREADS", self.threads.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("start worker {}", self.command.display()))?;
        self.workers.insert(
            spec.trial_id,
            Worker {
                child,
                spec,
                attempt,
            },
        );
        Ok(())
    }

    /// Starts a worker for `spec`.
    pub fn submit(&mut self, spec: TrialSpec) -> Result<()> {
        self.start(spec, 0)
    }

    /// Collects the workers that ended in the next 50 ms.
    pub fn poll(&mut self) -> Result<Vec<Update>> {
        std::thread::sleep(Duration::from_millis(50));
        let mut updates = Vec::new();
        let ended: Vec<u64> = self
            .workers
            .iter_mut()
            .filter_map(|(id, w)| w.child.try_wait().ok().flatten().map(|_| *id))
            .collect();
        for id in ended {
            let Some(mut w) = self.workers.remove(&id) else {
                continue;
            };
            let status = w.child.wait()?;
            if let Some(outcome) = read_result(&w.spec.dir) {
                updates.push(Update::Finished(outcome));
                continue;
            }
            let why = format!(
                "worker {} ended with {status} and no result; {}: {}",
                w.child.id(),
                w.spec.dir.join(LOG_FILE).display(),
                log_tail(&w.spec.dir.join(LOG_FILE))
            );
            if w.attempt < self.max_retries {
                updates.push(Update::Retried {
                    trial: id,
                    why,
                    job: None,
                });
                self.start(w.spec, w.attempt + 1)?;
            } else {
                let why = format!(
                    "{why} (after {} retries, [executor] max_retries)",
                    w.attempt
                );
                updates.push(Update::Lost { trial: id, why });
            }
        }
        Ok(updates)
    }

    /// Kills every worker (after Ctrl-C); their checkpoints stay for `resume`.
    pub fn stop(&mut self) {
        for w in self.workers.values_mut() {
            let _ = w.child.kill();
            let _ = w.child.wait();
        }
        self.workers.clear();
    }
}
