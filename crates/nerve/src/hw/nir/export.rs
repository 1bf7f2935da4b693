//! A trained [`SpikingNet`] as a NIR graph.
//!
//! The mapping, stage by stage:
//! - convolution → `Conv2d` (the kernel as the network computes with it: fake-quantized when
//!   the network was trained so), with `input_shape` so tools can infer types; a batch norm
//!   shared over time (`BN2D`) right after it folds into its weights and bias;
//! - average pooling → `AvgPool2d`; max pooling of spikes → `SumPool2d` then `Threshold` at ½
//!   (exact: the maximum of 0/1 values is whether their sum is positive); max pooling of
//!   currents (before the neurons) has no NIR node and is refused;
//! - fully connected → `Affine` (a `Flatten` first where a convolution's map comes in);
//! - Leaky → `LIF` with τ = dt/(1−β), r = τ/dt, v_leak = 0, v_reset = 0 and the threshold, and
//!   Nerve's exact β and reset in the metadata (`nerve_beta`, `nerve_reset`), which
//!   [`run`](super::run::run) follows;
//! - dropout is the identity at inference; batch norm through time (BNTT), per-neuron
//!   inhibition, graded spikes, an immediate reset and state quantization have no NIR form and
//!   are refused, each with an error naming it.

use std::path::Path;

use burn::tensor::Tensor;

use super::graph::{Array, Conv, MetaValue, Metadata, NirGraph, Node, NodeKind, Padding, Pool};
use super::run::DEFAULT_DT;
use crate::error::{Error, Result};
use crate::models::spiking_net::Stage;
use crate::models::SpikingNet;

/// The graph of the network a training checkpoint holds (rebuilt from its run configuration).
pub fn export_checkpoint(path: &Path) -> Result<NirGraph> {
    let (net, _, meta) = crate::train::run_config::load_checkpoint_net(path)?;
    let mut graph = export_net(&net)?;
    let encoding = crate::train::run_config::encoding_from_run(&meta.config);
    graph.metadata.insert(
        "nerve_encoding".into(),
        MetaValue::Text(format!("{encoding:?}")),
    );
    Ok(graph)
}

fn unsupported(what: &str) -> Error {
    Error::invalid("NIR export", format!("{what} has no NIR equivalent"))
}

/// An unpadded pooling window's fields; `shape` (`[C, H, W]`) becomes the pooled shape.
fn pooled(kernel: [usize; 2], stride: [usize; 2], shape: &mut Vec<usize>) -> Pool {
    *shape = vec![
        shape[0],
        (shape[1] - kernel[0]) / stride[0] + 1,
        (shape[2] - kernel[1]) / stride[1] + 1,
    ];
    Pool {
        kernel_size: kernel.to_vec(),
        stride: stride.to_vec(),
        padding: vec![0, 0],
    }
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

/// The graph of `net`: `input → … → output`, one node per stage that computes something.
pub fn export_net(net: &SpikingNet) -> Result<NirGraph> {
    let mut chain: Vec<(String, Node)> = Vec::new();
    let [c0, h0, w0] = net.input;
    let mut shape = vec![c0, h0, w0];
    chain.push((
        "input".into(),
        Node::new(NodeKind::Input {
            shape: shape.clone(),
        }),
    ));
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut name = |base: &'static str| {
        let n = counts.entry(base).or_insert(0);
        *n += 1;
        format!("{base}{n}")
    };
    let mut after_neuron = false;
    for stage in &net.stages {
        match stage {
            Stage::Conv(layer) => {
                let weight = layer.weight();
                let dims = weight.dims();
                let [h, w] = [shape[1], shape[2]];
                let pads = layer.padding_pairs(h, w);
                if pads.iter().any(|(a, b)| a != b) || layer.conv.stride != [1, 1] {
                    return Err(unsupported("a convolution with uneven padding or a stride"));
                }
                let bias = match &layer.conv.bias {
                    Some(b) => values(b.val()),
                    None => vec![0.0; dims[0]],
                };
                let out_h = h + 2 * pads[0].0 + 1 - dims[2];
                let out_w = w + 2 * pads[1].0 + 1 - dims[3];
                let conv = Conv {
                    input_shape: Some(vec![h, w]),
                    weight: Array::new(dims.to_vec(), values(weight)),
                    stride: vec![1, 1],
                    padding: Padding::Explicit(vec![pads[0].0, pads[1].0]),
                    dilation: layer.conv.dilation.to_vec(),
                    groups: layer.conv.groups,
                    bias: Array::vector(bias),
                };
                chain.push((name("conv"), Node::new(NodeKind::Conv2d(conv))));
                shape = vec![dims[0], out_h, out_w];
                after_neuron = false;
            }
            Stage::BatchNorm2d(bn) => {
                let Some((
                    _,
                    Node {
                        kind: NodeKind::Conv2d(conv),
                        ..
                    },
                )) = chain.last_mut()
                else {
                    return Err(unsupported(
                        "a batch norm that does not follow a convolution",
                    ));
                };
                let norm = &bn.norm;
                let gamma = values(norm.gamma.val());
                let beta = values(norm.beta.val());
                let mean = values(norm.running_mean.value());
                let var = values(norm.running_var.value());
                let per = conv.weight.data.len() / gamma.len().max(1);
                for ch in 0..gamma.len() {
                    let g = gamma[ch] / (var[ch] + norm.epsilon as f32).sqrt();
                    conv.weight.data[ch * per..(ch + 1) * per]
                        .iter_mut()
                        .for_each(|v| *v *= g);
                    conv.bias.data[ch] = g * (conv.bias.data[ch] - mean[ch]) + beta[ch];
                }
            }
            Stage::BatchNorm(_) => {
                return Err(unsupported(
                    "batch norm through time (BNTT: per-step statistics)",
                ))
            }
            Stage::Dropout(_) => {}
            Stage::AvgPool(_) | Stage::MaxPool(_) if shape.len() != 3 => {
                return Err(unsupported("pooling of a flat layer"));
            }
            Stage::AvgPool(pool) => {
                let p = pooled(pool.pool.kernel_size, pool.pool.stride, &mut shape);
                chain.push((name("pool"), Node::new(NodeKind::AvgPool2d(p))));
            }
            Stage::MaxPool(pool) => {
                if !after_neuron {
                    return Err(unsupported(
                        "max pooling of currents (NIR pools only by sum or mean; put the \
                         pooling after the neurons, e.g. 12C5-LIF-MP2, or use average pooling)",
                    ));
                }
                let p = pooled(pool.pool.kernel_size, pool.pool.stride, &mut shape);
                chain.push((name("pool"), Node::new(NodeKind::SumPool2d(p))));
                let any = NodeKind::Threshold {
                    threshold: Array::filled(&shape, 0.5),
                };
                chain.push((name("any"), Node::new(any)));
            }
            Stage::Linear(layer) => {
                if shape.len() > 1 {
                    let flatten = NodeKind::Flatten {
                        start_dim: 0,
                        end_dim: -1,
                        input_type: Some(shape.clone()),
                    };
                    chain.push((name("flatten"), Node::new(flatten)));
                }
                // Burn keeps [in, out]; NIR wants [out, in].
                let weight = layer.weight().transpose();
                let [outputs, inputs] = weight.dims();
                let bias = match &layer.linear.bias {
                    Some(b) => values(b.val()),
                    None => vec![0.0; outputs],
                };
                let affine = NodeKind::Affine {
                    weight: Array::new(vec![outputs, inputs], values(weight)),
                    bias: Array::vector(bias),
                };
                chain.push((name("fc"), Node::new(affine)));
                shape = vec![outputs];
                after_neuron = false;
            }
            Stage::Neuron(lif) => {
                let cfg = &lif.firing.config;
                if cfg.state_quant.is_some() {
                    return Err(unsupported("state quantization (membrane levels)"));
                }
                if cfg.inhibition {
                    return Err(unsupported("winner-take-all inhibition"));
                }
                if !cfg.reset_delay {
                    return Err(unsupported("an immediate reset (reset_delay off)"));
                }
                if values(lif.firing.graded.val()).iter().any(|&g| g != 1.0) {
                    return Err(unsupported("graded spikes (a spike value other than 1)"));
                }
                let beta = values(lif.beta.val().clamp(0.0, 1.0));
                let theta = values(lif.firing.threshold.val());
                let numel: usize = shape.iter().product();
                let spread = |v: &[f32]| {
                    if v.len() == numel {
                        Ok(v.to_vec())
                    } else if v.len() == 1 {
                        Ok(vec![v[0]; numel])
                    } else {
                        Err(unsupported(
                            "β or a threshold of another shape than its layer",
                        ))
                    }
                };
                let beta_full = spread(&beta)?;
                let dt = DEFAULT_DT;
                // β = 1 (no leak) would make τ infinite; a huge τ keeps the fields finite.
                let tau: Vec<f32> = beta_full
                    .iter()
                    .map(|b| dt / (1.0 - b).max(1e-30))
                    .collect();
                let r: Vec<f32> = tau.iter().map(|t| t / dt).collect();
                let mut node = Node::new(NodeKind::LIF {
                    tau: Array::new(shape.clone(), tau),
                    r: Array::new(shape.clone(), r),
                    v_leak: Array::filled(&shape, 0.0),
                    v_threshold: Array::new(shape.clone(), spread(&theta)?),
                    v_reset: Array::filled(&shape, 0.0),
                });
                node.metadata.insert(
                    "nerve_beta".into(),
                    MetaValue::Numbers(beta.iter().map(|&b| f64::from(b)).collect()),
                );
                node.metadata.insert(
                    "nerve_reset".into(),
                    MetaValue::Text(format!("{:?}", cfg.reset).to_lowercase()),
                );
                chain.push((name("lif"), node));
                after_neuron = true;
            }
        }
    }
    if !after_neuron {
        return Err(unsupported("a network that does not end in neurons"));
    }
    chain.push(("output".into(), Node::new(NodeKind::Output { shape })));
    let edges = chain
        .windows(2)
        .map(|w| (w[0].0.clone(), w[1].0.clone()))
        .collect();
    let metadata = Metadata::from([
        (
            "nerve_version".to_string(),
            MetaValue::Text(env!("CARGO_PKG_VERSION").into()),
        ),
        (
            "nerve_network".to_string(),
            MetaValue::Text(net.description.clone()),
        ),
        (
            "nerve_dt".to_string(),
            MetaValue::Numbers(vec![f64::from(DEFAULT_DT)]),
        ),
    ]);
    let graph = NirGraph {
        nodes: chain.into_iter().collect(),
        edges,
        metadata,
    };
    Ok(graph)
}
