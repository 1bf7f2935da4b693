//! The event-driven fully connected kernel equals the dense GEMM: outputs and the gradients of
//! input, weights and bias, on binary spikes and on sparse real values.

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use nerve::kernels::spike_linear::{density, sparse_forward, spike_linear, SpikeLinearMode};
use nerve::layers::TimeLinear;

fn rel_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar::<f32>().max(1.0);
    (a - b).abs().max().into_scalar::<f32>() / scale
}

/// Spikes with probability `p` (values 1), or sparse normal values when `real`.
fn sparse_input(shape: [usize; 2], p: f64, real: bool, device: &Device) -> Tensor<2> {
    let mask = Tensor::<2>::random(shape, Distribution::Bernoulli(p), device);
    if real {
        mask * Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), device)
    } else {
        mask
    }
}

#[test]
fn sparse_forward_equals_the_dense_product() {
    let device = Device::flex();
    device.seed(3);
    for (p, real) in [(0.05, false), (0.15, true), (0.6, false)] {
        let x = sparse_input([37, 50], p, real, &device);
        let w = Tensor::<2>::random([50, 33], Distribution::Normal(0.0, 0.3), &device);
        let b = Tensor::<1>::random([33], Distribution::Normal(0.0, 0.3), &device);
        let dense = x.clone().matmul(w.clone()) + b.clone().unsqueeze::<2>();
        let xs: Vec<f32> = x.clone().into_data().iter::<f32>().collect();
        assert!((density(&xs) - p).abs() < 0.1, "density {}", density(&xs));
        let ys = sparse_forward(
            &xs,
            &w.clone().into_data().iter::<f32>().collect::<Vec<_>>(),
            &b.clone().into_data().iter::<f32>().collect::<Vec<_>>(),
            37,
            50,
            33,
        );
        let sparse = Tensor::<2>::from_data(burn::tensor::TensorData::new(ys, [37, 33]), &device);
        assert!(rel_diff(sparse, dense.clone()) < 1e-5, "p {p}");
        for mode in [
            SpikeLinearMode::Auto,
            SpikeLinearMode::Sparse,
            SpikeLinearMode::Dense,
        ] {
            let y = spike_linear(x.clone(), w.clone(), b.clone(), mode);
            assert!(rel_diff(y, dense.clone()) < 1e-5, "p {p} {mode:?}");
        }
    }
}

#[test]
fn gradients_of_both_paths_equal_burns_matmul() {
    let device = Device::flex().autodiff();
    device.seed(9);
    // (rows, inputs, outputs, density, real values): the second shape has a partial block of
    // rows and a second, partial column slab in the kernel's weight gradient.
    for (m, k, n, p, real) in [
        (64, 40, 24, 0.1, false),
        (64, 40, 24, 0.3, true),
        (70, 40, 300, 0.15, true),
    ] {
        let x0 = sparse_input([m, k], p, real, &device);
        let w0 = Tensor::<2>::random([k, n], Distribution::Normal(0.0, 0.3), &device);
        let b0 = Tensor::<1>::random([n], Distribution::Normal(0.0, 0.3), &device);
        let weights = Tensor::<2>::random([m, n], Distribution::Normal(0.0, 1.0), &device);
        let run = |mode: Option<SpikeLinearMode>| {
            let x = x0.clone().detach().require_grad();
            let w = w0.clone().detach().require_grad();
            let b = b0.clone().detach().require_grad();
            let y = match mode {
                Some(mode) => spike_linear(x.clone(), w.clone(), b.clone(), mode),
                None => x.clone().matmul(w.clone()) + b.clone().unsqueeze::<2>(),
            };
            let g = (y * weights.clone()).sum().backward();
            (
                x.grad(&g).unwrap(),
                w.grad(&g).unwrap(),
                b.grad(&g).unwrap(),
            )
        };
        let (gx, gw, gb) = run(None);
        for mode in [
            SpikeLinearMode::Sparse,
            SpikeLinearMode::Dense,
            SpikeLinearMode::Auto,
        ] {
            let (x, w, b) = run(Some(mode));
            assert!(rel_diff(x, gx.clone()) < 1e-5, "{mode:?} input gradient");
            assert!(rel_diff(w, gw.clone()) < 1e-5, "{mode:?} weight gradient");
            assert!(rel_diff(b, gb.clone()) < 1e-5, "{mode:?} bias gradient");
        }
    }
}

#[test]
fn time_linear_on_spikes_equals_the_plain_linear_layer() {
    let device = Device::flex().autodiff();
    device.seed(4);
    // 80 outputs: enough for the automatic choice to take the event-driven path.
    let layer = TimeLinear::new(30, 80, &device);
    let spikes = Tensor::<3>::random([6, 5, 30], Distribution::Bernoulli(0.1), &device);
    let ours = layer.forward(spikes.clone());
    let plain = layer
        .linear
        .forward(spikes.clone().reshape([30, 30]))
        .reshape([6, 5, 80]);
    assert!(rel_diff(ours.clone(), plain.clone()) < 1e-6);
    // The weight gradient flows through the event-driven path.
    let g = ours.sum().backward();
    let gw = layer.linear.weight.val().grad(&g).unwrap();
    let g2 = plain.sum().backward();
    let gw2 = layer.linear.weight.val().grad(&g2).unwrap();
    assert!(rel_diff(gw, gw2) < 1e-5);
    // Inference (no autodiff) takes the same kernel.
    let valid = layer.valid();
    let x = spikes.inner();
    let y = valid.forward(x.clone());
    let y2 = valid
        .linear
        .forward(x.reshape([30, 30]))
        .reshape([6, 5, 80]);
    assert!(rel_diff(y, y2) < 1e-6);
}
