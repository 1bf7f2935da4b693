//! Token-by-token CPU decoding of an HGRNBit model.
//!
//! - [`MmFreeEngine`] is the fast path: every BitLinear weight is ternarised once at load and
//!   packed at 1.78 bits per weight ([`TernaryMatrix`]), all matrices back to back in one
//!   huge-page buffer in the order a token uses them ([`TernaryArena`]); a token quantises
//!   each projection input to int8 and runs the add/subtract-only GEMV of
//!   [`crate::kernels::ternary`], parallel in the current rayon pool (pick the thread count
//!   with `ThreadPool::install`). The packed weights are streamed once per token.
//! - [`ReferenceEngine`] computes the same quantised model in plain `f32` loops (BitLinear as
//!   `y = (x_q · W_tᵀ) / (s · s_w)` with integer-valued `f32` operands), to check the fast
//!   path.
//!
//! Both keep only the recurrent state `h` (one `d`-vector per layer) between tokens, so memory
//! does not grow with the context; [`Decoder::state`] and [`Decoder::set_state`] snapshot and
//! restore it to fork a generation.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::config::MmFreeConfig;
use super::weights::{tensor_specs, MmFreeWeights, TensorRole, TensorSpec};
use crate::error::{Error, Result};
use crate::kernels::ternary::{
    ternarize, weight_scale, Kernel, QuantizedActivations, TernaryArena, TernaryMatrix,
};
use crate::rng::standard_normal;

/// What the CLI needs from a decoding engine; implemented by [`MmFreeEngine`] and
/// [`ReferenceEngine`].
pub trait Decoder {
    /// The model's configuration.
    fn config(&self) -> &MmFreeConfig;
    /// Zeroes the recurrent state of every layer (a new sequence).
    fn reset(&mut self);
    /// Feeds one token and returns the logits of the next one (`vocab_size` values); errors
    /// on a token id not below `vocab_size`.
    fn step(&mut self, token: u32) -> Result<&[f32]>;
    /// The recurrent state: one `hidden_size` vector per layer.
    fn state(&self) -> &[Vec<f32>];
    /// Restores a state taken with [`state`](Self::state); errors if its shape differs.
    fn set_state(&mut self, state: &[Vec<f32>]) -> Result<()>;
}

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

/// `1 / sqrt(mean(x²) + eps)`, summed in 16 independent lanes so that it vectorises instead
/// of waiting on one chain of additions.
#[inline]
fn inv_rms(x: &[f32], eps: f32) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (s, v) in lanes.iter_mut().zip(c) {
            *s += v * v;
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    let ms = (lanes.iter().sum::<f32>() + tail) / x.len() as f32;
    1.0 / (ms + eps).sqrt()
}

/// `out = x · inv · w`: RMSNorm once `inv` is known.
#[inline]
fn scale_by(x: &[f32], inv: f32, w: &[f32], out: &mut [f32]) {
    for ((o, v), w) in out.iter_mut().zip(x).zip(w) {
        *o = v * inv * w;
    }
}

/// `out = x / sqrt(mean(x²) + eps) * w`.
#[inline]
fn rms_norm(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    scale_by(x, inv_rms(x, eps), w, out);
}

/// `e^x` within a few ulp for `x` in [-87.3, 88.3] (inputs outside are clamped to it, so the
/// result stays finite and normal), without a libm call so that loops over it vectorise:
/// Cody–Waite reduction by ln 2 and the Cephes `expf` polynomial.
#[inline]
fn exp_f32(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5 · 2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.3);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let y = p * r * r + r + 1.0;
    // 2^n from its exponent bits; n is in [-126, 127].
    y * f32::from_bits(((n as i32 + 127) as u32) << 23)
}

#[inline]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp_f32(-x))
}

#[inline]
fn silu(x: f32) -> f32 {
    x * sigmoid(x)
}

/// A BitLinear: RMSNorm weight over the input, then the quantised weight matrix `M`.
#[derive(Debug, Clone)]
struct Linear<M> {
    norm: Vec<f32>,
    w: M,
}

#[derive(Debug, Clone)]
struct Layer<M> {
    attn_norm: Vec<f32>,
    i: Linear<M>,
    f: Linear<M>,
    g: Linear<M>,
    o: Linear<M>,
    g_norm: Vec<f32>,
    /// Forget-gate lower bound `γ_l`; `None` in layer 0 or without `use_lower_bound`.
    gamma: Option<Vec<f32>>,
    mlp_norm: Vec<f32>,
    gate: Linear<M>,
    down: Linear<M>,
}

impl<M> Layer<M> {
    /// Asks the CPU to load the layer's norm weights and lower bounds into L2.
    fn prefetch_vectors(&self) {
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
struct Model<M> {
    config: MmFreeConfig,
    eps: f32,
    embeddings: Vec<f32>,
    layers: Vec<Layer<M>>,
    norm: Vec<f32>,
    lm_head: Linear<M>,
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
    fn map<B>(self, mut f: impl FnMut(M) -> B) -> Model<B> {
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
    fn build<'a>(
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

    fn check_token(&self, token: u32) -> Result<usize> {
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

    fn zero_state(&self) -> Vec<Vec<f32>> {
        vec![vec![0.0; self.config.hidden_size]; self.config.num_hidden_layers]
    }
}

/// Supplies the tensors of host weights to [`Model::build`], checking each shape.
fn tensor_from<'a>(
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

fn copy_state(dst: &mut [Vec<f32>], src: &[Vec<f32>]) -> Result<()> {
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

/// Per-token buffers of [`MmFreeEngine`], allocated once.
#[derive(Debug, Clone)]
struct Scratch {
    /// Residual stream `[d]`.
    x: Vec<f32>,
    /// Block input after the block's RMSNorm `[d]`.
    xa: Vec<f32>,
    /// One projection's input after its own RMSNorm `[max(d, I)]`.
    xn: Vec<f32>,
    /// Quantised inputs of i_proj, f_proj and g_proj; the first also serves o_proj,
    /// gate_proj and the head.
    act: [QuantizedActivations; 3],
    /// Quantised input of down_proj `[I]`.
    act_down: QuantizedActivations,
    /// GEMV outputs `[max(3d, 2I, V)]`.
    acc: Vec<i32>,
    /// g_proj output `[d]`.
    g: Vec<f32>,
    /// o_proj input `[d]`.
    o_in: Vec<f32>,
    /// GLU output `[I]`.
    glu: Vec<f32>,
    logits: Vec<f32>,
}

impl Scratch {
    fn new(cfg: &MmFreeConfig) -> Self {
        let (v, d, i) = (cfg.vocab_size, cfg.hidden_size, cfg.intermediate());
        Self {
            x: vec![0.0; d],
            xa: vec![0.0; d],
            xn: vec![0.0; d.max(i)],
            act: std::array::from_fn(|_| QuantizedActivations::new(d)),
            act_down: QuantizedActivations::new(i),
            acc: vec![0; (3 * d).max(2 * i).max(v)],
            g: vec![0.0; d],
            o_in: vec![0.0; d],
            glu: vec![0.0; i],
            logits: vec![0.0; v],
        }
    }
}

/// RMSNorm (given `inv = inv_rms(x)`) then int8 quantisation of one BitLinear input; returns
/// the factor `1 / (s · s_w)` that turns the integer GEMV result into the layer's output.
#[inline(always)]
fn quantize_input(
    lin: &Linear<TernaryMatrix>,
    x: &[f32],
    inv: f32,
    xn: &mut [f32],
    act: &mut QuantizedActivations,
) -> f32 {
    let xn = &mut xn[..x.len()];
    scale_by(x, inv, &lin.norm, xn);
    let s = act.quantize(xn);
    1.0 / (s * lin.w.scale())
}

/// The packed ternary CPU engine (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct MmFreeEngine {
    model: Model<TernaryMatrix>,
    state: Vec<Vec<f32>>,
    scratch: Scratch,
}

impl MmFreeEngine {
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

    fn from_model(model: Model<TernaryMatrix>) -> Self {
        Self {
            state: model.zero_state(),
            scratch: Scratch::new(&model.config),
            model,
        }
    }

    /// The model's configuration.
    pub fn config(&self) -> &MmFreeConfig {
        &self.model.config
    }

    /// Zeroes the recurrent state of every layer (a new sequence).
    pub fn reset(&mut self) {
        for h in &mut self.state {
            h.fill(0.0);
        }
    }

    /// The recurrent state: one `hidden_size` vector per layer.
    pub fn state(&self) -> &[Vec<f32>] {
        &self.state
    }

    /// Restores a state taken with [`state`](Self::state); errors if its shape differs.
    pub fn set_state(&mut self, state: &[Vec<f32>]) -> Result<()> {
        copy_state(&mut self.state, state)
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

    /// Feeds one token and returns the logits of the next one (`vocab_size` values); errors
    /// on a token id not below `vocab_size`. Allocates nothing.
    pub fn step(&mut self, token: u32) -> Result<&[f32]> {
        let t = self.model.check_token(token)?;
        #[cfg(target_arch = "x86_64")]
        if Kernel::Avx512.is_supported() {
            // SAFETY: the CPU has the features `forward_avx512` is compiled for.
            unsafe { self.forward_avx512(t) };
            return Ok(&self.scratch.logits);
        }
        self.forward(t);
        Ok(&self.scratch.logits)
    }

    /// [`forward`](Self::forward) compiled for AVX-512, so its float loops (norms,
    /// quantisation, gates) run 16 lanes wide; element-wise results are the same as with
    /// narrower vectors.
    ///
    /// # Safety
    /// The CPU supports AVX-512F and AVX-512BW (what [`Kernel::Avx512`] checks).
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn forward_avx512(&mut self, t: usize) {
        self.forward(t)
    }

    /// One token through the model; the logits land in `scratch.logits`.
    #[inline(always)]
    fn forward(&mut self, t: usize) {
        let Self {
            model: m,
            state,
            scratch: s,
        } = self;
        let (d, inter, eps) = (m.config.hidden_size, m.config.intermediate(), m.eps);
        s.x.copy_from_slice(&m.embeddings[t * d..(t + 1) * d]);
        for (l, (layer, h)) in m.layers.iter().zip(state.iter_mut()).enumerate() {
            // The packed weights streamed since this layer's vectors were last read (a token
            // ago) have pushed them out of cache; ask for the next layer's now so they arrive
            // while this layer's GEMVs run.
            if let Some(next) = m.layers.get(l + 1) {
                next.prefetch_vectors();
            }
            // Token mixer (MLGRU): the i, f and g projections share their input.
            rms_norm(&s.x, &layer.attn_norm, eps, &mut s.xa);
            let [a_i, a_f, a_g] = &mut s.act;
            // The three RMSNorms differ only in their weights.
            let inv = inv_rms(&s.xa, eps);
            let k_i = quantize_input(&layer.i, &s.xa, inv, &mut s.xn, a_i);
            let k_f = quantize_input(&layer.f, &s.xa, inv, &mut s.xn, a_f);
            let k_g = quantize_input(&layer.g, &s.xa, inv, &mut s.xn, a_g);
            {
                let (acc_i, rest) = s.acc.split_at_mut(d);
                let (acc_f, rest) = rest.split_at_mut(d);
                let acc_g = &mut rest[..d];
                let (a_i, a_f, a_g) = (&*a_i, &*a_f, &*a_g);
                rayon::join(
                    || layer.i.w.gemv(a_i, acc_i),
                    || rayon::join(|| layer.f.w.gemv(a_f, acc_f), || layer.g.w.gemv(a_g, acc_g)),
                );
            }
            // Zipped slices and one loop per case, so that the loops vectorise.
            let (acc_i, rest) = s.acc.split_at(d);
            let (acc_f, rest) = rest.split_at(d);
            let gates = h.iter_mut().zip(acc_i).zip(acc_f);
            match &layer.gamma {
                Some(gamma) => {
                    for (((h, &i), &f), &gamma) in gates.zip(gamma) {
                        let f = gamma + (1.0 - gamma) * sigmoid(f as f32 * k_f);
                        *h = f * *h + silu(i as f32 * k_i) * (1.0 - f);
                    }
                }
                None => {
                    for ((h, &i), &f) in gates {
                        let f = sigmoid(f as f32 * k_f);
                        *h = f * *h + silu(i as f32 * k_i) * (1.0 - f);
                    }
                }
            }
            for (g, &a) in s.g.iter_mut().zip(&rest[..d]) {
                *g = a as f32 * k_g;
            }
            rms_norm(&s.g, &layer.g_norm, eps, &mut s.o_in);
            for (o, h) in s.o_in.iter_mut().zip(h.iter()) {
                *o *= silu(*h);
            }
            let inv = inv_rms(&s.o_in, eps);
            let k_o = quantize_input(&layer.o, &s.o_in, inv, &mut s.xn, &mut s.act[0]);
            layer.o.w.gemv(&s.act[0], &mut s.acc[..d]);
            for (x, a) in s.x.iter_mut().zip(&s.acc[..d]) {
                *x += *a as f32 * k_o;
            }

            // Channel mixer (GLU).
            rms_norm(&s.x, &layer.mlp_norm, eps, &mut s.xa);
            let inv = inv_rms(&s.xa, eps);
            let k_gate = quantize_input(&layer.gate, &s.xa, inv, &mut s.xn, &mut s.act[0]);
            layer.gate.w.gemv(&s.act[0], &mut s.acc[..2 * inter]);
            let (a, b) = s.acc[..2 * inter].split_at(inter);
            for ((out, a), b) in s.glu.iter_mut().zip(a).zip(b) {
                *out = silu(*a as f32 * k_gate) * (*b as f32 * k_gate);
            }
            let inv = inv_rms(&s.glu, eps);
            let k_down = quantize_input(&layer.down, &s.glu, inv, &mut s.xn, &mut s.act_down);
            layer.down.w.gemv(&s.act_down, &mut s.acc[..d]);
            for (x, a) in s.x.iter_mut().zip(&s.acc[..d]) {
                *x += *a as f32 * k_down;
            }
        }
        rms_norm(&s.x, &m.norm, eps, &mut s.xa);
        let inv = inv_rms(&s.xa, eps);
        let k_head = quantize_input(&m.lm_head, &s.xa, inv, &mut s.xn, &mut s.act[0]);
        let v = m.config.vocab_size;
        m.lm_head.w.gemv(&s.act[0], &mut s.acc[..v]);
        for (l, a) in s.logits.iter_mut().zip(&s.acc[..v]) {
            *l = *a as f32 * k_head;
        }
    }
}

impl Decoder for MmFreeEngine {
    fn config(&self) -> &MmFreeConfig {
        MmFreeEngine::config(self)
    }
    fn reset(&mut self) {
        MmFreeEngine::reset(self)
    }
    fn step(&mut self, token: u32) -> Result<&[f32]> {
        MmFreeEngine::step(self, token)
    }
    fn state(&self) -> &[Vec<f32>] {
        MmFreeEngine::state(self)
    }
    fn set_state(&mut self, state: &[Vec<f32>]) -> Result<()> {
        MmFreeEngine::set_state(self, state)
    }
}

/// A ternary matrix in `f32`: the values `W_t` in {-1, 0, 1}, row-major `[rows, cols]`, and
/// the scale `s_w` (the dequantised weight is `W_t / s_w`).
#[derive(Debug, Clone)]
struct FloatTernary {
    cols: usize,
    t: Vec<f32>,
    s_w: f32,
}

impl FloatTernary {
    fn new(spec: &TensorSpec, data: &[f32]) -> Result<Self> {
        let s_w = weight_scale(data);
        Ok(Self {
            cols: spec.shape[1],
            t: data.iter().map(|&v| ternarize(v, s_w) as f32).collect(),
            s_w,
        })
    }
}

/// The quantised model in plain `f32` loops, to check [`MmFreeEngine`] against (see the
/// [module docs](self)). Slow and four bytes per weight: for tests.
///
/// BitLinear here is `y = (x_q · W_tᵀ) / (s · s_w)` with `x_q` and `W_t` held as `f32`: every
/// product and partial sum is an integer below 2²⁴, so the `f32` dot product is exact and the
/// reference rounds exactly where the packed engine does. That matters: a quantised model is
/// chaotic at rounding ties, and one activation rounded the other way at one step shifts later
/// logits by up to a few percent, so engines that differ in the last bit of `y` cannot be
/// compared tightly over many tokens.
#[derive(Debug, Clone)]
pub struct ReferenceEngine {
    model: Model<FloatTernary>,
    state: Vec<Vec<f32>>,
    logits: Vec<f32>,
}

impl ReferenceEngine {
    /// Ternarises `weights` into dequantised `f32` matrices; errors on a missing or
    /// misshapen tensor.
    pub fn new(weights: &MmFreeWeights) -> Result<Self> {
        let model = Model::build(&weights.config, tensor_from(weights), FloatTernary::new)?;
        Ok(Self {
            state: model.zero_state(),
            logits: vec![0.0; model.config.vocab_size],
            model,
        })
    }

    /// The model's configuration.
    pub fn config(&self) -> &MmFreeConfig {
        &self.model.config
    }

    /// Zeroes the recurrent state of every layer.
    pub fn reset(&mut self) {
        self.state = self.model.zero_state();
    }

    /// The recurrent state: one `hidden_size` vector per layer.
    pub fn state(&self) -> &[Vec<f32>] {
        &self.state
    }

    /// Restores a state taken with [`state`](Self::state); errors if its shape differs.
    pub fn set_state(&mut self, state: &[Vec<f32>]) -> Result<()> {
        copy_state(&mut self.state, state)
    }

    /// BitLinear: RMSNorm, activations rounded to integers `x_q` with scale `s`, then each
    /// weight row's dot product with `x_q`, divided by `s · s_w`.
    fn bit_linear(lin: &Linear<FloatTernary>, x: &[f32], eps: f32) -> Vec<f32> {
        let mut xn = vec![0.0; x.len()];
        rms_norm(x, &lin.norm, eps, &mut xn);
        let mut max = 0.0f32;
        for v in &xn {
            max = max.max(v.abs());
        }
        let s = 127.0 / max.max(1e-5);
        let xq: Vec<f32> = xn
            .iter()
            .map(|v| (v * s).round().clamp(-128.0, 127.0))
            .collect();
        let k = 1.0 / (s * lin.w.s_w);
        lin.w
            .t
            .chunks(lin.w.cols)
            .map(|row| {
                let mut dot = 0.0f32;
                for c in 0..row.len() {
                    dot += row[c] * xq[c];
                }
                dot * k
            })
            .collect()
    }

    /// Feeds one token and returns the logits of the next one; errors on a token id not
    /// below `vocab_size`.
    pub fn step(&mut self, token: u32) -> Result<&[f32]> {
        let m = &self.model;
        let t = m.check_token(token)?;
        let (d, eps) = (m.config.hidden_size, m.eps);
        let mut x = m.embeddings[t * d..(t + 1) * d].to_vec();
        let mut xa = vec![0.0; d];
        for (layer, h) in m.layers.iter().zip(self.state.iter_mut()) {
            rms_norm(&x, &layer.attn_norm, eps, &mut xa);
            let i = Self::bit_linear(&layer.i, &xa, eps);
            let f_raw = Self::bit_linear(&layer.f, &xa, eps);
            let g = Self::bit_linear(&layer.g, &xa, eps);
            for c in 0..d {
                let mut f = sigmoid(f_raw[c]);
                if let Some(gamma) = &layer.gamma {
                    f = gamma[c] + (1.0 - gamma[c]) * f;
                }
                h[c] = f * h[c] + silu(i[c]) * (1.0 - f);
            }
            let mut o_in = vec![0.0; d];
            rms_norm(&g, &layer.g_norm, eps, &mut o_in);
            for c in 0..d {
                o_in[c] *= silu(h[c]);
            }
            let o = Self::bit_linear(&layer.o, &o_in, eps);
            for c in 0..d {
                x[c] += o[c];
            }

            rms_norm(&x, &layer.mlp_norm, eps, &mut xa);
            let gate = Self::bit_linear(&layer.gate, &xa, eps);
            let inter = gate.len() / 2;
            let glu: Vec<f32> = (0..inter)
                .map(|k| silu(gate[k]) * gate[inter + k])
                .collect();
            let down = Self::bit_linear(&layer.down, &glu, eps);
            for c in 0..d {
                x[c] += down[c];
            }
        }
        rms_norm(&x, &m.norm, eps, &mut xa);
        self.logits = Self::bit_linear(&m.lm_head, &xa, eps);
        Ok(&self.logits)
    }
}

impl Decoder for ReferenceEngine {
    fn config(&self) -> &MmFreeConfig {
        ReferenceEngine::config(self)
    }
    fn reset(&mut self) {
        ReferenceEngine::reset(self)
    }
    fn step(&mut self, token: u32) -> Result<&[f32]> {
        ReferenceEngine::step(self, token)
    }
    fn state(&self) -> &[Vec<f32>] {
        ReferenceEngine::state(self)
    }
    fn set_state(&mut self, state: &[Vec<f32>]) -> Result<()> {
        ReferenceEngine::set_state(self, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_is_accurate() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.00731;
        }
        // A few ulp (f32 epsilon is 1.19e-7).
        assert!(worst < 4e-7, "worst relative error {worst}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(1000.0).is_finite());
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(sigmoid(-200.0).max(0.0), sigmoid(-200.0));
        assert_eq!(sigmoid(200.0), 1.0);
    }
}
