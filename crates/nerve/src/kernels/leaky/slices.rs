//! The fused Leaky kernel on plain slices: the banded forward, the recomputing reverse pass and
//! their AVX-512 and AVX2 entry points; the Burn op in the parent module calls these.

use rayon::prelude::*;

use super::{atan_grad, fast_sigmoid_grad, LeakyParams, SurrogateGrad};
use crate::firing::Reset;
use crate::kernels::levels::round_to_levels;
#[cfg(target_arch = "x86_64")]
use crate::kernels::{isa, Isa};

/// Neurons per parallel task in the forward: enough work per task to amortise the fork, few
/// enough tasks to balance two to sixteen threads.
pub(super) const CHUNK: usize = 2048;

/// Floats of recomputed membranes one backward task keeps (512 KB): the band of neurons is as
/// wide as fits, so the reverse pass reads them from L2.
const SCRATCH: usize = 1 << 17;

/// Neurons per backward task for `steps` steps: a multiple of 16 (whole vectors) that keeps the
/// band's `steps` membranes within [`SCRATCH`], at most [`CHUNK`].
pub(super) fn backward_band_width(steps: usize) -> usize {
    (SCRATCH / steps.max(1) / 16 * 16).clamp(16, CHUNK)
}

/// One step of the membrane update for a band of neurons, in place: the arithmetic is written
/// in the reference's order (`β·m + x − r·θ`, `β·(1 − r)·m + x`) so results are bit-identical,
/// and branch-free so the loops vectorise.
#[inline(always)]
fn advance(state: &mut [f32], xt: &[f32], p: &LeakyParams) {
    let (beta, theta) = (p.beta, p.threshold);
    let xt = &xt[..state.len()];
    match p.reset {
        Reset::Subtract => {
            for (m, &x) in state.iter_mut().zip(xt) {
                let r = f32::from(u8::from(*m - theta > 0.0));
                *m = beta * *m + x - r * theta;
            }
        }
        Reset::Zero => {
            for (m, &x) in state.iter_mut().zip(xt) {
                let r = f32::from(u8::from(*m - theta > 0.0));
                *m = beta * (1.0 - r) * *m + x;
            }
        }
        Reset::None => {
            for (m, &x) in state.iter_mut().zip(xt) {
                *m = beta * *m + x;
            }
        }
    }
    if let Some(levels) = &p.levels {
        round_to_levels(levels, state);
    }
}

/// One band of neurons through all steps: `x`, `spk` and `mem` rows are `stride` apart, the
/// band starts at column `start` and is `state.len()` wide; `state` enters as the initial
/// membrane and leaves as the final one.
///
/// # Safety
/// `spk` (and `mem` when given) point to `steps` rows of `stride` floats; no other thread
/// touches columns `start..start + state.len()` of them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band(
    x: &[f32],
    spk: SyncPtr,
    mem: Option<SyncPtr>,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    let len = state.len();
    let (theta, graded) = (p.threshold, p.graded);
    for t in 0..steps {
        let at = t * stride + start;
        advance(state, &x[at..at + len], p);
        if let Some(mem) = mem {
            // SAFETY: this band's own columns of row t (see the function's contract).
            unsafe { std::slice::from_raw_parts_mut(mem.get().add(at), len) }
                .copy_from_slice(state);
        }
        // SAFETY: as above.
        let st = unsafe { std::slice::from_raw_parts_mut(spk.get().add(at), len) };
        for (s, &m) in st.iter_mut().zip(state.iter()) {
            *s = f32::from(u8::from(m - theta > 0.0)) * graded;
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band_512(
    x: &[f32],
    spk: SyncPtr,
    mem: Option<SyncPtr>,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    // SAFETY: forwarded contract.
    unsafe { forward_band(x, spk, mem, start, state, steps, stride, p) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_band_256(
    x: &[f32],
    spk: SyncPtr,
    mem: Option<SyncPtr>,
    start: usize,
    state: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
) {
    // SAFETY: forwarded contract.
    unsafe { forward_band(x, spk, mem, start, state, steps, stride, p) }
}

/// What [`forward_slices`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardSlices {
    /// Spikes `[steps, n]`.
    pub spk: Vec<f32>,
    /// The membrane after the last step `[n]`.
    pub last: Vec<f32>,
    /// Every step's membrane `[steps, n]`, with [`LeakyParams::membranes`].
    pub mem: Option<Vec<f32>>,
}

/// The forward pass on plain slices: `x` is `[steps, n]`, `mem0` `[n]`.
pub fn forward_slices(x: &[f32], mem0: &[f32], steps: usize, p: &LeakyParams) -> ForwardSlices {
    let n = mem0.len();
    assert_eq!(x.len(), steps * n, "x must be [steps, n]");
    let mut spk = vec![0f32; steps * n];
    let mut mem = p.membranes.then(|| vec![0f32; steps * n]);
    let mut last = mem0.to_vec();
    let spk_ptr = SyncPtr(spk.as_mut_ptr());
    let mem_ptr = mem.as_mut().map(|m| SyncPtr(m.as_mut_ptr()));
    last.par_chunks_mut(CHUNK)
        .enumerate()
        .for_each(|(band, state)| {
            let start = band * CHUNK;
            // SAFETY (all three): `isa()` checked the features of each build; `spk` and `mem`
            // hold `steps` rows of `n` and this task owns columns start..start + state.len().
            #[cfg(target_arch = "x86_64")]
            match isa() {
                Isa::Avx512 => {
                    unsafe { forward_band_512(x, spk_ptr, mem_ptr, start, state, steps, n, p) };
                    return;
                }
                Isa::Avx2 => {
                    unsafe { forward_band_256(x, spk_ptr, mem_ptr, start, state, steps, n, p) };
                    return;
                }
                Isa::Plain => {}
            }
            // SAFETY: as above.
            unsafe { forward_band(x, spk_ptr, mem_ptr, start, state, steps, n, p) };
        });
    ForwardSlices { spk, last, mem }
}

/// Which output's gradient a reverse pass propagates (Burn's autodiff gives each output its own
/// graph node, so each gets its own pass; the passes are linear, their sum is the gradient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seed {
    /// The spikes `[steps, n]`.
    Spikes,
    /// Every step's membrane `[steps, n]`.
    Membranes,
    /// The final membrane `[n]`.
    Last,
}

/// One band of neurons backwards through time. It first reruns the band's forward from `x`
/// into `mems` (`steps` rows of the band's width), then walks back: row `t` of `gx` holds the
/// incoming gradient of output row `t` (unused for [`Seed::Last`]) and is overwritten with the
/// gradient of `x[t]`; `carry` enters as the gradient of the final membrane and leaves as that
/// of `mem0`. `incoming(g, m)` turns an incoming gradient into one of the membrane, surrogate
/// chosen (monomorphised so the inner loop has no dispatch).
///
/// # Safety
/// `gx` points to `steps` rows of `stride` floats; no other thread touches columns
/// `start..start + carry.len()` of them.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_band(
    x: &[f32],
    mem0: &[f32],
    gx: SyncPtr,
    start: usize,
    carry: &mut [f32],
    mems: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
    incoming: impl Fn(f32, f32) -> f32,
) {
    let len = carry.len();
    let mems = &mut mems[..steps * len];
    let mut state = mem0.to_vec();
    for (t, m) in mems.chunks_exact_mut(len).enumerate() {
        let at = t * stride + start;
        advance(&mut state, &x[at..at + len], p);
        m.copy_from_slice(&state);
    }
    let (beta, theta) = (p.beta, p.threshold);
    for t in (0..steps).rev() {
        let m = &mems[t * len..(t + 1) * len];
        let prev = if t == 0 {
            mem0
        } else {
            &mems[(t - 1) * len..t * len]
        };
        // SAFETY: this band's own columns of row t (see the function's contract).
        let gxt = unsafe { std::slice::from_raw_parts_mut(gx.get().add(t * stride + start), len) };
        for i in 0..len {
            let g = carry[i] + incoming(gxt[i], m[i] - theta);
            gxt[i] = g;
            carry[i] = match p.reset {
                Reset::Zero => g * (beta * (1.0 - f32::from(u8::from(prev[i] - theta > 0.0)))),
                _ => g * beta,
            };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_band_512(
    x: &[f32],
    mem0: &[f32],
    gx: SyncPtr,
    start: usize,
    carry: &mut [f32],
    mems: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
    incoming: impl Fn(f32, f32) -> f32,
) {
    // SAFETY: forwarded contract.
    unsafe { backward_band(x, mem0, gx, start, carry, mems, steps, stride, p, incoming) }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn backward_band_256(
    x: &[f32],
    mem0: &[f32],
    gx: SyncPtr,
    start: usize,
    carry: &mut [f32],
    mems: &mut [f32],
    steps: usize,
    stride: usize,
    p: &LeakyParams,
    incoming: impl Fn(f32, f32) -> f32,
) {
    // SAFETY: forwarded contract.
    unsafe { backward_band(x, mem0, gx, start, carry, mems, steps, stride, p, incoming) }
}

/// The reverse pass in place: `x [steps, n]` is the op's input, `mem0 [n]` its initial
/// membrane. `gx` enters holding the gradient of the output `seed` (`[steps, n]`; ignored for
/// [`Seed::Last`], whose gradient `g_last [n]` is) and leaves holding the gradient of `x`;
/// returns the gradient of `mem0`. The membranes are recomputed from `x`, a band of neurons at a
/// time, so the pass needs no stored forward state beyond its input.
pub fn backward_in_place(
    x: &[f32],
    mem0: &[f32],
    steps: usize,
    p: &LeakyParams,
    seed: Seed,
    g_last: Option<&[f32]>,
    gx: &mut [f32],
) -> Vec<f32> {
    let n = mem0.len();
    assert_eq!(
        (x.len(), gx.len()),
        (steps * n, steps * n),
        "x, gx: [steps, n]"
    );
    let mut gm0 = match (seed, g_last) {
        (Seed::Last, Some(g)) => {
            assert_eq!(g.len(), n, "g_last: [n]");
            g.to_vec()
        }
        (Seed::Last, None) => panic!("Seed::Last needs g_last"),
        _ => vec![0f32; n],
    };
    let width = backward_band_width(steps);
    let gx_ptr = SyncPtr(gx.as_mut_ptr());
    let (graded, surrogate) = (p.graded, p.surrogate);
    gm0.par_chunks_mut(width).enumerate().for_each_init(
        || vec![0f32; steps * width],
        |mems, (band, carry)| {
            let start = band * width;
            let m0 = &mem0[start..start + carry.len()];
            macro_rules! run {
                ($f:expr) => {{
                    // SAFETY (all three): `isa()` checked the features of each build; `gx`
                    // holds `steps` rows of `n` and this task owns columns
                    // start..start + carry.len().
                    #[cfg(target_arch = "x86_64")]
                    match isa() {
                        Isa::Avx512 => {
                            return unsafe {
                                backward_band_512(
                                    x, m0, gx_ptr, start, carry, mems, steps, n, p, $f,
                                )
                            };
                        }
                        Isa::Avx2 => {
                            return unsafe {
                                backward_band_256(
                                    x, m0, gx_ptr, start, carry, mems, steps, n, p, $f,
                                )
                            };
                        }
                        Isa::Plain => {}
                    }
                    // SAFETY: as above.
                    unsafe { backward_band(x, m0, gx_ptr, start, carry, mems, steps, n, p, $f) }
                }};
            }
            match (seed, surrogate) {
                (Seed::Last, _) => run!(|_, _| 0.0),
                (Seed::Membranes, _) => run!(|g, _| g),
                // The two common surrogates get their own loop without a per-element match.
                (Seed::Spikes, SurrogateGrad::FastSigmoid(slope)) => {
                    run!(move |g, u| g * graded * fast_sigmoid_grad(slope, u))
                }
                (Seed::Spikes, SurrogateGrad::ATan(alpha)) => {
                    run!(move |g, u| g * graded * atan_grad(alpha, u))
                }
                (Seed::Spikes, other) => run!(move |g, u| g * graded * other.at(u)),
            }
        },
    );
    gm0
}

/// [`backward_in_place`] into new buffers: `g` is the gradient of the output `seed` (`[steps, n]`,
/// or `[n]` for [`Seed::Last`]); returns the gradients of `x [steps, n]` and `mem0 [n]`.
pub fn backward_slices(
    x: &[f32],
    mem0: &[f32],
    steps: usize,
    p: &LeakyParams,
    seed: Seed,
    g: &[f32],
) -> (Vec<f32>, Vec<f32>) {
    let n = mem0.len();
    match seed {
        Seed::Last => {
            let mut gx = vec![0f32; steps * n];
            let gm0 = backward_in_place(x, mem0, steps, p, seed, Some(g), &mut gx);
            (gx, gm0)
        }
        _ => {
            let mut gx = g.to_vec();
            let gm0 = backward_in_place(x, mem0, steps, p, seed, None, &mut gx);
            (gx, gm0)
        }
    }
}

/// A raw pointer that tasks writing disjoint elements may share.
#[derive(Clone, Copy)]
struct SyncPtr(*mut f32);
// SAFETY: used only for disjoint writes, see `forward_slices` and `backward_in_place`.
unsafe impl Send for SyncPtr {}
unsafe impl Sync for SyncPtr {}
impl SyncPtr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod builds {
    use super::*;

    /// The AVX-512 and AVX2 builds give the plain build's bits (the process-wide `isa()` picks
    /// only one of them, so they are called here directly).
    #[test]
    fn wide_builds_equal_the_plain_one() {
        let wide = [
            std::is_x86_feature_detected!("avx512f"),
            std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"),
        ];
        let (steps, n) = (40, 37);
        let p = LeakyParams {
            beta: 0.9,
            threshold: 0.8,
            graded: 0.7,
            reset: Reset::Subtract,
            surrogate: SurrogateGrad::ATan(2.0),
            membranes: true,
            levels: None,
        };
        let x: Vec<f32> = (0..steps * n)
            .map(|i| (i * 7919 % 1000) as f32 / 500.0 - 0.7)
            .collect();
        let mem0: Vec<f32> = (0..n).map(|i| i as f32 / n as f32 - 0.5).collect();
        let forward = |build: usize| {
            let (mut spk, mut mem, mut state) =
                (vec![0f32; steps * n], vec![0f32; steps * n], mem0.clone());
            let (s, m) = (SyncPtr(spk.as_mut_ptr()), Some(SyncPtr(mem.as_mut_ptr())));
            let st = &mut state;
            // SAFETY: the build runs on this CPU (checked by the caller); the buffers hold
            // `steps` rows of `n` and the band is all `n` columns.
            unsafe {
                match build {
                    0 => forward_band_512(&x, s, m, 0, st, steps, n, &p),
                    1 => forward_band_256(&x, s, m, 0, st, steps, n, &p),
                    _ => forward_band(&x, s, m, 0, st, steps, n, &p),
                }
            }
            [spk, mem, state]
        };
        let backward = |build: usize| {
            let mut gx = x.iter().map(|v| v * 0.3).collect::<Vec<_>>();
            let (mut carry, mut mems) = (vec![0.25f32; n], vec![0f32; steps * n]);
            let g = SyncPtr(gx.as_mut_ptr());
            let (c, ms) = (&mut carry, &mut mems);
            let incoming = |g: f32, u: f32| g * atan_grad(2.0, u);
            // SAFETY: as in `forward`.
            unsafe {
                match build {
                    0 => backward_band_512(&x, &mem0, g, 0, c, ms, steps, n, &p, incoming),
                    1 => backward_band_256(&x, &mem0, g, 0, c, ms, steps, n, &p, incoming),
                    _ => backward_band(&x, &mem0, g, 0, c, ms, steps, n, &p, incoming),
                }
            }
            [gx, carry]
        };
        let bits = |v: &[Vec<f32>]| -> Vec<Vec<u32>> {
            v.iter()
                .map(|a| a.iter().map(|f| f.to_bits()).collect())
                .collect()
        };
        let (plain_fwd, plain_bwd) = (bits(&forward(2)), bits(&backward(2)));
        assert!(plain_fwd[0].iter().any(|&s| s != 0) && plain_fwd[0].contains(&0));
        for (build, has) in wide.into_iter().enumerate() {
            if !has {
                println!("skipped build {build}: this CPU lacks its features");
                continue;
            }
            assert_eq!(bits(&forward(build)), plain_fwd, "build {build} forward");
            assert_eq!(bits(&backward(build)), plain_bwd, "build {build} backward");
        }
    }
}
