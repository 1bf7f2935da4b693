//! The integer engine and its plain reference twin. Both run an [`IntProgram`] on one sample in
//! integer arithmetic and must agree bit for bit; the engine walks only the active inputs of a
//! layer fed spikes (additions only, weights laid out so each spike adds a contiguous run), the
//! reference computes every layer densely, input by weight, as the formulas read. Sums wrap in
//! two's complement (the converter refuses fan-ins that could reach that), so the order of
//! additions cannot make the two differ; membranes saturate at the 32-bit range.

use super::program::{IntOp, IntProgram, BETA_FRAC_BITS};
use super::walks::{
    conv_dense, conv_reach, conv_taps, conv_walk, linear_walk, walk_inputs, ConvGeometry,
};
use crate::error::{Error, Result};
use crate::firing::Reset;

/// One sample's input: the same 8-bit image at every step, or one image per step.
#[derive(Debug, Clone, Copy)]
pub enum IntInput<'a> {
    /// `[C·H·W]` pixels, the same at every step (computed through the layers before the first
    /// neurons once, as the float network does).
    Static(&'a [u8]),
    /// `steps × [C·H·W]` values (rate-coded spikes are 0 or 255).
    Steps(&'a [Vec<u8>]),
}

impl<'a> IntInput<'a> {
    /// One sample of [`super::batch_inputs`]: static when it holds a single image.
    pub fn from_steps(steps: &'a [Vec<u8>]) -> Self {
        match steps {
            [one] => IntInput::Static(one),
            all => IntInput::Steps(all),
        }
    }
}

/// What one run produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntOutput {
    /// Spikes of each output neuron summed over the steps.
    pub counts: Vec<u32>,
    /// Spikes of each Leaky layer over all steps.
    pub layer_spikes: Vec<u64>,
    /// Additions of a weight for an input spike (synaptic operations).
    pub acs: u64,
    /// Multiplications of a weight by a non-binary input, counted densely (every connection).
    pub macs: u64,
    /// Neuron state updates.
    pub neuron_updates: u64,
    /// The last Leaky layer's membranes after the last step (integer units).
    pub last_membranes: Vec<i32>,
}

impl IntOutput {
    /// The predicted class: the output neuron with the most spikes (the first on a tie).
    pub fn prediction(&self) -> usize {
        let mut best = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            if c > self.counts[best] {
                best = i;
            }
        }
        best
    }
}

/// Activations between steps.
#[derive(Debug, Clone)]
enum Act {
    /// 8-bit input values (multiplied).
    Pixels(Vec<u8>),
    /// 0/1 spikes (added).
    Spikes(Vec<u8>),
    /// Integer currents.
    Current(Vec<i32>),
}

/// Runs `program` on one sample with the event-driven engine.
pub fn run(program: &IntProgram, input: IntInput<'_>) -> Result<IntOutput> {
    execute(program, input, false)
}

/// Runs `program` on one sample with the dense reference twin.
pub fn run_reference(program: &IntProgram, input: IntInput<'_>) -> Result<IntOutput> {
    execute(program, input, true)
}

fn execute(program: &IntProgram, input: IntInput<'_>, dense: bool) -> Result<IntOutput> {
    let size: usize = program.input.iter().product();
    let check = |x: &[u8]| {
        if x.len() == size {
            Ok(())
        } else {
            Err(Error::Shape {
                what: "integer program input".into(),
                expected: format!("{size} values ({:?})", program.input),
                got: x.len().to_string(),
            })
        }
    };
    let first_neuron = program
        .ops
        .iter()
        .position(|op| matches!(op, IntOp::Leaky { .. }))
        .ok_or_else(|| Error::invalid("integer program", "has no neurons"))?;
    let mut out = IntOutput::default();
    let mut states: Vec<Vec<i32>> = Vec::new();
    let mut counts = vec![0u32; program.outputs()];
    let neuron_layers = program
        .ops
        .iter()
        .filter(|op| matches!(op, IntOp::Leaky { .. }))
        .count();
    out.layer_spikes = vec![0; neuron_layers];
    let mut cached: Option<Act> = None;
    let mut taps: Vec<Option<Vec<i32>>> = vec![None; program.ops.len()];
    for t in 0..program.steps {
        let (mut act, start) = match input {
            IntInput::Static(x) => {
                if cached.is_none() {
                    check(x)?;
                    let mut act = Act::Pixels(x.to_vec());
                    for (i, op) in program.ops[..first_neuron].iter().enumerate() {
                        act = apply(op, act, dense, &mut out, &mut taps[i])?;
                    }
                    cached = Some(act);
                }
                (cached.clone().expect("computed above"), first_neuron)
            }
            IntInput::Steps(xs) => {
                let x = xs.get(t).ok_or_else(|| Error::Shape {
                    what: "integer program input steps".into(),
                    expected: program.steps.to_string(),
                    got: xs.len().to_string(),
                })?;
                check(x)?;
                (Act::Pixels(x.clone()), 0)
            }
        };
        let mut layer = 0;
        for (i, op) in program.ops.iter().enumerate().skip(start) {
            act = match op {
                IntOp::Leaky { .. } => {
                    if states.len() <= layer {
                        states.push(Vec::new());
                    }
                    let spikes = step_neurons(op, act, &mut states[layer], &mut out)?;
                    out.layer_spikes[layer] += spikes.iter().map(|&s| u64::from(s)).sum::<u64>();
                    layer += 1;
                    Act::Spikes(spikes)
                }
                _ => apply(op, act, dense, &mut out, &mut taps[i])?,
            };
        }
        if let Act::Spikes(s) = &act {
            for (c, &v) in counts.iter_mut().zip(s) {
                *c += u32::from(v);
            }
        }
    }
    out.counts = counts;
    out.last_membranes = states.pop().unwrap_or_default();
    Ok(out)
}

fn mismatch(op: &IntOp, got: usize) -> Error {
    let kind = match op {
        IntOp::Conv { .. } => "convolution",
        IntOp::Linear { .. } => "linear layer",
        IntOp::MaxPool { .. } => "max pooling",
        IntOp::SumPool { .. } => "sum pooling",
        IntOp::Leaky { .. } => "Leaky layer",
    };
    Error::invalid(
        "integer program",
        format!("a {kind} got {got} values, not what its shape says"),
    )
}

/// One non-neuron op; `taps` caches a convolution's transposed weights for the whole run.
fn apply(
    op: &IntOp,
    act: Act,
    dense: bool,
    out: &mut IntOutput,
    taps: &mut Option<Vec<i32>>,
) -> Result<Act> {
    Ok(match op {
        IntOp::Conv {
            input,
            out_channels,
            kernel,
            padding,
            weights,
            ..
        } => {
            let [c, h, w] = *input;
            let [kh, kw] = *kernel;
            let (oh, ow) = (h + 2 * padding[0] + 1 - kh, w + 2 * padding[1] + 1 - kw);
            let geometry = ConvGeometry {
                c,
                h,
                w,
                o: *out_channels,
                kh,
                kw,
                ph: padding[0],
                pw: padding[1],
                oh,
                ow,
            };
            let (x, spikes) = match act {
                Act::Pixels(x) => (x, false),
                Act::Spikes(s) => (s, true),
                Act::Current(_) => {
                    return Err(Error::invalid(
                        "integer program",
                        "a convolution of currents",
                    ))
                }
            };
            if x.len() != c * h * w {
                return Err(mismatch(op, x.len()));
            }
            if !spikes {
                out.macs += (geometry.o * oh * ow * c * kh * kw) as u64;
            }
            // The dense twin counts the additions a walk over the spikes makes; the walk
            // counts its own (the 8-bit input's walk counts into a scratch counter).
            let mut scratch = 0;
            let acs = if spikes { &mut out.acs } else { &mut scratch };
            Act::Current(if dense {
                *acs += if spikes { conv_reach(&geometry, &x) } else { 0 };
                conv_dense(&geometry, weights, x.iter().map(|&v| i32::from(v)))
            } else {
                let taps =
                    taps.get_or_insert_with(|| conv_taps(*input, *out_channels, *kernel, weights));
                // Zero inputs (most of a digit, most of a spike map) contribute nothing.
                walk_inputs(&x, spikes, |multiply| {
                    conv_walk(&geometry, taps, &x, multiply, acs)
                })
            })
        }
        IntOp::Linear {
            inputs,
            outputs,
            weights,
            ..
        } => {
            let (n, m) = (*inputs, *outputs);
            let (x, spikes) = match act {
                Act::Pixels(x) => (x, false),
                Act::Spikes(s) => (s, true),
                Act::Current(_) => {
                    return Err(Error::invalid(
                        "integer program",
                        "a linear layer of currents",
                    ))
                }
            };
            if x.len() != n {
                return Err(mismatch(op, x.len()));
            }
            if spikes {
                out.acs += x.iter().filter(|&&v| v != 0).count() as u64 * m as u64;
            } else {
                out.macs += (n * m) as u64;
            }
            Act::Current(if dense {
                (0..m)
                    .map(|o| {
                        (0..n).fold(0i32, |s, i| {
                            let xv = i32::from(x[i]);
                            s.wrapping_add(i32::from(weights[i * m + o]).wrapping_mul(xv))
                        })
                    })
                    .collect()
            } else {
                walk_inputs(&x, spikes, |multiply| linear_walk(weights, m, &x, multiply))
            })
        }
        IntOp::MaxPool { input, size } | IntOp::SumPool { input, size } => {
            let sum = matches!(op, IntOp::SumPool { .. });
            let [c, h, w] = *input;
            let (oh, ow) = (h / size, w / size);
            let pool = |x: &dyn Fn(usize) -> i32| -> Vec<i32> {
                let mut out = Vec::with_capacity(c * oh * ow);
                for ch in 0..c {
                    for y in 0..oh {
                        for xo in 0..ow {
                            let mut v = if sum { 0 } else { i32::MIN };
                            for dy in 0..*size {
                                for dx in 0..*size {
                                    let at = (ch * h + y * size + dy) * w + xo * size + dx;
                                    v = if sum {
                                        v.wrapping_add(x(at))
                                    } else {
                                        v.max(x(at))
                                    };
                                }
                            }
                            out.push(v);
                        }
                    }
                }
                out
            };
            match act {
                Act::Current(x) if x.len() == c * h * w => Act::Current(pool(&|i| x[i])),
                Act::Spikes(s) if s.len() == c * h * w && !sum => Act::Spikes(
                    pool(&|i| i32::from(s[i]))
                        .into_iter()
                        .map(|v| v as u8)
                        .collect(),
                ),
                Act::Current(x) => return Err(mismatch(op, x.len())),
                _ => {
                    return Err(Error::invalid(
                        "integer program",
                        "pooling of what it cannot pool",
                    ))
                }
            }
        }
        IntOp::Leaky { .. } => unreachable!("neurons are stepped by the caller"),
    })
}

/// One step of a Leaky layer: the delayed reset from the previous membrane, the fixed-point
/// decay, the current and bias, the threshold; saturating at the 32-bit range.
fn step_neurons(
    op: &IntOp,
    act: Act,
    state: &mut Vec<i32>,
    out: &mut IntOutput,
) -> Result<Vec<u8>> {
    let IntOp::Leaky {
        channels,
        per_channel,
        beta,
        reset,
        bias,
        threshold,
        ..
    } = op
    else {
        unreachable!("called for neurons")
    };
    let n = channels * per_channel;
    let Act::Current(current) = act else {
        return Err(Error::invalid(
            "integer program",
            "neurons fed something other than a current",
        ));
    };
    if current.len() != n || bias.len() != *channels || threshold.len() != *channels {
        return Err(mismatch(op, current.len()));
    }
    if state.is_empty() {
        *state = vec![0; n];
    }
    out.neuron_updates += n as u64;
    let half = 1i64 << (BETA_FRAC_BITS - 1);
    let mut spikes = vec![0u8; n];
    for (i, (u, &x)) in state.iter_mut().zip(&current).enumerate() {
        let ch = i / per_channel;
        let (b, theta) = (i64::from(bias[ch]), i64::from(threshold[ch]));
        let prev = i64::from(*u);
        let fired = prev > theta;
        let decayed = (prev * i64::from(*beta) + half) >> BETA_FRAC_BITS;
        let next = match reset {
            Reset::Subtract => decayed + i64::from(x) + b - if fired { theta } else { 0 },
            Reset::Zero => (if fired { 0 } else { decayed }) + i64::from(x) + b,
            Reset::None => decayed + i64::from(x) + b,
        };
        *u = next.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        spikes[i] = u8::from(i64::from(*u) > theta);
    }
    Ok(spikes)
}
