//! The event-driven convolution equals Burn's dense convolution: outputs and the gradients of
//! input, weights and bias, on binary spikes, sparse real values and all-zero input, with and
//! without padding.

use burn::module::{Module, Param};
use burn::nn::conv::Conv2dConfig;
use burn::nn::PaddingConfig2d;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Distribution, Tensor};
use nerve::kernels::spike_conv::{spike_conv2d, SpikeConvMode};
use nerve::layers::{TimeConv2d, WeightQuantizer};
use nerve::quant::WeightQuantConfig;

fn rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes");
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// Spikes with probability `p` (values 1), or sparse normal values when `real`.
fn sparse_input(shape: [usize; 4], p: f64, real: bool, device: &Device) -> Tensor<4> {
    let mask = Tensor::<4>::random(shape, Distribution::Bernoulli(p), device);
    if real {
        mask * Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), device)
    } else {
        mask
    }
}

/// `(x shape, out channels, kernel, padding)`.
type Case = ([usize; 4], usize, [usize; 2], [usize; 2]);

/// The cases: the W3 second layer, a rectangular kernel with
/// uneven padding per axis, and padding as wide as the kernel allows on a small map.
const CASES: [Case; 3] = [
    ([6, 12, 12, 12], 64, [5, 5], [0, 0]),
    ([5, 3, 9, 7], 70, [3, 5], [1, 2]),
    ([4, 2, 4, 4], 5, [5, 5], [2, 2]),
];

#[test]
fn sparse_forward_equals_burns_convolution() {
    let device = Device::flex();
    device.seed(5);
    for (shape, o, [kh, kw], padding) in CASES {
        for (p, real) in [(0.1, false), (0.25, true), (0.0, false), (0.7, false)] {
            let x = sparse_input(shape, p, real, &device);
            let w = Tensor::<4>::random(
                [o, shape[1], kh, kw],
                Distribution::Normal(0.0, 0.3),
                &device,
            );
            let b = Tensor::<1>::random([o], Distribution::Normal(0.0, 0.3), &device);
            let options = ConvOptions::new([1, 1], padding, [1, 1], 1);
            let dense = conv2d(x.clone(), w.clone(), Some(b.clone()), options);
            for mode in [
                SpikeConvMode::Sparse,
                SpikeConvMode::Dense,
                SpikeConvMode::Auto,
            ] {
                let y = spike_conv2d(x.clone(), w.clone(), b.clone(), padding, mode);
                let d = rel_diff(y, dense.clone());
                assert!(
                    d < 1e-5,
                    "{shape:?} k {kh}x{kw} pad {padding:?} p {p} {mode:?}: {d}"
                );
            }
        }
    }
}

#[test]
fn gradients_of_both_paths_equal_burns_convolution() {
    let device = Device::flex().autodiff();
    device.seed(11);
    for (shape, o, [kh, kw], padding) in CASES {
        for (p, real) in [(0.1, false), (0.3, true)] {
            let x0 = sparse_input(shape, p, real, &device).detach();
            let w0 = Tensor::<4>::random(
                [o, shape[1], kh, kw],
                Distribution::Normal(0.0, 0.3),
                &device,
            );
            let b0 = Tensor::<1>::random([o], Distribution::Normal(0.0, 0.3), &device);
            let options = ConvOptions::new([1, 1], padding, [1, 1], 1);
            let (x, w, b) = (
                x0.clone().require_grad(),
                w0.clone().require_grad(),
                b0.clone().require_grad(),
            );
            let y = conv2d(x.clone(), w.clone(), Some(b.clone()), options);
            // A weighted sum, so every output position gets a different gradient; for real
            // inputs masked to a quarter of the outputs, as after max pooling, so the input
            // gradient takes the path for sparse output gradients.
            let mut r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device);
            if real {
                r = r * Tensor::<4>::random(y.dims(), Distribution::Bernoulli(0.25), &device);
            }
            let r = r.detach();
            let grads = (y * r.clone()).sum().backward();
            let want = [
                x.grad(&grads).expect("x grad"),
                w.grad(&grads).expect("w grad"),
            ];
            let want_b = b.grad(&grads).expect("b grad");
            for mode in [SpikeConvMode::Sparse, SpikeConvMode::Dense] {
                let (x, w, b) = (
                    x0.clone().require_grad(),
                    w0.clone().require_grad(),
                    b0.clone().require_grad(),
                );
                let y = spike_conv2d(x.clone(), w.clone(), b.clone(), padding, mode);
                let grads = (y * r.clone()).sum().backward();
                let got = [
                    x.grad(&grads).expect("x grad"),
                    w.grad(&grads).expect("w grad"),
                ];
                for (name, got, want) in [("x", &got[0], &want[0]), ("w", &got[1], &want[1])] {
                    let d = rel_diff(got.clone(), want.clone());
                    assert!(d < 1e-5, "{shape:?} p {p} {mode:?} grad {name}: {d}");
                }
                let d = rel_diff(b.grad(&grads).expect("b grad"), want_b.clone());
                assert!(d < 1e-5, "{shape:?} p {p} {mode:?} grad b: {d}");
            }
        }
    }
}

#[test]
fn time_conv_takes_the_kernel_with_every_padding_burn_offers() {
    let device = Device::flex();
    device.seed(2);
    let x = Tensor::<5>::random([3, 2, 4, 9, 9], Distribution::Bernoulli(0.1), &device);
    for padding in [
        PaddingConfig2d::Valid,
        PaddingConfig2d::Same,
        PaddingConfig2d::Explicit(1, 2, 1, 2),
        // Asymmetric: the layer falls back to Burn's convolution, with the same result.
        PaddingConfig2d::Explicit(0, 1, 2, 1),
    ] {
        let layer = TimeConv2d {
            conv: Conv2dConfig::new([4, 6], [3, 5])
                .with_padding(padding.clone())
                .init(&device),
            quant: WeightQuantizer::none(),
        };
        let got = layer.forward(x.clone());
        let want = layer.conv.forward(x.clone().flatten(0, 1));
        let [t, b, o, h, w] = got.dims();
        assert_eq!([t * b, o, h, w], want.dims(), "{padding:?}");
        let d = rel_diff(got.flatten(0, 1), want);
        assert!(d < 1e-5, "{padding:?}: {d}");
        let valid = layer.valid();
        assert_eq!(valid.forward(x.clone()).dims(), [t, b, o, h, w]);
        // A 4-bit layer computes what Burn's convolution does with the quantized kernel, on
        // the event-driven path and on the dense one (asymmetric padding).
        let quantized = layer
            .clone()
            .quantized(Some(WeightQuantConfig::bits(4).unwrap()));
        let mut plain = layer.conv.clone();
        plain.weight = Param::from_tensor(quantized.weight());
        let want = plain.forward(x.clone().flatten(0, 1));
        let d = rel_diff(quantized.forward(x.clone()).flatten(0, 1), want);
        assert!(d < 1e-5, "{padding:?} quantized: {d}");
        let distinct: std::collections::BTreeSet<u32> = quantized
            .weight()
            .into_data()
            .iter::<f32>()
            .map(f32::to_bits)
            .collect();
        assert!(
            distinct.len() <= 15,
            "{} distinct 4-bit weights",
            distinct.len()
        );
    }
}
