//! Operation counts checked against counts derived another way: the fan-out of every spike
//! into a convolution against a convolution of the spike map with a kernel of ones, the dense
//! layers against their shapes, and the spikes against the network's own tally.

use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use nerve::hw::energy::{EnergyCosts, EnergyMeter, Precision};
use nerve::models::spiking_net::{Stage, StageInput};
use nerve::models::SpikingNetConfig;

fn net_config() -> SpikingNetConfig {
    SpikingNetConfig {
        arch: "6C3-4C3-FC5".into(),
        input: [1, 9, 9],
        steps: 6,
        beta: 0.8,
        ..SpikingNetConfig::tutorial_conv()
    }
}

#[test]
fn counts_match_an_independent_derivation() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    device.seed(21);
    let mut config = net_config();
    config.firing.threshold = 0.3;
    let net = config.init(&device).unwrap();
    let x = Tensor::<5>::random([1, 3, 1, 9, 9], Distribution::Uniform(0.0, 1.0), &device);

    // What the second convolution and the FC layer are fed, seen from outside.
    let mut conv2_input = None;
    let mut fc_input = None;
    net.forward_observed(
        x.clone(),
        None,
        false,
        &mut |_, stage, input| match (stage, input) {
            (Stage::Conv(c), StageInput::Spatial(t)) if c.conv.weight.dims()[0] == 4 => {
                conv2_input = Some(t.clone())
            }
            (Stage::Linear(_), StageInput::Spatial(t)) => {
                fc_input = Some(t.clone().flatten::<3>(2, 4))
            }
            (Stage::Linear(_), StageInput::Flat(t)) => fc_input = Some(t.clone()),
            _ => {}
        },
    )
    .unwrap();
    let (conv2_input, fc_input) = (conv2_input.unwrap(), fc_input.unwrap());

    let mut meter = EnergyMeter::new(Precision::Float32);
    meter.measure(&net, x.clone()).unwrap();
    let report = meter.report().unwrap();
    let names: Vec<&str> = report.snn.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conv1 6C3",
            "lif1 (294)",
            "conv2 4C3",
            "lif2 (100)",
            "fc1 100x5",
            "lif3 (5)"
        ]
    );
    let layer = |i: usize| &report.snn.layers[i];

    // The static image enters conv1 once: 7x7 outputs x 6 channels x 9 taps, all MACs.
    assert_eq!(layer(0).macs, (7 * 7 * 6 * 9) as f64);
    assert_eq!(layer(0).acs, 0.0);
    // Each Leaky neuron updates once per step.
    assert_eq!(layer(1).neuron_updates, (6 * 294) as f64);

    // conv2's ACs: every output sums its window of spikes over all input channels, for each
    // of its 4 output channels; a convolution of the channel-summed map with ones counts that.
    let [t, b, c, h, w] = conv2_input.dims();
    assert!(
        conv2_input.clone().sum().into_scalar::<f32>() > 0.0,
        "no spikes reach conv2"
    );
    let summed = conv2_input.clone().reshape([t * b, c, h, w]).sum_dim(1);
    let ones = Tensor::<4>::ones([1, 1, 3, 3], &device);
    let reached = conv2d(
        summed,
        ones,
        None,
        ConvOptions::new([1, 1], [0, 0], [1, 1], 1),
    );
    let want = 4.0 * f64::from(reached.sum().into_scalar::<f32>()) / b as f64;
    assert!(
        (layer(2).acs - want).abs() < 1e-6 * want,
        "{} vs {want}",
        layer(2).acs
    );
    assert_eq!(layer(2).macs, 0.0);
    assert_eq!(layer(2).weight_bytes, layer(2).acs * 4.0);

    // The FC layer: each input spike reaches its 5 outputs.
    let spikes_in = f64::from(fc_input.sum().into_scalar::<f32>()) / b as f64;
    assert!((layer(4).acs - spikes_in * 5.0).abs() < 1e-9 * layer(4).acs.max(1.0));
    // ...and those are lif2's spikes, as the network counts them.
    assert!((layer(3).spikes - spikes_in).abs() < 1e-9);

    // The ANN twin: every connection once, no steps.
    let ann: Vec<f64> = report.ann.layers.iter().map(|l| l.macs).collect();
    assert_eq!(
        ann,
        [
            (7 * 7 * 6 * 9) as f64,
            0.0,
            (5 * 5 * 4 * 6 * 9) as f64,
            0.0,
            500.0,
            0.0
        ]
    );
}

#[test]
fn integer_precision_prices_the_same_counts_lower_and_traffic_at_its_width() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    device.seed(2);
    let net = net_config().init(&device).unwrap();
    let x = Tensor::<5>::random([1, 2, 1, 9, 9], Distribution::Uniform(0.0, 1.0), &device);
    let count = |precision| {
        let mut meter = EnergyMeter::new(precision);
        meter.measure(&net, x.clone()).unwrap();
        meter.report().unwrap()
    };
    let float = count(Precision::Float32);
    let int = count(Precision::Int {
        weight_bits: 4,
        state_bits: 8,
    });
    let costs = EnergyCosts::default();
    for (f, i) in float.snn.layers.iter().zip(&int.snn.layers) {
        assert_eq!(
            (f.acs, f.macs, f.neuron_updates),
            (i.acs, i.macs, i.neuron_updates)
        );
        assert_eq!(
            i.weight_bytes * 8.0,
            f.weight_bytes,
            "{}: 4 bits against 32",
            f.name
        );
        assert_eq!(i.state_read_bytes * 4.0, f.state_read_bytes);
    }
    assert!(int.snn.energy_pj(&costs) < float.snn.energy_pj(&costs));
    assert_eq!(int.ann, float.ann, "the twin is float either way");
    // A second batch doubles the totals and keeps the per-inference figures.
    let mut meter = EnergyMeter::new(Precision::Float32);
    meter.measure(&net, x.clone()).unwrap();
    meter.measure(&net, x).unwrap();
    let twice = meter.report().unwrap();
    assert_eq!(twice.samples, 4);
    assert_eq!(twice.snn.total().macs, float.snn.total().macs);
}

#[test]
fn a_cost_table_replaces_the_defaults_and_refuses_unknown_keys() {
    let _turn = crate::common::rng_turn();
    let dir = std::env::temp_dir().join(format!("nerve-energy-costs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("costs.toml");
    std::fs::write(&good, "float_mac_pj = 1.0\nsram_read_pj_per_byte = 0.0\n").unwrap();
    let costs = EnergyCosts::load(&good).unwrap();
    assert_eq!(costs.float_mac_pj, 1.0);
    assert_eq!(costs.sram_read_pj_per_byte, 0.0);
    assert_eq!(costs.int_add_pj, EnergyCosts::default().int_add_pj);
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "float_mac = 1.0\n").unwrap();
    let err = EnergyCosts::load(&bad).unwrap_err().to_string();
    assert!(
        err.contains("float_mac") && err.contains("bad.toml"),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    std::fs::write(&bad, "int_add_pj = -3.0\n").unwrap();
    assert!(EnergyCosts::load(&bad).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}
