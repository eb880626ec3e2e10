//! The CPU kernels against candle's own ops, one op at a time, on the
//! seed-template's layer shapes: convolution forward, convolution forward
//! and backward, max pooling forward and backward.
//!
//! Run: `cargo bench -p nas-bench --bench kernels`.

use anyhow::{Context, Result};
use candle_core::{Device, Tensor, Var};
use nas_kernels as kernels;
use std::time::Instant;

/// Median milliseconds of `f` over `repeats` runs, after one warm-up run.
fn median_ms<T>(repeats: usize, mut f: impl FnMut() -> candle_core::Result<T>) -> Result<f64> {
    f()?;
    let mut t: Vec<f64> = (0..repeats)
        .map(|_| {
            let s = Instant::now();
            f().map(|_| s.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<candle_core::Result<_>>()?;
    t.sort_by(f64::total_cmp);
    Ok(t[repeats / 2])
}

fn main() -> Result<()> {
    // As `train` does, for both columns: without it, freed activations go
    // back to the kernel and are page-faulted in again at every step.
    nas_host::train::keep_freed_memory();
    // As `nas-host` does, for both columns: candle's element-wise ops on the calling thread.
    nas_host::train::serial_candle_elementwise();
    let dev = Device::Cpu;
    println!(
        "{:<44} {:>10} {:>10}",
        "op (batch x channels x size, filters)", "ours ms", "candle ms"
    );
    for &(n, c, s, f) in &[
        (32, 1, 28, 32),
        (32, 32, 14, 64),
        (128, 32, 14, 64),
        (500, 32, 14, 64),
    ] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, s, s), &dev)?)?;
        let w = Var::from_tensor(&Tensor::randn(0f32, 0.1, (f, c, 3, 3), &dev)?)?;
        let same = kernels::Conv {
            pad: 1,
            stride: 1,
            dilation: 1,
            groups: 1,
            relu: false,
            pool: None,
        };
        let fwd_ours = median_ms(9, || {
            kernels::conv2d(&x, &w, None, same, kernels::Record::Graph)
        })?;
        let fwd_candle = median_ms(9, || x.conv2d(&w, 1, 1, 1, 1))?;
        println!(
            "{:<44} {fwd_ours:>10.2} {fwd_candle:>10.2}",
            format!("conv3x3 forward {n}x{c}x{s}, {f}")
        );
        let both_ours = median_ms(5, || {
            kernels::conv2d(&x, &w, None, same, kernels::Record::Graph)?
                .sum_all()?
                .backward()
        })?;
        let both_candle = median_ms(5, || x.conv2d(&w, 1, 1, 1, 1)?.sum_all()?.backward())?;
        println!(
            "{:<44} {both_ours:>10.2} {both_candle:>10.2}",
            format!("conv3x3 forward+backward {n}x{c}x{s}, {f}")
        );
    }
    for &(n, c, s) in &[(32, 32, 28), (128, 64, 14), (500, 32, 28)] {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (n, c, s, s), &dev)?)?;
        let ours = median_ms(9, || {
            kernels::max_pool2d(
                &x,
                kernels::PoolWindow::new(2, 2, 0),
                kernels::Record::Graph,
            )
        })?;
        let candle = median_ms(9, || x.max_pool2d(2))?;
        println!(
            "{:<44} {ours:>10.2} {candle:>10.2}",
            format!("max-pool 2 forward {n}x{c}x{s}")
        );
        let ours = median_ms(9, || {
            kernels::max_pool2d(
                &x,
                kernels::PoolWindow::new(2, 2, 0),
                kernels::Record::Graph,
            )?
            .sum_all()?
            .backward()
        })?;
        let candle = median_ms(9, || x.max_pool2d(2)?.sum_all()?.backward())?;
        println!(
            "{:<44} {ours:>10.2} {candle:>10.2}",
            format!("max-pool 2 forward+backward {n}x{c}x{s}")
        );
    }
    train_step_phases(&dev)
}

/// Where one training step of the seed-template network (flatten, 64 units)
/// spends its time, at batch 32 and 128: forward with loss, backward, optimiser.
fn train_step_phases(dev: &Device) -> Result<()> {
    use nas_host::ir::*;
    use nas_host::network::Model;
    use nas_host::train::{Optimizer, TrainConfig};
    let conv = |filters| {
        Op::Conv2d(Conv2d {
            filters,
            kernel: 3,
            stride: 1,
            padding: Padding::Same,
            dilation: 1,
            groups: 1,
            bias: true,
        })
    };
    let pool = || {
        Op::MaxPool(Pool {
            kernel: 2,
            stride: 2,
            padding: Padding::Valid,
        })
    };
    let relu = || Op::Activation(Activation::Relu);
    let ops = [
        conv(32),
        relu(),
        pool(),
        conv(64),
        relu(),
        pool(),
        Op::Flatten,
        Op::Dense(64),
        relu(),
        Op::Dropout(0.0),
        Op::Dense(10),
    ];
    let mut nodes = vec![Node {
        op: Op::Input,
        inputs: vec![],
    }];
    nodes.extend(ops.into_iter().enumerate().map(|(i, op)| Node {
        op,
        inputs: vec![i as u32],
    }));
    let network = Network {
        nodes,
        key: "seed-template".into(),
    };
    let task = Task {
        channels: 1,
        height: 28,
        width: 28,
        num_classes: 10,
    };
    println!("\ntraining step of the seed-template network (median of 30 steps, ms)");
    println!(
        "{:>6} {:>10} {:>10} {:>10} {:>10}",
        "batch", "forward", "backward", "optimizer", "total"
    );
    for batch in [32usize, 128] {
        let model = Model::new(&network, &task, 1, dev)?;
        let params: Vec<&Var> = model.params().collect();
        let mut opt = Optimizer::new(&TrainConfig::default(), params.len());
        let x = Tensor::randn(0f32, 1.0, (batch, 1, 28, 28), dev)?;
        let y = Tensor::from_vec(
            (0..batch as u32).map(|i| i % 10).collect::<Vec<u32>>(),
            batch,
            dev,
        )?;
        let mut phases = vec![[0f64; 3]; 30];
        for step in 0..31 {
            // As the trainer runs a step: forward with a tape, then its backward pass.
            let t0 = Instant::now();
            let (logits, tape) = model.forward_taped(&x, None)?;
            candle_nn::loss::cross_entropy(&logits, &y)?.to_scalar::<f32>()?;
            let t1 = Instant::now();
            let tape = tape.context("the CPU gives a tape")?;
            let grads = tape.backward(nas_host::train::cross_entropy_grad(&logits, &y)?)?;
            let t2 = Instant::now();
            opt.step(&params, &grads, 1e-3)?;
            let t3 = Instant::now();
            if step > 0 {
                phases[step - 1] = [
                    (t1 - t0).as_secs_f64(),
                    (t2 - t1).as_secs_f64(),
                    (t3 - t2).as_secs_f64(),
                ];
            }
        }
        let median = |k: usize| {
            let mut v: Vec<f64> = phases.iter().map(|p| p[k] * 1e3).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        let (f, b, o) = (median(0), median(1), median(2));
        println!(
            "{batch:>6} {f:>10.2} {b:>10.2} {o:>10.2} {:>10.2}",
            f + b + o
        );
    }
    Ok(())
}
