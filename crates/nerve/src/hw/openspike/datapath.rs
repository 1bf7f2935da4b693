//! The neuron datapath: decay, accumulation, integration, the Schmitt trigger and the reset,
//! for a chain of fully connected layers of 1-bit weights stepped in order.

use super::{MAX_BETA, MAX_FAN_IN, MAX_NEURONS, THRESH_HIGH, THRESH_LOW};
use crate::error::{Error, Result};

/// `β·u/8` as the shift-add multiplier computes it: bit 2 of `beta` adds `u >> 1`, bit 1
/// adds `u >> 2`, bit 0 adds `u >> 3` (each term truncated on its own); code 8 is `u`.
/// Codes 9..15 are undefined in the RTL and refused.
pub fn decay(beta: u8, u: u8) -> Result<u8> {
    check_beta(beta)?;
    Ok(decay_code(beta, u))
}

/// [`decay`] for a code already checked to be at most 8.
fn decay_code(beta: u8, u: u8) -> u8 {
    if beta >= MAX_BETA {
        return u;
    }
    // At most 127 + 63 + 31 = 221: the 8-bit sum of the RTL never wraps.
    [(4, 1), (2, 2), (1, 3)]
        .iter()
        .filter(|&&(bit, _)| beta & bit != 0)
        .map(|&(_, shift)| u >> shift)
        .sum()
}

/// Refuses decay codes the multiplier does not define.
fn check_beta(beta: u8) -> Result<()> {
    if beta > MAX_BETA {
        return Err(Error::invalid(
            "OpenSpike decay code",
            format!("{beta} is undefined in the RTL (shift_add_mult.v defines 0..=8)"),
        ));
    }
    Ok(())
}

/// The 8-bit accumulator after `active` synapses (`w AND s` = 1): it sticks at 255.
pub fn accumulate(active: usize) -> u8 {
    active.min(255) as u8
}

/// The Schmitt trigger: `(spike, able')` for potential `v` and the armed bit `able`, where
/// `spike = able && v > 230` and `able' = !spike && v < 200`.
pub fn schmitt(v: u8, able: bool) -> (bool, bool) {
    let spike = able && v > THRESH_HIGH;
    (spike, !spike && v < THRESH_LOW)
}

/// `v = min(255, decay(β, u) + acc)` for a checked code.
fn integrate(beta: u8, u: u8, acc: u8) -> u8 {
    (u16::from(decay_code(beta, u)) + u16::from(acc)).min(255) as u8
}

/// Bits packed 64 to a word, bit `i` at bit `i % 64` of word `i / 64`.
fn pack(bits: impl Iterator<Item = bool>, words: usize) -> Vec<u64> {
    let mut out = vec![0u64; words];
    for (i, b) in bits.enumerate() {
        if b {
            out[i / 64] |= 1 << (i % 64);
        }
    }
    out
}

/// One fully connected layer: 1-bit weights `[neuron][input]` and a decay code per neuron.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layer {
    inputs: usize,
    neurons: usize,
    /// u64 words per neuron's weight row.
    stride: usize,
    /// Weight rows, `stride` words each, bit `i` of a row = weight from input `i`.
    rows: Vec<u64>,
    beta: Vec<u8>,
}

impl Layer {
    /// A layer of `beta.len()` neurons over `inputs` inputs whose weight from input `i` to
    /// neuron `j` is `weight(j, i)`. Refuses more than 1024 neurons or inputs, an empty layer
    /// and decay codes over 8.
    pub fn from_fn(
        inputs: usize,
        beta: Vec<u8>,
        mut weight: impl FnMut(usize, usize) -> bool,
    ) -> Result<Self> {
        let neurons = beta.len();
        let bad = |msg: String| Error::invalid("OpenSpike layer", msg);
        if neurons == 0 || neurons > MAX_NEURONS {
            return Err(bad(format!(
                "{neurons} neurons; the accelerator has 1 to {MAX_NEURONS}"
            )));
        }
        if inputs == 0 || inputs > MAX_FAN_IN {
            return Err(bad(format!(
                "fan-in {inputs}; the memory layout holds 1 to {MAX_FAN_IN} inputs per neuron"
            )));
        }
        for (j, &b) in beta.iter().enumerate() {
            check_beta(b).map_err(|e| bad(format!("neuron {j}: {e}")))?;
        }
        let stride = inputs.div_ceil(64);
        let mut rows = Vec::with_capacity(neurons * stride);
        for j in 0..neurons {
            rows.extend(pack((0..inputs).map(|i| weight(j, i)), stride));
        }
        Ok(Layer {
            inputs,
            neurons,
            stride,
            rows,
            beta,
        })
    }

    /// Inputs (pre-neurons) per neuron.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// Neurons of the layer.
    pub fn neurons(&self) -> usize {
        self.neurons
    }

    /// The decay code of each neuron.
    pub fn beta(&self) -> &[u8] {
        &self.beta
    }

    /// The weight from input `i` to neuron `j` (false outside the layer).
    pub fn weight(&self, j: usize, i: usize) -> bool {
        j < self.neurons
            && i < self.inputs
            && self.rows[j * self.stride + i / 64] >> (i % 64) & 1 == 1
    }

    /// Active synapses of neuron `j` for packed input spikes.
    fn active(&self, j: usize, spikes: &[u64]) -> usize {
        self.rows[j * self.stride..(j + 1) * self.stride]
            .iter()
            .zip(spikes)
            .map(|(w, s)| (w & s).count_ones() as usize)
            .sum()
    }

    /// One step of the layer: potentials before the reset and spikes, updating `u` and `able`.
    fn step(&self, input: &[bool], u: &mut [u8], able: &mut [bool]) -> LayerStep {
        let spikes_in = pack(input.iter().copied(), self.stride);
        let mut out = LayerStep {
            potentials: Vec::with_capacity(self.neurons),
            spikes: Vec::with_capacity(self.neurons),
        };
        for j in 0..self.neurons {
            let acc = accumulate(self.active(j, &spikes_in));
            let v = integrate(self.beta[j], u[j], acc);
            let (spike, armed) = schmitt(v, able[j]);
            u[j] = if spike { 0 } else { v };
            able[j] = armed;
            out.potentials.push(v);
            out.spikes.push(spike);
        }
        out
    }
}

/// What one layer did in one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerStep {
    /// `v` of each neuron, before the spike reset.
    pub potentials: Vec<u8>,
    /// Whether each neuron fired.
    pub spikes: Vec<bool>,
}

impl LayerStep {
    /// The stored potentials after the reset (0 where the neuron fired, else `v`).
    pub fn stored(&self) -> Vec<u8> {
        self.potentials
            .iter()
            .zip(&self.spikes)
            .map(|(&v, &s)| if s { 0 } else { v })
            .collect()
    }
}

/// Every layer's activity, indexed `[step][layer]`.
pub type Trace = Vec<Vec<LayerStep>>;

/// The neurons' memory: stored potential and armed bit of each neuron, `[layer][neuron]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// Stored 8-bit potentials.
    pub u: Vec<Vec<u8>>,
    /// Armed ("spikeability") bits: a neuron may fire only when set.
    pub able: Vec<Vec<bool>>,
}

/// A chain of layers, each fed by the one before (the first by the input vector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    layers: Vec<Layer>,
}

impl Network {
    /// A network of `layers` in order; each layer's fan-in must be its predecessor's size.
    pub fn new(layers: Vec<Layer>) -> Result<Self> {
        if layers.is_empty() {
            return Err(Error::invalid("OpenSpike network", "no layers"));
        }
        for (l, pair) in layers.windows(2).enumerate() {
            if pair[1].inputs != pair[0].neurons {
                return Err(Error::invalid(
                    "OpenSpike network",
                    format!(
                        "layer {} has fan-in {} but layer {l} has {} neurons",
                        l + 1,
                        pair[1].inputs,
                        pair[0].neurons
                    ),
                ));
            }
        }
        Ok(Network { layers })
    }

    /// The layers in order.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Length of the input spike vector.
    pub fn inputs(&self) -> usize {
        self.layers[0].inputs
    }

    /// Neurons of the last layer.
    pub fn outputs(&self) -> usize {
        self.layers[self.layers.len() - 1].neurons
    }

    /// The state with every potential 0 and every neuron armed.
    pub fn rest_state(&self) -> State {
        State {
            u: self.layers.iter().map(|l| vec![0; l.neurons]).collect(),
            able: self.layers.iter().map(|l| vec![true; l.neurons]).collect(),
        }
    }

    /// Refuses a state whose shape is not this network's.
    pub fn check_state(&self, state: &State) -> Result<()> {
        let sizes: Vec<usize> = self.layers.iter().map(|l| l.neurons).collect();
        let shape = |v: Vec<usize>| format!("{v:?}");
        for (what, got) in [
            (
                "OpenSpike potentials",
                state.u.iter().map(Vec::len).collect(),
            ),
            (
                "OpenSpike armed bits",
                state.able.iter().map(Vec::len).collect(),
            ),
        ] {
            if got != sizes {
                return Err(Error::Shape {
                    what: what.into(),
                    expected: shape(sizes),
                    got: shape(got),
                });
            }
        }
        Ok(())
    }

    /// One time step: every layer in order on `input` (one bit per input), updating `state`.
    pub fn step(&self, state: &mut State, input: &[bool]) -> Result<Vec<LayerStep>> {
        self.check_state(state)?;
        if input.len() != self.inputs() {
            return Err(Error::Shape {
                what: "OpenSpike input spikes".into(),
                expected: self.inputs().to_string(),
                got: input.len().to_string(),
            });
        }
        let mut out: Vec<LayerStep> = Vec::with_capacity(self.layers.len());
        for (l, layer) in self.layers.iter().enumerate() {
            let feed = match out.last() {
                Some(prev) => &prev.spikes[..],
                None => input,
            };
            let done = layer.step(feed, &mut state.u[l], &mut state.able[l]);
            out.push(done);
        }
        Ok(out)
    }

    /// Runs one step per entry of `inputs` from `state`, returning every layer's activity.
    pub fn run(&self, state: &mut State, inputs: &[Vec<bool>]) -> Result<Trace> {
        inputs.iter().map(|x| self.step(state, x)).collect()
    }
}
