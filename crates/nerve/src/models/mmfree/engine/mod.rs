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

pub use batch::Stream;
pub use float::{FloatEngine, FloatTernaryMatrix};
pub use packed::MmFreeEngine;
pub use params::forget_lower_bounds;

use math::{inv_rms, rms_norm, scale_by, sigmoid, silu};
use params::{copy_state, Linear, Model};

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
