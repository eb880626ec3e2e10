//! The host's own types for what a search works with: dimensions and
//! assignments, tasks and objectives, networks and their nodes, proposals
//! and trial results. Plugins speak a versioned WIT contract; the plugin
//! layer converts each version's generated types into these at the edge, so
//! the trainer, the store, the trial spec and the report never depend on a
//! contract version. Their serialised form (the run database's JSON, the
//! trial spec) carries its own format version: [`FORMAT_VERSION`].

use serde::{Deserialize, Serialize};

/// The version of the serialised form of these types in the run database
/// and in trial specs, independent of the plugin contract's version.
/// Version 2 keeps each architecture's network once, compressed, in the
/// database's `networks` table instead of in every trial's row; version 3
/// records a `told` event as the trials told, not as their results.
pub const FORMAT_VERSION: u32 = 3;

/// Serde for a real that may not be finite: JSON has no NaN or infinity
/// (serde_json writes them as `null`, which nothing reads back), so they are
/// written as the strings `"NaN"`, `"inf"` and `"-inf"`; reading also takes
/// `null` (as NaN), so runs recorded before read too.
pub mod real {
    use serde::{Deserialize, Deserializer, Serializer};

    /// A real as a JSON number, or as text when it is not finite.
    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        match *value {
            v if v.is_finite() => s.serialize_f64(v),
            v if v.is_nan() => s.serialize_str("NaN"),
            v if v > 0.0 => s.serialize_str("inf"),
            _ => s.serialize_str("-inf"),
        }
    }

    /// A real written by [`serialize`], or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Number(f64),
            Text(String),
            Null,
        }
        match Repr::deserialize(d)? {
            Repr::Number(v) => Ok(v),
            Repr::Null => Ok(f64::NAN),
            Repr::Text(t) => match t.as_str() {
                "NaN" => Ok(f64::NAN),
                "inf" => Ok(f64::INFINITY),
                "-inf" => Ok(f64::NEG_INFINITY),
                other => Err(serde::de::Error::custom(format!(
                    "`{other}` is not a number"
                ))),
            },
        }
    }

    /// Named reals (metrics), each as [`serialize`] writes it.
    pub mod map {
        use serde::ser::SerializeMap;
        use serde::{Deserialize, Deserializer, Serializer};
        use std::collections::BTreeMap;

        /// Writes each value as [`super::serialize`] does.
        pub fn serialize<S: Serializer>(
            values: &BTreeMap<String, f64>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            #[derive(serde::Serialize)]
            struct Real(#[serde(with = "super")] f64);
            let mut map = s.serialize_map(Some(values.len()))?;
            for (k, v) in values {
                map.serialize_entry(k, &Real(*v))?;
            }
            map.end()
        }

        /// Reads what [`serialize`] writes.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, f64>, D::Error> {
            #[derive(Deserialize)]
            struct Real(#[serde(with = "super")] f64);
            let values = BTreeMap::<String, Real>::deserialize(d)?;
            Ok(values.into_iter().map(|(k, Real(v))| (k, v)).collect())
        }
    }
}

/// An integer range, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IntRange {
    /// The smallest value.
    pub low: i64,
    /// The largest value.
    pub high: i64,
    /// Sample on a log scale.
    pub log: bool,
}

/// A real range, inclusive at both ends.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RealRange {
    /// The smallest value.
    pub low: f64,
    /// The largest value.
    pub high: f64,
    /// Sample on a log scale.
    pub log: bool,
}

/// The values a dimension can take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Domain {
    /// One of these labels.
    Categorical(Vec<String>),
    /// An integer in a range.
    Integer(IntRange),
    /// A real number in a range.
    Real(RealRange),
}

/// A dimension that exists only when another categorical dimension has one
/// of some labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    /// The categorical dimension it depends on.
    pub parent: String,
    /// The parent's labels under which it exists.
    pub labels: Vec<String>,
}

/// One decision of a search space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dimension {
    /// Its unique name.
    pub name: String,
    /// Its values.
    pub domain: Domain,
    /// When it exists; always when none.
    pub condition: Option<Condition>,
}

/// A dimension's value in an assignment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// A label of a categorical dimension.
    Categorical(String),
    /// An integer dimension's value.
    Integer(i64),
    /// A real dimension's value.
    Real(#[serde(with = "real")] f64),
}

/// A dimension's name and value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    /// The dimension.
    pub name: String,
    /// Its value.
    pub value: Value,
}

/// One value for each active dimension: a point of the search space.
pub type Assignment = Vec<Binding>;

/// What the networks of a run learn: input shape and number of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// Input channels.
    pub channels: u32,
    /// Input height.
    pub height: u32,
    /// Input width.
    pub width: u32,
    /// Output classes.
    pub num_classes: u32,
}

impl Task {
    /// Parses `CxHxW:CLASSES`, for example `1x28x28:10`.
    pub fn parse(text: &str) -> anyhow::Result<Task> {
        let parse = || -> Option<Task> {
            let (shape, classes) = text.split_once(':')?;
            let dims: Vec<u32> = shape
                .split('x')
                .map(|p| p.trim().parse().ok())
                .collect::<Option<_>>()?;
            let [channels, height, width] = dims[..] else {
                return None;
            };
            Some(Task {
                channels,
                height,
                width,
                num_classes: classes.trim().parse().ok()?,
            })
        };
        match parse() {
            Some(t) if t.channels > 0 && t.height > 0 && t.width > 0 && t.num_classes > 1 => Ok(t),
            _ => anyhow::bail!("task `{text}` must look like CHANNELSxHEIGHTxWIDTH:CLASSES, for example 1x28x28:10"),
        }
    }
}

/// Whether an objective is to be made small or large.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// Smaller is better.
    Minimize,
    /// Larger is better.
    Maximize,
}

/// A metric to optimise and its direction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// A trial metric, such as `val_accuracy`.
    pub metric: String,
    /// Its direction.
    pub direction: Direction,
}

/// Padding of a convolution or pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Padding {
    /// Output as large as the input (divided by the stride, rounded up).
    Same,
    /// No padding.
    Valid,
}

/// A 2-D convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Conv2d {
    /// Output channels.
    pub filters: u32,
    /// Kernel height and width.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Padding.
    pub padding: Padding,
    /// Dilation.
    pub dilation: u32,
    /// Groups (input and output channels divisible by it).
    pub groups: u32,
    /// Whether it adds a bias.
    pub bias: bool,
}

/// A pooling window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Pool {
    /// Window height and width.
    pub kernel: u32,
    /// Stride.
    pub stride: u32,
    /// Padding.
    pub padding: Padding,
}

/// An elementwise activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Activation {
    /// max(0, x).
    Relu,
    /// Gaussian error linear unit.
    Gelu,
    /// x * sigmoid(x).
    Silu,
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid.
    Sigmoid,
    /// Leaky ReLU.
    LeakyRelu,
}

/// One operation of a network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Op {
    /// The network's input; node 0 and only node 0.
    Input,
    /// A 2-D convolution.
    Conv2d(Conv2d),
    /// A fully connected layer with this many units on a flat input.
    Dense(u32),
    /// Max pooling.
    MaxPool(Pool),
    /// Average pooling (padding not counted).
    AvgPool(Pool),
    /// Average over height and width.
    GlobalAvgPool,
    /// Maximum over height and width.
    GlobalMaxPool,
    /// Batch normalisation over channels.
    BatchNorm,
    /// An elementwise activation.
    Activation(Activation),
    /// Dropout with this drop probability in [0, 1).
    Dropout(f32),
    /// Flattens to one vector per sample.
    Flatten,
    /// Sum of its inputs (same shapes).
    Add,
    /// Concatenation of its inputs along channels.
    Concat,
    /// Its input, unchanged.
    Identity,
    /// Zeros of its input's shape.
    Zero,
}

/// A node: an op applied to earlier nodes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// The operation.
    pub op: Op,
    /// Indices of input nodes, each smaller than this node's index.
    pub inputs: Vec<u32>,
}

/// A network the host compiles and trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    /// Topologically ordered; node 0 is `input`, the last node gives the logits.
    pub nodes: Vec<Node>,
    /// Identifies the architecture: the same network gives the same key,
    /// different networks different keys.
    pub key: String,
}

/// A configuration key a plugin accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigKey {
    /// The key.
    pub name: String,
    /// Its default, as text.
    pub default: String,
    /// What it does.
    pub help: String,
}

/// A plugin's self-description.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginInfo {
    /// Its name.
    pub name: String,
    /// Its version.
    pub version: String,
    /// What it does.
    pub description: String,
    /// The configuration keys it accepts.
    pub config: Vec<ConfigKey>,
}

/// A candidate the strategy wants evaluated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The point of the search space.
    pub assignment: Assignment,
    /// Training budget in epochs; none means the run's default.
    pub budget: Option<u32>,
    /// Continue from this earlier trial's saved state (multi-fidelity
    /// promotion) instead of training from scratch.
    pub resume_from: Option<u64>,
    /// Opaque to the host; echoed back in the trial's result.
    pub tag: String,
}

/// How a trial ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrialStatus {
    /// Trained (or looked up) and measured.
    Completed,
    /// Could not be evaluated; the reason says why.
    Failed,
    /// Stopped early by the host or a pruner.
    Pruned,
    /// Breaks a constraint.
    Infeasible,
}

/// A named value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// The metric's name.
    pub name: String,
    /// Its value.
    #[serde(with = "real")]
    pub value: f64,
}

/// A finished trial, as a strategy is told it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialResult {
    /// What was proposed.
    pub proposal: Proposal,
    /// The trial's id.
    pub trial_id: u64,
    /// How it ended.
    pub status: TrialStatus,
    /// Its final metrics.
    pub metrics: Vec<Metric>,
    /// Per epoch: its metrics.
    pub curve: Vec<Vec<Metric>>,
    /// Why it did not complete.
    pub reason: Option<String>,
}

/// The metrics of one finished epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based.
    pub epoch: u32,
    /// Mean training loss over the epoch's batches.
    #[serde(with = "real")]
    pub train_loss: f64,
    /// Mean validation loss.
    #[serde(with = "real")]
    pub val_loss: f64,
    /// Validation accuracy in [0, 1].
    #[serde(with = "real")]
    pub val_accuracy: f64,
    /// Seconds since training started, at the end of this epoch.
    #[serde(with = "real")]
    pub seconds: f64,
}
