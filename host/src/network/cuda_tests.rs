//! The CUDA build against the CPU: on a GPU the model runs candle's own ops
//! instead of the CPU kernels, and both must compute the same network.
//! Run on a machine with a GPU: `cargo test --release --features cuda cuda`.

use super::portable_pool::pool;
use super::tests::{branchy, conv, node, pool2, seed_template, MNIST};
use super::Model;
use crate::ir::*;
use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var, D};
use nas_kernels::PoolWindow;
use rand::SeedableRng as _;

/// CUDA device 0, which these tests need.
fn gpu() -> Device {
    Device::new_cuda(0).expect("these tests need CUDA device 0")
}

/// How far `b` is from `a`, relative to `a`'s largest magnitude or 0.01,
/// whichever is larger: the gradient of a bias right before a batch-norm is
/// zero up to rounding, which differs between devices.
fn relative_error(a: &Tensor, b: &Tensor) -> f32 {
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (a, b) = (values(a), values(b));
    assert_eq!(a.len(), b.len(), "sizes");
    let scale = a.iter().fold(0.01f32, |m, v| m.max(v.abs()));
    // A NaN anywhere makes the error NaN (`f32::max` would skip it).
    let worst = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0f32, |m, d| if d > m || d.is_nan() { d } else { m });
    worst / scale
}

/// Checks every pair (name, CPU value, GPU value) and names all that differ
/// by more than 1e-3 (summation order differs between devices), after the
/// failures `bad` found before.
fn assert_all_close(pairs: &[(String, Tensor, Tensor)], mut bad: Vec<String>) {
    bad.extend(
        pairs
            .iter()
            .map(|(what, a, b)| (what, relative_error(a, b)))
            .filter(|(_, e)| e.is_nan() || *e > 1e-3)
            .map(|(what, e)| format!("{what}: relative error {e}")),
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The gradients of a fixed weighted sum of `y` (weights sin 0, sin 1, ...).
fn grads_of(y: &Tensor) -> GradStore {
    let weights = Tensor::arange(0f32, y.elem_count() as f32, y.device())
        .unwrap()
        .reshape(y.dims())
        .unwrap()
        .sin()
        .unwrap();
    (y * &weights)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap()
}

/// The ops that the model uses off the CPU, each on both devices, with
/// the gradients of a weighted sum of the output.
#[test]
fn candle_ops_on_cuda_match_the_cpu() {
    let gpu = gpu();
    // Name, input shape, (filters, channels, kernel), padding and stride.
    let convs = [
        ("conv 1->32 k3", (4, 1, 28, 28), (32, 1, 3), 1, 1),
        ("conv 32->64 k3", (4, 32, 14, 14), (64, 32, 3), 1, 1),
        ("conv 8->8 k5", (4, 8, 28, 28), (8, 8, 5), 2, 1),
        ("conv 8->8 k3 s2", (4, 8, 12, 12), (8, 8, 3), 1, 2),
    ];
    let mut pairs = Vec::new();
    for (name, xs, (f, c, k), pad, stride) in convs {
        let x = Tensor::randn(0f32, 1.0, xs, &Device::Cpu).unwrap();
        let w = Tensor::randn(0f32, 0.3, (f, c, k, k), &Device::Cpu).unwrap();
        let run = |dev: &Device| {
            let (x, w) = (
                Var::from_tensor(&x.to_device(dev).unwrap()).unwrap(),
                Var::from_tensor(&w.to_device(dev).unwrap()).unwrap(),
            );
            let y = x.conv2d(&w, pad, stride, 1, 1).unwrap();
            let g = grads_of(&y);
            let gx = g.get(&x).unwrap().clone();
            let gw = g.get(&w).unwrap().clone();
            (y, gx, gw)
        };
        let (a, b) = (run(&Device::Cpu), run(&gpu));
        pairs.push((format!("{name} forward"), a.0, b.0));
        pairs.push((format!("{name} input gradient"), a.1, b.1));
        pairs.push((format!("{name} weight gradient"), a.2, b.2));
    }
    let x = Tensor::randn(0f32, 1.0, (4, 8, 12, 12), &Device::Cpu).unwrap();
    type Unary = fn(&Tensor) -> anyhow::Result<Tensor>;
    const WINDOW: PoolWindow = PoolWindow {
        kernel: 3,
        stride: 2,
        pad: 1,
    };
    let unary: [(&str, Unary); 5] = [
        ("gathered max pool", |x| pool(x, WINDOW, true)),
        ("gathered average pool", |x| pool(x, WINDOW, false)),
        ("global average", |x| {
            Ok(x.mean(D::Minus1)?.mean(D::Minus1)?)
        }),
        ("relu", |x| Ok(x.relu()?)),
        ("log-softmax", |x| {
            Ok(candle_nn::ops::log_softmax(&x.flatten_from(1)?, D::Minus1)?)
        }),
    ];
    for (name, op) in unary {
        let run = |dev: &Device| {
            let x = Var::from_tensor(&x.to_device(dev).unwrap()).unwrap();
            let y = op(&x).unwrap();
            let g = grads_of(&y);
            (y, g.get(&x).unwrap().clone())
        };
        let (a, b) = (run(&Device::Cpu), run(&gpu));
        pairs.push((format!("{name} forward"), a.0, b.0));
        pairs.push((format!("{name} gradient"), a.1, b.1));
    }
    // The loss: cross-entropy over labels picked by index_select, as the trainer does.
    let labels: Vec<u32> = (0..16_000u32).map(|i| (i * 7 + i / 3) % 10).collect();
    let picks: Vec<u32> = (0..128u32).map(|i| (i * 997) % 16_000).collect();
    let logits = Tensor::randn(0f32, 2.0, (128, 10), &Device::Cpu).unwrap();
    let loss = |dev: &Device| {
        let labels = Tensor::from_slice(&labels, 16_000, dev).unwrap();
        let idx = Tensor::from_slice(&picks, 128, dev).unwrap();
        let y = labels.index_select(&idx, 0).unwrap();
        let logits = logits.to_device(dev).unwrap();
        let loss = candle_nn::loss::cross_entropy(&logits, &y).unwrap();
        (y.to_dtype(candle_core::DType::F32).unwrap(), loss)
    };
    let (a, b) = (loss(&Device::Cpu), loss(&gpu));
    pairs.push(("labels by index_select".into(), a.0, b.0));
    pairs.push(("cross-entropy".into(), a.1, b.1));
    assert_all_close(&pairs, Vec::new());
}

/// Whole networks: outputs in train and eval mode (after the batch-norm
/// running statistics moved) and every parameter's gradient.
#[test]
fn models_on_cuda_match_the_cpu_kernels() {
    let gpu = gpu();
    let residual = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(8, 5), &[0]),
            node(Op::BatchNorm, &[1]),
            node(Op::Activation(Activation::Relu), &[2]),
            node(conv(8, 5), &[3]),
            node(Op::BatchNorm, &[4]),
            node(Op::Add, &[3, 5]),
            node(Op::Activation(Activation::Relu), &[6]),
            node(pool2(), &[7]),
            node(Op::GlobalAvgPool, &[8]),
            node(Op::Dense(10), &[9]),
        ],
        key: "residual".into(),
    };
    let (mut pairs, mut failed) = (Vec::new(), Vec::new());
    for (net, task) in [
        (seed_template(false, 64, 0.3), MNIST),
        (residual, MNIST),
        branchy(),
    ] {
        let shape = (
            4,
            task.channels as usize,
            task.height as usize,
            task.width as usize,
        );
        let x = Tensor::randn(0f32, 1.0, shape, &Device::Cpu).unwrap();
        let run = |dev: &Device| -> anyhow::Result<_> {
            let m = Model::new(&net, &task, 3, dev)?;
            let x = x.to_device(dev)?;
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
            let y = m.forward(&x, true, Some(&mut rng))?;
            let grads = y.sqr()?.sum_all()?.backward()?;
            let grads: Vec<Tensor> = m.params().map(|p| grads.get(p).unwrap().clone()).collect();
            Ok((y, grads, m.forward(&x, false, None)?))
        };
        let what = &net.key;
        let (cpu, cuda) = match (run(&Device::Cpu), run(&gpu)) {
            (Ok(cpu), Ok(cuda)) => (cpu, cuda),
            (cpu, cuda) => {
                failed.push(format!(
                    "{what}: cpu {:?}, cuda {:?}",
                    cpu.err(),
                    cuda.err()
                ));
                continue;
            }
        };
        pairs.push((format!("{what}: train-mode output"), cpu.0, cuda.0));
        pairs.push((format!("{what}: eval-mode output"), cpu.2, cuda.2));
        for (k, (a, b)) in cpu.1.into_iter().zip(cuda.1).enumerate() {
            pairs.push((format!("{what}: gradient of parameter {k}"), a, b));
        }
    }
    assert_all_close(&pairs, failed);
}
