//! Packed ternary matrix-vector products, the hot loop of MatMul-free LM decoding.
//!
//! A [`TernaryMatrix`] holds weights in {-1, 0, +1} and the per-tensor scale `s_w` of
//! BitLinear, in the [`Layout`] of the kernel that will read it. In base 3 (the AVX-512 and
//! portable kernels' layout) each group of 3 consecutive
//! columns of a row is one code `Σ_k (w_k + 1) · 3^k` in 0..27 (5 bits), and three codes (9
//! columns) share one `u16` word, `c₀ | c₁ << 5 | c₂ << 10`: 16 bits per 9 weights, 1.78 bits
//! per weight.
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
//! AVX2 (chosen where AVX-512BW is missing) reads another layout, [`Layout::TwoBit`]: two
//! bits per weight, multiplied by the int8 activations with `vpmaddubsw` (`two_bit`,
//! `x86_avx2`). AVX2 has no 16-bit permutation, and looking base-3 codes up with `vpshufb`
//! cost about 15 instructions per code (7 GB/s per core); the two-bit kernel runs at 25–29
//! GB/s per core with its weights in cache, about what a core streams from memory, for 12.5%
//! more bytes. A matrix is packed in the layout of the kernel that [`Kernel::detect`] picks, so
//! a model holds one copy of its weights.
//!
//! `NERVE_ISA=avx512|avx2|portable` forces a kernel (see [`Kernel::detect`]), so tests and
//! benchmarks cover each one on a machine that has them all.
//!
//! Measured on one Zen 4 core streaming 75 MB of weights from memory: masked i16 adds under
//! 2-bit plus/minus bit-masks ran at 11.7 GB/s, a `vpsadbw` variant of them at 14 GB/s, both
//! limited by instructions; this kernel at 10 GB/s without software prefetch (limited by
//! misses in flight), 20–27 GB/s with it, and 27–35 GB/s, as fast as a plain sum of the same
//! memory, once the weights sit on 2 MiB pages ([`TernaryArena`] asks for them).
//!
//! [`TernaryMatrix::gemv_reference`] is the plain element-by-element definition the kernels
//! are tested against, with exact integer equality.
//!
//! This file holds the public API and the run-time choice of kernel; `batch` the batched
//! GEMV; `quantize` the BitLinear quantisation and the activation tables, `pack` the codes,
//! the line order and the arena, `two_bit` the AVX2 layout and its portable twin, `buffer` the
//! huge-page storage, `portable`, `x86` (AVX-512) and `x86_avx2` the kernels, `reference` the
//! plain definition, `tests` the tests.

mod batch;
mod buffer;
mod pack;
mod portable;
mod quantize;
mod reference;
#[cfg(test)]
mod tests;
mod two_bit;
#[cfg(target_arch = "x86_64")]
mod x86;
#[cfg(target_arch = "x86_64")]
mod x86_avx2;

use std::sync::Arc;

use rayon::prelude::*;

use buffer::LineBuffer;
use pack::digit;
pub use pack::TernaryArena;
pub use quantize::{quantize_i8, ternarize, weight_scale, QuantizedActivations};

use crate::error::Result;

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

/// Which implementation of the GEMV inner loop runs, ordered slowest (narrowest) first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// Portable Rust: table lookups one row at a time.
    Scalar,
    /// AVX2: `vpmaddubsw` products of two-bit weights, 32 columns at once.
    Avx2,
    /// AVX-512BW: `vpermw` lookups for 32 rows at once.
    Avx512,
}

/// The environment variable that forces a kernel: `avx512`, `avx2` or `portable`.
pub const ISA_ENV: &str = "NERVE_ISA";

impl Kernel {
    /// Every kernel, slowest first.
    pub const ALL: [Kernel; 3] = [Kernel::Scalar, Kernel::Avx2, Kernel::Avx512];

    /// The kernel GEMVs use: the one `NERVE_ISA` names (`avx512`, `avx2`, `portable`) if this
    /// CPU supports it, else the fastest this CPU supports. Decided once per process; a
    /// request the CPU cannot honour, or an unknown name, is reported once on stderr.
    pub fn detect() -> Kernel {
        static CHOSEN: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        *CHOSEN.get_or_init(|| {
            let best = Self::ALL
                .into_iter()
                .rev()
                .find(|k| k.is_supported())
                .unwrap_or(Kernel::Scalar);
            let Ok(wanted) = std::env::var(ISA_ENV) else {
                return best;
            };
            match Self::parse(&wanted) {
                Some(k) if k.is_supported() => k,
                Some(k) => {
                    eprintln!(
                        "{ISA_ENV}={wanted}: this CPU lacks {}; using {}",
                        k.name(),
                        best.name()
                    );
                    best
                }
                None => {
                    eprintln!(
                        "{ISA_ENV}={wanted} is not one of avx512, avx2, portable; using {}",
                        best.name()
                    );
                    best
                }
            }
        })
    }

    /// The kernel called `name` (`avx512`, `avx2`, `portable` or `scalar`).
    pub fn parse(name: &str) -> Option<Kernel> {
        match name.trim().to_ascii_lowercase().as_str() {
            "avx512" | "avx-512" | "avx512bw" => Some(Kernel::Avx512),
            "avx2" => Some(Kernel::Avx2),
            "portable" | "scalar" => Some(Kernel::Scalar),
            _ => None,
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
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(not(target_arch = "x86_64"))]
            Kernel::Avx512 | Kernel::Avx2 => false,
        }
    }

    /// This kernel if the CPU supports it, else [`Kernel::Scalar`].
    pub fn or_scalar(self) -> Kernel {
        if self.is_supported() {
            self
        } else {
            Kernel::Scalar
        }
    }

    /// Every kernel this CPU supports, slowest first.
    pub fn available() -> Vec<Kernel> {
        Self::ALL.into_iter().filter(|k| k.is_supported()).collect()
    }

    /// The layout of the matrices this kernel reads.
    pub fn layout(self) -> Layout {
        match self {
            Kernel::Avx2 => Layout::TwoBit,
            Kernel::Scalar | Kernel::Avx512 => Layout::Base3,
        }
    }

    /// A short lower-case name (`scalar`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Scalar => "scalar",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
        }
    }
}

/// How a matrix's weights are stored; chosen when it is packed, for the kernel that will
/// read it ([`Kernel::layout`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Base-3 codes, 9 weights in 16 bits, in tiles of 32 rows (AVX-512 and portable).
    Base3,
    /// `w + 1` in two bits, rows one after another (AVX2 and its portable twin).
    TwoBit,
}

impl Layout {
    /// The layout of the kernel [`Kernel::detect`] picks.
    pub fn detect() -> Layout {
        Kernel::detect().layout()
    }
}

/// 64 bytes aligned to a cache line (32 words, or one table of 32 i16 entries), so SIMD
/// loads never split lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(64))]
struct Line([i16; 32]);

/// Lines as bytes, in memory order.
fn line_bytes(lines: &[Line]) -> &[u8] {
    // SAFETY: a line is 64 initialised bytes without padding, and u8 has no alignment or
    // validity rules.
    unsafe { std::slice::from_raw_parts(lines.as_ptr() as *const u8, 64 * lines.len()) }
}

/// Lines as mutable bytes, in memory order.
fn line_bytes_mut(lines: &mut [Line]) -> &mut [u8] {
    // SAFETY: as in `line_bytes`; every byte pattern is a valid pair of i16.
    unsafe { std::slice::from_raw_parts_mut(lines.as_mut_ptr() as *mut u8, 64 * lines.len()) }
}

/// A ternary weight matrix `[rows, cols]` packed in base 3 (see the [module docs](self)),
/// with its BitLinear scale `s_w` (the dequantised weight is `sign / s_w`). Cloning shares
/// the packed buffer.
#[derive(Debug, Clone)]
pub struct TernaryMatrix {
    layout: Layout,
    rows: usize,
    cols: usize,
    /// Words per row: `ceil(cols / 9)`.
    words: usize,
    /// Words per column block (the last block may be shorter).
    block: usize,
    bands: usize,
    /// `bands * lines_per_band()` lines from line `start` of `buf`, in the order of the
    /// layout.
    buf: Arc<LineBuffer>,
    start: usize,
    scale: f32,
}

impl PartialEq for TernaryMatrix {
    fn eq(&self, other: &Self) -> bool {
        (self.layout, self.rows, self.cols, self.scale)
            == (other.layout, other.rows, other.cols, other.scale)
            && self.lines() == other.lines()
    }
}

impl TernaryMatrix {
    /// Ternarises a row-major `f32` matrix as BitLinear does: `s_w` from [`weight_scale`],
    /// each weight through [`ternarize`]; in the layout of [`Kernel::detect`]. Errors on a
    /// length mismatch or a non-finite weight.
    pub fn from_f32(rows: usize, cols: usize, data: &[f32]) -> Result<Self> {
        let mut arena = TernaryArena::new(&[(rows, cols)]);
        arena.pack_f32(0, data)?;
        Ok(arena.finish()?.remove(0))
    }

    /// Packs already ternary weights (each in {-1, 0, 1}) with the scale `s_w` they were made
    /// with, in the layout of [`Kernel::detect`]. Errors on a length mismatch, a value
    /// outside {-1, 0, 1} or a bad scale.
    pub fn from_signs(rows: usize, cols: usize, signs: &[i8], scale: f32) -> Result<Self> {
        Self::from_signs_in(Layout::detect(), rows, cols, signs, scale)
    }

    /// [`from_signs`](Self::from_signs) in a chosen layout.
    pub fn from_signs_in(
        layout: Layout,
        rows: usize,
        cols: usize,
        signs: &[i8],
        scale: f32,
    ) -> Result<Self> {
        let mut arena = TernaryArena::with_layout(layout, &[(rows, cols)]);
        arena.pack_signs(0, signs, scale)?;
        Ok(arena.finish()?.remove(0))
    }

    fn lines_per_band(&self) -> usize {
        match self.layout {
            Layout::Base3 => BAND_TILES * self.words,
            Layout::TwoBit => two_bit::lines_for(BAND_ROWS, self.cols),
        }
    }

    fn lines(&self) -> &[Line] {
        &self.buf.lines()[self.start..self.start + self.bands * self.lines_per_band()]
    }

    /// The layout the weights are stored in.
    pub fn layout(&self) -> Layout {
        self.layout
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
        if self.layout == Layout::TwoBit {
            return two_bit::sign(self.lines(), self.cols, r, c);
        }
        let (band, t) = (r / BAND_ROWS, (r % BAND_ROWS) / TILE_ROWS);
        let q = c / WORD_COLS;
        let q0 = q / self.block * self.block;
        let len = self.block.min(self.words - q0);
        let at = band * BAND_TILES * self.words + BAND_TILES * q0 + t * len + (q - q0);
        let word = self.lines()[at].0[r % TILE_ROWS] as u16;
        let code = (word >> (5 * ((c % WORD_COLS) / GROUP_COLS))) & 31;
        digit(code as usize, c % GROUP_COLS)
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

    /// [`gemv`](Self::gemv) with a chosen kernel; a kernel this CPU lacks, or one that reads
    /// another layout than this matrix's, falls back to the portable kernel of the layout.
    ///
    /// # Panics
    /// If `x.len() != cols` or `y.len() != rows`.
    pub fn gemv_with(&self, kernel: Kernel, x: &QuantizedActivations, y: &mut [i32]) {
        assert_eq!(x.len(), self.cols, "gemv input length");
        assert_eq!(y.len(), self.rows, "gemv output length");
        let kernel = self.runnable(kernel);
        let threads = rayon::current_num_threads();
        let weights_per_band = BAND_ROWS * self.cols;
        let min_bands = MIN_TASK_WEIGHTS.div_ceil(weights_per_band.max(1));
        // Two tasks per thread balance uneven progress; more would cut the sequential
        // streams (and their prefetching) into shorter pieces.
        let per_task = self.bands.div_ceil(threads * 2).max(min_bands).max(1);
        let input = self.kernel_input(kernel, x);
        if threads == 1 || per_task >= self.bands {
            self.band_range(kernel, 0, self.bands, &input, y);
        } else {
            y.par_chunks_mut(per_task * BAND_ROWS)
                .enumerate()
                .for_each(|(i, ys)| {
                    let first = i * per_task;
                    let end = (first + per_task).min(self.bands);
                    self.band_range(kernel, first, end, &input, ys)
                });
        }
    }

    /// Computes the rows of `ys`, which are those of bands `first..end`.
    fn band_range(
        &self,
        kernel: Kernel,
        first: usize,
        end: usize,
        input: &KernelInput<'_>,
        ys: &mut [i32],
    ) {
        let per_band = self.lines_per_band();
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
            let sums = self.band(kernel, lines, input, prefetch_end);
            out.copy_from_slice(&sums[..out.len()]);
        }
    }

    /// `kernel` if it runs on this CPU and reads this matrix's layout, else the layout's
    /// portable kernel.
    fn runnable(&self, kernel: Kernel) -> Kernel {
        let kernel = kernel.or_scalar();
        if kernel.layout() == self.layout {
            kernel
        } else {
            Kernel::Scalar
        }
    }

    /// The sums of one band's rows, `lines` being the band's lines, `input` what the kernel
    /// reads of the activations, prefetching up to `prefetch_end`.
    fn band(
        &self,
        kernel: Kernel,
        lines: &[Line],
        input: &KernelInput<'_>,
        prefetch_end: *const Line,
    ) -> [i32; BAND_ROWS] {
        match (input, kernel) {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `runnable` only passes kernels this CPU supports; `tables` has three
            // tables per word of a row; prefetches are only hints and may point anywhere.
            (KernelInput::Tables(tables), Kernel::Avx512) => unsafe {
                x86::band(lines, tables, self.words, self.block, prefetch_end)
            },
            (KernelInput::Tables(tables), _) => {
                portable::band(lines, tables, self.words, self.block)
            }
            #[cfg(target_arch = "x86_64")]
            // SAFETY: as above; `x` is padded to whole lines of the row.
            (&KernelInput::Bytes { x, sum }, Kernel::Avx2) => unsafe {
                x86_avx2::band(lines, x, sum, prefetch_end)
            },
            (&KernelInput::Bytes { x, sum }, _) => two_bit::band_portable(lines, x, sum),
        }
    }

    /// What `kernel` (one that reads this matrix's layout) reads of the activations `x`:
    /// the group tables (built here if `x` has none) or the padded bytes and their sum.
    fn kernel_input<'a>(&self, kernel: Kernel, x: &'a QuantizedActivations) -> KernelInput<'a> {
        match self.layout {
            Layout::Base3 => KernelInput::Tables(x.tables_for(kernel)),
            Layout::TwoBit => KernelInput::Bytes {
                x: x.padded_i8(),
                sum: x.sum(),
            },
        }
    }
}

/// What a kernel reads of one activation vector: the base-3 group tables (owned where they
/// had to be built), or the int8 values padded with zeros to whole two-bit blocks with their
/// sum.
enum KernelInput<'a> {
    Tables(std::borrow::Cow<'a, [Line]>),
    Bytes { x: &'a [i8], sum: i32 },
}
