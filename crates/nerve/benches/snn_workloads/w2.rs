//! W2, the Open Neuromorphic library benchmark: one linear layer and a Leaky layer over
//! 500 steps.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use nerve::layers::TimeLinear;
use nerve::neurons::{Leaky, LeakyConfig, Neuron};
use serde_json::json;

use crate::opts::Opts;
use crate::report::{base_record, emit, time_mode, wants};

/// The Open Neuromorphic benchmark network: `Linear(n, n)` then a Leaky layer.
#[derive(Module, Debug)]
pub(crate) struct LinearLif {
    fc: TimeLinear,
    lif: Leaky,
}

impl LinearLif {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.lif.run(self.fc.forward(x), None).spk
    }
}

pub(crate) fn w2(o: &Opts, n: usize) -> nerve::Result<()> {
    const T: usize = 500;
    const B: usize = 16;
    let device = Device::flex().autodiff();
    device.seed(o.seed);
    let net = LinearLif {
        fc: TimeLinear::new(n, n, &device),
        // snnTorch's `Leaky(beta=0.95)` as published: threshold 1, subtract reset, atan.
        lif: LeakyConfig::new(0.95).init(&device),
    };
    let x = Tensor::<3>::random([T, B, n], Distribution::Normal(0.0, 1.0), &device);
    let mut spikes = 0.0;
    if wants(o, "forward") {
        // Without autograd, as every library's forward here (the peers under
        // `torch.no_grad()`): Burn keeps an autodiff graph until a backward runs through it,
        // so forward-only iterations on the autodiff device would pile up graphs.
        let valid = net.valid();
        let x = x.clone().inner();
        time_mode(o, "forward", json!({"n": n}), || {
            spikes = valid.forward(x.clone()).sum().into_scalar::<f64>();
        });
    }
    if wants(o, "fwd_bwd") {
        time_mode(o, "fwd_bwd", json!({"n": n}), || {
            let out = net.forward(x.clone()).sum();
            spikes = out.clone().into_scalar::<f64>();
            let grads = out.backward();
            let g = net.fc.linear.weight.grad(&grads).expect("weight gradient");
            std::hint::black_box(g);
        });
    }
    emit(
        o,
        base_record(o),
        json!({"mode": "spikes", "n": n, "output_spikes": spikes}),
    );
    Ok(())
}
