//! Quantization-aware training end to end: a network's layers compute with weights on the grid,
//! a learned scale is trained, every Leaky layer's membrane lies on the state levels, and a
//! checkpoint's run configuration rebuilds the same quantized network.

use std::collections::BTreeSet;
use std::path::PathBuf;

use burn::tensor::{Device, Distribution, Tensor};
use nerve::data::Encoding;
use nerve::models::spiking_net::Stage;
use nerve::models::SpikingNetConfig;
use nerve::neurons::Neuron;
use nerve::quant::{StateQuantConfig, WeightQuantConfig};
use nerve::train::optimizer::OptimizerKind;
use nerve::train::run_config::{loss_from_run, net_config_from_run, run_config_json};
use nerve::train::schedule::Schedule;
use nerve::train::trainer::{LossKind, TrainConfig};

fn quantized_config(weights: &str, state_bits: u32) -> SpikingNetConfig {
    let mut config = SpikingNetConfig {
        arch: "6C3-MP2-FC10".into(),
        input: [1, 12, 12],
        steps: 4,
        ..SpikingNetConfig::tutorial_conv()
    };
    config.weight_quant = Some(WeightQuantConfig::parse(weights).unwrap());
    config.firing.state_quant = Some(StateQuantConfig::new(state_bits, 1.0).init().unwrap());
    config
}

fn distinct(t: Tensor<2>) -> usize {
    let bits: BTreeSet<u32> = t.into_data().iter::<f32>().map(f32::to_bits).collect();
    bits.len()
}

#[test]
fn every_layer_computes_with_weights_on_the_grid() {
    let device = Device::flex();
    let net = quantized_config("3", 4).init(&device).unwrap();
    let mut layers = 0;
    for stage in &net.stages {
        let (weights, raw) = match stage {
            Stage::Conv(c) => (
                c.weight().flatten::<2>(1, 3),
                c.conv.weight.val().flatten(1, 3),
            ),
            Stage::Linear(l) => (l.weight(), l.linear.weight.val()),
            _ => continue,
        };
        layers += 1;
        // 3 bits: the levels -3..3 times one scale (zero counts once, ±0 aside).
        assert!(distinct(weights.clone().abs()) <= 4, "{stage:?}");
        assert!(distinct(raw) > 7, "the stored weights stay in float");
        let scale = weights.clone().abs().max().into_scalar::<f32>() / 3.0;
        let off_grid = weights
            .into_data()
            .iter::<f32>()
            .filter(|w| ((w / scale) - (w / scale).round()).abs() > 1e-4)
            .count();
        assert_eq!(off_grid, 0);
    }
    assert_eq!(layers, 2);
}

#[test]
fn membranes_lie_on_the_state_levels_and_gradients_reach_the_learned_scale() {
    let device = Device::flex().autodiff();
    device.seed(3);
    let config = quantized_config("4:channel:learned", 3);
    let levels = config
        .firing
        .state_quant
        .as_ref()
        .unwrap()
        .levels()
        .to_vec();
    let net = config.init(&device).unwrap();
    let x = Tensor::<5>::random([1, 2, 1, 12, 12], Distribution::Uniform(0.0, 1.0), &device);
    let out = net.forward(x, None, false).unwrap();
    let on_grid = out
        .mem
        .clone()
        .into_data()
        .iter::<f32>()
        .all(|m| levels.contains(&m));
    assert!(
        on_grid,
        "an output membrane off the 3-bit levels {levels:?}"
    );
    let grads = out.mem.sum().backward();
    let Stage::Linear(fc) = net
        .stages
        .iter()
        .find(|s| matches!(s, Stage::Linear(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let scale = fc.quant.scale.as_ref().expect("a learned scale");
    assert_eq!(scale.dims(), [10], "one scale per output channel");
    let g = scale.grad(&grads).expect("the scale gets a gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
    let w = fc
        .linear
        .weight
        .grad(&grads)
        .expect("the weights get a gradient");
    assert!(w.abs().sum().into_scalar::<f32>() > 0.0);
    // The neurons' own quantizer is what the config asked for.
    let Stage::Neuron(lif) = &net.stages[2] else {
        panic!("third stage is the conv's Leaky layer")
    };
    assert!(lif.firing.config.state_quant.is_some());
    assert!(!lif.records_mem());
}

#[test]
fn a_run_configuration_rebuilds_the_quantized_network() {
    let mut config = quantized_config("ternary", 5);
    let mut quant = StateQuantConfig::new(5, 1.0);
    quant.uniform = false;
    quant.thr_centered = false;
    quant.multiplier = Some(0.6);
    config.firing.state_quant = Some(quant.init().unwrap());
    let cfg = TrainConfig {
        epochs: 1,
        batch_size: 4,
        lr: 1e-3,
        optimizer: OptimizerKind::Adam,
        schedule: Schedule::Constant,
        grad_clip: None,
        seed: 0,
        loss: LossKind::MseCount {
            correct_rate: 0.8,
            incorrect_rate: 0.2,
        },
        encoding: Encoding::Direct,
        tbptt: None,
        out_dir: PathBuf::new(),
        train_limit: None,
        test_limit: None,
        dataset: "mnist".into(),
        population: None,
    };
    let json = run_config_json(&config, &cfg);
    let rebuilt = net_config_from_run(&json).unwrap();
    assert_eq!(rebuilt.describe(), config.describe());
    assert_eq!(rebuilt.weight_quant, config.weight_quant);
    assert_eq!(rebuilt.firing.state_quant, config.firing.state_quant);
    assert_eq!(loss_from_run(&json), cfg.loss);
    // A record that names a bit width outside 1..8 is refused, not built.
    let mut bad = json.clone();
    bad["state_quant"]["num_bits"] = serde_json::json!(12);
    let err = net_config_from_run(&bad).unwrap_err().to_string();
    assert!(err.contains("outside 1..8 bits"), "{err}");
    bad["weight_quant"] = serde_json::json!("0");
    assert!(net_config_from_run(&bad).is_err());
}

#[test]
fn choosing_a_weight_grid_draws_no_weights_early() {
    // Burn draws a parameter's initial values when it is first read; reading the weights while
    // building would shift every later draw, so a seeded network would start elsewhere.
    let device = Device::flex();
    for weights in [None, Some("4"), Some("ternary")] {
        let mut config = quantized_config("4", 4);
        config.weight_quant = weights.map(|w| WeightQuantConfig::parse(w).unwrap());
        let net = config.init(&device).unwrap();
        for stage in &net.stages {
            let drawn = match stage {
                Stage::Conv(c) => c.conv.weight.is_initialized(),
                Stage::Linear(l) => l.linear.weight.is_initialized(),
                _ => continue,
            };
            assert!(!drawn, "{weights:?}: weights drawn while building");
        }
    }
}
