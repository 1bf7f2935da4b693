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

/// Vectors sharing one decoding of a block in [`band_batch`].
const GROUP: usize = 4;
/// Blocks summed in i16 lanes by [`band_batch`] before they are widened: a block adds four
/// pair sums of magnitude ≤ 512 to a lane, and 15 · 2048 = 30720 ≤ `i16::MAX`.
const FLUSH_BLOCKS: usize = 15;

/// One row of [`band_batch`] for up to [`GROUP`] vectors `xs`: `Σ (w + 1) · x` per vector as
/// 8 i32 lanes to be added. The four fields of each block are taken out once (three shifts,
/// four masks) and multiplied with every vector's activations.
///
/// # Safety
/// AVX2; `w` points at `blocks` blocks, each `xs[v]` at `128 · blocks` bytes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn row_group(
    w: *const u8,
    xs: &[*const i8],
    blocks: usize,
    end: usize,
    prefetch: bool,
) -> [__m256i; GROUP] {
    let (low, one) = (_mm256_set1_epi8(3), _mm256_set1_epi16(1));
    let mut acc32 = [_mm256_setzero_si256(); GROUP];
    let mut acc16 = [_mm256_setzero_si256(); GROUP];
    for b in 0..blocks {
        // SAFETY: block `b` and its activations are in range by the caller's contract;
        // prefetches are only hints.
        unsafe {
            let at = w.add(32 * b);
            let ahead = at.wrapping_add(PREFETCH_BYTES);
            if prefetch && b % 2 == 0 && (ahead as usize) < end {
                _mm_prefetch::<_MM_HINT_T1>(ahead as *const i8);
            }
            let wv = _mm256_loadu_si256(at as *const __m256i);
            let f = [
                _mm256_and_si256(wv, low),
                _mm256_and_si256(_mm256_srli_epi16::<2>(wv), low),
                _mm256_and_si256(_mm256_srli_epi16::<4>(wv), low),
                _mm256_and_si256(_mm256_srli_epi16::<6>(wv), low),
            ];
            for (v, &x) in xs.iter().enumerate() {
                let x = x.add(BLOCK_COLS * b) as *const __m256i;
                let p01 = _mm256_add_epi16(
                    _mm256_maddubs_epi16(f[0], _mm256_loadu_si256(x)),
                    _mm256_maddubs_epi16(f[1], _mm256_loadu_si256(x.add(1))),
                );
                let p23 = _mm256_add_epi16(
                    _mm256_maddubs_epi16(f[2], _mm256_loadu_si256(x.add(2))),
                    _mm256_maddubs_epi16(f[3], _mm256_loadu_si256(x.add(3))),
                );
                acc16[v] = _mm256_add_epi16(acc16[v], _mm256_add_epi16(p01, p23));
            }
        }
        if (b + 1) % FLUSH_BLOCKS == 0 || b + 1 == blocks {
            for v in 0..xs.len() {
                acc32[v] = _mm256_add_epi32(acc32[v], _mm256_madd_epi16(acc16[v], one));
                acc16[v] = _mm256_setzero_si256();
            }
        }
    }
    acc32
}

/// The AVX2 kernel for one band and N vectors at once (`inputs[v]` = padded activations and
/// their sum): the band's rows are streamed once, and each block is taken apart once per
/// [`GROUP`] vectors. Writes `out[v · 128 + r]`, like [`band`] per vector.
///
/// # Safety
/// As [`band`], for every vector; `out` holds `128 · inputs.len()` values.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn band_batch(
    lines: &[Line],
    inputs: &[(&[i8], i32)],
    end: *const Line,
    out: &mut [i32],
) {
    let blocks = 2 * lines.len() / BAND_ROWS;
    debug_assert!(inputs.iter().all(|(x, _)| x.len() >= BLOCK_COLS * blocks));
    debug_assert_eq!(out.len(), BAND_ROWS * inputs.len());
    let (end, wp) = (end as usize, lines.as_ptr() as *const u8);
    for q in 0..BAND_ROWS / QUAD {
        for (g, group) in inputs.chunks(GROUP).enumerate() {
            let mut xs = [std::ptr::null(); GROUP];
            for (p, (x, _)) in xs.iter_mut().zip(group) {
                *p = x.as_ptr();
            }
            let xs = &xs[..group.len()];
            let mut rows = [[_mm256_setzero_si256(); GROUP]; QUAD];
            for (k, r) in rows.iter_mut().enumerate() {
                let w = wp.wrapping_add(32 * blocks * (QUAD * q + k));
                // SAFETY: row 4q + k of the band; the caller's contract covers it.
                *r = unsafe { row_group(w, xs, blocks, end, g == 0) };
            }
            for (v, &(_, sum)) in group.iter().enumerate() {
                let [a, b, c, d] = [rows[0][v], rows[1][v], rows[2][v], rows[3][v]];
                let h = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
                let s = _mm_add_epi32(_mm256_castsi256_si128(h), _mm256_extracti128_si256::<1>(h));
                let s = _mm_sub_epi32(s, _mm_set1_epi32(sum));
                let at = (GROUP * g + v) * BAND_ROWS + QUAD * q;
                // SAFETY: `at + 4 ≤ out.len()`.
                unsafe { _mm_storeu_si128(out.as_mut_ptr().add(at) as *mut __m128i, s) };
            }
        }
    }
}
