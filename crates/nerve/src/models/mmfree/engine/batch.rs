//! Batched decoding: N sequences, each with its own recurrent state, advanced one token each
//! per step, every BitLinear weight read once per step for all of them
//! ([`BitLinearMatrix::gemv_batch`]); the float work between the GEMVs runs for the streams
//! in parallel. Sequences may join and leave between steps.

use rayon::prelude::*;

use super::params::Layer;
use super::{add_scaled, mlgru_update, scale_into, BitLinearMatrix, Engine, Scratch};
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
        let d = m.config.hidden_size;
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
        let k_head = per_stream(streams, |_, st| st.scratch.head_input(m));
        gemv_all(&m.lm_head.w, streams, |s| &s.act[0], &mut ys, v);
        per_stream(streams, |j, st| {
            scale_into(&mut st.scratch.logits, &ys[j * v..][..v], k_head[j])
        });
        Ok(())
    }

    /// One layer for every stream, in the order of [`step`](Self::step)'s loop, each stretch
    /// of float work run for the streams in parallel.
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
        let k = per_stream(streams, |_, st| st.scratch.mixer_inputs(layer, eps));
        let (mut yi, mut yf) = (Vec::new(), Vec::new());
        gemv_all(&layer.i.w, streams, |s| &s.act[0], &mut yi, d);
        gemv_all(&layer.f.w, streams, |s| &s.act[1], &mut yf, d);
        gemv_all(&layer.g.w, streams, |s| &s.act[2], ys, d);
        let k_o = per_stream(streams, |j, st| {
            let [k_i, k_f, k_g] = k[j];
            let Stream { state, scratch } = st;
            let h = &mut state[l];
            mlgru_update(
                h,
                &yi[j * d..][..d],
                &yf[j * d..][..d],
                layer.gamma.as_deref(),
                k_i,
                k_f,
            );
            scratch.output_gate(layer, &ys[j * d..][..d], k_g, h, eps)
        });
        gemv_all(&layer.o.w, streams, |s| &s.act[0], ys, d);
        let k_gate = per_stream(streams, |j, st| {
            st.scratch.mlp_input(layer, &ys[j * d..][..d], k_o[j], eps)
        });
        gemv_all(&layer.gate.w, streams, |s| &s.act[0], ys, 2 * inter);
        let k_down = per_stream(streams, |j, st| {
            st.scratch
                .glu_input(layer, &ys[j * 2 * inter..][..2 * inter], k_gate[j], eps)
        });
        gemv_all(&layer.down.w, streams, |s| &s.act_down, ys, d);
        per_stream(streams, |j, st| {
            add_scaled(&mut st.scratch.x, &ys[j * d..][..d], k_down[j])
        });
    }
}

/// Runs `f(j, stream)` for every stream in parallel; returns the results in stream order.
fn per_stream<T: Send>(
    streams: &mut [&mut Stream],
    f: impl Fn(usize, &mut Stream) -> T + Sync,
) -> Vec<T> {
    streams
        .par_iter_mut()
        .enumerate()
        .map(|(j, st)| f(j, st))
        .collect()
}
