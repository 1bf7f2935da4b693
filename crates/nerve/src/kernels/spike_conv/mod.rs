//! Event-driven 2-D convolution for spike inputs: stride 1, no dilation, one group, symmetric
//! zero padding (the convolutions of the tutorial conv SNNs).
//!
//! A dense convolution multiplies every input by every kernel weight; a spike map is mostly
//! zeros. The sparse forward walks the active inputs of each sample and, for each kernel offset
//! that lands inside the output, adds the kernel's column of output-channel weights to that
//! output position (`out[p] += x[c, y, x] · W[:, c, ky, kx]`). It accumulates in a channels-last
//! buffer of one sample's outputs (a few KB, in L1) against the weights transposed to
//! `[C, KH, KW, O]`, so each add is a contiguous vector of `O` floats, then writes the sample
//! back in Burn's `[O, H, W]` order. The weight gradient is the same walk with the roles of the
//! weights and the output gradient exchanged, into per-thread partial sums. The input gradient
//! is needed at every input, but after max pooling three in four output gradients are zero: on
//! CPUs with AVX-512 it sums each output pixel's nonzero gradients times their filters and adds
//! the sum to the inputs the pixel saw; otherwise, or when the output gradient is dense, it is
//! Burn's transposed convolution.
//!
//! The dense path is Burn's convolution; which path runs is chosen per call from the measured
//! density, and `tests/spike_conv.rs` checks both against each other in outputs and in all
//! three gradients.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{FloatTensorOps, ModuleOps};
use burn::backend::tensor::FloatTensor;
use burn::backend::{backend_extension, Autodiff, Backend, Dispatch, Flex};
use burn::tensor::ops::ConvOptions;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::spike_linear::density;
use super::{axpy, f32_values, flex_tensor, isa, Isa};

/// Which algorithm [`spike_conv2d`] uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpikeConvMode {
    /// Sparse below [`SPARSE_BELOW`] density of nonzero inputs, dense above.
    Auto,
    /// Always Burn's dense convolution, and its input gradient.
    Dense,
    /// Always the event-driven accumulation.
    Sparse,
}

/// Input density under which the event-driven path wins. Measured on the W3 second layer
/// (`[3200, 12, 12, 12]` spikes, 64 filters of 5×5, one thread): the sparse forward takes about
/// 14 ms plus 330 ms per unit of density, Burn's convolution 160 ms whatever the density, so
/// they cross near 0.45; the margin covers CPUs whose GEMM is relatively faster.
pub const SPARSE_BELOW: f64 = 0.4;

/// The op as a Burn backend extension: Flex on raw slices, Autodiff over Flex with its reverse
/// pass.
#[backend_extension(Flex, Autodiff)]
pub trait SpikeConvKernel: Backend {
    /// `x [N, C, H, W]`, `w [O, C, KH, KW]`, `b [O]`, zero `padding` `[ph, pw]` on each side,
    /// stride 1 → `[N, O, H + 2ph − KH + 1, W + 2pw − KW + 1]`.
    fn spike_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        padding: [usize; 2],
        mode: SpikeConvMode,
    ) -> FloatTensor<Self>;
}

/// The sizes of one convolution.
#[derive(Debug, Clone, Copy)]
struct Geometry {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ph: usize,
    pw: usize,
    ho: usize,
    wo: usize,
}

impl Geometry {
    fn new(x: &[usize], w: &[usize], padding: [usize; 2]) -> Self {
        let (n, c, h, wd) = (x[0], x[1], x[2], x[3]);
        let (o, kh, kw) = (w[0], w[2], w[3]);
        // A programming error, as in Burn's convolution (user data reaches this through a
        // network whose input shape is checked first).
        assert_eq!(
            c, w[1],
            "spike_conv2d: the input has {c} channels, the weights expect {}",
            w[1]
        );
        let [ph, pw] = padding;
        Self {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            ph,
            pw,
            ho: (h + 2 * ph + 1).saturating_sub(kh),
            wo: (wd + 2 * pw + 1).saturating_sub(kw),
        }
    }

    fn of(x: &FlexTensor, w: &FlexTensor, padding: [usize; 2]) -> Self {
        Self::new(x.layout().shape(), w.layout().shape(), padding)
    }

    fn input_len(&self) -> usize {
        self.c * self.h * self.w
    }

    fn output_len(&self) -> usize {
        self.o * self.ho * self.wo
    }

    fn kernel_len(&self) -> usize {
        self.c * self.kh * self.kw * self.o
    }

    fn options(&self) -> ConvOptions<2> {
        ConvOptions::new([1, 1], [self.ph, self.pw], [1, 1], 1)
    }

    /// The kernel rows `ky` that carry input row `y` into the output (`0 ≤ y + ph − ky < Ho`).
    #[inline(always)]
    fn rows_reached(&self, y: usize) -> std::ops::Range<usize> {
        (y + self.ph + 1).saturating_sub(self.ho)..(y + self.ph + 1).min(self.kh)
    }

    /// The kernel columns `kx` that carry input column `x` into the output.
    #[inline(always)]
    fn cols_reached(&self, x: usize) -> std::ops::Range<usize> {
        (x + self.pw + 1).saturating_sub(self.wo)..(x + self.pw + 1).min(self.kw)
    }
}

/// `[O, C, KH, KW]` → `[C, KH, KW, O]`, so a kernel position's output channels are contiguous.
fn channels_last_weights(w: &[f32], g: &Geometry) -> Vec<f32> {
    let taps = g.c * g.kh * g.kw;
    let mut out = vec![0f32; taps * g.o];
    for (oc, filter) in w.chunks_exact(taps).enumerate() {
        for (tap, &v) in filter.iter().enumerate() {
            out[tap * g.o + oc] = v;
        }
    }
    out
}

/// Adds `x[c, y, xx] · rows` for every active input of one sample `x [C, H, W]`, where the
/// kernel position `(c, ky, kx)` pairs output pixel `(y + ph − ky, xx + pw − kx)`: the forward
/// adds a weight column to an output pixel (`into = acc`, `from = wt`); the weight gradient
/// adds an output-gradient pixel to a weight column (`into = gwt`, `from = acc`). Plain loops
/// rather than closures, so the vector builds in `wide` inline all of it.
#[inline(always)]
fn scatter_active(x: &[f32], g: &Geometry, forward: bool, into: &mut [f32], from: &[f32]) {
    let o = g.o;
    for (row, values) in x.chunks_exact(g.w).enumerate() {
        let (c, y) = (row / g.h, row % g.h);
        let ky_range = g.rows_reached(y);
        for (xx, &v) in values.iter().enumerate() {
            if v == 0.0 {
                continue;
            }
            for ky in ky_range.clone() {
                let oy = y + g.ph - ky;
                for kx in g.cols_reached(xx) {
                    let pixel = (oy * g.wo + xx + g.pw - kx) * o;
                    let tap = ((c * g.kh + ky) * g.kw + kx) * o;
                    let (to, src) = if forward { (pixel, tap) } else { (tap, pixel) };
                    axpy(&mut into[to..to + o], v, &from[src..src + o]);
                }
            }
        }
    }
}

/// One sample's forward: `x [C, H, W]` → `out [O, Ho, Wo]`, through `acc [Ho·Wo, O]`.
#[inline(always)]
fn forward_sample(
    x: &[f32],
    wt: &[f32],
    b: &[f32],
    g: &Geometry,
    acc: &mut [f32],
    out: &mut [f32],
) {
    let o = g.o;
    for pixel in acc.chunks_exact_mut(o) {
        pixel.copy_from_slice(b);
    }
    scatter_active(x, g, true, acc, wt);
    // Gather from the L1-resident accumulator so the writes to `out` are contiguous.
    let pixels = g.ho * g.wo;
    for (oc, plane) in out.chunks_exact_mut(pixels).enumerate() {
        for (p, v) in plane.iter_mut().enumerate() {
            *v = acc[p * o + oc];
        }
    }
}

/// One sample's weight gradient, added to `gwt [C, KH, KW, O]`: `gout [O, Ho, Wo]` is first
/// laid out channels-last in `acc`.
#[inline(always)]
fn weight_grad_sample(x: &[f32], gout: &[f32], g: &Geometry, acc: &mut [f32], gwt: &mut [f32]) {
    let (o, pixels) = (g.o, g.ho * g.wo);
    for (oc, plane) in gout.chunks_exact(pixels).enumerate() {
        for (p, &v) in plane.iter().enumerate() {
            acc[p * o + oc] = v;
        }
    }
    scatter_active(x, g, false, gwt, acc);
}

#[cfg(target_arch = "x86_64")]
mod wide {
    //! The per-sample loops compiled for AVX-512 and AVX2, chosen at run time.
    use super::Geometry;
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn forward_512(
        x: &[f32],
        wt: &[f32],
        b: &[f32],
        g: &Geometry,
        acc: &mut [f32],
        out: &mut [f32],
    ) {
        super::forward_sample(x, wt, b, g, acc, out)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn forward_256(
        x: &[f32],
        wt: &[f32],
        b: &[f32],
        g: &Geometry,
        acc: &mut [f32],
        out: &mut [f32],
    ) {
        super::forward_sample(x, wt, b, g, acc, out)
    }
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub unsafe fn weight_grad_512(
        x: &[f32],
        gout: &[f32],
        g: &Geometry,
        acc: &mut [f32],
        gwt: &mut [f32],
    ) {
        super::weight_grad_sample(x, gout, g, acc, gwt)
    }
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn weight_grad_256(
        x: &[f32],
        gout: &[f32],
        g: &Geometry,
        acc: &mut [f32],
        gwt: &mut [f32],
    ) {
        super::weight_grad_sample(x, gout, g, acc, gwt)
    }
}

/// `[O, C, KH, KW]` → `[O, KH, KW, C]`, so one kernel row's taps for every input channel are
/// contiguous, as are the inputs they reach in a channels-last map.
fn channels_last_filters(w: &[f32], g: &Geometry) -> Vec<f32> {
    let mut out = vec![0f32; w.len()];
    let taps = g.kh * g.kw;
    for (row, filter_channel) in w.chunks_exact(taps).enumerate() {
        let (o, c) = (row / g.c, row % g.c);
        for (tap, &v) in filter_channel.iter().enumerate() {
            out[(o * taps + tap) * g.c + c] = v;
        }
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod input_grad {
    //! The input gradient with AVX-512: after max pooling three in four output gradients are
    //! zero, which a dense transposed convolution multiplies anyway. Per kernel row `ky` and
    //! output pixel, the pixel's nonzero gradients scale and sum that row of their filters
    //! (`KW·C` floats, from rows that stay in L1 for the pass) in registers, and the sum is
    //! added once to the inputs the pixel saw through that kernel row. Masked loads and stores
    //! take the short runs (a 5×12 kernel row is 60 floats) without a scalar tail.
    use std::arch::x86_64::*;

    use super::Geometry;

    /// Lanes of the four 16-float registers that `len` floats fill.
    fn masks(len: usize) -> [__mmask16; 4] {
        std::array::from_fn(|k| {
            let lanes = len.saturating_sub(16 * k).min(16);
            ((1u32 << lanes) - 1) as __mmask16
        })
    }

    /// `dst[..len] += src[..len]`.
    #[target_feature(enable = "avx512f")]
    unsafe fn add_run(dst: *mut f32, src: *const f32, len: usize) {
        let mut i = 0;
        while i < len {
            let m = masks(len - i)[0];
            let d = _mm512_maskz_loadu_ps(m, dst.add(i));
            let s = _mm512_maskz_loadu_ps(m, src.add(i));
            _mm512_mask_storeu_ps(dst.add(i), m, _mm512_add_ps(d, s));
            i += 16;
        }
    }

    /// One sample: `gout [O, Ho, Wo]` → `gx [C, H, W]`, with `wr [O, KH, KW, C]`, through the
    /// channels-last `acc [H·W, C]` and a `row` of `KW·C` floats; `nonzero` and `starts` are
    /// scratch for each pixel's nonzero gradients.
    ///
    /// # Safety
    /// The CPU must have AVX-512F; the slices must have the sizes `g` gives.
    #[target_feature(enable = "avx512f")]
    #[allow(clippy::too_many_arguments)]
    pub unsafe fn sample(
        gout: &[f32],
        wr: &[f32],
        g: &Geometry,
        acc: &mut [f32],
        row: &mut [f32],
        nonzero: &mut Vec<(u32, f32)>,
        starts: &mut Vec<usize>,
        gx: &mut [f32],
    ) {
        let (c, pixels, run) = (g.c, g.ho * g.wo, g.kw * g.c);
        debug_assert_eq!(gout.len(), g.o * pixels);
        debug_assert_eq!(wr.len(), g.o * g.kh * run);
        debug_assert_eq!(
            (acc.len(), gx.len(), row.len()),
            (g.h * g.w * c, g.h * g.w * c, run)
        );
        // Branch-free compaction: about one gradient in four is nonzero, at random, which a
        // branch would mispredict constantly.
        nonzero.resize(g.o * pixels, (0, 0.0));
        starts.clear();
        let mut count = 0;
        for p in 0..pixels {
            starts.push(count);
            for o in 0..g.o {
                let v = gout[o * pixels + p];
                nonzero[count] = (o as u32, v);
                count += usize::from(v != 0.0);
            }
        }
        starts.push(count);
        acc.fill(0.0);
        for ky in 0..g.kh {
            for p in 0..pixels {
                let grads = &nonzero[starts[p]..starts[p + 1]];
                let (oy, ox) = (p / g.wo, p % g.wo);
                if grads.is_empty() || oy + ky < g.ph || oy + ky - g.ph >= g.h {
                    continue;
                }
                for start in (0..run).step_by(64) {
                    let m = masks(run - start);
                    let mut r = [_mm512_setzero_ps(); 4];
                    for &(o, v) in grads {
                        let base = wr.as_ptr().add((o as usize * g.kh + ky) * run + start);
                        let v = _mm512_set1_ps(v);
                        for k in 0..4 {
                            if m[k] != 0 {
                                let w = _mm512_maskz_loadu_ps(m[k], base.add(16 * k));
                                r[k] = _mm512_fmadd_ps(v, w, r[k]);
                            }
                        }
                    }
                    for k in 0..4 {
                        _mm512_mask_storeu_ps(row.as_mut_ptr().add(start + 16 * k), m[k], r[k]);
                    }
                }
                let kx_lo = g.pw.saturating_sub(ox);
                let kx_hi = g.kw.min(g.w + g.pw - ox);
                let to = ((oy + ky - g.ph) * g.w + ox + kx_lo - g.pw) * c;
                let len = (kx_hi - kx_lo) * c;
                add_run(acc.as_mut_ptr().add(to), row.as_ptr().add(kx_lo * c), len);
            }
        }
        let plane = g.h * g.w;
        for (ci, out) in gx.chunks_exact_mut(plane).enumerate() {
            for (q, v) in out.iter_mut().enumerate() {
                *v = acc[q * c + ci];
            }
        }
    }
}

/// Output-gradient density under which [`sparse_input_grad`] beats Burn's transposed
/// convolution: its cost grows with the nonzero output gradients, Burn's does not.
const SPARSE_GRAD_BELOW: f64 = 0.5;

/// The input gradient skipping zero output gradients (`gout [N, O, Ho, Wo]`,
/// `w [O, C, KH, KW]` → `[N, C, H, W]`), or `None` where the CPU lacks AVX-512.
fn sparse_input_grad(gout: &[f32], w: &[f32], g: &Geometry) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::is_x86_feature_detected!("avx512f") {
            return None;
        }
        let wr = channels_last_filters(w, g);
        let (in_len, out_len) = (g.input_len(), g.output_len());
        let mut gx = vec![0f32; g.n * in_len];
        if in_len == 0 || out_len == 0 {
            return Some(gx);
        }
        let per = samples_per_task(g.n);
        gx.par_chunks_mut(per * in_len)
            .zip(gout.par_chunks(per * out_len))
            .for_each(|(gxs, gouts)| {
                let mut acc = vec![0f32; in_len];
                let mut row = vec![0f32; g.kw * g.c];
                let (mut nonzero, mut starts) = (Vec::new(), Vec::new());
                for (gx, gout) in gxs
                    .chunks_exact_mut(in_len)
                    .zip(gouts.chunks_exact(out_len))
                {
                    // SAFETY: AVX-512F was detected above; every buffer has the size the
                    // geometry gives.
                    unsafe {
                        input_grad::sample(
                            gout,
                            &wr,
                            g,
                            &mut acc,
                            &mut row,
                            &mut nonzero,
                            &mut starts,
                            gx,
                        )
                    };
                }
            });
        Some(gx)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (gout, w, g);
        None
    }
}

/// Samples per parallel task: enough tasks for load balance, few enough that each reuses its
/// accumulator many times.
fn samples_per_task(n: usize) -> usize {
    n.div_ceil(8 * rayon::current_num_threads().max(1)).max(1)
}

/// The event-driven forward on plain slices: `x [N, C, H, W]`, `w [O, C, KH, KW]`, `b [O]`,
/// zero padding `[ph, pw]` → `[N, O, Ho, Wo]`.
fn sparse_forward(x: &[f32], w: &[f32], b: &[f32], g: &Geometry) -> Vec<f32> {
    let wt = channels_last_weights(w, g);
    let (in_len, out_len) = (g.input_len(), g.output_len());
    let mut out = vec![0f32; g.n * out_len];
    if out_len == 0 {
        return out;
    }
    let per = samples_per_task(g.n);
    let isa = isa();
    out.par_chunks_mut(per * out_len)
        .zip(x.par_chunks(per * in_len.max(1)))
        .for_each(|(outs, xs)| {
            let mut acc = vec![0f32; out_len];
            for (out, x) in outs.chunks_exact_mut(out_len).zip(xs.chunks(in_len.max(1))) {
                match isa {
                    // SAFETY: `isa()` checked that the CPU has the features each build needs.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { wide::forward_512(x, &wt, b, g, &mut acc, out) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { wide::forward_256(x, &wt, b, g, &mut acc, out) },
                    _ => forward_sample(x, &wt, b, g, &mut acc, out),
                }
            }
        });
    out
}

/// The event-driven weight gradient on plain slices: `Σ_n` over the active inputs of `x`,
/// returned as `[O, C, KH, KW]`.
fn sparse_weight_grad(x: &[f32], gout: &[f32], g: &Geometry) -> Vec<f32> {
    let (in_len, out_len, taps) = (g.input_len(), g.output_len(), g.c * g.kh * g.kw);
    let parts = rayon::current_num_threads().clamp(1, g.n.max(1));
    let per = g.n.div_ceil(parts).max(1);
    let isa = isa();
    let partials: Vec<Vec<f32>> = (0..parts)
        .into_par_iter()
        .map(|part| {
            let mut gwt = vec![0f32; g.kernel_len()];
            let mut acc = vec![0f32; out_len];
            let first = (part * per).min(g.n);
            let last = ((part + 1) * per).min(g.n);
            for s in first..last {
                let xs = &x[s * in_len..(s + 1) * in_len];
                let gs = &gout[s * out_len..(s + 1) * out_len];
                match isa {
                    // SAFETY: `isa()` checked that the CPU has the features each build needs.
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx512 => unsafe { wide::weight_grad_512(xs, gs, g, &mut acc, &mut gwt) },
                    #[cfg(target_arch = "x86_64")]
                    Isa::Avx2 => unsafe { wide::weight_grad_256(xs, gs, g, &mut acc, &mut gwt) },
                    _ => weight_grad_sample(xs, gs, g, &mut acc, &mut gwt),
                }
            }
            gwt
        })
        .collect();
    let mut total = vec![0f32; g.kernel_len()];
    for part in partials {
        total.iter_mut().zip(&part).for_each(|(t, p)| *t += p);
    }
    // [C, KH, KW, O] → [O, C, KH, KW]
    let mut out = vec![0f32; g.kernel_len()];
    for (tap, pixel) in total.chunks_exact(g.o).enumerate() {
        for (oc, &v) in pixel.iter().enumerate() {
            out[oc * taps + tap] = v;
        }
    }
    out
}

fn use_sparse(mode: SpikeConvMode, x: &[f32]) -> bool {
    match mode {
        SpikeConvMode::Sparse => true,
        SpikeConvMode::Dense => false,
        SpikeConvMode::Auto => density(x) < SPARSE_BELOW,
    }
}

impl SpikeConvKernel for Flex {
    fn spike_conv2d(
        x: FlexTensor,
        w: FlexTensor,
        b: FlexTensor,
        padding: [usize; 2],
        mode: SpikeConvMode,
    ) -> FlexTensor {
        let g = Geometry::of(&x, &w, padding);
        if !use_sparse(mode, &f32_values(&x)) {
            return Flex::conv2d(x, w, Some(b), g.options());
        }
        let y = sparse_forward(&f32_values(&x), &f32_values(&w), &f32_values(&b), &g);
        flex_tensor(y, [g.n, g.o, g.ho, g.wo])
    }
}

#[derive(Debug)]
struct SpikeConvBackward;

impl Backward<Flex, 3> for SpikeConvBackward {
    /// Input, weights, padding, whether the forward took the sparse path, the mode asked for.
    type State = (FlexTensor, FlexTensor, [usize; 2], bool, SpikeConvMode);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let gout = grads.consume::<Flex>(&ops.node);
        let (x, w, padding, sparse, mode) = ops.state;
        let g = Geometry::of(&x, &w, padding);
        if let Some(node) = node_b {
            let sum = Flex::float_sum_dim(Flex::float_sum_dim(gout.clone(), 3), 2);
            let gb = Flex::float_sum_dim(sum, 0);
            grads.register::<Flex>(node.id, Flex::float_reshape(gb, [g.o].into()));
        }
        if let Some(node) = node_w {
            let gw = if sparse {
                let values = sparse_weight_grad(&f32_values(&x), &f32_values(&gout), &g);
                flex_tensor(values, [g.o, g.c, g.kh, g.kw])
            } else {
                Flex::conv2d_weight_backward(x.clone(), w.clone(), gout.clone(), g.options())
            };
            grads.register::<Flex>(node.id, gw);
        }
        if let Some(node) = node_x {
            let values = f32_values(&gout);
            let sparse_grad = (mode != SpikeConvMode::Dense
                && density(&values) < SPARSE_GRAD_BELOW)
                .then(|| sparse_input_grad(&values, &f32_values(&w), &g))
                .flatten();
            drop(values);
            let gx = match sparse_grad {
                Some(gx) => flex_tensor(gx, [g.n, g.c, g.h, g.w]),
                None => Flex::conv2d_x_backward(x, w, gout, g.options()),
            };
            grads.register::<Flex>(node.id, gx);
        }
    }
}

impl<C: CheckpointStrategy> SpikeConvKernel for Autodiff<Flex, C> {
    fn spike_conv2d(
        x: FloatTensor<Self>,
        w: FloatTensor<Self>,
        b: FloatTensor<Self>,
        padding: [usize; 2],
        mode: SpikeConvMode,
    ) -> FloatTensor<Self> {
        let guards = [x.node(), w.node(), b.node()];
        let (x, w) = (x.into_primitive(), w.into_primitive());
        // Decide once, so the backward uses the path the forward took.
        let sparse = use_sparse(mode, &f32_values(&x));
        let forced = if sparse {
            SpikeConvMode::Sparse
        } else {
            SpikeConvMode::Dense
        };
        let y = <Flex as SpikeConvKernel>::spike_conv2d(
            x.clone(),
            w.clone(),
            b.into_primitive(),
            padding,
            forced,
        );
        match SpikeConvBackward
            .prepare::<C>(guards)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, w, padding, sparse, mode), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// `x [N, C, H, W]` convolved with `w [O, C, KH, KW]` plus `b [O]`, stride 1, zero `padding`
/// `[ph, pw]` on each side, with the event-driven path where `x` is sparse. Runs on the Flex
/// backend (check [`crate::device::is_flex`]).
pub fn spike_conv2d(
    x: Tensor<4>,
    w: Tensor<4>,
    b: Tensor<1>,
    padding: [usize; 2],
    mode: SpikeConvMode,
) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as SpikeConvKernel>::spike_conv2d(
        x.into_dispatch(),
        w.into_dispatch(),
        b.into_dispatch(),
        padding,
        mode,
    ))
}
