//! The AVX2 kernel, for x86-64 CPUs without AVX-512BW (most laptops, AMD before Zen 4), on
//! the two-bit layout ([`super::two_bit`]).
//!
//! Per 32-byte block (128 columns of one row) one shift by 4 and four masks give the four
//! fields: `w & 3` and `(w >> 4) & 3` are `w + 1` of columns 0–31 and 64–95, `w & 12` and
//! `(w >> 4) & 12` are 4 · (`w + 1`) of columns 32–63 and 96–127. `vpmaddubsw` multiplies each
//! by its 32 int8 activations and adds neighbouring pairs into i16 lanes; the unscaled and the
//! ×4 products go to two i16 sums, widened every two blocks with `vpmaddwd` by 4 and by 1, so
//! a row sums to exactly 4 · `Σ (w + 1) · x`. In two blocks an unscaled lane gathers 4 pair
//! sums of magnitude ≤ 2 · 2 · 128 (≤ 2048) and a ×4 lane 4 of ≤ 2048 (≤ 8192): no i16
//! overflow.
//! Four rows are reduced together with `vphaddd`, then divided by 4 and `Σ x` subtracted.

use super::two_bit::BLOCK_COLS;
use super::{Line, BAND_ROWS, PREFETCH_BYTES};
use std::arch::x86_64::*;

/// Rows reduced together at the end of a row.
const QUAD: usize = 4;

/// The unscaled and ×4 products of one block at `w` with its 128 activations at `x`.
#[inline(always)]
unsafe fn block(w: *const u8, x: *const i8) -> (__m256i, __m256i) {
    // SAFETY: the caller passes a block and its activations.
    unsafe {
        let (low, high) = (_mm256_set1_epi8(3), _mm256_set1_epi8(12));
        let w = _mm256_loadu_si256(w as *const __m256i);
        let h = _mm256_srli_epi16::<4>(w);
        let x = x as *const __m256i;
        let p0 = _mm256_maddubs_epi16(_mm256_and_si256(w, low), _mm256_loadu_si256(x));
        let p1 = _mm256_maddubs_epi16(_mm256_and_si256(w, high), _mm256_loadu_si256(x.add(1)));
        let p2 = _mm256_maddubs_epi16(_mm256_and_si256(h, low), _mm256_loadu_si256(x.add(2)));
        let p3 = _mm256_maddubs_epi16(_mm256_and_si256(h, high), _mm256_loadu_si256(x.add(3)));
        (_mm256_add_epi16(p0, p2), _mm256_add_epi16(p1, p3))
    }
}

/// 4 · `Σ (w + 1) · x` of one row of `blocks` blocks at `w`, as 8 i32 lanes to be added;
/// prefetches `PREFETCH_BYTES` ahead while that stays below `end`.
///
/// # Safety
/// AVX2; `w` points at `blocks` 32-byte blocks and `x` at `128 · blocks` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn row(w: *const u8, x: *const i8, blocks: usize, end: usize) -> __m256i {
    let (four, one) = (_mm256_set1_epi16(4), _mm256_set1_epi16(1));
    let mut acc = _mm256_setzero_si256();
    let mut b = 0;
    while b < blocks {
        // SAFETY: blocks `b` and `b + 1` (when below `blocks`) and their activations are in
        // range by the caller's contract; prefetches are only hints.
        unsafe {
            let at = w.add(32 * b);
            let ahead = at.wrapping_add(PREFETCH_BYTES);
            if (ahead as usize) < end {
                _mm_prefetch::<_MM_HINT_T1>(ahead as *const i8);
            }
            let (mut unscaled, mut scaled) = block(at, x.add(BLOCK_COLS * b));
            if b + 1 < blocks {
                let (u, s) = block(at.add(32), x.add(BLOCK_COLS * (b + 1)));
                unscaled = _mm256_add_epi16(unscaled, u);
                scaled = _mm256_add_epi16(scaled, s);
            }
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(unscaled, four));
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(scaled, one));
        }
        b += 2;
    }
    acc
}

/// AVX2 kernel for one band of 128 rows of the two-bit layout: `Σ_c w · x` per row, with `x`
/// padded by zeros to whole blocks and `x_sum = Σ x`. The weights are prefetched into L2
/// `PREFETCH_BYTES` ahead while that stays below `end` (prefetches never fault).
///
/// # Safety
/// The CPU supports AVX2; `lines` holds the band's lines and `x` at least 128 bytes per
/// block of a row.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn band(
    lines: &[Line],
    x: &[i8],
    x_sum: i32,
    end: *const Line,
) -> [i32; BAND_ROWS] {
    let blocks = 2 * lines.len() / BAND_ROWS;
    debug_assert!(x.len() >= BLOCK_COLS * blocks);
    let (end, wp, xp) = (end as usize, lines.as_ptr() as *const u8, x.as_ptr());
    let mut out = [0i32; BAND_ROWS];
    for (q, o) in out.chunks_exact_mut(QUAD).enumerate() {
        // SAFETY: rows 4q..4q + 4 of the band; the caller's contract covers them.
        unsafe {
            let r = |k: usize| row(wp.add(32 * blocks * (QUAD * q + k)), xp, blocks, end);
            let (a, b, c, d) = (r(0), r(1), r(2), r(3));
            // Lane sums of the four rows, low and high 128 bits apart, then added.
            let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
            let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
            let s = _mm_sub_epi32(_mm_srai_epi32::<2>(s), _mm_set1_epi32(x_sum));
            _mm_storeu_si128(o.as_mut_ptr() as *mut __m128i, s);
        }
    }
    out
}
