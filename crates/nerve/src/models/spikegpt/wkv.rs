//! RWKV-4's WKV operator, per channel, in a parallel form for training and a recurrent form for
//! generation.
//!
//! With `w = −exp(time_decay)` and `u = time_first`, for a sequence `t = 0..T−1`:
//!
//! ```text
//! wkv_t = (Σ_{i<t} e^{(t−1−i)w + k_i} v_i + e^{u + k_t} v_t) / (Σ_{i<t} e^{(t−1−i)w + k_i} + e^{u + k_t})
//! ```
//!
//! Both forms are free of overflow for any `k`: the parallel form is a masked softmax, the
//! recurrent form keeps RWKV's `(aa, bb, pp)` with `pp` the running maximum exponent.
//!
//! Which one trains faster depends on the device. On Burn's `flex` CPU backend the recurrence
//! run token by token ([`wkv_recurrent`]) wins clearly: forward plus backward at `B = 16`,
//! `T = 128`, `C = 256` took 0.08–0.11 s against 0.46–0.55 s for the chunked form with
//! `C = 16` (the best chunk; 0.9 s at 32, 3.4 s for the plain `[T, T]` form), and 0.18 s
//! against 1.1 s at `T = 256`. Its per-token operations are small but few; the masked softmax
//! touches `T·(C+1) + T²/C` scores per channel, a dozen times each with autodiff. On a GPU,
//! where each launch costs more than the arithmetic, the chunked form should be the better one.
//!
//! The parallel form splits the sequence into chunks of `C` tokens. Inside a chunk the scores
//! form a `[C, C]` lower triangle; everything before the chunk is summarised by one extra
//! "virtual token" whose score is `j·w + L_c` and whose value is `V_c`, where `L_c` is the
//! log-sum-exp of the scores `(cC − 1 − i)w + k_i` of all earlier tokens and `V_c` their
//! softmax-weighted mean value. The cost per channel is `T·(C + 1) + (T/C)·T` scores instead of
//! `T²`, all of it plain differentiable tensor operations.

use burn::tensor::activation::softmax;
use burn::tensor::{Device, Tensor, TensorData};

use super::tokens::split_tokens;

/// Score of an excluded position: finite, so a row with nothing in it (the state entering the
/// first chunk) stays finite instead of turning into NaN, and far below any real score.
const MASKED: f32 = -1e30;

/// Initial running maximum exponent of the recurrent state (RWKV's `-1e38`).
pub const PP_INIT: f64 = -1e38;

/// The recurrent WKV state of one layer, each `[B, C]`.
#[derive(Debug, Clone)]
pub struct WkvState {
    /// Numerator `Σ e^{… − pp} v`.
    pub aa: Tensor<2>,
    /// Denominator `Σ e^{… − pp}`.
    pub bb: Tensor<2>,
    /// The exponent `aa` and `bb` are scaled by.
    pub pp: Tensor<2>,
}

impl WkvState {
    /// The state before the first token.
    pub fn zeros(batch: usize, channels: usize, device: &Device) -> Self {
        Self {
            aa: Tensor::zeros([batch, channels], device),
            bb: Tensor::zeros([batch, channels], device),
            pp: Tensor::full([batch, channels], PP_INIT, device),
        }
    }
}

/// One recurrent step: `w`, `u` `[C]`, `k`, `v` `[B, C]`; returns `wkv_t` `[B, C]` and the new
/// state.
pub fn wkv_step(
    w: Tensor<1>,
    u: Tensor<1>,
    k: Tensor<2>,
    v: Tensor<2>,
    state: WkvState,
) -> (Tensor<2>, WkvState) {
    let WkvState { aa, bb, pp } = state;
    let w = w.unsqueeze::<2>();
    let u = u.unsqueeze::<2>();

    let ww = u + k.clone();
    let p = pp.clone().max_pair(ww.clone());
    let e1 = (pp.clone() - p.clone()).exp();
    let e2 = (ww - p).exp();
    let out = (e1.clone() * aa.clone() + e2.clone() * v.clone()) / (e1 * bb.clone() + e2);

    let ww = pp + w;
    let p = ww.clone().max_pair(k.clone());
    let e1 = (ww - p.clone()).exp();
    let e2 = (k - p.clone()).exp();
    let aa = e1.clone() * aa + e2.clone() * v;
    let bb = e1 * bb + e2;
    (out, WkvState { aa, bb, pp: p })
}

/// The recurrent form over a whole sequence `k`, `v` `[B, T, C]` from `state` (zeros when
/// `None`); returns `wkv` `[B, T, C]` and the final state.
pub fn wkv_recurrent(
    w: Tensor<1>,
    u: Tensor<1>,
    k: Tensor<3>,
    v: Tensor<3>,
    state: Option<WkvState>,
) -> (Tensor<3>, WkvState) {
    let [b, t, c] = k.dims();
    let mut state = state.unwrap_or_else(|| WkvState::zeros(b, c, &k.device()));
    if t == 0 {
        return (k, state);
    }
    let mut outs = Vec::with_capacity(t);
    for (kt, vt) in split_tokens(k).into_iter().zip(split_tokens(v)) {
        let (o, next) = wkv_step(w.clone(), u.clone(), kt, vt, state);
        state = next;
        outs.push(o.unsqueeze_dim::<3>(1));
    }
    (Tensor::cat(outs, 1), state)
}

/// The parallel form from a zero state: `w`, `u` `[C]`, `k`, `v` `[B, T, C]` → `[B, T, C]`.
///
/// `chunk` is the chunk length `C` (clamped to `1..=T`); `chunk ≥ T` gives the plain `[T, T]`
/// masked softmax. The result does not depend on it beyond rounding.
pub fn wkv_parallel(
    w: Tensor<1>,
    u: Tensor<1>,
    k: Tensor<3>,
    v: Tensor<3>,
    chunk: usize,
) -> Tensor<3> {
    let [b, t, d] = k.dims();
    if t == 0 {
        return k;
    }
    let device = k.device();
    let c = chunk.clamp(1, t);
    let n = t.div_ceil(c);
    let tp = n * c;

    // Channels before time, so that every softmax runs over the last axis.
    let mut kt = k.swap_dims(1, 2);
    let mut vt = v.swap_dims(1, 2);
    if tp > t {
        // Padding at the end never reaches a real position: it is either masked (inside the
        // last chunk) or after every chunk start.
        let pad = Tensor::<3>::zeros([b, d, tp - t], &device);
        kt = Tensor::cat(vec![kt, pad.clone()], 2);
        vt = Tensor::cat(vec![vt, pad], 2);
    }

    // Inside a chunk: (j−1−i)w + k_i below the diagonal, u + k_j on it, masked above it.
    let (lag, diag, mask) = intra_constants(c, &device);
    let w3 = w.clone().reshape([d, 1, 1]);
    let u3 = u.reshape([d, 1, 1]);
    let wpart = lag * w3.clone() + diag * u3 + mask; // [d, C, C]
    let scores = wpart.reshape([1, d, 1, c, c]) + kt.clone().reshape([b, d, n, 1, c]);
    let vc = vt.clone().reshape([b, d, n, c]);

    let out = if n == 1 {
        softmax(scores, 4).matmul(vc.reshape([b, d, 1, c, 1]))
    } else {
        // Everything before chunk c: scores (cC−1−i)w + k_i for i < cC.
        let (lag_s, mask_s) = state_constants(n, c, &device);
        let s = (lag_s * w3 + mask_s).reshape([1, d, n, tp]) + kt.reshape([b, d, 1, tp]);
        let m = s.clone().max_dim(3).detach();
        let e = (s - m.clone()).exp();
        let z = e.clone().sum_dim(3);
        let lse = m + z.clone().log(); // [B, d, n, 1]
        let v_prev = (e / z).matmul(vt.reshape([b, d, tp, 1])); // [B, d, n, 1]

        // The earlier tokens enter position j of the chunk with score j·w + L_c.
        let j = Tensor::<1>::from_data(
            TensorData::new((0..c).map(|j| j as f32).collect::<Vec<_>>(), [c]),
            &device,
        );
        let jw = j.reshape([1, c]) * w.reshape([d, 1]);
        let prev = jw.reshape([1, d, 1, c, 1]) + lse.reshape([b, d, n, 1, 1]);
        let scores = Tensor::cat(vec![scores, prev], 4); // [B, d, n, C, C+1]
        let values = Tensor::cat(vec![vc, v_prev], 3).reshape([b, d, n, c + 1, 1]);
        softmax(scores, 4).matmul(values)
    };
    out.reshape([b, d, tp]).narrow(2, 0, t).swap_dims(1, 2)
}

/// `[1, C, C]` constants of a chunk: the lag `j−1−i` below the diagonal, the identity, and the
/// mask above the diagonal.
fn intra_constants(c: usize, device: &Device) -> (Tensor<3>, Tensor<3>, Tensor<3>) {
    let mut lag = vec![0f32; c * c];
    let mut diag = vec![0f32; c * c];
    let mut mask = vec![0f32; c * c];
    for j in 0..c {
        for i in 0..c {
            let at = j * c + i;
            match i.cmp(&j) {
                std::cmp::Ordering::Less => lag[at] = (j - 1 - i) as f32,
                std::cmp::Ordering::Equal => diag[at] = 1.0,
                std::cmp::Ordering::Greater => mask[at] = MASKED,
            }
        }
    }
    let t = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, c, c]), device);
    (t(lag), t(diag), t(mask))
}

/// `[1, n, nC]` constants of the chunk-start states: the lag `cC−1−i` for `i < cC`, and the
/// mask elsewhere.
fn state_constants(n: usize, c: usize, device: &Device) -> (Tensor<3>, Tensor<3>) {
    let tp = n * c;
    let mut lag = vec![0f32; n * tp];
    let mut mask = vec![0f32; n * tp];
    for ch in 0..n {
        let start = ch * c;
        for i in 0..tp {
            if i < start {
                lag[ch * tp + i] = (start - 1 - i) as f32;
            } else {
                mask[ch * tp + i] = MASKED;
            }
        }
    }
    let t = |v: Vec<f32>| Tensor::<3>::from_data(TensorData::new(v, [1, n, tp]), device);
    (t(lag), t(mask))
}
