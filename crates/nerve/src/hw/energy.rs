//! Synaptic-operation and energy accounting: what one inference of a [`SpikingNet`] costs, counted
//! from the activations it really computed on, and the same for its ANN twin.
//!
//! Counts, per layer and per inference (the batch's totals over its samples):
//! - **ACs** (accumulates): a binary input (a spike) into a convolution or FC layer adds its
//!   weights to each output it reaches, so ACs = Σ spikes × fan-out (border positions of a
//!   convolution reach fewer outputs and are counted exactly). Average pooling adds its inputs.
//! - **MACs** (multiply-accumulates): a non-binary input (the first layer's pixels, pooled
//!   averages) into a convolution or FC layer costs every connection; batch-norm one per value.
//!   A static image enters the first layer once, not once per step, as Nerve computes it.
//! - **Neuron updates**: each neuron each step (`β·u + I`, then the threshold).
//! - **Memory traffic**: one weight read per AC or MAC of a weighted layer (no reuse: an
//!   event-driven core fetches the weights of each spike's fan-out), and a membrane read and
//!   write per neuron update, at the network's weight and state widths.
//!
//! The **ANN twin** has the same layers with ReLU for the Leaky neurons, run once (no time
//! steps) on dense float activations: every connection is a MAC, each activation is written and
//! read once. Energies come from an [`EnergyCosts`] table the user can replace; the default is
//! the 45 nm figures of Horowitz (ISSCC 2014) that the SNN literature quotes.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use serde::Deserialize;

use crate::data::Samples;
use crate::train::trainer::{evaluation_rng, TrainConfig};

use crate::error::{Error, Result};
use crate::models::spiking_net::{Stage, StageInput};
use crate::models::SpikingNet;
use crate::quant::WeightGrid;

/// Energy per operation in picojoules (a TOML file with these keys replaces any of them).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnergyCosts {
    /// A 32-bit float multiply-accumulate (3.7 pJ multiply + 0.9 pJ add).
    pub float_mac_pj: f64,
    /// A 32-bit float add (an accumulate).
    pub float_add_pj: f64,
    /// An 8-bit integer add.
    pub int_add_pj: f64,
    /// An 8-bit integer multiply.
    pub int_mult_pj: f64,
    /// Reading one byte of on-chip SRAM (a 64-bit read of an 8 KB SRAM is 10 pJ).
    pub sram_read_pj_per_byte: f64,
    /// Writing one byte of on-chip SRAM.
    pub sram_write_pj_per_byte: f64,
}

impl Default for EnergyCosts {
    fn default() -> Self {
        Self {
            float_mac_pj: 4.6,
            float_add_pj: 0.9,
            int_add_pj: 0.03,
            int_mult_pj: 0.2,
            sram_read_pj_per_byte: 1.25,
            sram_write_pj_per_byte: 1.25,
        }
    }
}

impl EnergyCosts {
    /// Reads a TOML table of costs; keys it omits keep the defaults, unknown keys are an error.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let costs: Self = toml::from_str(&text)
            .map_err(|e| Error::format(path, e.message().replace('\n', " ")))?;
        let all = [
            costs.float_mac_pj,
            costs.float_add_pj,
            costs.int_add_pj,
            costs.int_mult_pj,
            costs.sram_read_pj_per_byte,
            costs.sram_write_pj_per_byte,
        ];
        if all.iter().any(|c| !c.is_finite() || *c < 0.0) {
            return Err(Error::format(
                path,
                "every cost must be a finite number >= 0",
            ));
        }
        Ok(costs)
    }
}

/// The arithmetic an inference runs in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Precision {
    /// 32-bit floats throughout.
    Float32,
    /// Integer arithmetic on `weight_bits`-bit weights and `state_bits`-bit membranes (priced
    /// with the 8-bit costs).
    Int {
        /// Bits per weight.
        weight_bits: u32,
        /// Bits per membrane.
        state_bits: u32,
    },
}

impl Precision {
    /// The precision a (possibly quantization-aware) network runs in once made integer:
    /// ternary weights take 2 bits; a float state is taken as 16-bit fixed point.
    pub fn of(net_weights: Option<WeightGrid>, state_bits: Option<u32>) -> Self {
        match (net_weights, state_bits) {
            (None, None) => Precision::Float32,
            (w, s) => Precision::Int {
                weight_bits: match w {
                    Some(WeightGrid::Bits(b)) => b,
                    Some(WeightGrid::Ternary) => 2,
                    None => 8,
                },
                state_bits: s.unwrap_or(16),
            },
        }
    }

    fn weight_bytes(self) -> f64 {
        match self {
            Precision::Float32 => 4.0,
            Precision::Int { weight_bits, .. } => f64::from(weight_bits) / 8.0,
        }
    }

    fn state_bytes(self) -> f64 {
        match self {
            Precision::Float32 => 4.0,
            Precision::Int { state_bits, .. } => f64::from(state_bits) / 8.0,
        }
    }
}

/// What one layer costs per inference.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerCounts {
    /// The layer, e.g. `conv1 12C5` or `lif1 (12x12x12)`.
    pub name: String,
    /// Spikes the layer emits (neuron layers).
    pub spikes: f64,
    /// Accumulates.
    pub acs: f64,
    /// Multiply-accumulates.
    pub macs: f64,
    /// Neuron state updates.
    pub neuron_updates: f64,
    /// Bytes of weights read.
    pub weight_bytes: f64,
    /// Bytes of neuron state (or ANN activations) read.
    pub state_read_bytes: f64,
    /// Bytes of neuron state (or ANN activations) written.
    pub state_write_bytes: f64,
}

impl LayerCounts {
    /// The layer's energy in picojoules at `precision` with `costs`.
    pub fn energy_pj(&self, precision: Precision, costs: &EnergyCosts) -> f64 {
        let (add, mac) = match precision {
            Precision::Float32 => (costs.float_add_pj, costs.float_mac_pj),
            Precision::Int { .. } => (costs.int_add_pj, costs.int_mult_pj + costs.int_add_pj),
        };
        self.acs * add
            + self.macs * mac
            + self.neuron_updates * mac
            + self.weight_bytes * costs.sram_read_pj_per_byte
            + self.state_read_bytes * costs.sram_read_pj_per_byte
            + self.state_write_bytes * costs.sram_write_pj_per_byte
    }

    fn add(&mut self, other: &LayerCounts) {
        self.spikes += other.spikes;
        self.acs += other.acs;
        self.macs += other.macs;
        self.neuron_updates += other.neuron_updates;
        self.weight_bytes += other.weight_bytes;
        self.state_read_bytes += other.state_read_bytes;
        self.state_write_bytes += other.state_write_bytes;
    }
}

/// A network's costs per inference, layer by layer.
#[derive(Debug, Clone, PartialEq)]
pub struct OpCounts {
    /// The layers that cost something, in order.
    pub layers: Vec<LayerCounts>,
    /// The arithmetic the counts are priced in.
    pub precision: Precision,
}

impl OpCounts {
    /// Every layer summed.
    pub fn total(&self) -> LayerCounts {
        let mut total = LayerCounts {
            name: "total".into(),
            ..LayerCounts::default()
        };
        self.layers.iter().for_each(|l| total.add(l));
        total
    }

    /// Energy per inference in picojoules.
    pub fn energy_pj(&self, costs: &EnergyCosts) -> f64 {
        self.layers
            .iter()
            .map(|l| l.energy_pj(self.precision, costs))
            .sum()
    }
}

/// An inference's counts for the network and for its ANN twin.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyReport {
    /// The spiking network as it ran.
    pub snn: OpCounts,
    /// The same layers as a float ANN run once.
    pub ann: OpCounts,
    /// Samples the counts are averaged over.
    pub samples: usize,
}

/// Accumulates counts over batches; [`EnergyMeter::report`] averages them per inference.
#[derive(Debug, Clone)]
pub struct EnergyMeter {
    snn: Vec<LayerCounts>,
    ann: Vec<LayerCounts>,
    samples: usize,
    precision: Precision,
}

impl EnergyMeter {
    /// A meter for a network running at `precision`.
    pub fn new(precision: Precision) -> Self {
        Self {
            snn: Vec::new(),
            ann: Vec::new(),
            samples: 0,
            precision,
        }
    }

    /// Runs `net` on the batch `x` (`[T or 1, B, C, H, W]`) and adds what it computed.
    pub fn measure(&mut self, net: &SpikingNet, x: Tensor<5>) -> Result<()> {
        let batch = x.dims()[1];
        let steps = net.steps;
        let (wb, sb) = (self.precision.weight_bytes(), self.precision.state_bytes());
        let mut snn: Vec<LayerCounts> = Vec::new();
        let mut ann: Vec<LayerCounts> = Vec::new();
        let mut lif = 0;
        let (mut conv, mut fc) = (0, 0);
        let mut observe = |_: usize, stage: &Stage, input: StageInput<'_>| {
            let dims: Vec<usize> = match input {
                StageInput::Spatial(x) => x.dims().to_vec(),
                StageInput::Flat(x) => x.dims().to_vec(),
            };
            let values = || -> Vec<f32> {
                match input {
                    StageInput::Spatial(x) => x.clone().into_data().iter::<f32>().collect(),
                    StageInput::Flat(x) => x.clone().into_data().iter::<f32>().collect(),
                }
            };
            let per_sample: usize = dims[2..].iter().product();
            let (mut s, mut a) = (LayerCounts::default(), LayerCounts::default());
            // A weighted layer: its name, every connection of the pass (what dense input costs,
            // in MACs), and the additions binary input costs instead (spikes × fan-out).
            let weighted = match stage {
                Stage::Conv(c) => {
                    conv += 1;
                    let [out_c, in_c, kh, kw] = c.conv.weight.dims();
                    let (h, w) = (dims[3], dims[4]);
                    let [ph, pw] = c.padding_pairs(h, w);
                    let rows = cover(h, kh, c.conv.stride[0], c.conv.dilation[0], ph);
                    let cols = cover(w, kw, c.conv.stride[1], c.conv.dilation[1], pw);
                    let outputs = (rows.1 * cols.1) as f64;
                    let dense =
                        (dims[0] * batch) as f64 * outputs * (out_c * in_c * kh * kw) as f64;
                    let reach = |i: usize| f64::from(rows.0[(i / w) % h] * cols.0[i % w]);
                    let v = values();
                    let acs = is_binary(&v).then(|| {
                        let fan_in: f64 = (0..v.len()).filter(|&i| v[i] != 0.0).map(reach).sum();
                        fan_in * out_c as f64
                    });
                    Some((format!("conv{conv} {out_c}C{kh}"), dense, acs))
                }
                Stage::Linear(l) => {
                    fc += 1;
                    let [inputs, outputs] = l.linear.weight.dims();
                    let dense = (dims[0] * batch * inputs * outputs) as f64;
                    let v = values();
                    let acs = is_binary(&v)
                        .then(|| v.iter().filter(|x| **x != 0.0).count() as f64 * outputs as f64);
                    Some((format!("fc{fc} {inputs}x{outputs}"), dense, acs))
                }
                Stage::Neuron(_) => {
                    lif += 1;
                    let updates = (steps * batch * per_sample) as f64;
                    s.neuron_updates = updates;
                    s.state_read_bytes = updates * sb;
                    s.state_write_bytes = updates * sb;
                    s.name = format!("lif{lif} ({per_sample})");
                    // The twin's ReLU: each activation written once and read once.
                    a.state_read_bytes = (batch * per_sample) as f64 * 4.0;
                    a.state_write_bytes = a.state_read_bytes;
                    None
                }
                Stage::AvgPool(_) => {
                    s.acs = (dims[0] * batch * per_sample) as f64;
                    a.acs = (batch * per_sample) as f64;
                    s.name = "avg pool".into();
                    None
                }
                Stage::BatchNorm(_) | Stage::BatchNorm2d(_) => {
                    s.macs = (dims[0].max(1) * batch * per_sample) as f64;
                    a.macs = (batch * per_sample) as f64;
                    s.name = "batch norm".into();
                    None
                }
                // Max pooling of spikes is an OR; dropout is off in inference.
                Stage::MaxPool(_) | Stage::Dropout(_) => return,
            };
            if let Some((name, dense, acs)) = weighted {
                match acs {
                    Some(acs) => s.acs = acs,
                    None => s.macs = dense,
                }
                s.weight_bytes = (s.acs + s.macs) * wb;
                s.name = name;
                // The twin runs once, not once per step of the input.
                a.macs = dense / dims[0] as f64;
                a.weight_bytes = a.macs * 4.0;
            }
            a.name = s.name.clone();
            snn.push(s);
            ann.push(a);
        };
        let out = net.forward_observed(x, None, false, &mut observe)?;
        // The spikes of each Leaky layer, from the pass itself.
        let mut spikes = out.layers.iter();
        for layer in snn.iter_mut().filter(|l| l.name.starts_with("lif")) {
            if let Some(l) = spikes.next() {
                layer.spikes = f64::from(l.total.clone().into_scalar::<f32>());
            }
        }
        merge(&mut self.snn, snn);
        merge(&mut self.ann, ann);
        self.samples += batch;
        Ok(())
    }

    /// Counts per inference so far.
    pub fn report(&self) -> Result<EnergyReport> {
        if self.samples == 0 {
            return Err(Error::invalid("energy", "no samples were measured"));
        }
        let per = |layers: &[LayerCounts]| -> Vec<LayerCounts> {
            let n = self.samples as f64;
            layers
                .iter()
                .map(|l| LayerCounts {
                    name: l.name.clone(),
                    spikes: l.spikes / n,
                    acs: l.acs / n,
                    macs: l.macs / n,
                    neuron_updates: l.neuron_updates / n,
                    weight_bytes: l.weight_bytes / n,
                    state_read_bytes: l.state_read_bytes / n,
                    state_write_bytes: l.state_write_bytes / n,
                })
                .collect()
        };
        Ok(EnergyReport {
            snn: OpCounts {
                layers: per(&self.snn),
                precision: self.precision,
            },
            ann: OpCounts {
                layers: per(&self.ann),
                precision: Precision::Float32,
            },
            samples: self.samples,
        })
    }
}

/// Measures `net` on the test samples `cfg` asks for (`test_limit`, `batch_size`, `encoding`),
/// drawing rate-coded inputs as [`evaluate`] does for the same run, so the counts are those of
/// the pass it scored; `on_batch` is called after each batch (for progress bars).
///
/// [`evaluate`]: crate::train::trainer::evaluate
pub fn measure_dataset(
    net: &SpikingNet,
    data: &dyn Samples,
    cfg: &TrainConfig,
    precision: Precision,
    device: &Device,
    on_batch: &mut dyn FnMut(),
) -> Result<EnergyReport> {
    let n = cfg.test_limit.map_or(data.len(), |l| l.min(data.len()));
    let indices: Vec<usize> = (0..n).collect();
    let (batch_size, encoding) = (cfg.batch_size, cfg.encoding);
    let mut rng = evaluation_rng(cfg.seed);
    let mut meter = EnergyMeter::new(precision);
    for batch in indices.chunks(batch_size.max(1)) {
        let (x, _) = data.batch(batch, net.steps, encoding, &mut rng, device)?;
        meter.measure(net, x)?;
        on_batch();
    }
    meter.report()
}

impl EnergyReport {
    /// The per-layer table `nerve eval --energy` prints: counts per inference and energy with
    /// `costs`, then the totals of the network and of its ANN twin.
    pub fn table(&self, costs: &EnergyCosts) -> String {
        let mut out = format!(
            "energy per inference ({} samples; {}):\n{:<18} {:>10} {:>12} {:>12} {:>11} {:>11} {:>11} {:>12}\n",
            self.samples,
            match self.snn.precision {
                Precision::Float32 => "float32".to_string(),
                Precision::Int {
                    weight_bits,
                    state_bits,
                } => format!("integer, {weight_bits}-bit weights, {state_bits}-bit states"),
            },
            "layer",
            "spikes",
            "ACs",
            "MACs",
            "updates",
            "weight B",
            "state B",
            "energy"
        );
        let row = |l: &LayerCounts, energy: f64| {
            format!(
                "{:<18} {:>10.1} {:>12.4e} {:>12.4e} {:>11.4e} {:>11.4e} {:>11.4e} {:>12}\n",
                l.name,
                l.spikes,
                l.acs,
                l.macs,
                l.neuron_updates,
                l.weight_bytes,
                l.state_read_bytes + l.state_write_bytes,
                format_pj(energy)
            )
        };
        for l in &self.snn.layers {
            out.push_str(&row(l, l.energy_pj(self.snn.precision, costs)));
        }
        out.push_str(&row(&self.snn.total(), self.snn.energy_pj(costs)));
        let mut twin = self.ann.total();
        twin.name = "ANN twin total".into();
        out.push_str(&row(&twin, self.ann.energy_pj(costs)));
        out.push_str(&format!(
            "the spiking network spends {:.3}x the ANN twin's energy\n",
            self.snn.energy_pj(costs) / self.ann.energy_pj(costs).max(f64::MIN_POSITIVE)
        ));
        out
    }
}

/// Picojoules in the unit that reads best (`12.0 pJ`, `1.234 nJ`, ...).
pub fn format_pj(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.3} mJ", v / 1e9),
        v if v >= 1e6 => format!("{:.3} µJ", v / 1e6),
        v if v >= 1e3 => format!("{:.3} nJ", v / 1e3),
        v => format!("{v:.1} pJ"),
    }
}

/// Adds a batch's layers into the running totals (the first batch sets the layout).
fn merge(total: &mut Vec<LayerCounts>, batch: Vec<LayerCounts>) {
    if total.is_empty() {
        *total = batch;
        return;
    }
    for (t, b) in total.iter_mut().zip(&batch) {
        t.add(b);
    }
}

/// All nonzero values equal (spikes, graded or not): each input then only adds weights.
fn is_binary(values: &[f32]) -> bool {
    let mut level = None;
    values.iter().all(|&v| {
        v == 0.0 || {
            let first = *level.get_or_insert(v);
            v == first
        }
    })
}

/// How many outputs along one axis each input position reaches, and the number of outputs:
/// output `o` reads input `o·stride + i·dilation − pad_before` for kernel offsets `i`.
fn cover(
    size: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    (before, after): (usize, usize),
) -> (Vec<u32>, usize) {
    let span = dilation * (kernel - 1) + 1;
    let outputs = (size + before + after).saturating_sub(span) / stride.max(1) + 1;
    let mut reach = vec![0u32; size];
    for o in 0..outputs {
        for i in 0..kernel {
            let at = (o * stride + i * dilation) as isize - before as isize;
            if (0..size as isize).contains(&at) {
                reach[at as usize] += 1;
            }
        }
    }
    (reach, outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cover_counts_the_outputs_each_input_reaches() {
        // 5 inputs, kernel 3, valid: 3 outputs; the middle input is in all three windows.
        assert_eq!(cover(5, 3, 1, 1, (0, 0)), (vec![1, 2, 3, 2, 1], 3));
        // Same padding: 5 outputs, the borders reach 2.
        assert_eq!(cover(5, 3, 1, 1, (1, 1)), (vec![2, 3, 3, 3, 2], 5));
        // Stride 2 without padding: outputs at 0 and 2.
        assert_eq!(cover(5, 3, 2, 1, (0, 0)), (vec![1, 1, 2, 1, 1], 2));
    }

    #[test]
    fn binary_means_every_nonzero_value_is_the_same() {
        assert!(is_binary(&[0.0, 1.0, 1.0, 0.0]));
        assert!(is_binary(&[0.0, 0.5, 0.5]));
        assert!(is_binary(&[0.0, 0.0]));
        assert!(!is_binary(&[0.0, 1.0, 0.3]));
    }

    #[test]
    fn integer_costs_are_cheaper_than_float_for_the_same_counts() {
        let l = LayerCounts {
            acs: 1000.0,
            macs: 10.0,
            neuron_updates: 100.0,
            weight_bytes: 40.0,
            ..LayerCounts::default()
        };
        let costs = EnergyCosts::default();
        let float = l.energy_pj(Precision::Float32, &costs);
        assert!(
            (float - (900.0 + 46.0 + 460.0 + 50.0)).abs() < 1e-9,
            "{float}"
        );
        let int = l.energy_pj(
            Precision::Int {
                weight_bits: 4,
                state_bits: 8,
            },
            &costs,
        );
        assert!((int - (30.0 + 2.3 + 23.0 + 50.0)).abs() < 1e-9, "{int}");
    }
}
