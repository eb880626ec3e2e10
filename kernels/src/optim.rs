//! One fused, in-place optimiser update per parameter: Adam, AdamW and SGD
//! (momentum, Nesterov) read the gradient and write the parameter and its
//! moment buffers in a single pass, with no temporary tensors.

use candle_core::{CpuStorage, InplaceOp2, Layout, Result, Tensor};
use std::cell::RefCell;

/// The update rule and its constants for this step.
#[derive(Debug, Clone, Copy)]
pub enum Rule {
    /// Adam (`decoupled = false`: weight decay added to the gradient) or AdamW.
    Adam {
        /// Learning rate.
        lr: f32,
        /// First-moment decay.
        beta1: f32,
        /// Second-moment decay.
        beta2: f32,
        /// Denominator guard.
        eps: f32,
        /// Bias corrections `1 - beta^t`.
        correction1: f32,
        /// Bias correction of the second moment.
        correction2: f32,
        /// Weight decay.
        weight_decay: f32,
        /// AdamW's decoupled decay.
        decoupled: bool,
    },
    /// SGD with optional momentum and Nesterov; weight decay added to the gradient.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum (0: none).
        momentum: f32,
        /// Nesterov momentum.
        nesterov: bool,
        /// Weight decay.
        weight_decay: f32,
        /// Whether this is the first step (the momentum buffer starts as the gradient).
        first: bool,
    },
}

/// Applies `rule` to `param` in place, with `grad` and the parameter's
/// moment buffers (`state[0]` first moment or momentum, `state[1]` second
/// moment), each as long as the parameter.
pub fn update(param: &Tensor, grad: &Tensor, rule: Rule, state: &mut [Vec<f32>; 2]) -> Result<()> {
    let grad = grad.contiguous()?;
    param.inplace_op2(
        &grad,
        &Update {
            rule,
            state: RefCell::new(state),
        },
    )
}

struct Update<'a> {
    rule: Rule,
    state: RefCell<&'a mut [Vec<f32>; 2]>,
}

impl InplaceOp2 for Update<'_> {
    fn name(&self) -> &'static str {
        "nas-optimizer-update"
    }

    fn cpu_fwd(
        &self,
        ps: &mut CpuStorage,
        pl: &Layout,
        gs: &CpuStorage,
        gl: &Layout,
    ) -> Result<()> {
        let (Some((p0, p1)), Some((g0, g1))) = (pl.contiguous_offsets(), gl.contiguous_offsets())
        else {
            candle_core::bail!("optimizer update: parameters and gradients must be contiguous");
        };
        let g = &gs.as_slice::<f32>()?[g0..g1];
        let CpuStorage::F32(p) = ps else {
            candle_core::bail!("optimizer update: parameters must be f32")
        };
        let p = &mut p[p0..p1];
        let mut state = self.state.borrow_mut();
        let [m, v] = &mut **state;
        m.resize(p.len(), 0.0);
        match self.rule {
            Rule::Adam {
                lr,
                beta1,
                beta2,
                eps,
                correction1,
                correction2,
                weight_decay,
                decoupled,
            } => {
                v.resize(p.len(), 0.0);
                for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                    let g = if decoupled { g } else { g + weight_decay * *p };
                    *m = beta1 * *m + (1.0 - beta1) * g;
                    *v = beta2 * *v + (1.0 - beta2) * g * g;
                    let mut step = (*m / correction1) / ((*v / correction2).sqrt() + eps);
                    if decoupled {
                        step += weight_decay * *p;
                    }
                    *p -= lr * step;
                }
            }
            Rule::Sgd {
                lr,
                momentum,
                nesterov,
                weight_decay,
                first,
            } => {
                for ((p, &g), buf) in p.iter_mut().zip(g).zip(m.iter_mut()) {
                    let g = g + weight_decay * *p;
                    let step = if momentum > 0.0 {
                        *buf = if first { g } else { momentum * *buf + g };
                        if nesterov {
                            g + momentum * *buf
                        } else {
                            *buf
                        }
                    } else {
                        g
                    };
                    *p -= lr * step;
                }
            }
        }
        Ok(())
    }
}
