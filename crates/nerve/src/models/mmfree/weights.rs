//! MatMul-free LM weights held in host memory as `f32`, under the tensor names of the published
//! Hugging Face checkpoints. The checkpoint reader, the Burn model and the packed inference
//! engine all meet here, so each checks names and shapes in one place.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::config::MmFreeConfig;
use crate::error::{Error, Result};
use crate::rng::standard_normal;

/// A dense row-major `f32` tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    /// Dimensions, outermost first (`[out, in]` for a projection, as PyTorch stores it).
    pub shape: Vec<usize>,
    /// `shape.iter().product()` values, row-major.
    pub data: Vec<f32>,
}

impl HostTensor {
    /// A tensor of the given shape; errors if `data` has the wrong length.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let n: usize = shape.iter().product();
        if n != data.len() {
            return Err(Error::Shape {
                what: "host tensor data".into(),
                expected: format!("{n} values for shape {shape:?}"),
                got: format!("{} values", data.len()),
            });
        }
        Ok(Self { shape, data })
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// What a tensor is, which decides its initial value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRole {
    /// A projection or embedding matrix (normal, std 0.02, as the released init).
    Matrix,
    /// An RMSNorm weight (ones).
    NormWeight,
    /// The per-layer forget-gate lower bounds (zeros).
    LowerBounds,
}

/// One tensor a checkpoint must contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorSpec {
    /// Name in the published layout, e.g. `model.layers.3.attn.f_proj.weight`.
    pub name: String,
    /// Expected shape.
    pub shape: Vec<usize>,
    /// What the tensor is.
    pub role: TensorRole,
}

/// Names of the four `[d, d]` projections of the MLGRU token mixer, in the order i, f, g, o.
pub const ATTN_PROJECTIONS: [&str; 4] = ["i_proj", "f_proj", "g_proj", "o_proj"];

/// Every tensor of an HGRNBit checkpoint with `cfg`, in a fixed order (no biases).
pub fn tensor_specs(cfg: &MmFreeConfig) -> Vec<TensorSpec> {
    let (v, d, l, i) = (
        cfg.vocab_size,
        cfg.hidden_size,
        cfg.num_hidden_layers,
        cfg.intermediate(),
    );
    let mut specs = Vec::new();
    let mut push =
        |name: String, shape: Vec<usize>, role| specs.push(TensorSpec { name, shape, role });
    push(
        "model.embeddings.weight".into(),
        vec![v, d],
        TensorRole::Matrix,
    );
    if cfg.use_lower_bound {
        push(
            "model.lower_bounds".into(),
            vec![l, d],
            TensorRole::LowerBounds,
        );
    }
    for layer in 0..l {
        let p = format!("model.layers.{layer}");
        push(
            format!("{p}.attn_norm.weight"),
            vec![d],
            TensorRole::NormWeight,
        );
        for proj in ATTN_PROJECTIONS {
            push(
                format!("{p}.attn.{proj}.weight"),
                vec![d, d],
                TensorRole::Matrix,
            );
            push(
                format!("{p}.attn.{proj}.norm.weight"),
                vec![d],
                TensorRole::NormWeight,
            );
        }
        push(
            format!("{p}.attn.g_norm.weight"),
            vec![d],
            TensorRole::NormWeight,
        );
        push(
            format!("{p}.mlp_norm.weight"),
            vec![d],
            TensorRole::NormWeight,
        );
        push(
            format!("{p}.mlp.gate_proj.weight"),
            vec![2 * i, d],
            TensorRole::Matrix,
        );
        push(
            format!("{p}.mlp.gate_proj.norm.weight"),
            vec![d],
            TensorRole::NormWeight,
        );
        push(
            format!("{p}.mlp.down_proj.weight"),
            vec![d, i],
            TensorRole::Matrix,
        );
        push(
            format!("{p}.mlp.down_proj.norm.weight"),
            vec![i],
            TensorRole::NormWeight,
        );
    }
    push("model.norm.weight".into(), vec![d], TensorRole::NormWeight);
    push("lm_head.weight".into(), vec![v, d], TensorRole::Matrix);
    push(
        "lm_head.norm.weight".into(),
        vec![d],
        TensorRole::NormWeight,
    );
    specs
}

/// All weights of one HGRNBit model, by published tensor name.
#[derive(Debug, Clone)]
pub struct MmFreeWeights {
    /// The model's configuration.
    pub config: MmFreeConfig,
    /// Every tensor of [`tensor_specs`], by name.
    pub tensors: BTreeMap<String, HostTensor>,
}

impl MmFreeWeights {
    /// Checks that `tensors` holds exactly the tensors of `config` with their shapes.
    pub fn new(config: MmFreeConfig, tensors: BTreeMap<String, HostTensor>) -> Result<Self> {
        config.validate()?;
        let specs = tensor_specs(&config);
        for spec in &specs {
            let t = tensors.get(&spec.name).ok_or_else(|| {
                Error::invalid(format!("tensor {}", spec.name), "missing from the weights")
            })?;
            if t.shape != spec.shape {
                return Err(Error::Shape {
                    what: format!("tensor {}", spec.name),
                    expected: format!("{:?}", spec.shape),
                    got: format!("{:?}", t.shape),
                });
            }
        }
        if tensors.len() != specs.len() {
            let known: std::collections::HashSet<&str> =
                specs.iter().map(|s| s.name.as_str()).collect();
            let extra = tensors.keys().find(|k| !known.contains(k.as_str()));
            return Err(Error::invalid(
                format!("tensor {}", extra.map_or("?", |s| s.as_str())),
                "not part of an HGRNBit model",
            ));
        }
        Ok(Self { config, tensors })
    }

    /// Random weights initialised as the released code does (normal std 0.02 for matrices,
    /// ones for norm weights, zeros for the lower bounds), reproducible from `seed`.
    pub fn random(config: MmFreeConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        let mut rng = StdRng::seed_from_u64(seed);
        let tensors = tensor_specs(&config)
            .into_iter()
            .map(|spec| {
                let n: usize = spec.shape.iter().product();
                let data = match spec.role {
                    TensorRole::Matrix => (0..n)
                        .map(|_| standard_normal(&mut rng) as f32 * 0.02)
                        .collect(),
                    TensorRole::NormWeight => vec![1.0; n],
                    TensorRole::LowerBounds => vec![0.0; n],
                };
                (
                    spec.name,
                    HostTensor {
                        shape: spec.shape,
                        data,
                    },
                )
            })
            .collect();
        Ok(Self { config, tensors })
    }

    /// The tensor called `name`; errors naming it if absent.
    pub fn get(&self, name: &str) -> Result<&HostTensor> {
        self.tensors
            .get(name)
            .ok_or_else(|| Error::invalid(format!("tensor {name}"), "missing from the weights"))
    }

    /// Total number of values over all tensors.
    pub fn num_params(&self) -> usize {
        self.tensors.values().map(HostTensor::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_cover_the_published_370m_parameter_count() {
        let cfg = MmFreeConfig::published_370m();
        let n: usize = tensor_specs(&cfg)
            .iter()
            .map(|s| s.shape.iter().product::<usize>())
            .sum();
        // Embedding and head 2 x 32000 x 1024, 24 layers of 4 d^2 + 3 d I, plus norms.
        let big = 2 * 32000 * 1024 + 24 * (4 * 1024 * 1024 + 3 * 1024 * 2816);
        assert!(n > big && n < big + 24 * 12 * 2816 + 4 * 32000, "{n}");
    }

    #[test]
    fn new_names_the_missing_or_misshapen_tensor() {
        let cfg = MmFreeConfig::new(11, 8, 2);
        let w = MmFreeWeights::random(cfg.clone(), 1).unwrap();
        let mut t = w.tensors.clone();
        t.remove("model.layers.1.attn.g_norm.weight");
        let err = MmFreeWeights::new(cfg.clone(), t).unwrap_err().to_string();
        assert!(err.contains("model.layers.1.attn.g_norm.weight"), "{err}");
        let mut t = w.tensors.clone();
        t.get_mut("lm_head.weight").unwrap().shape = vec![8, 11];
        let err = MmFreeWeights::new(cfg, t).unwrap_err().to_string();
        assert!(
            err.contains("lm_head.weight") && err.contains("[11, 8]"),
            "{err}"
        );
    }
}
