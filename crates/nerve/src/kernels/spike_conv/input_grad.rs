//! The input gradient that skips zero output gradients (AVX-512, or AVX2 with FMA; on other
//! CPUs the caller falls back to Burn's transposed convolution). Both builds do the same
//! fused multiply-adds in the same order, so they give the same bits.

use rayon::prelude::*;

use super::{samples_per_task, Geometry};
#[cfg(target_arch = "x86_64")]
use crate::kernels::{isa, Isa};

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

/// Lists each output pixel's nonzero gradients `(o, value)` in `nonzero`, pixel `p`'s at
/// `starts[p]..starts[p + 1]`.
#[inline(always)]
fn compact(gout: &[f32], g: &Geometry, nonzero: &mut Vec<(u32, f32)>, starts: &mut Vec<usize>) {
    let pixels = g.ho * g.wo;
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
}

/// Where output pixel `p` reaches the input through kernel row `ky`: the offset of the first
/// tap inside the kernel row's `KW·C` sums, the offset in the channels-last input and the
/// length of the run; `None` where the row falls in the padding.
#[inline(always)]
fn window(g: &Geometry, p: usize, ky: usize) -> Option<(usize, usize, usize)> {
    let (oy, ox) = (p / g.wo, p % g.wo);
    if oy + ky < g.ph || oy + ky - g.ph >= g.h {
        return None;
    }
    let kx_lo = g.pw.saturating_sub(ox);
    let kx_hi = g.kw.min(g.w + g.pw - ox);
    let to = ((oy + ky - g.ph) * g.w + ox + kx_lo - g.pw) * g.c;
    Some((kx_lo * g.c, to, (kx_hi - kx_lo) * g.c))
}

/// The channels-last sums `acc [H·W, C]` into `gx [C, H, W]`.
#[inline(always)]
fn channels_first(acc: &[f32], g: &Geometry, gx: &mut [f32]) {
    let plane = g.h * g.w;
    for (ci, out) in gx.chunks_exact_mut(plane).enumerate() {
        for (q, v) in out.iter_mut().enumerate() {
            *v = acc[q * g.c + ci];
        }
    }
}

/// The input gradient of one sample in plain loops, each tap summed with `mul_add` in the
/// order of the AVX-512 build, compiled for AVX2 and FMA (see `avx512::sample` for the
/// arguments).
///
/// # Safety
/// The CPU must have AVX2 and FMA; the slices must have the sizes `g` gives.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn sample_avx2(
    gout: &[f32],
    wr: &[f32],
    g: &Geometry,
    acc: &mut [f32],
    row: &mut [f32],
    nonzero: &mut Vec<(u32, f32)>,
    starts: &mut Vec<usize>,
    gx: &mut [f32],
) {
    let run = g.kw * g.c;
    compact(gout, g, nonzero, starts);
    acc.fill(0.0);
    for ky in 0..g.kh {
        for p in 0..g.ho * g.wo {
            let grads = &nonzero[starts[p]..starts[p + 1]];
            let Some((from, to, len)) = window(g, p, ky).filter(|_| !grads.is_empty()) else {
                continue;
            };
            row.fill(0.0);
            for &(o, v) in grads {
                let w = &wr[(o as usize * g.kh + ky) * run..][..run];
                for (r, &w) in row.iter_mut().zip(w) {
                    *r = v.mul_add(w, *r);
                }
            }
            for (a, &r) in acc[to..to + len].iter_mut().zip(&row[from..]) {
                *a += r;
            }
        }
    }
    channels_first(acc, g, gx);
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    //! The input gradient with AVX-512: after max pooling three in four output gradients are
    //! zero, which a dense transposed convolution multiplies anyway. Per kernel row `ky` and
    //! output pixel, the pixel's nonzero gradients scale and sum that row of their filters
    //! (`KW·C` floats, from rows that stay in L1 for the pass) in registers, and the sum is
    //! added once to the inputs the pixel saw through that kernel row. Masked loads and stores
    //! take the short runs (a 5×12 kernel row is 60 floats) without a scalar tail.
    use std::arch::x86_64::*;

    use super::{channels_first, compact, window, Geometry};

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
        let (pixels, run) = (g.ho * g.wo, g.kw * g.c);
        debug_assert_eq!(gout.len(), g.o * pixels);
        debug_assert_eq!(wr.len(), g.o * g.kh * run);
        debug_assert_eq!(
            (acc.len(), gx.len(), row.len()),
            (g.h * g.w * g.c, g.h * g.w * g.c, run)
        );
        compact(gout, g, nonzero, starts);
        acc.fill(0.0);
        for ky in 0..g.kh {
            for p in 0..pixels {
                let grads = &nonzero[starts[p]..starts[p + 1]];
                let Some((from, to, len)) = window(g, p, ky).filter(|_| !grads.is_empty()) else {
                    continue;
                };
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
                add_run(acc.as_mut_ptr().add(to), row.as_ptr().add(from), len);
            }
        }
        channels_first(acc, g, gx);
    }
}

/// Output-gradient density under which [`sparse_input_grad`] beats Burn's transposed
/// convolution: its cost grows with the nonzero output gradients, Burn's does not.
pub(super) const SPARSE_GRAD_BELOW: f64 = 0.5;

/// The input gradient skipping zero output gradients (`gout [N, O, Ho, Wo]`,
/// `w [O, C, KH, KW]` → `[N, C, H, W]`), or `None` where the CPU lacks both AVX-512 and AVX2
/// (or `NERVE_ISA=portable`).
pub(super) fn sparse_input_grad(gout: &[f32], w: &[f32], g: &Geometry) -> Option<Vec<f32>> {
    #[cfg(target_arch = "x86_64")]
    {
        let isa = isa();
        if isa == Isa::Plain {
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
                    let (acc, row, nonzero, starts) =
                        (&mut acc, &mut row, &mut nonzero, &mut starts);
                    // SAFETY: `isa()` checked the features of each build; every buffer has the
                    // size the geometry gives.
                    unsafe {
                        if isa == Isa::Avx512 {
                            avx512::sample(gout, &wr, g, acc, row, nonzero, starts, gx)
                        } else {
                            sample_avx2(gout, &wr, g, acc, row, nonzero, starts, gx)
                        }
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

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// The AVX2 and AVX-512 builds give the same bits on a sparse gradient, with padding and
    /// runs that are not whole registers (a 3×5 kernel over 7 channels).
    #[test]
    fn avx2_and_avx512_builds_agree_bit_for_bit() {
        let avx2 = std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma");
        if !(std::is_x86_feature_detected!("avx512f") && avx2) {
            println!("skipped: this CPU lacks AVX-512F or AVX2, so there are not two builds");
            return;
        }
        let g = Geometry::new(&[1, 7, 9, 11], &[6, 7, 3, 5], [1, 2]);
        let mut seed = 12345u32;
        let mut next = move || {
            seed = seed.wrapping_mul(1664525).wrapping_add(1013904223);
            (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5
        };
        let w: Vec<f32> = (0..6 * 7 * 3 * 5).map(|_| next()).collect();
        let gout: Vec<f32> = (0..g.output_len())
            .map(|_| {
                let v = next();
                if v.abs() < 0.3 {
                    0.0
                } else {
                    v
                }
            })
            .collect();
        assert!(gout.contains(&0.0) && gout.iter().any(|&v| v != 0.0));
        let wr = channels_last_filters(&w, &g);
        let run = |wide: bool| {
            let mut acc = vec![0f32; g.input_len()];
            let mut row = vec![0f32; g.kw * g.c];
            let (mut nonzero, mut starts) = (Vec::new(), Vec::new());
            let mut gx = vec![0f32; g.input_len()];
            let (a, r, nz, st) = (&mut acc, &mut row, &mut nonzero, &mut starts);
            // SAFETY: both feature sets were detected above; the buffers have the sizes the
            // geometry gives.
            unsafe {
                if wide {
                    avx512::sample(&gout, &wr, &g, a, r, nz, st, &mut gx)
                } else {
                    sample_avx2(&gout, &wr, &g, a, r, nz, st, &mut gx)
                }
            }
            gx
        };
        let (wide, narrow) = (run(true), run(false));
        assert!(wide.iter().any(|&v| v != 0.0));
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&wide), bits(&narrow));
    }
}
