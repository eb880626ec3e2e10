//! The NAS-Bench-201 cell space (Dong & Yang, ICLR 2020). A cell is a DAG of
//! 4 nodes; each of the 6 edges i -> j (i < j) takes one of `none`,
//! `skip_connect`, `nor_conv_1x1`, `nor_conv_3x3` (ReLU-Conv-BN) or
//! `avg_pool_3x3`, and node j sums its incoming edges. The network is a 3x3
//! conv stem (`channels` filters) + BN, three stages of `cells` cells with
//! `channels`, 2x and 4x channels joined by residual reduction blocks, then
//! BN-ReLU, global average pooling and a dense classifier. 5^6 = 15,625 cells;
//! the key is the standard architecture string, for example
//! `|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|`.
//! `avg_pool_3x3` averages in-bounds positions only, as the reference does.

use nas_plugin_sdk::space::value_of;
use nas_plugin_sdk::*;

const OPS: &[&str] = &[
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
];

/// Edges in the standard string's order: node 1's, node 2's, node 3's.
const EDGES: &[(u32, u32)] = &[(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)];

struct Nb201 {
    task: Task,
    cells: u32,
    channels: u32,
}

fn edge_name(to: u32, from: u32) -> String {
    format!("{to}<-{from}")
}

/// ReLU, conv without bias, batch-norm.
fn relu_conv_bn(b: &mut NetworkBuilder, x: u32, filters: u32, kernel: u32, stride: u32) -> u32 {
    let x = b.act(x, Activation::Relu);
    let x = b.conv_with(x, filters, kernel, stride, Padding::Same, 1, 1, false);
    b.op(Op::BatchNorm, &[x])
}

impl Nb201 {
    fn cell(&self, b: &mut NetworkBuilder, input: u32, channels: u32, ops: &[&str]) -> u32 {
        let mut nodes = vec![input];
        for to in 1..=3u32 {
            let mut terms = Vec::new();
            for (e, &(t, from)) in EDGES.iter().enumerate() {
                if t != to {
                    continue;
                }
                let x = nodes[from as usize];
                match ops[e] {
                    "skip_connect" => terms.push(x),
                    "nor_conv_1x1" => terms.push(relu_conv_bn(b, x, channels, 1, 1)),
                    "nor_conv_3x3" => terms.push(relu_conv_bn(b, x, channels, 3, 1)),
                    "avg_pool_3x3" => terms.push(b.avg_pool(x, 3, 1, Padding::Same)),
                    _ => {} // none: contributes nothing
                }
            }
            let node = match terms.len() {
                0 => b.op(Op::Zero, &[input]),
                1 => terms[0],
                _ => b.op(Op::Add, &terms),
            };
            nodes.push(node);
        }
        nodes[3]
    }

    /// The residual reduction block: two ReLU-Conv-BN (the first with stride
    /// 2) plus a skip of 2x2 average pooling and a 1x1 conv.
    fn reduction(&self, b: &mut NetworkBuilder, x: u32, channels: u32) -> u32 {
        let a = relu_conv_bn(b, x, channels, 3, 2);
        let y = relu_conv_bn(b, a, channels, 3, 1);
        let pooled = b.avg_pool(x, 2, 2, Padding::Valid);
        let skip = b.conv_with(pooled, channels, 1, 1, Padding::Valid, 1, 1, false);
        b.op(Op::Add, &[y, skip])
    }
}

impl SearchSpace for Nb201 {
    const NAME: &'static str = "nb201";
    const DESCRIPTION: &'static str =
        "NAS-Bench-201 cell space: 6 edges x 5 ops = 15,625 cells in a 3-stage residual network";

    fn config_keys() -> Vec<ConfigKey> {
        vec![
            ConfigKey::new(
                "cells",
                "5",
                "cells per stage (N); the benchmark uses 5, fewer trains faster",
            ),
            ConfigKey::new(
                "channels",
                "16",
                "channels of the first stage (doubled at each reduction)",
            ),
        ]
    }

    fn init(config: Config, task: Task) -> Result<(Self, Vec<Dimension>), String> {
        let cells = config.u64("cells")?;
        let channels = config.u64("channels")?;
        if !(1..=20).contains(&cells) || !(1..=1024).contains(&channels) {
            return Err("nb201: `cells` must be 1..=20 and `channels` 1..=1024".into());
        }
        if !task.height.is_multiple_of(4)
            || !task.width.is_multiple_of(4)
            || task.height == 0
            || task.width == 0
        {
            return Err(format!(
                "nb201: height and width must be divisible by 4 (two stride-2 reductions), got {}x{}",
                task.height, task.width
            ));
        }
        let dims = EDGES
            .iter()
            .map(|&(to, from)| Dimension {
                name: edge_name(to, from),
                domain: Domain::Categorical(OPS.iter().map(|s| s.to_string()).collect()),
                condition: None,
            })
            .collect();
        Ok((
            Nb201 {
                task,
                cells: cells as u32,
                channels: channels as u32,
            },
            dims,
        ))
    }

    fn build(&self, a: &Assignment) -> Result<Network, String> {
        let ops: Vec<&str> = EDGES
            .iter()
            .map(|&(to, from)| match value_of(a, &edge_name(to, from)) {
                Some(Value::Categorical(l)) => Ok(l.as_str()),
                _ => Err(format!("nb201: edge `{}` is missing", edge_name(to, from))),
            })
            .collect::<Result<_, _>>()?;
        let mut b = NetworkBuilder::new();
        let stem = b.conv_with(b.input(), self.channels, 3, 1, Padding::Same, 1, 1, false);
        let mut x = b.op(Op::BatchNorm, &[stem]);
        for stage in 0..3 {
            let channels = self.channels << stage;
            if stage > 0 {
                x = self.reduction(&mut b, x, channels);
            }
            for _ in 0..self.cells {
                x = self.cell(&mut b, x, channels, &ops);
            }
        }
        x = b.op(Op::BatchNorm, &[x]);
        x = b.act(x, Activation::Relu);
        x = b.op(Op::GlobalAvgPool, &[x]);
        b.dense(x, self.task.num_classes);
        let key = format!(
            "|{}~0|+|{}~0|{}~1|+|{}~0|{}~1|{}~2|",
            ops[0], ops[1], ops[2], ops[3], ops[4], ops[5]
        );
        Ok(b.finish(key))
    }
}

export_search_space!(Nb201);
