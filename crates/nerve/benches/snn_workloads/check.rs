//! Spike counts of W1 with deterministic weights and input, for comparison with snnTorch.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use nerve::models::spiking_net::Stage;
use serde_json::json;

use crate::classifier::w1_config;
use crate::opts::Opts;
use crate::report::{base_record, emit};
use crate::STEPS;

/// Deterministic pseudo-random value in [-1, 1) that Python computes bit for bit the same.
pub(crate) fn det_uniform(a: u64, b: u64, salt: u64) -> f64 {
    let v = (a * 7919 + b * 104_729 + salt * 31_337) % 65_521;
    v as f64 / 65_521.0 * 2.0 - 1.0
}

/// W1 with fixed weights (no bias) and a fixed binary input: spike counts for the peers.
pub(crate) fn check(o: &Opts) -> nerve::Result<()> {
    const B: usize = 8;
    let device = Device::flex();
    let mut net = w1_config().init(&device)?;
    let mut layer = 0u64;
    for stage in net.stages.iter_mut() {
        if let Stage::Linear(lin) = stage {
            let [inputs, outputs] = lin.linear.weight.dims();
            // Slightly positive on average, so that both layers fire at moderate rates.
            let bound = 1.0 / (inputs as f64).sqrt();
            let w: Vec<f32> = (0..inputs * outputs)
                .map(|k| {
                    let u = det_uniform((k / outputs) as u64, (k % outputs) as u64, layer);
                    ((u + 0.05) * bound) as f32
                })
                .collect();
            lin.linear.weight = Param::from_tensor(Tensor::from_data(
                TensorData::new(w, [inputs, outputs]),
                &device,
            ));
            lin.linear.bias = None;
            layer += 1;
        }
    }
    let x: Vec<f32> = (0..STEPS * B * 784)
        .map(|k| {
            let h = (k as u64).wrapping_mul(2_654_435_761) & 0xFFFF_FFFF;
            if (h >> 24) < 64 {
                1.0
            } else {
                0.0
            }
        })
        .collect();
    let x = Tensor::<5>::from_data(TensorData::new(x, [STEPS, B, 1, 28, 28]), &device);
    let out = net.forward(x, None, false)?;
    let hidden = out.layers[0].total.clone().into_scalar::<f64>();
    // Spikes of each output neuron, summed over time and batch.
    let counts: Vec<f64> = out
        .spk
        .sum_dim(0)
        .sum_dim(1)
        .into_data()
        .iter::<f32>()
        .map(f64::from)
        .collect();
    emit(
        o,
        base_record(o),
        json!({"mode": "spike_counts", "hidden_spikes": hidden, "output_spikes": counts.iter().sum::<f64>(),
               "output_per_neuron": counts}),
    );
    Ok(())
}
