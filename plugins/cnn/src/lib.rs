//! A macro search space for image classification: 1 to `max_stages` stages,
//! each of 1 to `max_blocks` blocks of one type (`plain` sequential convs,
//! `residual` with an `add` skip and a 1x1 projection where channels change,
//! or `inception` parallel branches of kernel 1, 3, the stage's kernel and a
//! pooled 1x1, joined by `concat`), with filters, kernel size, batch-norm,
//! activation and downsampling (max-pool, avg-pool, strided conv, none) per
//! stage; then a head of global pooling or flatten, an optional dense layer
//! and dropout. Dimensions of stage k exist only when `stages` >= k.

use nas_plugin_sdk::space::{self, categorical as dim, number_labels as labels};
use nas_plugin_sdk::*;

struct Cnn {
    task: Task,
    max_stages: u64,
}

/// What a stage's dimensions say.
struct Stage {
    blocks: u32,
    filters: u32,
    kernel: u32,
    block: String,
    batch_norm: bool,
    activation: Activation,
    downsample: String,
}

fn label<'a>(a: &'a Assignment, name: &str) -> Result<&'a str, String> {
    space::label("cnn", a, name)
}

fn number(a: &Assignment, name: &str) -> Result<u32, String> {
    space::number("cnn", a, name)
}

fn activation(name: &str) -> Result<Activation, String> {
    Activation::from_name(name).ok_or(format!("cnn: unknown activation `{name}`"))
}

const BLOCKS: &[&str] = &["plain", "residual", "inception"];
const DOWNSAMPLES: &[&str] = &["max-pool", "avg-pool", "strided-conv", "none"];
const ACTIVATIONS: &[&str] = &["relu", "gelu", "silu", "tanh", "sigmoid", "leaky-relu"];

/// Builds layers while tracking channels and spatial size.
struct Builder {
    b: NetworkBuilder,
    channels: u32,
    size: (u32, u32),
}

impl Builder {
    /// conv (+ batch-norm) (+ activation); batch-norm replaces the conv's bias.
    fn conv_unit(
        &mut self,
        x: u32,
        filters: u32,
        kernel: u32,
        stride: u32,
        bn: bool,
        act: Option<Activation>,
    ) -> u32 {
        let mut y = self
            .b
            .conv_with(x, filters, kernel, stride, Padding::Same, 1, 1, !bn);
        if bn {
            y = self.b.op(Op::BatchNorm, &[y]);
        }
        if let Some(a) = act {
            y = self.b.act(y, a);
        }
        y
    }

    fn block(&mut self, x: u32, s: &Stage) -> u32 {
        let act = Some(s.activation);
        let out = match s.block.as_str() {
            "residual" => {
                let y = self.conv_unit(x, s.filters, s.kernel, 1, s.batch_norm, act);
                let y = self.conv_unit(y, s.filters, s.kernel, 1, s.batch_norm, None);
                let skip = if self.channels == s.filters {
                    x
                } else {
                    self.conv_unit(x, s.filters, 1, 1, s.batch_norm, None)
                };
                let sum = self.b.op(Op::Add, &[y, skip]);
                self.b.act(sum, s.activation)
            }
            "inception" => {
                let quarter = (s.filters / 4).max(1);
                let a = self.conv_unit(x, quarter, 1, 1, s.batch_norm, act);
                let b = self.conv_unit(x, quarter, 3, 1, s.batch_norm, act);
                let c = self.conv_unit(x, quarter, s.kernel, 1, s.batch_norm, act);
                let pooled = self.b.op(
                    Op::MaxPool(Pool {
                        kernel: 3,
                        stride: 1,
                        padding: Padding::Same,
                    }),
                    &[x],
                );
                let d = self.conv_unit(
                    pooled,
                    s.filters.saturating_sub(3 * quarter).max(1),
                    1,
                    1,
                    s.batch_norm,
                    act,
                );
                self.b.op(Op::Concat, &[a, b, c, d])
            }
            _ => self.conv_unit(x, s.filters, s.kernel, 1, s.batch_norm, act),
        };
        self.channels = if s.block == "inception" {
            3 * (s.filters / 4).max(1) + s.filters.saturating_sub(3 * (s.filters / 4).max(1)).max(1)
        } else {
            s.filters
        };
        out
    }

    /// Halves height and width, unless the map is already smaller than 2x2.
    fn downsample(&mut self, x: u32, s: &Stage) -> u32 {
        if self.size.0 < 2 || self.size.1 < 2 {
            return x;
        }
        let y = match s.downsample.as_str() {
            "max-pool" => self.b.max_pool(x, 2, 2),
            "avg-pool" => self.b.avg_pool(x, 2, 2, Padding::Valid),
            "strided-conv" => {
                let c = self.channels;
                self.conv_unit(x, c, 3, 2, s.batch_norm, Some(s.activation))
            }
            _ => return x,
        };
        self.size = if s.downsample == "strided-conv" {
            (self.size.0.div_ceil(2), self.size.1.div_ceil(2))
        } else {
            (self.size.0 / 2, self.size.1 / 2)
        };
        y
    }
}

impl SearchSpace for Cnn {
    const NAME: &'static str = "cnn";
    const DESCRIPTION: &'static str =
        "Macro CNN space: conditional stages of plain, residual or inception blocks, with filters, kernel, batch-norm, activation, downsampling, and a searchable head";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "max_stages",
                "4",
                "most stages (1 to 6); dimensions of stage k exist only when `stages` >= k",
            ),
            ConfigKey::new("max_blocks", "3", "most blocks per stage (1 to 6)"),
            ConfigKey::new(
                "filters",
                "[16, 32, 64, 128]",
                "choices of filters per stage",
            ),
            ConfigKey::new("kernels", "[3, 5, 7]", "choices of kernel size (odd)"),
            ConfigKey::new(
                "block_types",
                r#"["plain", "residual", "inception"]"#,
                "choices of block type",
            ),
            ConfigKey::new(
                "activations",
                r#"["relu", "gelu", "silu"]"#,
                "choices of activation: relu, gelu, silu, tanh, sigmoid, leaky-relu",
            ),
            ConfigKey::new(
                "downsamples",
                r#"["max-pool", "avg-pool", "strided-conv", "none"]"#,
                "choices of downsampling after each stage",
            ),
            ConfigKey::new(
                "dense_units",
                "[0, 64, 128, 256]",
                "choices of the head's hidden dense layer (0: none)",
            ),
            ConfigKey::new(
                "dropout_rates",
                "[0.0, 0.2, 0.5]",
                "choices of dropout before the classifier",
            ),
        ]
    }

    fn init(config: Config, task: Task) -> Result<(Self, Vec<Dimension>), String> {
        let max_stages = config.u64("max_stages")?;
        let max_blocks = config.u64("max_blocks")?;
        if !(1..=6).contains(&max_stages) || !(1..=6).contains(&max_blocks) {
            return Err("cnn: `max_stages` and `max_blocks` must be between 1 and 6".into());
        }
        let filters = config.u64_list("filters")?;
        let kernels = config.u64_list("kernels")?;
        if filters.iter().any(|&f| f == 0 || f > 4096)
            || kernels.iter().any(|&k| k % 2 == 0 || k > 15)
        {
            return Err("cnn: `filters` must be 1..=4096 and `kernels` odd and at most 15".into());
        }
        let choose = |key: &str, allowed: &[&str]| -> Result<Vec<String>, String> {
            let values = config.string_list(key)?;
            match values.iter().find(|v| !allowed.contains(&v.as_str())) {
                Some(bad) => Err(format!(
                    "cnn: `{key}` entry `{bad}` is not one of {}",
                    allowed.join(", ")
                )),
                None => Ok(values),
            }
        };
        let blocks = choose("block_types", BLOCKS)?;
        let activations = choose("activations", ACTIVATIONS)?;
        let downsamples = choose("downsamples", DOWNSAMPLES)?;
        let units = config.u64_list("dense_units")?;
        let rates = config.f64_list("dropout_rates")?;
        if rates.iter().any(|r| !(0.0..1.0).contains(r)) {
            return Err("cnn: `dropout_rates` entries must be in [0, 1)".into());
        }
        if task.channels == 0 || task.height == 0 || task.width == 0 || task.num_classes < 2 {
            return Err("cnn: the task needs a non-empty input and at least two classes".into());
        }
        let stage_labels: Vec<String> = (1..=max_stages).map(|k| k.to_string()).collect();
        let mut dims = vec![dim("stages", stage_labels.clone(), None)];
        for k in 1..=max_stages {
            let when = Some(Condition {
                parent: "stages".into(),
                labels: stage_labels[k as usize - 1..].to_vec(),
            });
            let block_labels: Vec<String> = (1..=max_blocks).map(|b| b.to_string()).collect();
            dims.push(dim(format!("s{k}_blocks"), block_labels, when.clone()));
            dims.push(dim(format!("s{k}_filters"), labels(&filters), when.clone()));
            dims.push(dim(format!("s{k}_kernel"), labels(&kernels), when.clone()));
            dims.push(dim(format!("s{k}_block"), blocks.clone(), when.clone()));
            dims.push(dim(
                format!("s{k}_batch_norm"),
                vec!["true".into(), "false".into()],
                when.clone(),
            ));
            dims.push(dim(
                format!("s{k}_activation"),
                activations.clone(),
                when.clone(),
            ));
            dims.push(dim(format!("s{k}_downsample"), downsamples.clone(), when));
        }
        dims.push(dim(
            "global_pooling",
            vec!["true".into(), "false".into()],
            None,
        ));
        dims.push(dim("dense_units", labels(&units), None));
        dims.push(dim("dropout_rate", labels(&rates), None));
        Ok((Cnn { task, max_stages }, dims))
    }

    fn build(&self, a: &Assignment) -> Result<Network, String> {
        let stages = number(a, "stages")?;
        if stages as u64 > self.max_stages {
            return Err(format!(
                "cnn: {stages} stages, more than max_stages = {}",
                self.max_stages
            ));
        }
        let mut builder = Builder {
            b: NetworkBuilder::new(),
            channels: self.task.channels,
            size: (self.task.height, self.task.width),
        };
        let mut x = builder.b.input();
        let mut last_activation = Activation::Relu;
        for k in 1..=stages {
            let stage = Stage {
                blocks: number(a, &format!("s{k}_blocks"))?,
                filters: number(a, &format!("s{k}_filters"))?,
                kernel: number(a, &format!("s{k}_kernel"))?,
                block: label(a, &format!("s{k}_block"))?.to_string(),
                batch_norm: label(a, &format!("s{k}_batch_norm"))? == "true",
                activation: activation(label(a, &format!("s{k}_activation"))?)?,
                downsample: label(a, &format!("s{k}_downsample"))?.to_string(),
            };
            for _ in 0..stage.blocks {
                x = builder.block(x, &stage);
            }
            x = builder.downsample(x, &stage);
            last_activation = stage.activation;
        }
        let b = &mut builder.b;
        x = b.op(
            if label(a, "global_pooling")? == "true" {
                Op::GlobalAvgPool
            } else {
                Op::Flatten
            },
            &[x],
        );
        let units = number(a, "dense_units")?;
        if units > 0 {
            x = b.dense(x, units);
            x = b.act(x, last_activation);
        }
        let rate: f32 = label(a, "dropout_rate")?
            .parse()
            .map_err(|e| format!("cnn: dropout_rate: {e}"))?;
        if rate > 0.0 {
            x = b.op(Op::Dropout(rate), &[x]);
        }
        b.dense(x, self.task.num_classes);
        Ok(builder.b.finish_structural("cnn"))
    }
}

export_search_space!(Cnn);
