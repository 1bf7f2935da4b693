//! The accelerator's memory images as `$readmemh` text, and runs of a network loaded from them.
//!
//! Layout (read from `accelerator.v`, `neuron_selector.v`, `spk_processor.v`,
//! `u_b_processor.v` and `spk_memory_controler.v`; one hex word per line, most significant digit
//! first):
//!
//! | file | word | content |
//! |---|---|---|
//! | `weights.hex` | 2048 bits | bit `2j+k` of word `a` feeds accumulator `j`: word 0 gates input `j` into input neuron `j` (bit `2j`); word `1 + p/2` bit `2j + p%2` is the weight from input neuron `p` to hidden neuron `j`; word `513 + p/2` the same from hidden neuron `p` to output neuron `j` |
//! | `potentials.hex` | 128 bits | group address `g` (input layer 0..63, hidden 64..127, output 128): neuron `16g'+k` of the layer at bits `8k+7:8k` |
//! | `betas.hex` | 64 bits | the same groups, decay code at bits `4k+3:4k` |
//! | `spikeability.hex`, `spikes.hex` | 16 bits | the same groups, bit `k` |
//! | `inputs.hex` | 128 bits | input `i` of step `t` at word `8t + i/128`, bit `i%128` |
//!
//! `openspike.json` records the layer sizes and steps the images were written for. Neurons
//! beyond those sizes are written with zero weights, potentials, codes and armed bits, so they
//! never fire; [`run_images`] nevertheless runs the whole chip (1024 + 1024 + 16 neurons), as
//! the hardware would, and reports the recorded sizes. The spike memory starts at zero: the
//! datapath writes each layer's spikes before the next layer reads them.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::datapath::{Layer, LayerStep, Network, State, Trace};
use super::{
    run_clocks, run_time_ns, GROUP, INPUT_WORDS_PER_STEP, MAX_BETA, MAX_FAN_IN, MAX_IMAGE_STEPS,
    MAX_NEURONS, MAX_OUTPUTS,
};
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

use super::hex::Spec;
pub use super::hex::Sram;

/// The manifest's file name and `format` string.
const MANIFEST: &str = "openspike.json";
const MANIFEST_FORMAT: &str = "openspike-images-v1";
/// First weight word of the hidden and output layers.
const HIDDEN_WORD: usize = 1;
const OUTPUT_WORD: usize = 1 + MAX_FAN_IN / 2;
/// Weight words written: word 0 and two layers of 512.
const WEIGHT_WORDS: usize = OUTPUT_WORD + MAX_FAN_IN / 2;
/// First group address of each layer, and group words written.
const GROUP_BASE: [usize; 3] = [0, MAX_NEURONS / GROUP, 2 * MAX_NEURONS / GROUP];
const GROUP_WORDS: usize = GROUP_BASE[2] + 1;
/// Largest image file read, in bytes.
const MAX_FILE_BYTES: u64 = 64 << 20;

const WEIGHTS: Spec = Spec {
    file: "weights.hex",
    width: 2 * MAX_NEURONS,
    capacity: 2048,
};
const POTENTIALS: Spec = Spec {
    file: "potentials.hex",
    width: 8 * GROUP,
    capacity: 512,
};
const BETAS: Spec = Spec {
    file: "betas.hex",
    width: 4 * GROUP,
    capacity: 512,
};
const ABLE: Spec = Spec {
    file: "spikeability.hex",
    width: GROUP,
    capacity: 512,
};
const SPIKES: Spec = Spec {
    file: "spikes.hex",
    width: GROUP,
    capacity: 512,
};
const INPUTS: Spec = Spec {
    file: "inputs.hex",
    width: 128,
    capacity: 512,
};

/// Neurons of the three layers the control unit runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChipLayout {
    /// Input-layer neurons, one per input spike (at most 1024).
    pub inputs: usize,
    /// Hidden-layer neurons (at most 1024).
    pub hidden: usize,
    /// Output-layer neurons (at most 16).
    pub outputs: usize,
}

impl ChipLayout {
    /// The whole chip: 1024 input, 1024 hidden and 16 output neurons.
    pub const FULL: ChipLayout = ChipLayout {
        inputs: MAX_NEURONS,
        hidden: MAX_NEURONS,
        outputs: MAX_OUTPUTS,
    };

    /// The layout of a network the accelerator can run: three layers, the first one-to-one
    /// (input `j` to neuron `j` only: the input mode has one synapse per neuron), the last of
    /// at most 16 neurons.
    pub fn of(net: &Network) -> Result<ChipLayout> {
        let bad = |msg: String| Error::invalid("OpenSpike accelerator network", msg);
        let [first, hidden, output] = net.layers() else {
            return Err(bad(format!(
                "{} layers; the control unit runs exactly 3 (input, hidden, output)",
                net.layers().len()
            )));
        };
        let n = first.neurons();
        if first.inputs() != n {
            return Err(bad(format!(
                "the input layer has {} inputs but {n} neurons; it is one-to-one",
                first.inputs()
            )));
        }
        for j in 0..n {
            if let Some(i) = (0..n).find(|&i| i != j && first.weight(j, i)) {
                return Err(bad(format!(
                    "input-layer weight from input {i} to neuron {j}: the input mode connects \
                     input j to neuron j only"
                )));
            }
        }
        if output.neurons() > MAX_OUTPUTS {
            return Err(bad(format!(
                "{} output neurons; the output layer is one group of {MAX_OUTPUTS}",
                output.neurons()
            )));
        }
        Ok(ChipLayout {
            inputs: n,
            hidden: hidden.neurons(),
            outputs: output.neurons(),
        })
    }

    /// Neurons per layer, in order.
    fn sizes(&self) -> [usize; 3] {
        [self.inputs, self.hidden, self.outputs]
    }

    fn check(&self) -> Result<()> {
        let [i, h, o] = self.sizes();
        if !(1..=MAX_NEURONS).contains(&i)
            || !(1..=MAX_NEURONS).contains(&h)
            || !(1..=MAX_OUTPUTS).contains(&o)
        {
            return Err(Error::invalid(
                "OpenSpike layout",
                format!("{i}/{h}/{o} neurons; the chip has 1..=1024/1..=1024/1..=16"),
            ));
        }
        Ok(())
    }
}

/// Everything the accelerator's memories hold before a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// The layer sizes the images were written for.
    pub layout: ChipLayout,
    /// Time steps of input held.
    pub steps: usize,
    /// Weight memory (2048-bit words).
    pub weights: Sram,
    /// Stored potentials (128-bit words, one group each).
    pub potentials: Sram,
    /// Decay codes (64-bit words).
    pub betas: Sram,
    /// Armed bits (16-bit words).
    pub spikeability: Sram,
    /// Spikes (16-bit words).
    pub spikes: Sram,
    /// Input spikes (128-bit words, 8 per step).
    pub inputs: Sram,
}

/// A network in the chip's shape, its state and inputs, as read back from images.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loaded {
    /// Input, hidden and output layers.
    pub network: Network,
    /// Stored potentials and armed bits.
    pub state: State,
    /// Input spikes, `[step][input]`.
    pub inputs: Vec<Vec<bool>>,
}

impl Images {
    /// The images of a network in the chip's shape (see [`ChipLayout::of`]), its initial
    /// state and at most 64 steps of inputs.
    pub fn encode(net: &Network, state: &State, inputs: &[Vec<bool>]) -> Result<Images> {
        let layout = ChipLayout::of(net)?;
        net.check_state(state)?;
        check_steps(inputs.len())?;
        if let Some((t, x)) = inputs
            .iter()
            .enumerate()
            .find(|(_, x)| x.len() != layout.inputs)
        {
            return Err(Error::Shape {
                what: format!("OpenSpike inputs of step {t}"),
                expected: layout.inputs.to_string(),
                got: x.len().to_string(),
            });
        }
        let mut im = Images {
            layout,
            steps: inputs.len(),
            weights: Sram::new(WEIGHTS.width, WEIGHT_WORDS),
            potentials: Sram::new(POTENTIALS.width, GROUP_WORDS),
            betas: Sram::new(BETAS.width, GROUP_WORDS),
            spikeability: Sram::new(ABLE.width, GROUP_WORDS),
            spikes: Sram::new(SPIKES.width, GROUP_WORDS),
            inputs: Sram::new(INPUTS.width, inputs.len() * INPUT_WORDS_PER_STEP),
        };
        let layers = net.layers();
        for j in 0..layout.inputs {
            im.weights
                .set_field(0, 2 * j, 1, layers[0].weight(j, j).into());
        }
        for (l, base) in [(1, HIDDEN_WORD), (2, OUTPUT_WORD)] {
            let layer = &layers[l];
            for j in 0..layer.neurons() {
                for p in 0..layer.inputs() {
                    let w = layer.weight(j, p);
                    im.weights
                        .set_field(base + p / 2, 2 * j + p % 2, 1, w.into());
                }
            }
        }
        for (l, layer) in layers.iter().enumerate() {
            for j in 0..layer.neurons() {
                let (g, k) = (GROUP_BASE[l] + j / GROUP, j % GROUP);
                im.potentials.set_field(g, 8 * k, 8, state.u[l][j].into());
                im.betas.set_field(g, 4 * k, 4, layer.beta()[j].into());
                im.spikeability.set_field(g, k, 1, state.able[l][j].into());
            }
        }
        for (t, x) in inputs.iter().enumerate() {
            for (i, &s) in x.iter().enumerate() {
                let word = t * INPUT_WORDS_PER_STEP + i / INPUTS.width;
                im.inputs.set_field(word, i % INPUTS.width, 1, s.into());
            }
        }
        Ok(im)
    }

    /// The network, state and inputs these images hold for their own layout.
    pub fn decode(&self) -> Result<Loaded> {
        self.decode_as(self.layout)
    }

    /// The network, state and inputs these images hold, read for `layout` (neurons beyond it
    /// are left out).
    pub fn decode_as(&self, layout: ChipLayout) -> Result<Loaded> {
        layout.check()?;
        let sizes = layout.sizes();
        let mut betas = Vec::with_capacity(3);
        let mut state = State {
            u: Vec::new(),
            able: Vec::new(),
        };
        for (l, &n) in sizes.iter().enumerate() {
            let at = |j: usize| (GROUP_BASE[l] + j / GROUP, j % GROUP);
            let mut b = Vec::with_capacity(n);
            for j in 0..n {
                let (g, k) = at(j);
                let code = self.betas.field(g, 4 * k, 4) as u8;
                if code > MAX_BETA {
                    return Err(Error::invalid(
                        "OpenSpike images",
                        format!(
                            "{} word {g} neuron {k}: decay code {code} is undefined in the RTL \
                             (0..={MAX_BETA})",
                            BETAS.file
                        ),
                    ));
                }
                b.push(code);
            }
            betas.push(b);
            state.u.push(
                (0..n)
                    .map(|j| self.potentials.field(at(j).0, 8 * at(j).1, 8) as u8)
                    .collect(),
            );
            state.able.push(
                (0..n)
                    .map(|j| self.spikeability.field(at(j).0, at(j).1, 1) == 1)
                    .collect(),
            );
        }
        let [b0, b1, b2]: [Vec<u8>; 3] = betas
            .try_into()
            .map_err(|_| Error::invalid("OpenSpike images", "three layers expected"))?;
        let w = &self.weights;
        let input = Layer::from_fn(sizes[0], b0, |j, i| i == j && w.field(0, 2 * j, 1) == 1)?;
        let hidden = Layer::from_fn(sizes[0], b1, |j, p| {
            w.field(HIDDEN_WORD + p / 2, 2 * j + p % 2, 1) == 1
        })?;
        let output = Layer::from_fn(sizes[1], b2, |j, p| {
            w.field(OUTPUT_WORD + p / 2, 2 * j + p % 2, 1) == 1
        })?;
        let inputs = (0..self.steps)
            .map(|t| {
                (0..sizes[0])
                    .map(|i| {
                        let word = t * INPUT_WORDS_PER_STEP + i / INPUTS.width;
                        self.inputs.field(word, i % INPUTS.width, 1) == 1
                    })
                    .collect()
            })
            .collect();
        Ok(Loaded {
            network: Network::new(vec![input, hidden, output])?,
            state,
            inputs,
        })
    }
}

/// Refuses more steps than the input memory (and the control unit) holds.
fn check_steps(steps: usize) -> Result<()> {
    if steps > MAX_IMAGE_STEPS {
        return Err(Error::invalid(
            "OpenSpike steps",
            format!(
                "{steps}; the input-spike memory (512 words, 8 per step) holds {MAX_IMAGE_STEPS}"
            ),
        ));
    }
    Ok(())
}

/// The manifest beside the images.
#[derive(Serialize, Deserialize)]
struct Manifest {
    format: String,
    layout: ChipLayout,
    steps: usize,
}

/// Writes the images and their manifest into `dir` (created if needed), each file atomically.
pub fn write_images(dir: impl AsRef<Path>, images: &Images) -> Result<()> {
    let dir = dir.as_ref();
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    for (spec, sram) in [
        (&WEIGHTS, &images.weights),
        (&POTENTIALS, &images.potentials),
        (&BETAS, &images.betas),
        (&ABLE, &images.spikeability),
        (&SPIKES, &images.spikes),
        (&INPUTS, &images.inputs),
    ] {
        write_atomic(dir.join(spec.file), sram.to_hex().as_bytes())?;
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        layout: images.layout,
        steps: images.steps,
    };
    let text = serde_json::to_string_pretty(&manifest)
        .map_err(|e| Error::invalid("OpenSpike manifest", e.to_string()))?;
    write_atomic(dir.join(MANIFEST), text.as_bytes())
}

/// Reads the images of `dir`. Without `openspike.json` the layout is the whole chip and the
/// steps are the input words over 8.
pub fn read_images(dir: impl AsRef<Path>) -> Result<Images> {
    let dir = dir.as_ref();
    let manifest_path = dir.join(MANIFEST);
    let manifest = if manifest_path.is_file() {
        let text = read_text(&manifest_path)?;
        let m: Manifest = serde_json::from_str(&text)
            .map_err(|e| Error::format(&manifest_path, e.to_string()))?;
        if m.format != MANIFEST_FORMAT {
            return Err(Error::format(
                &manifest_path,
                format!("format {:?} is not {MANIFEST_FORMAT:?}", m.format),
            ));
        }
        m.layout
            .check()
            .and_then(|()| check_steps(m.steps))
            .map_err(|e| Error::format(&manifest_path, e.to_string()))?;
        Some(m)
    } else {
        None
    };
    let load = |spec: &Spec, need: usize| -> Result<Sram> {
        let path = dir.join(spec.file);
        Sram::parse_hex(&read_text(&path)?, spec, need).map_err(|m| Error::format(&path, m))
    };
    let inputs_need = manifest
        .as_ref()
        .map_or(0, |m| m.steps * INPUT_WORDS_PER_STEP);
    let inputs = load(&INPUTS, inputs_need)?;
    let (layout, steps) = match &manifest {
        Some(m) => (m.layout, m.steps),
        None => {
            let steps = inputs.depth() / INPUT_WORDS_PER_STEP;
            if inputs.depth() % INPUT_WORDS_PER_STEP != 0 {
                return Err(Error::format(
                    dir.join(INPUTS.file),
                    format!(
                        "{} words is not a whole number of 8-word steps",
                        inputs.depth()
                    ),
                ));
            }
            check_steps(steps).map_err(|e| Error::format(dir.join(INPUTS.file), e.to_string()))?;
            (ChipLayout::FULL, steps)
        }
    };
    Ok(Images {
        layout,
        steps,
        weights: load(&WEIGHTS, WEIGHT_WORDS)?,
        potentials: load(&POTENTIALS, GROUP_WORDS)?,
        betas: load(&BETAS, GROUP_WORDS)?,
        spikeability: load(&ABLE, GROUP_WORDS)?,
        spikes: load(&SPIKES, GROUP_WORDS)?,
        inputs,
    })
}

/// A file's text, refusing files over 64 MiB.
fn read_text(path: &Path) -> Result<String> {
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    if len > MAX_FILE_BYTES {
        return Err(Error::format(
            path,
            format!("{len} bytes; images are at most 64 MiB"),
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    String::from_utf8(bytes).map_err(|_| Error::format(path, "not UTF-8 text"))
}

/// What a run from images did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRun {
    /// The layer sizes reported.
    pub layout: ChipLayout,
    /// Every layer's activity, `[step][layer]`, cut to `layout`.
    pub trace: Trace,
    /// The state after the run, cut to `layout`.
    pub state: State,
    /// Clocks the accelerator takes for the run.
    pub clocks: u64,
    /// Wall-clock time of the run at 40 ns per clock, in ns.
    pub time_ns: u64,
}

/// Loads the images of `dir` onto the whole chip and runs `steps` steps (all the inputs hold
/// when `None`).
pub fn run_images(dir: impl AsRef<Path>, steps: Option<usize>) -> Result<ImageRun> {
    let images = read_images(dir)?;
    let steps = steps.unwrap_or(images.steps);
    if steps > images.steps {
        return Err(Error::invalid(
            "OpenSpike steps",
            format!("{steps}; the input images hold {}", images.steps),
        ));
    }
    let chip = images.decode_as(ChipLayout::FULL)?;
    let mut state = chip.state;
    let full = chip.network.run(&mut state, &chip.inputs[..steps])?;
    let sizes = images.layout.sizes();
    let trace = full
        .into_iter()
        .map(|layers| {
            layers
                .into_iter()
                .zip(sizes)
                .map(|(s, n)| LayerStep {
                    potentials: s.potentials[..n].to_vec(),
                    spikes: s.spikes[..n].to_vec(),
                })
                .collect()
        })
        .collect();
    for (l, n) in sizes.into_iter().enumerate() {
        state.u[l].truncate(n);
        state.able[l].truncate(n);
    }
    Ok(ImageRun {
        layout: images.layout,
        trace,
        state,
        clocks: run_clocks(steps),
        time_ns: run_time_ns(steps),
    })
}
