//! Token-by-token CPU decoding of an HGRNBit model.
//!
//! One decoding loop, [`Engine`], runs on either kind of BitLinear matrix
//! ([`BitLinearMatrix`]):
//!
//! - [`MmFreeEngine`] is the fast path: every BitLinear weight is ternarised once at load and
//!   packed at 1.78 bits per weight
//!   ([`TernaryMatrix`](crate::kernels::ternary::TernaryMatrix)), all matrices back to back in one
//!   huge-page buffer in the order a token uses them
//!   ([`TernaryArena`](crate::kernels::ternary::TernaryArena)); a token quantises each
//!   projection input to int8 and runs the add/subtract-only GEMV of
//!   [`crate::kernels::ternary`], parallel in the current rayon pool (pick the thread count
//!   with `ThreadPool::install`). The packed weights are streamed once per token.
//! - [`FloatEngine`] holds the same ternary weights as `f32` and multiplies them with plain
//!   dot products (BitLinear as `y = (x_q · W_tᵀ) / (s · s_w)` with integer-valued `f32`
//!   operands), to check the packing and the kernels.
//!
//! Both keep only the recurrent state `h` (one `d`-vector per layer) between tokens, so memory
//! does not grow with the context; [`Decoder::state`] and [`Decoder::set_state`] snapshot and
//! restore it to fork a generation.

mod batch;
mod float;
mod math;
mod packed;
mod params;

pub use batch::{Stream, PREFILL_CHUNK};
pub use float::{FloatEngine, FloatTernaryMatrix};
pub use packed::MmFreeEngine;
pub use params::forget_lower_bounds;

use math::{inv_rms, rms_norm, scale_by, sigmoid, silu};
use params::{copy_state, Layer, Linear, Model};

use super::config::MmFreeConfig;
use crate::error::Result;
#[cfg(target_arch = "x86_64")]
use crate::kernels::ternary::Kernel;
use crate::kernels::ternary::QuantizedActivations;

/// What the CLI needs from a decoding engine; implemented by every [`Engine`]
/// ([`MmFreeEngine`] and [`FloatEngine`]).
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

/// A BitLinear weight matrix `W_t` (values in {-1, 0, 1}, scale `s_w`) as an [`Engine`]
/// stores and multiplies it: the one thing in which the engines differ.
pub trait BitLinearMatrix: Sync {
    /// The weight scale `s_w` (the dequantised weight is `W_t / s_w`).
    fn scale(&self) -> f32;
    /// `y[r] = Σ_c W_t[r, c] · x_q[c]`, exactly.
    fn gemv(&self, x: &QuantizedActivations, y: &mut [i32]);
    /// [`gemv`](Self::gemv) for N vectors, `ys` being `[N, rows]`; by default one call each.
    fn gemv_batch(&self, xs: &[&QuantizedActivations], ys: &mut [i32]) {
        let rows = ys.len() / xs.len().max(1);
        for (x, y) in xs.iter().zip(ys.chunks_mut(rows.max(1))) {
            self.gemv(x, y);
        }
    }
}

/// Per-token buffers of an [`Engine`], allocated once.
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
fn quantize_input<M: BitLinearMatrix>(
    lin: &Linear<M>,
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

/// The float work between a layer's GEMVs, one function per stretch, shared by
/// [`Engine::step`] and [`Engine::step_batch`] so that both compute exactly the same thing.
impl Scratch {
    /// Token mixer input: `xa = RMSNorm(x)`, quantised for the i, f and g projections (which
    /// differ only in their norm weights); returns their factors.
    #[inline(always)]
    fn mixer_inputs<M: BitLinearMatrix>(&mut self, layer: &Layer<M>, eps: f32) -> [f32; 3] {
        rms_norm(&self.x, &layer.attn_norm, eps, &mut self.xa);
        let inv = inv_rms(&self.xa, eps);
        let [a_i, a_f, a_g] = &mut self.act;
        [
            quantize_input(&layer.i, &self.xa, inv, &mut self.xn, a_i),
            quantize_input(&layer.f, &self.xa, inv, &mut self.xn, a_f),
            quantize_input(&layer.g, &self.xa, inv, &mut self.xn, a_g),
        ]
    }

    /// Output gate: `o_in = RMSNorm(g) ⊙ silu(h)` from the g projection `acc_g`, quantised for
    /// the o projection into `act[0]`; returns its factor.
    #[inline(always)]
    fn output_gate<M: BitLinearMatrix>(
        &mut self,
        layer: &Layer<M>,
        acc_g: &[i32],
        k_g: f32,
        h: &[f32],
        eps: f32,
    ) -> f32 {
        for (g, &a) in self.g.iter_mut().zip(acc_g) {
            *g = a as f32 * k_g;
        }
        rms_norm(&self.g, &layer.g_norm, eps, &mut self.o_in);
        for (o, h) in self.o_in.iter_mut().zip(h) {
            *o *= silu(*h);
        }
        let inv = inv_rms(&self.o_in, eps);
        quantize_input(&layer.o, &self.o_in, inv, &mut self.xn, &mut self.act[0])
    }

    /// Adds the o projection to the residual stream, then the channel mixer's input: RMSNorm,
    /// quantised for the gate/up projection into `act[0]`; returns its factor.
    #[inline(always)]
    fn mlp_input<M: BitLinearMatrix>(
        &mut self,
        layer: &Layer<M>,
        acc_o: &[i32],
        k_o: f32,
        eps: f32,
    ) -> f32 {
        add_scaled(&mut self.x, acc_o, k_o);
        rms_norm(&self.x, &layer.mlp_norm, eps, &mut self.xa);
        let inv = inv_rms(&self.xa, eps);
        quantize_input(&layer.gate, &self.xa, inv, &mut self.xn, &mut self.act[0])
    }

    /// GLU of the gate/up projection `acc` (`[2 · inter]`), quantised for the down projection
    /// into `act_down`; returns its factor.
    #[inline(always)]
    fn glu_input<M: BitLinearMatrix>(
        &mut self,
        layer: &Layer<M>,
        acc: &[i32],
        k_gate: f32,
        eps: f32,
    ) -> f32 {
        let (a, b) = acc.split_at(acc.len() / 2);
        for ((out, a), b) in self.glu.iter_mut().zip(a).zip(b) {
            *out = silu(*a as f32 * k_gate) * (*b as f32 * k_gate);
        }
        let inv = inv_rms(&self.glu, eps);
        quantize_input(
            &layer.down,
            &self.glu,
            inv,
            &mut self.xn,
            &mut self.act_down,
        )
    }

    /// Final norm, quantised for the LM head into `act[0]`; returns its factor.
    #[inline(always)]
    fn head_input<M: BitLinearMatrix>(&mut self, m: &Model<M>) -> f32 {
        rms_norm(&self.x, &m.norm, m.eps, &mut self.xa);
        let inv = inv_rms(&self.xa, m.eps);
        quantize_input(&m.lm_head, &self.xa, inv, &mut self.xn, &mut self.act[0])
    }
}

/// The MLGRU recurrence `h ← f ⊙ h + (1 − f) ⊙ silu(i)`, the forget gate lower-bounded by γ
/// where the layer has one. Zipped slices and one loop per case, so that the loops vectorise.
#[inline(always)]
fn mlgru_update(
    h: &mut [f32],
    acc_i: &[i32],
    acc_f: &[i32],
    gamma: Option<&[f32]>,
    k_i: f32,
    k_f: f32,
) {
    let gates = h.iter_mut().zip(acc_i).zip(acc_f);
    match gamma {
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
}

/// `x += acc · k`: a projection's output added to the residual stream.
#[inline(always)]
fn add_scaled(x: &mut [f32], acc: &[i32], k: f32) {
    for (x, a) in x.iter_mut().zip(acc) {
        *x += *a as f32 * k;
    }
}

/// `out = acc · k`.
#[inline(always)]
fn scale_into(out: &mut [f32], acc: &[i32], k: f32) {
    for (o, a) in out.iter_mut().zip(acc) {
        *o = *a as f32 * k;
    }
}

/// Token-by-token decoding of an HGRNBit model whose BitLinear matrices are `M` (see the
/// [module docs](self)).
#[derive(Debug, Clone)]
pub struct Engine<M> {
    model: Model<M>,
    state: Vec<Vec<f32>>,
    scratch: Scratch,
}

impl<M: BitLinearMatrix> Engine<M> {
    fn from_model(model: Model<M>) -> Self {
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

    /// Feeds one token and returns the logits of the next one (`vocab_size` values); errors
    /// on a token id not below `vocab_size`. Allocates nothing on packed weights.
    pub fn step(&mut self, token: u32) -> Result<&[f32]> {
        let t = self.model.check_token(token)?;
        // The float work is compiled for the same instruction set as the GEMV kernel, so
        // `NERVE_ISA=avx2` on an AVX-512 machine measures what an AVX2-only CPU runs.
        #[cfg(target_arch = "x86_64")]
        match Kernel::detect() {
            // SAFETY: `detect` only returns kernels this CPU supports.
            Kernel::Avx512 => unsafe { self.forward_avx512(t) },
            // SAFETY: as above.
            Kernel::Avx2 => unsafe { self.forward_avx2(t) },
            Kernel::Scalar => self.forward(t),
        }
        #[cfg(not(target_arch = "x86_64"))]
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

    /// [`forward`](Self::forward) compiled for AVX2 and FMA (8 lanes).
    ///
    /// # Safety
    /// The CPU supports AVX2 (what [`Kernel::Avx2`] checks) and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn forward_avx2(&mut self, t: usize) {
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
        // The accumulators are taken out so that the scratch methods can borrow the rest.
        let mut acc = std::mem::take(&mut s.acc);
        for (l, (layer, h)) in m.layers.iter().zip(state.iter_mut()).enumerate() {
            // The packed weights streamed since this layer's vectors were last read (a token
            // ago) have pushed them out of cache; ask for the next layer's now so they arrive
            // while this layer's GEMVs run.
            if let Some(next) = m.layers.get(l + 1) {
                next.prefetch_vectors();
            }
            // Token mixer (MLGRU): the i, f and g projections share their input.
            let [k_i, k_f, k_g] = s.mixer_inputs(layer, eps);
            {
                let (acc_i, rest) = acc.split_at_mut(d);
                let (acc_f, rest) = rest.split_at_mut(d);
                let acc_g = &mut rest[..d];
                let [a_i, a_f, a_g] = &s.act;
                rayon::join(
                    || layer.i.w.gemv(a_i, acc_i),
                    || rayon::join(|| layer.f.w.gemv(a_f, acc_f), || layer.g.w.gemv(a_g, acc_g)),
                );
            }
            let (acc_i, rest) = acc.split_at(d);
            let (acc_f, acc_g) = rest.split_at(d);
            mlgru_update(h, acc_i, acc_f, layer.gamma.as_deref(), k_i, k_f);
            let k_o = s.output_gate(layer, &acc_g[..d], k_g, h, eps);
            layer.o.w.gemv(&s.act[0], &mut acc[..d]);
            // Channel mixer (GLU).
            let k_gate = s.mlp_input(layer, &acc[..d], k_o, eps);
            layer.gate.w.gemv(&s.act[0], &mut acc[..2 * inter]);
            let k_down = s.glu_input(layer, &acc[..2 * inter], k_gate, eps);
            layer.down.w.gemv(&s.act_down, &mut acc[..d]);
            add_scaled(&mut s.x, &acc[..d], k_down);
        }
        let k_head = s.head_input(m);
        let v = m.config.vocab_size;
        m.lm_head.w.gemv(&s.act[0], &mut acc[..v]);
        scale_into(&mut s.logits, &acc[..v], k_head);
        s.acc = acc;
    }
}

impl<M: BitLinearMatrix> Decoder for Engine<M> {
    fn config(&self) -> &MmFreeConfig {
        Engine::config(self)
    }
    fn reset(&mut self) {
        Engine::reset(self)
    }
    fn step(&mut self, token: u32) -> Result<&[f32]> {
        Engine::step(self, token)
    }
    fn state(&self) -> &[Vec<f32>] {
        Engine::state(self)
    }
    fn set_state(&mut self, state: &[Vec<f32>]) -> Result<()> {
        Engine::set_state(self, state)
    }
}
