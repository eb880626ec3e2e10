//! The run's SQLite database: run metadata, one row per finished trial
//! (assignment, key, budget, status, reason, metrics, per-epoch curve,
//! timings, seed), each architecture's network once (by key, compressed),
//! and the run's events in order (proposals asked, results told, trials
//! started, epochs finished, ...), from which `nas-host resume` rebuilds a
//! run. WAL mode, one transaction per write.

use crate::ir::EpochRecord;
use crate::ir::{Binding, Network, TrialStatus, Value};
use anyhow::{Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// File name of the database in a run directory.
pub const DB_FILE: &str = "nas.sqlite";

/// The run table's key for the version of the serialised types
/// ([`crate::ir::FORMAT_VERSION`]) the run was recorded with; runs recorded
/// before it was kept have none and are of version 1.
pub const FORMAT_KEY: &str = "format";

/// One trial as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialRecord {
    /// Unique within the run, in order of proposal.
    pub id: u64,
    /// The proposal's assignment.
    pub assignment: Vec<Binding>,
    /// The architecture key, when the network was built.
    pub key: Option<String>,
    /// The network, when built.
    pub network: Option<Network>,
    /// Epochs.
    pub budget: u32,
    /// Outcome.
    pub status: TrialStatus,
    /// Why it failed, or which trial's result it reused.
    pub reason: Option<String>,
    /// Final metrics.
    #[serde(with = "crate::ir::real::map")]
    pub metrics: BTreeMap<String, f64>,
    /// Per-epoch metrics.
    pub curve: Vec<EpochRecord>,
    /// Seed of the trial's training.
    pub seed: u64,
    /// Wall seconds spent on the trial by this run.
    pub seconds: f64,
    /// The earlier trial whose result this one reuses (same key and budget).
    pub reused_from: Option<u64>,
    /// The strategy's tag.
    pub tag: String,
    /// The trained weights, relative to the run directory (read them with
    /// [`TrialRecord::weights_in`]).
    pub weights: Option<String>,
}

impl TrialRecord {
    /// The trial's weights file, inside `run_dir` whatever the working
    /// directory or wherever the run was moved: the stored path is relative
    /// to the run (`trials/ID/FILE.safetensors`; runs recorded before held
    /// longer paths with the same end). Any other path (a tampered database
    /// naming `/etc/shadow`, say) is refused.
    pub fn weights_in(&self, run_dir: &Path) -> Result<Option<PathBuf>> {
        let Some(stored) = &self.weights else {
            return Ok(None);
        };
        let parts: Vec<_> = Path::new(stored).components().collect();
        let tail = match parts.as_slice() {
            [.., Component::Normal(trials), Component::Normal(id), Component::Normal(file)]
                if *trials == "trials"
                    && id.to_str().is_some_and(|i| i.parse::<u64>().is_ok())
                    && file.to_str().is_some_and(|f| f.ends_with(".safetensors")) =>
            {
                Path::new(trials).join(id).join(file)
            }
            _ => anyhow::bail!(
                "trial {}'s weights are recorded as `{stored}`, which is not a file of the run's trials folder; was the run database edited?",
                self.id
            ),
        };
        Ok(Some(run_dir.join(tail)))
    }
}

/// What happened in a run, in the `events` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A run process started (`run` or `resume`); data: what it continues.
    SessionStarted,
    /// The strategy was asked; data: [`Asked`].
    Asked,
    /// The strategy was told; data: [`Told`].
    Told,
    /// A trial's training or lookup started; data: its budget.
    TrialStarted,
    /// A trial continued from its checkpoint; data: the epochs restored.
    TrialResumed,
    /// A trial's checkpoint could not be continued (damaged, or not the
    /// trial's) and it trained from scratch; data: why.
    TrialRestarted,
    /// A trial finished an epoch; data: its [`EpochRecord`].
    Epoch,
    /// Ctrl-C stopped a trial before it finished; `nas-host resume` runs it again.
    TrialInterrupted,
    /// A trial was handed to a worker process or a Slurm job; data: its
    /// Slurm job id, if any.
    Submitted,
    /// A trial's Slurm job changed state; data: job and state.
    JobState,
    /// A trial's worker or job died and it runs again; data: why, and the new job.
    Retried,
}

impl EventKind {
    /// Every kind, in declaration order.
    pub const ALL: [EventKind; 11] = [
        EventKind::SessionStarted,
        EventKind::Asked,
        EventKind::Told,
        EventKind::TrialStarted,
        EventKind::TrialResumed,
        EventKind::TrialRestarted,
        EventKind::Epoch,
        EventKind::TrialInterrupted,
        EventKind::Submitted,
        EventKind::JobState,
        EventKind::Retried,
    ];

    /// The name stored in the `kind` column.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::SessionStarted => "session_started",
            EventKind::Asked => "asked",
            EventKind::Told => "told",
            EventKind::TrialStarted => "trial_started",
            EventKind::TrialResumed => "trial_resumed",
            EventKind::TrialRestarted => "trial_restarted",
            EventKind::Epoch => "epoch",
            EventKind::TrialInterrupted => "trial_interrupted",
            EventKind::Submitted => "submitted",
            EventKind::JobState => "job_state",
            EventKind::Retried => "retried",
        }
    }
}

/// One row of the `events` table.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// Order of recording.
    pub seq: u64,
    /// What happened.
    pub kind: EventKind,
    /// The trial it concerns.
    pub trial: Option<u64>,
    /// JSON, by kind.
    pub data: String,
    /// Seconds of the run's clock.
    pub elapsed: f64,
}

/// The data of an [`EventKind::Asked`] event: one `ask` call and its answer,
/// as the trial id given to each proposal and a digest of the proposals.
/// The trials' rows hold what was proposed; resume asks the strategy again
/// and compares digests. (Runs recorded before format 3 hold the proposals
/// themselves.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Asked {
    /// The `max` asked for.
    pub max: u32,
    /// The trial id given to each proposal.
    pub trials: Vec<u64>,
    /// [`Asked::digest`] of the proposals.
    pub digest: String,
    /// The proposals that continue an earlier trial (`resume-from`, which
    /// their rows do not hold): trial id to the trial it continues.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub continues: BTreeMap<u64, u64>,
}

impl Asked {
    /// The record of an `ask(max)` answered with `proposals`, given trial
    /// ids from `first` on.
    pub fn new(max: u32, proposals: &[crate::ir::Proposal], first: u64) -> Result<Self> {
        let trials: Vec<u64> = (first..).take(proposals.len()).collect();
        let continues = trials
            .iter()
            .zip(proposals)
            .filter_map(|(id, p)| Some((*id, p.resume_from?)))
            .collect();
        Ok(Asked {
            max,
            digest: Self::digest(proposals)?,
            trials,
            continues,
        })
    }

    /// The digest of `proposals`: the first 64 bits of the SHA-256 of their
    /// JSON, in hex.
    pub fn digest(proposals: &[crate::ir::Proposal]) -> Result<String> {
        use sha2::{Digest, Sha256};
        let hash = Sha256::digest(json(&proposals)?.as_bytes());
        Ok(hash[..8].iter().map(|b| format!("{b:02x}")).collect())
    }
}

/// The data of an [`EventKind::Told`] event: the trials whose results the
/// strategy was told, each result being its trial's stored row with the
/// proposal asked for it. (Runs recorded before format 3 hold the results
/// themselves.)
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Told {
    /// The trials told, in order.
    pub trials: Vec<u64>,
}

/// A run's database.
pub struct RunStore {
    conn: Connection,
}

/// The lower-case name of a status, as stored and shown.
pub fn status_text(s: TrialStatus) -> &'static str {
    match s {
        TrialStatus::Completed => "completed",
        TrialStatus::Failed => "failed",
        TrialStatus::Pruned => "pruned",
        TrialStatus::Infeasible => "infeasible",
    }
}

fn parse_status(s: &str) -> rusqlite::Result<TrialStatus> {
    Ok(match s {
        "completed" => TrialStatus::Completed,
        "failed" => TrialStatus::Failed,
        "pruned" => TrialStatus::Pruned,
        "infeasible" => TrialStatus::Infeasible,
        other => {
            return Err(rusqlite::Error::InvalidColumnName(format!(
                "unknown status {other}"
            )))
        }
    })
}

fn json<T: Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value)?)
}

/// A trial's metrics as JSON, non-finite values included ([`crate::ir::real`]).
fn metrics_json(metrics: &BTreeMap<String, f64>) -> Result<String> {
    let mut out = Vec::new();
    crate::ir::real::map::serialize(metrics, &mut serde_json::Serializer::new(&mut out))?;
    Ok(String::from_utf8(out)?)
}

/// Reads what [`metrics_json`] writes (and `null` for NaN, as older runs hold it).
fn metrics_from_json(text: &str) -> rusqlite::Result<BTreeMap<String, f64>> {
    crate::ir::real::map::deserialize(&mut serde_json::Deserializer::from_str(text)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

fn from_json<T: for<'de> Deserialize<'de>>(text: &str) -> rusqlite::Result<T> {
    serde_json::from_str(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// A trial's assignment as its row holds it (format 3 on): a JSON object
/// from each dimension, in order, to its value: a label as a string, an
/// integer as an integer, a real as a number with a fraction or exponent
/// (`{"real": "NaN"}` when not finite), as in
/// `{"1<-0": "nor_conv_3x3", "depth": 3, "lr": 0.01}`. Rows of earlier
/// formats hold the list of bindings, which [`assignment_from_json`] reads too.
fn assignment_json(assignment: &[Binding]) -> Result<String> {
    struct Form<'a>(&'a [Binding]);
    struct Entry<'a>(&'a Value);
    impl Serialize for Form<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = s.serialize_map(Some(self.0.len()))?;
            for b in self.0 {
                map.serialize_entry(&b.name, &Entry(&b.value))?;
            }
            map.end()
        }
    }
    impl Serialize for Entry<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            match self.0 {
                Value::Categorical(label) => s.serialize_str(label),
                Value::Integer(i) => s.serialize_i64(*i),
                Value::Real(r) if r.is_finite() => s.serialize_f64(*r),
                Value::Real(r) => {
                    #[derive(Serialize)]
                    struct Real(#[serde(with = "crate::ir::real")] f64);
                    let mut map = s.serialize_map(Some(1))?;
                    map.serialize_entry("real", &Real(*r))?;
                    map.end()
                }
            }
        }
    }
    json(&Form(assignment))
}

/// Reads what [`assignment_json`] writes, or the list of bindings of
/// earlier formats.
fn assignment_from_json(text: &str) -> rusqlite::Result<Vec<Binding>> {
    use serde::de::{MapAccess, SeqAccess, Visitor};
    struct Form;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Integer(i64),
        Real(f64),
        Label(String),
        NonFinite {
            #[serde(with = "crate::ir::real")]
            real: f64,
        },
    }
    impl<'de> Visitor<'de> for Form {
        type Value = Vec<Binding>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an assignment")
        }
        fn visit_map<A: MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((name, entry)) = map.next_entry::<String, Entry>()? {
                let value = match entry {
                    Entry::Integer(i) => Value::Integer(i),
                    Entry::Real(r) | Entry::NonFinite { real: r } => Value::Real(r),
                    Entry::Label(l) => Value::Categorical(l),
                };
                out.push(Binding { name, value });
            }
            Ok(out)
        }
        fn visit_seq<A: SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> std::result::Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(binding) = seq.next_element()? {
                out.push(binding);
            }
            Ok(out)
        }
    }
    serde::Deserializer::deserialize_any(&mut serde_json::Deserializer::from_str(text), Form)
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Text, Box::new(e))
        })
}

const COLUMNS: &str = "id, assignment, key, network, budget, status, reason, metrics, curve, seed, seconds, reused_from, tag, weights";

/// The trial columns as read: [`COLUMNS`] from `trials` and the network
/// kept once per key (runs of format 1 hold it in the trial's row).
fn read_columns(networks: bool) -> String {
    let kept = if networks {
        "(SELECT network FROM networks n WHERE n.key = t.key)"
    } else {
        "NULL"
    };
    format!(
        "t.id, t.assignment, t.key, t.network, t.budget, t.status, t.reason, t.metrics, t.curve, t.seed, t.seconds, t.reused_from, t.tag, t.weights, {kept}"
    )
}

/// The most bytes a kept network inflates to (a network at the host's
/// node limit is far smaller); a damaged or hostile database cannot make a
/// reader allocate more.
const NETWORK_BYTES: u64 = 256 << 20;

/// A network's JSON, deflated.
fn deflate(network: &Network) -> Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(serde_json::to_string(network)?.as_bytes())?;
    Ok(encoder.finish()?)
}

/// A network kept by [`deflate`].
fn inflate(bytes: &[u8]) -> rusqlite::Result<Network> {
    use std::io::Read;
    let mut text = String::new();
    flate2::read::DeflateDecoder::new(bytes)
        .take(NETWORK_BYTES)
        .read_to_string(&mut text)
        .map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(14, rusqlite::types::Type::Blob, Box::new(e))
        })?;
    from_json(&text)
}

/// Keeps `network` under `key` in the `networks` table, unless the key is kept.
fn keep(conn: &Connection, key: &str, network: &Network) -> Result<()> {
    conn.execute(
        "INSERT OR IGNORE INTO networks (key, network) VALUES (?1, ?2)",
        params![key, deflate(network)?],
    )
    .with_context(|| format!("keep network `{key}` in the run database"))?;
    Ok(())
}

impl RunStore {
    /// Opens an existing run database without writing to it (safe while the
    /// run is writing: WAL lets readers and the writer proceed together).
    pub fn open_read_only(path: &Path) -> Result<Self> {
        if !path.exists() {
            anyhow::bail!(
                "{} does not exist: is this a run directory of nas-host?",
                path.display()
            );
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("open run database {}", path.display()))?;
        let store = RunStore { conn };
        store.check_format(path)?;
        Ok(store)
    }

    /// Refuses a run recorded in a format newer than this nas-host reads.
    fn check_format(&self, path: &Path) -> Result<()> {
        let recorded = self.meta(FORMAT_KEY)?;
        let version = recorded
            .as_deref()
            .map_or(Some(1), |v| v.parse::<u32>().ok());
        match version {
            Some(v) if v <= crate::ir::FORMAT_VERSION => Ok(()),
            _ => anyhow::bail!(
                "{} was recorded in format {} but this nas-host reads formats up to {}: use the nas-host that recorded it, or a newer one",
                path.display(),
                recorded.unwrap_or_default(),
                crate::ir::FORMAT_VERSION
            ),
        }
    }

    /// Creates the database (and its tables) at `path`, or opens it.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("open run database {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS run (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS trials (
                id INTEGER PRIMARY KEY,
                assignment TEXT NOT NULL,
                assignment_text TEXT NOT NULL,
                key TEXT,
                network TEXT,
                budget INTEGER NOT NULL,
                status TEXT NOT NULL,
                reason TEXT,
                metrics TEXT NOT NULL,
                curve TEXT NOT NULL,
                seed INTEGER NOT NULL,
                seconds REAL NOT NULL,
                reused_from INTEGER,
                tag TEXT NOT NULL,
                weights TEXT,
                finished_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             );
             CREATE TABLE IF NOT EXISTS networks (key TEXT PRIMARY KEY, network BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY AUTOINCREMENT,
                kind TEXT NOT NULL,
                trial INTEGER,
                data TEXT NOT NULL,
                elapsed_s REAL NOT NULL,
                at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
             );",
        )
        .with_context(|| format!("create tables in {}", path.display()))?;
        let store = RunStore { conn };
        store.check_format(path)?;
        Ok(store)
    }

    /// Records a run-level fact (config, seeds, start time).
    pub fn set_meta(&self, key: &str, value: &str) -> Result<()> {
        self.set_metas(&[(key, value)])
    }

    /// Records several run-level facts in one transaction: all or none.
    pub fn set_metas(&self, facts: &[(&str, &str)]) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        for (key, value) in facts {
            tx.execute(
                "INSERT OR REPLACE INTO run (key, value) VALUES (?1, ?2)",
                params![key, value],
            )
            .with_context(|| format!("record `{key}` in the run database"))?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Forgets a run-level fact.
    pub fn remove_meta(&self, key: &str) -> Result<()> {
        self.conn.execute("DELETE FROM run WHERE key = ?1", [key])?;
        Ok(())
    }

    /// Records an event of the run, `elapsed` seconds into it.
    pub fn event(
        &self,
        kind: EventKind,
        trial: Option<u64>,
        data: &impl Serialize,
        elapsed: f64,
    ) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO events (kind, trial, data, elapsed_s) VALUES (?1, ?2, ?3, ?4)",
                params![kind.name(), trial.map(|t| t as i64), json(data)?, elapsed],
            )
            .with_context(|| format!("record event `{}` in the run database", kind.name()))?;
        Ok(())
    }

    /// The events of the given kinds, in order.
    pub fn events(&self, kinds: &[EventKind]) -> Result<Vec<StoredEvent>> {
        let marks = vec!["?"; kinds.len()].join(", ");
        let mut stmt = self.conn.prepare(&format!(
            "SELECT seq, kind, trial, data, elapsed_s FROM events WHERE kind IN ({marks}) ORDER BY seq"
        ))?;
        let names = kinds.iter().map(|k| k.name());
        let rows = stmt
            .query_map(rusqlite::params_from_iter(names), |r| {
                let kind: String = r.get(1)?;
                Ok(StoredEvent {
                    seq: r.get::<_, i64>(0)? as u64,
                    kind: EventKind::ALL
                        .into_iter()
                        .find(|k| k.name() == kind)
                        .ok_or_else(|| {
                            rusqlite::Error::FromSqlConversionFailure(
                                1,
                                rusqlite::types::Type::Text,
                                format!("unknown event kind `{kind}`").into(),
                            )
                        })?,
                    trial: r.get::<_, Option<i64>>(2)?.map(|t| t as u64),
                    data: r.get(3)?,
                    elapsed: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The run clock at the last recorded event (0 when there is none).
    pub fn last_elapsed(&self) -> Result<f64> {
        Ok(self
            .conn
            .query_row("SELECT MAX(elapsed_s) FROM events", [], |r| {
                r.get::<_, Option<f64>>(0)
            })?
            .unwrap_or(0.0))
    }

    /// A run-level fact.
    pub fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row("SELECT value FROM run WHERE key = ?1", [key], |r| r.get(0))
            .optional()?)
    }

    /// Stores a finished trial in one transaction; its network is kept once per key.
    pub fn insert(&self, t: &TrialRecord) -> Result<()> {
        let tx = self.conn.unchecked_transaction()?;
        let inline = match (&t.key, &t.network) {
            (Some(key), Some(network)) => {
                keep(&tx, key, network)?;
                None
            }
            (None, Some(network)) => Some(json(network)?),
            (_, None) => None,
        };
        tx
            .execute(
                &format!("INSERT INTO trials ({COLUMNS}, assignment_text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"),
                params![
                    t.id as i64,
                    assignment_json(&t.assignment)?,
                    t.key,
                    inline,
                    t.budget,
                    status_text(t.status),
                    t.reason,
                    metrics_json(&t.metrics)?,
                    json(&t.curve)?,
                    t.seed as i64,
                    t.seconds,
                    t.reused_from.map(|r| r as i64),
                    t.tag,
                    t.weights,
                    crate::assignment::text(&t.assignment),
                ],
            )
            .with_context(|| format!("record trial {} in the run database", t.id))?;
        tx.commit()
            .with_context(|| format!("commit trial {} to the run database", t.id))?;
        Ok(())
    }

    /// Keeps a network by its key (once: a kept key is left as it is).
    pub fn keep_network(&self, network: &Network) -> Result<()> {
        keep(&self.conn, &network.key, network)
    }

    fn read(row: &rusqlite::Row) -> rusqlite::Result<TrialRecord> {
        Ok(TrialRecord {
            id: row.get::<_, i64>(0)? as u64,
            assignment: assignment_from_json(&row.get::<_, String>(1)?)?,
            key: row.get(2)?,
            network: match row.get::<_, Option<String>>(3)? {
                Some(text) => Some(from_json(&text)?),
                None => row
                    .get::<_, Option<Vec<u8>>>(14)?
                    .map(|b| inflate(&b))
                    .transpose()?,
            },
            budget: row.get(4)?,
            status: parse_status(&row.get::<_, String>(5)?)?,
            reason: row.get(6)?,
            metrics: metrics_from_json(&row.get::<_, String>(7)?)?,
            curve: from_json(&row.get::<_, String>(8)?)?,
            seed: row.get::<_, i64>(9)? as u64,
            seconds: row.get(10)?,
            reused_from: row.get::<_, Option<i64>>(11)?.map(|r| r as u64),
            tag: row.get(12)?,
            weights: row.get(13)?,
        })
    }

    /// Whether the database keeps networks by key (format 2 and later;
    /// a run of format 1 opened read-only has no such table).
    fn has_networks(&self) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'networks'",
                [],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Every trial, by id.
    pub fn trials(&self) -> Result<Vec<TrialRecord>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {} FROM trials t ORDER BY t.id",
            read_columns(self.has_networks()?)
        ))?;
        let rows = stmt
            .query_map([], Self::read)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Binding, Value};

    /// NaN and infinities in metrics, curves and assignments are stored in
    /// a form every reader takes back, and a metric written as `null` (as
    /// older runs hold NaN) reads as NaN.
    #[test]
    fn non_finite_values_round_trip_through_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(&dir.path().join(DB_FILE)).unwrap();
        let epoch = EpochRecord {
            epoch: 1,
            train_loss: f64::INFINITY,
            val_loss: f64::NAN,
            val_accuracy: 0.5,
            seconds: 1.25,
        };
        let record = TrialRecord {
            id: 1,
            assignment: vec![Binding {
                name: "x".into(),
                value: Value::Real(f64::NEG_INFINITY),
            }],
            key: None,
            network: None,
            budget: 1,
            status: TrialStatus::Failed,
            reason: None,
            metrics: BTreeMap::from([
                ("val_loss".to_string(), f64::NAN),
                ("train_loss".to_string(), f64::INFINITY),
                ("params".to_string(), 0.1 + 0.2),
            ]),
            curve: vec![epoch],
            seed: 3,
            seconds: 0.5,
            reused_from: None,
            tag: String::new(),
            weights: None,
        };
        store.insert(&record).unwrap();
        let back = store.trials().unwrap().remove(0);
        assert!(back.metrics["val_loss"].is_nan());
        assert_eq!(back.metrics["train_loss"], f64::INFINITY);
        assert_eq!(
            back.metrics["params"],
            0.1 + 0.2,
            "finite values stay exact"
        );
        assert!(back.curve[0].val_loss.is_nan());
        assert_eq!(back.curve[0].train_loss, f64::INFINITY);
        assert_eq!(back.assignment[0].value, Value::Real(f64::NEG_INFINITY));

        store
            .conn
            .execute("UPDATE trials SET metrics = '{\"val_loss\":null}'", [])
            .unwrap();
        assert!(store.trials().unwrap()[0].metrics["val_loss"].is_nan());
    }

    /// An assignment's row form keeps the order, repeated names, integers
    /// apart from reals of the same value and every real exactly; the list
    /// form of earlier formats still reads.
    #[test]
    fn assignments_round_trip_in_their_row_form() {
        let bind = |name: &str, value: Value| Binding {
            name: name.into(),
            value,
        };
        let assignment = vec![
            bind("z", Value::Integer(1)),
            bind("a", Value::Real(1.0)),
            bind("lr", Value::Real(0.1 + 0.2)),
            bind("big", Value::Real(1e300)),
            bind("op", Value::Categorical("NaN".into())),
            bind("x", Value::Real(f64::NAN)),
            bind("z", Value::Integer(i64::MIN)),
        ];
        let text = assignment_json(&assignment).unwrap();
        assert!(text.starts_with(r#"{"z":1,"a":1.0,"#), "{text}");
        let back = assignment_from_json(&text).unwrap();
        assert_eq!(back.len(), assignment.len());
        for (b, a) in back.iter().zip(&assignment) {
            assert_eq!(b.name, a.name);
            match (&b.value, &a.value) {
                (Value::Real(x), Value::Real(y)) if y.is_nan() => assert!(x.is_nan()),
                (x, y) => assert_eq!(x, y),
            }
        }
        let old = serde_json::to_string(&assignment[..3]).unwrap();
        assert_eq!(assignment_from_json(&old).unwrap(), assignment[..3]);
        assert!(assignment_from_json(r#"{"a":[1]}"#).is_err());
    }

    /// A network is kept once per key, compressed, and read back with
    /// every trial of that key; a row of a format-1 run, which holds its
    /// network itself, still reads.
    #[test]
    fn networks_are_kept_once_per_key() {
        use crate::ir::{Node, Op};
        let dir = tempfile::tempdir().unwrap();
        let store = RunStore::open(&dir.path().join(DB_FILE)).unwrap();
        let network = Network {
            nodes: vec![
                Node {
                    op: Op::Input,
                    inputs: vec![],
                },
                Node {
                    op: Op::Flatten,
                    inputs: vec![0],
                },
                Node {
                    op: Op::Dense(10),
                    inputs: vec![1],
                },
            ],
            key: "k".into(),
        };
        let trial = |id: u64| TrialRecord {
            id,
            assignment: Vec::new(),
            key: Some("k".into()),
            network: Some(network.clone()),
            budget: 1,
            status: TrialStatus::Completed,
            reason: None,
            metrics: BTreeMap::new(),
            curve: Vec::new(),
            seed: id,
            seconds: 0.0,
            reused_from: None,
            tag: String::new(),
            weights: None,
        };
        store.insert(&trial(1)).unwrap();
        store.insert(&trial(2)).unwrap();
        let kept: i64 = store
            .conn
            .query_row("SELECT count(*) FROM networks", [], |r| r.get(0))
            .unwrap();
        let inline: i64 = store
            .conn
            .query_row("SELECT count(network) FROM trials", [], |r| r.get(0))
            .unwrap();
        assert_eq!((kept, inline), (1, 0));
        let back = store.trials().unwrap();
        assert!(back.iter().all(|t| t.network.as_ref() == Some(&network)));

        let old = serde_json::to_string(&network).unwrap();
        store
            .conn
            .execute("UPDATE trials SET network = ?1 WHERE id = 2", [&old])
            .unwrap();
        store.conn.execute("DELETE FROM networks", []).unwrap();
        let back = store.trials().unwrap();
        assert_eq!(back[0].network, None);
        assert_eq!(back[1].network, Some(network));
    }
}
