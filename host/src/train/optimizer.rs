//! Adam, AdamW and SGD (with momentum and Nesterov) over a model's parameters.

use super::config::{OptimizerKind, TrainConfig};
use anyhow::Result;
use candle_core::backprop::GradStore;
use candle_core::{Tensor, Var};

const BETA1: f64 = 0.9;
const BETA2: f64 = 0.999;
const EPS: f64 = 1e-8;

/// Optimiser state for a fixed list of parameters.
pub struct Optimizer {
    kind: OptimizerKind,
    weight_decay: f64,
    momentum: f64,
    nesterov: bool,
    step: i32,
    /// Per parameter: first moment (or momentum buffer) and second moment.
    state: Vec<(Option<Tensor>, Option<Tensor>)>,
}

impl Optimizer {
    /// An optimiser for `count` parameters.
    pub fn new(config: &TrainConfig, count: usize) -> Self {
        Optimizer {
            kind: config.optimizer,
            weight_decay: config.weight_decay,
            momentum: config.momentum,
            nesterov: config.nesterov,
            step: 0,
            state: vec![(None, None); count],
        }
    }

    /// Applies one update with learning rate `lr`; parameters without a
    /// gradient are left alone.
    pub fn step(&mut self, params: &[&Var], grads: &GradStore, lr: f64) -> Result<()> {
        self.step += 1;
        for (var, (m, v)) in params.iter().zip(self.state.iter_mut()) {
            let Some(grad) = grads.get(var.as_tensor()) else {
                continue;
            };
            let p = var.as_tensor();
            let mut g = grad.clone();
            if self.weight_decay > 0.0 && self.kind != OptimizerKind::Adamw {
                g = (g + (p * self.weight_decay)?)?;
            }
            let update = match self.kind {
                OptimizerKind::Adam | OptimizerKind::Adamw => {
                    let m_new = match m.take() {
                        Some(m) => ((m * BETA1)? + (&g * (1.0 - BETA1))?)?,
                        None => (&g * (1.0 - BETA1))?,
                    };
                    let v_new = match v.take() {
                        Some(v) => ((v * BETA2)? + (g.sqr()? * (1.0 - BETA2))?)?,
                        None => (g.sqr()? * (1.0 - BETA2))?,
                    };
                    let m_hat = (&m_new / (1.0 - BETA1.powi(self.step)))?;
                    let v_hat = (&v_new / (1.0 - BETA2.powi(self.step)))?;
                    *m = Some(m_new);
                    *v = Some(v_new);
                    let mut u = (m_hat / (v_hat.sqrt()? + EPS)?)?;
                    if self.kind == OptimizerKind::Adamw && self.weight_decay > 0.0 {
                        u = (u + (p * self.weight_decay)?)?;
                    }
                    u
                }
                OptimizerKind::Sgd if self.momentum > 0.0 => {
                    let buf = match m.take() {
                        Some(b) => ((b * self.momentum)? + &g)?,
                        None => g.clone(),
                    };
                    let u = if self.nesterov {
                        (&g + (&buf * self.momentum)?)?
                    } else {
                        buf.clone()
                    };
                    *m = Some(buf);
                    u
                }
                OptimizerKind::Sgd => g,
            };
            var.set(&(p - (update * lr)?)?)?;
        }
        Ok(())
    }
}
