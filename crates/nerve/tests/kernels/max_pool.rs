//! The pooling kernel equals Burn's `max_pool2d` in values and gradients, including ties on
//! binary spike maps (the first maximum wins) and maps whose size the window does not divide.

use burn::nn::pool::MaxPool2dConfig;
use burn::tensor::{Device, Distribution, Tensor};
use nerve::kernels::max_pool::window_max_pool2d;
use nerve::layers::TimeMaxPool2d;

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims(), "shapes");
    (a - b).abs().max().into_scalar::<f32>()
}

/// Burn's pooling with stride equal to the window.
fn burn_pool(x: Tensor<4>, window: [usize; 2]) -> Tensor<4> {
    MaxPool2dConfig::new(window).init().forward(x)
}

/// Real values, or spikes (many ties) when `spikes`.
fn input(shape: [usize; 4], spikes: bool, device: &Device) -> Tensor<4> {
    if spikes {
        Tensor::random(shape, Distribution::Bernoulli(0.3), device)
    } else {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }
}

const CASES: [([usize; 4], [usize; 2]); 3] = [
    ([3, 4, 8, 8], [2, 2]),
    ([2, 3, 9, 7], [3, 2]),
    ([1, 2, 5, 6], [1, 3]),
];

#[test]
fn values_equal_burns_max_pool() {
    let device = Device::flex();
    device.seed(4);
    for (shape, window) in CASES {
        for spikes in [false, true] {
            let x = input(shape, spikes, &device);
            let want = burn_pool(x.clone(), window);
            let got = window_max_pool2d(x, window);
            assert_eq!(max_abs_diff(got, want), 0.0, "{shape:?} {window:?}");
        }
    }
}

#[test]
fn gradients_equal_burns_max_pool_including_ties() {
    let device = Device::flex().autodiff();
    device.seed(8);
    for (shape, window) in CASES {
        for spikes in [false, true] {
            let x0 = input(shape, spikes, &device).detach();
            let x = x0.clone().require_grad();
            let y = burn_pool(x.clone(), window);
            let r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &device).detach();
            let want = x.grad(&(y * r.clone()).sum().backward()).expect("grad");
            let x = x0.clone().require_grad();
            let y = window_max_pool2d(x.clone(), window);
            let got = x.grad(&(y * r).sum().backward()).expect("grad");
            assert_eq!(
                max_abs_diff(got, want),
                0.0,
                "{shape:?} {window:?} spikes {spikes}"
            );
        }
    }
}

#[test]
fn time_max_pool_matches_burn_on_folded_time() {
    let device = Device::flex();
    device.seed(1);
    let x = Tensor::<5>::random([3, 2, 4, 8, 6], Distribution::Normal(0.0, 1.0), &device);
    let layer = TimeMaxPool2d::new(2);
    let got = layer.forward(x.clone());
    assert_eq!(got.dims(), [3, 2, 4, 4, 3]);
    let want = layer.pool.forward(x.flatten(0, 1));
    assert_eq!(max_abs_diff(got.flatten(0, 1), want), 0.0);
}
