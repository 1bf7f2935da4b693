//! What each NIR node computes on a block of rows (samples, or samples × steps): weighted
//! layers through Burn and Nerve's event-driven kernels, pooling and neurons on plain slices.

use burn::tensor::module::{conv1d, conv2d};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use crate::firing::Reset;
use crate::kernels::leaky::{leaky_multistep, LeakyParams, SurrogateGrad};
use crate::kernels::spike_conv::{spike_conv2d, SpikeConvMode};
use crate::kernels::spike_linear::{spike_linear, SpikeLinearMode};

/// A stateless operation, its parameters ready to apply.
pub(super) enum Stateless {
    /// Passes its input on (Input, Output, Flatten: only the shape changes).
    Identity,
    /// `x W + b` over the last axis: `w` is `[in, out]`.
    Dense { w: Tensor<2>, b: Tensor<1> },
    /// Element-wise product with per-element factors.
    Scale(Vec<f32>),
    /// `H(x − θ)` per element.
    Threshold(Vec<f32>),
    /// Two-dimensional convolution on `[C, H, W]` samples.
    Conv2d {
        w: Tensor<4>,
        b: Tensor<1>,
        options: ConvOptions<2>,
        input: [usize; 3],
    },
    /// One-dimensional convolution on `[C, L]` samples.
    Conv1d {
        w: Tensor<3>,
        b: Tensor<1>,
        options: ConvOptions<1>,
        input: [usize; 2],
    },
    /// Sum (or mean, counting padding) over windows of `[C, H, W]` samples.
    Pool {
        input: [usize; 3],
        output: [usize; 2],
        kernel: [usize; 2],
        stride: [usize; 2],
        padding: [usize; 2],
        mean: bool,
    },
}

impl Stateless {
    /// Applies the operation to `rows` samples laid out one after another.
    pub(super) fn apply(&self, x: Vec<f32>, rows: usize, device: &Device) -> Vec<f32> {
        match self {
            Stateless::Identity => x,
            Stateless::Dense { w, b } => {
                let [inputs, _] = w.dims();
                let lead = x.len() / inputs.max(1);
                let t = Tensor::<2>::from_data(TensorData::new(x, [lead, inputs]), device);
                let y = spike_linear(t, w.clone(), b.clone(), SpikeLinearMode::Auto);
                values(y.into_data())
            }
            Stateless::Scale(s) => x
                .chunks(s.len())
                .flat_map(|row| row.iter().zip(s).map(|(v, f)| v * f))
                .collect(),
            Stateless::Threshold(t) => x
                .chunks(t.len())
                .flat_map(|row| row.iter().zip(t).map(|(v, th)| f32::from(*v > *th)))
                .collect(),
            Stateless::Conv2d {
                w,
                b,
                options,
                input: [c, h, wd],
            } => {
                let t = Tensor::<4>::from_data(TensorData::new(x, [rows, *c, *h, *wd]), device);
                let simple = options.stride == [1, 1]
                    && options.dilation == [1, 1]
                    && options.groups == 1
                    && !options.is_asymmetric()
                    && crate::device::is_flex(device);
                let y = if simple {
                    let p = options.padding_begin();
                    spike_conv2d(t, w.clone(), b.clone(), p, SpikeConvMode::Auto)
                } else {
                    conv2d(t, w.clone(), Some(b.clone()), options.clone())
                };
                values(y.into_data())
            }
            Stateless::Conv1d {
                w,
                b,
                options,
                input: [c, l],
            } => {
                let t = Tensor::<3>::from_data(TensorData::new(x, [rows, *c, *l]), device);
                values(conv1d(t, w.clone(), Some(b.clone()), options.clone()).into_data())
            }
            Stateless::Pool {
                input,
                output,
                kernel,
                stride,
                padding,
                mean,
            } => pool(&x, rows, *input, *output, *kernel, *stride, *padding, *mean),
        }
    }
}

fn values(data: TensorData) -> Vec<f32> {
    data.iter::<f32>().collect()
}

/// Sum pooling (divided by the window's area for the mean, padding counted as PyTorch's
/// `AvgPool2d` counts it by default).
#[allow(clippy::too_many_arguments)]
fn pool(
    x: &[f32],
    rows: usize,
    [c, h, w]: [usize; 3],
    [oh, ow]: [usize; 2],
    [kh, kw]: [usize; 2],
    [sh, sw]: [usize; 2],
    [ph, pw]: [usize; 2],
    mean: bool,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * c * oh * ow);
    let area = (kh * kw) as f32;
    for plane in x.chunks(h * w).take(rows * c) {
        for oy in 0..oh {
            for ox in 0..ow {
                let mut sum = 0.0f32;
                for ky in 0..kh {
                    let y = (oy * sh + ky).checked_sub(ph).filter(|&y| y < h);
                    let Some(y) = y else { continue };
                    for kx in 0..kw {
                        if let Some(xx) = (ox * sw + kx).checked_sub(pw).filter(|&v| v < w) {
                            sum += plane[y * w + xx];
                        }
                    }
                }
                out.push(if mean { sum / area } else { sum });
            }
        }
    }
    out
}

/// A neuron model (or delay line), its parameters expanded to one value per element.
pub(super) enum Dynamics {
    /// Forward Euler of NIR's continuous-time equations with time step `dt`.
    Euler(Euler),
    /// Nerve's own discrete Leaky update with its delayed reset, exact (from the metadata Nerve
    /// writes on export).
    NerveLeaky {
        beta: Vec<f32>,
        threshold: Vec<f32>,
        reset: Reset,
    },
    /// `y(t) = x(t − steps)` per element.
    Delay { steps: Vec<usize> },
}

/// The Euler form of I, IF, LI, LIF, CubaLI and CubaLIF.
pub(super) struct Euler {
    /// `dt/τ_mem` per element, or `None` for an integrator without leak (I, IF).
    pub leak: Option<Vec<f32>>,
    /// `r` per element (for I and IF already multiplied by `dt`).
    pub r: Vec<f32>,
    /// Leak potential per element.
    pub v_leak: Vec<f32>,
    /// `(dt/τ_syn, w_in)` per element for the current-based models.
    pub synapse: Option<(Vec<f32>, Vec<f32>)>,
    /// `(threshold, reset potential)` per element for the spiking models.
    pub firing: Option<(Vec<f32>, Vec<f32>)>,
}

/// A neuron node's state for `rows` samples.
pub(super) struct State {
    /// Membrane (or, for a delay, unused).
    pub v: Vec<f32>,
    /// Synaptic current of the current-based models.
    i: Vec<f32>,
    /// Past inputs of a delay line, newest last.
    history: std::collections::VecDeque<Vec<f32>>,
}

impl Dynamics {
    /// Every step at once from the zero state: `x` holds `steps` blocks of samples, each sample
    /// `per` long. Returns the outputs and the membrane after each step. Nerve's Leaky with a
    /// shared β and threshold runs through Nerve's own fused kernel, as the network it was
    /// exported from runs, so the two agree bit for bit.
    pub(super) fn run_sequence(
        &self,
        x: &[f32],
        steps: usize,
        per: usize,
        device: &Device,
    ) -> (Vec<f32>, Vec<f32>) {
        let block = x.len() / steps.max(1);
        if let Dynamics::NerveLeaky {
            beta,
            threshold,
            reset,
        } = self
        {
            let shared = |v: &[f32]| v.iter().all(|&b| b == v[0]);
            if !x.is_empty()
                && shared(beta)
                && shared(threshold)
                && crate::kernels::enabled()
                && crate::device::is_flex(device)
            {
                let params = LeakyParams {
                    beta: beta[0],
                    threshold: threshold[0],
                    graded: 1.0,
                    reset: *reset,
                    // Only the forward pass runs here; any closed-form surrogate will do.
                    surrogate: SurrogateGrad::ATan(2.0),
                    membranes: true,
                    levels: None,
                };
                let input =
                    Tensor::<2>::from_data(TensorData::new(x.to_vec(), [steps, block]), device);
                let run = leaky_multistep(input, Tensor::zeros([block], device), params);
                let mem = run.mem.map(|m| values(m.into_data())).unwrap_or_default();
                return (values(run.spk.into_data()), mem);
            }
        }
        let mut state = self.zero_state(block);
        let (mut out, mut mem) = (Vec::with_capacity(x.len()), Vec::with_capacity(x.len()));
        for xt in x.chunks(block.max(1)) {
            out.extend(self.step(&mut state, xt, per));
            mem.extend_from_slice(&state.v);
        }
        (out, mem)
    }

    /// The zero state for `len` values (samples × elements).
    pub(super) fn zero_state(&self, len: usize) -> State {
        State {
            v: vec![0.0; len],
            i: vec![0.0; len],
            history: Default::default(),
        }
    }

    /// True when the output is spikes (the membrane is then worth recording apart).
    pub(super) fn has_membrane(&self) -> bool {
        !matches!(self, Dynamics::Delay { .. })
    }

    /// One step for every sample: `x` holds samples one after another, each `per` long.
    pub(super) fn step(&self, state: &mut State, x: &[f32], per: usize) -> Vec<f32> {
        let idx = |k: usize| k % per;
        match self {
            Dynamics::Euler(e) => {
                let mut out = vec![0.0; x.len()];
                for (k, &xk) in x.iter().enumerate() {
                    let j = idx(k);
                    let drive = match &e.synapse {
                        Some((ks, w_in)) => {
                            let i = &mut state.i[k];
                            *i += ks[j] * (w_in[j] * xk - *i);
                            *i
                        }
                        None => xk,
                    };
                    let v = &mut state.v[k];
                    match &e.leak {
                        Some(kv) => *v += kv[j] * (e.v_leak[j] - *v + e.r[j] * drive),
                        None => *v += e.r[j] * drive,
                    }
                    out[k] = match &e.firing {
                        Some((theta, reset)) => {
                            let spike = *v > theta[j];
                            if spike {
                                *v = reset[j];
                            }
                            f32::from(spike)
                        }
                        None => *v,
                    };
                }
                out
            }
            Dynamics::NerveLeaky {
                beta,
                threshold,
                reset,
            } => {
                let mut out = vec![0.0; x.len()];
                for (k, &xk) in x.iter().enumerate() {
                    let j = idx(k);
                    let (b, th) = (beta[j], threshold[j]);
                    let m = &mut state.v[k];
                    // The same arithmetic, in the same order, as Nerve's Leaky kernel (the reset
                    // is delayed: it comes from the previous step's membrane).
                    let r = f32::from(u8::from(*m - th > 0.0));
                    *m = match reset {
                        Reset::Subtract => b * *m + xk - r * th,
                        Reset::Zero => b * (1.0 - r) * *m + xk,
                        Reset::None => b * *m + xk,
                    };
                    out[k] = f32::from(u8::from(*m - th > 0.0));
                }
                out
            }
            Dynamics::Delay { steps } => {
                state.history.push_back(x.to_vec());
                let longest = steps.iter().copied().max().unwrap_or(0);
                while state.history.len() > longest + 1 {
                    state.history.pop_front();
                }
                let newest = state.history.len() - 1;
                (0..x.len())
                    .map(|k| {
                        let back = steps[idx(k)];
                        newest
                            .checked_sub(back)
                            .map_or(0.0, |at| state.history[at][k])
                    })
                    .collect()
            }
        }
    }
}
