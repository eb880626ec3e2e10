//! The Keras-style summary table of a network: one row per node with its op,
//! inputs, output shape and parameters, then the totals.

use super::shape::{analyse, op_name};
use crate::ir::{Activation, Network, Op, Padding, Task};
use anyhow::Result;
use std::fmt::Write as _;

fn detail(op: &Op) -> String {
    let pad = |p: Padding| if p == Padding::Same { "same" } else { "valid" };
    match op {
        Op::Conv2d(c) => {
            let mut s = format!(
                "{}x{} {} s{} {}",
                c.kernel,
                c.kernel,
                c.filters,
                c.stride,
                pad(c.padding)
            );
            if c.dilation > 1 {
                s += &format!(" d{}", c.dilation);
            }
            if c.groups > 1 {
                s += &format!(" g{}", c.groups);
            }
            s
        }
        Op::Dense(u) => format!("{u}"),
        Op::MaxPool(p) | Op::AvgPool(p) => {
            format!("{}x{} s{} {}", p.kernel, p.kernel, p.stride, pad(p.padding))
        }
        Op::Activation(a) => match a {
            Activation::Relu => "relu",
            Activation::Gelu => "gelu",
            Activation::Silu => "silu",
            Activation::Tanh => "tanh",
            Activation::Sigmoid => "sigmoid",
            Activation::LeakyRelu => "leaky-relu",
        }
        .into(),
        Op::Dropout(r) => format!("{r}"),
        _ => String::new(),
    }
}

/// An op's name with its settings, as the summary shows it: `conv2d (3x3 32 s1 same)`.
pub fn label(op: &Op) -> String {
    let d = detail(op);
    if d.is_empty() {
        op_name(op).to_string()
    } else {
        format!("{} ({d})", op_name(op))
    }
}

/// Thousands separators, as Keras prints parameter counts.
pub fn grouped(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// The summary table of `network` for `task`.
pub fn summary(network: &Network, task: &Task) -> Result<String> {
    let analysis = analyse(network, task)?;
    let rows: Vec<[String; 4]> = network
        .nodes
        .iter()
        .zip(&analysis.nodes)
        .enumerate()
        .map(|(i, (node, info))| {
            let layer = format!("{i}: {}", label(&node.op));
            let inputs = node
                .inputs
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(",");
            [layer, inputs, info.shape.to_string(), grouped(info.params)]
        })
        .collect();
    let headers = ["Layer (type)", "Inputs", "Output shape", "Param #"];
    let widths: Vec<usize> = (0..4)
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .fold(headers[c].len(), usize::max)
        })
        .collect();
    let line = |cells: [&str; 4]| -> String {
        format!(
            "{:<w0$}  {:<w1$}  {:<w2$}  {:>w3$}\n",
            cells[0],
            cells[1],
            cells[2],
            cells[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        )
    };
    let rule = "=".repeat(widths.iter().sum::<usize>() + 6) + "\n";
    let mut out = format!("Network: {}\n", network.key);
    out += &rule;
    out += &line(headers);
    out += &rule.replace('=', "-");
    for r in &rows {
        out += &line([&r[0], &r[1], &r[2], &r[3]]);
    }
    out += &rule;
    writeln!(out, "Total params: {}", grouped(analysis.params()))?;
    writeln!(
        out,
        "Forward FLOPs per sample: {}",
        grouped(analysis.flops())
    )?;
    Ok(out)
}
