//! The AVX2 kernels, for x86-64 CPUs without AVX-512BW (most laptops, AMD before Zen 4).
//!
//! AVX2 has no 16-bit permutation, so a table of 32 i16 entries is looked up with `vpshufb`
//! (16 byte entries per 128-bit lane): [`split_tables`] stores each table as the low bytes of
//! its entries (0–15, 16–31) and then their high bytes, and the kernel looks a code up four
//! times (low/high byte × entries 0–15/16–31; bit 7 of an index zeroes the half it does not
//! belong to) and blends the two bytes back into an i16.

use super::pack::DIGIT_MASKS;
use super::{Line, QuantizedActivations, BAND_ROWS, PREFETCH_BYTES, TILE_ROWS};
use std::arch::x86_64::*;

/// Words summed into the i16 accumulators before they are widened to i32: each word adds
/// three entries of magnitude ≤ 384 to one accumulator, and 28 · 3 · 384 = 32256 ≤ `i16::MAX`.
const FLUSH_WORDS: usize = 28;

/// Builds every group table with adds and subtracts of the broadcast activations under
/// per-lane masks (the same entries as the portable and AVX-512 builders).
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub(super) unsafe fn build_tables(a: &mut QuantizedActivations) {
    // Per digit and per half of the 32 lanes: all-ones where the code's digit is +1 / −1.
    let lane_masks = |bits: u32, half: usize| {
        let lanes: [i16; 16] = std::array::from_fn(|i| -(((bits >> (16 * half + i)) & 1) as i16));
        // SAFETY: 16 i16 are 32 bytes.
        unsafe { _mm256_loadu_si256(lanes.as_ptr() as *const _) }
    };
    let masks: [[(__m256i, __m256i); 2]; 3] = std::array::from_fn(|k| {
        let (plus, minus) = DIGIT_MASKS[k];
        std::array::from_fn(|h| (lane_masks(plus, h), lane_masks(minus, h)))
    });
    for g in 0..a.tables.len() {
        let x = a.group(g);
        let mut t = [_mm256_setzero_si256(); 2];
        for (k, m) in masks.iter().enumerate() {
            let v = _mm256_set1_epi16(x[k]);
            for h in 0..2 {
                let add = _mm256_and_si256(v, m[h].0);
                let sub = _mm256_and_si256(v, m[h].1);
                t[h] = _mm256_sub_epi16(_mm256_add_epi16(t[h], add), sub);
            }
        }
        let out = a.tables[g].0.as_mut_ptr();
        // SAFETY: a table is 32 i16, two 256-bit halves.
        unsafe {
            _mm256_storeu_si256(out as *mut _, t[0]);
            _mm256_storeu_si256(out.add(16) as *mut _, t[1]);
        }
    }
}

/// Each table rearranged for [`band`]: bytes 0–31 are the low bytes of entries 0–31, bytes
/// 32–63 their high bytes.
pub(super) fn split_tables(tables: &[Line]) -> Vec<Line> {
    tables
        .iter()
        .map(|t| {
            let mut bytes = [0u8; 64];
            for (e, &v) in t.0.iter().enumerate() {
                let [lo, hi] = v.to_le_bytes();
                bytes[e] = lo;
                bytes[32 + e] = hi;
            }
            Line(std::array::from_fn(|i| {
                i16::from_le_bytes([bytes[2 * i], bytes[2 * i + 1]])
            }))
        })
        .collect()
}

/// The four 16-entry byte tables of one split table, each in both 128-bit lanes.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn load_table(t: *const Line) -> [__m256i; 4] {
    let b = t as *const __m128i;
    // SAFETY: a Line is 64 bytes, four 16-byte pieces (the caller passes a valid table).
    unsafe {
        [
            _mm256_broadcastsi128_si256(_mm_loadu_si128(b)),
            _mm256_broadcastsi128_si256(_mm_loadu_si128(b.add(1))),
            _mm256_broadcastsi128_si256(_mm_loadu_si128(b.add(2))),
            _mm256_broadcastsi128_si256(_mm_loadu_si128(b.add(3))),
        ]
    }
}

/// Looks up the code at bit `SHIFT` of each of 16 words in the split table `t`: 16 i16 entries.
#[inline]
#[target_feature(enable = "avx2")]
fn lookup<const SHIFT: i32>(w: __m256i, t: &[__m256i; 4]) -> __m256i {
    let idx = _mm256_and_si256(_mm256_srli_epi16::<SHIFT>(w), _mm256_set1_epi16(31));
    // The index in both bytes of its lane; bit 7 set where it is ≥ 16 (entries 16–31).
    let both = _mm256_mullo_epi16(idx, _mm256_set1_epi16(0x0101));
    let bit7 = _mm256_set1_epi8(0x80u8 as i8);
    let i0 = _mm256_or_si256(both, _mm256_and_si256(_mm256_slli_epi16::<3>(both), bit7));
    let i1 = _mm256_xor_si256(i0, bit7);
    let lo = _mm256_or_si256(_mm256_shuffle_epi8(t[0], i0), _mm256_shuffle_epi8(t[1], i1));
    let hi = _mm256_or_si256(_mm256_shuffle_epi8(t[2], i0), _mm256_shuffle_epi8(t[3], i1));
    _mm256_blendv_epi8(lo, hi, _mm256_set1_epi16(0xFF00u16 as i16))
}

/// Adds the 16 i16 lanes of `acc` to the 16 i32 at `out`.
#[inline]
#[target_feature(enable = "avx2")]
unsafe fn flush(acc: __m256i, out: *mut i32) {
    let lo = _mm256_cvtepi16_epi32(_mm256_castsi256_si128(acc));
    let hi = _mm256_cvtepi16_epi32(_mm256_extracti128_si256::<1>(acc));
    // SAFETY: the caller passes 16 writable i32.
    unsafe {
        let o = out as *mut __m256i;
        _mm256_storeu_si256(o, _mm256_add_epi32(_mm256_loadu_si256(o), lo));
        _mm256_storeu_si256(o.add(1), _mm256_add_epi32(_mm256_loadu_si256(o.add(1)), hi));
    }
}

/// AVX2 kernel for one band of 128 rows, reading the lines in the same order as the AVX-512
/// kernel: per column block and tile, per word line, the line's two halves of 16 rows each
/// look their three codes up in the split tables. Lines are prefetched like the AVX-512
/// kernel's.
///
/// # Safety
/// The CPU supports AVX2; `lines` holds the band's `4 * words` lines, `split` at least
/// `3 * words` tables from [`split_tables`].
#[target_feature(enable = "avx2")]
pub(super) unsafe fn band(
    lines: &[Line],
    split: &[Line],
    words: usize,
    block: usize,
    end: *const Line,
) -> [i32; BAND_ROWS] {
    debug_assert!(lines.len() >= 4 * words && split.len() >= 3 * words);
    let end = end as usize;
    let mut lp = lines.as_ptr();
    let mut out = [0i32; BAND_ROWS];
    for q0 in (0..words).step_by(block) {
        let q1 = (q0 + block).min(words);
        for tile in out.chunks_mut(TILE_ROWS) {
            let mut acc = [_mm256_setzero_si256(); 2];
            for q in q0..q1 {
                // SAFETY: `lp` walks the band's lines in order and 3q + 2 < 3 · words.
                unsafe {
                    let ahead = (lp as *const u8).wrapping_add(PREFETCH_BYTES);
                    if (ahead as usize) < end {
                        _mm_prefetch::<_MM_HINT_T1>(ahead as *const i8);
                    }
                    let w = lp as *const __m256i;
                    let w = [_mm256_loadu_si256(w), _mm256_loadu_si256(w.add(1))];
                    lp = lp.add(1);
                    let t = split.as_ptr().add(3 * q);
                    let (t0, t1, t2) = (load_table(t), load_table(t.add(1)), load_table(t.add(2)));
                    for h in 0..2 {
                        let s = _mm256_add_epi16(lookup::<0>(w[h], &t0), lookup::<5>(w[h], &t1));
                        acc[h] =
                            _mm256_add_epi16(acc[h], _mm256_add_epi16(s, lookup::<10>(w[h], &t2)));
                    }
                }
                if (q - q0 + 1) % FLUSH_WORDS == 0 || q + 1 == q1 {
                    for (h, a) in acc.iter_mut().enumerate() {
                        // SAFETY: a tile has 32 rows, two halves of 16.
                        unsafe { flush(*a, tile.as_mut_ptr().add(16 * h)) };
                        *a = _mm256_setzero_si256();
                    }
                }
            }
        }
    }
    out
}
