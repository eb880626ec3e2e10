//! The seed template: a fixed two-conv CNN body with a searchable head.
//!
//! Body: conv 3x3 32 (same) + relu, max-pool 2; conv 3x3 64 (same) + relu,
//! max-pool 2. Head: global average pooling or flatten (`global_pooling`),
//! dense (`dense_units`) + relu, dropout (`dropout_rate`), dense(num_classes).
//! With the default config that is 2 x 3 x 4 = 24 architectures.

use nas_plugin_sdk::space::{self, assignment_text, number_labels as labels};
use nas_plugin_sdk::*;

struct SeedTemplate {
    task: Task,
}

fn categorical(name: &str, labels: Vec<String>) -> Dimension {
    space::categorical(name, labels, None)
}

fn label<'a>(assignment: &'a Assignment, name: &str) -> Result<&'a str, String> {
    space::label("seed-template", assignment, name)
}

impl SearchSpace for SeedTemplate {
    const NAME: &'static str = "seed-template";
    const DESCRIPTION: &'static str = "Two-conv CNN body with a searchable head: pooling, dense units, dropout (24 architectures by default)";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "dense_units",
                "[16, 32, 64]",
                "choices for the hidden dense layer's units",
            ),
            ConfigKey::new(
                "dropout_rates",
                "[0.0, 0.2, 0.4, 0.6]",
                "choices for the dropout rate after the hidden dense layer, each in [0, 1)",
            ),
        ]
    }

    fn init(config: Config, task: Task) -> Result<(Self, Vec<Dimension>), String> {
        let units = config.u64_list("dense_units")?;
        let rates = config.f64_list("dropout_rates")?;
        if let Some(u) = units.iter().find(|&&u| u == 0 || u > u32::MAX as u64) {
            return Err(format!(
                "seed-template: `dense_units` entry {u} must be between 1 and {}",
                u32::MAX
            ));
        }
        if let Some(r) = rates.iter().find(|r| !(0.0..1.0).contains(*r)) {
            return Err(format!(
                "seed-template: `dropout_rates` entry {r} must be in [0, 1)"
            ));
        }
        if task.height < 4 || task.width < 4 || task.channels == 0 || task.num_classes < 2 {
            return Err(format!(
                "seed-template needs inputs of at least 4x4 with one channel and two classes (two 2x2 max-pools), got {}x{}x{} with {} classes",
                task.channels, task.height, task.width, task.num_classes
            ));
        }
        let dims = vec![
            categorical("global_pooling", vec!["true".into(), "false".into()]),
            categorical("dense_units", labels(&units)),
            categorical("dropout_rate", labels(&rates)),
        ];
        Ok((SeedTemplate { task }, dims))
    }

    fn build(&self, assignment: &Assignment) -> Result<Network, String> {
        let global_pooling = label(assignment, "global_pooling")? == "true";
        let units: u32 = label(assignment, "dense_units")?
            .parse()
            .map_err(|e| format!("dense_units: {e}"))?;
        let rate: f32 = label(assignment, "dropout_rate")?
            .parse()
            .map_err(|e| format!("dropout_rate: {e}"))?;
        let mut b = NetworkBuilder::new();
        let mut x = b.input();
        for filters in [32, 64] {
            x = b.conv(x, filters, 3, 1);
            x = b.act(x, Activation::Relu);
            x = b.max_pool(x, 2, 2);
        }
        x = b.op(
            if global_pooling {
                Op::GlobalAvgPool
            } else {
                Op::Flatten
            },
            &[x],
        );
        x = b.dense(x, units);
        x = b.act(x, Activation::Relu);
        x = b.op(Op::Dropout(rate), &[x]);
        b.dense(x, self.task.num_classes);
        // The three dimensions fix the network, so the assignment's text is a canonical key.
        Ok(b.finish(assignment_text(assignment)))
    }
}

export_search_space!(SeedTemplate);
