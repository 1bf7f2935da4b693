//! The integer engine's inner loops, each beside the dense form the reference twin uses:
//! convolutions (dense, and the walk over nonzero inputs that adds each one's taps), the FC
//! walk over nonzero inputs, and the operation counts of a walk. The walks are built for the
//! widest vectors the CPU has (AVX-512, AVX2), chosen at run time as the float kernels are.

/// The shape of one convolution.
pub(super) struct ConvGeometry {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) o: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) ph: usize,
    pub(super) pw: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

/// Every output as the sum of its window times the weights (the reference, and the path for
/// 8-bit inputs).
pub(super) fn conv_dense(
    g: &ConvGeometry,
    weights: &[i8],
    x: impl Iterator<Item = i32>,
) -> Vec<i32> {
    let x: Vec<i32> = x.collect();
    let mut out = vec![0i32; g.o * g.oh * g.ow];
    for o in 0..g.o {
        for y in 0..g.oh {
            for xo in 0..g.ow {
                let mut acc = 0i32;
                for ci in 0..g.c {
                    for ky in 0..g.kh {
                        let iy = (y + ky) as isize - g.ph as isize;
                        if iy < 0 || iy >= g.h as isize {
                            continue;
                        }
                        for kx in 0..g.kw {
                            let ix = (xo + kx) as isize - g.pw as isize;
                            if ix < 0 || ix >= g.w as isize {
                                continue;
                            }
                            let wv = weights[((o * g.c + ci) * g.kh + ky) * g.kw + kx];
                            let xv = x[(ci * g.h + iy as usize) * g.w + ix as usize];
                            acc = acc.wrapping_add(i32::from(wv).wrapping_mul(xv));
                        }
                    }
                }
                out[(o * g.oh + y) * g.ow + xo] = acc;
            }
        }
    }
    out
}

/// Additions the event-driven walk makes for these spikes (the reference reports the same).
pub(super) fn conv_reach(g: &ConvGeometry, s: &[u8]) -> u64 {
    let mut acs = 0u64;
    for (i, _) in s.iter().enumerate().filter(|(_, &v)| v != 0) {
        let (iy, ix) = ((i / g.w) % g.h, i % g.w);
        let rows = (0..g.kh)
            .filter(|ky| (iy + g.ph).checked_sub(*ky).is_some_and(|y| y < g.oh))
            .count();
        let cols = (0..g.kw)
            .filter(|kx| (ix + g.pw).checked_sub(*kx).is_some_and(|x| x < g.ow))
            .count();
        acs += (rows * cols * g.o) as u64;
    }
    acs
}

/// Each nonzero input adds its taps (times its value, for the 8-bit input) into the outputs it
/// reaches: accumulators channels-last so one input's tap is a contiguous run of output
/// channels. Built for the widest vectors the CPU has, as the float kernels are.
pub(super) fn conv_walk(
    g: &ConvGeometry,
    taps: &[i32],
    x: &[u8],
    multiply: bool,
    acs: &mut u64,
) -> Vec<i32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the build enables.
            return unsafe { conv_walk_avx512(g, taps, x, multiply, acs) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { conv_walk_avx2(g, taps, x, multiply, acs) };
        }
    }
    conv_walk_body(g, taps, x, multiply, acs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn conv_walk_avx512(
    g: &ConvGeometry,
    taps: &[i32],
    x: &[u8],
    multiply: bool,
    acs: &mut u64,
) -> Vec<i32> {
    conv_walk_body(g, taps, x, multiply, acs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn conv_walk_avx2(
    g: &ConvGeometry,
    taps: &[i32],
    x: &[u8],
    multiply: bool,
    acs: &mut u64,
) -> Vec<i32> {
    conv_walk_body(g, taps, x, multiply, acs)
}

#[inline(always)]
fn conv_walk_body(
    g: &ConvGeometry,
    taps: &[i32],
    x: &[u8],
    multiply: bool,
    acs: &mut u64,
) -> Vec<i32> {
    let mut acc = vec![0i32; g.oh * g.ow * g.o];
    for (i, &v) in x.iter().enumerate().filter(|(_, &v)| v != 0) {
        let ci = i / (g.h * g.w);
        let (iy, ix) = ((i / g.w) % g.h, i % g.w);
        let v = i32::from(v);
        for ky in 0..g.kh {
            let Some(y) = (iy + g.ph).checked_sub(ky).filter(|y| *y < g.oh) else {
                continue;
            };
            for kx in 0..g.kw {
                let Some(xo) = (ix + g.pw).checked_sub(kx).filter(|x| *x < g.ow) else {
                    continue;
                };
                let tap = &taps[((ci * g.kh + ky) * g.kw + kx) * g.o..][..g.o];
                let dst = &mut acc[(y * g.ow + xo) * g.o..][..g.o];
                if multiply {
                    for (d, &t) in dst.iter_mut().zip(tap) {
                        *d = d.wrapping_add(t.wrapping_mul(v));
                    }
                } else {
                    for (d, &t) in dst.iter_mut().zip(tap) {
                        *d = d.wrapping_add(t);
                    }
                    *acs += g.o as u64;
                }
            }
        }
    }
    let mut out = vec![0i32; g.o * g.oh * g.ow];
    for (p, row) in acc.chunks_exact(g.o).enumerate() {
        for (o, &v) in row.iter().enumerate() {
            out[o * g.oh * g.ow + p] = v;
        }
    }
    out
}

/// A walk over an activation's nonzero inputs: spikes add; 8-bit values that all share one
/// value (rate-coded pixels are 0 or 255) add too and each sum is scaled once; other values
/// multiply. `walk(multiply)` runs the walk.
pub(super) fn walk_inputs(x: &[u8], spikes: bool, walk: impl FnOnce(bool) -> Vec<i32>) -> Vec<i32> {
    if spikes {
        return walk(false);
    }
    let mut shared = None;
    if !x.iter().all(|&v| v == 0 || v == *shared.get_or_insert(v)) {
        return walk(true);
    }
    let v = i32::from(shared.unwrap_or(1));
    let mut sums = walk(false);
    sums.iter_mut().for_each(|a| *a = a.wrapping_mul(v));
    sums
}

/// The sums of an FC layer over `x`'s nonzero inputs: each adds its row of `[in][out]` weights
/// (times its value with `multiply`), built for the widest vectors the CPU has.
pub(super) fn linear_walk(weights: &[i8], m: usize, x: &[u8], multiply: bool) -> Vec<i32> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has the features the build enables.
            return unsafe { linear_walk_avx512(weights, m, x, multiply) };
        }
        if std::is_x86_feature_detected!("avx2") {
            // SAFETY: as above.
            return unsafe { linear_walk_avx2(weights, m, x, multiply) };
        }
    }
    linear_walk_body(weights, m, x, multiply)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512bw,avx2")]
unsafe fn linear_walk_avx512(weights: &[i8], m: usize, x: &[u8], multiply: bool) -> Vec<i32> {
    linear_walk_body(weights, m, x, multiply)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn linear_walk_avx2(weights: &[i8], m: usize, x: &[u8], multiply: bool) -> Vec<i32> {
    linear_walk_body(weights, m, x, multiply)
}

#[inline(always)]
fn linear_walk_body(weights: &[i8], m: usize, x: &[u8], multiply: bool) -> Vec<i32> {
    let mut acc = vec![0i32; m];
    for (i, &v) in x.iter().enumerate().filter(|(_, &v)| v != 0) {
        let row = &weights[i * m..(i + 1) * m];
        if multiply {
            let v = i32::from(v);
            for (a, &wv) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(wv).wrapping_mul(v));
            }
        } else {
            for (a, &wv) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(wv));
            }
        }
    }
    acc
}

/// A convolution's weights as taps `[ci][ky][kx][o]`: one input's tap adds a contiguous run of
/// output channels.
pub(super) fn conv_taps(
    input: [usize; 3],
    out_channels: usize,
    kernel: [usize; 2],
    weights: &[i8],
) -> Vec<i32> {
    let ([c, _, _], [kh, kw], o_n) = (input, kernel, out_channels);
    let mut taps = vec![0i32; c * kh * kw * o_n];
    for o in 0..o_n {
        for ci in 0..c {
            for ky in 0..kh {
                for kx in 0..kw {
                    taps[((ci * kh + ky) * kw + kx) * o_n + o] =
                        i32::from(weights[((o * c + ci) * kh + ky) * kw + kx]);
                }
            }
        }
    }
    taps
}
