//! A search space written entirely in the run's TOML: a list of layers, each
//! an op whose parameters are fixed values or placeholders,
//! `{ choice = [...] }`, `{ int = [lo, hi] }` or `{ real = [lo, hi], log = true }`,
//! with an optional `repeat` (fixed or a placeholder) for depth and
//! `op = "branches"` layers whose parallel branches are merged by `add` or
//! `concat`. Every placeholder is one dimension, named `<layer name>.<key>`;
//! repeated copies of a layer share its dimensions. `units = "classes"` is
//! the task's class count.
//!
//! ```toml
//! [space]
//! plugin = "builtin:template"
//! [[space.config.layers]]
//! op = "conv2d"
//! filters = { choice = [16, 32] }
//! kernel = 3
//! repeat = { int = [1, 3] }
//! [[space.config.layers]]
//! op = "activation"
//! function = "relu"
//! [[space.config.layers]]
//! op = { choice = ["global-avg-pool", "flatten"] }
//! [[space.config.layers]]
//! op = "dense"
//! units = "classes"
//! ```

use nas_plugin_sdk::space::value_of;
use nas_plugin_sdk::*;
use serde_json::{Map, Value as Json};

/// Keys each op takes, besides `op`, `name` and `repeat`.
const OPS: &[(&str, &[&str])] = &[
    (
        "conv2d",
        &[
            "filters", "kernel", "stride", "padding", "dilation", "groups", "bias",
        ],
    ),
    ("dense", &["units"]),
    ("max-pool", &["kernel", "stride", "padding"]),
    ("avg-pool", &["kernel", "stride", "padding"]),
    ("global-avg-pool", &[]),
    ("global-max-pool", &[]),
    ("batch-norm", &[]),
    ("activation", &["function"]),
    ("dropout", &["rate"]),
    ("flatten", &[]),
    ("identity", &[]),
    ("branches", &["merge", "branches"]),
];

/// A layer as written, with its dimension-name prefix.
#[derive(Clone)]
struct Layer {
    name: String,
    table: Map<String, Json>,
}

struct Template {
    layers: Vec<Layer>,
    /// For categorical dimensions: the JSON value of each label.
    choices: Vec<(String, Vec<Json>)>,
    task: Task,
}

/// Whether `v` is a placeholder table.
fn placeholder(v: &Json) -> bool {
    v.as_object().is_some_and(|o| {
        o.contains_key("choice") || o.contains_key("int") || o.contains_key("real")
    })
}

fn label_of(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        Json::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().unwrap_or_default()),
        other => other.to_string(),
    }
}

/// The dimension a placeholder defines, and its choices' JSON values.
fn dimension(name: &str, v: &Json) -> Result<(Dimension, Option<Vec<Json>>), String> {
    let o = v.as_object().expect("checked by placeholder()");
    let log = o.get("log").and_then(Json::as_bool).unwrap_or(false);
    let domain_and_values = if let Some(c) = o.get("choice") {
        let values = c
            .as_array()
            .filter(|a| !a.is_empty())
            .ok_or(format!(
                "template: `{name}`: `choice` must be a non-empty list"
            ))?
            .clone();
        let labels: Vec<String> = values.iter().map(label_of).collect();
        (Domain::Categorical(labels), Some(values))
    } else if let Some(r) = o.get("int") {
        let pair = r
            .as_array()
            .and_then(|a| Some((a.first()?.as_i64()?, a.get(1)?.as_i64()?)));
        let (low, high) = pair.ok_or(format!(
            "template: `{name}`: `int` must be [low, high] integers"
        ))?;
        (Domain::Integer(IntRange { low, high, log }), None)
    } else {
        let r = &o["real"];
        let pair = r
            .as_array()
            .and_then(|a| Some((a.first()?.as_f64()?, a.get(1)?.as_f64()?)));
        let (low, high) = pair.ok_or(format!(
            "template: `{name}`: `real` must be [low, high] numbers"
        ))?;
        (Domain::Real(RealRange { low, high, log }), None)
    };
    let (domain, values) = domain_and_values;
    Ok((
        Dimension {
            name: name.to_string(),
            domain,
            condition: None,
        },
        values,
    ))
}

/// Reads the layer list, checking ops and keys; `prefix` names nested layers.
fn parse_layers(list: &Json, prefix: &str) -> Result<Vec<Layer>, String> {
    let list = list.as_array().ok_or(format!(
        "template: `{prefix}layers` must be a list of tables"
    ))?;
    list.iter()
        .enumerate()
        .map(|(i, l)| {
            let table = l
                .as_object()
                .ok_or(format!("template: layer {prefix}{i} must be a table"))?
                .clone();
            let name = match table.get("name") {
                Some(Json::String(n)) => format!("{prefix}{n}"),
                Some(_) => {
                    return Err(format!(
                        "template: layer {prefix}{i}: `name` must be a string"
                    ))
                }
                None => format!("{prefix}l{i}"),
            };
            let ops: Vec<&str> = match table.get("op") {
                Some(Json::String(op)) => vec![op.as_str()],
                Some(v) if placeholder(v) => v["choice"]
                    .as_array()
                    .map(|a| a.iter().filter_map(Json::as_str).collect())
                    .unwrap_or_default(),
                _ => {
                    return Err(format!(
                    "template: layer `{name}` needs `op`, a name or {{ choice = [...] }} of names"
                ))
                }
            };
            if ops.is_empty() {
                return Err(format!(
                    "template: layer `{name}`: `op` placeholders must be choices of op names"
                ));
            }
            for op in &ops {
                let Some((_, keys)) = OPS.iter().find(|(o, _)| o == op) else {
                    let all: Vec<&str> = OPS.iter().map(|(o, _)| *o).collect();
                    return Err(format!(
                        "template: layer `{name}`: unknown op `{op}`; ops: {}",
                        all.join(", ")
                    ));
                };
                for key in table.keys() {
                    let allowed = ["op", "name", "repeat"].contains(&key.as_str())
                        || keys.contains(&key.as_str());
                    if !allowed && ops.len() == 1 {
                        return Err(format!(
                            "template: layer `{name}` ({op}): unknown key `{key}`; it takes {}",
                            keys.join(", ")
                        ));
                    }
                }
            }
            Ok(Layer { name, table })
        })
        .collect()
}

impl Template {
    /// Adds the dimensions of `layers` (and their branches) to `dims`.
    fn collect_dims(&mut self, layers: &[Layer], dims: &mut Vec<Dimension>) -> Result<(), String> {
        for layer in layers {
            for (key, value) in &layer.table {
                if placeholder(value) {
                    let (d, values) = dimension(&format!("{}.{key}", layer.name), value)?;
                    if let Some(v) = values {
                        self.choices.push((d.name.clone(), v));
                    }
                    dims.push(d);
                }
            }
            if let Some(branches) = layer.table.get("branches") {
                let list = branches.as_array().ok_or(format!(
                    "template: `{}`: `branches` must be a list of layer lists",
                    layer.name
                ))?;
                if list.len() < 2 {
                    return Err(format!(
                        "template: `{}` needs at least 2 branches",
                        layer.name
                    ));
                }
                for (j, b) in list.iter().enumerate() {
                    let sub = parse_layers(b, &format!("{}.b{j}.", layer.name))?;
                    self.collect_dims(&sub, dims)?;
                }
            }
        }
        Ok(())
    }

    /// The value of `key` of `layer` under `a`: fixed, or the assigned value.
    fn value(&self, layer: &Layer, key: &str, a: &Assignment) -> Result<Option<Json>, String> {
        let Some(v) = layer.table.get(key) else {
            return Ok(None);
        };
        if !placeholder(v) {
            return Ok(Some(v.clone()));
        }
        let dim = format!("{}.{key}", layer.name);
        Ok(Some(match value_of(a, &dim) {
            Some(Value::Categorical(label)) => {
                let (_, values) = self
                    .choices
                    .iter()
                    .find(|(n, _)| *n == dim)
                    .ok_or(format!("template: no choices for `{dim}`"))?;
                values
                    .iter()
                    .find(|v| label_of(v) == *label)
                    .cloned()
                    .ok_or(format!("template: `{dim}` has no choice `{label}`"))?
            }
            Some(Value::Integer(i)) => Json::from(*i),
            Some(Value::Real(r)) => Json::from(*r),
            None => return Err(format!("template: `{dim}` is not assigned")),
        }))
    }

    fn uint(&self, layer: &Layer, key: &str, a: &Assignment, default: u32) -> Result<u32, String> {
        match self.value(layer, key, a)? {
            None => Ok(default),
            Some(Json::String(s)) if s == "classes" => Ok(self.task.num_classes),
            Some(v) => v
                .as_u64()
                .filter(|&n| n <= u32::MAX as u64)
                .map(|n| n as u32)
                .ok_or(format!(
                    "template: `{}.{key}` must be a non-negative integer, got {v}",
                    layer.name
                )),
        }
    }

    fn text(
        &self,
        layer: &Layer,
        key: &str,
        a: &Assignment,
        default: &str,
    ) -> Result<String, String> {
        match self.value(layer, key, a)? {
            None => Ok(default.to_string()),
            Some(Json::String(s)) => Ok(s),
            Some(v) => Err(format!(
                "template: `{}.{key}` must be a string, got {v}",
                layer.name
            )),
        }
    }

    fn padding(&self, layer: &Layer, a: &Assignment, default: &str) -> Result<Padding, String> {
        match self.text(layer, "padding", a, default)?.as_str() {
            "same" => Ok(Padding::Same),
            "valid" => Ok(Padding::Valid),
            other => Err(format!(
                "template: `{}.padding` must be \"same\" or \"valid\", got `{other}`",
                layer.name
            )),
        }
    }

    /// Appends `layers` after node `x`; returns the last node.
    fn build_layers(
        &self,
        b: &mut NetworkBuilder,
        layers: &[Layer],
        mut x: u32,
        a: &Assignment,
    ) -> Result<u32, String> {
        for layer in layers {
            let repeat = self.uint(layer, "repeat", a, 1)?;
            for _ in 0..repeat {
                x = self.build_one(b, layer, x, a)?;
            }
        }
        Ok(x)
    }

    fn build_one(
        &self,
        b: &mut NetworkBuilder,
        layer: &Layer,
        x: u32,
        a: &Assignment,
    ) -> Result<u32, String> {
        let op = self.text(layer, "op", a, "")?;
        let pool = |me: &Self| -> Result<Pool, String> {
            let kernel = me.uint(layer, "kernel", a, 2)?;
            Ok(Pool {
                kernel,
                stride: me.uint(layer, "stride", a, kernel)?,
                padding: me.padding(layer, a, "valid")?,
            })
        };
        Ok(match op.as_str() {
            "conv2d" => {
                let bias = match self.value(layer, "bias", a)? {
                    None => true,
                    Some(v) => v.as_bool().ok_or(format!(
                        "template: `{}.bias` must be true or false",
                        layer.name
                    ))?,
                };
                let conv = Conv2d {
                    filters: self.uint(layer, "filters", a, 0)?,
                    kernel: self.uint(layer, "kernel", a, 3)?,
                    stride: self.uint(layer, "stride", a, 1)?,
                    padding: self.padding(layer, a, "same")?,
                    dilation: self.uint(layer, "dilation", a, 1)?,
                    groups: self.uint(layer, "groups", a, 1)?,
                    bias,
                };
                b.op(Op::Conv2d(conv), &[x])
            }
            "dense" => b.dense(x, self.uint(layer, "units", a, 0)?),
            "max-pool" => b.op(Op::MaxPool(pool(self)?), &[x]),
            "avg-pool" => b.op(Op::AvgPool(pool(self)?), &[x]),
            "global-avg-pool" => b.op(Op::GlobalAvgPool, &[x]),
            "global-max-pool" => b.op(Op::GlobalMaxPool, &[x]),
            "batch-norm" => b.op(Op::BatchNorm, &[x]),
            "flatten" => b.op(Op::Flatten, &[x]),
            "identity" => b.op(Op::Identity, &[x]),
            "dropout" => {
                let rate = self
                    .value(layer, "rate", a)?
                    .and_then(|v| v.as_f64())
                    .unwrap_or(0.0);
                b.op(Op::Dropout(rate as f32), &[x])
            }
            "activation" => {
                let name = self.text(layer, "function", a, "relu")?;
                let f = Activation::from_name(&name).ok_or(format!(
                    "template: `{}.function`: unknown activation `{name}`",
                    layer.name
                ))?;
                b.act(x, f)
            }
            "branches" => {
                let list = layer.table["branches"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let mut ends = Vec::new();
                for (j, branch) in list.iter().enumerate() {
                    let sub = parse_layers(branch, &format!("{}.b{j}.", layer.name))?;
                    ends.push(self.build_layers(b, &sub, x, a)?);
                }
                match self.text(layer, "merge", a, "add")?.as_str() {
                    "add" => b.op(Op::Add, &ends),
                    "concat" => b.op(Op::Concat, &ends),
                    other => {
                        return Err(format!(
                            "template: `{}.merge` must be \"add\" or \"concat\", got `{other}`",
                            layer.name
                        ))
                    }
                }
            }
            other => {
                return Err(format!(
                    "template: unknown op `{other}` in `{}`",
                    layer.name
                ))
            }
        })
    }
}

impl SearchSpace for Template {
    const NAME: &'static str = "template";
    const DESCRIPTION: &'static str = "A space declared in the run's TOML: layers with choice/int/real placeholders, repeats and branches";

    fn config_keys() -> Vec<ConfigKey> {
        vec![ConfigKey::new(
            "layers",
            "[]",
            "the layers, in order (see the README's declarative template section)",
        )]
    }

    fn init(config: Config, task: Task) -> Result<(Self, Vec<Dimension>), String> {
        let layers = parse_layers(&config.json("layers")?, "")?;
        if layers.is_empty() {
            return Err("template: `layers` is empty; declare at least the classifier, for example op = \"dense\", units = \"classes\"".into());
        }
        let mut space = Template {
            layers: Vec::new(),
            choices: Vec::new(),
            task,
        };
        let mut dims = Vec::new();
        space.collect_dims(&layers, &mut dims)?;
        if let Some(d) = dims
            .iter()
            .enumerate()
            .find(|(i, d)| dims[..*i].iter().any(|e| e.name == d.name))
            .map(|(_, d)| d)
        {
            return Err(format!(
                "template: two placeholders are both named `{}`; give the layers distinct `name`s",
                d.name
            ));
        }
        space.layers = layers;
        Ok((space, dims))
    }

    fn build(&self, a: &Assignment) -> Result<Network, String> {
        let mut b = NetworkBuilder::new();
        let input = b.input();
        self.build_layers(&mut b, &self.layers, input, a)?;
        Ok(b.finish_structural("template"))
    }
}

export_search_space!(Template);
