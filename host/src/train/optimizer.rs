//! Adam, AdamW and SGD (with momentum and Nesterov) over a model's parameters:
//! a fused in-place update per parameter on the CPU, candle tensor ops elsewhere.

use super::config::{OptimizerKind, TrainConfig};
use anyhow::Result;
use candle_core::{Tensor, Var};
use nas_kernels::optim::{update, Rule};

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
    /// The fused CPU path's moment buffers, per parameter.
    fused: Vec<[Vec<f32>; 2]>,
    /// Whether CPU parameters take the fused path (tests compare both paths).
    use_fused: bool,
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
            fused: vec![[Vec::new(), Vec::new()]; count],
            use_fused: true,
        }
    }

    /// The same optimiser computing with candle tensor ops on every device.
    #[cfg(test)]
    fn with_tensor_ops(mut self) -> Self {
        self.use_fused = false;
        self
    }

    fn rule(&self, lr: f64) -> Rule {
        match self.kind {
            OptimizerKind::Adam | OptimizerKind::Adamw => Rule::Adam {
                lr: lr as f32,
                beta1: BETA1 as f32,
                beta2: BETA2 as f32,
                eps: EPS as f32,
                correction1: (1.0 - BETA1.powi(self.step)) as f32,
                correction2: (1.0 - BETA2.powi(self.step)) as f32,
                weight_decay: self.weight_decay as f32,
                decoupled: self.kind == OptimizerKind::Adamw,
            },
            OptimizerKind::Sgd => Rule::Sgd {
                lr: lr as f32,
                momentum: self.momentum as f32,
                nesterov: self.nesterov,
                weight_decay: self.weight_decay as f32,
                first: self.step == 1,
            },
        }
    }

    /// The optimiser's state as named tensors (moment buffers of each
    /// parameter that has them) and its step count, for a checkpoint.
    pub fn state(&self, params: &[&Var]) -> Result<(i32, Vec<(String, Tensor)>)> {
        let mut tensors = Vec::new();
        for (i, var) in params.iter().enumerate() {
            let (m, v) = &self.state[i];
            for (slot, (fused, tensor)) in
                ["m", "v"].into_iter().zip(self.fused[i].iter().zip([m, v]))
            {
                let saved = match tensor {
                    Some(t) => t.clone(),
                    None if !fused.is_empty() => {
                        Tensor::from_slice(fused, var.dims(), var.device())?
                    }
                    None => continue,
                };
                tensors.push((format!("optimizer.{i}.{slot}"), saved));
            }
        }
        Ok((self.step, tensors))
    }

    /// Restores what [`Optimizer::state`] saved, for the same parameters.
    pub fn restore(
        &mut self,
        params: &[&Var],
        step: i32,
        saved: &std::collections::HashMap<String, Tensor>,
    ) -> Result<()> {
        self.step = step;
        for (i, var) in params.iter().enumerate() {
            for (k, slot) in ["m", "v"].into_iter().enumerate() {
                let Some(t) = saved.get(&format!("optimizer.{i}.{slot}")) else {
                    continue;
                };
                if t.dims() != var.dims() {
                    anyhow::bail!(
                        "optimizer state of parameter {i} has shape {:?}, the parameter {:?}",
                        t.dims(),
                        var.dims()
                    );
                }
                if self.use_fused && var.device().is_cpu() {
                    self.fused[i][k] = t.flatten_all()?.to_vec1()?;
                } else if k == 0 {
                    self.state[i].0 = Some(t.clone());
                } else {
                    self.state[i].1 = Some(t.clone());
                }
            }
        }
        Ok(())
    }

    /// Applies one update with learning rate `lr`, from `grads[i]`, the
    /// gradient of `params[i]`; parameters without a gradient are left alone.
    pub fn step(&mut self, params: &[&Var], grads: &[Option<Tensor>], lr: f64) -> Result<()> {
        self.step += 1;
        let rule = self.rule(lr);
        for (i, (var, grad)) in params.iter().zip(grads).enumerate() {
            let Some(grad) = grad else {
                continue;
            };
            if self.use_fused && var.device().is_cpu() {
                update(var.as_tensor(), grad, rule, &mut self.fused[i])?;
                continue;
            }
            let (m, v) = &mut self.state[i];
            // Values only: a parameter's gradient from candle's backward
            // still refers to the step's activations (the gradient of a
            // weight is computed from its input), and moments built on it
            // would keep every step's graph alive, each step's moment
            // holding the one before (a CUDA run of a residual network ran
            // out of an H200's 141 GB within an epoch).
            let p = &var.as_tensor().detach();
            let mut g = grad.detach();
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

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Tensor};

    /// Five steps of `config` on a small quadratic, fused or with tensor ops.
    fn run(config: &TrainConfig, fused: bool) -> Vec<f32> {
        let var = Var::from_tensor(&Tensor::new(&[0.5f32, -1.5, 2.0, 0.1], &Device::Cpu).unwrap())
            .unwrap();
        let target = Tensor::new(&[1.0f32, 1.0, -1.0, 0.0], &Device::Cpu).unwrap();
        let mut opt = Optimizer::new(config, 1);
        if !fused {
            opt = opt.with_tensor_ops();
        }
        for _ in 0..5 {
            let loss = var
                .as_tensor()
                .sub(&target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap();
            let grad = loss.backward().unwrap().get(var.as_tensor()).cloned();
            opt.step(&[&var], &[grad], config.learning_rate).unwrap();
        }
        var.as_tensor().to_vec1().unwrap()
    }

    /// The tensor-op path keeps values, not graphs: after steps whose
    /// gradients refer to their activations, no moment refers back.
    #[test]
    fn moments_hold_no_autograd_graph() {
        let device = Device::Cpu;
        let w1 = Var::from_tensor(&Tensor::new(&[[0.5f32, -1.0], [0.3, 0.8]], &device).unwrap())
            .unwrap();
        let w2 = Var::from_tensor(&Tensor::new(&[[1.0f32], [-0.5]], &device).unwrap()).unwrap();
        let x = Tensor::new(&[[1.0f32, 2.0], [-1.0, 0.5]], &device).unwrap();
        for config in [
            TrainConfig::default(),
            TrainConfig {
                optimizer: OptimizerKind::Sgd,
                momentum: 0.9,
                weight_decay: 0.01,
                ..TrainConfig::default()
            },
        ] {
            let mut opt = Optimizer::new(&config, 2).with_tensor_ops();
            for _ in 0..3 {
                let hidden = x.matmul(w1.as_tensor()).unwrap().relu().unwrap();
                let loss = hidden.matmul(w2.as_tensor()).unwrap().sum_all().unwrap();
                let grads = loss.backward().unwrap();
                let grads: Vec<_> = [&w1, &w2]
                    .iter()
                    .map(|w| grads.get(w.as_tensor()).cloned())
                    .collect();
                assert!(
                    grads[1].as_ref().unwrap().track_op(),
                    "w2's gradient refers to the hidden activations, as candle leaves it"
                );
                opt.step(&[&w1, &w2], &grads, 0.01).unwrap();
            }
            for (m, v) in &opt.state {
                assert!(
                    m.iter().chain(v).all(|t| !t.track_op()),
                    "{:?}",
                    config.optimizer
                );
            }
        }
    }

    #[test]
    fn fused_updates_match_tensor_op_updates() {
        let base = TrainConfig {
            learning_rate: 0.05,
            ..TrainConfig::default()
        };
        for config in [
            TrainConfig {
                optimizer: OptimizerKind::Adam,
                weight_decay: 0.1,
                ..base.clone()
            },
            TrainConfig {
                optimizer: OptimizerKind::Adamw,
                weight_decay: 0.1,
                ..base.clone()
            },
            TrainConfig {
                optimizer: OptimizerKind::Sgd,
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.01,
                ..base.clone()
            },
            TrainConfig {
                optimizer: OptimizerKind::Sgd,
                momentum: 0.0,
                ..base.clone()
            },
        ] {
            let (a, b) = (run(&config, true), run(&config, false));
            for (x, y) in a.iter().zip(&b) {
                assert!(
                    (x - y).abs() < 1e-5,
                    "{:?}: fused {a:?} vs tensor ops {b:?}",
                    config.optimizer
                );
            }
            assert_ne!(a, vec![0.5, -1.5, 2.0, 0.1], "the parameters moved");
        }
    }
}
