//! The reverse pass of a training step on the CPU, run by the model itself
//! instead of candle's `backward`: each node's forward leaves a backward
//! step, and the steps run in reverse, each gradient handed on as it is.
//! candle's `backward` adds every gradient into a freshly zeroed tensor, one
//! full pass per edge on one thread; here only a node read by several others
//! sums its gradients (docs/performance.md, seventh session).

use candle_core::{Result, Tensor, Var};
use nas_kernels::Backward;

/// Where the gradient of one argument of a step goes.
#[derive(Debug, Clone, Copy)]
pub(super) enum Target {
    /// The output of the node with this index.
    Node(usize),
    /// The trainable parameter with this index in the model's parameters.
    Param(usize),
}

/// One node's backward step and where its arguments' gradients go.
struct Step {
    node: usize,
    targets: Vec<Target>,
    backward: Backward,
}

/// The backward steps of one forward pass in train mode, in node order.
pub struct Tape {
    steps: Vec<Step>,
    nodes: usize,
    params: usize,
}

impl Tape {
    /// An empty tape for a network of `nodes` nodes and `params` parameters.
    pub(super) fn new(nodes: usize, params: usize) -> Self {
        Tape {
            steps: Vec::with_capacity(nodes),
            nodes,
            params,
        }
    }

    /// Records node `node`'s backward step; its results go to `targets`, in order.
    pub(super) fn push(&mut self, node: usize, targets: Vec<Target>, backward: Backward) {
        self.steps.push(Step {
            node,
            targets,
            backward,
        });
    }

    /// Runs the steps in reverse from `output_grad`, the gradient of the last
    /// node's output; returns each parameter's gradient (`None` where no
    /// gradient reached it).
    pub fn backward(self, output_grad: Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut nodes: Vec<Option<Tensor>> = vec![None; self.nodes];
        let mut params: Vec<Option<Tensor>> = vec![None; self.params];
        nodes[self.nodes - 1] = Some(output_grad);
        for step in self.steps.iter().rev() {
            // A node whose output reaches the loss by no path has no gradient.
            let Some(dy) = nodes[step.node].take() else {
                continue;
            };
            let grads = (step.backward)(&dy)?;
            for (target, grad) in step.targets.iter().zip(grads) {
                let Some(grad) = grad else { continue };
                let slot = match *target {
                    Target::Node(j) => &mut nodes[j],
                    Target::Param(k) => &mut params[k],
                };
                *slot = Some(match slot.take() {
                    None => grad,
                    Some(sum) => (sum + grad)?,
                });
            }
        }
        Ok(params)
    }
}

/// A step that hands the output gradient to each of `inputs` arguments
/// unchanged (a sum's inputs, or a node that passes its input on).
pub(super) fn pass_on(inputs: usize) -> Backward {
    Box::new(move |dy| Ok(vec![Some(dy.clone()); inputs]))
}

/// A step for any candle op: `f` of `inputs` is computed again in a small
/// autograd graph of its own, and candle's backward gives the inputs'
/// gradients. For rare ops (global max pooling), so each needs no
/// hand-written gradient.
pub(super) fn local(
    inputs: Vec<Tensor>,
    f: impl Fn(&[Tensor]) -> anyhow::Result<Tensor> + Send + Sync + 'static,
) -> Backward {
    Box::new(move |dy| {
        let vars = inputs
            .iter()
            .map(Var::from_tensor)
            .collect::<Result<Vec<_>>>()?;
        let args: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let y = f(&args).map_err(|e| candle_core::Error::Msg(format!("{e:#}")))?;
        let grads = (y * dy)?.sum_all()?.backward()?;
        Ok(vars
            .iter()
            .map(|v| grads.get(v.as_tensor()).cloned())
            .collect())
    })
}
