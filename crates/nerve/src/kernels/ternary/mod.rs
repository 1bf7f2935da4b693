//! Packed ternary matrix-vector products, the hot loop of MatMul-free LM decoding.
//!
//! A [`TernaryMatrix`] holds weights in {-1, 0, +1} in base 3: each group of 3 consecutive
//! columns of a row is one code `Σ_k (w_k + 1) · 3^k` in 0..27 (5 bits), and three codes (9
//! columns) share one `u16` word, `c₀ | c₁ << 5 | c₂ << 10`: 16 bits per 9 weights, 1.78 bits
//! per weight, plus the per-tensor scale `s_w` of BitLinear.
//!
//! Rows come in tiles of [`TILE_ROWS`] = 32 (one i16 lane per row in a 512-bit register) and
//! bands of [`BAND_ROWS`] = 128 (4 tiles); the words of a row are split into column blocks of
//! at most 85 words (765 columns), small enough that a block's lookup tables (below) stay in
//! L1 while the 4 tiles of a band use them. One line of 64 bytes holds the word of each of a
//! tile's 32 rows for the same 9 columns, and the lines are stored in the order the kernel
//! reads them, so a band is one sequential stream:
//!
//! ```text
//! for band { for block { for tile in band { for word in block { line } } } }
//! ```
//!
//! Padding rows and columns are zero weights.
//!
//! The GEMV `y[r] = Σ_c sign(W[r,c]) · x_q[c]` never multiplies: it only adds and subtracts
//! int8 activations (widened to i16). Per call, each group of 3 activations gets a table of
//! its 27 signed sums `±x₀ ± x₁ ± x₂` (with zeros), built by (masked) adds and subtracts
//! ([`QuantizedActivations`] keeps them); the kernel then adds the table entries the codes
//! select, so one add stands for 3 weights:
//!
//! - AVX-512BW (chosen at run time where available): one 64-byte line of words gives the
//!   codes of 32 rows; `vpermw` (a permutation) looks the 32 codes of a group up in its table
//!   (32 i16 lanes, one per row) and `vpaddw` accumulates, flushed to i32 before an i16 lane
//!   could overflow. The lines are prefetched into L2 16 KiB ahead.
//! - Scalar (portable, any CPU): the same lookups one row at a time.
//!
//! Measured on one Zen 4 core streaming 75 MB of weights from memory: masked i16 adds under
//! 2-bit plus/minus bit-masks ran at 11.7 GB/s, a `vpsadbw` variant of them at 14 GB/s, both
//! limited by instructions; this kernel at 10 GB/s without software prefetch (limited by
//! misses in flight), 20–27 GB/s with it, and 27–35 GB/s, as fast as a plain sum of the same
//! memory, once the weights sit on 2 MiB pages ([`TernaryArena`] asks for them).
//!
//! [`TernaryMatrix::gemv_reference`] is the plain element-by-element definition the kernels
//! are tested against, with exact integer equality.

use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{Error, Result};

/// Rows per tile of the packed layout: one i16 lane per row in a 512-bit register.
pub const TILE_ROWS: usize = 32;
/// Tiles per band.
const BAND_TILES: usize = 4;
/// Rows per band, the unit of work of the kernels and of the parallel split.
pub const BAND_ROWS: usize = TILE_ROWS * BAND_TILES;
/// Columns in one base-3 code.
pub const GROUP_COLS: usize = 3;
/// Columns in one `u16` word (three codes).
pub const WORD_COLS: usize = 9;
/// Most words in a column block. The kernel flushes its i16 accumulators to i32 after each
/// block: each word adds one table entry of magnitude ≤ 3 · 128 = 384 to each of three
/// accumulators, and 85 · 384 = 32640 ≤ `i16::MAX`. A block's tables take at most
/// 85 · 3 · 64 bytes = 16 KiB, half of L1.
const BLOCK_WORDS: usize = 85;
/// How far ahead of the kernel's reads the words are prefetched into L2 (bytes); 8 to 32 KiB
/// measured alike, without prefetching a core streamed about half as fast.
const PREFETCH_BYTES: usize = 16384;
/// Smallest amount of work (weights) worth a rayon task; below it, splitting costs more than
/// it saves.
const MIN_TASK_WEIGHTS: usize = 1 << 17;

/// Which implementation of the GEMV inner loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// Portable Rust: table lookups one row at a time.
    Scalar,
    /// AVX-512BW: `vpermw` lookups for 32 rows at once.
    Avx512,
}

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 2] = [Kernel::Scalar, Kernel::Avx512];

    /// The fastest kernel this CPU supports.
    pub fn detect() -> Kernel {
        if Kernel::Avx512.is_supported() {
            Kernel::Avx512
        } else {
            Kernel::Scalar
        }
    }

    /// Whether this CPU can run the kernel.
    pub fn is_supported(self) -> bool {
        match self {
            Kernel::Scalar => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx512 => false,
        }
    }

    /// Every kernel this CPU supports, slowest first.
    pub fn available() -> Vec<Kernel> {
        Self::ALL.into_iter().filter(|k| k.is_supported()).collect()
    }

    /// A short lower-case name (`scalar`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx512 => "avx512",
        }
    }
}

/// BitLinear's per-tensor weight scale `s_w = 1 / max(mean|W|, 1e-5)`.
pub fn weight_scale(w: &[f32]) -> f32 {
    // Summed in f64 so that the mean of millions of weights does not drift.
    let sum: f64 = w.iter().map(|v| v.abs() as f64).sum();
    let mean = if w.is_empty() {
        0.0
    } else {
        sum / w.len() as f64
    };
    1.0 / (mean as f32).max(1e-5)
}

/// BitLinear's ternary weight `clamp(round_half_to_even(w · s_w), -1, 1)`.
pub fn ternarize(w: f32, scale: f32) -> i8 {
    (w * scale).round_ties_even().clamp(-1.0, 1.0) as i8
}

/// Quantises activations per token to int8 as BitLinear does: `s = 127 / max(max|x|, 1e-5)`,
/// `q = clamp(round_half_away_from_zero(x · s), -128, 127)`; writes `q` and returns `s`.
///
/// # Panics
/// If `q` is shorter than `x`.
#[inline(always)]
pub fn quantize_i8(x: &[f32], q: &mut [i8]) -> f32 {
    assert!(q.len() >= x.len(), "quantize_i8: output shorter than input");
    let s = 127.0 / max_abs(x).max(1e-5);
    for (o, v) in q.iter_mut().zip(x) {
        *o = round_half_away(v * s).clamp(-128, 127) as i8;
    }
    s
}

/// `max |x|` (0 for an empty slice, NaN ignored), with independent lanes so it vectorises;
/// the maximum does not depend on the order.
#[inline]
fn max_abs(x: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 16];
    let mut chunks = x.chunks_exact(16);
    for c in &mut chunks {
        for (m, v) in lanes.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    let tail = chunks
        .remainder()
        .iter()
        .fold(0.0f32, |m, v| m.max(v.abs()));
    lanes.iter().fold(tail, |m, v| m.max(*v))
}

/// `f32::round` (half away from zero) for `|v| < 2³¹`, without the libm call `round`
/// compiles to on baseline x86-64: the truncation and the fraction are exact in f32.
#[inline]
fn round_half_away(v: f32) -> i32 {
    let t = v as i32;
    let frac = v - t as f32;
    t + i32::from(frac >= 0.5) - i32::from(frac <= -0.5)
}

/// The weight of a group's column `k` (0..3) in `code` (0..27).
const fn digit(code: usize, k: usize) -> i8 {
    let mut c = code;
    let mut i = 0;
    while i < k {
        c /= 3;
        i += 1;
    }
    (c % 3) as i8 - 1
}

/// The code of three weights in {-1, 0, 1}.
fn encode(w: [i8; 3]) -> u16 {
    (w[0] + 1) as u16 + 3 * (w[1] + 1) as u16 + 9 * (w[2] + 1) as u16
}

/// Per group column `k`, the table lanes whose code has weight +1 (`.0`) and −1 (`.1`) there.
const DIGIT_MASKS: [(u32, u32); 3] = {
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

/// 64 bytes aligned to a cache line (32 words, or one table of 32 i16 entries), so SIMD
/// loads never split lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(64))]
struct Line([i16; 32]);

/// One activation vector quantised to int8, with the per-group lookup tables the kernels
/// read. Allocate once and reuse it for every token.
#[derive(Debug, Clone)]
pub struct QuantizedActivations {
    len: usize,
    q8: Vec<i8>,
    /// One table per group of 3 columns: entry `code` is `Σ_k digit(code, k) · x[3g + k]`.
    tables: Vec<Line>,
    scale: f32,
}

impl QuantizedActivations {
    /// Buffers for vectors of `len` values (all zero, scale 1).
    pub fn new(len: usize) -> Self {
        Self {
            len,
            q8: vec![0; len],
            tables: vec![Line::default(); len.div_ceil(WORD_COLS) * 3],
            scale: 1.0,
        }
    }

    /// Number of activations.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the vector is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Quantises `x` with [`quantize_i8`], builds the tables and returns the scale `s`.
    ///
    /// # Panics
    /// If `x.len()` differs from [`len`](Self::len).
    #[inline(always)]
    pub fn quantize(&mut self, x: &[f32]) -> f32 {
        assert_eq!(x.len(), self.len, "activation length");
        self.scale = quantize_i8(x, &mut self.q8);
        self.build_tables(Kernel::detect());
        self.scale
    }

    /// Sets the int8 values directly (scale 1), e.g. to test extreme inputs.
    ///
    /// # Panics
    /// If `q.len()` differs from [`len`](Self::len).
    pub fn set_i8(&mut self, q: &[i8]) {
        assert_eq!(q.len(), self.len, "activation length");
        self.q8.copy_from_slice(q);
        self.scale = 1.0;
        self.build_tables(Kernel::detect());
    }

    /// The int8 activations.
    pub fn as_i8(&self) -> &[i8] {
        &self.q8
    }

    /// The scale `s` of the last [`quantize`](Self::quantize) (`x ≈ q / s`).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// The three activations of group `g` (zero past the end).
    fn group(&self, g: usize) -> [i16; 3] {
        std::array::from_fn(|k| self.q8.get(3 * g + k).map_or(0, |&v| v as i16))
    }

    fn build_tables(&mut self, kernel: Kernel) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: only chosen when `is_supported`.
            Kernel::Avx512 if kernel.is_supported() => unsafe { x86::build_tables(self) },
            _ => {
                for g in 0..self.tables.len() {
                    let x = self.group(g);
                    let t = &mut self.tables[g].0;
                    for (code, e) in t.iter_mut().enumerate().take(27) {
                        // Adds and subtracts only: each weight is -1, 0 or +1.
                        let mut sum = 0i16;
                        for (k, &v) in x.iter().enumerate() {
                            match digit(code, k) {
                                1 => sum += v,
                                -1 => sum -= v,
                                _ => {}
                            }
                        }
                        *e = sum;
                    }
                }
            }
        }
    }
}

/// Buffers at least this large are mapped with transparent huge pages.
const HUGE_PAGE_MIN_BYTES: usize = 2 << 20;

/// Storage of packed lines: an anonymous mapping advised to use transparent huge pages where
/// it is large enough (the weights are streamed every token, and with 4 KiB pages every 4 KiB
/// costs a TLB miss; see the module docs for the difference), else a plain vector.
#[derive(Debug)]
struct LineBuffer {
    map: Option<memmap2::MmapMut>,
    vec: Vec<Line>,
    len: usize,
}

impl LineBuffer {
    /// `len` zeroed lines.
    fn new(len: usize) -> Self {
        if len * 64 >= HUGE_PAGE_MIN_BYTES {
            if let Ok(map) = memmap2::MmapMut::map_anon(len * 64) {
                // Only advice: without huge pages the buffer still works, a little slower.
                #[cfg(target_os = "linux")]
                let _ = map.advise(memmap2::Advice::HugePage);
                return Self {
                    map: Some(map),
                    vec: Vec::new(),
                    len,
                };
            }
        }
        Self {
            map: None,
            vec: vec![Line::default(); len],
            len,
        }
    }

    fn lines(&self) -> &[Line] {
        match &self.map {
            // SAFETY: the mapping is page-aligned, `len * 64` bytes long, and any bytes are a
            // valid `Line`.
            Some(m) => unsafe { std::slice::from_raw_parts(m.as_ptr() as *const Line, self.len) },
            None => &self.vec,
        }
    }

    fn lines_mut(&mut self) -> &mut [Line] {
        match &mut self.map {
            // SAFETY: as in `lines`, and `&mut self` makes the access exclusive.
            Some(m) => unsafe {
                std::slice::from_raw_parts_mut(m.as_mut_ptr() as *mut Line, self.len)
            },
            None => &mut self.vec,
        }
    }
}

/// Lines needed by a `[rows, cols]` matrix.
fn lines_for(rows: usize, cols: usize) -> usize {
    rows.div_ceil(BAND_ROWS) * BAND_TILES * cols.div_ceil(WORD_COLS)
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
    shapes: Vec<(usize, usize)>,
    offsets: Vec<usize>,
    scales: Vec<Option<f32>>,
    buf: LineBuffer,
}

impl TernaryArena {
    /// Room for matrices of the given `[rows, cols]` shapes.
    pub fn new(shapes: &[(usize, usize)]) -> Self {
        let mut offsets = Vec::with_capacity(shapes.len());
        let mut total = 0;
        for &(r, c) in shapes {
            offsets.push(total);
            total += lines_for(r, c);
        }
        Self {
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
        self.shapes.get(index).copied().ok_or_else(|| {
            Error::invalid(
                "ternary matrix index",
                format!("{index} is not below {}", self.shapes.len()),
            )
        })
    }

    fn pack_with(&mut self, index: usize, scale: f32, sign: impl Fn(usize, usize) -> i8) {
        let (rows, cols) = self.shapes[index];
        let words = cols.div_ceil(WORD_COLS);
        let block = block_words(words);
        let start = self.offsets[index];
        let mut lines = self.buf.lines_mut()[start..start + lines_for(rows, cols)].iter_mut();
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
        self.scales[index] = Some(scale);
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

/// A ternary weight matrix `[rows, cols]` packed in base 3 (see the [module docs](self)),
/// with its BitLinear scale `s_w` (the dequantised weight is `sign / s_w`). Cloning shares
/// the packed buffer.
#[derive(Debug, Clone)]
pub struct TernaryMatrix {
    rows: usize,
    cols: usize,
    /// Words per row: `ceil(cols / 9)`.
    words: usize,
    /// Words per column block (the last block may be shorter).
    block: usize,
    bands: usize,
    /// `bands * 4 * words` lines from line `start` of `buf`, in the order of the module docs.
    buf: Arc<LineBuffer>,
    start: usize,
    scale: f32,
}

impl PartialEq for TernaryMatrix {
    fn eq(&self, other: &Self) -> bool {
        (self.rows, self.cols, self.scale) == (other.rows, other.cols, other.scale)
            && self.lines() == other.lines()
    }
}

impl TernaryMatrix {
    /// Ternarises a row-major `f32` matrix as BitLinear does: `s_w` from [`weight_scale`],
    /// each weight through [`ternarize`]. Errors on a length mismatch or a non-finite weight.
    pub fn from_f32(rows: usize, cols: usize, data: &[f32]) -> Result<Self> {
        let mut arena = TernaryArena::new(&[(rows, cols)]);
        arena.pack_f32(0, data)?;
        Ok(arena.finish()?.remove(0))
    }

    /// Packs already ternary weights (each in {-1, 0, 1}) with the scale `s_w` they were made
    /// with. Errors on a length mismatch, a value outside {-1, 0, 1} or a bad scale.
    pub fn from_signs(rows: usize, cols: usize, signs: &[i8], scale: f32) -> Result<Self> {
        let mut arena = TernaryArena::new(&[(rows, cols)]);
        arena.pack_signs(0, signs, scale)?;
        Ok(arena.finish()?.remove(0))
    }

    fn lines(&self) -> &[Line] {
        &self.buf.lines()[self.start..self.start + self.bands * BAND_TILES * self.words]
    }

    /// Number of output rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of input columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// The BitLinear weight scale `s_w` (the dequantised weight is `sign / s_w`).
    pub fn scale(&self) -> f32 {
        self.scale
    }

    /// Bytes of packed weights, all read by one GEMV (padding included).
    pub fn packed_bytes(&self) -> usize {
        std::mem::size_of_val(self.lines())
    }

    /// The ternary weight at row `r`, column `c`.
    ///
    /// # Panics
    /// If `r` or `c` is out of range.
    pub fn sign(&self, r: usize, c: usize) -> i8 {
        assert!(r < self.rows && c < self.cols, "ternary index out of range");
        let (band, t) = (r / BAND_ROWS, (r % BAND_ROWS) / TILE_ROWS);
        let q = c / WORD_COLS;
        let q0 = q / self.block * self.block;
        let len = self.block.min(self.words - q0);
        let at = band * BAND_TILES * self.words + BAND_TILES * q0 + t * len + (q - q0);
        let word = self.lines()[at].0[r % TILE_ROWS] as u16;
        let code = (word >> (5 * ((c % WORD_COLS) / GROUP_COLS))) & 31;
        digit(code as usize, c % GROUP_COLS)
    }

    /// The plain definition, one element at a time on one thread:
    /// `y[r] = Σ_c sign(r, c) · x[c]`.
    ///
    /// # Panics
    /// If `x.len() != cols` or `y.len() != rows`.
    pub fn gemv_reference(&self, x: &[i8], y: &mut [i32]) {
        assert_eq!(x.len(), self.cols, "gemv input length");
        assert_eq!(y.len(), self.rows, "gemv output length");
        for (r, out) in y.iter_mut().enumerate() {
            let mut acc = 0i32;
            for (c, &v) in x.iter().enumerate() {
                match self.sign(r, c) {
                    1 => acc += v as i32,
                    -1 => acc -= v as i32,
                    _ => {}
                }
            }
            *out = acc;
        }
    }

    /// `y[r] = Σ_c sign(r, c) · x_q[c]` with the fastest kernel of this CPU, parallel over
    /// bands of rows in the current rayon pool (so `ThreadPool::install` picks the thread
    /// count).
    ///
    /// # Panics
    /// If `x.len() != cols` or `y.len() != rows`.
    pub fn gemv(&self, x: &QuantizedActivations, y: &mut [i32]) {
        self.gemv_with(Kernel::detect(), x, y)
    }

    /// [`gemv`](Self::gemv) with a chosen kernel; a kernel this CPU lacks falls back to
    /// [`Kernel::Scalar`].
    ///
    /// # Panics
    /// If `x.len() != cols` or `y.len() != rows`.
    pub fn gemv_with(&self, kernel: Kernel, x: &QuantizedActivations, y: &mut [i32]) {
        assert_eq!(x.len(), self.cols, "gemv input length");
        assert_eq!(y.len(), self.rows, "gemv output length");
        let kernel = if kernel.is_supported() {
            kernel
        } else {
            Kernel::Scalar
        };
        let threads = rayon::current_num_threads();
        let weights_per_band = BAND_ROWS * self.words * WORD_COLS;
        let min_bands = MIN_TASK_WEIGHTS.div_ceil(weights_per_band.max(1));
        // Two tasks per thread balance uneven progress; more would cut the sequential
        // streams (and their prefetching) into shorter pieces.
        let per_task = self.bands.div_ceil(threads * 2).max(min_bands).max(1);
        if threads == 1 || per_task >= self.bands {
            self.band_range(kernel, 0, self.bands, &x.tables, y);
        } else {
            y.par_chunks_mut(per_task * BAND_ROWS)
                .enumerate()
                .for_each(|(i, ys)| {
                    let first = i * per_task;
                    let end = (first + per_task).min(self.bands);
                    self.band_range(kernel, first, end, &x.tables, ys)
                });
        }
    }

    /// Computes the rows of `ys`, which are those of bands `first..end`.
    fn band_range(
        &self,
        kernel: Kernel,
        first: usize,
        end: usize,
        tables: &[Line],
        ys: &mut [i32],
    ) {
        let per_band = BAND_TILES * self.words;
        let task = &self.lines()[first * per_band..end * per_band];
        // The last task prefetches on past its end, into whatever the buffer holds next: in a
        // model's arena, the matrix used next. Other tasks stop at their end, where another
        // task's rows begin.
        let prefetch_end = if end == self.bands {
            usize::MAX as *const Line
        } else {
            task.as_ptr_range().end
        };
        for (k, out) in ys.chunks_mut(BAND_ROWS).enumerate() {
            let lines = &task[k * per_band..(k + 1) * per_band];
            let sums = match kernel {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `gemv_with` only passes kernels that `is_supported` on this CPU;
                // `tables` has three tables per word of a row; prefetches are only hints
                // and may point anywhere.
                Kernel::Avx512 => unsafe {
                    x86::band(lines, tables, self.words, self.block, prefetch_end)
                },
                _ => band_scalar(lines, tables, self.words, self.block),
            };
            out.copy_from_slice(&sums[..out.len()]);
        }
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

/// Portable kernel for one band: per row and word, adds the three table entries its codes
/// select, in the order of the packed lines.
fn band_scalar(lines: &[Line], tables: &[Line], words: usize, block: usize) -> [i32; BAND_ROWS] {
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

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::{
        Line, QuantizedActivations, BAND_ROWS, BAND_TILES, DIGIT_MASKS, PREFETCH_BYTES, TILE_ROWS,
    };
    use std::arch::x86_64::*;

    /// Builds every group table with masked adds and subtracts of the broadcast activations.
    ///
    /// # Safety
    /// The CPU supports AVX-512F and AVX-512BW.
    #[target_feature(enable = "avx512f,avx512bw")]
    pub(super) unsafe fn build_tables(a: &mut QuantizedActivations) {
        for g in 0..a.tables.len() {
            let x = a.group(g);
            let mut t = _mm512_setzero_si512();
            for (k, &(plus, minus)) in DIGIT_MASKS.iter().enumerate() {
                let v = _mm512_set1_epi16(x[k]);
                t = _mm512_mask_add_epi16(t, plus, t, v);
                t = _mm512_mask_sub_epi16(t, minus, t, v);
            }
            // SAFETY: `Line` is 64 bytes, 64-aligned.
            unsafe { _mm512_store_si512(a.tables[g].0.as_mut_ptr() as *mut _, t) };
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn random_signs(rng: &mut StdRng, n: usize) -> Vec<i8> {
        (0..n).map(|_| rng.random_range(-1i8..=1)).collect()
    }

    fn random_i8(rng: &mut StdRng, n: usize) -> Vec<i8> {
        (0..n).map(|_| rng.random::<i8>()).collect()
    }

    #[test]
    fn ternarize_rounds_half_to_even_and_clamps() {
        assert_eq!(ternarize(0.5, 1.0), 0);
        assert_eq!(ternarize(-0.5, 1.0), 0);
        assert_eq!(ternarize(0.51, 1.0), 1);
        assert_eq!(ternarize(1.5, 1.0), 1);
        assert_eq!(ternarize(-7.0, 1.0), -1);
        assert_eq!(ternarize(0.3, 2.0), 1);
        // mean |w| = 1.5, so s_w = 2/3.
        assert!((weight_scale(&[1.0, -2.0]) - 2.0 / 3.0).abs() < 1e-7);
        assert_eq!(weight_scale(&[0.0; 4]), 1e5);
    }

    #[test]
    fn fast_rounding_equals_f32_round() {
        let mut rng = StdRng::seed_from_u64(13);
        let mut values: Vec<f32> = (0..100_000)
            .map(|_| (rng.random::<f32>() - 0.5) * 300.0)
            .collect();
        for k in -300..=300 {
            let h = k as f32 * 0.5;
            values.extend([h, h.next_up(), h.next_down()]);
        }
        values.extend([0.0, -0.0, 0.49999997, -0.49999997, 8388607.5, 1e9, -1e9]);
        for v in values {
            assert_eq!(round_half_away(v), v.round() as i32, "{v}");
        }
        assert_eq!(max_abs(&[]), 0.0);
        let x: Vec<f32> = (0..37).map(|k| (k as f32 - 20.0) * 0.1).collect();
        assert_eq!(max_abs(&x), 2.0);
    }

    #[test]
    fn quantize_rounds_half_away_from_zero() {
        // max |x| = 127 gives s = 1, so the values themselves are rounded.
        let x = [0.5, -0.5, 1.5, -127.0, 2.49, 127.0];
        let mut q = [0i8; 6];
        let s = quantize_i8(&x, &mut q);
        assert_eq!(s, 1.0);
        assert_eq!(q, [1, -1, 2, -127, 2, 127]);
        let s = quantize_i8(&[0.0, 0.0], &mut q);
        assert_eq!(s, 127.0 / 1e-5);
        assert_eq!(&q[..2], &[0, 0]);
    }

    #[test]
    fn packing_keeps_every_sign() {
        let mut rng = StdRng::seed_from_u64(3);
        for (rows, cols) in [(1, 1), (9, 33), (40, 70)] {
            let w: Vec<f32> = (0..rows * cols)
                .map(|_| rng.random::<f32>() - 0.5)
                .collect();
            let m = TernaryMatrix::from_f32(rows, cols, &w).unwrap();
            let s = weight_scale(&w);
            assert_eq!(m.scale(), s);
            for r in 0..rows {
                for c in 0..cols {
                    assert_eq!(m.sign(r, c), ternarize(w[r * cols + c], s), "({r}, {c})");
                }
            }
            // 16 bits per 9 weights once the padding to whole bands and words is counted.
            let padded_rows = rows.div_ceil(BAND_ROWS) * BAND_ROWS;
            assert_eq!(m.packed_bytes(), padded_rows * cols.div_ceil(9) * 2);
        }
    }

    #[test]
    fn tables_hold_every_signed_sum() {
        let mut a = QuantizedActivations::new(4);
        a.set_i8(&[1, 10, 100, -7]);
        // Code 11 = (1 + 1) + 3 · (-1 + 1) + 9 · (0 + 1): weights (+1, -1, 0).
        assert_eq!(encode([1, -1, 0]), 11);
        assert_eq!(a.tables[0].0[11], 1 - 10);
        assert_eq!(a.tables[0].0[26], 111);
        assert_eq!(a.tables[0].0[0], -111);
        assert_eq!(a.tables[0].0[13], 0);
        // Group 1 holds -7 and two zero paddings.
        assert_eq!(a.tables[1].0[2], -7);
        assert!(a.tables[0].0[27..].iter().all(|&v| v == 0));
        // Every kernel's table builder gives the same tables.
        let mut rng = StdRng::seed_from_u64(17);
        let mut b = QuantizedActivations::new(301);
        b.set_i8(&random_i8(&mut rng, 301));
        let want = b.tables.clone();
        for kernel in Kernel::available() {
            b.tables.fill(Line::default());
            b.build_tables(kernel);
            assert_eq!(b.tables, want, "{}", kernel.name());
        }
    }

    #[test]
    fn an_arena_packs_matrices_back_to_back() {
        let mut rng = StdRng::seed_from_u64(19);
        // The middle matrix makes the buffer larger than 2 MiB, so it is a huge-page mapping.
        let shapes = [(33, 70), (3200, 3000), (5, 9)];
        let signs: Vec<Vec<i8>> = shapes
            .iter()
            .map(|&(r, c)| random_signs(&mut rng, r * c))
            .collect();
        let mut arena = TernaryArena::new(&shapes);
        assert!(arena.buf.map.is_some());
        for (k, s) in signs.iter().enumerate().rev() {
            arena.pack_signs(k, s, 1.0 + k as f32).unwrap();
        }
        assert!(arena.pack_signs(3, &signs[2], 1.0).is_err());
        let mats = arena.finish().unwrap();
        for (k, (m, &(r, c))) in mats.iter().zip(&shapes).enumerate() {
            assert_eq!(
                *m,
                TernaryMatrix::from_signs(r, c, &signs[k], 1.0 + k as f32).unwrap()
            );
            let q = random_i8(&mut rng, c);
            let mut x = QuantizedActivations::new(c);
            x.set_i8(&q);
            let (mut want, mut got) = (vec![0; r], vec![0; r]);
            m.gemv_reference(&q, &mut want);
            m.gemv(&x, &mut got);
            assert_eq!(got, want, "matrix {k}");
        }
        let mut unfinished = TernaryArena::new(&shapes[..2]);
        unfinished.pack_signs(0, &signs[0], 1.0).unwrap();
        let err = unfinished.finish().unwrap_err().to_string();
        assert!(err.contains("matrix 1 was never packed"), "{err}");
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(TernaryMatrix::from_f32(2, 3, &[0.0; 5]).is_err());
        assert!(TernaryMatrix::from_f32(1, 2, &[0.0, f32::NAN]).is_err());
        assert!(TernaryMatrix::from_signs(1, 2, &[0, 2], 1.0).is_err());
        assert!(TernaryMatrix::from_signs(1, 2, &[0, 1], 0.0).is_err());
    }

    #[test]
    fn every_kernel_equals_the_reference_exactly() {
        let mut rng = StdRng::seed_from_u64(7);
        println!("kernels: {:?}", Kernel::available());
        for (rows, cols) in [
            (1, 1),
            (3, 31),
            (32, 9),
            (33, 10),
            (7, 33),
            (40, 65),
            (21, 300),
            (64, 1024),
            (100, 257),
            (300, 1000),
            (70, 2817),
        ] {
            let signs = random_signs(&mut rng, rows * cols);
            let m = TernaryMatrix::from_signs(rows, cols, &signs, 1.0).unwrap();
            let q = random_i8(&mut rng, cols);
            let mut x = QuantizedActivations::new(cols);
            x.set_i8(&q);
            let mut want = vec![0; rows];
            m.gemv_reference(&q, &mut want);
            for kernel in Kernel::available() {
                let mut got = vec![i32::MIN; rows];
                m.gemv_with(kernel, &x, &mut got);
                assert_eq!(got, want, "{} on {rows} x {cols}", kernel.name());
            }
        }
    }

    #[test]
    fn long_rows_of_extreme_activations_do_not_overflow() {
        // 9000 columns make 1000 words in 12 column blocks of at most 85 words (an i16 lane
        // holds 85 sums), and -128 everywhere is the largest magnitude.
        let (rows, cols) = (9, 9000);
        let mut signs = vec![1i8; rows * cols];
        signs[cols..2 * cols].fill(-1);
        let mut rng = StdRng::seed_from_u64(11);
        signs[4 * cols..].copy_from_slice(&random_signs(&mut rng, 5 * cols));
        let m = TernaryMatrix::from_signs(rows, cols, &signs, 1.0).unwrap();
        for fill in [-128i8, 127] {
            let q = vec![fill; cols];
            let mut x = QuantizedActivations::new(cols);
            x.set_i8(&q);
            let mut want = vec![0; rows];
            m.gemv_reference(&q, &mut want);
            assert_eq!(want[0], fill as i32 * cols as i32);
            assert_eq!(want[1], -(fill as i32) * cols as i32);
            for kernel in Kernel::available() {
                let mut got = vec![0; rows];
                m.gemv_with(kernel, &x, &mut got);
                assert_eq!(got, want, "{} with {fill}", kernel.name());
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let mut rng = StdRng::seed_from_u64(5);
        let (rows, cols) = (1000, 700);
        let m = TernaryMatrix::from_signs(rows, cols, &random_signs(&mut rng, rows * cols), 1.0)
            .unwrap();
        let mut x = QuantizedActivations::new(cols);
        x.set_i8(&random_i8(&mut rng, cols));
        let mut want = vec![0; rows];
        m.gemv_reference(x.as_i8(), &mut want);
        for threads in [1, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut got = vec![0; rows];
            pool.install(|| m.gemv(&x, &mut got));
            assert_eq!(got, want, "{threads} threads");
        }
    }
}
