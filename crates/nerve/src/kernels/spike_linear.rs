//! Event-driven fully connected layer for spike inputs: `y = x·W + b` where most of `x` is zero.
//!
//! The sparse path adds the weight row of each active input to its output row (`y[m] += x[m,k] ·
//! W[k]`), skipping the zeros a dense GEMM multiplies; the weight gradient sums `x[m,k]·g[m]`
//! over active inputs only (`gW[k] = Σ_m x[m,k]·g[m]`, per-thread partial sums over bands of
//! rows). The active inputs are listed once per call and kept for the backward. The input
//! gradient `g·Wᵀ` is dense either way and is computed only when the input needs it (a data
//! layer's input does not). Which path runs is chosen per call from the measured density of
//! `x`; [`SpikeLinearMode`] forces one for tests and benchmarks. The dense path is Burn's own
//! matmul, so both are checked against each other (`tests/kernels/spike_linear.rs`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::FloatTensorOps;
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::Tensor;
use rayon::prelude::*;
use std::sync::Arc;

use super::{axpy, f32_values, flex_tensor, isa, Isa};

/// Which algorithm [`spike_linear`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeLinearMode {
    /// Sparse below [`SPARSE_BELOW`] density of nonzero inputs, dense above.
    Auto,
    /// Always the dense GEMM.
    Dense,
    /// Always the event-driven accumulation.
    Sparse,
}

/// Input density under which the event-driven path wins on this class of CPU: a row
/// accumulation streams a weight row per active input, about a third as fast per FLOP as a
/// blocked GEMM, so it pays off below roughly one input in four or five.
pub const SPARSE_BELOW: f64 = 0.2;

/// The op as a Burn backend extension: Flex on raw slices, Autodiff over Flex with its reverse
/// pass.
#[backend_extension(Flex, Autodiff)]
pub trait SpikeLinearKernel: Backend {
    /// `x [M, K]`, `w [K, N]`, `b [N]` → `x·w + b`, `[M, N]`.
    fn spike_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mode: SpikeLinearMode,
    ) -> FloatTensor<Self>;
}

fn dims2(t: &FlexTensor) -> (usize, usize) {
    let s = t.layout().shape();
    (s[0], s[1])
}

/// Fraction of nonzero entries.
pub fn density(x: &[f32]) -> f64 {
    if x.is_empty() {
        return 0.0;
    }
    x.iter().filter(|&&v| v != 0.0).count() as f64 / x.len() as f64
}

/// Outputs below which the dense GEMM wins whatever the density: a row accumulation of so few
/// floats is mostly loop overhead.
const MIN_SPARSE_OUTPUTS: usize = 64;

fn use_sparse(mode: SpikeLinearMode, x: &[f32], outputs: usize) -> bool {
    match mode {
        SpikeLinearMode::Sparse => true,
        SpikeLinearMode::Dense => false,
        SpikeLinearMode::Auto => outputs >= MIN_SPARSE_OUTPUTS && density(x) < SPARSE_BELOW,
    }
}

/// Output columns handled together: a `[k, COLS]` slab of the weights (or of their gradient)
/// is a few hundred KB, so it stays in L2 while a task walks its rows, instead of streaming the
/// whole matrix from L3 once per row.
const COLS: usize = 256;

/// The nonzero inputs of a band of consecutive rows of `x`, flat: row `first + i` has
/// `entries[starts[i]..starts[i + 1]]` as `(column, value)`.
struct ActiveRows {
    first: usize,
    starts: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl ActiveRows {
    fn of(x: &[f32], k: usize, first: usize, rows: usize) -> Self {
        let mut starts = Vec::with_capacity(rows + 1);
        let mut entries = Vec::new();
        for r in first..first + rows {
            starts.push(entries.len());
            let row = &x[r * k..(r + 1) * k];
            entries.extend(
                row.iter()
                    .enumerate()
                    .filter(|(_, &v)| v != 0.0)
                    .map(|(kk, &v)| (kk as u32, v)),
            );
        }
        starts.push(entries.len());
        Self {
            first,
            starts,
            entries,
        }
    }

    /// Each row's active inputs, in order.
    fn rows(&self) -> impl Iterator<Item = &[(u32, f32)]> {
        self.starts.windows(2).map(|w| &self.entries[w[0]..w[1]])
    }
}

/// The active inputs of every row of `x [m, k]`, in bands of rows listed in parallel. Built once
/// per layer call and shared by the forward and the weight gradient.
struct Active {
    bands: Vec<ActiveRows>,
    rows_per_band: usize,
}

impl Active {
    fn of(x: &[f32], m: usize, k: usize) -> Self {
        let per = rows_per_task(m);
        let bands = (0..m.div_ceil(per))
            .into_par_iter()
            .map(|band| {
                let first = band * per;
                ActiveRows::of(x, k, first, per.min(m - first))
            })
            .collect();
        Self {
            bands,
            rows_per_band: per,
        }
    }
}

/// The output rows of one band of `x·w + b`, by accumulating the weight rows of active inputs,
/// one column slab at a time.
#[inline(always)]
fn forward_rows(active: &ActiveRows, w: &[f32], b: &[f32], n: usize, out: &mut [f32]) {
    for c0 in (0..n).step_by(COLS) {
        let c1 = (c0 + COLS).min(n);
        for (y, row) in out.chunks_mut(n).zip(active.rows()) {
            let y = &mut y[c0..c1];
            y.copy_from_slice(&b[c0..c1]);
            for &(kk, v) in row {
                let kk = kk as usize;
                axpy(y, v, &w[kk * n + c0..kk * n + c1]);
            }
        }
    }
}

/// Rows whose weight-gradient contributions are summed together before they touch `gw`: their
/// `[ROW_BLOCK, COLS]` slab of `g` (32 KB) stays in L1 while it is read once per active input.
const ROW_BLOCK: usize = 32;

/// Adds `x[r]ᵀ·g[r]` for the rows of `bands` into `gw [k, n]`.
///
/// Per block of rows, the active inputs are grouped by input `k` (a counting sort), and each
/// group's rows of `g` are summed in an L1 buffer first, so each `gw` row slab is read and
/// written once per block and input instead of once per active (row, input) pair: `gw` is
/// 3 MB for W1 and lives in L2 or beyond, the block's `g` slab in L1.
#[inline(always)]
fn weight_grad_partial(bands: &[ActiveRows], g: &[f32], n: usize, gw: &mut [f32]) {
    let k = gw.len() / n.max(1);
    let mut first_of = vec![0u32; k + 1];
    let mut grouped: Vec<(u32, f32)> = Vec::new();
    let mut acc = [0f32; COLS];
    let mut slab = vec![0f32; ROW_BLOCK * COLS];
    for band in bands {
        let rows = band.starts.len() - 1;
        for b0 in (0..rows).step_by(ROW_BLOCK) {
            let b1 = (b0 + ROW_BLOCK).min(rows);
            let entries = &band.entries[band.starts[b0]..band.starts[b1]];
            // Counting sort of the block's entries by input, keeping each entry's row.
            first_of.fill(0);
            for &(kk, _) in entries {
                first_of[kk as usize + 1] += 1;
            }
            for i in 0..k {
                first_of[i + 1] += first_of[i];
            }
            grouped.resize(entries.len(), (0, 0.0));
            let mut next = first_of.clone();
            for i in b0..b1 {
                let r = (band.first + i) as u32;
                for &(kk, v) in &band.entries[band.starts[i]..band.starts[i + 1]] {
                    let slot = &mut next[kk as usize];
                    grouped[*slot as usize] = (r, v);
                    *slot += 1;
                }
            }
            let first_row = band.first + b0;
            for c0 in (0..n).step_by(COLS) {
                let c1 = (c0 + COLS).min(n);
                let width = c1 - c0;
                // The block's slab of `g`, packed: rows of `g` lie `4n` bytes apart, a multiple
                // of 4 KB for many `n`, and would share L1 sets.
                for (i, dst) in slab.chunks_exact_mut(COLS).take(b1 - b0).enumerate() {
                    let r = first_row + i;
                    dst[..width].copy_from_slice(&g[r * n + c0..r * n + c1]);
                }
                let acc = &mut acc[..width];
                for kk in 0..k {
                    let group = &grouped[first_of[kk] as usize..first_of[kk + 1] as usize];
                    let Some((&(r0, v0), rest)) = group.split_first() else {
                        continue;
                    };
                    let at = |r: u32| (r as usize - first_row) * COLS;
                    let row0 = &slab[at(r0)..at(r0) + width];
                    for (a, &gv) in acc.iter_mut().zip(row0) {
                        *a = v0 * gv;
                    }
                    for &(r, v) in rest {
                        axpy(acc, v, &slab[at(r)..at(r) + width]);
                    }
                    axpy(&mut gw[kk * n + c0..kk * n + c1], 1.0, acc);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod wide {
    //! The same loops compiled for AVX-512 and AVX2, chosen at run time.
    use super::ActiveRows;
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn forward_rows_512(
        a: &ActiveRows,
        w: &[f32],
        b: &[f32],
        n: usize,
        out: &mut [f32],
    ) {
        super::forward_rows(a, w, b, n, out)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_rows_256(
        a: &ActiveRows,
        w: &[f32],
        b: &[f32],
        n: usize,
        out: &mut [f32],
    ) {
        super::forward_rows(a, w, b, n, out)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn weight_grad_partial_512(a: &[ActiveRows], g: &[f32], n: usize, gw: &mut [f32]) {
        super::weight_grad_partial(a, g, n, gw)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_partial_256(a: &[ActiveRows], g: &[f32], n: usize, gw: &mut [f32]) {
        super::weight_grad_partial(a, g, n, gw)
    }
}

/// Rows per parallel task.
fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(4 * rayon::current_num_threads().max(1))
        .clamp(1, 256)
}

/// The event-driven forward on plain slices: `x [m, k]`, `w [k, n]`, `b [n]` → `[m, n]`.
pub fn sparse_forward(x: &[f32], w: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert_eq!((x.len(), w.len(), b.len()), (m * k, k * n, n), "shapes");
    forward_active(&Active::of(x, m, k), w, b, m, n)
}

/// The event-driven forward from the active inputs of `x [m, ·]`.
fn forward_active(active: &Active, w: &[f32], b: &[f32], m: usize, n: usize) -> Vec<f32> {
    let mut out = vec![0f32; m * n];
    if n == 0 {
        return out;
    }
    let isa = isa();
    out.par_chunks_mut(active.rows_per_band * n)
        .zip(active.bands.par_iter())
        .for_each(|(chunk, band)| match isa {
            // SAFETY: `isa()` checked that the CPU has the features each build needs.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => unsafe { wide::forward_rows_512(band, w, b, n, chunk) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => unsafe { wide::forward_rows_256(band, w, b, n, chunk) },
            _ => forward_rows(band, w, b, n, chunk),
        });
    out
}

/// The event-driven weight gradient on plain slices: `Σ_m x[m]ᵀ·g[m]` over nonzero `x`, `[k, n]`.
pub fn sparse_weight_grad(x: &[f32], g: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
    assert_eq!((x.len(), g.len()), (m * k, m * n), "shapes");
    weight_grad_active(&Active::of(x, m, k), g, k, n)
}

/// The event-driven weight gradient from the active inputs of `x`.
///
/// Each thread accumulates its share of the bands into its own partial gradient (so `g` is
/// streamed once, in order), then the partials are summed.
fn weight_grad_active(active: &Active, g: &[f32], k: usize, n: usize) -> Vec<f32> {
    let bands = &active.bands;
    let parts = rayon::current_num_threads().clamp(1, bands.len().max(1));
    let per = bands.len().div_ceil(parts).max(1);
    let isa = isa();
    let partials: Vec<Vec<f32>> = bands
        .par_chunks(per)
        .map(|mine| {
            let mut gw = vec![0f32; k * n];
            match isa {
                // SAFETY: `isa()` checked that the CPU has the features each build needs.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { wide::weight_grad_partial_512(mine, g, n, &mut gw) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { wide::weight_grad_partial_256(mine, g, n, &mut gw) },
                _ => weight_grad_partial(mine, g, n, &mut gw),
            }
            gw
        })
        .collect();
    let mut iter = partials.into_iter();
    let mut total = iter.next().unwrap_or_else(|| vec![0f32; k * n]);
    for part in iter {
        total
            .par_chunks_mut(4096)
            .zip(part.par_chunks(4096))
            .for_each(|(t, p)| t.iter_mut().zip(p).for_each(|(t, p)| *t += p));
    }
    total
}

fn dense_forward(x: FlexTensor, w: FlexTensor, b: FlexTensor) -> FlexTensor {
    let n = b.layout().shape()[0];
    let y = Flex::float_matmul(x, w);
    Flex::float_add(y, Flex::float_reshape(b, [1, n].into()))
}

/// The active inputs of `x` when `mode` (or, for `Auto`, the measured density) picks the
/// event-driven path, else `None`.
fn sparse_inputs(mode: SpikeLinearMode, x: &[f32], m: usize, k: usize, n: usize) -> Option<Active> {
    use_sparse(mode, x, n).then(|| Active::of(x, m, k))
}

impl SpikeLinearKernel for Flex {
    fn spike_linear(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        mode: SpikeLinearMode,
    ) -> FlexTensor {
        let (m, k) = dims2(&x);
        let n = dims2(&w).1;
        let Some(active) = sparse_inputs(mode, &f32_values(&x), m, k, n) else {
            return dense_forward(x, w, b);
        };
        let y = forward_active(&active, &f32_values(&w), &f32_values(&b), m, n);
        flex_tensor(y, [m, n])
    }
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let entries: usize = self.bands.iter().map(|b| b.entries.len()).sum();
        f.debug_struct("Active")
            .field("bands", &self.bands.len())
            .field("entries", &entries)
            .finish()
    }
}

#[derive(Debug)]
struct SpikeLinearBackward;

impl Backward<Flex, 3> for SpikeLinearBackward {
    /// Input, weights, and the active inputs when the forward took the sparse path (listed once,
    /// for both passes).
    type State = (FlexTensor, FlexTensor, Option<Arc<Active>>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let g = grads.consume::<Flex>(&ops.node);
        let (x, w, active) = ops.state;
        let k = dims2(&x).1;
        let n = dims2(&w).1;
        if let Some(node) = node_b {
            let gb = Flex::float_sum_dim(g.clone(), 0);
            grads.register::<Flex>(node.id, Flex::float_reshape(gb, [n].into()));
        }
        if let Some(node) = node_w {
            let gw = match &active {
                Some(active) => {
                    flex_tensor(weight_grad_active(active, &f32_values(&g), k, n), [k, n])
                }
                None => Flex::float_matmul(Flex::float_transpose(x.clone()), g.clone()),
            };
            grads.register::<Flex>(node.id, gw);
        }
        if let Some(node) = node_x {
            let gx = Flex::float_matmul(g, Flex::float_transpose(w));
            grads.register::<Flex>(node.id, gx);
        }
    }
}

impl<C: CheckpointStrategy> SpikeLinearKernel for Autodiff<Flex, C> {
    fn spike_linear(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        mode: SpikeLinearMode,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), w.node(), b.node()];
        let (x, w, b) = (x.into_primitive(), w.into_primitive(), b.into_primitive());
        let (m, k) = dims2(&x);
        let n = dims2(&w).1;
        // Decide once and list the active inputs once: the backward takes the path the forward
        // took, with the same lists.
        let active = sparse_inputs(mode, &f32_values(&x), m, k, n).map(Arc::new);
        let y = match &active {
            Some(active) => flex_tensor(
                forward_active(active, &f32_values(&w), &f32_values(&b), m, n),
                [m, n],
            ),
            None => dense_forward(x.clone(), w.clone(), b),
        };
        match SpikeLinearBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, w, active), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// `x [M, K] · w [K, N] + b [N]` with the event-driven path where `x` is sparse. Runs on the
/// Flex backend (check [`crate::device::is_flex`]).
pub fn spike_linear(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, mode: SpikeLinearMode) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SpikeLinearKernel>::spike_linear(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        mode,
    ))
}
