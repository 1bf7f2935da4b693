//! Surrogate gradients: the spike is a Heaviside step forward and a smooth slope backward.
//!
//! Every surrogate is expressed as a *smooth stand-in* `s(u)` whose derivative is the surrogate
//! gradient. The spike is computed as `H(u) + (s(u) - detach(s(u)))`: the bracket is exactly zero
//! in the forward pass, and autodiff sees only `s'(u)` in the backward pass. This keeps every
//! backend (and the Burn autodiff graph) in charge of the gradient, with no hand-written backward.
//! Derivatives match snnTorch 1.0 (`snntorch.surrogate`) term by term.

use std::f64::consts::PI;
use std::fmt;
use std::sync::Arc;

use burn::tensor::{Distribution, Tensor};

use crate::kernels::leaky::SurrogateGrad;

/// A user-supplied smooth stand-in: its autodiff derivative is used as the surrogate gradient.
///
/// It is written for rank-1 tensors; Nerve flattens the membrane before calling it.
pub type StandIn = Arc<dyn Fn(Tensor<1>) -> Tensor<1> + Send + Sync>;

/// The surrogate gradient used by a spiking neuron's firing function.
#[derive(Clone)]
pub enum Surrogate {
    /// Arctangent: `dS/du = (α/2) / (1 + (π α u / 2)²)`.
    ATan {
        /// Sharpness α (snnTorch default 2).
        alpha: f64,
    },
    /// Fast sigmoid: `dS/du = 1 / (slope·|u| + 1)²`.
    FastSigmoid {
        /// Slope (snnTorch default 25).
        slope: f64,
    },
    /// Logistic sigmoid: `dS/du = d/du σ(slope·u)`.
    Sigmoid {
        /// Slope (snnTorch default 25).
        slope: f64,
    },
    /// Triangular as coded in snnTorch: `+threshold` below zero and `-threshold` at or above it.
    Triangular {
        /// Scale of the slope (snnTorch default 1).
        threshold: f64,
    },
    /// Spike-rate escape: `dS/du = slope · exp(-β |u - 1|)`.
    SpikeRateEscape {
        /// Escape rate β (snnTorch default 1).
        beta: f64,
        /// Slope (snnTorch default 25).
        slope: f64,
    },
    /// Straight-through estimator: the gradient passes unchanged.
    StraightThrough,
    /// Sparse fast sigmoid (Perez-Nieves & Goodman 2021): fast sigmoid only where `u > b`.
    SparseFastSigmoid {
        /// Slope (snnTorch default 25).
        slope: f64,
        /// Gradient is zero at or below this membrane offset (snnTorch default 1).
        b: f64,
    },
    /// Stochastic spike operator: gradient 1 where the neuron spiked, uniform noise elsewhere.
    Stochastic {
        /// Mean shift of the noise (snnTorch default 0).
        mean: f64,
        /// Scale of the noise (snnTorch default 0.2).
        variance: f64,
    },
    /// A user-supplied smooth function; its derivative is the surrogate gradient.
    Custom(StandIn),
    /// A smooth relaxation: the stand-in is used forward *and* backward, for gradient checks.
    ///
    /// Spikes are no longer binary, so finite differences see the same function that autodiff
    /// differentiates; combine with `detach_reset = false` to make the reset smooth as well.
    Smooth(StandIn),
}

impl fmt::Debug for Surrogate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Surrogate::Custom(_) => write!(f, "Custom(..)"),
            Surrogate::Smooth(_) => write!(f, "Smooth(..)"),
            Surrogate::ATan { alpha } => write!(f, "ATan {{ alpha: {alpha} }}"),
            Surrogate::FastSigmoid { slope } => write!(f, "FastSigmoid {{ slope: {slope} }}"),
            Surrogate::Sigmoid { slope } => write!(f, "Sigmoid {{ slope: {slope} }}"),
            Surrogate::Triangular { threshold } => {
                write!(f, "Triangular {{ threshold: {threshold} }}")
            }
            Surrogate::SpikeRateEscape { beta, slope } => {
                write!(f, "SpikeRateEscape {{ beta: {beta}, slope: {slope} }}")
            }
            Surrogate::StraightThrough => write!(f, "StraightThrough"),
            Surrogate::SparseFastSigmoid { slope, b } => {
                write!(f, "SparseFastSigmoid {{ slope: {slope}, b: {b} }}")
            }
            Surrogate::Stochastic { mean, variance } => {
                write!(f, "Stochastic {{ mean: {mean}, variance: {variance} }}")
            }
        }
    }
}

impl Default for Surrogate {
    /// snnTorch's default surrogate: arctangent with α = 2.
    fn default() -> Self {
        Surrogate::ATan { alpha: 2.0 }
    }
}

impl Surrogate {
    /// Parses a surrogate from its snnTorch name with default constants (`atan`, `fast_sigmoid`, ...).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "atan" => Surrogate::ATan { alpha: 2.0 },
            "fast_sigmoid" => Surrogate::FastSigmoid { slope: 25.0 },
            "sigmoid" => Surrogate::Sigmoid { slope: 25.0 },
            "triangular" => Surrogate::Triangular { threshold: 1.0 },
            "spike_rate_escape" => Surrogate::SpikeRateEscape {
                beta: 1.0,
                slope: 25.0,
            },
            "straight_through_estimator" | "ste" => Surrogate::StraightThrough,
            "sfs" | "sparse_fast_sigmoid" => Surrogate::SparseFastSigmoid {
                slope: 25.0,
                b: 1.0,
            },
            "sso" | "stochastic" => Surrogate::Stochastic {
                mean: 0.0,
                variance: 0.2,
            },
            _ => return None,
        })
    }

    /// Parses `NAME[:K]`: a surrogate by its snnTorch name, with its main constant (α of
    /// `atan`, the slope of `fast_sigmoid`, `sigmoid`, `spike_rate_escape` and `sfs`, the
    /// threshold of `triangular`, the variance of `sso`) set to `K` when given, e.g.
    /// `fast_sigmoid:13.84`. `None` for an unknown name or a constant that is not a finite number.
    pub fn parse(spec: &str) -> Option<Self> {
        let (name, constant) = match spec.split_once(':') {
            Some((name, k)) => (
                name,
                Some(k.trim().parse::<f64>().ok().filter(|k| k.is_finite())?),
            ),
            None => (spec, None),
        };
        let mut surrogate = Self::from_name(name.trim())?;
        if let Some(k) = constant {
            match &mut surrogate {
                Surrogate::ATan { alpha } => *alpha = k,
                Surrogate::FastSigmoid { slope }
                | Surrogate::Sigmoid { slope }
                | Surrogate::SpikeRateEscape { slope, .. }
                | Surrogate::SparseFastSigmoid { slope, .. } => *slope = k,
                Surrogate::Triangular { threshold } => *threshold = k,
                Surrogate::Stochastic { variance, .. } => *variance = k,
                _ => return None,
            }
        }
        Some(surrogate)
    }

    /// The spike: `H(u)` (1 where `u > 0`) forward, this surrogate's slope backward.
    pub fn spike<const D: usize>(&self, u: Tensor<D>) -> Tensor<D> {
        if let Surrogate::Smooth(f) = self {
            // Must not take the detached shortcut below: the forward value itself is the stand-in.
            return apply_flat(f, u);
        }
        let step = u.clone().greater_elem(0.0).float();
        if !u.is_tracked() {
            // Inference or a detached membrane: no graph to feed, skip the stand-in entirely.
            return step;
        }
        let s = self.stand_in(u, &step);
        step + (s.clone() - s.detach())
    }

    /// The smooth stand-in `s(u)`; `step` is `H(u)`, used by the masked surrogates.
    pub fn stand_in<const D: usize>(&self, u: Tensor<D>, step: &Tensor<D>) -> Tensor<D> {
        match self {
            Surrogate::ATan { alpha } => (u * (PI * alpha / 2.0)).atan() / PI,
            Surrogate::FastSigmoid { slope } => fast_sigmoid_stand_in(u, *slope),
            Surrogate::Sigmoid { slope } => burn::tensor::activation::sigmoid(u * *slope),
            Surrogate::Triangular { threshold } => u.abs() * (-threshold),
            Surrogate::SpikeRateEscape { beta, slope } => {
                let d = u.sub_scalar(1.0);
                let decay = (d.clone().abs() * (-beta)).exp();
                d.sign() * (decay.neg() + 1.0) * (slope / beta)
            }
            Surrogate::StraightThrough => u,
            Surrogate::SparseFastSigmoid { slope, b } => {
                let mask = u.clone().greater_elem(*b).float().detach();
                fast_sigmoid_stand_in(u, *slope) * mask
            }
            Surrogate::Stochastic { mean, variance } => {
                let noise = u
                    .random_like(Distribution::Uniform(0.0, 1.0))
                    .sub_scalar(0.5 - mean)
                    .mul_scalar(*variance);
                let spiked = step.clone().detach();
                let slope = spiked.clone() + (spiked.neg() + 1.0) * noise;
                u * slope.detach()
            }
            Surrogate::Custom(f) | Surrogate::Smooth(f) => apply_flat(f, u),
        }
    }

    /// This surrogate's derivative in the closed form the fused kernel evaluates, or `None` for
    /// the stochastic and user-defined ones (only autodiff of their stand-in knows it).
    pub fn closed_form(&self) -> Option<SurrogateGrad> {
        Some(match *self {
            Surrogate::ATan { alpha } => SurrogateGrad::ATan(alpha as f32),
            Surrogate::FastSigmoid { slope } => SurrogateGrad::FastSigmoid(slope as f32),
            Surrogate::Sigmoid { slope } => SurrogateGrad::Sigmoid(slope as f32),
            Surrogate::Triangular { threshold } => SurrogateGrad::Triangular(threshold as f32),
            Surrogate::SpikeRateEscape { beta, slope } => SurrogateGrad::SpikeRateEscape {
                beta: beta as f32,
                slope: slope as f32,
            },
            Surrogate::StraightThrough => SurrogateGrad::StraightThrough,
            Surrogate::SparseFastSigmoid { slope, b } => SurrogateGrad::SparseFastSigmoid {
                slope: slope as f32,
                b: b as f32,
            },
            Surrogate::Stochastic { .. } | Surrogate::Custom(_) | Surrogate::Smooth(_) => {
                return None
            }
        })
    }
}

/// Applies a rank-1 stand-in to a tensor of any rank.
fn apply_flat<const D: usize>(f: &StandIn, u: Tensor<D>) -> Tensor<D> {
    let shape = u.shape();
    f(u.flatten(0, D - 1)).reshape(shape)
}

/// `u / (1 + slope·|u|)`, whose derivative is the fast-sigmoid surrogate.
fn fast_sigmoid_stand_in<const D: usize>(u: Tensor<D>, slope: f64) -> Tensor<D> {
    let denom = u.clone().abs() * slope + 1.0;
    u / denom
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    const POINTS: [f32; 7] = [-2.0, -0.5, -0.05, 0.0, 0.05, 0.5, 2.0];

    /// Spikes and surrogate gradients of `s` at [`POINTS`].
    fn spike_and_grad(s: &Surrogate) -> (Vec<f32>, Vec<f32>) {
        let device = Device::flex().autodiff();
        let u = Tensor::<1>::from_data(TensorData::new(POINTS.to_vec(), [POINTS.len()]), &device)
            .require_grad();
        let spk = s.spike(u.clone());
        let grads = spk.clone().sum().backward();
        let g = u.grad(&grads).expect("gradient");
        (
            spk.into_data().iter::<f32>().collect(),
            g.into_data().iter::<f32>().collect(),
        )
    }

    fn assert_grad(s: Surrogate, expected: impl Fn(f64) -> f64) {
        let (spk, grad) = spike_and_grad(&s);
        for ((&u, &got), &fired) in POINTS.iter().zip(&grad).zip(&spk) {
            assert_eq!(
                fired,
                if u > 0.0 { 1.0 } else { 0.0 },
                "{s:?}: spike at u={u}"
            );
            let want = expected(f64::from(u));
            assert!(
                (f64::from(got) - want).abs() <= 1e-4 * want.abs().max(1.0),
                "{s:?}: grad at u={u} is {got}, expected {want}"
            );
        }
    }

    #[test]
    fn analytic_surrogate_gradients() {
        let pi = std::f64::consts::PI;
        assert_grad(Surrogate::ATan { alpha: 2.0 }, |u| {
            1.0 / (1.0 + (pi * u).powi(2))
        });
        assert_grad(Surrogate::FastSigmoid { slope: 25.0 }, |u| {
            1.0 / (25.0 * u.abs() + 1.0).powi(2)
        });
        assert_grad(Surrogate::Sigmoid { slope: 5.0 }, |u| {
            let s = 1.0 / (1.0 + (-5.0 * u).exp());
            5.0 * s * (1.0 - s)
        });
        assert_grad(
            Surrogate::SpikeRateEscape {
                beta: 1.0,
                slope: 25.0,
            },
            |u| 25.0 * (-(u - 1.0).abs()).exp(),
        );
        assert_grad(Surrogate::StraightThrough, |_| 1.0);
        assert_grad(
            Surrogate::SparseFastSigmoid {
                slope: 25.0,
                b: 0.1,
            },
            |u| {
                if u > 0.1 {
                    1.0 / (25.0 * u.abs() + 1.0).powi(2)
                } else {
                    0.0
                }
            },
        );
        assert_grad(
            Surrogate::Custom(Arc::new(|u: Tensor<1>| u.clone() * u)),
            |u| 2.0 * u,
        );
    }

    #[test]
    fn stochastic_surrogate_passes_gradient_where_spiking_and_noise_elsewhere() {
        let s = Surrogate::Stochastic {
            mean: 0.0,
            variance: 0.2,
        };
        let (spk, grad) = spike_and_grad(&s);
        for ((&u, &g), &fired) in POINTS.iter().zip(&grad).zip(&spk) {
            if fired == 1.0 {
                assert_eq!(g, 1.0, "u={u}");
            } else {
                // Uniform noise in [-0.5, 0.5) scaled by the variance.
                assert!(g.abs() <= 0.1 + 1e-6, "u={u}: {g}");
            }
        }
    }

    #[test]
    fn untracked_input_takes_the_plain_step() {
        let device = Device::flex();
        let u = Tensor::<1>::from_data(TensorData::new(POINTS.to_vec(), [POINTS.len()]), &device);
        let spk: Vec<f32> = Surrogate::default()
            .spike(u)
            .into_data()
            .iter::<f32>()
            .collect();
        assert_eq!(spk, vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn names_parse() {
        for name in [
            "atan",
            "fast_sigmoid",
            "sigmoid",
            "triangular",
            "spike_rate_escape",
            "ste",
            "sfs",
            "sso",
        ] {
            assert!(Surrogate::from_name(name).is_some(), "{name}");
        }
        assert!(Surrogate::from_name("relu").is_none());
        assert!(matches!(
            Surrogate::parse("fast_sigmoid:13.84"),
            Some(Surrogate::FastSigmoid { slope }) if slope == 13.84
        ));
        assert!(matches!(
            Surrogate::parse("atan"),
            Some(Surrogate::ATan { alpha }) if alpha == 2.0
        ));
        for bad in ["atan:x", "ste:3", "relu:1", "sigmoid:inf"] {
            assert!(Surrogate::parse(bad).is_none(), "{bad}");
        }
    }
}
