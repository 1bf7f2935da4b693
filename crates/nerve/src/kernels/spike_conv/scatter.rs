//! The event-driven forward and weight gradient: both walk the active inputs of each sample
//! (`scatter_active`), per sample in a build for the CPU's widest vector unit.

use rayon::prelude::*;

use super::{samples_per_task, Geometry};
use crate::kernels::{axpy, isa, Isa};

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

/// The event-driven forward on plain slices: `x [N, C, H, W]`, `w [O, C, KH, KW]`, `b [O]`,
/// zero padding `[ph, pw]` → `[N, O, Ho, Wo]`.
pub(super) fn sparse_forward(x: &[f32], w: &[f32], b: &[f32], g: &Geometry) -> Vec<f32> {
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
pub(super) fn sparse_weight_grad(x: &[f32], gout: &[f32], g: &Geometry) -> Vec<f32> {
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
