//! Unit tests of shape inference, counts, the compiled model and the summary.

use super::*;
use crate::ir::*;
use candle_core::{Device, Tensor};

pub(crate) const MNIST: Task = Task {
    channels: 1,
    height: 28,
    width: 28,
    num_classes: 10,
};

pub(crate) fn node(op: Op, inputs: &[u32]) -> Node {
    Node {
        op,
        inputs: inputs.to_vec(),
    }
}

pub(crate) fn conv(filters: u32, kernel: u32) -> Op {
    Op::Conv2d(Conv2d {
        filters,
        kernel,
        stride: 1,
        padding: Padding::Same,
        dilation: 1,
        groups: 1,
        bias: true,
    })
}

pub(crate) fn pool2() -> Op {
    Op::MaxPool(Pool {
        kernel: 2,
        stride: 2,
        padding: Padding::Valid,
    })
}

/// The seed-template network, written out by hand.
pub(crate) fn seed_template(global_pooling: bool, units: u32, rate: f32) -> Network {
    let relu = || Op::Activation(Activation::Relu);
    let head = if global_pooling {
        Op::GlobalAvgPool
    } else {
        Op::Flatten
    };
    let ops = [
        conv(32, 3),
        relu(),
        pool2(),
        conv(64, 3),
        relu(),
        pool2(),
        head,
        Op::Dense(units),
        relu(),
        Op::Dropout(rate),
        Op::Dense(10),
    ];
    let mut nodes = vec![node(Op::Input, &[])];
    for (i, op) in ops.into_iter().enumerate() {
        nodes.push(node(op, &[i as u32]));
    }
    Network {
        nodes,
        key: format!("gp={global_pooling},units={units},rate={rate}"),
    }
}

#[test]
fn seed_template_counts_match_hand_computation() {
    let a = analyse(&seed_template(false, 64, 0.0), &MNIST).unwrap();
    // conv1 32*1*9+32, conv2 64*32*9+64, dense 3136*64+64, dense 64*10+10.
    assert_eq!(a.params(), 320 + 18_496 + 200_768 + 650);
    assert_eq!(
        a.nodes[3].shape,
        Shape::Image {
            c: 32,
            h: 14,
            w: 14
        }
    );
    assert_eq!(a.nodes[7].shape, Shape::Flat { n: 3136 });
    let conv1 = 2 * 32 * 28 * 28 * 9 + 32 * 28 * 28;
    let relu1 = 32 * 28 * 28;
    let pool1 = 32 * 14 * 14 * 4;
    let conv2 = 2 * 64 * 14 * 14 * 32 * 9 + 64 * 14 * 14;
    let relu2 = 64 * 14 * 14;
    let pool2 = 64 * 7 * 7 * 4;
    let dense1 = 2 * 3136 * 64 + 64;
    let relu3 = 64;
    let dense2 = 2 * 64 * 10 + 10;
    assert_eq!(
        a.flops(),
        (conv1 + relu1 + pool1 + conv2 + relu2 + pool2 + dense1 + relu3 + dense2) as u64
    );
    // Node outputs per sample: input, conv, relu, pool, conv, relu, pool, flatten, dense, relu, dropout, dense.
    let outputs = 784 + 2 * 25_088 + 6_272 + 2 * 12_544 + 2 * 3_136 + 3 * 64 + 10;
    let floats = 220_234 * 4 + outputs * 32 * 2;
    assert_eq!(a.train_memory_mb(32), (floats * 4) as f64 / 1_048_576.0);

    let g = analyse(&seed_template(true, 16, 0.4), &MNIST).unwrap();
    assert_eq!(g.params(), 320 + 18_496 + (64 * 16 + 16) + (16 * 10 + 10));
    assert_eq!(g.nodes[7].shape, Shape::Flat { n: 64 });
}

#[test]
fn shape_errors_name_the_node_op_and_shapes() {
    let mut n = seed_template(false, 64, 0.0);
    // An add of 32 and 64 channels.
    n.nodes.insert(7, node(Op::Add, &[3, 6]));
    let e = analyse(&n, &MNIST).unwrap_err().to_string();
    assert!(
        e.contains("node 7 (add)") && e.contains("32x14x14 and 64x7x7"),
        "{e}"
    );

    let mut n = seed_template(false, 64, 0.0);
    n.nodes[7] = node(Op::Identity, &[6]); // no flatten before dense
    let e = analyse(&n, &MNIST).unwrap_err().to_string();
    assert!(
        e.contains("node 8 (dense)") && e.contains("image 64x7x7") && e.contains("add `flatten`"),
        "{e}"
    );

    let n = seed_template(true, 64, 0.0);
    let e = analyse(
        &n,
        &Task {
            num_classes: 7,
            ..MNIST
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("gives 10") && e.contains("needs 7 class logits"),
        "{e}"
    );

    let mut n = seed_template(true, 64, 0.0);
    n.nodes[1].op = Op::Conv2d(Conv2d {
        filters: 30,
        kernel: 3,
        stride: 1,
        padding: Padding::Same,
        dilation: 1,
        groups: 4,
        bias: true,
    });
    let e = analyse(&n, &MNIST).unwrap_err().to_string();
    assert!(
        e.contains("node 1 (conv2d)") && e.contains("groups 4 must divide"),
        "{e}"
    );

    let mut n = seed_template(true, 64, 0.0);
    n.nodes[2].inputs = vec![5];
    let e = analyse(&n, &MNIST).unwrap_err().to_string();
    assert!(
        e.contains("node 2") && e.contains("input 5 is not an earlier node"),
        "{e}"
    );

    let tiny = Task {
        channels: 1,
        height: 2,
        width: 2,
        num_classes: 10,
    };
    let e = analyse(&seed_template(true, 64, 0.0), &tiny)
        .unwrap_err()
        .to_string();
    assert!(e.contains("does not fit"), "{e}");
}

/// Sizes that would wrap a 64-bit count, or pass the host's limits, are
/// refused by shape inference naming the node and the limit, before
/// anything is allocated.
#[test]
fn oversized_networks_are_refused_before_their_arithmetic_wraps() {
    let named = |n: &Network, want: &[&str]| {
        let e = analyse(n, &MNIST).unwrap_err().to_string();
        assert!(want.iter().all(|w| e.contains(w)), "{e}");
    };
    // A kernel of 2^31.
    let mut n = seed_template(false, 64, 0.0);
    n.nodes[1] = node(conv(32, 1 << 31), &[0]);
    named(
        &n,
        &["node 1 (conv2d)", "kernel 2147483648", "limit of 4096"],
    );

    // 64 chained concats of a node with itself double its channels 64 times.
    let mut nodes = vec![node(Op::Input, &[])];
    for i in 0..64 {
        nodes.push(node(Op::Concat, &[i, i]));
    }
    let last = nodes.len() as u32;
    nodes.push(node(Op::GlobalAvgPool, &[last - 1]));
    nodes.push(node(Op::Dense(10), &[last]));
    let n = Network {
        nodes,
        key: "concats".into(),
    };
    named(&n, &["(concat)", "over the host's limit"]);

    // A dense layer of 2^32 - 1 units on a wide input: the product of its
    // sizes is far over the parameter limit (and over 2^64 in FLOPs terms).
    let n = seed_template(false, u32::MAX, 0.0);
    named(&n, &["(dense)", "parameters", "limit"]);

    // The limits leave room for every realistic network.
    assert!(analyse(&seed_template(false, 64, 0.0), &MNIST).is_ok());
}

/// A network with branches (add, concat), strides, dilation, groups,
/// batch-norm, a padded average pool, GELU and global max pooling.
pub(crate) fn branchy() -> (Network, Task) {
    let task = Task {
        channels: 3,
        height: 12,
        width: 12,
        num_classes: 5,
    };
    let c = |filters, kernel, stride, dilation, groups, padding| {
        Op::Conv2d(Conv2d {
            filters,
            kernel,
            stride,
            padding,
            dilation,
            groups,
            bias: false,
        })
    };
    let nodes = vec![
        node(Op::Input, &[]),
        node(c(8, 3, 1, 1, 1, Padding::Same), &[0]),
        node(c(8, 5, 1, 2, 2, Padding::Same), &[1]),
        node(Op::BatchNorm, &[2]),
        node(Op::Add, &[1, 3]),
        node(c(4, 1, 1, 1, 1, Padding::Valid), &[4]),
        node(
            Op::AvgPool(Pool {
                kernel: 3,
                stride: 1,
                padding: Padding::Same,
            }),
            &[4],
        ),
        node(Op::Concat, &[5, 6]),
        node(c(12, 3, 2, 1, 1, Padding::Same), &[7]),
        node(Op::Activation(Activation::Gelu), &[8]),
        node(Op::GlobalMaxPool, &[9]),
        node(Op::Dense(5), &[10]),
    ];
    let net = Network {
        nodes,
        key: "branchy".into(),
    };
    (net, task)
}

#[test]
fn branches_strides_dilation_and_groups_infer_and_run() {
    let (net, task) = branchy();
    let a = analyse(&net, &task).unwrap();
    assert_eq!(
        a.nodes[7].shape,
        Shape::Image {
            c: 12,
            h: 12,
            w: 12
        }
    );
    assert_eq!(a.nodes[8].shape, Shape::Image { c: 12, h: 6, w: 6 });
    let model = Model::new(&net, &task, 1, &Device::Cpu).unwrap();
    let x = Tensor::ones((2, 3, 12, 12), candle_core::DType::F32, &Device::Cpu).unwrap();
    assert_eq!(model.forward(&x, true, None).unwrap().dims(), &[2, 5]);
    assert_eq!(model.forward(&x, false, None).unwrap().dims(), &[2, 5]);
    let counted: usize = model.params().map(|v| v.elem_count()).sum();
    assert_eq!(counted as u64, a.params());
}

#[test]
fn same_seed_same_weights_and_save_load_round_trips() {
    let net = seed_template(true, 32, 0.2);
    let a = Model::new(&net, &MNIST, 9, &Device::Cpu).unwrap();
    let b = Model::new(&net, &MNIST, 9, &Device::Cpu).unwrap();
    let c = Model::new(&net, &MNIST, 10, &Device::Cpu).unwrap();
    let first = |m: &Model| {
        m.params()
            .next()
            .unwrap()
            .as_tensor()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap()
    };
    assert_eq!(first(&a), first(&b));
    assert_ne!(first(&a), first(&c));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    a.save(&path).unwrap();
    let d = Model::new(&net, &MNIST, 99, &Device::Cpu).unwrap();
    d.load(&path).unwrap();
    assert_eq!(first(&a), first(&d));
    let other = Model::new(&seed_template(false, 32, 0.2), &MNIST, 1, &Device::Cpu);
    let e = format!("{:#}", other.unwrap().load(&path).unwrap_err());
    assert!(e.contains("has shape"), "{e}");
}

#[test]
fn summary_lists_every_layer_and_the_totals() {
    let s = summary(&seed_template(false, 64, 0.0), &MNIST).unwrap();
    assert!(
        s.contains("1: conv2d (3x3 32 s1 same)") && s.contains("32x28x28"),
        "{s}"
    );
    assert!(s.contains("200,768"), "{s}");
    assert!(s.contains("Total params: 220,234"), "{s}");
}

#[test]
fn relus_fuse_into_a_sole_convolution_dense_or_batch_norm_reader_with_identical_results() {
    let relu = || Op::Activation(Activation::Relu);
    let fused = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(4, 3), &[0]),
            node(relu(), &[1]),
            node(Op::BatchNorm, &[2]),
            node(relu(), &[3]),
            node(Op::Flatten, &[4]),
            node(Op::Dense(10), &[5]),
            node(relu(), &[6]),
        ],
        key: "fused".into(),
    };
    assert_eq!(
        super::model::fused_relus(&fused),
        [false, true, true, true, true, false, true, true]
    );
    // The same layers with an identity before each ReLU: nothing fuses.
    let separate = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(4, 3), &[0]),
            node(Op::Identity, &[1]),
            node(relu(), &[2]),
            node(Op::BatchNorm, &[3]),
            node(Op::Identity, &[4]),
            node(relu(), &[5]),
            node(Op::Flatten, &[6]),
            node(Op::Dense(10), &[7]),
            node(Op::Identity, &[8]),
            node(relu(), &[9]),
        ],
        key: "separate".into(),
    };
    assert!(super::model::fused_relus(&separate).iter().all(|f| !f));
    // A convolution with a second reader keeps its ReLU separate.
    let shared = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(1, 3), &[0]),
            node(relu(), &[1]),
            node(Op::Add, &[1, 2]),
        ],
        key: "shared".into(),
    };
    assert!(super::model::fused_relus(&shared).iter().all(|f| !f));

    assert_same_model(&fused, &separate);
}

/// Two networks built with the same seed give the same outputs (train and
/// eval mode) and gradients, bit for bit.
fn assert_same_model(fused: &Network, separate: &Network) {
    let x = Tensor::randn(0f32, 1.0, (3, 1, 28, 28), &Device::Cpu).unwrap();
    let (a, b) = (
        Model::new(fused, &MNIST, 7, &Device::Cpu).unwrap(),
        Model::new(separate, &MNIST, 7, &Device::Cpu).unwrap(),
    );
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let (ya, yb) = (
        a.forward(&x, true, None).unwrap(),
        b.forward(&x, true, None).unwrap(),
    );
    assert_eq!(values(&ya), values(&yb), "train-mode outputs");
    let (ga, gb) = (
        ya.sqr().unwrap().sum_all().unwrap().backward().unwrap(),
        yb.sqr().unwrap().sum_all().unwrap().backward().unwrap(),
    );
    for (pa, pb) in a.params().zip(b.params()) {
        assert_eq!(
            values(ga.get(pa).unwrap()),
            values(gb.get(pb).unwrap()),
            "gradients"
        );
    }
    assert_eq!(
        values(&a.forward(&x, false, None).unwrap()),
        values(&b.forward(&x, false, None).unwrap()),
        "eval-mode outputs"
    );
}

#[test]
fn max_pools_fuse_into_a_sole_convolution_reader_with_identical_results() {
    let relu = || Op::Activation(Activation::Relu);
    let fused = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(4, 3), &[0]),
            node(relu(), &[1]),
            node(pool2(), &[2]),
            node(conv(4, 3), &[3]),
            node(pool2(), &[4]),
            node(Op::Flatten, &[5]),
            node(Op::Dense(10), &[6]),
        ],
        key: "fused".into(),
    };
    let relus = super::model::fused_relus(&fused);
    assert_eq!(
        super::model::fused_pools(&fused, &relus),
        [None, Some(3), None, Some(1), Some(5), Some(4), None, None]
    );
    // The same layers with an identity before each pool: nothing fuses.
    let separate = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(4, 3), &[0]),
            node(relu(), &[1]),
            node(Op::Identity, &[2]),
            node(pool2(), &[3]),
            node(conv(4, 3), &[4]),
            node(Op::Identity, &[5]),
            node(pool2(), &[6]),
            node(Op::Flatten, &[7]),
            node(Op::Dense(10), &[8]),
        ],
        key: "separate".into(),
    };
    let relus = super::model::fused_relus(&separate);
    assert!(super::model::fused_pools(&separate, &relus)
        .iter()
        .all(Option::is_none));
    // A ReLU with a second reader keeps the pool separate.
    let shared = Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(1, 3), &[0]),
            node(relu(), &[1]),
            node(pool2(), &[2]),
            node(Op::Flatten, &[2]),
            node(Op::Flatten, &[3]),
            node(Op::Concat, &[4, 5]),
        ],
        key: "shared".into(),
    };
    let relus = super::model::fused_relus(&shared);
    assert!(super::model::fused_pools(&shared, &relus)
        .iter()
        .all(Option::is_none));
    assert_same_model(&fused, &separate);
}

/// A network with every op the tape handles: batch-norm, standalone ReLU,
/// max and average pools, a sum, GELU, a concatenation, a zero op, both
/// global pools, dense layers and dropout.
fn every_op() -> Network {
    let relu = || Op::Activation(Activation::Relu);
    let avg = Op::AvgPool(Pool {
        kernel: 3,
        stride: 1,
        padding: Padding::Same,
    });
    Network {
        nodes: vec![
            node(Op::Input, &[]),
            node(conv(8, 3), &[0]),
            node(Op::BatchNorm, &[1]),
            node(relu(), &[2]),
            node(conv(8, 5), &[3]),
            node(Op::Add, &[3, 4]),
            node(relu(), &[5]),
            node(pool2(), &[6]),
            node(avg, &[7]),
            node(Op::Activation(Activation::Gelu), &[8]),
            node(Op::Concat, &[7, 9]),
            node(conv(4, 1), &[10]),
            node(Op::Zero, &[11]),
            node(Op::Add, &[11, 12]),
            node(Op::GlobalAvgPool, &[13]),
            node(Op::GlobalMaxPool, &[13]),
            node(Op::Concat, &[14, 15]),
            node(Op::Dense(16), &[16]),
            node(relu(), &[17]),
            node(Op::Dropout(0.3), &[18]),
            node(Op::Dense(10), &[19]),
        ],
        key: "every-op".into(),
    }
}

#[test]
fn the_taped_backward_pass_gives_candles_gradients() {
    use rand::SeedableRng;
    let values = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    for network in [every_op(), seed_template(false, 16, 0.5)] {
        let model = Model::new(&network, &MNIST, 7, &Device::Cpu).unwrap();
        let x = Tensor::randn(0f32, 1.0, (3, 1, 28, 28), &Device::Cpu).unwrap();
        let dy = Tensor::randn(0f32, 1.0, (3, 10), &Device::Cpu).unwrap();
        let rng = || rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let y = model.forward(&x, true, Some(&mut rng())).unwrap();
        let graph = y.mul(&dy).unwrap().sum_all().unwrap().backward().unwrap();
        let (taped, tape) = model.forward_taped(&x, Some(&mut rng())).unwrap();
        assert_eq!(values(&y), values(&taped), "{}: outputs", network.key);
        let grads = tape.expect("a tape on the CPU").backward(dy).unwrap();
        assert_eq!(grads.len(), model.params().count());
        for (i, (param, grad)) in model.params().zip(grads).enumerate() {
            let expected = values(graph.get(param).expect("candle's gradient"));
            let got = values(&grad.expect("a taped gradient"));
            let scale = expected.iter().fold(0f32, |m, v| m.max(v.abs()));
            for (j, (a, e)) in got.iter().zip(&expected).enumerate() {
                // A bias before batch-norm has a gradient of rounding noise
                // only (about 1e-7 here), hence the absolute term.
                assert!(
                    (a - e).abs() <= 1e-5 * scale + 1e-6,
                    "{}: parameter {i}, element {j}: {a} vs {e}",
                    network.key
                );
            }
            assert_eq!(got.len(), expected.len());
        }
    }
}
