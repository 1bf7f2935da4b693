//! A trained network mapped onto OpenSpike: the layers, 1-bit weights and decay codes follow
//! from the float network as documented, and networks that do not fit are named with the limit.

use burn::tensor::Device;
use nerve::hw::openspike::{compile, CompileOptions, Images};
use nerve::models::spiking_net::Stage;
use nerve::models::SpikingNetConfig;

fn net(arch: &str, input: [usize; 3]) -> nerve::models::SpikingNet {
    let config = SpikingNetConfig {
        arch: arch.into(),
        input,
        steps: 5,
        beta: 0.8,
        ..SpikingNetConfig::tutorial_conv()
    };
    config.init(&Device::flex()).unwrap()
}

#[test]
fn a_two_layer_network_maps_weight_by_weight() {
    let _turn = crate::common::rng_turn();
    Device::flex().seed(4);
    let float = net("FC20-FC4", [1, 4, 4]);
    let c = compile::from_net(&float, &CompileOptions::default()).unwrap();
    let layers = c.network.layers();
    let sizes: Vec<usize> = layers.iter().map(|l| l.neurons()).collect();
    assert_eq!((c.network.inputs(), sizes), (16, vec![16, 20, 4]));
    assert!((0..16).all(|j| (0..16).all(|i| layers[0].weight(j, i) == (i == j))));
    assert_eq!(layers[0].beta(), [8; 16]);
    assert_eq!(c.init.u[0], [230; 16]);
    assert!(c.init.able.iter().flatten().all(|&a| a));
    // β 0.8 is 6.4 eighths: code 6.
    assert!(layers[1..].iter().all(|l| l.beta().iter().all(|&b| b == 6)));
    let linears: Vec<Vec<f32>> = float
        .stages
        .iter()
        .filter_map(|s| match s {
            Stage::Linear(l) => Some(l.linear.weight.val().into_data().iter::<f32>().collect()),
            _ => None,
        })
        .collect();
    for (k, (w, layer)) in linears.iter().zip(&layers[1..]).enumerate() {
        let (n_in, n_out) = (layer.inputs(), layer.neurons());
        for i in 0..n_in {
            for j in 0..n_out {
                assert_eq!(
                    layer.weight(j, i),
                    w[i * n_out + j] > 0.0,
                    "layer {k} {i}->{j}"
                );
            }
        }
        let ones = (0..n_out * n_in)
            .filter(|&x| layer.weight(x / n_in, x % n_in))
            .count();
        assert_eq!(c.density[k], ones as f64 / (n_in * n_out) as f64);
    }
    // A stricter threshold keeps fewer weights; the result fits the images.
    let strict = CompileOptions {
        weight_threshold: 0.5,
        ..CompileOptions::default()
    };
    let s = compile::from_net(&float, &strict).unwrap();
    assert!(s.density[0] < c.density[0] && s.density[0] > 0.0);
    Images::encode(&c.network, &c.init, &vec![vec![true; 16]; 5]).unwrap();
    let (best, counts) = compile::classify(&c.network, &c.init, &vec![vec![true; 16]; 5]).unwrap();
    assert_eq!(counts.len(), 4);
    assert!(best < 4);
}

#[test]
fn what_does_not_fit_is_named_with_its_limit() {
    let _turn = crate::common::rng_turn();
    let options = CompileOptions::default();
    for (arch, input, needles) in [
        (
            "FC20-FC17",
            [1, 4, 4],
            &["output layer of 17 neurons", "16"][..],
        ),
        (
            "FC1100-FC4",
            [1, 4, 4],
            &["hidden layer of 1100 neurons", "1024"],
        ),
        ("FC8-FC4", [1, 33, 33], &["input of 1089 values", "1024"]),
        (
            "4C3-FC4",
            [1, 6, 6],
            &["convolution", "fully connected layers only"],
        ),
        (
            "FC8-FC8-FC4",
            [1, 4, 4],
            &["3 fully connected layers", "2 fully connected"],
        ),
        ("FC4", [1, 4, 4], &["1 fully connected layers"]),
    ] {
        let err = compile::from_net(&net(arch, input), &options)
            .unwrap_err()
            .to_string();
        assert!(!err.contains('\n'), "{err}");
        for n in needles {
            assert!(err.contains(n), "{arch}: '{n}' not in: {err}");
        }
    }
    let bad = CompileOptions {
        weight_threshold: 1.0,
        ..options
    };
    let err = compile::from_net(&net("FC8-FC4", [1, 4, 4]), &bad)
        .unwrap_err()
        .to_string();
    assert!(err.contains("weight threshold 1"), "{err}");
}
