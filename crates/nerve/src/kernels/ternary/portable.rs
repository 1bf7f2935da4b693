//! The portable kernel: the same table lookups as the SIMD kernels, one row at a time, on
//! any CPU.

use super::{Line, BAND_ROWS, TILE_ROWS};

/// Portable kernel for one band: per row and word, adds the three table entries its codes
/// select, in the order of the packed lines.
pub(super) fn band(
    lines: &[Line],
    tables: &[Line],
    words: usize,
    block: usize,
) -> [i32; BAND_ROWS] {
    let mut sums = [0i32; BAND_ROWS];
    let mut lines = lines.iter();
    for q0 in (0..words).step_by(block) {
        for tile in sums.chunks_mut(TILE_ROWS) {
            for q in q0..(q0 + block).min(words) {
                let line = lines.next().expect("a band holds every line");
                let t = &tables[3 * q..3 * q + 3];
                for (sum, &w) in tile.iter_mut().zip(&line.0) {
                    let w = w as u16 as usize;
                    *sum += t[0].0[w & 31] as i32
                        + t[1].0[(w >> 5) & 31] as i32
                        + t[2].0[w >> 10] as i32;
                }
            }
        }
    }
    sums
}
