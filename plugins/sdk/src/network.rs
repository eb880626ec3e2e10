//! Builds the node list of a [`Network`] one op at a time, so search spaces
//! write `let x = b.conv(x, ...)` instead of managing node indices.

use crate::{Activation, Conv2d, Network, Node, Op, Padding, Pool};

/// A network under construction; node 0, the input, exists from the start.
#[derive(Debug, Clone)]
pub struct NetworkBuilder {
    nodes: Vec<Node>,
}

/// A node of the network under construction.
pub type NodeId = u32;

impl Default for NetworkBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl NetworkBuilder {
    /// A network with only its input node.
    pub fn new() -> Self {
        NetworkBuilder {
            nodes: vec![Node {
                op: Op::Input,
                inputs: Vec::new(),
            }],
        }
    }

    /// The input node.
    pub fn input(&self) -> NodeId {
        0
    }

    /// Appends `op` applied to `inputs` and returns the new node.
    pub fn op(&mut self, op: Op, inputs: &[NodeId]) -> NodeId {
        self.nodes.push(Node {
            op,
            inputs: inputs.to_vec(),
        });
        (self.nodes.len() - 1) as NodeId
    }

    /// A convolution with `filters` outputs, square `kernel`, `stride`, same padding, no dilation or groups, with bias.
    pub fn conv(&mut self, x: NodeId, filters: u32, kernel: u32, stride: u32) -> NodeId {
        self.op(
            Op::Conv2d(Conv2d {
                filters,
                kernel,
                stride,
                padding: Padding::Same,
                dilation: 1,
                groups: 1,
                bias: true,
            }),
            &[x],
        )
    }

    /// A fully connected layer.
    pub fn dense(&mut self, x: NodeId, units: u32) -> NodeId {
        self.op(Op::Dense(units), &[x])
    }

    /// An activation.
    pub fn act(&mut self, x: NodeId, activation: Activation) -> NodeId {
        self.op(Op::Activation(activation), &[x])
    }

    /// Max pooling with a square window, valid padding.
    pub fn max_pool(&mut self, x: NodeId, kernel: u32, stride: u32) -> NodeId {
        self.op(
            Op::MaxPool(Pool {
                kernel,
                stride,
                padding: Padding::Valid,
            }),
            &[x],
        )
    }

    /// Average pooling with a square window and the given padding.
    pub fn avg_pool(&mut self, x: NodeId, kernel: u32, stride: u32, padding: Padding) -> NodeId {
        self.op(
            Op::AvgPool(Pool {
                kernel,
                stride,
                padding,
            }),
            &[x],
        )
    }

    /// The finished network with its key.
    pub fn finish(self, key: impl Into<String>) -> Network {
        Network {
            nodes: self.nodes,
            key: key.into(),
        }
    }

    /// A conv with every setting given.
    #[allow(clippy::too_many_arguments)]
    pub fn conv_with(
        &mut self,
        x: NodeId,
        filters: u32,
        kernel: u32,
        stride: u32,
        padding: Padding,
        dilation: u32,
        groups: u32,
        bias: bool,
    ) -> NodeId {
        self.op(
            Op::Conv2d(Conv2d {
                filters,
                kernel,
                stride,
                padding,
                dilation,
                groups,
                bias,
            }),
            &[x],
        )
    }

    /// The finished network, keyed by its structure: `prefix` and a 64-bit
    /// hash of the node list, so assignments that build the same network
    /// share a key and different networks (barring a hash collision) do not.
    pub fn finish_structural(self, prefix: &str) -> Network {
        let text = format!("{:?}", self.nodes);
        // FNV-1a: stable across builds and platforms, unlike std's hasher.
        let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        self.finish(format!("{prefix}-{hash:016x}"))
    }
}
