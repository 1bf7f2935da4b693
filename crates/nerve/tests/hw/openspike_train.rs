//! A network trained for OpenSpike's arithmetic: the float model predicts exactly what the
//! simulated chip computes, its layer sizes are checked, and it learns a separable task.

use burn::tensor::{Device, Distribution, Tensor};
use nerve::hw::openspike::train::{self, ChipNet, ChipTrainConfig, PIXEL_ON};

/// Deterministic 8-bit images.
fn images(n: usize, len: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    (0..n)
        .map(|_| {
            (0..len)
                .map(|_| {
                    s = s
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    (s >> 56) as u8
                })
                .collect()
        })
        .collect()
}

#[test]
fn the_float_model_predicts_what_the_simulated_chip_computes() {
    let _turn = crate::common::rng_turn();
    let device = Device::flex();
    device.seed(3);
    for (inputs, hidden, outputs, spread) in [
        (64, 40, 10, 0.1),
        (300, 600, 16, 0.3),
        (1024, 1024, 4, 0.85),
    ] {
        let mut net = ChipNet::new(inputs, hidden, outputs, &device).unwrap();
        // Initial potentials all over 0..255 (some past 255 or below 0, clamped), and weights of
        // both signs, so that hidden layers both fire and stay quiet and sums saturate.
        net.u1 = burn::module::Param::from_tensor(Tensor::<1>::random(
            [hidden],
            Distribution::Uniform(-20.0, 280.0),
            &device,
        ));
        net.u2 = burn::module::Param::from_tensor(Tensor::<1>::random(
            [outputs],
            Distribution::Uniform(-20.0, 280.0),
            &device,
        ));
        net.w1 = burn::module::Param::from_tensor(Tensor::<2>::random(
            [inputs, hidden],
            Distribution::Uniform(-spread, 1.0 - spread),
            &device,
        ));
        let (network, init) = net.compile().unwrap();
        let data = images(60, inputs, inputs as u64);
        let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
        let float = train::predictions(&net, &refs);
        let mut fired = 0;
        for (k, image) in refs.iter().enumerate() {
            assert_eq!(
                train::classify_on_chip(&network, &init, image).unwrap(),
                float[k],
                "{inputs}-{hidden}-{outputs}, image {k}"
            );
            let mut state = init.clone();
            let x: Vec<bool> = image.iter().map(|&p| p >= PIXEL_ON).collect();
            let step = network.step(&mut state, &x).unwrap();
            fired += step[1].spikes.iter().filter(|&&s| s).count();
        }
        assert!(
            fired > 0 && fired < 60 * hidden,
            "{inputs}-{hidden}-{outputs}: {fired} hidden spikes"
        );
    }
}

#[test]
fn sizes_outside_the_chip_are_refused() {
    let device = Device::flex();
    for (i, h, o, what) in [
        (1025, 10, 10, "1025 inputs"),
        (10, 1025, 10, "1025 hidden"),
        (10, 10, 17, "17 outputs"),
        (10, 0, 10, "0 hidden"),
    ] {
        let err = ChipNet::new(i, h, o, &device).unwrap_err().to_string();
        assert!(err.contains(what) && !err.contains('\n'), "{err}");
    }
}

#[test]
fn it_learns_a_separable_task_and_the_chip_agrees() {
    let _turn = crate::common::rng_turn();
    // Class k lights the k-th quarter of a 64-pixel image (plus noise): four classes.
    let noise = images(400, 64, 11);
    let labels: Vec<u8> = (0..400).map(|i| (i % 4) as u8).collect();
    let data: Vec<Vec<u8>> = noise
        .iter()
        .zip(&labels)
        .map(|(n, &y)| {
            n.iter()
                .enumerate()
                .map(|(p, &v)| if p / 16 == usize::from(y) { 255 } else { v / 3 })
                .collect()
        })
        .collect();
    let refs: Vec<&[u8]> = data.iter().map(Vec::as_slice).collect();
    let config = ChipTrainConfig {
        hidden: 32,
        epochs: 8,
        batch_size: 32,
        ..ChipTrainConfig::default()
    };
    let mut losses = Vec::new();
    let net = train::train(&refs, &labels, 4, &config, |_, _, _, loss| {
        losses.push(loss)
    })
    .unwrap();
    let accuracy = train::accuracy(&net, &refs, &labels);
    assert!(accuracy > 0.95, "accuracy {accuracy}");
    assert!(
        losses.last().unwrap() < &losses[0],
        "loss did not fall: {losses:?}"
    );
    let (network, init) = net.compile().unwrap();
    let on_chip = refs
        .iter()
        .zip(&labels)
        .filter(|(im, &y)| train::classify_on_chip(&network, &init, im).unwrap() == usize::from(y))
        .count();
    assert_eq!(on_chip as f64 / 400.0, accuracy);
    let err = train::train(&refs, &labels[..3], 4, &config, |_, _, _, _| {})
        .unwrap_err()
        .to_string();
    assert!(err.contains("one label each"), "{err}");
}
