//! Reference cases in the `openspike-case-v1` format: reading them with every field checked,
//! writing them, and replaying them through the datapath.
//!
//! A file is a JSON object `{format, note, source, cases}`. Each case has `name`;
//! `params.layer_sizes` (input size, then each layer's), `params.timesteps`,
//! `params.thresholds` (`{high: 230, low: 200}`, fixed in the RTL), `params.beta[l][j]`
//! (decay codes 0..=8), `params.u_init[l][j]` (0..=255), `params.spikeability_init[l][j]`
//! (bits); `weights[l][j][i]` (bit: input `i` of layer `l` to its neuron `j`); `inputs[t][i]`;
//! and `expected`: `spikes[t][j]` and `membranes[t][j]` of the last layer (stored, after the
//! reset) and `layers[l].potentials[t][j]` (before the reset) and `layers[l].spikes[t][j]`.
//! Other fields (`params.seed`, densities) are ignored. Every error is one line naming the
//! file, the case and the field.

use std::fmt;
use std::path::Path;

use serde_json::{json, Map, Value};

use super::datapath::{Layer, Network, State};
use super::{MAX_BETA, MAX_FAN_IN, MAX_NEURONS, THRESH_HIGH, THRESH_LOW};
use crate::error::{Error, Result};

/// The `format` string of a case file.
pub const FORMAT: &str = "openspike-case-v1";

/// One reference case: a network, its initial state and inputs, and what the RTL produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenSpikeCase {
    /// The case's name.
    pub name: String,
    /// The layers, weights and decay codes.
    pub network: Network,
    /// Initial stored potentials and armed bits.
    pub init: State,
    /// Input spikes, `[step][input]`.
    pub inputs: Vec<Vec<bool>>,
    /// The recorded outputs.
    pub expected: Expected,
}

/// What a case expects, every array indexed `[step][neuron]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// Last layer's spikes.
    pub spikes: Vec<Vec<bool>>,
    /// Last layer's stored potentials after the reset.
    pub membranes: Vec<Vec<u8>>,
    /// Every layer's potentials (before the reset) and spikes.
    pub layers: Vec<ExpectedLayer>,
}

/// One layer's recorded potentials and spikes, `[step][neuron]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedLayer {
    /// `v` before the reset.
    pub potentials: Vec<Vec<u8>>,
    /// Spikes.
    pub spikes: Vec<Vec<bool>>,
}

impl OpenSpikeCase {
    /// A case whose expected values are this simulator's own run of `inputs` from `init`.
    pub fn record(
        name: &str,
        network: Network,
        init: State,
        inputs: Vec<Vec<bool>>,
    ) -> Result<OpenSpikeCase> {
        let mut state = init.clone();
        let trace = network.run(&mut state, &inputs)?;
        let last = network.layers().len() - 1;
        let column = |l: usize| ExpectedLayer {
            potentials: trace.iter().map(|s| s[l].potentials.clone()).collect(),
            spikes: trace.iter().map(|s| s[l].spikes.clone()).collect(),
        };
        let expected = Expected {
            spikes: trace.iter().map(|s| s[last].spikes.clone()).collect(),
            membranes: trace.iter().map(|s| s[last].stored()).collect(),
            layers: (0..=last).map(column).collect(),
        };
        Ok(OpenSpikeCase {
            name: name.into(),
            network,
            init,
            inputs,
            expected,
        })
    }
}

/// The first value a replay got wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Time step (from 0).
    pub step: usize,
    /// Layer (from 0).
    pub layer: usize,
    /// Neuron within the layer.
    pub neuron: usize,
    /// The field of `expected`, e.g. `layers[1].potentials` or `membranes`.
    pub field: String,
    /// The recorded value.
    pub expected: u32,
    /// The simulated value.
    pub got: u32,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "step {}, layer {}, neuron {}, {}: expected {}, got {}",
            self.step, self.layer, self.neuron, self.field, self.expected, self.got
        )
    }
}

/// The outcome of replaying one case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseReport {
    /// The case's name.
    pub name: String,
    /// Layer sizes, input first.
    pub sizes: Vec<usize>,
    /// Time steps replayed.
    pub steps: usize,
    /// The first wrong value, if any.
    pub mismatch: Option<Mismatch>,
}

impl CaseReport {
    /// Whether every value matched.
    pub fn passed(&self) -> bool {
        self.mismatch.is_none()
    }
}

/// Replays a case from its initial state and compares every recorded value, step by step
/// (each layer's potentials then spikes, then the last layer's spikes and membranes).
pub fn check_case(case: &OpenSpikeCase) -> CaseReport {
    let mut sizes = vec![case.network.inputs()];
    sizes.extend(case.network.layers().iter().map(Layer::neurons));
    let mut report = CaseReport {
        name: case.name.clone(),
        sizes,
        steps: case.inputs.len(),
        mismatch: None,
    };
    let mut state = case.init.clone();
    let last = case.network.layers().len() - 1;
    for (t, x) in case.inputs.iter().enumerate() {
        // A parsed case always has the right shapes; a hand-built one may not.
        let step = match case.network.step(&mut state, x) {
            Ok(step) => step,
            Err(e) => {
                report.mismatch = Some(Mismatch {
                    step: t,
                    layer: 0,
                    neuron: 0,
                    field: format!("inputs ({e})"),
                    expected: 0,
                    got: 0,
                });
                return report;
            }
        };
        let mut checks: Vec<(usize, String, Vec<u32>, Vec<u32>)> = Vec::new();
        for (l, (got, want)) in step.iter().zip(&case.expected.layers).enumerate() {
            checks.push((
                l,
                format!("layers[{l}].potentials"),
                row(want.potentials.get(t)),
                got.potentials.iter().map(|&v| v.into()).collect(),
            ));
            checks.push((
                l,
                format!("layers[{l}].spikes"),
                row(want.spikes.get(t)),
                got.spikes.iter().map(|&s| s.into()).collect(),
            ));
        }
        checks.push((
            last,
            "spikes".into(),
            row(case.expected.spikes.get(t)),
            step[last].spikes.iter().map(|&s| s.into()).collect(),
        ));
        checks.push((
            last,
            "membranes".into(),
            row(case.expected.membranes.get(t)),
            step[last].stored().iter().map(|&v| v.into()).collect(),
        ));
        for (layer, field, want, got) in checks {
            let n = want.len().max(got.len());
            let bad = (0..n).find(|&j| want.get(j) != got.get(j));
            if let Some(j) = bad {
                report.mismatch = Some(Mismatch {
                    step: t,
                    layer,
                    neuron: j,
                    field,
                    expected: want.get(j).copied().unwrap_or(u32::MAX),
                    got: got.get(j).copied().unwrap_or(u32::MAX),
                });
                return report;
            }
        }
    }
    report
}

/// A recorded row as `u32`s (empty when the step is missing).
fn row<T: Copy + Into<u32>>(r: Option<&Vec<T>>) -> Vec<u32> {
    r.map(|r| r.iter().map(|&v| v.into()).collect())
        .unwrap_or_default()
}

/// Replays every case.
pub fn check_cases(cases: &[OpenSpikeCase]) -> Vec<CaseReport> {
    cases.iter().map(check_case).collect()
}

/// Reads a case file and replays every case.
pub fn check_file(path: impl AsRef<Path>) -> Result<Vec<CaseReport>> {
    Ok(check_cases(&load_cases(path)?))
}

/// Reads and checks a case file.
pub fn load_cases(path: impl AsRef<Path>) -> Result<Vec<OpenSpikeCase>> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    parse_cases(&bytes, path)
}

/// Parses case-file bytes; errors name `origin`, the case and the field.
pub fn parse_cases(bytes: &[u8], origin: &Path) -> Result<Vec<OpenSpikeCase>> {
    let top: Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::format(origin, format!("not JSON: {e}")))?;
    let file = Reader {
        origin,
        case: String::from("file"),
    };
    let top = file.object(&top, "top level")?;
    let format = file.get(top, "format")?;
    if format.as_str() != Some(FORMAT) {
        return Err(file.err("format", format!("{} is not \"{FORMAT}\"", short(format))));
    }
    let cases = file.array(file.get(top, "cases")?, "cases", None)?;
    if cases.is_empty() {
        return Err(file.err("cases", "no cases"));
    }
    cases
        .iter()
        .enumerate()
        .map(|(k, case)| {
            let label = match case.get("name").and_then(Value::as_str) {
                Some(name) => format!("case {k} {name:?}"),
                None => format!("case {k}"),
            };
            Reader {
                origin,
                case: label,
            }
            .case(case)
        })
        .collect()
}

/// Case-file JSON for `cases` (thresholds and sizes filled in), as [`parse_cases`] reads it.
pub fn encode_cases(cases: &[OpenSpikeCase]) -> Vec<u8> {
    let bits = |rows: &[Vec<bool>]| -> Vec<Vec<u8>> {
        rows.iter()
            .map(|r| r.iter().map(|&b| u8::from(b)).collect())
            .collect()
    };
    let cases: Vec<Value> = cases
        .iter()
        .map(|c| {
            let layers = c.network.layers();
            let mut sizes = vec![c.network.inputs()];
            sizes.extend(layers.iter().map(Layer::neurons));
            let weights: Vec<Vec<Vec<u8>>> = layers
                .iter()
                .map(|l| {
                    (0..l.neurons())
                        .map(|j| (0..l.inputs()).map(|i| u8::from(l.weight(j, i))).collect())
                        .collect()
                })
                .collect();
            let expected_layers: Vec<Value> = c
                .expected
                .layers
                .iter()
                .map(|l| json!({"potentials": l.potentials, "spikes": bits(&l.spikes)}))
                .collect();
            json!({
                "name": c.name,
                "params": {
                    "thresholds": {"high": THRESH_HIGH, "low": THRESH_LOW},
                    "beta": layers.iter().map(Layer::beta).collect::<Vec<_>>(),
                    "u_init": c.init.u,
                    "spikeability_init": bits(&c.init.able),
                    "layer_sizes": sizes,
                    "timesteps": c.inputs.len(),
                },
                "weights": weights,
                "inputs": bits(&c.inputs),
                "expected": {
                    "spikes": bits(&c.expected.spikes),
                    "membranes": c.expected.membranes,
                    "layers": expected_layers,
                },
            })
        })
        .collect();
    let file = json!({"format": FORMAT, "note": "written by nerve", "cases": cases});
    file.to_string().into_bytes()
}

/// A value as compact JSON, cut to 40 characters, for messages.
fn short(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text,
    }
}

/// Reads one case, naming the case in every error.
struct Reader<'a> {
    origin: &'a Path,
    case: String,
}

/// A leaf value parser: the value or a message without the field name.
type Leaf<T> = fn(&Value) -> std::result::Result<T, String>;

impl Reader<'_> {
    fn err(&self, field: &str, msg: impl fmt::Display) -> Error {
        Error::format(self.origin, format!("{}: {field}: {msg}", self.case))
    }

    fn object<'v>(&self, v: &'v Value, field: &str) -> Result<&'v Map<String, Value>> {
        v.as_object()
            .ok_or_else(|| self.err(field, format!("{} is not an object", short(v))))
    }

    fn get<'v>(&self, map: &'v Map<String, Value>, field: &str) -> Result<&'v Value> {
        let key = field.rsplit('.').next().unwrap_or(field);
        map.get(key).ok_or_else(|| self.err(field, "missing field"))
    }

    fn array<'v>(&self, v: &'v Value, field: &str, len: Option<usize>) -> Result<&'v [Value]> {
        let items = v
            .as_array()
            .ok_or_else(|| self.err(field, format!("{} is not an array", short(v))))?;
        match len {
            Some(n) if items.len() != n => {
                Err(self.err(field, format!("has {} entries, expected {n}", items.len())))
            }
            _ => Ok(items),
        }
    }

    /// A `[rows][cols[r]]` array of leaves.
    fn grid<T>(
        &self,
        v: &Value,
        field: &str,
        cols: &[usize],
        leaf: Leaf<T>,
    ) -> Result<Vec<Vec<T>>> {
        let rows = self.array(v, field, Some(cols.len()))?;
        rows.iter()
            .zip(cols)
            .enumerate()
            .map(|(r, (row, &n))| {
                let name = || format!("{field}[{r}]");
                let row = self.array(row, &name(), Some(n))?;
                row.iter()
                    .enumerate()
                    .map(|(c, x)| leaf(x).map_err(|m| self.err(&format!("{}[{c}]", name()), m)))
                    .collect()
            })
            .collect()
    }

    fn case(&self, v: &Value) -> Result<OpenSpikeCase> {
        let case = self.object(v, "case")?;
        let name = self.get(case, "name")?;
        let name = name
            .as_str()
            .ok_or_else(|| self.err("name", format!("{} is not a string", short(name))))?
            .to_string();
        let params = self.object(self.get(case, "params")?, "params")?;
        let sizes = self.array(
            self.get(params, "params.layer_sizes")?,
            "params.layer_sizes",
            None,
        )?;
        if sizes.len() < 2 {
            return Err(self.err(
                "params.layer_sizes",
                format!(
                    "{} entries; the input size and at least one layer are needed",
                    sizes.len()
                ),
            ));
        }
        let mut dims = Vec::with_capacity(sizes.len());
        for (l, s) in sizes.iter().enumerate() {
            let (max, what) = if l == 0 {
                (MAX_FAN_IN, "inputs (the input vector is 1024 bits)")
            } else {
                (MAX_NEURONS, "neurons (the accelerator has 1024)")
            };
            let n = s
                .as_u64()
                .filter(|&n| n >= 1 && n <= max as u64)
                .ok_or_else(|| {
                    self.err(
                        &format!("params.layer_sizes[{l}]"),
                        format!("{} is not 1..={max} {what}", short(s)),
                    )
                })?;
            dims.push(n as usize);
        }
        let layers = dims.len() - 1;
        let outs = &dims[1..];
        let steps_v = self.get(params, "params.timesteps")?;
        let steps = steps_v.as_u64().ok_or_else(|| {
            self.err(
                "params.timesteps",
                format!("{} is not a count", short(steps_v)),
            )
        })?;
        let thresholds =
            self.object(self.get(params, "params.thresholds")?, "params.thresholds")?;
        for (key, fixed) in [("high", THRESH_HIGH), ("low", THRESH_LOW)] {
            let field = format!("params.thresholds.{key}");
            let got = self.get(thresholds, &field)?;
            if got.as_u64() != Some(u64::from(fixed)) {
                return Err(self.err(
                    &field,
                    format!(
                        "{} is not {fixed} (the thresholds are fixed in the RTL)",
                        short(got)
                    ),
                ));
            }
        }
        let beta = self.grid(
            self.get(params, "params.beta")?,
            "params.beta",
            outs,
            beta_code,
        )?;
        let u = self.grid(
            self.get(params, "params.u_init")?,
            "params.u_init",
            outs,
            byte,
        )?;
        let able = self.grid(
            self.get(params, "params.spikeability_init")?,
            "params.spikeability_init",
            outs,
            bit,
        )?;
        let weights_v = self.array(self.get(case, "weights")?, "weights", Some(layers))?;
        let mut built = Vec::with_capacity(layers);
        for (l, (w, b)) in weights_v.iter().zip(beta).enumerate() {
            let field = format!("weights[{l}]");
            let w = self.grid(w, &field, &vec![dims[l]; dims[l + 1]], bit)?;
            let layer =
                Layer::from_fn(dims[l], b, |j, i| w[j][i]).map_err(|e| self.err(&field, e))?;
            built.push(layer);
        }
        let network = Network::new(built).map_err(|e| self.err("weights", e))?;
        let steps = usize::try_from(steps).unwrap_or(usize::MAX);
        let inputs_v = self.get(case, "inputs")?;
        let inputs_len = self.array(inputs_v, "inputs", None)?.len();
        if inputs_len as u64 != steps as u64 {
            return Err(self.err(
                "inputs",
                format!("has {inputs_len} steps but params.timesteps is {steps}"),
            ));
        }
        let inputs = self.grid(inputs_v, "inputs", &vec![dims[0]; steps], bit)?;
        let expected = self.expected(self.get(case, "expected")?, steps, outs)?;
        Ok(OpenSpikeCase {
            name,
            network,
            init: State { u, able },
            inputs,
            expected,
        })
    }

    fn expected(&self, v: &Value, steps: usize, outs: &[usize]) -> Result<Expected> {
        let map = self.object(v, "expected")?;
        let last = vec![outs[outs.len() - 1]; steps];
        let spikes = self.grid(
            self.get(map, "expected.spikes")?,
            "expected.spikes",
            &last,
            bit,
        )?;
        let membranes = self.grid(
            self.get(map, "expected.membranes")?,
            "expected.membranes",
            &last,
            byte,
        )?;
        let layers_v = self.array(
            self.get(map, "expected.layers")?,
            "expected.layers",
            Some(outs.len()),
        )?;
        let mut layers = Vec::with_capacity(outs.len());
        for (l, (lv, &n)) in layers_v.iter().zip(outs).enumerate() {
            let field = format!("expected.layers[{l}]");
            let lm = self.object(lv, &field)?;
            let cols = vec![n; steps];
            let pf = format!("{field}.potentials");
            let sf = format!("{field}.spikes");
            layers.push(ExpectedLayer {
                potentials: self.grid(self.get(lm, &pf)?, &pf, &cols, byte)?,
                spikes: self.grid(self.get(lm, &sf)?, &sf, &cols, bit)?,
            });
        }
        Ok(Expected {
            spikes,
            membranes,
            layers,
        })
    }
}

/// A bit: 0, 1, false or true.
fn bit(v: &Value) -> std::result::Result<bool, String> {
    match (v.as_u64(), v.as_bool()) {
        (Some(0), _) | (_, Some(false)) => Ok(false),
        (Some(1), _) | (_, Some(true)) => Ok(true),
        _ => Err(format!("{} is not a bit (0 or 1)", short(v))),
    }
}

/// An 8-bit value.
fn byte(v: &Value) -> std::result::Result<u8, String> {
    match v.as_u64() {
        Some(n) if n <= 255 => Ok(n as u8),
        _ => Err(format!("{} is out of range 0..=255", short(v))),
    }
}

/// A decay code the multiplier defines.
fn beta_code(v: &Value) -> std::result::Result<u8, String> {
    match v.as_u64() {
        Some(n) if n <= u64::from(MAX_BETA) => Ok(n as u8),
        Some(n @ 9..=15) => Err(format!(
            "{n} is undefined in the RTL (decay codes are 0..={MAX_BETA})"
        )),
        _ => Err(format!("{} is not a decay code (0..={MAX_BETA})", short(v))),
    }
}
