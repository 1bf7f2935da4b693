//! The two-bit layout the AVX2 kernel reads, and its portable twin.
//!
//! Each weight is stored as `w + 1` in {0, 1, 2}, two bits, four weights per byte. A row is a
//! run of 64-byte lines of [`LINE_COLS`] = 256 columns, rows one after another (bands of
//! [`BAND_ROWS`] rows, padding rows and columns zero weights). A line is two blocks of 32
//! bytes, 128 columns each; bits `2k..2k + 2` of byte `i` of a block hold column `32k + i` of
//! the block, so one 32-byte load gives 32 consecutive columns per two-bit field, matching 32
//! consecutive activation bytes.
//!
//! Why a second layout: AVX2 has no 16-bit permutation, so the base-3 lookups cost about 15
//! instructions per code; with two bits per weight, `vpmaddubsw` multiplies 32 unsigned
//! `w + 1` by 32 int8 activations and adds pairs, and `Σ (w + 1) · x − Σ x` is the exact sum.
//! It costs 2 bits per weight instead of 1.78.

use super::{Line, BAND_ROWS};

/// Columns in one 64-byte line of the two-bit layout.
pub const LINE_COLS: usize = 256;
/// Columns in one 32-byte block of a line.
pub(super) const BLOCK_COLS: usize = 128;

/// Lines of one row: `ceil(cols / 256)`.
pub(super) fn row_lines(cols: usize) -> usize {
    cols.div_ceil(LINE_COLS)
}

/// Lines needed by a `[rows, cols]` matrix (rows padded to whole bands).
pub(super) fn lines_for(rows: usize, cols: usize) -> usize {
    rows.div_ceil(BAND_ROWS) * BAND_ROWS * row_lines(cols)
}

/// Where column `c` of a row sits: (line of the row, byte of the line, bit shift).
fn place(c: usize) -> (usize, usize, usize) {
    let (line, in_line) = (c / LINE_COLS, c % LINE_COLS);
    let (block, in_block) = (in_line / BLOCK_COLS, in_line % BLOCK_COLS);
    (line, 32 * block + in_block % 32, 2 * (in_block / 32))
}

/// Packs a `[rows, cols]` matrix into `lines` (from [`lines_for`]), `sign(r, c)` giving each
/// weight in {-1, 0, 1}.
pub(super) fn pack(
    lines: &mut [Line],
    rows: usize,
    cols: usize,
    sign: impl Fn(usize, usize) -> i8,
) {
    let per_row = row_lines(cols);
    for (r, row) in lines.chunks_mut(per_row).enumerate() {
        for line in row.iter_mut() {
            // Zero weights (code 1 in every field) for padding.
            *line.bytes_mut() = [0b0101_0101; 64];
        }
        if r >= rows {
            continue;
        }
        for c in 0..cols {
            let (l, byte, shift) = place(c);
            let b = &mut row[l].bytes_mut()[byte];
            *b = (*b & !(3 << shift)) | (((sign(r, c) + 1) as u8) << shift);
        }
    }
}

/// The weight at row `r`, column `c` of a matrix whose lines (from its first) are `lines`.
pub(super) fn sign(lines: &[Line], cols: usize, r: usize, c: usize) -> i8 {
    let (l, byte, shift) = place(c);
    let b = lines[r * row_lines(cols) + l].bytes()[byte];
    ((b >> shift) & 3) as i8 - 1
}

/// Portable twin of the AVX2 kernel for one band: per row, `Σ (w + 1) · x − Σ x` over the
/// band's lines, `x` padded with zeros to whole lines.
pub(super) fn band_portable(lines: &[Line], x: &[i8], x_sum: i32) -> [i32; BAND_ROWS] {
    let per_row = lines.len() / BAND_ROWS;
    let mut sums = [0i32; BAND_ROWS];
    for (sum, row) in sums.iter_mut().zip(lines.chunks(per_row)) {
        let mut acc = 0i32;
        for (l, line) in row.iter().enumerate() {
            for (byte, &b) in line.bytes().iter().enumerate() {
                let base = l * LINE_COLS + (byte / 32) * BLOCK_COLS + byte % 32;
                for k in 0..4 {
                    let code = ((b >> (2 * k)) & 3) as i32;
                    acc += code * x[base + 32 * k] as i32;
                }
            }
        }
        *sum = acc - x_sum;
    }
    sums
}
