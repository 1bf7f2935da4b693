//! Batched decoding: N sequences, each with its own recurrent state, advanced one token each
//! per step, every BitLinear weight read once per step for all of them
//! ([`BitLinearMatrix::gemv_batch`]); the float work between the GEMVs runs for the streams
//! in parallel. Sequences may join and leave between steps. A prompt is read by
//! [`Engine::prefill`]: its tokens go through each layer together, as a batch whose MLGRU
//! updates are chained.

use rayon::prelude::*;

use super::params::Layer;
use super::{add_scaled, mlgru_update, scale_into, BitLinearMatrix, Engine, Scratch};
use crate::error::{Error, Result};
#[cfg(target_arch = "x86_64")]
use crate::kernels::ternary::Kernel;
use crate::kernels::ternary::QuantizedActivations;

/// Tokens of a prompt read per pass over the weights by [`Engine::prefill`].
pub const PREFILL_CHUNK: usize = 16;

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

    /// Reads `tokens` (a prompt) into `stream`: the same state and last logits, bit for bit,
    /// as [`step_batch`](Self::step_batch) on them one at a time, but [`PREFILL_CHUNK`]
    /// tokens per pass over the weights (the projections of a token do not depend on the
    /// state, only the MLGRU update does), and the LM head for the last token only. Errors
    /// (changing nothing) on a token id not below `vocab_size`.
    pub fn prefill(&self, stream: &mut Stream, tokens: &[u32]) -> Result<()> {
        #[cfg(target_arch = "x86_64")]
        match Kernel::detect() {
            // SAFETY: `detect` only returns kernels this CPU supports.
            Kernel::Avx512 => unsafe { self.prefill_avx512(stream, tokens) },
            // SAFETY: as above.
            Kernel::Avx2 => unsafe { self.prefill_avx2(stream, tokens) },
            Kernel::Scalar => self.prefill_inner(stream, tokens),
        }
        #[cfg(not(target_arch = "x86_64"))]
        self.prefill_inner(stream, tokens)
    }

    /// # Safety
    /// The CPU supports AVX-512F and AVX-512BW.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f,avx512bw")]
    unsafe fn prefill_avx512(&self, stream: &mut Stream, tokens: &[u32]) -> Result<()> {
        self.prefill_inner(stream, tokens)
    }

    /// # Safety
    /// The CPU supports AVX2 and FMA.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn prefill_avx2(&self, stream: &mut Stream, tokens: &[u32]) -> Result<()> {
        self.prefill_inner(stream, tokens)
    }

    #[inline(always)]
    fn prefill_inner(&self, stream: &mut Stream, tokens: &[u32]) -> Result<()> {
        let ids = tokens
            .iter()
            .map(|&t| self.model.check_token(t))
            .collect::<Result<Vec<usize>>>()?;
        let m = &self.model;
        let (d, v) = (m.config.hidden_size, m.config.vocab_size);
        // One working stream per token of a chunk; the sequence's state runs through them.
        let mut tokens_of_chunk: Vec<Stream> = Vec::new();
        let mut ys = Vec::new();
        for chunk in ids.chunks(PREFILL_CHUNK) {
            tokens_of_chunk.truncate(chunk.len());
            while tokens_of_chunk.len() < chunk.len() {
                tokens_of_chunk.push(self.new_stream());
            }
            for (s, &t) in tokens_of_chunk.iter_mut().zip(chunk) {
                s.scratch
                    .x
                    .copy_from_slice(&m.embeddings[t * d..(t + 1) * d]);
            }
            for (h, from) in tokens_of_chunk[0].state.iter_mut().zip(&stream.state) {
                h.copy_from_slice(from);
            }
            let mut chunk_streams: Vec<&mut Stream> = tokens_of_chunk.iter_mut().collect();
            for (l, layer) in m.layers.iter().enumerate() {
                self.layer_batch(l, layer, &mut chunk_streams, &mut ys, true);
            }
            let last = chunk_streams.last().expect("chunks are not empty");
            for (h, from) in stream.state.iter_mut().zip(&last.state) {
                h.copy_from_slice(from);
            }
        }
        if let Some(last) = tokens_of_chunk.last_mut() {
            let k_head = last.scratch.head_input(m);
            ys.resize(v, 0);
            m.lm_head.w.gemv(&last.scratch.act[0], &mut ys[..v]);
            scale_into(&mut stream.scratch.logits, &ys[..v], k_head);
        }
        Ok(())
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
            self.layer_batch(l, layer, streams, &mut ys, false);
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
    /// of float work run for the streams in parallel. `chained`: the streams are consecutive
    /// tokens of one sequence, so each MLGRU update starts from the state the previous one
    /// left (the only place where a token depends on the ones before it).
    #[inline(always)]
    fn layer_batch(
        &self,
        l: usize,
        layer: &Layer<M>,
        streams: &mut [&mut Stream],
        ys: &mut Vec<i32>,
        chained: bool,
    ) {
        let m = &self.model;
        let (d, inter, eps) = (m.config.hidden_size, m.config.intermediate(), m.eps);
        let k = per_stream(streams, |_, st| st.scratch.mixer_inputs(layer, eps));
        let (mut yi, mut yf) = (Vec::new(), Vec::new());
        gemv_all(&layer.i.w, streams, |s| &s.act[0], &mut yi, d);
        gemv_all(&layer.f.w, streams, |s| &s.act[1], &mut yf, d);
        gemv_all(&layer.g.w, streams, |s| &s.act[2], ys, d);
        let update = |j: usize, h: &mut [f32]| {
            let [k_i, k_f, _] = k[j];
            let (yi, yf) = (&yi[j * d..][..d], &yf[j * d..][..d]);
            mlgru_update(h, yi, yf, layer.gamma.as_deref(), k_i, k_f);
        };
        if chained {
            for j in 0..streams.len() {
                if j > 0 {
                    let (before, after) = streams.split_at_mut(j);
                    after[0].state[l].copy_from_slice(&before[j - 1].state[l]);
                }
                update(j, &mut streams[j].state[l]);
            }
        }
        let k_o = per_stream(streams, |j, st| {
            let Stream { state, scratch } = st;
            if !chained {
                update(j, &mut state[l]);
            }
            scratch.output_gate(layer, &ys[j * d..][..d], k[j][2], &state[l], eps)
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
