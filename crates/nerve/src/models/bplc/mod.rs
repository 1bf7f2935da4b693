//! NOSONet: a latency-coded classifier of [`SrmOnce`] neurons trained with BPLC (Jin et al.,
//! "BPLC + NOSO", Complex & Intelligent Systems 2023, <https://doi.org/10.1007/s40747-023-00983-y>;
//! code <https://github.com/dooseokjeong/BPLC-NOSO>).
//!
//! The paper's Fashion-MNIST network, FMNISTnet, is `32C5-MP2-64C5-MP2-FC600-FC10`: 5×5
//! convolutions with "same" padding, no biases, Xavier-uniform weights, a NOSO layer after
//! every convolution and fully connected layer, and minimum-latency pooling (`MP<k>` here).
//! Pixels enter through LIF encoding neurons ([`lif_encode`]), the network runs `T` steps
//! (100 in the paper; it stops early once every output has fired, which changes nothing), and
//! the output latencies are the logits (negated) of the loss ([`crate::loss::latency`]).
//!
//! The paper reports 92.47% on Fashion-MNIST with about 14K spikes per inference (80 epochs,
//! SGD lr 5e-3, weight decay 5e-3, batch 64, lr ×0.1 every 50 epochs). On the project's shared
//! 2-core CPU, two epochs of 6,400 images at `T = 50` (`recipes/bplc-noso-fmnist.toml`, about
//! 45 minutes) reach 78.5% on the first 1,000 test images with 15.6K spikes per inference
//! (13.9K of them in the NOSO layers), counted up to each image's first output spike.
//!
//! Each layer runs over all `T` steps at once: one (event-driven) convolution of the folded
//! `[T·B, …]` spikes, then one scan of the neurons ([`SrmOnce::run_times`]).

mod encode;

pub use encode::{add_pixel_noise, lif_encode};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{Initializer, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::module::{conv2d, linear};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::kernels::spike_conv::{spike_conv2d, SpikeConvMode};
use crate::kernels::spike_linear::{spike_linear, SpikeLinearMode};
use crate::layers::MinLatencyPool2d;
use crate::neurons::{SrmOnce, SrmOnceConfig};

/// One stage of a NOSONet's architecture string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BplcToken {
    /// `<n>C<k>`: `n` filters of `k×k`, "same" padding, then NOSO neurons.
    Conv {
        /// Output channels.
        channels: usize,
        /// Kernel side (odd).
        kernel: usize,
    },
    /// `MP<k>`: minimum-latency pooling over `k×k` patches.
    MinPool(usize),
    /// `FC<n>`: fully connected to `n` NOSO neurons.
    Fc(usize),
}

/// Parses `32C5-MP2-64C5-MP2-FC600-FC10`.
pub fn parse_bplc_arch(arch: &str) -> Result<Vec<BplcToken>> {
    let bad = |t: &str, why: &str| {
        Error::invalid(
            "architecture",
            format!(
                "'{t}' in '{arch}': {why}; expected tokens <n>C<k>, MP<k>, FC<n> joined by '-'"
            ),
        )
    };
    let num = |t: &str, s: &str| -> Result<usize> {
        s.parse::<usize>()
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| bad(t, "not a positive whole number"))
    };
    let mut tokens = Vec::new();
    for t in arch.split('-').map(str::trim) {
        let up = t.to_ascii_uppercase();
        let token = if let Some(k) = up.strip_prefix("MP") {
            BplcToken::MinPool(num(t, k)?)
        } else if let Some(n) = up.strip_prefix("FC") {
            BplcToken::Fc(num(t, n)?)
        } else if let Some((n, k)) = up.split_once('C') {
            let kernel = num(t, k)?;
            if kernel % 2 == 0 {
                return Err(bad(t, "the kernel must be odd for 'same' padding"));
            }
            BplcToken::Conv {
                channels: num(t, n)?,
                kernel,
            }
        } else {
            return Err(bad(t, "unknown token"));
        };
        tokens.push(token);
    }
    match tokens.last() {
        Some(BplcToken::Fc(_)) => Ok(tokens),
        _ => Err(bad(arch, "the last token must be FC<classes>")),
    }
}

/// Options of a [`BplcNet`].
#[derive(Debug, Clone, PartialEq)]
pub struct BplcConfig {
    /// Architecture string, e.g. `32C5-MP2-64C5-MP2-FC600-FC10`.
    pub arch: String,
    /// Input `[channels, height, width]`.
    pub input: [usize; 3],
    /// Time steps `T`.
    pub steps: usize,
    /// The NOSO neurons of every layer.
    pub neuron: SrmOnceConfig,
    /// Pixel scale of the LIF input code (the paper's 0.3).
    pub input_scale: f64,
}

impl BplcConfig {
    /// The paper's FMNISTnet on `input`, with its neuron and input options.
    pub fn fmnist(input: [usize; 3], steps: usize) -> Self {
        Self {
            arch: "32C5-MP2-64C5-MP2-FC600-FC10".into(),
            input,
            steps,
            neuron: SrmOnceConfig::default(),
            input_scale: 0.3,
        }
    }

    /// One line that names everything the weights depend on (checked on resume).
    pub fn describe(&self) -> String {
        let n = &self.neuron;
        format!(
            "bplc-noso {} in {:?} T={} tau_m={} tau_s={} theta={} scale={}",
            self.arch, self.input, self.steps, n.tau_m, n.tau_s, n.threshold, self.input_scale
        )
    }

    /// Checks the options, naming the first one at fault.
    pub fn validate(&self) -> Result<()> {
        self.neuron.validate()?;
        parse_bplc_arch(&self.arch)?;
        if self.steps == 0 {
            return Err(Error::invalid("steps", "must be at least 1"));
        }
        if !(self.input_scale.is_finite() && self.input_scale > 0.0) {
            return Err(Error::invalid(
                "input scale",
                format!("{} must be a positive finite number", self.input_scale),
            ));
        }
        if self.input.contains(&0) {
            return Err(Error::invalid(
                "input shape",
                format!("{:?} has a zero", self.input),
            ));
        }
        Ok(())
    }

    /// Builds the network (Xavier-uniform weights, no biases), checking that every stage fits.
    pub fn init(&self, device: &Device) -> Result<BplcNet> {
        self.validate()?;
        let tokens = parse_bplc_arch(&self.arch)?;
        let [mut c, mut h, mut w] = self.input;
        let mut flat: Option<usize> = None;
        let (mut convs, mut fcs, mut layers) = (Vec::new(), Vec::new(), Vec::new());
        let xavier = Initializer::XavierUniform { gain: 1.0 };
        for (i, token) in tokens.iter().enumerate() {
            match *token {
                BplcToken::Conv { channels, kernel } => {
                    if flat.is_some() {
                        return Err(Error::invalid("architecture", "a convolution after FC"));
                    }
                    convs.push(
                        Conv2dConfig::new([c, channels], [kernel, kernel])
                            .with_padding(PaddingConfig2d::Same)
                            .with_bias(false)
                            .with_initializer(xavier.clone())
                            .init(device),
                    );
                    c = channels;
                    layers.push((format!("conv{}", convs.len()), c * h * w));
                }
                BplcToken::MinPool(k) => {
                    if flat.is_some() || i == 0 || h < k || w < k {
                        return Err(Error::invalid(
                            "architecture",
                            format!("MP{k} must follow a convolution on a map of at least {k}x{k}"),
                        ));
                    }
                    (h, w) = (h / k, w / k);
                }
                BplcToken::Fc(n) => {
                    let inputs = flat.unwrap_or(c * h * w);
                    fcs.push(
                        LinearConfig::new(inputs, n)
                            .with_bias(false)
                            .with_initializer(xavier.clone())
                            .init(device),
                    );
                    flat = Some(n);
                    layers.push((format!("fc{}", fcs.len()), n));
                }
            }
        }
        Ok(BplcNet {
            convs,
            fcs,
            tokens,
            neuron: self.neuron.init()?,
            layer_names: layers,
            config: self.clone(),
        })
    }
}

/// A network of NOSO layers (see the module docs).
#[derive(Module, Debug)]
pub struct BplcNet {
    /// Convolutions in order.
    pub convs: Vec<Conv2d>,
    /// Fully connected layers in order.
    pub fcs: Vec<Linear>,
    /// The stages.
    #[module(skip)]
    pub tokens: Vec<BplcToken>,
    /// The neuron of every layer.
    #[module(skip)]
    pub neuron: SrmOnce,
    /// Each NOSO layer's name and neurons per sample.
    #[module(skip)]
    pub layer_names: Vec<(String, usize)>,
    /// The configuration it was built from.
    #[module(skip)]
    pub config: BplcConfig,
}

/// One NOSO layer's spikes in a forward pass.
#[derive(Debug, Clone)]
pub struct LayerSpikes {
    /// Layer name (`conv1`, `fc2`, …).
    pub name: String,
    /// Neurons per sample.
    pub neurons: usize,
    /// Spike step of each neuron, `[B, neurons]` row-major (`T` when silent).
    pub first_step: Vec<usize>,
}

/// What a forward pass of a [`BplcNet`] gives.
#[derive(Debug, Clone)]
pub struct BplcOutput {
    /// Output latencies `[B, K]` with the exact spike-time gradient (`T` when silent).
    pub latency: Tensor<2>,
    /// Output potentials at their spikes `[B, K]` row-major (0 when silent), for tie-breaks.
    pub u_spike: Vec<f32>,
    /// Every NOSO layer's spike steps, input to output.
    pub layers: Vec<LayerSpikes>,
    /// Input (encoder) spikes per step and sample, `[T, B]` row-major.
    pub input_spikes: Vec<u32>,
    /// Time steps.
    pub steps: usize,
    /// Batch size.
    pub batch: usize,
}

impl BplcOutput {
    /// The step of each sample's first output spike (`T − 1` when the output stays silent):
    /// where an inference can stop.
    pub fn decision_steps(&self) -> Vec<usize> {
        let out = self.layers.last().map_or(&[][..], |l| &l.first_step[..]);
        let k = out.len() / self.batch.max(1);
        (0..self.batch)
            .map(|b| {
                let first = out[b * k..(b + 1) * k].iter().copied().min();
                first.filter(|&t| t < self.steps).unwrap_or(self.steps - 1)
            })
            .collect()
    }

    /// Spikes of each sample up to its decision step: the input's, then each layer's.
    pub fn spikes_until_decision(&self) -> Vec<Vec<usize>> {
        let decision = self.decision_steps();
        (0..self.batch)
            .map(|b| {
                let d = decision[b];
                let input: usize = (0..=d)
                    .map(|t| self.input_spikes[t * self.batch + b] as usize)
                    .sum();
                let mut counts = vec![input];
                for layer in &self.layers {
                    let row = &layer.first_step[b * layer.neurons..(b + 1) * layer.neurons];
                    counts.push(row.iter().filter(|&&t| t <= d).count());
                }
                counts
            })
            .collect()
    }
}

impl BplcNet {
    /// Number of classes (outputs of the last layer).
    pub fn outputs(&self) -> usize {
        self.layer_names.last().map_or(0, |l| l.1)
    }

    /// Time steps.
    pub fn steps(&self) -> usize {
        self.config.steps
    }

    /// Sum of the squares of every weight (for L2 weight decay).
    pub fn l2(&self) -> Tensor<1> {
        let mut total: Option<Tensor<1>> = None;
        let mut add = |t: Tensor<1>| {
            total = Some(match total.take() {
                Some(s) => s + t,
                None => t,
            });
        };
        for c in &self.convs {
            add(c.weight.val().square().sum());
        }
        for f in &self.fcs {
            add(f.weight.val().square().sum());
        }
        total.unwrap_or_else(|| Tensor::zeros([1], &Device::default()))
    }

    /// Runs images `[B, C, H, W]` (pixels in [0, 1]) through the LIF code and every layer.
    pub fn forward(&self, pixels: Tensor<4>) -> Result<BplcOutput> {
        let [b, c, h, w] = pixels.dims();
        if [c, h, w] != self.config.input {
            return Err(Error::Shape {
                what: "NOSONet input".into(),
                expected: format!("[B, {:?}]", self.config.input),
                got: format!("{:?}", pixels.dims()),
            });
        }
        let steps = self.config.steps;
        let device = pixels.device();
        let values = pixels
            .detach()
            .into_data()
            .convert::<f32>()
            .try_to_vec::<f32>()
            .map_err(|e| Error::invalid("pixels", format!("{e:?}")))?;
        let coded = lif_encode(
            &values,
            steps,
            self.config.input_scale,
            self.config.neuron.tau_m,
        );
        let per = c * h * w;
        let input_spikes: Vec<u32> = coded
            .chunks(per)
            .map(|s| s.iter().filter(|&&v| v > 0.0).count() as u32)
            .collect();
        let mut spk5 = Some(Tensor::<5>::from_data(
            TensorData::new(coded, [steps, b, c, h, w]),
            &device,
        ));
        let mut spk3: Option<Tensor<3>> = None;
        let mut tracked = false;
        let mut first: Vec<usize> = Vec::new();
        let (mut ci, mut fi) = (0, 0);
        let mut layers = Vec::new();
        let mut last_run = None;
        for token in &self.tokens {
            match *token {
                BplcToken::Conv { .. } => {
                    let x = spk5
                        .take()
                        .expect("spatial activations before a convolution");
                    let (xw, xt) = self.conv(ci, x, tracked);
                    let [_, _, o, ho, wo] = xw.dims();
                    let m = b * o * ho * wo;
                    let run = self
                        .neuron
                        .run_times(xw.reshape([steps, m]), xt.map(|t| t.reshape([steps, m])))?;
                    spk5 = Some(run.spk.clone().reshape([steps, b, o, ho, wo]));
                    first = run.first_step.clone();
                    layers.push(LayerSpikes {
                        name: self.layer_names[layers.len()].0.clone(),
                        neurons: o * ho * wo,
                        first_step: run.first_step.clone(),
                    });
                    last_run = Some(run);
                    ci += 1;
                }
                BplcToken::MinPool(k) => {
                    let x = spk5.take().expect("spatial activations before pooling");
                    let pooled = MinLatencyPool2d::new(k).forward(x, &first)?;
                    spk5 = Some(pooled.spk);
                    first = pooled.first_step;
                }
                BplcToken::Fc(n) => {
                    let x = match (spk3.take(), spk5.take()) {
                        (Some(x), _) => x,
                        (None, Some(x)) => x.flatten(2, 4),
                        (None, None) => unreachable!("activations before every stage"),
                    };
                    let (xw, xt) = self.fc(fi, x, tracked);
                    let run = self.neuron.run_times(xw, xt)?;
                    spk3 = Some(run.spk.clone().reshape([steps, b, n]));
                    layers.push(LayerSpikes {
                        name: self.layer_names[layers.len()].0.clone(),
                        neurons: n,
                        first_step: run.first_step.clone(),
                    });
                    last_run = Some(run);
                    fi += 1;
                }
            }
            tracked = true;
        }
        let run = last_run.ok_or_else(|| Error::invalid("architecture", "no NOSO layer"))?;
        let k = self.outputs();
        Ok(BplcOutput {
            latency: run.latency().reshape([b, k]),
            u_spike: run.u_spike,
            layers,
            input_spikes,
            steps,
            batch: b,
        })
    }

    /// Convolution `i` of spikes `[T, B, C, H, W]`: the weight path and, when the input
    /// carries spike-time gradients, the zero-valued spike-time path.
    fn conv(&self, i: usize, x: Tensor<5>, tracked: bool) -> (Tensor<5>, Option<Tensor<5>>) {
        let [steps, b, c, h, w] = x.dims();
        let folded: Tensor<4> = x.reshape([steps * b, c, h, w]);
        let conv = &self.convs[i];
        let weight = conv.weight.val();
        let k = weight.dims()[2];
        let pad = k / 2;
        let run = |x: Tensor<4>, weight: Tensor<4>| -> Tensor<5> {
            let o = weight.dims()[0];
            let y = if crate::kernels::enabled() && crate::device::is_flex(&x.device()) {
                let bias = Tensor::zeros([o], &weight.device());
                spike_conv2d(x, weight, bias, [pad, pad], SpikeConvMode::Auto)
            } else {
                let options = ConvOptions::new([1, 1], [pad, pad], [1, 1], 1);
                conv2d(x, weight, None, options)
            };
            let [_, o, ho, wo] = y.dims();
            y.reshape([steps, b, o, ho, wo])
        };
        let xw = run(folded.clone().detach(), weight.clone());
        let xt = tracked.then(|| run(folded.clone() - folded.detach(), weight.detach()));
        (xw, xt)
    }

    /// Fully connected layer `i` of spikes `[T, B, N]`, both paths as [`BplcNet::conv`],
    /// flattened to `[T, B·out]`.
    fn fc(&self, i: usize, x: Tensor<3>, tracked: bool) -> (Tensor<2>, Option<Tensor<2>>) {
        let [steps, b, n] = x.dims();
        let folded: Tensor<2> = x.reshape([steps * b, n]);
        let weight = self.fcs[i].weight.val();
        let run = |x: Tensor<2>, weight: Tensor<2>| -> Tensor<2> {
            let o = weight.dims()[1];
            let y = if crate::kernels::enabled() && crate::device::is_flex(&x.device()) {
                let bias = Tensor::zeros([o], &weight.device());
                spike_linear(x, weight, bias, SpikeLinearMode::Auto)
            } else {
                linear(x, weight, None)
            };
            y.reshape([steps, b * o])
        };
        let xw = run(folded.clone().detach(), weight.clone());
        let xt = tracked.then(|| run(folded.clone() - folded.detach(), weight.detach()));
        (xw, xt)
    }
}
