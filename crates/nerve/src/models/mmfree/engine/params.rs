//! The parameters of a model whose BitLinear matrices are of some type `M`, built tensor by
//! tensor from host weights, and the recurrent state's helpers.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::super::config::MmFreeConfig;
use super::super::weights::{tensor_specs, MmFreeWeights, TensorRole, TensorSpec};
use crate::error::{Error, Result};

/// The forget-gate lower bounds `γ` of every layer, from `model.lower_bounds` (`[L, d]`,
/// row-major): `γ = cumsum(softmax(lb, dim 0), dim 0) − softmax(lb, dim 0)[0]`, the softmax
/// taken over layers for each channel. Row 0 is always zero.
///
/// # Panics
/// If `lower_bounds.len() != layers * d`.
pub fn forget_lower_bounds(lower_bounds: &[f32], layers: usize, d: usize) -> Vec<Vec<f32>> {
    assert_eq!(lower_bounds.len(), layers * d, "lower_bounds shape");
    let mut gamma = vec![vec![0.0f32; d]; layers];
    for c in 0..d {
        let max = (0..layers).fold(f32::NEG_INFINITY, |m, l| m.max(lower_bounds[l * d + c]));
        let exps: Vec<f32> = (0..layers)
            .map(|l| (lower_bounds[l * d + c] - max).exp())
            .collect();
        let total: f32 = exps.iter().sum();
        let first = exps[0] / total;
        let mut cum = 0.0f32;
        for (l, e) in exps.iter().enumerate() {
            cum += e / total;
            gamma[l][c] = cum - first;
        }
    }
    gamma
}

/// A BitLinear: RMSNorm weight over the input, then the quantised weight matrix `M`.
#[derive(Debug, Clone)]
pub(super) struct Linear<M> {
    pub(super) norm: Vec<f32>,
    pub(super) w: M,
}

#[derive(Debug, Clone)]
pub(super) struct Layer<M> {
    pub(super) attn_norm: Vec<f32>,
    pub(super) i: Linear<M>,
    pub(super) f: Linear<M>,
    pub(super) g: Linear<M>,
    pub(super) o: Linear<M>,
    pub(super) g_norm: Vec<f32>,
    /// Forget-gate lower bound `γ_l`; `None` in layer 0 or without `use_lower_bound`.
    pub(super) gamma: Option<Vec<f32>>,
    pub(super) mlp_norm: Vec<f32>,
    pub(super) gate: Linear<M>,
    pub(super) down: Linear<M>,
}

impl<M> Layer<M> {
    /// Asks the CPU to load the layer's norm weights and lower bounds into L2.
    pub(super) fn prefetch_vectors(&self) {
        let lin = [&self.i, &self.f, &self.g, &self.o, &self.gate, &self.down];
        for v in [&self.attn_norm, &self.g_norm, &self.mlp_norm]
            .into_iter()
            .chain(lin.map(|l| &l.norm))
            .chain(self.gamma.as_ref())
        {
            prefetch_l2(v);
        }
    }
}

/// Asks the CPU to load `v` into L2 (a hint; nothing on other architectures).
fn prefetch_l2(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(16) {
        // SAFETY: SSE is part of x86-64; the address is inside `v`.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T1 }>(
                line.as_ptr() as *const i8
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// The parameters of a model whose BitLinear matrices are of type `M`.
#[derive(Debug, Clone)]
pub(super) struct Model<M> {
    pub(super) config: MmFreeConfig,
    pub(super) eps: f32,
    pub(super) embeddings: Vec<f32>,
    pub(super) layers: Vec<Layer<M>>,
    pub(super) norm: Vec<f32>,
    pub(super) lm_head: Linear<M>,
}

enum Part<M> {
    Vector(Vec<f32>),
    Matrix(M),
}

struct Parts<M>(BTreeMap<String, Part<M>>);

impl<M> Parts<M> {
    fn vector(&mut self, name: &str) -> Result<Vec<f32>> {
        match self.0.remove(name) {
            Some(Part::Vector(v)) => Ok(v),
            _ => Err(Error::invalid(
                format!("tensor {name}"),
                "missing or misplaced",
            )),
        }
    }

    fn matrix(&mut self, name: &str) -> Result<M> {
        match self.0.remove(name) {
            Some(Part::Matrix(m)) => Ok(m),
            _ => Err(Error::invalid(
                format!("tensor {name}"),
                "missing or misplaced",
            )),
        }
    }

    fn linear(&mut self, prefix: &str) -> Result<Linear<M>> {
        Ok(Linear {
            w: self.matrix(&format!("{prefix}.weight"))?,
            norm: self.vector(&format!("{prefix}.norm.weight"))?,
        })
    }
}

impl<M> Linear<M> {
    fn map<B>(self, f: &mut impl FnMut(M) -> B) -> Linear<B> {
        Linear {
            norm: self.norm,
            w: f(self.w),
        }
    }
}

impl<M> Model<M> {
    /// The same model with every BitLinear matrix converted by `f`, in order of use.
    pub(super) fn map<B>(self, mut f: impl FnMut(M) -> B) -> Model<B> {
        let layers = self
            .layers
            .into_iter()
            .map(|l| Layer {
                attn_norm: l.attn_norm,
                i: l.i.map(&mut f),
                f: l.f.map(&mut f),
                g: l.g.map(&mut f),
                o: l.o.map(&mut f),
                g_norm: l.g_norm,
                gamma: l.gamma,
                mlp_norm: l.mlp_norm,
                gate: l.gate.map(&mut f),
                down: l.down.map(&mut f),
            })
            .collect();
        Model {
            config: self.config,
            eps: self.eps,
            embeddings: self.embeddings,
            layers,
            norm: self.norm,
            lm_head: self.lm_head.map(&mut f),
        }
    }

    /// Builds the model tensor by tensor, in [`tensor_specs`] order: `tensor` supplies the
    /// values of a spec (checked against its shape) and `matrix` converts each BitLinear
    /// matrix, so only one `f32` matrix needs to exist at a time.
    pub(super) fn build<'a>(
        config: &MmFreeConfig,
        mut tensor: impl FnMut(&TensorSpec) -> Result<Cow<'a, [f32]>>,
        matrix: impl Fn(&TensorSpec, &[f32]) -> Result<M>,
    ) -> Result<Self> {
        config.validate()?;
        let mut parts = Parts(BTreeMap::new());
        for spec in tensor_specs(config) {
            let data = tensor(&spec)?;
            let n: usize = spec.shape.iter().product();
            if data.len() != n {
                return Err(Error::Shape {
                    what: format!("tensor {}", spec.name),
                    expected: format!("{:?}", spec.shape),
                    got: format!("{} values", data.len()),
                });
            }
            let part = if spec.role == TensorRole::Matrix && spec.name != "model.embeddings.weight"
            {
                Part::Matrix(matrix(&spec, &data)?)
            } else {
                Part::Vector(data.into_owned())
            };
            parts.0.insert(spec.name, part);
        }
        let (l, d) = (config.num_hidden_layers, config.hidden_size);
        let gammas = if config.use_lower_bound {
            Some(forget_lower_bounds(
                &parts.vector("model.lower_bounds")?,
                l,
                d,
            ))
        } else {
            None
        };
        let mut layers = Vec::with_capacity(l);
        for k in 0..l {
            let p = format!("model.layers.{k}");
            layers.push(Layer {
                attn_norm: parts.vector(&format!("{p}.attn_norm.weight"))?,
                i: parts.linear(&format!("{p}.attn.i_proj"))?,
                f: parts.linear(&format!("{p}.attn.f_proj"))?,
                g: parts.linear(&format!("{p}.attn.g_proj"))?,
                o: parts.linear(&format!("{p}.attn.o_proj"))?,
                g_norm: parts.vector(&format!("{p}.attn.g_norm.weight"))?,
                gamma: gammas.as_ref().filter(|_| k > 0).map(|g| g[k].clone()),
                mlp_norm: parts.vector(&format!("{p}.mlp_norm.weight"))?,
                gate: parts.linear(&format!("{p}.mlp.gate_proj"))?,
                down: parts.linear(&format!("{p}.mlp.down_proj"))?,
            });
        }
        Ok(Self {
            config: config.clone(),
            eps: config.rms_norm_eps as f32,
            embeddings: parts.vector("model.embeddings.weight")?,
            layers,
            norm: parts.vector("model.norm.weight")?,
            lm_head: parts.linear("lm_head")?,
        })
    }

    pub(super) fn check_token(&self, token: u32) -> Result<usize> {
        let v = self.config.vocab_size;
        let t = token as usize;
        if t >= v {
            return Err(Error::invalid(
                "token id",
                format!("{token} is not below the vocabulary size {v}"),
            ));
        }
        Ok(t)
    }

    pub(super) fn zero_state(&self) -> Vec<Vec<f32>> {
        vec![vec![0.0; self.config.hidden_size]; self.config.num_hidden_layers]
    }
}

/// Supplies the tensors of host weights to [`Model::build`], checking each shape.
pub(super) fn tensor_from<'a>(
    weights: &'a MmFreeWeights,
) -> impl FnMut(&TensorSpec) -> Result<Cow<'a, [f32]>> + 'a {
    |spec| {
        let t = weights.get(&spec.name)?;
        if t.shape != spec.shape {
            return Err(Error::Shape {
                what: format!("tensor {}", spec.name),
                expected: format!("{:?}", spec.shape),
                got: format!("{:?}", t.shape),
            });
        }
        Ok(Cow::Borrowed(&t.data))
    }
}

pub(super) fn copy_state(dst: &mut [Vec<f32>], src: &[Vec<f32>]) -> Result<()> {
    let shape = |s: &[Vec<f32>]| s.iter().map(Vec::len).collect::<Vec<_>>();
    if shape(dst) != shape(src) {
        return Err(Error::Shape {
            what: "recurrent state".into(),
            expected: format!(
                "{} layers of {}",
                dst.len(),
                dst.first().map_or(0, Vec::len)
            ),
            got: format!("lengths {:?}", shape(src)),
        });
    }
    for (d, s) in dst.iter_mut().zip(src) {
        d.copy_from_slice(s);
    }
    Ok(())
}
