//! The networks of snnTorch's regression tutorials, reading out an output membrane.
//!
//! - [`RegressionModelKind::Leaky`] (Part I): `FC(F→H) → Leaky → FC(H→H) → Leaky → FC(H→O) →
//!   Leaky(reset none)`. With `random_neurons`, every hidden neuron has its own β and threshold
//!   drawn from U(0, 1), and the output layer one β from U(0, 1) with threshold 1, as the
//!   tutorial draws them (β learned with `learn_beta`, thresholds fixed).
//!   [`RegressionModelKind::LeakyPublished`] is the code that printed the tutorial's figure.
//! - [`RegressionModelKind::RLeaky`] (Part II): `FC(F→H) → RLeaky(all-to-all H) → FC(H→O) →
//!   RLeaky(all-to-all O)`, β shared per layer; the output spikes and membrane are both read.
//!
//! Fully connected layers start as PyTorch's `nn.Linear`: weights and biases from
//! U(-1/√fan_in, 1/√fan_in).

use burn::module::{Module, Param};
use burn::nn::{Initializer, Linear, LinearConfig};
use burn::tensor::{Device, Tensor, TensorData};
use rand::{Rng, SeedableRng};

use crate::error::{Error, Result};
use crate::neurons::{
    FiringConfig, Leaky, LeakyConfig, Neuron, RLeaky, RLeakyConfig, RecurrentConfig, Reset,
};

/// Which tutorial network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegressionModelKind {
    /// Part I: two Leaky layers and a leaky integrator output (no reset).
    Leaky,
    /// Part I as the published figure (2.84e-2) was computed: the tutorial's code of January
    /// 2023 passes layer 2 through the output neuron (`li_out`: its one β, threshold 1, no
    /// reset) instead of its own Leaky layer, which stays unused.
    LeakyPublished,
    /// Part II: two RLeaky layers with all-to-all feedback.
    RLeaky,
}

impl RegressionModelKind {
    /// Parses `leaky` or `rleaky`.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "leaky" => Ok(Self::Leaky),
            "leaky-published" => Ok(Self::LeakyPublished),
            "rleaky" => Ok(Self::RLeaky),
            other => Err(Error::invalid(
                "regression model",
                format!(
                    "'{other}': expected leaky or leaky-published (Part I) or rleaky (Part II)"
                ),
            )),
        }
    }

    /// The name [`RegressionModelKind::parse`] reads.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Leaky => "leaky",
            Self::LeakyPublished => "leaky-published",
            Self::RLeaky => "rleaky",
        }
    }
}

/// Options of a [`RegressionNet`].
#[derive(Debug, Clone)]
pub struct RegressionNetConfig {
    /// Which network.
    pub kind: RegressionModelKind,
    /// Input features F per step.
    pub inputs: usize,
    /// Hidden neurons H per layer.
    pub hidden: usize,
    /// Output neurons O.
    pub outputs: usize,
    /// Time steps T.
    pub steps: usize,
    /// β of every layer (unless `random_neurons`).
    pub beta: f64,
    /// Learn β.
    pub learn_beta: bool,
    /// Part I's per-neuron β and threshold drawn from U(0, 1) (Leaky model only).
    pub random_neurons: bool,
    /// Firing rule of the hidden layers (and of the RLeaky output layer).
    pub firing: FiringConfig,
    /// Seed of the initial weights and of the random β and thresholds.
    pub seed: u64,
}

impl RegressionNetConfig {
    /// Part I's network: 1 input, 128 hidden, 1 output, 50 steps, random β and θ learned β,
    /// fast-sigmoid surrogate.
    pub fn tutorial_leaky(seed: u64) -> Self {
        Self {
            kind: RegressionModelKind::Leaky,
            inputs: 1,
            hidden: 128,
            outputs: 1,
            steps: 50,
            beta: 0.5,
            learn_beta: true,
            random_neurons: true,
            firing: FiringConfig {
                surrogate: crate::surrogate::Surrogate::FastSigmoid { slope: 25.0 },
                ..FiringConfig::default()
            },
            seed,
        }
    }

    /// A one-line description that identifies the parameter layout (stored in checkpoints).
    pub fn describe(&self) -> String {
        let beta = if self.random_neurons && self.kind != RegressionModelKind::RLeaky {
            "U(0,1) per neuron".to_string()
        } else {
            self.beta.to_string()
        };
        format!(
            "regression {} in={} hidden={} out={} T={} beta={beta}{} threshold={} reset={:?}",
            self.kind.name(),
            self.inputs,
            self.hidden,
            self.outputs,
            self.steps,
            if self.learn_beta { " (learned)" } else { "" },
            if self.random_neurons && self.kind != RegressionModelKind::RLeaky {
                "U(0,1) per neuron".to_string()
            } else {
                self.firing.threshold.to_string()
            },
            self.firing.reset
        )
    }

    /// Checks the sizes and β, naming the first option at fault.
    pub fn validate(&self) -> Result<()> {
        for (what, v) in [
            ("inputs", self.inputs),
            ("hidden", self.hidden),
            ("outputs", self.outputs),
            ("steps", self.steps),
        ] {
            if v == 0 {
                return Err(Error::invalid(what, "must be at least 1"));
            }
        }
        if !self.beta.is_finite() {
            return Err(Error::invalid(
                "beta",
                format!("{} is not finite", self.beta),
            ));
        }
        if !(self.firing.threshold.is_finite()) {
            return Err(Error::invalid(
                "threshold",
                format!("{} is not finite", self.firing.threshold),
            ));
        }
        Ok(())
    }

    /// Builds the network on `device` (seeding the device's generator with `seed`).
    pub fn init(&self, device: &Device) -> Result<RegressionNet> {
        self.validate()?;
        device.seed(self.seed);
        let linear = |i: usize, o: usize| {
            let k = 1.0 / (i as f64).sqrt();
            LinearConfig::new(i, o)
                .with_initializer(Initializer::Uniform { min: -k, max: k })
                .init(device)
        };
        let (f, h, o) = (self.inputs, self.hidden, self.outputs);
        match self.kind {
            RegressionModelKind::Leaky | RegressionModelKind::LeakyPublished => {
                let mut rng = rand::rngs::StdRng::seed_from_u64(self.seed ^ 0xB37A_7E7A);
                let mut uniform = |n: usize| -> Vec<f32> { (0..n).map(|_| rng.random()).collect() };
                let layer = |size: usize, reset: Reset, draws: Option<(Vec<f32>, Vec<f32>)>| {
                    let mut config = LeakyConfig::new(self.beta);
                    config.learn_beta = self.learn_beta;
                    config.size = size;
                    config.firing = FiringConfig {
                        reset,
                        ..self.firing.clone()
                    };
                    let mut neuron = config.init(device);
                    if let Some((beta, threshold)) = draws {
                        neuron.beta = per_neuron(beta, self.learn_beta, device);
                        if !threshold.is_empty() {
                            neuron.firing.threshold = per_neuron(threshold, false, device);
                        }
                    }
                    neuron
                };
                let random = self.random_neurons;
                // The tutorial's order of draws: β and θ of layer 1, of layer 2, β of the output.
                let mut draws = |n: usize, thresholds: bool| {
                    random.then(|| {
                        let beta = uniform(n);
                        let theta = if thresholds { uniform(n) } else { Vec::new() };
                        (beta, theta)
                    })
                };
                let (d_in, d_hidden, d_out) = (draws(h, true), draws(h, true), draws(1, false));
                let mut li_out = layer(1, Reset::None, d_out);
                li_out.firing.threshold = per_neuron(vec![1.0], false, device);
                li_out.record_mem = true;
                Ok(RegressionNet::Leaky(LeakyRegressor {
                    fc_in: linear(f, h),
                    lif_in: layer(h, self.firing.reset, d_in),
                    fc_hidden: linear(h, h),
                    lif_hidden: layer(h, self.firing.reset, d_hidden),
                    fc_out: linear(h, o),
                    li_out,
                    layer2_through_output: self.kind == RegressionModelKind::LeakyPublished,
                }))
            }
            RegressionModelKind::RLeaky => {
                let layer = |n: usize, record_mem: bool| -> Result<RLeaky> {
                    let mut config = RLeakyConfig::new(self.beta, RecurrentConfig::all_to_all(n));
                    config.learn_beta = self.learn_beta;
                    config.firing = self.firing.clone();
                    config.record_mem = record_mem;
                    config.init(device)
                };
                Ok(RegressionNet::RLeaky(RLeakyRegressor {
                    fc1: linear(f, h),
                    rlif1: layer(h, false)?,
                    fc2: linear(h, o),
                    rlif2: layer(o, true)?,
                }))
            }
        }
    }
}

/// A `[n]` parameter from drawn values.
fn per_neuron(values: Vec<f32>, learn: bool, device: &Device) -> Param<Tensor<1>> {
    let n = values.len();
    Param::from_tensor(Tensor::<1>::from_data(TensorData::new(values, [n]), device))
        .set_require_grad(learn)
}

/// Part I's network.
#[derive(Module, Debug)]
pub struct LeakyRegressor {
    /// Input layer.
    pub fc_in: Linear,
    /// First Leaky layer.
    pub lif_in: Leaky,
    /// Hidden layer.
    pub fc_hidden: Linear,
    /// Second Leaky layer.
    pub lif_hidden: Leaky,
    /// Output layer.
    pub fc_out: Linear,
    /// Leaky integrator output (reset none), its membrane recorded.
    pub li_out: Leaky,
    /// Run layer 2 through `li_out` instead of `lif_hidden` (the published figure's code).
    #[module(skip)]
    pub layer2_through_output: bool,
}

/// Part II's network.
#[derive(Module, Debug)]
pub struct RLeakyRegressor {
    /// Input layer.
    pub fc1: Linear,
    /// First RLeaky layer.
    pub rlif1: RLeaky,
    /// Output layer.
    pub fc2: Linear,
    /// Output RLeaky layer, its membrane recorded.
    pub rlif2: RLeaky,
}

/// A regression network of either tutorial.
#[derive(Module, Debug)]
pub enum RegressionNet {
    /// Part I.
    Leaky(LeakyRegressor),
    /// Part II.
    RLeaky(RLeakyRegressor),
}

/// What a forward pass returns.
#[derive(Debug, Clone)]
pub struct RegressionOutput {
    /// Output spikes `[T, B, O]`.
    pub spk: Tensor<3>,
    /// Output membrane `[T, B, O]`.
    pub mem: Tensor<3>,
    /// Hidden-layer spikes summed over everything (a `[1]` tensor, detached).
    pub hidden_spikes: Tensor<1>,
}

/// Repeats a one-step input `[1, B, N]` over `steps` (longer inputs pass unchanged).
fn over_time(x: Tensor<3>, steps: usize) -> Tensor<3> {
    let [t, b, n] = x.dims();
    if t == 1 && steps > 1 {
        x.expand([steps, b, n])
    } else {
        x
    }
}

impl RegressionNet {
    /// Runs `x[T, B, F]` (or a static `[1, B, F]`, fed at each of `steps` steps).
    pub fn forward(&self, x: Tensor<3>, steps: usize) -> Result<RegressionOutput> {
        let [t, _, f] = x.dims();
        let (inputs, _) = self.sizes();
        if f != inputs {
            return Err(Error::Shape {
                what: "regression input".into(),
                expected: format!("[T, B, {inputs}]"),
                got: format!("{:?}", x.dims()),
            });
        }
        if t != 1 && t != steps {
            return Err(Error::Shape {
                what: "regression input".into(),
                expected: format!("[{steps} or 1, B, {inputs}]"),
                got: format!("{:?}", x.dims()),
            });
        }
        match self {
            RegressionNet::Leaky(net) => {
                let cur = over_time(net.fc_in.forward(x), steps);
                let s1 = net.lif_in.run(cur, None).spk;
                let layer2 = if net.layer2_through_output {
                    &net.li_out
                } else {
                    &net.lif_hidden
                };
                let s2 = layer2.run(net.fc_hidden.forward(s1.clone()), None).spk;
                let hidden_spikes = s1.detach().sum() + s2.clone().detach().sum();
                let out = net.li_out.run(net.fc_out.forward(s2), None);
                Ok(RegressionOutput {
                    mem: out
                        .mem
                        .ok_or_else(|| Error::invalid("output layer", "no membrane"))?,
                    spk: out.spk,
                    hidden_spikes,
                })
            }
            RegressionNet::RLeaky(net) => {
                let cur = over_time(net.fc1.forward(x), steps);
                let s1 = net.rlif1.run(cur, None).spk;
                let hidden_spikes = s1.clone().detach().sum();
                let out = net.rlif2.run(net.fc2.forward(s1), None);
                Ok(RegressionOutput {
                    mem: out
                        .mem
                        .ok_or_else(|| Error::invalid("output layer", "no membrane"))?,
                    spk: out.spk,
                    hidden_spikes,
                })
            }
        }
    }

    /// Input features and output neurons.
    pub fn sizes(&self) -> (usize, usize) {
        match self {
            RegressionNet::Leaky(net) => {
                let [i, _] = net.fc_in.weight.dims();
                let [_, o] = net.fc_out.weight.dims();
                (i, o)
            }
            RegressionNet::RLeaky(net) => {
                let [i, _] = net.fc1.weight.dims();
                let [_, o] = net.fc2.weight.dims();
                (i, o)
            }
        }
    }

    /// Hidden neurons per step (summed over hidden layers), for firing rates.
    pub fn hidden_neurons(&self) -> usize {
        match self {
            RegressionNet::Leaky(net) => 2 * net.fc_hidden.weight.dims()[0],
            RegressionNet::RLeaky(net) => net.fc1.weight.dims()[1],
        }
    }
}
