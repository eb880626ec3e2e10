//! A network drawn as a graph in SVG: one box per node (op, settings,
//! output shape), a row per depth (the longest path from the input), so
//! parallel branches sit side by side and skip connections curve past them.

use crate::ir::{Network, Task};
use crate::network::{analyse, label};
use crate::plot::escape;
use anyhow::Result;
use std::fmt::Write as _;

const BOX_W: f64 = 190.0;
const BOX_H: f64 = 36.0;
const GAP_X: f64 = 24.0;
const GAP_Y: f64 = 30.0;

/// The SVG drawing of `network` (built for `task`).
pub fn svg(network: &Network, task: &Task) -> Result<String> {
    let analysis = analyse(network, task)?;
    let mut depth = vec![0usize; network.nodes.len()];
    for (i, node) in network.nodes.iter().enumerate() {
        depth[i] = node
            .inputs
            .iter()
            .map(|&j| depth[j as usize] + 1)
            .max()
            .unwrap_or(0);
    }
    let rows = depth.iter().max().map_or(0, |d| d + 1);
    let mut row_members: Vec<Vec<usize>> = vec![Vec::new(); rows];
    for (i, &d) in depth.iter().enumerate() {
        row_members[d].push(i);
    }
    let widest = row_members.iter().map(Vec::len).max().unwrap_or(1) as f64;
    let width = widest * (BOX_W + GAP_X) + GAP_X;
    let height = rows as f64 * (BOX_H + GAP_Y) + GAP_Y;
    let mut at = vec![(0.0, 0.0); network.nodes.len()];
    for (d, members) in row_members.iter().enumerate() {
        let row_width = members.len() as f64 * (BOX_W + GAP_X) - GAP_X;
        for (k, &i) in members.iter().enumerate() {
            at[i] = (
                (width - row_width) / 2.0 + k as f64 * (BOX_W + GAP_X),
                GAP_Y / 2.0 + d as f64 * (BOX_H + GAP_Y),
            );
        }
    }
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"graph\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"sans-serif\" font-size=\"11\">\n<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#666\"/></marker></defs>\n"
    );
    for (i, node) in network.nodes.iter().enumerate() {
        let (x, y) = at[i];
        for &j in &node.inputs {
            let (fx, fy) = at[j as usize];
            let (sx, sy, ex, ey) = (fx + BOX_W / 2.0, fy + BOX_H, x + BOX_W / 2.0, y);
            // An edge over more than one row bends aside so it does not cross the boxes between.
            let bend = if depth[i] - depth[j as usize] > 1 {
                BOX_W / 2.0 + GAP_X / 2.0
            } else {
                0.0
            };
            let _ = writeln!(
                out,
                "<path d=\"M{sx:.1},{sy:.1} C{:.1},{:.1} {:.1},{:.1} {ex:.1},{ey:.1}\" fill=\"none\" stroke=\"#666\" marker-end=\"url(#arrow)\"/>",
                sx + bend,
                sy + GAP_Y,
                ex + bend,
                ey - GAP_Y
            );
        }
    }
    for (i, node) in network.nodes.iter().enumerate() {
        let (x, y) = at[i];
        let info = &analysis.nodes[i];
        let _ = writeln!(
            out,
            "<g class=\"node\"><rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{BOX_W}\" height=\"{BOX_H}\" rx=\"5\" fill=\"#eef4fb\" stroke=\"#1f77b4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{} · {} params</text></g>",
            x + BOX_W / 2.0,
            y + 15.0,
            escape(&format!("{i}: {}", label(&node.op))),
            x + BOX_W / 2.0,
            y + 29.0,
            info.shape,
            crate::network::grouped(info.params)
        );
    }
    out.push_str("</svg>\n");
    Ok(out)
}
