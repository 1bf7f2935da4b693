//! An integer program: a trained [`SpikingNet`] as integer weights, fixed-point membranes and
//! thresholds, and the steps that run them (see the parent module for the arithmetic).

use burn::module::Param;
use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::firing::Reset;
use crate::layers::WeightQuantizer;
use crate::models::spiking_net::Stage;
use crate::models::{SpikingNet, SpikingNetConfig};
use crate::quant::{WeightGrid, WeightQuantConfig};

/// Fraction bits of the fixed-point decay β: `u ← (u·round(β·2^16) + 2^15) >> 16`.
pub const BETA_FRAC_BITS: u32 = 16;

/// One step of an integer program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum IntOp {
    /// A convolution, stride 1, symmetric zero padding; weights `[out][in][kh][kw]`. On spikes
    /// it adds each active input's taps (additions only); on the 8-bit input it multiplies.
    Conv {
        /// Input `[channels, height, width]`.
        input: [usize; 3],
        /// Output channels.
        out_channels: usize,
        /// Kernel `[height, width]`.
        kernel: [usize; 2],
        /// Zero padding `[rows, columns]` on each side.
        padding: [usize; 2],
        /// Bits per weight (the integers lie in `-(2^(b-1)-1)..=2^(b-1)-1`, ternary in -1..=1).
        bits: u32,
        /// Weights, row-major.
        #[serde(skip)]
        weights: Vec<i8>,
    },
    /// A fully connected layer; weights `[in][out]` (an active input adds its row).
    Linear {
        /// Inputs.
        inputs: usize,
        /// Outputs.
        outputs: usize,
        /// Bits per weight.
        bits: u32,
        /// Weights, row-major.
        #[serde(skip)]
        weights: Vec<i8>,
    },
    /// Non-overlapping max pooling over `size × size` windows (currents or spikes).
    MaxPool {
        /// Input `[channels, height, width]`.
        input: [usize; 3],
        /// Window and stride.
        size: usize,
    },
    /// Non-overlapping sum pooling (average pooling with the `1/size²` folded into the scale).
    SumPool {
        /// Input `[channels, height, width]`.
        input: [usize; 3],
        /// Window and stride.
        size: usize,
    },
    /// Leaky integrate-and-fire neurons on integer membranes, `channels` groups of
    /// `per_channel` neurons, each group with its own bias, threshold and scale.
    Leaky {
        /// Channels (1 for a fully connected layer's neurons, which then share everything
        /// but their bias and threshold: see `per_channel`).
        channels: usize,
        /// Neurons per channel.
        per_channel: usize,
        /// β in fixed point with [`BETA_FRAC_BITS`] fraction bits.
        beta: i32,
        /// Reset mechanism (delayed, as snnTorch's default).
        reset: Reset,
        /// Added to the current every step, per channel (the layer's bias in membrane units).
        #[serde(skip)]
        bias: Vec<i32>,
        /// Firing threshold per channel in membrane units.
        #[serde(skip)]
        threshold: Vec<i32>,
        /// The float value of one membrane unit per channel (for reading membranes back).
        #[serde(skip)]
        scale: Vec<f32>,
    },
}

/// A whole integer program: the input it takes and its steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntProgram {
    /// Input `[channels, height, width]`, 8-bit, one unit = 1/255 (pixels as they are stored).
    pub input: [usize; 3],
    /// Time steps.
    pub steps: usize,
    /// The steps, in order.
    pub ops: Vec<IntOp>,
    /// What the program was made from (the network description).
    pub source: String,
    /// The data set the network was trained on (what `eval --integer` reads by default).
    #[serde(default)]
    pub dataset: String,
    /// The input encoding it was trained with: `direct` (pixels every step) or `rate`.
    #[serde(default)]
    pub encoding: String,
}

/// The value of one input unit: 8-bit pixels in [0, 1].
pub const INPUT_SCALE: f64 = 1.0 / 255.0;

/// How a current is scaled and shifted on its way to the neurons, per channel.
#[derive(Debug, Clone)]
struct Pending {
    /// The float value of one unit of the integer current.
    scale: Vec<f64>,
    /// The float offset added to the current (bias, batch-norm shift).
    offset: Vec<f64>,
    /// Channels whose weights were negated to keep the scale positive.
    flipped: Vec<bool>,
    /// A max pooling has run since the weights (a later negative scale cannot be flipped).
    max_pooled: bool,
    /// Index of the weighted op in the program.
    op: usize,
}

impl Pending {
    /// What the weighted op at `op` hands on: its channels' weight scales times the unit of
    /// its input, and its bias (zero without one).
    fn new(scales: &[f64], input_scale: f64, bias: Option<&Param<Tensor<1>>>, op: usize) -> Self {
        let channels = scales.len();
        Self {
            scale: scales.iter().map(|s| s * input_scale).collect(),
            offset: bias.map_or_else(|| vec![0.0; channels], |b| values(b.val().into_data())),
            flipped: vec![false; channels],
            max_pooled: false,
            op,
        }
    }
}

impl IntProgram {
    /// Converts a trained network. Its quantization-aware weight grid is kept (the integers are
    /// exact); a float network's weights are quantized to `default_bits` per tensor.
    pub fn from_net(
        net: &SpikingNet,
        config: &SpikingNetConfig,
        default_bits: u32,
    ) -> Result<Self> {
        let unsupported = |what: String| Error::invalid("integer program", what);
        let quant = config
            .weight_quant
            .unwrap_or(WeightQuantConfig::bits(default_bits)?);
        let bits = match quant.grid {
            WeightGrid::Bits(b) => b,
            WeightGrid::Ternary => 2,
        };
        let [mut c, mut h, mut w] = net.input;
        let mut flat: Option<usize> = None;
        let mut ops = Vec::new();
        let mut pending: Option<Pending> = None;
        // The value of one unit of what the next weighted layer reads.
        let mut input_scale = INPUT_SCALE;
        for stage in &net.stages {
            match stage {
                Stage::Conv(conv) => {
                    let layer = &conv.conv;
                    let [out_c, in_c, kh, kw] = layer.weight.dims();
                    if layer.stride != [1, 1] || layer.dilation != [1, 1] || layer.groups != 1 {
                        return Err(unsupported(
                            "a convolution with stride, dilation or groups".into(),
                        ));
                    }
                    let [(top, bottom), (left, right)] = conv.padding_pairs(h, w);
                    if top != bottom || left != right {
                        return Err(unsupported("a convolution with asymmetric padding".into()));
                    }
                    let (ints, scales) = integers(&conv.quant, layer.weight.val(), 0, &quant);
                    ops.push(IntOp::Conv {
                        input: [c, h, w],
                        out_channels: out_c,
                        kernel: [kh, kw],
                        padding: [top, left],
                        bits,
                        weights: ints,
                    });
                    let bias = layer.bias.as_ref();
                    pending = Some(Pending::new(&scales, input_scale, bias, ops.len() - 1));
                    debug_assert_eq!(in_c, c);
                    (c, h, w) = (out_c, h + 2 * top + 1 - kh, w + 2 * left + 1 - kw);
                }
                Stage::Linear(linear) => {
                    let [inputs, outputs] = linear.linear.weight.dims();
                    let (ints, scales) =
                        integers(&linear.quant, linear.linear.weight.val(), 1, &quant);
                    ops.push(IntOp::Linear {
                        inputs,
                        outputs,
                        bits,
                        weights: ints,
                    });
                    let bias = linear.linear.bias.as_ref();
                    pending = Some(Pending::new(&scales, input_scale, bias, ops.len() - 1));
                    flat = Some(outputs);
                    c = outputs;
                }
                Stage::MaxPool(pool) => {
                    let size = pool.pool.kernel_size[0];
                    if pool.pool.kernel_size != [size, size] || pool.pool.stride != [size, size] {
                        return Err(unsupported("max pooling with overlapping windows".into()));
                    }
                    ops.push(IntOp::MaxPool {
                        input: [c, h, w],
                        size,
                    });
                    if let Some(p) = &mut pending {
                        p.max_pooled = true;
                    }
                    (h, w) = (h / size, w / size);
                }
                Stage::AvgPool(pool) => {
                    let size = pool.pool.kernel_size[0];
                    if pool.pool.kernel_size != [size, size] || pool.pool.stride != [size, size] {
                        return Err(unsupported(
                            "average pooling with overlapping windows".into(),
                        ));
                    }
                    let p = pending.as_mut().ok_or_else(|| {
                        unsupported(
                            "average pooling of spikes (their averages are not spikes)".into(),
                        )
                    })?;
                    p.scale.iter_mut().for_each(|s| *s /= (size * size) as f64);
                    ops.push(IntOp::SumPool {
                        input: [c, h, w],
                        size,
                    });
                    (h, w) = (h / size, w / size);
                }
                Stage::BatchNorm2d(bn) => {
                    let p = pending
                        .as_mut()
                        .ok_or_else(|| unsupported("batch norm of spikes".into()))?;
                    let norm = &bn.norm;
                    let gamma = values(norm.gamma.val().into_data());
                    let beta = values(norm.beta.val().into_data());
                    let mean = values(norm.running_mean.value().into_data());
                    let var = values(norm.running_var.value().into_data());
                    for ch in 0..c {
                        let g = gamma[ch] / (var[ch] + norm.epsilon).sqrt();
                        p.offset[ch] = g * (p.offset[ch] - mean[ch]) + beta[ch];
                        p.scale[ch] *= g;
                    }
                }
                Stage::BatchNorm(_) => {
                    return Err(unsupported(
                        "batch norm through time (BN): its per-step statistics do not fold into \
                         the weights; train with BN2D"
                            .into(),
                    ))
                }
                Stage::Dropout(_) => {}
                Stage::Neuron(lif) => {
                    let mut p = pending.take().ok_or_else(|| {
                        unsupported("two Leaky layers without weights between them".into())
                    })?;
                    let graded = values(lif.firing.graded.val().into_data());
                    if graded.iter().any(|g| *g != 1.0) {
                        return Err(unsupported(
                            "graded spikes (a spike value other than 1)".into(),
                        ));
                    }
                    let cfg = &lif.firing.config;
                    if !cfg.reset_delay || cfg.inhibition {
                        return Err(unsupported("an immediate reset or inhibition".into()));
                    }
                    let beta = values(lif.beta.val().clamp(0.0, 1.0).into_data());
                    let theta = values(lif.firing.threshold.val().into_data());
                    if beta.len() != 1 || theta.len() != 1 {
                        return Err(unsupported("per-neuron β or threshold".into()));
                    }
                    // A negative scale (batch norm with γ < 0) flips the channel's weights.
                    for ch in 0..p.scale.len() {
                        if p.scale[ch] < 0.0 {
                            if p.max_pooled {
                                return Err(unsupported(
                                    "max pooling before a batch norm with a negative scale".into(),
                                ));
                            }
                            p.scale[ch] = -p.scale[ch];
                            p.flipped[ch] = true;
                        }
                    }
                    flip_channels(&mut ops[p.op], &p.flipped);
                    let fixed = |v: f64, s: f64| -> Result<i32> {
                        let q = (v / s).round();
                        if !q.is_finite() || q.abs() > f64::from(i32::MAX) {
                            return Err(unsupported(format!("{v} does not fit 32-bit membranes")));
                        }
                        Ok(q as i32)
                    };
                    let channels = p.scale.len();
                    let per_channel = if flat.is_some() { 1 } else { h * w };
                    ops.push(IntOp::Leaky {
                        channels,
                        per_channel,
                        beta: (beta[0] * f64::from(1u32 << BETA_FRAC_BITS)).round() as i32,
                        reset: cfg.reset,
                        bias: (0..channels)
                            .map(|ch| fixed(p.offset[ch], p.scale[ch]))
                            .collect::<Result<_>>()?,
                        threshold: (0..channels)
                            .map(|ch| fixed(theta[0], p.scale[ch]))
                            .collect::<Result<_>>()?,
                        scale: p.scale.iter().map(|&s| s as f32).collect(),
                    });
                    input_scale = 1.0;
                }
            }
        }
        Ok(Self {
            input: net.input,
            steps: net.steps,
            ops,
            source: config.describe(),
            dataset: String::new(),
            encoding: "direct".into(),
        })
    }

    /// Converts the network a training checkpoint holds (rebuilt from its run configuration),
    /// recording its data set and input encoding.
    pub fn from_checkpoint(path: &std::path::Path, default_bits: u32) -> Result<Self> {
        let (net, config, meta) = crate::train::run_config::load_checkpoint_net(path)?;
        let mut program = Self::from_net(&net, &config, default_bits)?;
        program.dataset = meta.config["dataset"].as_str().unwrap_or("").to_string();
        let rate = matches!(
            crate::train::run_config::encoding_from_run(&meta.config),
            crate::data::Encoding::Rate { .. }
        );
        program.encoding = if rate { "rate" } else { "direct" }.into();
        Ok(program)
    }

    /// The encoding its input takes (what `encoding` names).
    pub fn input_encoding(&self) -> crate::data::Encoding {
        if self.encoding == "rate" {
            crate::data::Encoding::Rate { gain: 1.0 }
        } else {
            crate::data::Encoding::Direct
        }
    }

    /// Number of outputs (neurons of the last layer).
    pub fn outputs(&self) -> usize {
        match self.ops.last() {
            Some(IntOp::Leaky {
                channels,
                per_channel,
                ..
            }) => channels * per_channel,
            _ => 0,
        }
    }
}

/// A tensor's values as f64.
fn values(data: burn::tensor::TensorData) -> Vec<f64> {
    data.iter::<f64>().collect()
}

/// A layer's weights as integers on its grid (`fallback` for a float layer) and the scale of
/// each output channel (`channel_axis`), exactly as the layer's forward pass rounds them.
fn integers<const D: usize>(
    quantizer: &WeightQuantizer,
    weight: Tensor<D>,
    channel_axis: usize,
    fallback: &WeightQuantConfig,
) -> (Vec<i8>, Vec<f64>) {
    let channels = weight.dims()[channel_axis];
    let (ints, scale) = quantizer.grid(weight, channel_axis, fallback);
    let ints = ints.into_data().iter::<f32>().map(|v| v as i8).collect();
    let scales = values(scale.into_data());
    // A scale per tensor serves every channel.
    let per_channel = if scales.len() == 1 {
        vec![scales[0]; channels]
    } else {
        scales
    };
    (ints, per_channel)
}

/// Negates the weights of the output channels marked in `flipped`.
fn flip_channels(op: &mut IntOp, flipped: &[bool]) {
    if !flipped.contains(&true) {
        return;
    }
    match op {
        IntOp::Conv {
            input,
            out_channels,
            kernel,
            weights,
            ..
        } => {
            let per = input[0] * kernel[0] * kernel[1];
            for (o, chunk) in weights.chunks_mut(per).enumerate().take(*out_channels) {
                if flipped[o] {
                    chunk.iter_mut().for_each(|v| *v = -*v);
                }
            }
        }
        IntOp::Linear {
            outputs, weights, ..
        } => {
            for row in weights.chunks_mut(*outputs) {
                for (o, v) in row.iter_mut().enumerate() {
                    if flipped[o] {
                        *v = -*v;
                    }
                }
            }
        }
        _ => {}
    }
}
