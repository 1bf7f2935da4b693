//! Autodiff gradients of every neuron kind against central finite differences, in float64.
//!
//! The Heaviside spike has no useful finite difference, so every neuron here fires through
//! `Surrogate::Smooth` (sigmoid(4u) forward and backward) with `detach_reset = false`: the
//! function that finite differences probe is then exactly the one autodiff differentiates,
//! reset path included. The loss is `sum(spk·w_spk) + sum(mem·w_mem)` over `T = 6` steps of a
//! `[B = 2, N = 3]` input drawn from a fixed seed. The error of a tensor is the largest absolute
//! difference divided by the largest finite-difference magnitude in that tensor.
//!
//! This file is a test binary of its own: it switches the flex device to float64, which a
//! process can do only before any tensor exists, so it shares no process with float32 tests.

use std::sync::{Arc, Once};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::activation::sigmoid;
use burn::tensor::{DType, Device, FloatDType, Gradients, Tensor, TensorData};
use nerve::neurons::{
    AlphaConfig, FiringConfig, LapicqueConfig, LeakyConfig, Neuron, RLeakyConfig, RSynapticConfig,
    RecurrentConfig, Reset, SLstmConfig, SynapticConfig,
};
use nerve::snntorch_check::to_vec;
use nerve::surrogate::Surrogate;

const T: usize = 6;
const B: usize = 2;
const N: usize = 3;
/// Central-difference step.
const H: f64 = 1e-6;
/// Largest accepted relative error.
const TOL: f64 = 1e-6;
/// Neurons of the SLSTM layer, unlike its `N` input features so that the two sizes cannot mix.
const SLSTM_HIDDEN: usize = 4;

/// The float64 autodiff device; the default dtype must be set before any tensor exists on it.
fn device() -> Device {
    static CONFIGURE: Once = Once::new();
    CONFIGURE.call_once(|| {
        let mut device = Device::flex();
        device
            .configure(FloatDType::F64)
            .expect("the flex device accepts float64 before first use");
    });
    Device::flex().autodiff()
}

/// Deterministic uniform numbers in `[lo, hi)` (xorshift64*), so failures reproduce exactly.
struct Rng(u64);

impl Rng {
    fn uniform(&mut self, count: usize, lo: f64, hi: f64) -> Vec<f64> {
        (0..count)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
                lo + (hi - lo) * (bits as f64 / (1u64 << 53) as f64)
            })
            .collect()
    }
}

fn tensor3(values: Vec<f64>, shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The firing rule every check uses: smooth spikes and a differentiated reset, with a learnable
/// threshold and graded-spike factor.
fn smooth_firing(reset: Reset, reset_delay: bool) -> FiringConfig {
    FiringConfig {
        threshold: 0.8,
        learn_threshold: true,
        surrogate: Surrogate::Smooth(Arc::new(|u| sigmoid(u * 4.0))),
        reset,
        reset_delay,
        graded_spikes_factor: 1.3,
        learn_graded_spikes_factor: true,
        inhibition: false,
        detach_reset: false,
        state_quant: None,
    }
}

/// The reset variants each neuron is checked under.
const VARIANTS: [(Reset, bool); 3] = [
    (Reset::Subtract, true),
    (Reset::Zero, false),
    (Reset::None, true),
];

/// Values and autodiff gradients of every trainable float parameter, in visiting order.
struct Collect<'a> {
    grads: &'a Gradients,
    path: Vec<String>,
    index: usize,
    found: Vec<ParamGrad>,
}

struct ParamGrad {
    index: usize,
    name: String,
    values: Vec<f64>,
    grad: Vec<f64>,
}

impl ModuleVisitor for Collect<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let index = self.index;
        self.index += 1;
        if !param.is_require_grad() {
            return;
        }
        let value = param.val();
        let values = to_vec(value.clone());
        let grad = value
            .grad(self.grads)
            .map(to_vec)
            .unwrap_or_else(|| vec![0.0; values.len()]);
        self.found.push(ParamGrad {
            index,
            name: self.path.join("."),
            values,
            grad,
        });
    }
}

/// Adds `delta` to one element of one float parameter.
struct Nudge {
    target: usize,
    element: usize,
    delta: f64,
    index: usize,
}

impl ModuleMapper for Nudge {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let index = self.index;
        self.index += 1;
        if index != self.target {
            return param;
        }
        let (element, delta) = (self.element, self.delta);
        param.map(|t| {
            let (shape, device) = (t.shape(), t.device());
            let mut values = to_vec(t);
            values[element] += delta;
            Tensor::from_data(TensorData::new(values, shape), &device)
        })
    }
}

/// Replaces every float parameter with draws from a seeded generator, so that layers whose
/// initialisation uses Burn's unseeded RNG give the same numbers on every run.
struct Redraw(Rng);

impl ModuleMapper for Redraw {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let trainable = param.is_require_grad();
        let rng = &mut self.0;
        param
            .map(|t| {
                let (shape, device) = (t.shape(), t.device());
                let values = rng.uniform(shape.num_elements(), -0.6, 0.6);
                Tensor::from_data(TensorData::new(values, shape), &device)
            })
            .set_require_grad(trainable)
    }
}

/// Worst error over the tensors of one check, with its tensor's name.
#[derive(Default)]
struct Worst {
    err: f64,
    what: String,
}

impl Worst {
    fn compare(&mut self, what: &str, autodiff: &[f64], numeric: &[f64]) {
        assert_eq!(
            autodiff.len(),
            numeric.len(),
            "{what}: gradient sizes differ"
        );
        let scale = numeric.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            scale > 1e-8,
            "{what}: the finite-difference gradient vanishes, the check is empty"
        );
        let diff = autodiff
            .iter()
            .zip(numeric)
            .fold(0.0f64, |m, (a, n)| m.max((a - n).abs()));
        let err = diff / scale;
        if err >= self.err {
            *self = Worst {
                err,
                what: what.to_string(),
            };
        }
    }
}

/// Checks d(loss)/dx and d(loss)/dθ of `module` against central differences; returns the worst.
fn check<M: Module>(label: &str, module: M, loss: impl Fn(&M, Tensor<3>) -> Tensor<1>) -> Worst {
    let device = device();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ label.len() as u64);
    let x_values = rng.uniform(T * B * N, -0.5, 1.5);
    let x = tensor3(x_values.clone(), [T, B, N], &device);
    assert_eq!(x.dtype(), DType::F64, "the check must run in float64");
    let eval = |m: &M, x: Tensor<3>| to_vec(loss(m, x))[0];

    let x_tracked = x.clone().require_grad();
    let grads = loss(&module, x_tracked.clone()).backward();
    let mut worst = Worst::default();

    let grad_x = to_vec(
        x_tracked
            .grad(&grads)
            .expect("the input receives a gradient"),
    );
    let fd_x: Vec<f64> = (0..x_values.len())
        .map(|i| {
            let shifted = |d: f64| {
                let mut v = x_values.clone();
                v[i] += d;
                eval(&module, tensor3(v, [T, B, N], &device))
            };
            (shifted(H) - shifted(-H)) / (2.0 * H)
        })
        .collect();
    worst.compare("x", &grad_x, &fd_x);

    let mut collect = Collect {
        grads: &grads,
        path: Vec::new(),
        index: 0,
        found: Vec::new(),
    };
    module.visit(&mut collect);
    assert!(!collect.found.is_empty(), "{label}: no trainable parameter");
    for p in &collect.found {
        let fd: Vec<f64> = (0..p.values.len())
            .map(|element| {
                let shifted = |delta: f64| {
                    let nudged = module.clone().map(&mut Nudge {
                        target: p.index,
                        element,
                        delta,
                        index: 0,
                    });
                    eval(&nudged, x.clone())
                };
                (shifted(H) - shifted(-H)) / (2.0 * H)
            })
            .collect();
        worst.compare(&p.name, &p.grad, &fd);
    }
    let names: Vec<&str> = collect.found.iter().map(|p| p.name.as_str()).collect();
    eprintln!(
        "gradcheck {label:<34} max rel err {:.2e} ({}) over x, {}",
        worst.err,
        worst.what,
        names.join(", ")
    );
    worst
}

/// Fixed loss weights, shaped `[T, B, n]`.
fn weights(n: usize, seed: u64) -> (Tensor<3>, Tensor<3>) {
    let device = device();
    let mut rng = Rng(seed);
    (
        tensor3(rng.uniform(T * B * n, -1.0, 1.0), [T, B, n], &device),
        tensor3(rng.uniform(T * B * n, -1.0, 1.0), [T, B, n], &device),
    )
}

/// Runs the check for every reset variant and asserts the worst error is within tolerance.
fn check_variants<M: Module>(
    kind: &str,
    n_out: usize,
    build: impl Fn(FiringConfig) -> M,
    spk_mem: impl Fn(&M, Tensor<3>) -> (Tensor<3>, Tensor<3>),
) {
    let (w_spk, w_mem) = weights(n_out, 0xC0FF_EE00_D15E_A5E5);
    let mut overall = Worst::default();
    for (reset, delay) in VARIANTS {
        let label = format!("{kind} {reset:?}{}", if delay { "" } else { " immediate" });
        let worst = check(&label, build(smooth_firing(reset, delay)), |m, x| {
            let (spk, mem) = spk_mem(m, x);
            (spk * w_spk.clone()).sum() + (mem * w_mem.clone()).sum()
        });
        if worst.err >= overall.err {
            overall = worst;
        }
    }
    eprintln!(
        "gradcheck {kind:<34} WORST {:.2e} ({})",
        overall.err, overall.what
    );
    assert!(
        overall.err <= TOL,
        "{kind}: relative error {:.2e} in {} exceeds {TOL:e}",
        overall.err,
        overall.what
    );
}

fn mem_of<S>(out: nerve::neurons::NeuronOutput<3, S>) -> (Tensor<3>, Tensor<3>) {
    (out.spk, out.mem.expect("the membrane is recorded"))
}

#[test]
fn leaky() {
    check_variants(
        "Leaky",
        N,
        |firing| {
            let mut c = LeakyConfig::new(0.85);
            (c.learn_beta, c.size, c.firing, c.record_mem) = (true, N, firing, true);
            c.init(&device())
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn synaptic() {
    check_variants(
        "Synaptic",
        N,
        |firing| {
            let mut c = SynapticConfig::new(0.7, 0.85);
            (c.learn_alpha, c.learn_beta, c.size, c.firing, c.record_mem) =
                (true, true, N, firing, true);
            c.init(&device())
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn alpha() {
    check_variants(
        "Alpha",
        N,
        |firing| {
            let mut c = AlphaConfig::new(0.9, 0.75);
            (c.learn_alpha, c.learn_beta, c.firing, c.record_mem) = (true, true, firing, true);
            c.init(&device()).expect("valid decays")
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn lapicque() {
    check_variants(
        "Lapicque",
        N,
        |firing| {
            let mut c = LapicqueConfig::new(0.8);
            (c.r, c.time_step) = (Some(2.0), 0.5);
            (c.learn_beta, c.size, c.firing, c.record_mem) = (true, N, firing, true);
            c.init(&device()).expect("valid circuit")
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn rleaky_one_to_one() {
    check_variants(
        "RLeaky one-to-one",
        N,
        |firing| {
            let recurrent = RecurrentConfig {
                v_size: N,
                ..RecurrentConfig::one_to_one(0.4)
            };
            let mut c = RLeakyConfig::new(0.85, recurrent);
            (c.learn_beta, c.firing, c.record_mem) = (true, firing, true);
            c.init(&device()).expect("valid recurrence")
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn rleaky_all_to_all() {
    check_variants(
        "RLeaky all-to-all",
        N,
        |firing| {
            let mut c = RLeakyConfig::new(0.85, RecurrentConfig::all_to_all(N));
            (c.learn_beta, c.firing, c.record_mem) = (true, firing, true);
            let mut neuron = c.init(&device()).expect("valid recurrence");
            neuron.recurrent = neuron.recurrent.map(&mut Redraw(Rng(11)));
            neuron
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn rsynaptic_one_to_one() {
    check_variants(
        "RSynaptic one-to-one",
        N,
        |firing| {
            let mut c = RSynapticConfig::new(0.7, 0.85, RecurrentConfig::one_to_one(0.4));
            (c.learn_alpha, c.learn_beta, c.firing, c.record_mem) = (true, true, firing, true);
            c.init(&device()).expect("valid recurrence")
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn rsynaptic_all_to_all() {
    check_variants(
        "RSynaptic all-to-all",
        N,
        |firing| {
            let mut c = RSynapticConfig::new(0.7, 0.85, RecurrentConfig::all_to_all(N));
            (c.learn_alpha, c.learn_beta, c.size, c.firing, c.record_mem) =
                (true, true, N, firing, true);
            let mut neuron = c.init(&device()).expect("valid recurrence");
            neuron.recurrent = neuron.recurrent.map(&mut Redraw(Rng(12)));
            neuron
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn slstm() {
    check_variants(
        "SLSTM",
        SLSTM_HIDDEN,
        |firing| {
            let mut c = SLstmConfig::new(N, SLSTM_HIDDEN);
            // The hidden state stays within (-1, 1), so a lower threshold keeps spikes informative.
            let firing = FiringConfig {
                threshold: 0.2,
                ..firing
            };
            (c.size, c.firing, c.record_mem) = (SLSTM_HIDDEN, firing, true);
            let mut neuron = c.init(&device()).expect("valid sizes");
            neuron.input_gates = neuron.input_gates.map(&mut Redraw(Rng(13)));
            neuron.hidden_gates = neuron.hidden_gates.map(&mut Redraw(Rng(14)));
            neuron
        },
        |m, x| mem_of(m.run(x, None)),
    );
}

#[test]
fn the_check_catches_a_surrogate_that_is_not_the_forward_derivative() {
    // A Heaviside forward has zero finite differences almost everywhere, while its surrogate
    // gradient does not: the comparison must flag it, or the checks above prove nothing.
    let (w_spk, w_mem) = weights(N, 7);
    let mut c = LeakyConfig::new(0.85);
    c.firing = FiringConfig {
        surrogate: Surrogate::Custom(Arc::new(|u| sigmoid(u * 4.0))),
        ..smooth_firing(Reset::Subtract, true)
    };
    (c.learn_beta, c.record_mem) = (true, true);
    let worst = check(
        "Leaky with a Heaviside forward",
        c.init(&device()),
        |m, x| {
            let (spk, mem) = mem_of(m.run(x, None));
            (spk * w_spk.clone()).sum() + (mem * w_mem.clone()).sum()
        },
    );
    assert!(
        worst.err > 1e-2,
        "a wrong gradient went unnoticed: {:.2e}",
        worst.err
    );
}
