//! The x86-64 kernels (AVX-512BW), chosen at run time where the CPU has them.

use super::pack::DIGIT_MASKS;
use super::{Line, QuantizedActivations, BAND_ROWS, BAND_TILES, PREFETCH_BYTES, TILE_ROWS};
use std::arch::x86_64::*;

/// Builds every group table with masked adds and subtracts of the broadcast activations.
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512BW.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn build_tables(a: &mut QuantizedActivations) {
    // The padded values hold a whole group for every table.
    for (table, x) in a.tables.iter_mut().zip(a.q8.chunks_exact(3)) {
        let mut t = _mm512_setzero_si512();
        for (k, &(plus, minus)) in DIGIT_MASKS.iter().enumerate() {
            let v = _mm512_set1_epi16(x[k] as i16);
            t = _mm512_mask_add_epi16(t, plus, t, v);
            t = _mm512_mask_sub_epi16(t, minus, t, v);
        }
        // SAFETY: `Line` is 64 bytes, 64-aligned.
        unsafe { _mm512_store_si512(table.0.as_mut_ptr() as *mut _, t) };
    }
}

/// Sign-extends the 32 i16 lanes of `v` into two halves of 16 i32 lanes and adds them.
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
fn widen_add(acc: [__m512i; 2], v: __m512i) -> [__m512i; 2] {
    let lo = _mm512_cvtepi16_epi32(_mm512_castsi512_si256(v));
    let hi = _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64::<1>(v));
    [_mm512_add_epi32(acc[0], lo), _mm512_add_epi32(acc[1], hi)]
}

/// AVX-512BW kernel for one band of 128 rows: per column block and tile, per word line,
/// three `vpermw` lookups (one per code) into the group tables, accumulated in i16 lanes
/// (one per row) and flushed to i32 after the block. Lines are prefetched into L2
/// `PREFETCH_BYTES` ahead while that stays below `end` (prefetches never fault).
///
/// # Safety
/// The CPU supports AVX-512F and AVX-512BW; `lines` holds the band's `4 * words` lines,
/// `tables` at least `3 * words` tables.
#[target_feature(enable = "avx512f,avx512bw")]
pub(super) unsafe fn band(
    lines: &[Line],
    tables: &[Line],
    words: usize,
    block: usize,
    end: *const Line,
) -> [i32; BAND_ROWS] {
    debug_assert!(lines.len() >= BAND_TILES * words && tables.len() >= 3 * words);
    let tp = tables.as_ptr();
    let end = end as usize;
    let mut lp = lines.as_ptr();
    let mut total = [[_mm512_setzero_si512(); 2]; BAND_TILES];
    for q0 in (0..words).step_by(block) {
        let q1 = (q0 + block).min(words);
        for tile in total.iter_mut() {
            // One accumulator per code position keeps the three adds independent.
            let mut acc = [_mm512_setzero_si512(); 3];
            for q in q0..q1 {
                // SAFETY: `lp` walks the band's lines in order (4 · words in all) and
                // 3q + 2 < 3 · words; lines and tables are 64-aligned.
                unsafe {
                    let ahead = (lp as *const u8).wrapping_add(PREFETCH_BYTES);
                    if (ahead as usize) < end {
                        _mm_prefetch::<_MM_HINT_T1>(ahead as *const i8);
                    }
                    let w = _mm512_load_si512(lp as *const _);
                    lp = lp.add(1);
                    let t = tp.add(3 * q);
                    let t0 = _mm512_load_si512(t as *const _);
                    let t1 = _mm512_load_si512(t.add(1) as *const _);
                    let t2 = _mm512_load_si512(t.add(2) as *const _);
                    // vpermw reads the low 5 bits of each index lane.
                    acc[0] = _mm512_add_epi16(acc[0], _mm512_permutexvar_epi16(w, t0));
                    let w1 = _mm512_srli_epi16::<5>(w);
                    acc[1] = _mm512_add_epi16(acc[1], _mm512_permutexvar_epi16(w1, t1));
                    let w2 = _mm512_srli_epi16::<10>(w);
                    acc[2] = _mm512_add_epi16(acc[2], _mm512_permutexvar_epi16(w2, t2));
                }
            }
            for a in acc {
                *tile = widen_add(*tile, a);
            }
        }
    }
    let mut out = [0i32; BAND_ROWS];
    for (o, t) in out.chunks_mut(TILE_ROWS).zip(total) {
        // SAFETY: each chunk is 32 i32 = 128 bytes, two __m512i.
        unsafe {
            _mm512_storeu_si512(o.as_mut_ptr() as *mut _, t[0]);
            _mm512_storeu_si512(o.as_mut_ptr().add(16) as *mut _, t[1]);
        }
    }
    out
}
