//! The two-bit layout the AVX2 kernel reads, and its portable twin.
//!
//! Each weight is stored as `w + 1` in {0, 1, 2}, two bits, four weights per byte. A row is a
//! run of 32-byte blocks of [`BLOCK_COLS`] = 128 columns, rows one after another in bands of
//! [`BAND_ROWS`] rows (padding rows and columns are zero weights). Bits `2k..2k + 2` of byte
//! `i` of a block hold column `32k + i` of the block, so one 32-byte load gives 32
//! consecutive columns per two-bit field, matching 32 consecutive activation bytes.
//!
//! Why a second layout: AVX2 has no 16-bit permutation, so the base-3 lookups cost about 15
//! instructions per code; with two bits per weight, `vpmaddubsw` multiplies 32 unsigned
//! `w + 1` by 32 int8 activations and adds pairs, and `Σ (w + 1) · x − Σ x` is the exact sum.
//! It costs 2 bits per weight instead of 1.78.

use super::{line_bytes, line_bytes_mut, Line, BAND_ROWS};

/// Columns in one 32-byte block of the two-bit layout; activations are padded with zeros to
/// a multiple of it.
pub(super) const BLOCK_COLS: usize = 128;

/// Most columns of a two-bit matrix: the AVX2 kernel sums `4 · (w + 1) · x` per row in i32,
/// up to 4 · 2 · 128 per column.
pub(super) const MAX_COLS: usize = 1 << 21;

/// Blocks of one row: `ceil(cols / 128)`.
pub(super) fn row_blocks(cols: usize) -> usize {
    cols.div_ceil(BLOCK_COLS)
}

/// Lines needed by a `[rows, cols]` matrix (rows padded to whole bands, so a band is a whole
/// number of lines).
pub(super) fn lines_for(rows: usize, cols: usize) -> usize {
    rows.div_ceil(BAND_ROWS) * BAND_ROWS * row_blocks(cols) / 2
}

/// The byte of row `r` that holds column `c`, and the shift of its two bits.
fn place(cols: usize, r: usize, c: usize) -> (usize, usize) {
    let (block, in_block) = (c / BLOCK_COLS, c % BLOCK_COLS);
    let byte = 32 * (r * row_blocks(cols) + block) + in_block % 32;
    (byte, 2 * (in_block / 32))
}

/// Packs a `[rows, cols]` matrix into `lines` (from [`lines_for`]), `sign(r, c)` giving each
/// weight in {-1, 0, 1}.
pub(super) fn pack(
    lines: &mut [Line],
    rows: usize,
    cols: usize,
    sign: impl Fn(usize, usize) -> i8,
) {
    let bytes = line_bytes_mut(lines);
    // Zero weights (code 1 in every field) for padding.
    bytes.fill(0b0101_0101);
    for r in 0..rows {
        for c in 0..cols {
            let (at, shift) = place(cols, r, c);
            let b = &mut bytes[at];
            *b = (*b & !(3 << shift)) | (((sign(r, c) + 1) as u8) << shift);
        }
    }
}

/// The weight at row `r`, column `c` of a matrix whose lines (from its first) are `lines`.
pub(super) fn sign(lines: &[Line], cols: usize, r: usize, c: usize) -> i8 {
    let (at, shift) = place(cols, r, c);
    ((line_bytes(lines)[at] >> shift) & 3) as i8 - 1
}

/// Portable twin of the AVX2 kernel for one band: per row, `Σ (w + 1) · x − Σ x` over the
/// band's blocks, `x` padded with zeros to whole blocks.
pub(super) fn band_portable(lines: &[Line], x: &[i8], x_sum: i32) -> [i32; BAND_ROWS] {
    let bytes = line_bytes(lines);
    let per_row = bytes.len() / BAND_ROWS;
    let mut sums = [0i32; BAND_ROWS];
    for (sum, row) in sums.iter_mut().zip(bytes.chunks(per_row)) {
        let mut acc = 0i32;
        for (at, &b) in row.iter().enumerate() {
            let col = (at / 32) * BLOCK_COLS + at % 32;
            for k in 0..4 {
                acc += ((b >> (2 * k)) & 3) as i32 * x[col + 32 * k] as i32;
            }
        }
        *sum = acc - x_sum;
    }
    sums
}
