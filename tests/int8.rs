//! Int8 quantization: the integer kernels against the quantized model's
//! float simulation, layer by layer, and the int8 network against the float
//! network it came from, over every IR op and every convolution and pooling
//! variant.

mod common;

use candle_core::Tensor;
use common::networks::{cases, input, model, TASK};
use nas_host::ir::Op;
use nas_host::network::LayerHook;
use nas_host::quant::{calibrate_batches, Int8Network, Int8Pass, QuantizeConfig, Simulated};

fn max_abs(t: &Tensor) -> f32 {
    t.abs()
        .unwrap()
        .flatten_all()
        .unwrap()
        .max(0)
        .unwrap()
        .to_scalar()
        .unwrap()
}

/// Runs each layer both ways on the same input and passes the int8 output on.
struct Compare<'a> {
    net: &'a Int8Network,
    /// The largest difference seen, relative to the layer's largest output.
    worst: f32,
    layers: usize,
}

impl LayerHook for Compare<'_> {
    fn layer(&mut self, node: usize, x: &Tensor) -> anyhow::Result<Option<Tensor>> {
        let int8 = Int8Pass(self.net).layer(node, x)?.unwrap();
        let simulated = Simulated(self.net).layer(node, x)?.unwrap();
        let scale = max_abs(&simulated).max(1e-3);
        self.worst = self.worst.max(max_abs(&(&int8 - &simulated)?) / scale);
        self.layers += 1;
        Ok(Some(int8))
    }

    fn passes_on(&self, node: usize) -> bool {
        self.net.passes_on(node)
    }
}

#[test]
fn int8_layers_equal_their_float_simulation_and_stay_near_the_float_network() {
    let mut worst_network = (0f32, String::new());
    for (seed, net) in cases().iter().enumerate() {
        let seed = seed as u64;
        let model = model(net, &TASK, seed);
        let x = input(&TASK, 3, seed);
        // The input among them: no value falls outside its grid.
        let batches = [input(&TASK, 4, seed + 1000), x.clone()];
        let grids = calibrate_batches(&model, &batches, &QuantizeConfig::default()).unwrap();
        let int8 = Int8Network::new(net, &TASK, &model.tensors(), &grids).unwrap();
        let mut compare = Compare {
            net: &int8,
            worst: 0.0,
            layers: 0,
        };
        let y = model.forward_hooked(&x, &mut compare).unwrap();
        let layers = net
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Conv2d(_) | Op::Dense(_)))
            .count();
        assert_eq!(compare.layers, layers, "{}", net.key);
        // Only the order of float additions differs.
        assert!(
            compare.worst < 1e-5,
            "{}: int8 and its simulation differ by {}",
            net.key,
            compare.worst
        );
        // Folding and quantization keep the network's function.
        let float = model.forward(&x, false, None).unwrap();
        let error = max_abs(&(&y - &float).unwrap()) / max_abs(&float).max(1e-3);
        if error > worst_network.0 {
            worst_network = (error, net.key.clone());
        }
    }
    assert!(worst_network.0 < 0.05, "{worst_network:?}");
}
