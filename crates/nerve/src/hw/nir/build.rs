//! Each NIR node turned into what runs it, with its output shape, checked against the shape
//! that reaches it.

use burn::tensor::ops::ConvOptions;
use burn::tensor::{Device, Tensor, TensorData};

use super::graph::{Array, Node, NodeKind, Padding};
use super::ops::{Dynamics, Euler, Stateless};
use super::run::invalid;
use crate::error::Result;
use crate::firing::Reset;

/// One node ready to run.
pub(super) enum Step {
    /// Computes from the current input alone.
    Stateless(Box<Stateless>),
    /// Keeps state from step to step.
    Neuron(Dynamics),
}

/// Per-element values of `a` for a node of `shape`: one value for all, one per element, or
/// one per channel (the first axis).
fn expand(name: &str, field: &str, a: &Array, shape: &[usize]) -> Result<Vec<f32>> {
    let numel: usize = shape.iter().product();
    if a.data.len() == 1 {
        return Ok(vec![a.data[0]; numel]);
    }
    if a.data.len() == numel {
        return Ok(a.data.clone());
    }
    if shape.len() > 1 && a.data.len() == shape[0] {
        let per = numel / shape[0];
        return Ok(a
            .data
            .iter()
            .flat_map(|&v| std::iter::repeat_n(v, per))
            .collect());
    }
    Err(invalid(format!(
        "node '{name}': field '{field}' has shape {:?}, which does not fit the input {shape:?}",
        a.shape
    )))
}

/// The operation of one node and its output shape, checked against its input shape.
pub(super) fn build(
    name: &str,
    kind: &NodeKind,
    node: &Node,
    shape: &[usize],
    dt: f32,
) -> Result<(Step, Vec<usize>)> {
    let device = Device::flex();
    let e = |f: &str, a: &Array| expand(name, f, a, shape);
    let same = shape.to_vec();
    let stateless = |op| Ok((Step::Stateless(Box::new(op)), same.clone()));
    let mismatch = |want: String| {
        invalid(format!(
            "node '{name}' ({}) takes {want} but receives {shape:?}",
            kind.type_name()
        ))
    };
    match kind {
        NodeKind::Input { shape: declared } => {
            if declared.iter().product::<usize>() != shape.iter().product::<usize>() {
                return Err(mismatch(format!("{declared:?}")));
            }
            Ok((
                Step::Stateless(Box::new(Stateless::Identity)),
                declared.clone(),
            ))
        }
        NodeKind::Output { shape: declared } => {
            if declared.iter().product::<usize>() != shape.iter().product::<usize>() {
                return Err(mismatch(format!("{declared:?}")));
            }
            stateless(Stateless::Identity)
        }
        NodeKind::Affine { weight, .. } | NodeKind::Linear { weight } => {
            let [outputs, inputs] = [weight.shape[0], weight.shape[1]];
            if shape.last() != Some(&inputs) {
                return Err(mismatch(format!("[.., {inputs}]")));
            }
            // Burn's [in, out] layout, stored contiguously as Nerve's own layers store it (a
            // transposed view would take another summation order in the dense kernel).
            let mut t = vec![0.0f32; weight.data.len()];
            for (o, row) in weight.data.chunks(inputs).enumerate() {
                for (k, &w) in row.iter().enumerate() {
                    t[k * outputs + o] = w;
                }
            }
            let w = Tensor::<2>::from_data(TensorData::new(t, [inputs, outputs]), &device);
            let b = match kind {
                NodeKind::Affine { bias, .. } => bias.data.clone(),
                _ => vec![0.0; outputs],
            };
            let b = Tensor::<1>::from_data(TensorData::new(b, [outputs]), &device);
            let mut out = shape.to_vec();
            *out.last_mut().expect("checked above") = outputs;
            Ok((Step::Stateless(Box::new(Stateless::Dense { w, b })), out))
        }
        NodeKind::Scale { scale } => stateless(Stateless::Scale(e("scale", scale)?)),
        NodeKind::Threshold { threshold } => {
            stateless(Stateless::Threshold(e("threshold", threshold)?))
        }
        NodeKind::Flatten {
            start_dim, end_dim, ..
        } => {
            let rank = shape.len() as i64;
            let at = |d: i64| if d < 0 { d + rank } else { d };
            let (s, t) = (at(*start_dim), at(*end_dim));
            if s < 0 || t >= rank || s > t {
                return Err(invalid(format!(
                    "node '{name}' (Flatten): dims {start_dim}..{end_dim} do not fit the input {shape:?}"
                )));
            }
            let (s, t) = (s as usize, t as usize);
            let mut out = shape[..s].to_vec();
            out.push(shape[s..=t].iter().product());
            out.extend_from_slice(&shape[t + 1..]);
            Ok((Step::Stateless(Box::new(Stateless::Identity)), out))
        }
        NodeKind::Conv2d(c) | NodeKind::Conv1d(c) => {
            let axes = c.weight.shape.len() - 2;
            let [out_c, in_per_group] = [c.weight.shape[0], c.weight.shape[1]];
            if shape.len() != axes + 1 || shape[0] != in_per_group * c.groups {
                return Err(mismatch(format!(
                    "[{}, ..] with {axes} spatial axes",
                    in_per_group * c.groups
                )));
            }
            let kernel = &c.weight.shape[2..];
            let pads: Vec<(usize, usize)> = (0..axes)
                .map(|a| match &c.padding {
                    Padding::Explicit(p) => (p[a], p[a]),
                    Padding::Valid => (0, 0),
                    Padding::Same => {
                        let total = c.dilation[a] * (kernel[a] - 1);
                        (total / 2, total - total / 2)
                    }
                })
                .collect();
            let mut out = vec![out_c];
            for a in 0..axes {
                let span = c.dilation[a] * (kernel[a] - 1) + 1;
                let padded = shape[a + 1] + pads[a].0 + pads[a].1;
                if padded < span {
                    return Err(mismatch(format!(
                        "a larger input than its {kernel:?} kernel"
                    )));
                }
                out.push((padded - span) / c.stride[a] + 1);
            }
            let b = Tensor::<1>::from_data(TensorData::new(c.bias.data.clone(), [out_c]), &device);
            let op = if axes == 2 {
                let w = Tensor::<4>::from_data(
                    TensorData::new(c.weight.data.clone(), c.weight.shape.clone()),
                    &device,
                );
                let options = ConvOptions::new_with_padding(
                    [c.stride[0], c.stride[1]],
                    [pads[0], pads[1]],
                    [c.dilation[0], c.dilation[1]],
                    c.groups,
                );
                Stateless::Conv2d {
                    w,
                    b,
                    options,
                    input: [shape[0], shape[1], shape[2]],
                }
            } else {
                let w = Tensor::<3>::from_data(
                    TensorData::new(c.weight.data.clone(), c.weight.shape.clone()),
                    &device,
                );
                let options = ConvOptions::new_with_padding(
                    [c.stride[0]],
                    [pads[0]],
                    [c.dilation[0]],
                    c.groups,
                );
                Stateless::Conv1d {
                    w,
                    b,
                    options,
                    input: [shape[0], shape[1]],
                }
            };
            Ok((Step::Stateless(Box::new(op)), out))
        }
        NodeKind::SumPool2d(p) | NodeKind::AvgPool2d(p) => {
            if shape.len() != 3 {
                return Err(mismatch("[C, H, W]".into()));
            }
            let mut out = [0usize; 2];
            for a in 0..2 {
                let padded = shape[a + 1] + 2 * p.padding[a];
                if padded < p.kernel_size[a] {
                    return Err(mismatch(format!(
                        "a larger input than its {:?} window",
                        p.kernel_size
                    )));
                }
                out[a] = (padded - p.kernel_size[a]) / p.stride[a] + 1;
            }
            let op = Stateless::Pool {
                input: [shape[0], shape[1], shape[2]],
                output: out,
                kernel: [p.kernel_size[0], p.kernel_size[1]],
                stride: [p.stride[0], p.stride[1]],
                padding: [p.padding[0], p.padding[1]],
                mean: matches!(kind, NodeKind::AvgPool2d(_)),
            };
            Ok((
                Step::Stateless(Box::new(op)),
                vec![shape[0], out[0], out[1]],
            ))
        }
        NodeKind::Delay { delay } => {
            let steps = e("delay", delay)?
                .iter()
                .map(|&d| {
                    let s = (d / dt).round();
                    if (0.0..=1e6).contains(&s) {
                        Ok(s as usize)
                    } else {
                        Err(invalid(format!(
                            "node '{name}' (Delay): delay {d} s is not 0..1e6 steps"
                        )))
                    }
                })
                .collect::<Result<_>>()?;
            Ok((Step::Neuron(Dynamics::Delay { steps }), same))
        }
        NodeKind::LIF { v_threshold, .. } if node.meta_text("nerve_reset").is_some() => {
            let reset = node
                .meta_text("nerve_reset")
                .and_then(Reset::from_name)
                .ok_or_else(|| {
                    invalid(format!(
                        "node '{name}': metadata 'nerve_reset' is not subtract, zero or none"
                    ))
                })?;
            let beta = match node.metadata.get("nerve_beta") {
                Some(super::graph::MetaValue::Numbers(b)) => {
                    let a = Array::vector(b.iter().map(|&v| v as f32).collect());
                    e("nerve_beta", &a)?
                }
                _ => {
                    return Err(invalid(format!(
                        "node '{name}': metadata 'nerve_beta' is missing"
                    )))
                }
            };
            let dynamics = Dynamics::NerveLeaky {
                beta,
                threshold: e("v_threshold", v_threshold)?,
                reset,
            };
            Ok((Step::Neuron(dynamics), same))
        }
        NodeKind::I { r } | NodeKind::IF { r, .. } => {
            let r = e("r", r)?.iter().map(|v| v * dt).collect();
            let firing = match kind {
                NodeKind::IF {
                    v_threshold,
                    v_reset,
                    ..
                } => Some((e("v_threshold", v_threshold)?, e("v_reset", v_reset)?)),
                _ => None,
            };
            let euler = Euler {
                leak: None,
                r,
                v_leak: vec![0.0; shape.iter().product()],
                synapse: None,
                firing,
            };
            Ok((Step::Neuron(Dynamics::Euler(euler)), same))
        }
        NodeKind::LI { tau, r, v_leak } | NodeKind::LIF { tau, r, v_leak, .. } => {
            let firing = match kind {
                NodeKind::LIF {
                    v_threshold,
                    v_reset,
                    ..
                } => Some((e("v_threshold", v_threshold)?, e("v_reset", v_reset)?)),
                _ => None,
            };
            let euler = Euler {
                leak: Some(e("tau", tau)?.iter().map(|t| dt / t).collect()),
                r: e("r", r)?,
                v_leak: e("v_leak", v_leak)?,
                synapse: None,
                firing,
            };
            Ok((Step::Neuron(Dynamics::Euler(euler)), same))
        }
        NodeKind::CubaLI {
            tau_mem,
            tau_syn,
            r,
            v_leak,
            w_in,
        }
        | NodeKind::CubaLIF {
            tau_mem,
            tau_syn,
            r,
            v_leak,
            w_in,
            ..
        } => {
            let firing = match kind {
                NodeKind::CubaLIF {
                    v_threshold,
                    v_reset,
                    ..
                } => Some((e("v_threshold", v_threshold)?, e("v_reset", v_reset)?)),
                _ => None,
            };
            let euler = Euler {
                leak: Some(e("tau_mem", tau_mem)?.iter().map(|t| dt / t).collect()),
                r: e("r", r)?,
                v_leak: e("v_leak", v_leak)?,
                synapse: Some((
                    e("tau_syn", tau_syn)?.iter().map(|t| dt / t).collect(),
                    e("w_in", w_in)?,
                )),
                firing,
            };
            Ok((Step::Neuron(Dynamics::Euler(euler)), same))
        }
        NodeKind::Graph(_) => unreachable!("nested graphs are inlined before planning"),
    }
}
