//! Packing: the base-3 codes, the order of the lines, and [`TernaryArena`], which packs
//! matrices back to back into one buffer.

use std::sync::Arc;

use super::buffer::LineBuffer;
use super::quantize::{ternarize, weight_scale};
use super::two_bit;
use super::{
    Layout, TernaryMatrix, BAND_ROWS, BAND_TILES, BLOCK_WORDS, GROUP_COLS, TILE_ROWS, WORD_COLS,
};
use crate::error::{Error, Result};

/// The weight of a group's column `k` (0..3) in `code` (0..27).
pub(super) const fn digit(code: usize, k: usize) -> i8 {
    let mut c = code;
    let mut i = 0;
    while i < k {
        c /= 3;
        i += 1;
    }
    (c % 3) as i8 - 1
}

/// The code of three weights in {-1, 0, 1}.
pub(super) fn encode(w: [i8; 3]) -> u16 {
    (w[0] + 1) as u16 + 3 * (w[1] + 1) as u16 + 9 * (w[2] + 1) as u16
}

/// Per group column `k`, the table lanes whose code has weight +1 (`.0`) and −1 (`.1`) there.
pub(super) const DIGIT_MASKS: [(u32, u32); 3] = {
    let mut m = [(0u32, 0u32); 3];
    let mut k = 0;
    while k < 3 {
        let mut code = 0;
        while code < 27 {
            match digit(code, k) {
                1 => m[k].0 |= 1 << code,
                -1 => m[k].1 |= 1 << code,
                _ => {}
            }
            code += 1;
        }
        k += 1;
    }
    m
};

/// Lines needed by a `[rows, cols]` matrix in `layout`.
fn lines_for(layout: Layout, rows: usize, cols: usize) -> usize {
    match layout {
        Layout::Base3 => rows.div_ceil(BAND_ROWS) * BAND_TILES * cols.div_ceil(WORD_COLS),
        Layout::TwoBit => two_bit::lines_for(rows, cols),
    }
}

/// The column blocks of a row of `words` words: equal sizes of at most [`BLOCK_WORDS`].
fn block_words(words: usize) -> usize {
    words.div_ceil(words.div_ceil(BLOCK_WORDS).max(1)).max(1)
}

/// Builds several ternary matrices packed back to back in one buffer, in the order given,
/// so that a model whose matrices are used in that order streams one contiguous, huge-page
/// backed region per token. Pack each with [`pack_f32`](Self::pack_f32), then
/// [`finish`](Self::finish).
#[derive(Debug)]
pub struct TernaryArena {
    layout: Layout,
    shapes: Vec<(usize, usize)>,
    offsets: Vec<usize>,
    scales: Vec<Option<f32>>,
    pub(super) buf: LineBuffer,
}

impl TernaryArena {
    /// Room for matrices of the given `[rows, cols]` shapes, in the layout of the kernel
    /// [`Kernel::detect`](super::Kernel::detect) picks.
    pub fn new(shapes: &[(usize, usize)]) -> Self {
        Self::with_layout(Layout::detect(), shapes)
    }

    /// Room for matrices of the given shapes in a chosen layout.
    pub fn with_layout(layout: Layout, shapes: &[(usize, usize)]) -> Self {
        let mut offsets = Vec::with_capacity(shapes.len());
        let mut total = 0;
        for &(r, c) in shapes {
            offsets.push(total);
            total += lines_for(layout, r, c);
        }
        Self {
            layout,
            shapes: shapes.to_vec(),
            offsets,
            scales: vec![None; shapes.len()],
            buf: LineBuffer::new(total),
        }
    }

    /// Ternarises matrix `index` from row-major `f32` values as BitLinear does (`s_w` from
    /// [`weight_scale`], each weight through [`ternarize`]). Errors on a bad index, a length
    /// mismatch or a non-finite weight.
    pub fn pack_f32(&mut self, index: usize, data: &[f32]) -> Result<()> {
        let (rows, cols) = self.shape(index)?;
        check_len(rows, cols, data.len())?;
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(Error::invalid(
                "ternary weights",
                format!(
                    "weight {i} (row {}, column {}) is not finite",
                    i / cols,
                    i % cols
                ),
            ));
        }
        let scale = weight_scale(data);
        self.pack_with(index, scale, |r, c| ternarize(data[r * cols + c], scale));
        Ok(())
    }

    /// Packs matrix `index` from weights already in {-1, 0, 1}, with the scale `s_w` they
    /// were made with. Errors on a bad index, a length mismatch, a value outside {-1, 0, 1}
    /// or a bad scale.
    pub fn pack_signs(&mut self, index: usize, signs: &[i8], scale: f32) -> Result<()> {
        let (rows, cols) = self.shape(index)?;
        check_len(rows, cols, signs.len())?;
        if let Some(i) = signs.iter().position(|s| !(-1..=1).contains(s)) {
            return Err(Error::invalid(
                "ternary weights",
                format!("value {} at {i} is not -1, 0 or 1", signs[i]),
            ));
        }
        if !(scale.is_finite() && scale > 0.0) {
            return Err(Error::invalid(
                "ternary weight scale",
                format!("{scale} is not a positive finite number"),
            ));
        }
        self.pack_with(index, scale, |r, c| signs[r * cols + c]);
        Ok(())
    }

    fn shape(&self, index: usize) -> Result<(usize, usize)> {
        let (rows, cols) = self.shapes.get(index).copied().ok_or_else(|| {
            Error::invalid(
                "ternary matrix index",
                format!("{index} is not below {}", self.shapes.len()),
            )
        })?;
        if self.layout == Layout::TwoBit && cols > two_bit::MAX_COLS {
            return Err(Error::invalid(
                "ternary weights",
                format!(
                    "{cols} columns are more than the two-bit kernel sums exactly in i32 ({})",
                    two_bit::MAX_COLS
                ),
            ));
        }
        Ok((rows, cols))
    }

    fn pack_with(&mut self, index: usize, scale: f32, sign: impl Fn(usize, usize) -> i8) {
        let (rows, cols) = self.shapes[index];
        let start = self.offsets[index];
        let lines = &mut self.buf.lines_mut()[start..start + lines_for(self.layout, rows, cols)];
        self.scales[index] = Some(scale);
        if self.layout == Layout::TwoBit {
            return two_bit::pack(lines, rows, cols, sign);
        }
        let words = cols.div_ceil(WORD_COLS);
        let block = block_words(words);
        let mut lines = lines.iter_mut();
        // In the order the kernel reads them (see the module docs).
        for band in 0..rows.div_ceil(BAND_ROWS) {
            for q0 in (0..words).step_by(block) {
                for t in 0..BAND_TILES {
                    for q in q0..(q0 + block).min(words) {
                        let line = lines.next().expect("lines_for counts every line");
                        for (j, word) in line.0.iter_mut().enumerate() {
                            let r = band * BAND_ROWS + t * TILE_ROWS + j;
                            let mut w = 0u16;
                            for g in 0..3 {
                                let trit = |k: usize| {
                                    let c = q * WORD_COLS + g * GROUP_COLS + k;
                                    if r < rows && c < cols {
                                        sign(r, c)
                                    } else {
                                        0
                                    }
                                };
                                w |= encode([trit(0), trit(1), trit(2)]) << (5 * g);
                            }
                            *word = w as i16;
                        }
                    }
                }
            }
        }
    }

    /// The packed matrices, in the order of the shapes; errors if one was never packed.
    pub fn finish(self) -> Result<Vec<TernaryMatrix>> {
        if let Some(i) = self.scales.iter().position(Option::is_none) {
            return Err(Error::invalid(
                "ternary arena",
                format!("matrix {i} was never packed"),
            ));
        }
        let buf = Arc::new(self.buf);
        Ok(self
            .shapes
            .iter()
            .zip(&self.offsets)
            .zip(&self.scales)
            .map(|((&(rows, cols), &start), scale)| {
                let words = cols.div_ceil(WORD_COLS);
                TernaryMatrix {
                    layout: self.layout,
                    rows,
                    cols,
                    words,
                    block: block_words(words),
                    bands: rows.div_ceil(BAND_ROWS),
                    buf: Arc::clone(&buf),
                    start,
                    scale: scale.unwrap_or(1.0),
                }
            })
            .collect())
    }
}

fn check_len(rows: usize, cols: usize, len: usize) -> Result<()> {
    if rows.checked_mul(cols) != Some(len) {
        return Err(Error::Shape {
            what: "ternary weights".into(),
            expected: format!("{rows} x {cols} values"),
            got: format!("{len} values"),
        });
    }
    Ok(())
}
