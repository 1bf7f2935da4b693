//! Integer-only inference: the event-driven engine equals its dense twin bit for bit on random
//! networks of every layer kind the converter takes; the integer arithmetic tracks the float
//! network; `.nq` files round-trip and corrupt ones are refused with a reason.

use burn::module::Param;
use burn::tensor::{Device, Tensor, TensorData};
use nerve::firing::Reset;
use nerve::hw::integer::{self, IntInput, IntOp, IntProgram};
use nerve::models::spiking_net::Stage;
use nerve::models::SpikingNetConfig;
use nerve::neurons::Neuron;
use nerve::quant::WeightQuantConfig;

use crate::common::fuzz::no_panic_loop;

fn config(arch: &str, input: [usize; 3], weights: Option<&str>, reset: Reset) -> SpikingNetConfig {
    let mut c = SpikingNetConfig {
        arch: arch.into(),
        input,
        steps: 7,
        beta: 0.85,
        ..SpikingNetConfig::tutorial_conv()
    };
    c.firing.threshold = 0.4;
    c.firing.reset = reset;
    c.weight_quant = weights.map(|w| WeightQuantConfig::parse(w).unwrap());
    c
}

/// Deterministic 8-bit values, mostly zero as MNIST digits are.
fn pixels(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    (0..len)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            let v = (s >> 33) as u32;
            if v.is_multiple_of(3) {
                (v % 256) as u8
            } else {
                0
            }
        })
        .collect()
}

/// Gives every batch norm of the network non-trivial statistics, one channel a negative scale.
fn perturb_batch_norms(net: &mut nerve::models::SpikingNet, device: &Device) {
    for stage in &mut net.stages {
        if let Stage::BatchNorm2d(bn) = stage {
            let n = bn.norm.gamma.dims()[0];
            let gamma: Vec<f32> = (0..n)
                .map(|i| if i == 1 { -0.7 } else { 0.5 + 0.1 * i as f32 })
                .collect();
            bn.norm.gamma =
                Param::from_tensor(Tensor::from_data(TensorData::new(gamma, [n]), device));
            bn.norm.beta = Param::from_tensor(Tensor::from_data(
                TensorData::new((0..n).map(|i| 0.05 * i as f32).collect::<Vec<_>>(), [n]),
                device,
            ));
        }
    }
}

#[test]
fn the_engine_equals_its_dense_twin_bit_for_bit() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    device.seed(17);
    let cases = [
        (
            "6C3-MP2-5C3-MP2-FC4",
            [1, 14, 14],
            Some("4"),
            Reset::Subtract,
        ),
        (
            "4C3-AP2-BN2D-6C3-AP2-BN2D-FC5",
            [2, 14, 14],
            Some("ternary"),
            Reset::Subtract,
        ),
        (
            "5C3-LIF-4C3-LIF-MP2-FC3",
            [1, 11, 11],
            Some("8:channel"),
            Reset::Zero,
        ),
        ("FC12-FC4", [1, 6, 6], None, Reset::None),
        ("3C5-FC6-FC3", [1, 9, 9], Some("2:channel"), Reset::Subtract),
    ];
    for (arch, input, weights, reset) in cases {
        let config = config(arch, input, weights, reset);
        let mut net = config.init(&device).unwrap();
        perturb_batch_norms(&mut net, &device);
        let program = IntProgram::from_net(&net, &config, 8).unwrap();
        let size: usize = input.iter().product();
        let mut spiking = 0;
        for seed in 0..6u64 {
            let image = pixels(size, seed);
            let a = integer::run(&program, IntInput::Static(&image)).unwrap();
            let b = integer::run_reference(&program, IntInput::Static(&image)).unwrap();
            assert_eq!(a, b, "{arch}, static input {seed}");
            // Rate-coded steps: spikes of 255.
            let steps: Vec<Vec<u8>> = (0..program.steps)
                .map(|t| {
                    pixels(size, 100 + seed * 10 + t as u64)
                        .iter()
                        .map(|&v| if v > 0 { 255 } else { 0 })
                        .collect()
                })
                .collect();
            let a = integer::run(&program, IntInput::Steps(&steps)).unwrap();
            let b = integer::run_reference(&program, IntInput::Steps(&steps)).unwrap();
            assert_eq!(a, b, "{arch}, rate-coded input {seed}");
            spiking += a.layer_spikes[0];
        }
        assert!(
            spiking > 0,
            "{arch}: the first layer never fired, the test proves little"
        );
    }
}

#[test]
fn integer_membranes_track_the_float_network() {
    let _turn = crate::common::rng_turn();
    // One layer on the 8-bit input: the integer membrane times its unit follows the float
    // membrane within the rounding the module docs bound (half a unit per step and the bias).
    let device = Device::flex();
    device.seed(4);
    let config = config("FC6", [1, 5, 5], Some("8"), Reset::Subtract);
    let net = config.init(&device).unwrap();
    let program = IntProgram::from_net(&net, &config, 8).unwrap();
    let image = pixels(25, 9);
    let x = Tensor::<5>::from_data(
        TensorData::new(
            image
                .iter()
                .map(|&v| f32::from(v) / 255.0)
                .collect::<Vec<_>>(),
            [1, 1, 1, 5, 5],
        ),
        &device,
    );
    let float = net.forward(x, None, false).unwrap();
    let mem: Vec<f32> = float
        .mem
        .narrow(0, 6, 1)
        .into_data()
        .iter::<f32>()
        .collect();
    let out = integer::run(&program, IntInput::Static(&image)).unwrap();
    let Some(IntOp::Leaky { scale, .. }) = program.ops.last() else {
        panic!("the program ends with neurons")
    };
    let float_spikes: f32 = float.spk.sum().into_scalar::<f32>();
    let int_spikes: u32 = out.counts.iter().sum();
    for (k, (&u, &m)) in out.last_membranes.iter().zip(&mem).enumerate() {
        let got = u as f32 * scale[k];
        assert!(
            (got - m).abs() <= 8.0 * scale[k] + 1e-6,
            "neuron {k}: {got} vs {m}"
        );
    }
    assert!(
        (float_spikes - int_spikes as f32).abs() <= 2.0,
        "{float_spikes} vs {int_spikes}"
    );
    // The first layer multiplies (every connection), the neurons update each step.
    assert_eq!(out.macs, 25 * 6);
    assert_eq!(out.neuron_updates, 7 * 6);
}

#[test]
fn nq_files_round_trip_and_corrupt_ones_are_refused() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    device.seed(8);
    let config = config(
        "4C3-AP2-BN2D-FC5",
        [1, 8, 8],
        Some("4:channel"),
        Reset::Subtract,
    );
    let net = config.init(&device).unwrap();
    let program = IntProgram::from_net(&net, &config, 8).unwrap();
    let bytes = integer::encode(&program).unwrap();
    assert_eq!(integer::decode(&bytes).unwrap(), program);
    for (what, bad, needle) in [
        ("empty", Vec::new(), "magic"),
        ("truncated", bytes[..bytes.len() - 3].to_vec(), "truncated"),
        (
            "other version",
            [&bytes[..8], &9u32.to_le_bytes()[..], &bytes[12..]].concat(),
            "version 9",
        ),
        (
            "flipped weight",
            {
                let mut b = bytes.clone();
                let n = b.len();
                b[n - 40] ^= 0x55;
                b
            },
            "checksum",
        ),
    ] {
        let err = integer::decode(&bad).unwrap_err();
        assert!(err.contains(needle), "{what}: {err}");
        assert!(!err.contains('\n'), "{what}: {err}");
    }
    // An error quoting the file stays on one line (found by the `nq` fuzz target).
    let header = b"{\"pro\nput\":1}";
    let quoting = [
        &b"NERVENQ\0"[..],
        &1u32.to_le_bytes(),
        &(header.len() as u32).to_le_bytes(),
        header,
    ]
    .concat();
    let err = integer::decode(&quoting).unwrap_err();
    assert!(
        err.contains("header is not valid") && !err.contains('\n'),
        "{err}"
    );
    // A header whose shapes do not chain is refused even with a matching payload.
    let mut broken = program.clone();
    if let IntOp::Linear { inputs, .. } = &mut broken.ops[3] {
        *inputs += 1;
    }
    assert!(integer::encode(&broken).is_err());
    // Every truncation and seeded mutations: an error or a program, never a panic.
    let (_, refused) = no_panic_loop(12, std::slice::from_ref(&bytes), 400, &["nq"], |b| {
        let p = integer::decode(b).map_err(|e| nerve::Error::invalid("nq", e))?;
        let size: usize = p.input.iter().product();
        integer::run(&p, IntInput::Static(&vec![1; size])).map(|_| ())
    });
    assert!(refused > 300, "only {refused} of 400 damaged files refused");
    for cut in 0..bytes.len() {
        assert!(integer::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn what_the_engine_cannot_run_is_named() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    for (arch, needle) in [
        ("4C3-BN-FC5", "batch norm through time"),
        ("4C3-LIF-AP2-FC5", "average pooling of spikes"),
    ] {
        let config = config(arch, [1, 8, 8], None, Reset::Subtract);
        let net = config.init(&device).unwrap();
        let err = IntProgram::from_net(&net, &config, 8)
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{arch}: {err}");
    }
    let config = config("FC5", [1, 4, 4], None, Reset::Subtract);
    let net = config.init(&device).unwrap();
    let err = IntProgram::from_net(&net, &config, 9)
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside 1..8 bits"), "{err}");
    // A learned threshold per neuron is refused, a shared one converted.
    assert!(net
        .stages
        .iter()
        .any(|s| matches!(s, Stage::Neuron(n) if !n.records_mem())));
}
