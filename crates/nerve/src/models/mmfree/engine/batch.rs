//! Batched decoding: N sequences, each with its own recurrent state, advanced one token each
//! per step, every BitLinear weight read once per step for all of them
//! ([`BitLinearMatrix::gemv_batch`]); the float work between the GEMVs runs for the streams
//! in parallel. Sequences may join and leave between steps.

use rayon::prelude::*;

use super::math::{inv_rms, rms_norm, sigmoid, silu};
use super::params::Layer;
use super::{quantize_input, BitLinearMatrix, Engine, Scratch};
use crate::error::{Error, Result};
#[cfg(target_arch = "x86_64")]
use crate::kernels::ternary::Kernel;
use crate::kernels::ternary::QuantizedActivations;

/// One sequence of a batch: its recurrent state (one `d`-vector per layer), its working
/// buffers and its last logits.
#[derive(Debug, Clone)]
pub struct Stream {
    state: Vec<Vec<f32>>,
    scratch: Scratch,
}

impl Stream {
    /// The logits after the last [`Engine::step_batch`] this stream took part in.
    pub fn logits(&self) -> &[f32] {
        &self.scratch.logits
    }

    /// The recurrent state, one `d`-vector per layer.
    pub fn state(&self) -> &[Vec<f32>] {
        &self.state
    }
}

/// Runs `w` on the activations `pick` selects from each stream into `ys` (`[N, rows]`).
fn gemv_all<M: BitLinearMatrix>(
    w: &M,
    streams: &[&mut Stream],
    pick: impl Fn(&Scratch) -> &QuantizedActivations,
    ys: &mut Vec<i32>,
    rows: usize,
) {
    let xs: Vec<&QuantizedActivations> = streams.iter().map(|s| pick(&s.scratch)).collect();
    ys.resize(xs.len() * rows, 0);
    w.gemv_batch(&xs, ys);
}

impl<M: BitLinearMatrix> Engine<M> {
    /// A new sequence for [`step_batch`](Self::step_batch), its state at zero.
    pub fn new_stream(&self) -> Stream {
        Stream {
            state: self.model.zero_state(),
            scratch: Scratch::new(&self.model.config),
        }
    }

    /// Feeds `tokens[s]` to `streams[s]` for every stream, all in one pass over the weights;
    /// each stream's logits are then in [`Stream::logits`]. The results equal those of
    /// [`step`](Self::step) on each sequence alone. Errors (changing nothing) on a token id
    /// not below `vocab_size` or on lengths that differ.
    pub fn step_batch(&self, streams: &mut [&mut Stream], tokens: &[u32]) -> Result<()> {
        // The float work is compiled for the kernel's instruction set, as in `step`.
        #[cfg(target_arch = "x86_64")]
        match Kernel::detect() {
            // SAFETY: `detect` only returns kernels this CPU supports.
            Kernel::Avx512 => unsafe { self.step_batch_avx512(streams, tokens) },
            // SAFETY: as above.
            Kernel::Avx2 => unsafe { self.step_batch_avx2(streams, tokens) },
            Kernel::Scalar => self.step_batch_inner(streams, tokens),
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.step_batch_inner(streams, tokens)
    }

    /// # Safety
    /// The CPU supports AVX-512F and AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn step_batch_avx512(&self, streams: &mut [&mut Stream], tokens: &[u32]) -> Result<()> {
        self.step_batch_inner(streams, tokens)
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn step_batch_avx2(&self, streams: &mut [&mut Stream], tokens: &[u32]) -> Result<()> {
        self.step_batch_inner(streams, tokens)
    }

    #[inline(always)]
    fn step_batch_inner(&self, streams: &mut [&mut Stream], tokens: &[u32]) -> Result<()> {
        if streams.len() != tokens.len() {
            return Err(Error::invalid(
                "batch",
                format!("{} streams but {} tokens", streams.len(), tokens.len()),
            ));
        }
        let ids = tokens
            .iter()
            .map(|&t| self.model.check_token(t))
            .collect::<Result<Vec<usize>>>()?;
        let m = &self.model;
        let (d, eps) = (m.config.hidden_size, m.eps);
        for (s, &t) in streams.iter_mut().zip(&ids) {
            s.scratch
                .x
                .copy_from_slice(&m.embeddings[t * d..(t + 1) * d]);
        }
        let mut ys = Vec::new();
        for (l, layer) in m.layers.iter().enumerate() {
            self.layer_batch(l, layer, streams, &mut ys);
        }
        let v = m.config.vocab_size;
        let mut k_head = Vec::with_capacity(streams.len());
        for st in streams.iter_mut() {
            let s = &mut st.scratch;
            rms_norm(&s.x, &m.norm, eps, &mut s.xa);
            let inv = inv_rms(&s.xa, eps);
            k_head.push(quantize_input(
                &m.lm_head,
                &s.xa,
                inv,
                &mut s.xn,
                &mut s.act[0],
            ));
        }
        gemv_all(&m.lm_head.w, streams, |s| &s.act[0], &mut ys, v);
        for ((st, k), y) in streams.iter_mut().zip(k_head).zip(ys.chunks(v)) {
            for (l, a) in st.scratch.logits.iter_mut().zip(y) {
                *l = *a as f32 * k;
            }
        }
        Ok(())
    }

    /// One layer for every stream, in the order of [`step`](Self::step)'s loop.
    #[inline(always)]
    fn layer_batch(
        &self,
        l: usize,
        layer: &Layer<M>,
        streams: &mut [&mut Stream],
        ys: &mut Vec<i32>,
    ) {
        let m = &self.model;
        let (d, inter, eps) = (m.config.hidden_size, m.config.intermediate(), m.eps);
        let n = streams.len();
        let mut k = vec![[0f32; 3]; n];
        streams.par_iter_mut().zip(&mut k).for_each(|(st, k)| {
            let s = &mut st.scratch;
            rms_norm(&s.x, &layer.attn_norm, eps, &mut s.xa);
            let inv = inv_rms(&s.xa, eps);
            let [a_i, a_f, a_g] = &mut s.act;
            *k = [
                quantize_input(&layer.i, &s.xa, inv, &mut s.xn, a_i),
                quantize_input(&layer.f, &s.xa, inv, &mut s.xn, a_f),
                quantize_input(&layer.g, &s.xa, inv, &mut s.xn, a_g),
            ];
        });
        let (mut yi, mut yf) = (Vec::new(), Vec::new());
        gemv_all(&layer.i.w, streams, |s| &s.act[0], &mut yi, d);
        gemv_all(&layer.f.w, streams, |s| &s.act[1], &mut yf, d);
        gemv_all(&layer.g.w, streams, |s| &s.act[2], ys, d);
        let mut k_o = vec![0f32; n];
        let acc = &ys[..];
        streams
            .par_iter_mut()
            .zip(&mut k_o)
            .enumerate()
            .for_each(|(j, (st, k_o))| {
                let [k_i, k_f, k_g] = k[j];
                let (acc_i, acc_f, acc_g) =
                    (&yi[j * d..][..d], &yf[j * d..][..d], &acc[j * d..][..d]);
                let Stream { state, scratch: s } = &mut **st;
                let h = &mut state[l];
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
                for (g, &a) in s.g.iter_mut().zip(acc_g) {
                    *g = a as f32 * k_g;
                }
                rms_norm(&s.g, &layer.g_norm, eps, &mut s.o_in);
                for (o, h) in s.o_in.iter_mut().zip(h.iter()) {
                    *o *= silu(*h);
                }
                let inv = inv_rms(&s.o_in, eps);
                *k_o = quantize_input(&layer.o, &s.o_in, inv, &mut s.xn, &mut s.act[0]);
            });
        gemv_all(&layer.o.w, streams, |s| &s.act[0], ys, d);
        let mut k_gate = vec![0f32; n];
        let acc = &ys[..];
        streams
            .par_iter_mut()
            .zip(&mut k_gate)
            .enumerate()
            .for_each(|(j, (st, k_gate))| {
                let s = &mut st.scratch;
                for (x, a) in s.x.iter_mut().zip(&acc[j * d..][..d]) {
                    *x += *a as f32 * k_o[j];
                }
                rms_norm(&s.x, &layer.mlp_norm, eps, &mut s.xa);
                let inv = inv_rms(&s.xa, eps);
                *k_gate = quantize_input(&layer.gate, &s.xa, inv, &mut s.xn, &mut s.act[0]);
            });
        gemv_all(&layer.gate.w, streams, |s| &s.act[0], ys, 2 * inter);
        let mut k_down = vec![0f32; n];
        let acc = &ys[..];
        streams
            .par_iter_mut()
            .zip(&mut k_down)
            .enumerate()
            .for_each(|(j, (st, k_down))| {
                let s = &mut st.scratch;
                let (a, b) = acc[j * 2 * inter..][..2 * inter].split_at(inter);
                for ((out, a), b) in s.glu.iter_mut().zip(a).zip(b) {
                    *out = silu(*a as f32 * k_gate[j]) * (*b as f32 * k_gate[j]);
                }
                let inv = inv_rms(&s.glu, eps);
                *k_down = quantize_input(&layer.down, &s.glu, inv, &mut s.xn, &mut s.act_down);
            });
        gemv_all(&layer.down.w, streams, |s| &s.act_down, ys, d);
        let acc = &ys[..];
        streams.par_iter_mut().enumerate().for_each(|(j, st)| {
            for (x, a) in st.scratch.x.iter_mut().zip(&acc[j * d..][..d]) {
                *x += *a as f32 * k_down[j];
            }
        });
    }
}
