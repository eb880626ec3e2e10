//! `[executor] kind = "slurm"`: one `sbatch` job per trial, running
//! `nas-host trial --spec` on a spec in the shared run directory. The queue
//! polls `scontrol` (never `sbatch --wait`), records state changes, retries
//! jobs that were cancelled, timed out, failed or lost their node (from the
//! trial's checkpoint), and re-attaches to the jobs of an earlier session.

use super::{log_tail, read_result, write_spec, ExecutorConfig, Update};
use crate::trial::{TrialOutcome, TrialSpec};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Job {
    id: String,
    spec: TrialSpec,
    attempt: u32,
    /// Last state seen (with node or pending reason), to report changes only.
    state: String,
}

/// The Slurm jobs of a run's trials.
pub struct SlurmQueue {
    config: ExecutorConfig,
    command: PathBuf,
    run_name: String,
    gpus: Option<u32>,
    jobs: BTreeMap<u64, Job>,
    last_poll: Option<Instant>,
}

/// One job's line of `scontrol -o show job`, as key=value pairs.
fn fields(line: &str) -> BTreeMap<&str, &str> {
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect()
}

fn run(cmd: &mut Command) -> Result<std::process::Output> {
    let name = format!("{cmd:?}");
    cmd.output().with_context(|| {
        format!("run {name}: is Slurm installed and on PATH? (scripts/slurm-dev-cluster.sh starts a local cluster)")
    })
}

impl SlurmQueue {
    /// A queue for the run `run_name`, checking that Slurm answers.
    pub fn new(config: &ExecutorConfig, run_name: &str, device: &str) -> Result<Self> {
        let ping = run(Command::new("scontrol").arg("ping"))?;
        let text = String::from_utf8_lossy(&ping.stdout);
        if !ping.status.success() || !text.contains("UP") {
            bail!(
                "[executor] kind = \"slurm\" but the Slurm controller does not answer (`scontrol ping`: {}{})",
                text.trim(),
                String::from_utf8_lossy(&ping.stderr).trim()
            );
        }
        let gpus = config
            .gpus_per_trial
            .or(device.starts_with("cuda").then_some(1))
            .filter(|g| *g > 0);
        Ok(SlurmQueue {
            config: config.clone(),
            command: std::path::absolute(config.command()?)?,
            run_name: run_name.to_string(),
            gpus,
            jobs: BTreeMap::new(),
            last_poll: None,
        })
    }

    /// The batch script of a trial: sbatch options, then the trial.
    fn script(&self, spec: &TrialSpec, spec_file: &std::path::Path) -> String {
        let c = &self.config;
        let mut s = String::from("#!/bin/bash\n");
        let mut opt = |o: String| s.push_str(&format!("#SBATCH {o}\n"));
        opt(format!(
            "--job-name={}-{}-{}",
            c.job_name_prefix, self.run_name, spec.trial_id
        ));
        opt(format!("--output={}/slurm-%j.out", spec.dir.display()));
        opt(format!("--cpus-per-task={}", c.cpus_per_trial));
        if let Some(p) = &c.partition {
            opt(format!("--partition={p}"));
        }
        if let Some(a) = &c.account {
            opt(format!("--account={a}"));
        }
        if let Some(q) = &c.qos {
            opt(format!("--qos={q}"));
        }
        if let Some(t) = c.time_limit_min {
            opt(format!("--time={t}"));
        }
        if let Some(m) = c.mem_per_trial_mb {
            opt(format!("--mem={m}M"));
        }
        if let Some(g) = self.gpus {
            opt(format!("--gres=gpu:{g}"));
        }
        for extra in &c.extra_args {
            opt(extra.clone());
        }
        s.push_str(&format!(
            "export NAS_TRIAL_ID={}\nexport RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n",
            spec.trial_id
        ));
        if let Some(setup) = &c.setup {
            s.push_str(setup);
            s.push('\n');
        }
        s.push_str(&format!(
            "exec '{}' trial --spec '{}'\n",
            self.command.display(),
            spec_file.display()
        ));
        s
    }

    fn sbatch(&self, spec: &TrialSpec) -> Result<String> {
        let spec_file = write_spec(spec)?;
        let script = spec.dir.join("job.sh");
        std::fs::write(&script, self.script(spec, &spec_file))
            .with_context(|| format!("write {}", script.display()))?;
        let out = run(Command::new("sbatch").arg("--parsable").arg(&script))?;
        if !out.status.success() {
            bail!(
                "sbatch refused trial {}'s job ({}): {}",
                spec.trial_id,
                script.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let text = String::from_utf8_lossy(&out.stdout);
        // `--parsable` prints `jobid` or `jobid;cluster`.
        Ok(text.trim().split(';').next().unwrap_or("").to_string())
    }

    /// Submits `spec` as a job; returns its id.
    pub fn submit(&mut self, mut spec: TrialSpec) -> Result<String> {
        // Jobs start in Slurm's working directory: give them absolute paths.
        spec.dir = std::path::absolute(&spec.dir)?;
        let id = self.sbatch(&spec)?;
        self.jobs.insert(
            spec.trial_id,
            Job {
                id: id.clone(),
                spec,
                attempt: 0,
                state: String::new(),
            },
        );
        Ok(id)
    }

    /// Follows job `job`, submitted for `spec` by an earlier session.
    pub fn attach(&mut self, mut spec: TrialSpec, job: &str) -> Result<String> {
        spec.dir = std::path::absolute(&spec.dir)?;
        self.jobs.insert(
            spec.trial_id,
            Job {
                id: job.to_string(),
                spec,
                attempt: 0,
                state: String::new(),
            },
        );
        Ok(job.to_string())
    }

    /// Every `poll_s` seconds, reads each job's state; returns what changed.
    pub fn poll(&mut self) -> Result<Vec<Update>> {
        let interval = Duration::from_secs_f64(self.config.poll_s);
        if let Some(last) = self.last_poll {
            let left = interval.saturating_sub(last.elapsed());
            if !left.is_zero() {
                // Short naps keep Ctrl-C responsive.
                std::thread::sleep(left.min(Duration::from_millis(100)));
                return Ok(Vec::new());
            }
        }
        self.last_poll = Some(Instant::now());
        let mut updates = Vec::new();
        let trials: Vec<u64> = self.jobs.keys().copied().collect();
        for trial in trials {
            let job = &self.jobs[&trial];
            let out = run(Command::new("scontrol")
                .args(["-o", "show", "job"])
                .arg(&job.id))?;
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let f = fields(&text);
            // A job Slurm no longer knows (purged after MinJobAge) ended while nobody watched.
            let state = f.get("JobState").copied().unwrap_or("UNKNOWN");
            let node = f.get("NodeList").copied().unwrap_or("");
            let reason = f.get("Reason").copied().unwrap_or("None");
            let exit = f.get("ExitCode").copied().unwrap_or("?");
            let shown = match state {
                "PENDING" => format!("PENDING ({reason})"),
                "RUNNING" | "COMPLETING" | "CONFIGURING" => format!("RUNNING on {node}"),
                other => other.to_string(),
            };
            if shown != job.state {
                updates.push(Update::JobState {
                    trial,
                    job: job.id.clone(),
                    state: shown.clone(),
                });
                if let Some(job) = self.jobs.get_mut(&trial) {
                    job.state = shown;
                }
            }
            if matches!(
                state,
                "PENDING"
                    | "RUNNING"
                    | "COMPLETING"
                    | "CONFIGURING"
                    | "SUSPENDED"
                    | "REQUEUED"
                    | "RESIZING"
            ) {
                continue;
            }
            let Some(job) = self.jobs.remove(&trial) else {
                continue;
            };
            if let Some(outcome) = read_result(&job.spec.dir) {
                updates.push(Update::Finished(outcome));
                continue;
            }
            let log = job.spec.dir.join(format!("slurm-{}.out", job.id));
            let why = format!(
                "slurm job {} {state} (exit code {exit}){} without a result; {}: {}",
                job.id,
                if node.is_empty() || node == "(null)" {
                    String::new()
                } else {
                    format!(" on {node}")
                },
                log.display(),
                log_tail(&log)
            );
            if state == "OUT_OF_MEMORY" {
                // The network needed more than the job's memory: its own
                // outcome, which running it again would only repeat.
                let reason = format!(
                    "out of memory: {why}; raise [executor] mem_per_trial_mb or lower batch_size"
                );
                let outcome =
                    TrialOutcome::failed(&job.spec, reason, Default::default(), Vec::new());
                updates.push(Update::Finished(outcome));
            } else if job.attempt < self.config.max_retries {
                let id = self.sbatch(&job.spec)?;
                updates.push(Update::Retried {
                    trial,
                    why,
                    job: Some(id.clone()),
                });
                self.jobs.insert(
                    trial,
                    Job {
                        id,
                        spec: job.spec,
                        attempt: job.attempt + 1,
                        state: String::new(),
                    },
                );
            } else {
                let why = format!(
                    "{why} (after {} retries, [executor] max_retries)",
                    job.attempt
                );
                updates.push(Update::Lost { trial, why });
            }
        }
        Ok(updates)
    }

    /// Cancels every job in flight (`scancel`).
    pub fn cancel_all(&mut self) -> Result<()> {
        if self.jobs.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = self.jobs.values().map(|j| j.id.as_str()).collect();
        run(Command::new("scancel").args(&ids))?;
        self.jobs.clear();
        Ok(())
    }
}
