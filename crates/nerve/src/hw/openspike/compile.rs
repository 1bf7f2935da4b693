//! A trained fully connected spiking network mapped onto the accelerator.
//!
//! The control unit runs three layers: a one-to-one input layer, a hidden layer and an output
//! layer. A network of two fully connected layers (`FCh-FCo` on an input of `n` values) maps as:
//! - **Input layer**: `n ≤ 1024` neurons, neuron `j` gated to input `j`, β code 8 and an initial
//!   potential of [`CompileOptions::input_potential`] (230 by default), so that it relays the
//!   first spike of its input (a one-synapse neuron gains at most 1 per step and needs 231).
//! - **Hidden layer** (`h ≤ 1024`, fan-in `n`) and **output layer** (`o ≤ 16`, fan-in `h`):
//!   weights become 1 bit, non-negative: 1 where `w > τ · max(w)` of the layer (τ is
//!   [`CompileOptions::weight_threshold`], 0 keeps the positive weights), 0 elsewhere, so
//!   inhibition is dropped. β becomes the nearest code in eighths. Biases are dropped, and the
//!   threshold (230 on an 8-bit potential, one unit per active synapse), the Schmitt trigger's
//!   re-arming below 200 and the reset to zero are fixed by the chip.
//!
//! The mapping is exact about what fits and lossy about what the arithmetic means; a network
//! trained for the chip's own arithmetic comes from [`super::train`] instead.

use std::path::Path;

use super::datapath::{Layer, Network, State};
use super::{MAX_BETA, MAX_FAN_IN, MAX_NEURONS, MAX_OUTPUTS};
use crate::error::{Error, Result};
use crate::models::spiking_net::Stage;
use crate::models::SpikingNet;

/// How weights, β and the input layer are mapped.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CompileOptions {
    /// A weight becomes 1 where it exceeds this fraction of its layer's largest weight.
    pub weight_threshold: f64,
    /// Initial stored potential of the input neurons.
    pub input_potential: u8,
}

impl Default for CompileOptions {
    fn default() -> Self {
        CompileOptions {
            weight_threshold: 0.0,
            input_potential: 230,
        }
    }
}

/// A network ready for the accelerator, with its initial state.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// Input, hidden and output layers.
    pub network: Network,
    /// Initial potentials and armed bits.
    pub init: State,
    /// Time steps the network was trained with.
    pub steps: usize,
    /// Fraction of 1 weights in the hidden and output layers.
    pub density: [f64; 2],
    /// What the mapping dropped or changed, one line each.
    pub notes: Vec<String>,
}

/// One fully connected layer of the trained network and the β of the neurons after it.
struct Dense {
    inputs: usize,
    outputs: usize,
    /// `[in][out]`, row-major.
    weights: Vec<f32>,
    bias: bool,
    beta: Vec<f64>,
}

fn unfit(msg: String) -> Error {
    Error::invalid("OpenSpike compile", msg)
}

/// The fully connected layers of `net`, refusing every other kind of stage.
fn dense_layers(net: &SpikingNet) -> Result<Vec<Dense>> {
    let mut out: Vec<Dense> = Vec::new();
    let mut pending: Option<Dense> = None;
    for (k, stage) in net.stages.iter().enumerate() {
        let kind = match stage {
            Stage::Linear(linear) => {
                if pending.is_some() {
                    return Err(unfit(format!(
                        "stage {k}: two fully connected layers without Leaky neurons between them"
                    )));
                }
                let [inputs, outputs] = linear.linear.weight.dims();
                let bias = linear
                    .linear
                    .bias
                    .as_ref()
                    .is_some_and(|b| b.val().into_data().iter::<f32>().any(|v| v != 0.0));
                pending = Some(Dense {
                    inputs,
                    outputs,
                    weights: linear
                        .linear
                        .weight
                        .val()
                        .into_data()
                        .iter::<f32>()
                        .collect(),
                    bias,
                    beta: Vec::new(),
                });
                continue;
            }
            Stage::Neuron(lif) => {
                let Some(mut dense) = pending.take() else {
                    return Err(unfit(format!(
                        "stage {k}: Leaky neurons not fed by a fully connected layer"
                    )));
                };
                dense.beta = lif
                    .beta
                    .val()
                    .into_data()
                    .iter::<f32>()
                    .map(f64::from)
                    .collect();
                out.push(dense);
                continue;
            }
            Stage::Dropout(_) => continue,
            Stage::Conv(_) => "a convolution",
            Stage::MaxPool(_) => "max pooling",
            Stage::AvgPool(_) => "average pooling",
            Stage::BatchNorm(_) | Stage::BatchNorm2d(_) => "batch norm",
        };
        return Err(unfit(format!(
            "stage {k} is {kind}; the accelerator takes fully connected layers only"
        )));
    }
    if pending.is_some() {
        return Err(unfit(
            "the last fully connected layer has no Leaky neurons".into(),
        ));
    }
    Ok(out)
}

/// 1-bit weights `[out][in]` of a layer and the fraction that are 1.
fn binarize(d: &Dense, threshold: f64) -> (Vec<bool>, f64) {
    let max = d.weights.iter().fold(0f32, |m, &w| m.max(w));
    let cut = threshold * f64::from(max);
    let mut bits = vec![false; d.inputs * d.outputs];
    for i in 0..d.inputs {
        for o in 0..d.outputs {
            bits[o * d.inputs + i] = f64::from(d.weights[i * d.outputs + o]) > cut && max > 0.0;
        }
    }
    let ones = bits.iter().filter(|&&b| b).count() as f64 / bits.len().max(1) as f64;
    (bits, ones)
}

/// The nearest decay code to `beta` (clamped to [0, 1]).
fn beta_code(beta: f64) -> u8 {
    (beta.clamp(0.0, 1.0) * f64::from(MAX_BETA)).round() as u8
}

/// Maps `net` (two fully connected layers, each followed by Leaky neurons) onto the chip.
pub fn from_net(net: &SpikingNet, options: &CompileOptions) -> Result<Compiled> {
    if !(0.0..1.0).contains(&options.weight_threshold) {
        return Err(unfit(format!(
            "weight threshold {}; it is a fraction of the largest weight in [0, 1)",
            options.weight_threshold
        )));
    }
    let dense = dense_layers(net)?;
    let [hidden, output] = &dense[..] else {
        return Err(unfit(format!(
            "{} fully connected layers; the accelerator runs a one-to-one input layer, then a \
             hidden layer and an output layer: 2 fully connected layers",
            dense.len()
        )));
    };
    let n = hidden.inputs;
    for (what, got, limit) in [
        ("input of", n, MAX_FAN_IN),
        ("hidden layer of", hidden.outputs, MAX_NEURONS),
        ("output layer of", output.outputs, MAX_OUTPUTS),
    ] {
        if got > limit {
            let unit = if what == "input of" {
                "values"
            } else {
                "neurons"
            };
            return Err(unfit(format!(
                "{what} {got} {unit}; the accelerator holds {limit} ({})",
                match what {
                    "input of" => "one input neuron per value",
                    "hidden layer of" => "1024 physical neurons",
                    _ => "one group of 16 at address 128",
                }
            )));
        }
    }
    let mut notes = vec![
        "threshold 230 and reset to 0 are fixed by the chip; one active synapse adds 1".into(),
    ];
    let mut layers = vec![Layer::from_fn(n, vec![MAX_BETA; n], |j, i| i == j)?];
    let mut density = [0.0; 2];
    for (k, d) in [hidden, output].into_iter().enumerate() {
        let (bits, ones) = binarize(d, options.weight_threshold);
        density[k] = ones;
        let beta = (0..d.outputs)
            .map(|j| beta_code(d.beta.get(j).or(d.beta.first()).copied().unwrap_or(1.0)))
            .collect();
        layers.push(Layer::from_fn(d.inputs, beta, |j, i| {
            bits[j * d.inputs + i]
        })?);
        if d.bias {
            notes.push(format!(
                "layer {}: biases dropped (the chip has none)",
                k + 1
            ));
        }
    }
    let network = Network::new(layers)?;
    let mut init = network.rest_state();
    init.u[0] = vec![options.input_potential; n];
    Ok(Compiled {
        network,
        init,
        steps: net.steps,
        density,
        notes,
    })
}

/// Loads a training checkpoint (rebuilt from its run configuration) and maps it.
pub fn from_checkpoint(path: &Path, options: &CompileOptions) -> Result<Compiled> {
    let (net, _, _) = crate::train::run_config::load_checkpoint_net(path)?;
    from_net(&net, options).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

/// Output spike counts of a run of `inputs` from `init`, and the neuron that fired most (the
/// lowest index on a tie).
pub fn classify(net: &Network, init: &State, inputs: &[Vec<bool>]) -> Result<(usize, Vec<usize>)> {
    let mut state = init.clone();
    let mut counts = vec![0usize; net.outputs()];
    for x in inputs {
        let step = net.step(&mut state, x)?;
        if let Some(last) = step.last() {
            for (c, &s) in counts.iter_mut().zip(&last.spikes) {
                *c += usize::from(s);
            }
        }
    }
    let best = (0..counts.len())
        .max_by_key(|&j| (counts[j], std::cmp::Reverse(j)))
        .unwrap_or(0);
    Ok((best, counts))
}
