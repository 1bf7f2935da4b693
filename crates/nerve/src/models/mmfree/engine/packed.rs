//! The packed engine: BitLinear matrices ternarised and packed at 1.78 bits per weight, all
//! back to back in one huge-page arena, multiplied by the add/subtract-only kernels.

use std::borrow::Cow;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::super::config::MmFreeConfig;
use super::super::weights::{tensor_specs, MmFreeWeights, TensorRole, TensorSpec};
use super::params::{tensor_from, Model};
use super::{BitLinearMatrix, Engine};
use crate::error::{Error, Result};
use crate::kernels::ternary::{QuantizedActivations, TernaryArena, TernaryMatrix};
use crate::rng::standard_normal;

/// The packed ternary CPU engine (see the [module docs](super)): an [`Engine`] on
/// [`TernaryMatrix`] weights.
pub type MmFreeEngine = Engine<TernaryMatrix>;

impl BitLinearMatrix for TernaryMatrix {
    #[inline]
    fn scale(&self) -> f32 {
        TernaryMatrix::scale(self)
    }

    #[inline]
    fn gemv(&self, x: &QuantizedActivations, y: &mut [i32]) {
        TernaryMatrix::gemv(self, x, y)
    }

    fn gemv_batch(&self, xs: &[&QuantizedActivations], ys: &mut [i32]) {
        TernaryMatrix::gemv_batch(self, xs, ys)
    }
}

/// The BitLinear matrix shapes of `cfg`, in the order [`tensor_specs`] lists them, which is
/// also the order a token uses them.
fn matrix_shapes(cfg: &MmFreeConfig) -> Vec<(usize, usize)> {
    tensor_specs(cfg)
        .into_iter()
        .filter(|s| s.role == TensorRole::Matrix && s.name != "model.embeddings.weight")
        .map(|s| (s.shape[0], s.shape[1]))
        .collect()
}

/// Builds the packed model: every BitLinear matrix is ternarised straight into one
/// [`TernaryArena`], in order of use, so a token streams one contiguous region.
fn build_packed<'a>(
    config: &MmFreeConfig,
    tensor: impl FnMut(&TensorSpec) -> Result<Cow<'a, [f32]>>,
) -> Result<Model<TernaryMatrix>> {
    config.validate()?;
    let shapes = matrix_shapes(config);
    let arena = std::cell::RefCell::new(TernaryArena::new(&shapes));
    let next = std::cell::Cell::new(0usize);
    let model = Model::build(config, tensor, |spec, data| {
        let k = next.get();
        if shapes.get(k) != Some(&(spec.shape[0], spec.shape[1])) {
            return Err(Error::invalid(
                format!("tensor {}", spec.name),
                "matrices out of the expected order",
            ));
        }
        arena
            .borrow_mut()
            .pack_f32(k, data)
            .map_err(|e| Error::invalid(format!("tensor {}", spec.name), e.to_string()))?;
        next.set(k + 1);
        Ok(k)
    })?;
    let mut mats: Vec<Option<TernaryMatrix>> =
        arena.into_inner().finish()?.into_iter().map(Some).collect();
    // The closure above handed out each index once.
    Ok(model.map(|k| mats[k].take().expect("each packed matrix is used once")))
}

impl Engine<TernaryMatrix> {
    /// Ternarises and packs `weights`; errors on a missing or misshapen tensor or a
    /// non-finite matrix weight.
    pub fn new(weights: &MmFreeWeights) -> Result<Self> {
        Ok(Self::from_model(build_packed(
            &weights.config,
            tensor_from(weights),
        )?))
    }

    /// The engine of `MmFreeWeights::random(config, seed)` (same values, same logits), built
    /// one tensor at a time so the whole `f32` model never sits in memory.
    pub fn random(config: MmFreeConfig, seed: u64) -> Result<Self> {
        let mut rng = StdRng::seed_from_u64(seed);
        // Draws in `tensor_specs` order exactly as `MmFreeWeights::random` does.
        let model = build_packed(&config, |spec| {
            let n: usize = spec.shape.iter().product();
            Ok(Cow::Owned(match spec.role {
                TensorRole::Matrix => (0..n)
                    .map(|_| standard_normal(&mut rng) as f32 * 0.02)
                    .collect(),
                TensorRole::NormWeight => vec![1.0; n],
                TensorRole::LowerBounds => vec![0.0; n],
            }))
        })?;
        Ok(Self::from_model(model))
    }

    fn matrices(&self) -> impl Iterator<Item = &TernaryMatrix> {
        self.model
            .layers
            .iter()
            .flat_map(|l| [&l.i.w, &l.f.w, &l.g.w, &l.o.w, &l.gate.w, &l.down.w])
            .chain([&self.model.lm_head.w])
    }

    /// Bytes of packed ternary weights streamed per token (all BitLinear matrices).
    pub fn packed_bytes(&self) -> usize {
        self.matrices().map(TernaryMatrix::packed_bytes).sum()
    }

    /// Bytes of parameters read per token: the packed matrices, every norm weight and lower
    /// bound, and one embedding row.
    pub fn bytes_per_token(&self) -> usize {
        let m = &self.model;
        let vectors: usize = m
            .layers
            .iter()
            .map(|l| {
                let lin = [&l.i, &l.f, &l.g, &l.o, &l.gate, &l.down];
                l.attn_norm.len()
                    + l.g_norm.len()
                    + l.mlp_norm.len()
                    + l.gamma.as_ref().map_or(0, Vec::len)
                    + lin.iter().map(|x| x.norm.len()).sum::<usize>()
            })
            .sum::<usize>()
            + m.norm.len()
            + m.lm_head.norm.len()
            + m.config.hidden_size;
        self.packed_bytes() + vectors * std::mem::size_of::<f32>()
    }
}
