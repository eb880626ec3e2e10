//! The kernels against candle's reference ops and against finite differences,
//! forward and both gradients, over a spread of shapes.

use super::conv::im2col_only;
use super::*;
use candle_core::{Device, Tensor, Var};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rng: &mut ChaCha8Rng, dims: &[usize]) -> Tensor {
    let n: usize = dims.iter().product();
    let data: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    Tensor::from_vec(data, dims, &Device::Cpu).unwrap()
}

/// A convolution's parameters, without a fused ReLU or pool.
fn conv(pad: usize, stride: usize, dilation: usize, groups: usize) -> Conv {
    Conv {
        pad,
        stride,
        dilation,
        groups,
        relu: false,
        pool: None,
    }
}

fn values(t: &Tensor) -> Vec<f32> {
    t.flatten_all().unwrap().to_vec1().unwrap()
}

fn assert_close(a: &Tensor, b: &Tensor, tol: f32, what: &str) {
    assert_eq!(a.dims(), b.dims(), "{what}: shapes");
    for (i, (x, y)) in values(a).iter().zip(values(b)).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}: element {i}: {x} vs {y}"
        );
    }
}

/// Backpropagates the same random cotangent through `ours` and `reference`
/// and checks that each variable's gradient agrees.
fn assert_same_gradients(
    rng: &mut ChaCha8Rng,
    ours: &Tensor,
    reference: &Tensor,
    vars: &[(&Var, &str)],
    tol: f32,
    what: &str,
) {
    let r = random(rng, ours.dims());
    let g_ours = ours.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
    let g_ref = reference
        .mul(&r)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    for (var, name) in vars {
        assert_close(
            g_ours.get(var).unwrap(),
            g_ref.get(var).unwrap(),
            tol,
            &format!("{what} {name} gradient"),
        );
    }
}

/// (batch, channels, size, filters, kernel, stride, pad, dilation, groups).
type Case = (
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
    usize,
);

const CASES: &[Case] = &[
    (2, 1, 9, 4, 3, 1, 1, 1, 1),
    (3, 3, 8, 6, 1, 1, 0, 1, 1),
    (2, 4, 11, 4, 5, 2, 2, 1, 2),
    (1, 2, 12, 3, 7, 1, 3, 1, 1),
    (2, 4, 10, 8, 3, 2, 0, 2, 4),
    (2, 2, 7, 2, 3, 3, 1, 1, 1),
    (9, 3, 6, 5, 3, 1, 1, 2, 1),
    (2, 6, 5, 6, 1, 2, 0, 1, 3),
    // Padding wider than the kernel's reach: whole rows and columns of taps fall outside.
    (2, 2, 4, 3, 3, 2, 3, 1, 1),
    (1, 3, 9, 2, 5, 3, 2, 2, 1),
    (2, 2, 6, 4, 1, 1, 1, 1, 2),
    // `same` padding at stride 1 (one span per tap in im2col and col2im), with dilation too.
    (2, 2, 8, 3, 5, 1, 2, 1, 1),
    (2, 3, 7, 4, 3, 1, 2, 2, 1),
    // ... with groups, and depthwise (one channel per group: the direct tiles' narrowest).
    (2, 4, 9, 6, 3, 1, 1, 1, 2),
    (3, 5, 6, 5, 5, 1, 2, 1, 5),
];

/// Every case on both paths: direct tiles (where the CPU has AVX-512 and the
/// convolution keeps its size) and im2col.
#[test]
fn conv2d_matches_candle_forward_and_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for &(n, c, s, f, k, stride, pad, dil, groups) in CASES {
        for im2col in [false, true] {
            let what = format!(
                "n{n} c{c} s{s} f{f} k{k} stride{stride} pad{pad} dil{dil} g{groups} im2col {im2col}"
            );
            let x = Var::from_tensor(&random(&mut rng, &[n, c, s, s])).unwrap();
            let w = Var::from_tensor(&random(&mut rng, &[f, c / groups, k, k])).unwrap();
            let mut run = || {
                let ours =
                    conv2d(&x, &w, None, conv(pad, stride, dil, groups), Record::Graph).unwrap();
                let reference = x.conv2d(&w, pad, stride, dil, groups).unwrap();
                assert_close(&ours, &reference, 1e-4, &format!("{what} forward"));
                let vars = [(&w, "weight"), (&x, "input")];
                assert_same_gradients(&mut rng, &ours, &reference, &vars, 1e-4, &what);
            };
            if im2col {
                im2col_only(run);
            } else {
                run();
            }
        }
    }
}

/// Found by the `network` fuzz target: on a tall, narrow input a tap can
/// have output rows that read the image but no output column that does
/// (its first input column then lies past the image).
#[test]
fn conv2d_of_a_narrow_input_matches_candle() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    let x = Var::from_tensor(&random(&mut rng, &[2, 3, 28, 4])).unwrap();
    let w = Var::from_tensor(&random(&mut rng, &[13, 3, 6, 6])).unwrap();
    im2col_only(|| {
        let ours = conv2d(&x, &w, None, conv(5, 2, 2, 1), Record::Graph).unwrap();
        let reference = x.conv2d(&w, 5, 2, 2, 1).unwrap();
        assert_close(&ours, &reference, 1e-4, "forward");
        let vars = [(&w, "weight"), (&x, "input")];
        assert_same_gradients(&mut rng, &ours, &reference, &vars, 1e-4, "narrow");
    });
}

#[test]
fn conv2d_gradients_match_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(2);
    for &(n, c, s, f, k, stride, pad, dil, groups) in CASES {
        let x = random(&mut rng, &[n, c, s, s]);
        let w = random(&mut rng, &[f, c / groups, k, k]);
        let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        let y = conv2d(
            &xv,
            &wv,
            None,
            conv(pad, stride, dil, groups),
            Record::Graph,
        )
        .unwrap();
        let r = random(&mut rng, y.dims());
        let loss = |x: &Tensor, w: &Tensor| -> f64 {
            let y = conv2d(x, w, None, conv(pad, stride, dil, groups), Record::Graph).unwrap();
            values(&y)
                .iter()
                .zip(values(&r))
                .map(|(a, b)| *a as f64 * b as f64)
                .sum()
        };
        let grads = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let (gx, gw) = (
            values(grads.get(&xv).unwrap()),
            values(grads.get(&wv).unwrap()),
        );
        // The loss is linear in x and in w, so a central difference is exact up to rounding.
        let eps = 0.5f32;
        for (target, grad, is_x) in [(&x, &gx, true), (&w, &gw, false)] {
            let base = values(target);
            for i in (0..base.len()).step_by(base.len() / 7 + 1) {
                let shifted = |d: f32| {
                    let mut v = base.clone();
                    v[i] += d;
                    let t = Tensor::from_vec(v, target.dims(), &Device::Cpu).unwrap();
                    if is_x {
                        loss(&t, &w)
                    } else {
                        loss(&x, &t)
                    }
                };
                let fd = (shifted(eps) - shifted(-eps)) / (2.0 * eps as f64);
                assert!(
                    (fd - grad[i] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                    "{} gradient {i}: fd {fd} vs {}",
                    if is_x { "input" } else { "weight" },
                    grad[i]
                );
            }
        }
    }
}

#[test]
fn input_gradient_is_skipped_for_inputs_outside_the_graph() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let x = random(&mut rng, &[2, 1, 6, 6]);
    let w = Var::from_tensor(&random(&mut rng, &[2, 1, 3, 3])).unwrap();
    let grads = conv2d(&x, &w, None, conv(1, 1, 1, 1), Record::Graph)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(grads.get(&x).is_none());
    assert!(grads.get(&w).is_some());
}

#[test]
fn max_pool_matches_candle_forward_and_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(4);
    for &(n, c, s, k, stride, pad) in &[
        (2, 3, 8, 2, 2, 0),
        (1, 2, 7, 2, 2, 0),
        (1, 2, 9, 3, 2, 1),
        (2, 1, 7, 3, 1, 1),
        (3, 2, 10, 5, 3, 2),
    ] {
        let x = Var::from_tensor(&random(&mut rng, &[n, c, s, s])).unwrap();
        let ours = max_pool2d(&x, PoolWindow::new(k, stride, pad), Record::Graph).unwrap();
        let padded = if pad == 0 {
            x.as_tensor().clone()
        } else {
            let inf = |dims: &[usize]| Tensor::full(f32::NEG_INFINITY, dims, &Device::Cpu).unwrap();
            let t = Tensor::cat(
                &[&inf(&[n, c, pad, s]), x.as_tensor(), &inf(&[n, c, pad, s])],
                2,
            )
            .unwrap();
            Tensor::cat(
                &[
                    &inf(&[n, c, s + 2 * pad, pad]),
                    &t,
                    &inf(&[n, c, s + 2 * pad, pad]),
                ],
                3,
            )
            .unwrap()
        };
        assert_close(
            &ours,
            &padded.max_pool2d_with_stride(k, stride).unwrap(),
            0.0,
            "max-pool forward",
        );
        let r = random(&mut rng, ours.dims());
        let grads = ours.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let gx = values(grads.get(&x).unwrap());
        let base = values(&x);
        let loss = |v: Vec<f32>| -> f64 {
            let t = Tensor::from_vec(v, x.dims(), &Device::Cpu).unwrap();
            values(&max_pool2d(&t, PoolWindow::new(k, stride, pad), Record::Graph).unwrap())
                .iter()
                .zip(values(&r))
                .map(|(a, b)| *a as f64 * b as f64)
                .sum()
        };
        for i in 0..base.len() {
            let eps = 1e-3;
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += eps;
            down[i] -= eps;
            let fd = (loss(up) - loss(down)) / (2.0 * eps as f64);
            assert!(
                (fd - gx[i] as f64).abs() < 1e-2,
                "max-pool gradient {i}: fd {fd} vs {}",
                gx[i]
            );
        }
    }
}

#[test]
fn max_pool_routes_a_tied_window_to_its_first_maximum() {
    let x = Var::from_tensor(
        &Tensor::zeros((1, 1, 2, 2), candle_core::DType::F32, &Device::Cpu).unwrap(),
    )
    .unwrap();
    let y = max_pool2d(&x, PoolWindow::new(2, 2, 0), Record::Graph).unwrap();
    let grads = y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(grads.get(&x).unwrap()), vec![1.0, 0.0, 0.0, 0.0]);
}

#[test]
fn conv2d_bias_and_relu_match_candle_with_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let x = Var::from_tensor(&random(&mut rng, &[3, 2, 7, 7])).unwrap();
    let w = Var::from_tensor(&random(&mut rng, &[4, 2, 3, 3])).unwrap();
    let b = Var::from_tensor(&random(&mut rng, &[4])).unwrap();
    let ours = relu(
        &conv2d(&x, &w, Some(&b), conv(1, 2, 1, 1), Record::Graph).unwrap(),
        Record::Graph,
    )
    .unwrap();
    let reference = x
        .conv2d(&w, 1, 2, 1, 1)
        .unwrap()
        .broadcast_add(&b.reshape((1, 4, 1, 1)).unwrap())
        .unwrap()
        .relu()
        .unwrap();
    assert_close(&ours, &reference, 1e-5, "conv + bias + relu forward");
    assert_same_gradients(
        &mut rng,
        &ours,
        &reference,
        &[(&x, "input"), (&w, "weight"), (&b, "bias")],
        1e-4,
        "conv + bias + relu",
    );
    // The fused ReLU gives the separate op's results bit for bit, with and without bias.
    for bias in [Some(b.as_tensor()), None] {
        let fused = Conv {
            relu: true,
            ..conv(1, 2, 1, 1)
        };
        let fused = conv2d(&x, &w, bias, fused, Record::Graph).unwrap();
        let separate = relu(
            &conv2d(&x, &w, bias, conv(1, 2, 1, 1), Record::Graph).unwrap(),
            Record::Graph,
        )
        .unwrap();
        assert_close(&fused, &separate, 0.0, "fused relu forward");
        assert_same_gradients(
            &mut rng,
            &fused,
            &separate,
            &[(&x, "input"), (&w, "weight")],
            0.0,
            "fused relu",
        );
    }
}

#[test]
fn fused_max_pool_gives_the_separate_ops_results_bit_for_bit() {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let x = Var::from_tensor(&random(&mut rng, &[3, 2, 9, 9])).unwrap();
    let w = Var::from_tensor(&random(&mut rng, &[4, 2, 3, 3])).unwrap();
    let b = Var::from_tensor(&random(&mut rng, &[4])).unwrap();
    // The common 2x2 window, overlapping windows (gradients add up), and padding.
    for (kernel, stride, pad) in [(2, 2, 0), (3, 2, 1), (3, 1, 1)] {
        let window = PoolWindow {
            kernel,
            stride,
            pad,
        };
        for relu in [true, false] {
            for bias in [Some(b.as_tensor()), None] {
                let what = format!(
                    "pool {kernel}/{stride}/{pad}, relu {relu}, bias {}",
                    bias.is_some()
                );
                let plain = Conv {
                    relu,
                    ..conv(1, 1, 1, 1)
                };
                let fused = Conv {
                    pool: Some(window),
                    ..plain
                };
                let fused = conv2d(&x, &w, bias, fused, Record::Graph).unwrap();
                let separate = max_pool2d(
                    &conv2d(&x, &w, bias, plain, Record::Graph).unwrap(),
                    PoolWindow::new(kernel, stride, pad),
                    Record::Graph,
                )
                .unwrap();
                assert_close(&fused, &separate, 0.0, &format!("{what}: forward"));
                let mut vars = vec![(&x, "input"), (&w, "weight")];
                if bias.is_some() {
                    vars.push((&b, "bias"));
                }
                assert_same_gradients(&mut rng, &fused, &separate, &vars, 0.0, &what);
            }
        }
    }
}

#[test]
fn dense_matches_candle_and_finite_differences_with_and_without_relu() {
    let mut rng = ChaCha8Rng::seed_from_u64(13);
    for &(n, i, o) in &[(1, 1, 1), (3, 7, 5), (32, 300, 64), (17, 64, 10)] {
        let x = Var::from_tensor(&random(&mut rng, &[n, i])).unwrap();
        let w = Var::from_tensor(&random(&mut rng, &[o, i])).unwrap();
        let b = Var::from_tensor(&random(&mut rng, &[o])).unwrap();
        for relu in [false, true] {
            let what = format!("dense {n}x{i} -> {o}, relu {relu}");
            let ours = dense(&x, &w, &b, relu, Record::Graph).unwrap();
            let linear = x
                .matmul(&w.t().unwrap())
                .unwrap()
                .broadcast_add(&b)
                .unwrap();
            let reference = if relu { linear.relu().unwrap() } else { linear };
            assert_close(&ours, &reference, 1e-5, &format!("{what}: forward"));
            let vars = [(&x, "input"), (&w, "weight"), (&b, "bias")];
            assert_same_gradients(&mut rng, &ours, &reference, &vars, 1e-5, &what);
        }
        // Without the ReLU the loss below is linear in each operand, so a
        // central difference is exact up to rounding.
        let r = random(&mut rng, &[n, o]);
        let loss = |x: &Tensor, w: &Tensor, b: &Tensor| -> f64 {
            let y = dense(x, w, b, false, Record::Graph).unwrap();
            values(&y)
                .iter()
                .zip(values(&r))
                .map(|(a, c)| *a as f64 * c as f64)
                .sum()
        };
        let y = dense(&x, &w, &b, false, Record::Graph).unwrap();
        let grads = y.mul(&r).unwrap().sum_all().unwrap().backward().unwrap();
        let operands = [
            x.as_tensor().clone(),
            w.as_tensor().clone(),
            b.as_tensor().clone(),
        ];
        for (k, var) in [&x, &w, &b].into_iter().enumerate() {
            let grad = values(grads.get(var).unwrap());
            let base = values(&operands[k]);
            for e in (0..base.len()).step_by(base.len() / 5 + 1) {
                let shifted = |d: f32| {
                    let mut v = base.clone();
                    v[e] += d;
                    let mut ops = operands.clone();
                    ops[k] = Tensor::from_vec(v, operands[k].dims(), &Device::Cpu).unwrap();
                    loss(&ops[0], &ops[1], &ops[2])
                };
                let fd = (shifted(0.5) - shifted(-0.5)) / 1.0;
                assert!(
                    (fd - grad[e] as f64).abs() < 1e-3 * (1.0 + fd.abs()),
                    "dense {n}x{i} -> {o}: operand {k} gradient {e}: fd {fd} vs {}",
                    grad[e]
                );
            }
        }
    }
}

#[test]
fn avg_pool_matches_candle_and_finite_differences_and_ignores_padding() {
    let mut rng = ChaCha8Rng::seed_from_u64(6);
    let x = Var::from_tensor(&random(&mut rng, &[2, 3, 8, 8])).unwrap();
    let ours = avg_pool2d(&x, PoolWindow::new(2, 2, 0), Record::Graph).unwrap();
    let reference = x.avg_pool2d(2).unwrap();
    assert_close(&ours, &reference, 1e-6, "avg-pool forward");
    assert_same_gradients(
        &mut rng,
        &ours,
        &reference,
        &[(&x, "input")],
        1e-6,
        "avg-pool",
    );
    for &(s, k, stride, pad) in &[(7, 3, 1, 1), (9, 3, 2, 1), (6, 5, 2, 2)] {
        let x = random(&mut rng, &[1, 2, s, s]);
        let xv = Var::from_tensor(&x).unwrap();
        let y = avg_pool2d(&xv, PoolWindow::new(k, stride, pad), Record::Graph).unwrap();
        let r = random(&mut rng, y.dims());
        let grad = values(
            y.mul(&r)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap()
                .get(&xv)
                .unwrap(),
        );
        let base = values(&x);
        let loss = |v: Vec<f32>| -> f64 {
            let t = Tensor::from_vec(v, x.dims(), &Device::Cpu).unwrap();
            values(&avg_pool2d(&t, PoolWindow::new(k, stride, pad), Record::Graph).unwrap())
                .iter()
                .zip(values(&r))
                .map(|(a, b)| *a as f64 * b as f64)
                .sum()
        };
        for i in (0..base.len()).step_by(5) {
            let (mut up, mut down) = (base.clone(), base.clone());
            up[i] += 0.5;
            down[i] -= 0.5;
            let fd = (loss(up) - loss(down)) / 1.0;
            assert!(
                (fd - grad[i] as f64).abs() < 1e-4,
                "avg-pool k{k} s{stride} p{pad} gradient {i}: fd {fd} vs {}",
                grad[i]
            );
        }
    }
    // Same padding over ones: every output is 1, corners included.
    let ones = Tensor::ones((1, 1, 4, 4), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert!(
        values(&avg_pool2d(&ones, PoolWindow::new(3, 1, 1), Record::Graph).unwrap())
            .iter()
            .all(|&v| (v - 1.0).abs() < 1e-6)
    );
}

#[test]
fn batch_norm_matches_candle_ops_forward_and_gradients() {
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    for dims in [vec![4usize, 3, 5, 5], vec![6, 4]] {
        let c = dims[1];
        let x = Var::from_tensor(&random(&mut rng, &dims)).unwrap();
        let gamma = Var::from_tensor(&random(&mut rng, &[c])).unwrap();
        let beta = Var::from_tensor(&random(&mut rng, &[c])).unwrap();
        let (ours, stats) =
            batch_norm_train(&x, &gamma, &beta, 1e-5, false, Record::Graph).unwrap();
        let shape: Vec<usize> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| if i == 1 { *d } else { 1 })
            .collect();
        let mean_over = |t: &Tensor| -> Tensor {
            let mut m = t.mean_keepdim(0).unwrap();
            for d in 2..dims.len() {
                m = m.mean_keepdim(d).unwrap();
            }
            m
        };
        let mean = mean_over(&x);
        let centered = x.broadcast_sub(&mean).unwrap();
        let var = mean_over(&centered.sqr().unwrap());
        let reference = centered
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&gamma.reshape(shape.as_slice()).unwrap())
            .unwrap()
            .broadcast_add(&beta.reshape(shape.as_slice()).unwrap())
            .unwrap();
        assert_close(&ours, &reference, 1e-4, "batch-norm forward");
        assert_close(
            &Tensor::new(stats.mean.as_slice(), &Device::Cpu).unwrap(),
            &mean.flatten_all().unwrap(),
            1e-5,
            "batch mean",
        );
        assert_same_gradients(
            &mut rng,
            &ours,
            &reference,
            &[(&x, "input"), (&gamma, "scale"), (&beta, "shift")],
            1e-3,
            &format!("batch-norm {dims:?}"),
        );
        // A fused ReLU gives the separate op's results bit for bit.
        let (fused, _) = batch_norm_train(&x, &gamma, &beta, 1e-5, true, Record::Graph).unwrap();
        let separate = relu(&ours, Record::Graph).unwrap();
        assert_close(&fused, &separate, 0.0, "batch-norm + relu forward");
        assert_same_gradients(
            &mut rng,
            &fused,
            &separate,
            &[(&x, "input"), (&gamma, "scale"), (&beta, "shift")],
            0.0,
            &format!("batch-norm + relu {dims:?}"),
        );
    }
}

#[test]
fn batch_norm_eval_matches_candle_ops_with_and_without_relu() {
    let mut rng = ChaCha8Rng::seed_from_u64(8);
    for dims in [vec![3usize, 4, 5, 5], vec![6, 4]] {
        let c = dims[1];
        let x = random(&mut rng, &dims);
        let (gamma, beta, mean) = (
            random(&mut rng, &[c]),
            random(&mut rng, &[c]),
            random(&mut rng, &[c]),
        );
        let var = random(&mut rng, &[c]).abs().unwrap();
        let shape: Vec<usize> = dims
            .iter()
            .enumerate()
            .map(|(i, d)| if i == 1 { *d } else { 1 })
            .collect();
        let per_channel = |t: &Tensor| t.reshape(shape.as_slice()).unwrap();
        let reference = x
            .broadcast_sub(&per_channel(&mean))
            .unwrap()
            .broadcast_div(&(per_channel(&var) + 1e-5).unwrap().sqrt().unwrap())
            .unwrap()
            .broadcast_mul(&per_channel(&gamma))
            .unwrap()
            .broadcast_add(&per_channel(&beta))
            .unwrap();
        let ours = batch_norm_eval(&x, &gamma, &beta, &mean, &var, 1e-5, false).unwrap();
        assert_close(&ours, &reference, 1e-5, "batch-norm eval");
        let fused = batch_norm_eval(&x, &gamma, &beta, &mean, &var, 1e-5, true).unwrap();
        assert_close(
            &fused,
            &reference.relu().unwrap(),
            1e-5,
            "batch-norm eval + relu",
        );
    }
}

/// candle's op that a kernel is checked against.
type Reference = fn(&Tensor) -> Tensor;

#[test]
fn smooth_activations_match_candle_and_finite_differences() {
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    let cases: [(Smooth, Reference); 5] = [
        (Smooth::Gelu, |x| x.gelu_erf().unwrap()),
        (Smooth::Silu, |x| x.silu().unwrap()),
        (Smooth::Tanh, |x| x.tanh().unwrap()),
        (Smooth::Sigmoid, |x| candle_nn::ops::sigmoid(x).unwrap()),
        (Smooth::LeakyRelu(0.01), |x| {
            candle_nn::ops::leaky_relu(x, 0.01).unwrap()
        }),
    ];
    for (f, reference) in cases {
        // Wider than the kernels' parallel chunk, and spread over [-4, 4].
        let x = Var::from_tensor(&(random(&mut rng, &[3, 5, 40, 41]) * 4.0).unwrap()).unwrap();
        let ours = smooth(&x, f, Record::Graph).unwrap();
        let expected = reference(&x);
        assert_close(&ours, &expected, 1e-5, &format!("{f:?} forward"));
        let what = format!("{f:?}");
        assert_same_gradients(&mut rng, &ours, &expected, &[(&x, "input")], 1e-5, &what);
        // The derivative against central differences of the op itself.
        let base = values(&x);
        let grads = ours.sum_all().unwrap().backward().unwrap();
        let grad = values(grads.get(&x).unwrap());
        // The portable scalar forms (CPUs without AVX-512) agree with the op.
        for ((&x, &y), &g) in base.iter().zip(&values(&ours)).zip(&grad) {
            let (value, slope) = (f.value(x), f.slope(x, y));
            assert!(
                (value - y).abs() <= 1e-5 * (1.0 + y.abs()),
                "{f:?}({x}): {value} vs {y}"
            );
            assert!(
                (slope - g).abs() <= 1e-5 * (1.0 + g.abs()),
                "{f:?}'({x}): {slope} vs {g}"
            );
        }
        let eps = 1e-2f32;
        for i in (0..base.len()).step_by(997) {
            if base[i].abs() < eps && matches!(f, Smooth::LeakyRelu(_)) {
                continue; // the kink
            }
            let at = |d: f32| {
                let t = Tensor::new(&[base[i] + d], &Device::Cpu).unwrap();
                values(&smooth(&t, f, Record::Graph).unwrap())[0] as f64
            };
            let fd = (at(eps) - at(-eps)) / (2.0 * eps as f64);
            assert!(
                (fd - grad[i] as f64).abs() < 1e-3,
                "{f:?} at {}: fd {fd} vs {}",
                base[i],
                grad[i]
            );
        }
    }
}
