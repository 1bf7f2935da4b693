//! The fused multi-step Leaky kernel computes what the step-by-step tensor-op reference does:
//! spikes, membranes, final state and the gradients of the input and the initial state, for
//! every reset mechanism and every closed-form surrogate.

use burn::tensor::{Device, Distribution, Tensor};
use nerve::neurons::{FiringConfig, LeakyConfig, LeakyState, Neuron, Reset};
use nerve::surrogate::Surrogate;

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

fn scale<const D: usize>(a: &Tensor<D>) -> f32 {
    a.clone().abs().max().into_scalar::<f32>().max(1.0)
}

fn config(reset: Reset, surrogate: Surrogate, graded: f64) -> LeakyConfig {
    LeakyConfig {
        record_mem: true,
        firing: FiringConfig {
            reset,
            surrogate,
            graded_spikes_factor: graded,
            threshold: 0.8,
            ..FiringConfig::default()
        },
        ..LeakyConfig::new(0.9)
    }
}

#[test]
fn forward_matches_the_reference_for_every_reset() {
    let device = Device::flex();
    device.seed(11);
    // Inputs around the threshold so neurons fire and reset often.
    let x = Tensor::<3>::random([40, 3, 70], Distribution::Normal(0.3, 0.6), &device);
    let mem0 = Tensor::<3>::random([1, 3, 70], Distribution::Normal(0.5, 0.5), &device);
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        let lif = config(reset, Surrogate::default(), 1.0).init(&device);
        let state = || Some(LeakyState { mem: mem0.clone() });
        assert!(lif.runs_fused(&x), "the kernel should apply");
        let fused = lif.run(x.clone(), state());
        let reference = lif.run_reference(x.clone(), state());
        let spikes = fused.spk.clone().sum().into_scalar::<f32>();
        assert!(spikes > 100.0, "{reset:?}: only {spikes} spikes");
        assert_eq!(
            max_abs_diff(fused.spk, reference.spk),
            0.0,
            "{reset:?}: spikes differ"
        );
        let mem = reference.mem.unwrap();
        let tol = 1e-5 * scale(&mem);
        assert!(
            max_abs_diff(fused.mem.unwrap(), mem) <= tol,
            "{reset:?}: membranes"
        );
        assert!(
            max_abs_diff(fused.state.mem, reference.state.mem.clone()) <= tol,
            "{reset:?}: final state"
        );
        // Without a recorded trace the kernel writes only spikes and the final membrane.
        let mut quiet = config(reset, Surrogate::default(), 1.0);
        quiet.record_mem = false;
        let quiet = quiet.init(&device);
        let out = quiet.run(x.clone(), state());
        assert!(out.mem.is_none());
        assert_eq!(max_abs_diff(out.spk, fused_spk(&lif, &x, state())), 0.0);
        assert!(max_abs_diff(out.state.mem, reference.state.mem) <= tol);
    }
}

fn fused_spk(
    lif: &nerve::neurons::Leaky,
    x: &Tensor<3>,
    state: Option<LeakyState<3>>,
) -> Tensor<3> {
    lif.run(x.clone(), state).spk
}

#[test]
fn gradients_match_the_reference_for_every_reset_and_surrogate() {
    let surrogates = [
        Surrogate::ATan { alpha: 2.0 },
        Surrogate::FastSigmoid { slope: 25.0 },
        Surrogate::Sigmoid { slope: 5.0 },
        Surrogate::Triangular { threshold: 1.0 },
        Surrogate::SpikeRateEscape {
            beta: 1.0,
            slope: 2.0,
        },
        Surrogate::StraightThrough,
        Surrogate::SparseFastSigmoid {
            slope: 25.0,
            b: -0.2,
        },
    ];
    let device = Device::flex().autodiff();
    device.seed(5);
    let shape = [25, 2, 40];
    let x0 = Tensor::<3>::random(shape, Distribution::Normal(0.3, 0.6), &device);
    let m0 = Tensor::<3>::random([1, 2, 40], Distribution::Normal(0.4, 0.5), &device);
    // Random weights on spikes, membranes and the final state make every output matter.
    let w_spk = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let w_mem = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let w_end = Tensor::<3>::random([1, 2, 40], Distribution::Normal(0.0, 1.0), &device);
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for (k, surrogate) in surrogates.iter().enumerate() {
            let graded = if k % 2 == 0 { 1.0 } else { 0.7 };
            let lif = config(reset, surrogate.clone(), graded).init(&device);
            assert!(lif.runs_fused(&x0), "the kernel should apply");
            let grads = |fused: bool| {
                let x = x0.clone().detach().require_grad();
                let mem0 = m0.clone().detach().require_grad();
                let state = Some(LeakyState { mem: mem0.clone() });
                let out = if fused {
                    lif.run(x.clone(), state)
                } else {
                    lif.run_reference(x.clone(), state)
                };
                let loss = (out.spk * w_spk.clone()).sum()
                    + (out.mem.unwrap() * w_mem.clone()).sum()
                    + (out.state.mem * w_end.clone()).sum();
                let g = loss.backward();
                (
                    x.grad(&g).expect("x has a gradient"),
                    mem0.grad(&g).expect("mem0 has a gradient"),
                )
            };
            let (gx_f, gm_f) = grads(true);
            let (gx_r, gm_r) = grads(false);
            let what = format!("{reset:?} / {surrogate:?}");
            assert!(
                max_abs_diff(gx_f.clone(), gx_r.clone()) <= 1e-5 * scale(&gx_r),
                "{what}: input gradients differ by {}",
                max_abs_diff(gx_f, gx_r)
            );
            assert!(
                max_abs_diff(gm_f.clone(), gm_r.clone()) <= 1e-5 * scale(&gm_r),
                "{what}: initial-state gradients differ by {}",
                max_abs_diff(gm_f, gm_r)
            );
        }
    }
}

#[test]
fn learned_or_per_neuron_parameters_fall_back_to_the_reference() {
    // A learned β must get its gradient, which only the reference path provides.
    let device = Device::flex().autodiff();
    let lif = LeakyConfig {
        learn_beta: true,
        ..LeakyConfig::new(0.7)
    }
    .init(&device);
    let x = Tensor::<3>::ones([6, 1, 3], &device) * 0.6;
    assert!(!lif.runs_fused(&x));
    let out = lif.run(x, None);
    let grads = out.spk.sum().backward();
    let g = lif.beta.val().grad(&grads).expect("β has a gradient");
    assert!(g.abs().sum().into_scalar::<f32>() > 0.0);
}

/// Gradients of `x` and `mem0` for `loss(out)`, through the fused kernel or the reference.
fn input_grads(
    lif: &nerve::neurons::Leaky,
    x0: &Tensor<3>,
    m0: &Tensor<3>,
    fused: bool,
    loss: impl Fn(nerve::neurons::NeuronOutput<3, LeakyState<3>>) -> Tensor<1>,
) -> (Tensor<3>, Tensor<3>) {
    let x = x0.clone().detach().require_grad();
    let mem0 = m0.clone().detach().require_grad();
    let state = Some(LeakyState { mem: mem0.clone() });
    let out = if fused {
        lif.run(x.clone(), state)
    } else {
        lif.run_reference(x.clone(), state)
    };
    let g = loss(out).backward();
    (
        x.grad(&g).expect("x has a gradient"),
        mem0.grad(&g).expect("mem0 has a gradient"),
    )
}

fn assert_close(what: &str, a: Tensor<3>, b: Tensor<3>) {
    let tol = 1e-5 * scale(&b);
    let diff = max_abs_diff(a, b);
    assert!(diff <= tol, "{what}: differ by {diff} (tolerance {tol})");
}

#[test]
fn training_without_a_membrane_trace_recomputes_the_same_gradients() {
    // Without `record_mem` the op keeps only its input and recomputes the membranes in the
    // backward; each output (spikes, final state, trace) has its own reverse pass.
    let device = Device::flex().autodiff();
    device.seed(8);
    let shape = [30, 2, 45];
    let x0 = Tensor::<3>::random(shape, Distribution::Normal(0.3, 0.6), &device);
    let m0 = Tensor::<3>::random([1, 2, 45], Distribution::Normal(0.4, 0.5), &device);
    let w_spk = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let w_mem = Tensor::<3>::random(shape, Distribution::Normal(0.0, 1.0), &device);
    let w_end = Tensor::<3>::random([1, 2, 45], Distribution::Normal(0.0, 1.0), &device);
    for reset in [Reset::Subtract, Reset::Zero, Reset::None] {
        for surrogate in [
            Surrogate::ATan { alpha: 2.0 },
            Surrogate::Sigmoid { slope: 5.0 },
        ] {
            let what = format!("{reset:?} / {surrogate:?}");
            let mut cfg = config(reset, surrogate.clone(), 0.7);
            cfg.record_mem = false;
            let quiet = cfg.init(&device);
            assert!(quiet.runs_fused(&x0));
            // Spikes only, and spikes plus the final state.
            let spikes = |o: nerve::neurons::NeuronOutput<3, LeakyState<3>>| {
                assert!(o.mem.is_none(), "no trace was asked for");
                (o.spk * w_spk.clone()).sum()
            };
            let both = |o: nerve::neurons::NeuronOutput<3, LeakyState<3>>| {
                (o.spk * w_spk.clone()).sum() + (o.state.mem * w_end.clone()).sum()
            };
            for (name, fused, reference) in [
                (
                    "spikes",
                    input_grads(&quiet, &x0, &m0, true, spikes),
                    input_grads(&quiet, &x0, &m0, false, spikes),
                ),
                (
                    "spikes + state",
                    input_grads(&quiet, &x0, &m0, true, both),
                    input_grads(&quiet, &x0, &m0, false, both),
                ),
            ] {
                assert_close(&format!("{what} {name}: x"), fused.0, reference.0);
                assert_close(&format!("{what} {name}: mem0"), fused.1, reference.1);
            }
            // Each of the recorded op's outputs alone: the final state, the trace.
            let traced = config(reset, surrogate, 0.7).init(&device);
            let end = |o: nerve::neurons::NeuronOutput<3, LeakyState<3>>| {
                (o.state.mem * w_end.clone()).sum()
            };
            let trace = |o: nerve::neurons::NeuronOutput<3, LeakyState<3>>| {
                (o.mem.expect("a trace") * w_mem.clone()).sum()
            };
            for (name, fused, reference) in [
                (
                    "final state",
                    input_grads(&traced, &x0, &m0, true, end),
                    input_grads(&traced, &x0, &m0, false, end),
                ),
                (
                    "trace",
                    input_grads(&traced, &x0, &m0, true, trace),
                    input_grads(&traced, &x0, &m0, false, trace),
                ),
            ] {
                assert!(
                    fused.0.clone().abs().sum().into_scalar::<f32>() > 0.0,
                    "{what} {name}: some gradient reaches x"
                );
                assert_close(&format!("{what} {name}: x"), fused.0, reference.0);
                assert_close(&format!("{what} {name}: mem0"), fused.1, reference.1);
            }
        }
    }
}

#[test]
fn gradients_flow_through_the_state_between_two_runs() {
    // Truncated BPTT style: the second chunk starts from the first one's final state, so the
    // loss on the second chunk's spikes reaches the first chunk's input through `last`.
    let device = Device::flex().autodiff();
    device.seed(21);
    let x0 = Tensor::<3>::random([12, 3, 33], Distribution::Normal(0.3, 0.6), &device);
    let x1 = Tensor::<3>::random([9, 3, 33], Distribution::Normal(0.3, 0.6), &device);
    let w = Tensor::<3>::random([9, 3, 33], Distribution::Normal(0.0, 1.0), &device);
    for reset in [Reset::Subtract, Reset::Zero] {
        let mut cfg = config(reset, Surrogate::FastSigmoid { slope: 25.0 }, 1.0);
        cfg.record_mem = false;
        let lif = cfg.init(&device);
        let grads = |fused: bool| {
            let (a, b) = (x0.clone().require_grad(), x1.clone().require_grad());
            let run = |x: Tensor<3>, s| {
                if fused {
                    lif.run(x, s)
                } else {
                    lif.run_reference(x, s)
                }
            };
            let first = run(a.clone(), None);
            let second = run(b.clone(), Some(first.state));
            let g = (second.spk * w.clone()).sum().backward();
            (
                a.grad(&g).expect("first chunk"),
                b.grad(&g).expect("second"),
            )
        };
        let (f, r) = (grads(true), grads(false));
        assert!(f.0.clone().abs().sum().into_scalar::<f32>() > 0.0);
        assert_close(&format!("{reset:?}: first chunk"), f.0, r.0);
        assert_close(&format!("{reset:?}: second chunk"), f.1, r.1);
    }
}

#[test]
fn state_quantization_in_the_kernel_matches_the_reference_forward_and_backward() {
    let device = Device::flex().autodiff();
    device.seed(5);
    let x0 = Tensor::<3>::random([30, 2, 50], Distribution::Normal(0.3, 0.6), &device);
    let m0 = Tensor::<3>::random([1, 2, 50], Distribution::Normal(0.5, 0.5), &device);
    for (bits, uniform) in [(4, true), (3, false), (8, true)] {
        let mut quant = nerve::quant::StateQuantConfig::new(bits, 0.8);
        quant.uniform = uniform;
        let mut cfg = config(Reset::Subtract, Surrogate::default(), 1.0);
        cfg.firing.state_quant = Some(quant.init().unwrap());
        let lif = cfg.init(&device);
        assert!(lif.runs_fused(&x0), "the kernel should apply");
        let state = || Some(LeakyState { mem: m0.clone() });
        let fused = lif.run(x0.clone(), state());
        let reference = lif.run_reference(x0.clone(), state());
        assert_eq!(
            max_abs_diff(fused.spk, reference.spk),
            0.0,
            "{bits} bits: spikes"
        );
        let mem = fused.mem.unwrap();
        assert_eq!(max_abs_diff(mem.clone(), reference.mem.unwrap()), 0.0);
        // Every membrane is one of the levels.
        let levels = quant.levels().unwrap();
        let on_grid = mem.into_data().iter::<f32>().all(|m| levels.contains(&m));
        assert!(on_grid, "{bits} bits: a membrane off the level table");
        let loss = |out: nerve::neurons::NeuronOutput<3, LeakyState<3>>| {
            out.spk.sum() + out.mem.unwrap().powf_scalar(2.0).sum() * 0.1
        };
        let (gx_f, gm_f) = input_grads(&lif, &x0, &m0, true, loss);
        let (gx_r, gm_r) = input_grads(&lif, &x0, &m0, false, loss);
        assert_close("quantized x gradients", gx_f, gx_r);
        assert_close("quantized mem0 gradients", gm_f, gm_r);
    }
}
