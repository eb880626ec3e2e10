//! The plugin contract `nas:plugin@0.1.0` (`wit/v0.1.0/`): its generated
//! bindings, and the conversions between its types and the host's own
//! ([`crate::ir`]). Nothing outside the plugin layer sees a generated type; a
//! new contract version is one more module like this one.

#![allow(missing_docs)] // Generated code; the WIT file documents every item.

use crate::ir;

/// Bindings of the `strategy-plugin` world; they also define the shared types.
pub(crate) mod strategy_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "nas:plugin/strategy-plugin@0.1.0",
    });
}

/// Bindings of the `search-space-plugin` world, sharing the types above.
pub(crate) mod space_world {
    wasmtime::component::bindgen!({
        path: "../wit/v0.1.0",
        world: "nas:plugin/search-space-plugin@0.1.0",
        with: { "nas:plugin/types": super::strategy_world::nas::plugin::types },
    });
}

use strategy_world::nas::plugin::types as wit;

/// The contract version this module speaks.
pub(crate) const VERSION: &str = "0.1.0";

/// A conversion between a contract type and the host's own, element by element
/// through lists and options (which `From` cannot express for foreign types).
pub(crate) trait Convert<T> {
    fn convert(self) -> T;
}

impl<A: Convert<B>, B> Convert<Vec<B>> for Vec<A> {
    fn convert(self) -> Vec<B> {
        self.into_iter().map(Convert::convert).collect()
    }
}

impl<A: Convert<B>, B> Convert<Option<B>> for Option<A> {
    fn convert(self) -> Option<B> {
        self.map(Convert::convert)
    }
}

macro_rules! same {
    ($($t:ty),*) => {$(
        impl Convert<$t> for $t {
            fn convert(self) -> $t {
                self
            }
        }
    )*};
}
same!(bool, u32, u64, i64, f32, f64, String);

/// Records with the same fields on both sides, converted both ways.
macro_rules! records {
    ($($name:ident { $($field:ident),* })*) => {$(
        impl Convert<ir::$name> for wit::$name {
            fn convert(self) -> ir::$name {
                ir::$name { $($field: self.$field.convert()),* }
            }
        }
        impl Convert<wit::$name> for ir::$name {
            fn convert(self) -> wit::$name {
                wit::$name { $($field: self.$field.convert()),* }
            }
        }
    )*};
}

/// Variants with the same cases on both sides (each case with at most one
/// payload), converted both ways.
macro_rules! variants {
    ($($name:ident { $($case:ident $(($x:ident))?),* })*) => {$(
        impl Convert<ir::$name> for wit::$name {
            fn convert(self) -> ir::$name {
                match self {
                    $(wit::$name::$case $(($x))? => ir::$name::$case $(($x.convert()))?),*
                }
            }
        }
        impl Convert<wit::$name> for ir::$name {
            fn convert(self) -> wit::$name {
                match self {
                    $(ir::$name::$case $(($x))? => wit::$name::$case $(($x.convert()))?),*
                }
            }
        }
    )*};
}

records! {
    IntRange { low, high, log }
    RealRange { low, high, log }
    Condition { parent, labels }
    Dimension { name, domain, condition }
    Binding { name, value }
    Task { channels, height, width, num_classes }
    Objective { metric, direction }
    Conv2d { filters, kernel, stride, padding, dilation, groups, bias }
    Pool { kernel, stride, padding }
    Node { op, inputs }
    Network { nodes, key }
    ConfigKey { name, default, help }
    PluginInfo { name, version, description, config }
    Proposal { assignment, budget, resume_from, tag }
    Metric { name, value }
    TrialResult { proposal, trial_id, status, metrics, curve, reason }
}

variants! {
    Domain { Categorical(x), Integer(x), Real(x) }
    Value { Categorical(x), Integer(x), Real(x) }
    Direction { Minimize, Maximize }
    Padding { Same, Valid }
    Activation { Relu, Gelu, Silu, Tanh, Sigmoid, LeakyRelu }
    Op {
        Input, Conv2d(x), Dense(x), MaxPool(x), AvgPool(x), GlobalAvgPool, GlobalMaxPool,
        BatchNorm, Activation(x), Dropout(x), Flatten, Add, Concat, Identity, Zero
    }
    TrialStatus { Completed, Failed, Pruned, Infeasible }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A network with every op, and a result with every kind of value,
    /// survive the trip to the contract's types and back unchanged.
    #[test]
    fn conversions_round_trip() {
        let pool = ir::Pool {
            kernel: 3,
            stride: 2,
            padding: ir::Padding::Valid,
        };
        let ops = vec![
            ir::Op::Input,
            ir::Op::Conv2d(ir::Conv2d {
                filters: 8,
                kernel: 3,
                stride: 1,
                padding: ir::Padding::Same,
                dilation: 2,
                groups: 1,
                bias: false,
            }),
            ir::Op::Dense(7),
            ir::Op::MaxPool(pool),
            ir::Op::AvgPool(pool),
            ir::Op::GlobalAvgPool,
            ir::Op::GlobalMaxPool,
            ir::Op::BatchNorm,
            ir::Op::Activation(ir::Activation::LeakyRelu),
            ir::Op::Dropout(0.25),
            ir::Op::Flatten,
            ir::Op::Add,
            ir::Op::Concat,
            ir::Op::Identity,
            ir::Op::Zero,
        ];
        let network = ir::Network {
            nodes: ops
                .into_iter()
                .enumerate()
                .map(|(i, op)| ir::Node {
                    op,
                    inputs: (0..i as u32).collect(),
                })
                .collect(),
            key: "k".into(),
        };
        let there: wit::Network = network.clone().convert();
        assert_eq!(Convert::<ir::Network>::convert(there), network);

        let result = ir::TrialResult {
            proposal: ir::Proposal {
                assignment: vec![
                    ir::Binding {
                        name: "a".into(),
                        value: ir::Value::Categorical("x".into()),
                    },
                    ir::Binding {
                        name: "b".into(),
                        value: ir::Value::Integer(-3),
                    },
                    ir::Binding {
                        name: "c".into(),
                        value: ir::Value::Real(0.5),
                    },
                ],
                budget: Some(4),
                resume_from: None,
                tag: "t".into(),
            },
            trial_id: 9,
            status: ir::TrialStatus::Pruned,
            metrics: vec![ir::Metric {
                name: "val_loss".into(),
                value: 1.5,
            }],
            curve: vec![vec![]],
            reason: Some("why".into()),
        };
        let there: wit::TrialResult = result.clone().convert();
        assert_eq!(Convert::<ir::TrialResult>::convert(there), result);

        let dims = vec![ir::Dimension {
            name: "d".into(),
            domain: ir::Domain::Real(ir::RealRange {
                low: 0.1,
                high: 1.0,
                log: true,
            }),
            condition: Some(ir::Condition {
                parent: "a".into(),
                labels: vec!["x".into()],
            }),
        }];
        let there: Vec<wit::Dimension> = dims.clone().convert();
        assert_eq!(Convert::<Vec<ir::Dimension>>::convert(there), dims);
    }
}
