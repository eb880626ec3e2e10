//! `mlp`: multilayer perceptrons for tabular data (or any input, flattened).
//!
//! Input, flatten, then `layers` hidden layers, each dense (`width_k` units)
//! with optional batch-norm, the activation, an optional skip connection
//! (the layer's input added to its output, through a dense projection when
//! the widths differ) and dropout; then the dense classifier. The depth, each
//! layer's width (a dimension that exists only when the network has that
//! layer), activation, dropout, batch-norm and skip connections are searched.

use nas_plugin_sdk::space::{self, assignment_text, categorical as dim, number_labels as labels};
use nas_plugin_sdk::*;

struct Mlp {
    task: Task,
    max_layers: u64,
}

const ACTIVATIONS: &[&str] = &["relu", "gelu", "silu", "tanh", "sigmoid", "leaky-relu"];

fn label<'a>(a: &'a Assignment, name: &str) -> Result<&'a str, String> {
    space::label("mlp", a, name)
}

fn number<T: std::str::FromStr>(a: &Assignment, name: &str) -> Result<T, String> {
    space::number("mlp", a, name)
}

impl SearchSpace for Mlp {
    const NAME: &'static str = "mlp";
    const DESCRIPTION: &'static str = "Multilayer perceptrons for tabular data: depth, per-layer widths, activation, dropout, batch-norm and skip connections";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "max_layers",
                "4",
                "most hidden layers (1 to 16); `width_k` exists only when `layers` >= k",
            ),
            ConfigKey::new(
                "widths",
                "[32, 64, 128, 256]",
                "choices of each hidden layer's units (1 to 65536)",
            ),
            ConfigKey::new(
                "activations",
                r#"["relu", "gelu", "tanh"]"#,
                "choices of activation: relu, gelu, silu, tanh, sigmoid, leaky-relu",
            ),
            ConfigKey::new(
                "dropout_rates",
                "[0.0, 0.1, 0.3]",
                "choices of dropout after each hidden layer, each in [0, 1)",
            ),
        ]
    }

    fn init(config: Config, task: Task) -> Result<(Self, Vec<Dimension>), String> {
        let max_layers = config.u64("max_layers")?;
        if !(1..=16).contains(&max_layers) {
            return Err("mlp: `max_layers` must be between 1 and 16".into());
        }
        let widths = config.u64_list("widths")?;
        if widths.is_empty() || widths.iter().any(|&w| w == 0 || w > 65_536) {
            return Err("mlp: `widths` must list numbers of units from 1 to 65536".into());
        }
        let activations = config.string_list("activations")?;
        if let Some(bad) = activations
            .iter()
            .find(|a| !ACTIVATIONS.contains(&a.as_str()))
        {
            return Err(format!(
                "mlp: `activations` entry `{bad}` is not one of {}",
                ACTIVATIONS.join(", ")
            ));
        }
        let rates = config.f64_list("dropout_rates")?;
        if rates.iter().any(|r| !(0.0..1.0).contains(r)) {
            return Err("mlp: `dropout_rates` entries must be in [0, 1)".into());
        }
        if task.channels == 0 || task.height == 0 || task.width == 0 || task.num_classes < 2 {
            return Err("mlp: the task needs a non-empty input and at least two classes".into());
        }
        let depth: Vec<String> = (1..=max_layers).map(|k| k.to_string()).collect();
        let mut dims = vec![dim("layers", depth.clone(), None)];
        for k in 1..=max_layers {
            let when = Condition {
                parent: "layers".into(),
                labels: depth[k as usize - 1..].to_vec(),
            };
            dims.push(dim(format!("width_{k}"), labels(&widths), Some(when)));
        }
        let yes_no = || vec!["true".to_string(), "false".to_string()];
        dims.push(dim("activation", activations, None));
        dims.push(dim("dropout_rate", labels(&rates), None));
        dims.push(dim("batch_norm", yes_no(), None));
        dims.push(dim("skip", yes_no(), None));
        Ok((Mlp { task, max_layers }, dims))
    }

    fn build(&self, a: &Assignment) -> Result<Network, String> {
        let layers: u64 = number(a, "layers")?;
        if !(1..=self.max_layers).contains(&layers) {
            return Err(format!(
                "mlp: {layers} layers, not between 1 and max_layers = {}",
                self.max_layers
            ));
        }
        let activation = Activation::from_name(label(a, "activation")?)
            .ok_or("mlp: unknown activation".to_string())?;
        let rate: f32 = number(a, "dropout_rate")?;
        let batch_norm = label(a, "batch_norm")? == "true";
        let skip = label(a, "skip")? == "true";
        let mut b = NetworkBuilder::new();
        let mut x = b.op(Op::Flatten, &[b.input()]);
        let mut width = self.task.channels * self.task.height * self.task.width;
        for k in 1..=layers {
            let units: u32 = number(a, &format!("width_{k}"))?;
            let mut h = b.dense(x, units);
            if batch_norm {
                h = b.op(Op::BatchNorm, &[h]);
            }
            h = b.act(h, activation);
            if skip {
                let shortcut = if units == width { x } else { b.dense(x, units) };
                h = b.op(Op::Add, &[h, shortcut]);
            }
            if rate > 0.0 {
                h = b.op(Op::Dropout(rate), &[h]);
            }
            x = h;
            width = units;
        }
        b.dense(x, self.task.num_classes);
        // Only the active dimensions are assigned, and they fix the network.
        Ok(b.finish(assignment_text(a)))
    }
}

export_search_space!(Mlp);
